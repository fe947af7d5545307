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
 * (preempted, or out of its slice), and ends when it is switched in, as the scheduler's does
 * (ops.runnable to ops.running), timed with the same clock (bpf_ktime_get_ns).
 *
 * The kernel keeps a wait of its own (sched_info.last_queued, run_delay), but on the run-queue
 * clock, which __schedule does not update after a wake-up that preempts (rq_clock_skip_update):
 * the time from that wake-up to the switch, a non-preemptible kernel section's whole delay
 * included, would read as no wait at all. So waits are timed here, for SLO tasks only.
 *
 * Who held the CPU
 * ----------------
 * Each CPU keeps its last OBSERVE_RUN_HISTORY runs: when each began (run-queue clock) and the
 * cgroup of the task that ran, consecutive runs of one cgroup merged into one. When an SLO task
 * ends a wait, the wait is laid over that history and each cgroup that ran on the CPU meanwhile
 * is charged the part of the wait it held, in the offenders map keyed {SLO cgroup, cgroup}. So a
 * pod starved by four hog containers names all four, and one preempted by a kworker just before
 * it ran does not get the hogs' blame pinned on the kworker. Time before the oldest run kept is
 * charged to OFFENDER_UNSEEN, time the CPU was idle to OFFENDER_IDLE (the wake-up itself; or the
 * task waited on another CPU's queue and was moved here, which this CPU's history cannot see).
 *
 * The cost
 * --------
 * This runs on every context switch and wake-up of the machine, so the common path reads no
 * clock and calls no helper: the run-queue clock and CPU through the task's cfs_rq (the
 * scheduler has just updated that clock; stale by the same skip at most, which only shifts a
 * run's start in the history), the task's cgroup, a slot of a direct-mapped cache of cgroups'
 * SLOs, the CPU's history. Only a task with an SLO reads the clock, looks up its task storage
 * and, at the end of a wait, walks the history (at most OBSERVE_RUN_HISTORY steps, one offenders
 * update per step). No loop over CPUs, no open-coded iterators: bounded loops only, so it loads
 * on older kernels (docs/observe.md has the oldest).
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

/*
 * Benchmark builds only (build/observe_baseline.bpf.o): every program returns at once, so the
 * cost of running programs on these tracepoints at all can be told from the observer's own.
 */
#ifdef OBSERVE_BASELINE
#define BASELINE_RETURN() return 0
#else
#define BASELINE_RETURN() do { } while (0)
#endif

/* CPUs with a run history of their own; the observer measures nothing on CPUs beyond. */
#define OBSERVE_MAX_CPUS 4096
/* Slots of the cgroup -> SLO cache (a power of two). */
#define SLO_CACHE_SLOTS 8192

_Static_assert((OBSERVE_RUN_HISTORY & (OBSERVE_RUN_HISTORY - 1)) == 0,
	       "OBSERVE_RUN_HISTORY must be a power of two");
_Static_assert((SLO_CACHE_SLOTS & (SLO_CACHE_SLOTS - 1)) == 0,
	       "SLO_CACHE_SLOTS must be a power of two");

/* ---- maps ------------------------------------------------------------------------------ */

/* Pinned: CPU time other cgroups held while an SLO cgroup's tasks waited (scx_slo.h). */
struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(max_entries, OFFENDERS_MAX_ENTRIES);
	__type(key, struct offender_key);
	__type(value, struct offender_stats);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} offenders SEC(".maps");

/* Per task with an SLO: the start of its current wait. */
struct obs_task {
	u64 wait_from;      /* bpf_ktime_get_ns(); 0 when not waiting */
};

struct {
	__uint(type, BPF_MAP_TYPE_TASK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct obs_task);
} obs_task_stor SEC(".maps");

/*
 * A cgroup's SLO, cached in the slot its id maps to. A slot belongs to the cgroup that claimed it
 * (compare-and-swap on a free slot) until that cgroup is removed (obs_cgroup_rmdir), so a reader
 * never finds another cgroup's SLO under its own id; a cgroup whose slot is taken is looked up
 * afresh each time. The owner's entry is rewritten when control.gen moved, gen last; a free
 * slot's gen is 0, so a claim whose values are not written yet reads as stale.
 */
struct slo_slot {
	u64 cgid;           /* 0: free */
	u64 gen;            /* control.gen + 1 when written; 0: not yet */
	u64 slo_cgid;       /* 0: no SLO */
	u64 budget_ns;
	u32 importance;
};

