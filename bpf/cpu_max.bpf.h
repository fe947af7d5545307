/* SPDX-License-Identifier: GPL-2.0 */
/*
 * cpu.max for scx_slo. While a sched_ext scheduler is attached, the kernel stops enforcing a
 * cgroup's CPU limit (the fair class's bandwidth control no longer sees its tasks) and passes the
 * limit to the scheduler instead: ops.cgroup_init and ops.cgroup_set_bandwidth. Kubernetes sets
 * CPU limits this way, so scx_slo enforces them itself:
 *
 *  - CPU time a task uses is charged to its cgroup's current period (stopping), and a running task
 *    gets no longer a slice than what is left of the quota (running).
 *  - A task of a cgroup that has used its quota is held back in THROTTLE_DSQ, ordered by the end
 *    of the period, instead of being queued (enqueue).
 *  - When the period ends, dispatch moves the held tasks back into the shared queue; a timer
 *    kicks a CPU at that moment so that an otherwise idle machine does not leave them waiting.
 *
 * The limit of the task's own cgroup is enforced (where Kubernetes and systemd put it for a
 * container or a service); ancestors' limits are not. Tasks of a cgroup running on several CPUs at
 * once can overrun a period by up to a tick each; the overrun is paid back in the next period. A period is at most 1 s, far inside the
 * kernel's 5 s watchdog, so a held task never looks stalled.
 */
#ifndef SCX_SLO_CPU_MAX_BPF_H
#define SCX_SLO_CPU_MAX_BPF_H

#include "sched.bpf.h"

#define CLOCK_MONOTONIC 1
/* The iterator inside a bpf_for_each() loop (libbpf's macro names it ___it). */
#ifndef BPF_FOR_EACH_ITER
#define BPF_FOR_EACH_ITER (&___it)
#endif
/* Overrun carried into later periods as debt, in quotas: at most 3 periods held (3 s at most,
 * inside the 5 s watchdog). */
#define MAX_DEBT_QUOTAS 2
/* A task that starts running after its cgroup's quota is gone gets this long, then is held. */
#define OVERDRAWN_SLICE_NS (50 * NSEC_PER_USEC)

int bpf_iter_scx_dsq_new(struct bpf_iter_scx_dsq *it, u64 dsq_id, u64 flags) __ksym __weak;
struct task_struct *bpf_iter_scx_dsq_next(struct bpf_iter_scx_dsq *it) __ksym __weak;
void bpf_iter_scx_dsq_destroy(struct bpf_iter_scx_dsq *it) __ksym __weak;
/* Renamed in 6.13: scx_bpf_dispatch_*from_dsq* -> scx_bpf_dsq_move*. */
void scx_bpf_dsq_move_set_vtime(struct bpf_iter_scx_dsq *it__iter, u64 vtime) __ksym __weak;
bool scx_bpf_dsq_move_vtime(struct bpf_iter_scx_dsq *it__iter, struct task_struct *p, u64 dsq_id,
			    u64 enq_flags) __ksym __weak;
void scx_bpf_dispatch_from_dsq_set_vtime(struct bpf_iter_scx_dsq *it__iter, u64 vtime) __ksym __weak;
bool scx_bpf_dispatch_vtime_from_dsq(struct bpf_iter_scx_dsq *it__iter, struct task_struct *p,
				     u64 dsq_id, u64 enq_flags) __ksym __weak;

/* One limited cgroup; no entry means no limit. */
struct cg_bw {
	u64 period_ns;
	u64 quota_ns;
	u64 period_end;  /* end of the current period, bw_now() clock; 0 until first charged */
	u64 used_ns;     /* CPU used by the cgroup's tasks in the current period */
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, SLO_MAP_MAX_ENTRIES);
	__type(key, u64);
	__type(value, struct cg_bw);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} bw_map SEC(".maps");

struct unthrottle_timer {
	struct bpf_timer timer;
};

/*
 * Pinned although it is state of one load: the kernel cancels a map's BPF timers once no
 * user-space reference to the map is left, which for an unpinned map is when the loader exits.
 */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, u32);
	__type(value, struct unthrottle_timer);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} unthrottle_timer_map SEC(".maps");

/* The earliest period end a held task waits for; U64_MAX when none is held. Racy by design:
 * a stale value only makes one dispatch look at THROTTLE_DSQ early or the timer fire late. */
u64 next_unthrottle_at = (u64)-1;

