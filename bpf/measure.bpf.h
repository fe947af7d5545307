/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The run-queue wait of SLO cgroups, measured in the kernel: per SLO cgroup a log-linear wait
 * histogram, runs, total and worst wait, and misses (waits longer than the budget), in stats_map;
 * each miss also goes to user space on a ring buffer, at most MISS_EVENTS_PER_CPU_PER_SEC per CPU,
 * the excess counted as dropped. Free of sched_ext: whatever sees a task start running after a
 * wait can record it here.
 */
#ifndef SCX_SLO_MEASURE_BPF_H
#define SCX_SLO_MEASURE_BPF_H

#include "common.bpf.h"

/* Pinned: cumulative, and read by user space (key: the id of the cgroup that carries the SLO). */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, SLO_MAP_MAX_ENTRIES);
	__type(key, u64);
	__type(value, struct cg_stats);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} stats_map SEC(".maps");

/* Pinned, so a new reader picks up where the last one stopped. */
struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 256 * 1024);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} miss_events SEC(".maps");

struct miss_rate {
	u64 window_start;
	u32 count;
};

/* Per CPU: misses sent in the current second. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, u32);
	__type(value, struct miss_rate);
} miss_rate_map SEC(".maps");

/* Template for a new stats entry (too big for the BPF stack). */
struct cg_stats empty_stats;

/* One measured wait: whose it is and what it was measured against. */
struct wait_sample {
	u64 slo_cgid;
	u64 budget_ns;
	u32 importance;
	u64 wait_ns;
	u64 ran_at;   /* when the wait ended (the task got a CPU) */
};

static bool miss_rate_ok(u64 now)
{
	u32 zero = 0;
	struct miss_rate *r = bpf_map_lookup_elem(&miss_rate_map, &zero);

	if (!r)
		return false;
	if (now - r->window_start >= 1000 * NSEC_PER_MSEC) {
		r->window_start = now;
		r->count = 0;
	}
	if (r->count >= MISS_EVENTS_PER_CPU_PER_SEC)
		return false;
	r->count++;
	return true;
}

static void report_miss(struct task_struct *p, const struct wait_sample *w)
{
	struct miss_event *ev;

	if (!miss_rate_ok(w->ran_at)) {
		stat_inc(SLO_CNT_miss_drops);
		return;
	}
	ev = bpf_ringbuf_reserve(&miss_events, sizeof(*ev), 0);
	if (!ev) {
		stat_inc(SLO_CNT_miss_drops);
		return;
	}
	ev->cgroup_id = w->slo_cgid;
	ev->wait_ns = w->wait_ns;
	ev->budget_ns = w->budget_ns;
	ev->at_ns = w->ran_at;
	ev->pid = BPF_CORE_READ(p, pid);
	ev->cpu = bpf_get_smp_processor_id();
	bpf_probe_read_kernel_str(ev->comm, sizeof(ev->comm), p->comm);
	bpf_ringbuf_submit(ev, 0);
	stat_inc(SLO_CNT_miss_events);
}

/* Puts one wait of task p into its SLO cgroup's stats; a miss also goes on the ring buffer. */
static void record_wait(struct task_struct *p, const struct wait_sample *w)
{
	struct cg_stats *st;
	u32 bucket;

	st = bpf_map_lookup_elem(&stats_map, &w->slo_cgid);
	if (!st) {
		bpf_map_update_elem(&stats_map, &w->slo_cgid, &empty_stats, BPF_NOEXIST);
		st = bpf_map_lookup_elem(&stats_map, &w->slo_cgid);
		if (!st)
			return;
	}
	st->budget_ns = w->budget_ns;
	st->importance = w->importance;
	__sync_fetch_and_add(&st->runs, 1);
	__sync_fetch_and_add(&st->wait_sum_ns, w->wait_ns);
	if (w->wait_ns > st->wait_max_ns)
		st->wait_max_ns = w->wait_ns;
	bucket = policy_hist_bucket(w->wait_ns);
	if (bucket < HIST_BUCKETS)
		__sync_fetch_and_add(&st->hist[bucket], 1);
	if (w->wait_ns > w->budget_ns) {
		__sync_fetch_and_add(&st->misses, 1);
		report_miss(p, w);
	}
}

#endif /* SCX_SLO_MEASURE_BPF_H */
