/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The observer: SLO tails and noisy neighbours on kernels without sched_ext.
 *
 * What it measures
 * ----------------
 * Tracing programs on the scheduler's own tracepoints (tp_btf: sched_wakeup, sched_wakeup_new,
 * sched_switch), so the kernel's scheduler stays as it is. For every task whose cgroup, or an
 * ancestor, has an SLO in slo_map (slo_lookup.bpf.h, the scheduler's own lookup and maps), each
 * run-queue wait goes into the same stats as the scheduler keeps (measure.bpf.h): a histogram,
 * runs, total and worst wait, misses against the budget, each miss on the same rate-limited ring
 * buffer. A wait starts when the task is woken, or when it is switched out while still runnable
 * (preempted, or out of its slice), and ends when it is switched in.
 *
 * Who held the CPU
 * ----------------
 * Each CPU keeps its last OBSERVE_RUN_HISTORY runs: when each began and the cgroup of the task
 * that ran, consecutive runs of one cgroup merged into one. When an SLO task ends a wait, the wait
 * is laid over that history and each cgroup that ran on the CPU meanwhile is charged the part of
 * the wait it held, in the offenders map keyed {SLO cgroup, cgroup}. So a pod starved by four hog
 * containers names all four, and one preempted by a kworker just before it ran does not get the
 * hogs' blame pinned on the kworker. Time before the oldest run kept is charged to
 * OFFENDER_UNSEEN, time the CPU was idle to OFFENDER_IDLE (the wake-up itself; or the task waited
 * on another CPU's queue and was moved here, a case this history cannot see).
 *
 * The cost
 * --------
 * This runs on every context switch and wake-up of the machine, so the common path is a few loads
 * and at most two lookups: a switch records the next task's cgroup in the CPU's history (three
 * pointer loads, a per-CPU array slot) and looks up the two tasks' storage; a wake-up looks up or
 * creates the task's storage and checks its cached SLO. Only the end of an SLO task's wait walks
 * the history (at most OBSERVE_RUN_HISTORY steps, one offenders update per step). No loop over
 * CPUs, no open-coded iterators: bounded loops only, so it loads on older kernels (see
 * docs/observe.md for the oldest).
 *
 * Its own cpu.max throttling
 * --------------------------
 * A throttled cgroup's tasks wait while its quota is spent, and the CPU runs others or nothing
 * meanwhile; the wait and its charges here include that time. The kernel counts it per cgroup
 * (cpu.stat: nr_throttled, throttled_usec), which user space reads beside these maps, so a pod
 * starved by its own limit is not blamed on its neighbours.
 */
#include "common.bpf.h"
#include "slo_lookup.bpf.h"
#include "measure.bpf.h"

char _license[] SEC("license") = "GPL";

/* ---- maps ------------------------------------------------------------------------------ */

/* Pinned: CPU time other cgroups held while an SLO cgroup's tasks waited (scx_slo.h). */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, OFFENDERS_MAX_ENTRIES);
	__type(key, struct offender_key);
	__type(value, struct offender_stats);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} offenders SEC(".maps");

/* Per task: its SLO, cached like the scheduler's, and the start of its current wait. */
struct obs_task {
	u64 own_cgid;       /* the task's cgroup when the SLO was resolved */
	u64 gen;            /* control.gen when the SLO was resolved */
	u64 slo_cgid;       /* cgroup carrying the SLO, 0 if none */
	u64 budget_ns;
	u32 importance;
	u32 resolved;
	u64 wait_from;      /* start of the current wait, 0 when not waiting (or not an SLO task) */
};

struct {
	__uint(type, BPF_MAP_TYPE_TASK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct obs_task);
} obs_task_stor SEC(".maps");

/* One run on a CPU: from start until the next run's start (the newest: until now). */
struct cpu_run {
	u64 start;          /* 0: never used */
	u64 cgid;           /* the cgroup of the task that ran, OFFENDER_IDLE for the idle task */
};

struct cpu_runs {
	u32 head;           /* index of the newest run, modulo OBSERVE_RUN_HISTORY */
	struct cpu_run run[OBSERVE_RUN_HISTORY];
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, u32);
	__type(value, struct cpu_runs);
} cpu_runs_map SEC(".maps");

