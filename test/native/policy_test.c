// SPDX-License-Identifier: GPL-2.0
/*
 * Host unit tests for bpf/policy.h, the arithmetic compiled into the BPF scheduler.
 * Built and run by test/unit/policy-native.test.ts; prints "N passed, N failed" and, with
 * --bounds, the histogram bucket bounds as JSON for the TypeScript side to compare.
 */
#include <linux/types.h>
#include <stdio.h>
#include <string.h>

#include "../../bpf/policy.h"

static int passed, failed;

#define CHECK(cond)                                                                    \
	do {                                                                           \
		if (cond) {                                                            \
			passed++;                                                      \
		} else {                                                               \
			failed++;                                                      \
			fprintf(stderr, "FAIL %s:%d: %s\n", __FILE__, __LINE__, #cond); \
		}                                                                      \
	} while (0)

#define MS 1000000ULL

static void test_clamps(void)
{
	CHECK(policy_clamp_budget(0) == SLO_BUDGET_MIN_NS);
	CHECK(policy_clamp_budget(SLO_BUDGET_MIN_NS - 1) == SLO_BUDGET_MIN_NS);
	CHECK(policy_clamp_budget(50 * MS) == 50 * MS);
	CHECK(policy_clamp_budget(~0ULL) == SLO_BUDGET_MAX_NS);
	CHECK(policy_clamp_importance(0) == 1);
	CHECK(policy_clamp_importance(1000) == 100);
	CHECK(policy_clamp_importance(42) == 42);
}

static void test_charge(void)
{
	CHECK(policy_charge(1 * MS, 100, 100) == 1 * MS);   /* top importance pays wall time */
	CHECK(policy_charge(1 * MS, 50, 100) == 2 * MS);
	CHECK(policy_charge(1 * MS, 1, 100) == 100 * MS);
	CHECK(policy_charge(1 * MS, 0, 100) == 100 * MS);   /* clamped, never divides by zero */
	CHECK(policy_charge(0, 90, 100) == 0);
	/* the task's own weight: nice 19 and SCHED_IDLE (1) pay a hundredfold */
	CHECK(policy_charge(1 * MS, 100, 1) == 100 * MS);
	CHECK(policy_charge(1 * MS, 50, 1) == 200 * MS);
	CHECK(policy_charge(1 * MS, 100, 200) == MS / 2);
	CHECK(policy_charge(1 * MS, 100, 0) == 100 * MS);          /* clamped to 1 */
	CHECK(policy_charge(1 * MS, 100, 1000000) == MS / 100);    /* clamped to 10000 */
}

static void test_lag_cap(void)
{
	__u64 lag = 100 * MS, slice = 5 * MS;

	CHECK(policy_lag_cap(lag, slice, 100) == lag);   /* nice 0: unchanged */
	CHECK(policy_lag_cap(lag, slice, 300) == lag);   /* heavier: no more than nice 0 */
	CHECK(policy_lag_cap(lag, slice, 50) == lag + 5 * MS);
	CHECK(policy_lag_cap(lag, slice, 1) == lag + 495 * MS);
	CHECK(policy_lag_cap(lag, slice, 0) == lag + 495 * MS);   /* clamped to 1 */
}

/*
 * Two tasks that never sleep share one CPU: always the earlier deadline runs for a slice, is
 * charged and queued again. Returns the share of CPU task b got.
 */
static double share_of_b(__u32 weight_a, __u32 weight_b)
{
	__u64 now = 0, slice = 5 * MS, lag = 100 * MS, budget = 100 * MS;
	__u64 dl[2], ran[2] = { 0, 0 };
	__u32 weight[2] = { weight_a, weight_b };
	int i, t;

	for (t = 0; t < 2; t++)
		dl[t] = policy_deadline(0, now, budget, policy_lag_cap(lag, slice, weight[t]));
	for (i = 0; i < 4000; i++) {
		t = policy_before(dl[1], dl[0]) ? 1 : 0;
		now += slice;
		ran[t] += slice;
		dl[t] += policy_charge(slice, 50, weight[t]);
		dl[t] = policy_deadline(dl[t], now, budget, policy_lag_cap(lag, slice, weight[t]));
	}
	return (double)ran[1] / (double)(ran[0] + ran[1]);
}

/* The furthest a queued task's deadline can lie ahead stays well inside the 5 s watchdog. */
static void test_queue_budget(void)
{
	__u64 lag = 100 * MS, slice = 5 * MS, now = 1000 * MS, worst;

	CHECK(policy_queue_budget(1 * MS) == 1 * MS);
	CHECK(policy_queue_budget(500 * MS) == 500 * MS);
	CHECK(policy_queue_budget(SLO_BUDGET_MAX_NS) == SLO_QUEUE_BUDGET_MAX_NS);
	worst = policy_deadline(~0ULL / 2, now, policy_queue_budget(SLO_BUDGET_MAX_NS),
				policy_lag_cap(lag, slice, 1));
	CHECK(worst - now < 2000 * MS);
}

/* Among tasks that burn CPU, shares follow the kernel's weights (nice >= 0) and nobody starves. */
static void test_weighted_shares(void)
{
	double equal = share_of_b(100, 100), nice5 = share_of_b(100, 33), nice19 = share_of_b(100, 1);

	CHECK(equal > 0.45 && equal < 0.55);
	CHECK(nice5 > 0.20 && nice5 < 0.30);     /* the kernel: 33 / 133 = 0.25 */
	CHECK(nice19 > 0.002 && nice19 < 0.02);  /* the kernel: about 0.015; here about 0.01 */
}

/*
 * Negative nice counts through the share: nice -5 (weight 335) beside nice 0 in one cgroup on one
 * CPU is charged at its share of the machine (77 against 23).
 */
static void test_negative_nice(void)
{
	__u32 nice0 = policy_share_weight(policy_share_step(SHARE_ONE, 100, 435), 1);
	__u32 nice_5 = policy_share_weight(policy_share_step(SHARE_ONE, 335, 435), 1);
	double got = share_of_b(nice0, nice_5);

	CHECK(got > 0.72 && got < 0.82);   /* the kernel: 335 / 435 = 0.77 */
}

static void test_share_arithmetic(void)
{
	/* a cgroup of weight 300 beside one of 100, then one of two equal tasks in it */
	__u64 heavy = policy_share_step(SHARE_ONE, 300, 400);

	CHECK(heavy == SHARE_ONE * 3 / 4);
	CHECK(policy_share_step(heavy, 100, 200) == SHARE_ONE * 3 / 8);
	/* alone at its level (or a sum not yet caught up): the whole of the parent's share */
	CHECK(policy_share_step(SHARE_ONE, 100, 100) == SHARE_ONE);
	CHECK(policy_share_step(SHARE_ONE, 100, 0) == SHARE_ONE);
	/* exactly one CPU's worth is charged as nice 0; half a CPU pays double */
	CHECK(policy_share_weight(SHARE_ONE / 2, 2) == TASK_WEIGHT_DFL);
	CHECK(policy_share_weight(SHARE_ONE / 4, 2) == TASK_WEIGHT_DFL / 2);
	CHECK(policy_share_weight(SHARE_ONE, 2) == 2 * TASK_WEIGHT_DFL);
	CHECK(policy_share_weight(0, 2) == TASK_WEIGHT_MIN);   /* never free, never zero */
}

/*
 * Tasks that never sleep, in two cgroups of weights cg_weight[0..1] with n[0..1] tasks each, on
 * two CPUs: each round the two earliest deadlines run a slice, are charged at the weight their
 * cgroup's share gives them, and are queued again. Returns the CPU cgroup 0 got, in CPUs.
 */
static double cgroup0_cpus(const __u32 cg_weight[2], const int n[2])
{
	__u64 now = 0, slice = 5 * MS, lag = 100 * MS, budget = 100 * MS, ran0 = 0, total = 0;
	__u64 dl[16];
	__u32 w[16];
	int cg[16], nr = n[0] + n[1], i, t, round;

	for (t = 0; t < nr; t++) {
		__u64 share;

		cg[t] = t < n[0] ? 0 : 1;
		share = policy_share_step(SHARE_ONE, cg_weight[cg[t]], cg_weight[0] + cg_weight[1]);
		share = policy_share_step(share, TASK_WEIGHT_DFL, (__u64)n[cg[t]] * TASK_WEIGHT_DFL);
		w[t] = policy_share_weight(share, 2);
		dl[t] = policy_deadline(0, now, budget, policy_lag_cap(lag, slice, w[t]));
	}
	for (round = 0; round < 4000; round++) {
		int pick[2] = { -1, -1 };

		for (i = 0; i < 2; i++)
			for (t = 0; t < nr; t++)
				if (t != pick[0] && (pick[i] < 0 || policy_before(dl[t], dl[pick[i]])))
					pick[i] = t;
		now += slice;
		for (i = 0; i < 2; i++) {
			t = pick[i];
			total += slice;
			if (cg[t] == 0)
				ran0 += slice;
			dl[t] += policy_charge(slice, 50, w[t]);
			dl[t] = policy_deadline(dl[t], now, budget, policy_lag_cap(lag, slice, w[t]));
		}
	}
	return 2.0 * (double)ran0 / (double)total;
}

/* cpu.weight divides CPU between cgroups whatever their number of tasks, as the fair class does. */
static void test_cgroup_shares(void)
{
	const __u32 w300_100[2] = { 300, 100 }, w100_100[2] = { 100, 100 }, w1_100[2] = { 1, 100 };
	const int two_four[2] = { 2, 4 }, one_six[2] = { 1, 6 }, four_four[2] = { 4, 4 };
	double heavy = cgroup0_cpus(w300_100, two_four);
	double lone = cgroup0_cpus(w100_100, one_six);
	double besteffort = cgroup0_cpus(w1_100, four_four);

	CHECK(heavy > 1.4 && heavy < 1.6);   /* the fair class: 1.5 of 2 CPUs (by tasks: 0.67) */
	CHECK(lone > 0.9 && lone < 1.05);    /* 1 of 2: one task beside six (by tasks: 0.29) */
	CHECK(besteffort > 0.001 && besteffort < 0.1);   /* slowed to a trickle, never starved */
	printf("cgroup shares: 300:100 -> %.3f CPUs, 1 task vs 6 -> %.3f, 1:100 -> %.4f\n", heavy,
	       lone, besteffort);
}

static void test_deadline(void)
{
	__u64 now = 1000 * MS, lag = 100 * MS;

	/* fresh task: now + budget */
	CHECK(policy_deadline(0, now, 1 * MS, lag) == now + 1 * MS);
	/* a stale early deadline is replaced by a fresh one: no credit for old waiting */
	CHECK(policy_deadline(now - 500 * MS, now, 1 * MS, lag) == now + 1 * MS);
	/* a charged (later) deadline is kept */
	CHECK(policy_deadline(now + 30 * MS, now, 1 * MS, lag) == now + 30 * MS);
	/* but the debt is capped at lag beyond the fresh deadline */
	CHECK(policy_deadline(now + 900 * MS, now, 1 * MS, lag) == now + 1 * MS + lag);
	/* an SLO task's fresh deadline sorts before a batch task queued at the same time */
	CHECK(policy_before(policy_deadline(0, now, 1 * MS, lag),
			    policy_deadline(0, now, 100 * MS, lag)));
	/* wrap-safe comparison */
	CHECK(policy_before(~0ULL - 5, 3));
	CHECK(!policy_before(3, ~0ULL - 5));
}

/* A batch task waiting since `enq` becomes more urgent than any fresh SLO wake-up by `enq + 99ms`. */
static void test_no_starvation(void)
{
	__u64 enq = 5000 * MS, lag = 100 * MS;
	__u64 batch_dl = policy_deadline(0, enq, 100 * MS, lag);
	__u64 slo_dl_late = policy_deadline(0, enq + 100 * MS, 1 * MS, lag);

	CHECK(policy_before(batch_dl, slo_dl_late));
}

/* An SLO task that burns CPU loses priority at 100/importance times wall-clock speed. */
static void test_burner_yields(void)
{
	__u64 now = 0, dl = 0, lag = 100 * MS, ran = 0;
	int i;

	for (i = 0; i < 1000; i++) {
		dl = policy_deadline(dl, now, 1 * MS, lag);
		dl += policy_charge(1 * MS, 50, TASK_WEIGHT_DFL);
		now += 1 * MS;
		ran += 1 * MS;
	}
	/* after 1 s of solid running at importance 50 its debt sits at the cap */
	CHECK(dl >= now + lag);
	CHECK(ran == 1000 * MS);
}

static void test_preempt(void)
{
	__u64 now = 1000 * MS;

	/* a batch task (due in ~100 ms) yields to an SLO wake-up due in 1 ms */
	CHECK(policy_should_preempt(now + 100 * MS, now + 1 * MS, 1 * MS));
	/* a task due at about the same time keeps its CPU */
	CHECK(!policy_should_preempt(now + 1500000, now + 1 * MS, 1 * MS));
	CHECK(!policy_should_preempt(now + 500000, now + 1 * MS, 1 * MS));
	/* one due more than a budget later does not */
	CHECK(policy_should_preempt(now + 3 * MS, now + 1 * MS, 1 * MS));
}

static void test_slice(void)
{
	CHECK(policy_slice(1 * MS, 5 * MS, 200000) == 1 * MS);
	CHECK(policy_slice(100 * MS, 5 * MS, 200000) == 5 * MS);
	CHECK(policy_slice(50000, 5 * MS, 200000) == 200000);
}

static void test_histogram(void)
{
	__u64 v;
	__u32 b, prev = 0;

	CHECK(policy_hist_bucket(0) == 0);
	CHECK(policy_hist_bucket(1023) == 0);
	CHECK(policy_hist_bucket(1024) == 1);
	CHECK(policy_hist_bucket(~0ULL) == HIST_BUCKETS - 1);
	CHECK(policy_msb64(1) == 0 && policy_msb64(1ULL << 40) == 40 && policy_msb64(~0ULL) == 63);
	/* every value lands in a bucket whose bounds contain it; buckets are monotonic */
	for (v = 1; v < (1ULL << 36); v = v * 9 / 8 + 1) {
		b = policy_hist_bucket(v);
		CHECK(b >= prev);
		CHECK(v < policy_hist_upper_ns(b));
		if (b > 0)
			CHECK(v >= policy_hist_upper_ns(b - 1));
		prev = b;
	}
	/* relative width <= 25% */
	for (b = 2; b < HIST_BUCKETS - 1; b++) {
		__u64 lo = policy_hist_upper_ns(b - 1), hi = policy_hist_upper_ns(b);

		CHECK((hi - lo) * 4 <= lo);
	}
}

int main(int argc, char **argv)
{
	if (argc > 1 && !strcmp(argv[1], "--bounds")) {
		__u32 b;

		printf("[");
		for (b = 0; b < HIST_BUCKETS - 1; b++)
			printf("%s%llu", b ? "," : "", (unsigned long long)policy_hist_upper_ns(b));
		printf("]\n");
		return 0;
	}
	test_clamps();
	test_charge();
	test_lag_cap();
	test_queue_budget();
	test_weighted_shares();
	test_share_arithmetic();
	test_negative_nice();
	test_cgroup_shares();
	test_deadline();
	test_no_starvation();
	test_burner_yields();
	test_preempt();
	test_slice();
	test_histogram();
	printf("policy: %d passed, %d failed\n", passed, failed);
	return failed ? 1 : 0;
}