/* Bumped whenever a limit is set or dropped, so tasks re-check whether their cgroup has one. */
u64 bw_gen = 1;

/*
 * Periods and release times run on CLOCK_MONOTONIC, the release timer's own clock, not on the
 * run-queue clock the rest of scx_slo uses: a release due by one clock may not yet be due by the
 * other when the timer fires, and nothing would look again until the next dispatch.
 */
static __always_inline u64 bw_now(void)
{
	return bpf_ktime_get_ns();
}

/* Set by the loader: on unless it is given --no-enforce-cpu-max. */
const volatile bool enforce_cpu_max;

static void bw_set(struct cgroup *cgrp, u64 period_us, u64 quota_us)
{
	u64 id = BPF_CORE_READ(cgrp, kn, id);
	struct cg_bw bw = {};

	if (!enforce_cpu_max)
		return;
	/* "max" (no limit) arrives as an all-ones quota. */
	if (!period_us || !quota_us || quota_us >= ((u64)-1) / NSEC_PER_USEC) {
		bpf_map_delete_elem(&bw_map, &id);
	} else {
		bw.period_ns = period_us * NSEC_PER_USEC;
		bw.quota_ns = quota_us * NSEC_PER_USEC;
		bpf_map_update_elem(&bw_map, &id, &bw, BPF_ANY);
	}
	/* After the map changed, so a task that sees the new generation finds the new entry. */
	__sync_fetch_and_add(&bw_gen, 1);
}

/*
 * The limit of the task's cgroup, NULL if it has none. Most tasks have none; they learn that once
 * per change of limits instead of paying a hash lookup on every enqueue, run and stop.
 */
static __always_inline struct cg_bw *task_bw(struct task_ctx *tctx)
{
	u64 gen = bw_gen;
	struct cg_bw *bw;

	if (tctx->bw_gen == gen && !tctx->bw_limited)
		return NULL;
	bw = bpf_map_lookup_elem(&bw_map, &tctx->own_cgid);
	tctx->bw_limited = bw != NULL;
	tctx->bw_gen = gen;
	return bw;
}

/*
 * Start a new period once the current one is over (periods stay aligned to the first). Slices end
 * on the scheduler tick, so a period can overrun its quota by up to a tick per CPU; like the fair
 * class, the overrun is carried into the next periods as debt (up to MAX_DEBT_QUOTAS), so the
 * limit holds on average. An idle gap of whole periods pays it back.
 */
static void bw_roll(struct cg_bw *bw, u64 now)
{
	u64 periods, allowed;

	if (!bw->period_end) {
		bw->period_end = now + bw->period_ns;
		bw->used_ns = 0;
		return;
	}
	if (now < bw->period_end)
		return;
	periods = (now - bw->period_end) / bw->period_ns + 1;
	bw->period_end += periods * bw->period_ns;
	allowed = periods * bw->quota_ns;
	if (bw->used_ns <= allowed)
		bw->used_ns = 0;
	else if (bw->used_ns - allowed > MAX_DEBT_QUOTAS * bw->quota_ns)
		bw->used_ns = MAX_DEBT_QUOTAS * bw->quota_ns;
	else
		bw->used_ns -= allowed;
}

/* ops.stopping: charge the CPU the task just used to its cgroup's period. */
static void bw_charge(struct task_ctx *tctx, u64 ran_ns)
{
	struct cg_bw *bw = task_bw(tctx);

	if (!bw)
		return;
	bw_roll(bw, bw_now());
	__sync_fetch_and_add(&bw->used_ns, ran_ns);
}

/* select_cpu: whether the task's cgroup has used this period's quota (enqueue will hold it). */
static bool bw_exhausted(struct task_ctx *tctx)
{
	struct cg_bw *bw = task_bw(tctx);

	if (!bw)
		return false;
	bw_roll(bw, bw_now());
	return bw->used_ns >= bw->quota_ns;
}

/* ops.running: no longer a slice than the quota left in this period. */
static void bw_limit_slice(struct task_struct *p, struct task_ctx *tctx)
{
	struct cg_bw *bw = task_bw(tctx);
	u64 left;

	if (!bw)
		return;
	bw_roll(bw, bw_now());
	left = bw->used_ns < bw->quota_ns ? bw->quota_ns - bw->used_ns : OVERDRAWN_SLICE_NS;
	if (left < p->scx.slice)
		p->scx.slice = left;
}