_Static_assert((OBSERVE_RUN_HISTORY & (OBSERVE_RUN_HISTORY - 1)) == 0,
	       "OBSERVE_RUN_HISTORY must be a power of two");

/* ---- tasks ----------------------------------------------------------------------------- */

/* Before Linux 5.14 the task's state was `long state`. */
struct task_struct___pre_5_14 {
	long state;
} __attribute__((preserve_access_index));

/* task_struct.on_cpu is an int up to Linux 6.x and a u8 since. */
struct task_struct___on_cpu_int {
	int on_cpu;
} __attribute__((preserve_access_index));

/* p runs on a CPU, or is being switched out of one. */
static __always_inline bool on_a_cpu(struct task_struct *p)
{
	if (bpf_core_field_size(p->on_cpu) == sizeof(int))
		return ((struct task_struct___on_cpu_int *)p)->on_cpu != 0;
	return p->on_cpu != 0;
}

/* prev, switched out, stays on the run-queue: preempted, or it had not gone to sleep. */
static __always_inline bool still_runnable(struct task_struct *prev, bool preempt)
{
	if (preempt)
		return true;
	if (bpf_core_field_exists(prev->__state))
		return prev->__state == 0;
	return ((struct task_struct___pre_5_14 *)prev)->state == 0;
}

/* The task's SLO, looked up again only when its cgroup or control.gen changed. */
static __always_inline bool task_has_slo(struct task_struct *p, struct obs_task *t)
{
	struct cgroup *cgrp = task_dfl_cgroup(p);
	struct slo_found found;
	u64 cgid = cgrp->kn->id;
	u64 gen = slo_gen();

	if (t->resolved && t->own_cgid == cgid && t->gen == gen)
		return t->slo_cgid != 0;
	t->resolved = 1;
	t->own_cgid = cgid;
	t->gen = gen;
	t->slo_cgid = 0;
	if (slo_lookup(cgrp, &found)) {
		t->slo_cgid = found.cgid;
		t->budget_ns = found.budget_ns;
		t->importance = found.importance;
	}
	return t->slo_cgid != 0;
}

/* A wait of p starts now, if p has an SLO and is not waiting already. */
static __always_inline void wait_begins(struct task_struct *p, u64 now)
{
	struct obs_task *t = bpf_task_storage_get(&obs_task_stor, p, 0,
						  BPF_LOCAL_STORAGE_GET_F_CREATE);

	if (t && !t->wait_from && task_has_slo(p, t))
		t->wait_from = now;
}

/* ---- who held the CPU ------------------------------------------------------------------- */

static __always_inline u64 task_cgid(struct task_struct *p)
{
	if (p->pid == 0)
		return OFFENDER_IDLE;
	return task_dfl_cgroup(p)->kn->id;
}

/* The CPU runs a task of cgroup cgid from now on. */
static __always_inline void run_begins(struct cpu_runs *r, u64 cgid, u64 now)
{
	struct cpu_run *run = &r->run[r->head & (OBSERVE_RUN_HISTORY - 1)];

	if (run->start && run->cgid == cgid)
		return;
	r->head++;
	run = &r->run[r->head & (OBSERVE_RUN_HISTORY - 1)];
	run->start = now;
	run->cgid = cgid;
}

/* cgid held the CPU for ns of the SLO cgroup's wait that began at from. */
static void charge(u64 slo_cgid, u64 cgid, u64 ns, u64 from, bool miss)
{
	struct offender_key key = { .slo_cgid = slo_cgid, .cgid = cgid };
	struct offender_stats *st = bpf_map_lookup_elem(&offenders, &key);

	if (!st) {
		struct offender_stats zero = {};

		bpf_map_update_elem(&offenders, &key, &zero, BPF_NOEXIST);
		st = bpf_map_lookup_elem(&offenders, &key);
		if (!st)
			return;
	}
	__sync_fetch_and_add(&st->wait_ns, ns);
	if (miss)
		__sync_fetch_and_add(&st->miss_ns, ns);
	/*
	 * A wait is counted once per cgroup although the history may hold the cgroup twice (other
	 * cgroups ran in between). A wait is charged on one CPU in one go, so only another wait of
	 * the same SLO cgroup charging the same cgroup at that very moment can make this count one
	 * wait twice.
	 */
	if (st->last_wait_ns != from) {
		st->last_wait_ns = from;
		__sync_fetch_and_add(&st->waits, 1);
		if (miss)
			__sync_fetch_and_add(&st->misses, 1);
	}
}

