/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The scheduler's arithmetic, free of kernel types so the same code is compiled into the BPF
 * program and into the host unit tests (test/native/policy_test.c). Callers provide __u64/__u32.
 */
#ifndef SCX_SLO_POLICY_H
#define SCX_SLO_POLICY_H

#include "scx_slo.h"

static inline __u64 policy_clamp(__u64 v, __u64 lo, __u64 hi)
{
	return v < lo ? lo : v > hi ? hi : v;
}

static inline __u64 policy_clamp_budget(__u64 budget_ns)
{
	return policy_clamp(budget_ns, SLO_BUDGET_MIN_NS, SLO_BUDGET_MAX_NS);
}

static inline __u32 policy_clamp_importance(__u32 importance)
{
	return policy_clamp(importance, SLO_IMPORTANCE_MIN, SLO_IMPORTANCE_MAX);
}

static inline __u32 policy_clamp_weight(__u32 weight)
{
	return policy_clamp(weight, TASK_WEIGHT_MIN, TASK_WEIGHT_MAX);
}

/* Wrap-safe "a is earlier than b" for nanosecond clocks. */
static inline int policy_before(__u64 a, __u64 b)
{
	return (__s64)(a - b) < 0;
}

/*
 * CPU time a task pays on its deadline: used * 100 / importance * 100 / weight. Importance 100
 * pays wall time one for one, importance 1 pays a hundredfold, so a cgroup that burns CPU pushes
 * its own deadline out and falls behind others in proportion to how little it matters. weight is
 * the task's charge weight, from its share of the machine (policy_share_weight): 100, one CPU's
 * worth, changes nothing.
 */
static inline __u64 policy_charge(__u64 used_ns, __u32 importance, __u32 weight)
{
	return used_ns * SLO_IMPORTANCE_MAX / policy_clamp_importance(importance) *
	       TASK_WEIGHT_DFL / policy_clamp_weight(weight);
}

/*
 * How far past a fresh deadline a task's debt may reach (policy_deadline's lag_cap_ns). Every
 * task that keeps burning CPU ends up at that cap, and from there tasks share in turn, so the cap
 * alone would give a nice-19 hog as much CPU as a nice-0 one. A task below the default weight
 * may therefore fall further behind: slice * (100 - weight) / weight more, which lets a task at
 * the default weight run 100 / weight slices for each of its own, the kernel's ratio. Weights
 * above the default get no more than it. The longest lead (weight 1, 5 ms slices) is about
 * half a second, far inside the kernel's runnable-task watchdog.
 */
static inline __u64 policy_lag_cap(__u64 lag_cap_ns, __u64 slice_ns, __u32 weight)
{
	__u32 w = policy_clamp_weight(weight);

	if (w >= TASK_WEIGHT_DFL)
		return lag_cap_ns;
	return lag_cap_ns + slice_ns * (TASK_WEIGHT_DFL - w) / w;
}

/*
 * The deadline a task is queued with at time now. A fresh deadline is now + budget; a task that
 * has been charged more than that keeps its later deadline (no escape from charges by sleeping),
 * but never more than lag_cap_ns beyond the fresh one, so old debts expire.
 */
static inline __u64 policy_deadline(__u64 prev_dl, __u64 now, __u64 budget_ns, __u64 lag_cap_ns)
{
	__u64 fresh = now + budget_ns;

	if (policy_before(prev_dl, fresh))
		return fresh;
	if (policy_before(fresh + lag_cap_ns, prev_dl))
		return fresh + lag_cap_ns;
	return prev_dl;
}

/*
 * The budget a task is queued with: its own, up to SLO_QUEUE_BUDGET_MAX_NS. Misses are still
 * counted against the whole budget; only the order stops short of the watchdog.
 */
static inline __u64 policy_queue_budget(__u64 budget_ns)
{
	return budget_ns < SLO_QUEUE_BUDGET_MAX_NS ? budget_ns : SLO_QUEUE_BUDGET_MAX_NS;
}

/*
 * Whether a waking task with deadline waker_dl should take the CPU of a running task with
 * deadline running_dl. Only when the running task is due more than one budget later: among tasks
 * due at about the same time, a context switch costs more than the order gains, so they wait
 * their turn in the queue instead.
 */
static inline int policy_should_preempt(__u64 running_dl, __u64 waker_dl, __u64 waker_budget_ns)
{
	return policy_before(waker_dl + waker_budget_ns, running_dl);
}

/* A share of the whole machine, in fixed point: SHARE_ONE is all of it. */
#define SHARE_ONE (1ULL << 20)

/*
 * One level down the cpu controller's tree: an entity (a cgroup or a task) of weight w, among
 * runnable entities whose weights sum to sum, gets w / sum of its parent's share.
 */
static inline __u64 policy_share_step(__u64 share, __u32 weight, __u64 sum)
{
	return sum > weight ? share * weight / sum : share;
}

/*
 * The weight CPU time is charged at for a task whose share of the machine is share, on cpus
 * CPUs: 100 (nice 0) when the share is exactly one CPU, so a task that gets its share pays wall
 * time; less for a smaller share (it pays more for the same time), more for a larger one.
 */
static inline __u32 policy_share_weight(__u64 share, __u32 cpus)
{
	return policy_clamp_weight(share * cpus * TASK_WEIGHT_DFL / SHARE_ONE);
}

/* Time slice: bounded by the budget so an SLO task never holds a CPU past its own latency goal. */
static inline __u64 policy_slice(__u64 budget_ns, __u64 max_slice_ns, __u64 min_slice_ns)
{
	__u64 s = budget_ns < max_slice_ns ? budget_ns : max_slice_ns;

	return s < min_slice_ns ? min_slice_ns : s;
}

static inline __u32 policy_msb64(__u64 v)
{
	__u32 r = 0;

	if (v >> 32) { v >>= 32; r += 32; }
	if (v >> 16) { v >>= 16; r += 16; }
	if (v >> 8) { v >>= 8; r += 8; }
	if (v >> 4) { v >>= 4; r += 4; }
	if (v >> 2) { v >>= 2; r += 2; }
	if (v >> 1) { r += 1; }
	return r;
}

/* Histogram bucket of a wait (see HIST_* in scx_slo.h). */
static inline __u32 policy_hist_bucket(__u64 wait_ns)
{
	__u32 msb, sub, idx;

	if (wait_ns < (1ULL << HIST_MIN_SHIFT))
		return 0;
	msb = policy_msb64(wait_ns);
	sub = (wait_ns >> (msb - HIST_SUB_BITS)) & (HIST_SUBS - 1);
	idx = 1 + (msb - HIST_MIN_SHIFT) * HIST_SUBS + sub;
	return idx < HIST_BUCKETS - 1 ? idx : HIST_BUCKETS - 1;
}

/* Exclusive upper bound, in ns, of bucket idx (the last bucket has none: returns ~0). */
static inline __u64 policy_hist_upper_ns(__u32 idx)
{
	__u32 octave, sub;

	if (idx == 0)
		return 1ULL << HIST_MIN_SHIFT;
	if (idx >= HIST_BUCKETS - 1)
		return ~0ULL;
	octave = (idx - 1) / HIST_SUBS;
	sub = (idx - 1) % HIST_SUBS;
	return (__u64)(HIST_SUBS + sub + 1) << (HIST_MIN_SHIFT + octave - HIST_SUB_BITS);
}

#endif /* SCX_SLO_POLICY_H */