/* Re-checks held tasks this often while any are held, whatever happened to the timer's target. */
#define UNTHROTTLE_RECHECK_NS (1000 * NSEC_PER_USEC)

static int unthrottle_timerfn(void *map, int *key, struct bpf_timer *timer)
{
	u64 at = next_unthrottle_at, now = bw_now();

	/* Rescheduling this CPU runs ops.dispatch, which releases the tasks that are due. */
	scx_bpf_kick_cpu(bpf_get_smp_processor_id(), 0);
	/*
	 * Come back while tasks are held: that dispatch may run on a CPU busy with other work, or
	 * release nothing; a release that finds a later period end re-arms the timer earlier.
	 */
	if (at != (u64)-1)
		bpf_timer_start(timer, (at > now ? at - now : 0) + UNTHROTTLE_RECHECK_NS, 0);
	return 0;
}

static void arm_unthrottle(u64 at, u64 now)
{
	struct unthrottle_timer *ut;
	u32 zero = 0;

	if (at >= next_unthrottle_at)
		return;
	next_unthrottle_at = at;
	ut = bpf_map_lookup_elem(&unthrottle_timer_map, &zero);
	if (ut)
		bpf_timer_start(&ut->timer, at > now ? at - now : 0, 0);
}

/* ops.enqueue: hold the task back if its cgroup has used this period's quota. */
static bool bw_hold(struct task_struct *p, struct task_ctx *tctx, u64 enq_flags)
{
	struct cg_bw *bw = task_bw(tctx);
	u64 now, release_at;

	if (!bw)
		return false;
	now = bw_now();
	bw_roll(bw, now);
	if (bw->used_ns < bw->quota_ns)
		return false;
	/* Held until the period in which the debt is paid off. */
	release_at = bw->period_end + (bw->used_ns - bw->quota_ns) / bw->quota_ns * bw->period_ns;
	insert_vtime_into(p, THROTTLE_DSQ, max_slice_ns, release_at, enq_flags);
	arm_unthrottle(release_at, now);
	stat_inc(SLO_CNT_throttled);
	return true;
}

static __always_inline void move_vtime_from(struct bpf_iter_scx_dsq *it, struct task_struct *p,
					    u64 vtime, u64 dsq)
{
	if (bpf_ksym_exists(scx_bpf_dsq_move_vtime)) {
		scx_bpf_dsq_move_set_vtime(it, vtime);
		scx_bpf_dsq_move_vtime(it, p, dsq, 0);
	} else {
		scx_bpf_dispatch_from_dsq_set_vtime(it, vtime);
		scx_bpf_dispatch_vtime_from_dsq(it, p, dsq, 0);
	}
}

/* ops.dispatch: move held tasks whose period has ended back into the shared queue. */
static void bw_release_due(void)
{
	struct task_struct *p;
	u64 now = bw_now(), next = (u64)-1;
	s32 cpu;

	if (now < next_unthrottle_at)
		return;
	bpf_for_each(scx_dsq, p, THROTTLE_DSQ, 0) {
		struct task_ctx *tctx;
		u64 due = p->scx.dsq_vtime;

		if (due > now) {
			next = due;
			break;
		}
		tctx = lookup_task_ctx(p);
		move_vtime_from(BPF_FOR_EACH_ITER, p,
				tctx ? queue_deadline(p, tctx, tctx->deadline, now_ns())
				     : default_deadline(),
				SHARED_DSQ);
		/* It may not be allowed on this CPU: wake one it may use. */
		cpu = scx_bpf_pick_idle_cpu(p->cpus_ptr, 0);
		if (cpu >= 0)
			scx_bpf_kick_cpu(cpu, SCX_KICK_IDLE);
	}
	next_unthrottle_at = (u64)-1;
	if (next != (u64)-1)
		arm_unthrottle(next, now);
}

static s32 bw_init(void)
{
	struct unthrottle_timer *ut;
	u32 zero = 0;
	s32 err;

	err = scx_bpf_create_dsq(THROTTLE_DSQ, -1);
	if (err)
		return err;
	ut = bpf_map_lookup_elem(&unthrottle_timer_map, &zero);
	if (!ut)
		return -ENOMEM;
	bpf_timer_init(&ut->timer, &unthrottle_timer_map, CLOCK_MONOTONIC);
	bpf_timer_set_callback(&ut->timer, unthrottle_timerfn);
	return 0;
}

#endif /* SCX_SLO_CPU_MAX_BPF_H */