struct slo_slot slo_cache[SLO_CACHE_SLOTS];

/* One run on a CPU: from start until the next run's start (the newest: until now). */
struct cpu_run {
	u64 start;          /* run-queue clock; 0: never used */
	u64 cgid;           /* the cgroup of the task that ran, OFFENDER_IDLE for the idle task */
};

/* Written on every switch of its CPU only: 64-byte aligned, so no two CPUs share a line. */
struct cpu_runs {
	u32 head;           /* index of the newest run, modulo OBSERVE_RUN_HISTORY */
	struct cpu_run run[OBSERVE_RUN_HISTORY];
} __attribute__((aligned(64)));

struct cpu_runs cpu_runs[OBSERVE_MAX_CPUS];

/* ---- SLOs -------------------------------------------------------------------------------- */

/* The SLO the tasks of cgroup cgrp (id cgid) are measured under; false if none. */
static __always_inline bool cgroup_slo(struct cgroup *cgrp, u64 cgid, struct slo_found *out)
{
	struct slo_slot *slot = &slo_cache[cgid & (SLO_CACHE_SLOTS - 1)];
	u64 gen = slo_gen();
	bool found;

	if (slot->cgid == cgid && slot->gen == gen + 1) {
		if (!slot->slo_cgid)
			return false;
		out->cgid = slot->slo_cgid;
		out->budget_ns = slot->budget_ns;
		out->importance = slot->importance;
		return true;
	}
	found = slo_lookup(cgrp, out);
	if (slot->cgid != cgid &&
	    (slot->cgid || __sync_val_compare_and_swap(&slot->cgid, 0, cgid) != 0))
		return found;
	slot->slo_cgid = found ? out->cgid : 0;
	slot->budget_ns = found ? out->budget_ns : 0;
	slot->importance = found ? out->importance : 0;
	slot->gen = gen + 1;
	return found;
}

/* ---- who held the CPU ------------------------------------------------------------------- */

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

/* cgid held the CPU for ns of the SLO cgroup's wait that began at wait_from (its own clock). */
static void charge(u64 slo_cgid, u64 cgid, u64 ns, u64 wait_from, bool miss)
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
	if (st->last_wait_ns != wait_from) {
		st->last_wait_ns = wait_from;
		__sync_fetch_and_add(&st->waits, 1);
		if (miss)
			__sync_fetch_and_add(&st->misses, 1);
	}
}

/*
 * Charges the wait [from, now) (run-queue clock) of an SLO cgroup's task to the cgroups that ran
 * on this CPU; wait_from tells the wait apart (charge).
 */
static void blame(struct cpu_runs *r, u64 slo_cgid, u64 from, u64 now, u64 wait_from, bool miss)
{
	u32 head = r->head, k;
	u64 end = now;

	for (k = 0; k < OBSERVE_RUN_HISTORY; k++) {
		struct cpu_run *run = &r->run[(head - k) & (OBSERVE_RUN_HISTORY - 1)];
		u64 start = run->start;

		if (!start || end <= from)
			break;
		if (end > start)
			charge(slo_cgid, run->cgid, end - (start > from ? start : from), wait_from,
			       miss);
		end = start;
	}
	if (end > from)
		charge(slo_cgid, OFFENDER_UNSEEN, end - from, wait_from, miss);
}

/* ---- tasks ----------------------------------------------------------------------------- */

/* task_struct.on_cpu is an int on Linux 6.x and a u8 on 7.3. */
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

/* Before Linux 5.14 the task's state was `long state`. */
struct task_struct___pre_5_14 {
	long state;
} __attribute__((preserve_access_index));

/* prev, switched out, stays on the run-queue: preempted, or it had not gone to sleep. */
static __always_inline bool still_runnable(struct task_struct *prev, bool preempt)
{
	if (preempt)
		return true;
	if (bpf_core_field_exists(prev->__state))
		return prev->__state == 0;
	return ((struct task_struct___pre_5_14 *)prev)->state == 0;
}

/* A wait of p starts now, if p has an SLO and is not waiting already. */
static __always_inline void wait_begins(struct task_struct *p)
{
	struct cgroup *cgrp = task_dfl_cgroup(p);
	struct slo_found slo;
	struct obs_task *t;

	if (!cgroup_slo(cgrp, cgrp->kn->id, &slo))
		return;
	t = bpf_task_storage_get(&obs_task_stor, p, 0, BPF_LOCAL_STORAGE_GET_F_CREATE);
	if (t && !t->wait_from)
		t->wait_from = bpf_ktime_get_ns();
}