/* Charges the wait [from, now) of an SLO cgroup's task to the cgroups that ran on this CPU. */
static void blame(struct cpu_runs *r, u64 slo_cgid, u64 from, u64 now, bool miss)
{
	u32 head = r->head, k;
	u64 end = now;

	for (k = 0; k < OBSERVE_RUN_HISTORY; k++) {
		struct cpu_run *run = &r->run[(head - k) & (OBSERVE_RUN_HISTORY - 1)];
		u64 start = run->start;

		if (!start || end <= from)
			break;
		if (end > start)
			charge(slo_cgid, run->cgid, end - (start > from ? start : from), from, miss);
		end = start;
	}
	if (end > from)
		charge(slo_cgid, OFFENDER_UNSEEN, end - from, from, miss);
}

/* ---- tracepoints ------------------------------------------------------------------------ */

static __always_inline void on_wakeup(struct task_struct *p)
{
	/* Woken before it got to sleep, still on its CPU: no wait. */
	if (on_a_cpu(p))
		return;
	wait_begins(p, bpf_ktime_get_ns());
}

SEC("tp_btf/sched_wakeup")
int BPF_PROG(obs_wakeup, struct task_struct *p)
{
	on_wakeup(p);
	return 0;
}

SEC("tp_btf/sched_wakeup_new")
int BPF_PROG(obs_wakeup_new, struct task_struct *p)
{
	on_wakeup(p);
	return 0;
}

/*
 * next gets the CPU: its wait (if any) ends and is recorded and blamed; then the CPU's history
 * moves on to next's cgroup; prev, if still runnable, starts a new wait. The fourth argument
 * (prev_state, 5.18+) is not used, so older kernels attach too.
 */
SEC("tp_btf/sched_switch")
int BPF_PROG(obs_switch, bool preempt, struct task_struct *prev, struct task_struct *next)
{
	u64 now = bpf_ktime_get_ns();
	struct cpu_runs *r;
	struct obs_task *t;
	u32 zero = 0;

	r = bpf_map_lookup_elem(&cpu_runs_map, &zero);
	if (next->pid != 0) {
		t = bpf_task_storage_get(&obs_task_stor, next, 0, 0);
		if (t && t->wait_from) {
			struct wait_sample w = {
				.slo_cgid = t->slo_cgid,
				.budget_ns = t->budget_ns,
				.importance = t->importance,
				.wait_ns = now - t->wait_from,
				.ran_at = now,
			};

			record_wait(next, &w);
			if (r)
				blame(r, w.slo_cgid, t->wait_from, now, w.wait_ns > w.budget_ns);
			t->wait_from = 0;
		}
	}
	if (r)
		run_begins(r, task_cgid(next), now);
	if (prev->pid != 0 && still_runnable(prev, preempt))
		wait_begins(prev, now);
	return 0;
}

/*
 * A cgroup of the unified hierarchy is removed: drop its SLO and stats here, as the scheduler does
 * in ops.cgroup_exit, so nothing leaks while no agent runs. (Its offenders entries age out of the
 * LRU map, and user space drops them with the SLO.)
 */
SEC("tp_btf/cgroup_rmdir")
int BPF_PROG(obs_cgroup_rmdir, struct cgroup *cgrp, const char *path)
{
	u64 id;

	/* The unified hierarchy is hierarchy 0; v1 hierarchies number their cgroups separately. */
	if (cgrp->root->hierarchy_id != 0)
		return 0;
	id = cgrp->kn->id;
	bpf_map_delete_elem(&slo_map, &id);
	bpf_map_delete_elem(&stats_map, &id);
	return 0;
}