/* next got the CPU at now (run-queue clock): its wait, if it has an SLO, is recorded and blamed. */
static __always_inline void wait_ends(struct task_struct *next, struct cgroup *cgrp, u64 cgid,
				      u64 now, struct cpu_runs *r)
{
	u64 from, ran_at, wait;
	struct slo_found slo;
	struct obs_task *t;

	if (!cgroup_slo(cgrp, cgid, &slo))
		return;
	t = bpf_task_storage_get(&obs_task_stor, next, 0, 0);
	if (!t || !t->wait_from)
		return;
	from = t->wait_from;
	t->wait_from = 0;
	ran_at = bpf_ktime_get_ns();
	wait = ran_at - from;
	{
		struct wait_sample w = {
			.slo_cgid = slo.cgid,
			.budget_ns = slo.budget_ns,
			.importance = slo.importance,
			.wait_ns = wait,
			.ran_at = ran_at,
		};

		record_wait(next, &w);
	}
	/* On the history's clock, the wait is the same stretch before now. */
	blame(r, slo.cgid, now > wait ? now - wait : 0, now, from, wait > slo.budget_ns);
}

/* ---- tracepoints ------------------------------------------------------------------------ */

static __always_inline void on_wakeup(struct task_struct *p)
{
	/* Woken before it got to sleep, still on its CPU: no wait. */
	if (on_a_cpu(p))
		return;
	wait_begins(p);
}

SEC("tp_btf/sched_wakeup")
int BPF_PROG(obs_wakeup, struct task_struct *p)
{
	BASELINE_RETURN();
	on_wakeup(p);
	return 0;
}

SEC("tp_btf/sched_wakeup_new")
int BPF_PROG(obs_wakeup_new, struct task_struct *p)
{
	BASELINE_RETURN();
	on_wakeup(p);
	return 0;
}

/*
 * next gets the CPU: its wait ends (recorded and blamed if it has an SLO), the CPU's history moves
 * on to next's cgroup, and prev, if still runnable, starts a new wait. The fourth argument
 * (prev_state, 5.18+) is not used, so older kernels attach too. The run-queue clock and CPU come
 * from prev's cfs_rq: every task's points to the run-queue of its CPU, whatever its class.
 */
SEC("tp_btf/sched_switch")
int BPF_PROG(obs_switch, bool preempt, struct task_struct *prev, struct task_struct *next)
{
	struct rq *rq = prev->se.cfs_rq->rq;
	u64 now = rq->clock, cgid = OFFENDER_IDLE;
	u32 cpu = rq->cpu;
	struct cpu_runs *r;

	BASELINE_RETURN();
	if (cpu >= OBSERVE_MAX_CPUS)
		return 0;
	r = &cpu_runs[cpu];
	if (next->pid != 0) {
		struct cgroup *cgrp = task_dfl_cgroup(next);

		cgid = cgrp->kn->id;
		wait_ends(next, cgrp, cgid, now, r);
	}
	run_begins(r, cgid, now);
	if (prev->pid != 0 && still_runnable(prev, preempt))
		wait_begins(prev);
	return 0;
}

/*
 * A cgroup of the unified hierarchy is removed: drop its SLO and stats here, as the scheduler does
 * in ops.cgroup_exit, so nothing leaks while no agent runs, and free its cache slot. (Its
 * offenders entries age out of the LRU map, and user space drops them with the SLO.)
 */
SEC("tp_btf/cgroup_rmdir")
int BPF_PROG(obs_cgroup_rmdir, struct cgroup *cgrp, const char *path)
{
	struct slo_slot *slot;
	u64 id;

	/* The unified hierarchy is hierarchy 0; v1 hierarchies number their cgroups separately. */
	if (cgrp->root->hierarchy_id != 0)
		return 0;
	id = cgrp->kn->id;
	bpf_map_delete_elem(&slo_map, &id);
	bpf_map_delete_elem(&stats_map, &id);
	slot = &slo_cache[id & (SLO_CACHE_SLOTS - 1)];
	if (slot->cgid == id) {
		slot->gen = 0;
		slot->cgid = 0;
	}
	return 0;
}
