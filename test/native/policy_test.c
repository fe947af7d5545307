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
	CHECK(policy_charge(1 * MS, 100) == 1 * MS);   /* top importance pays wall time */
	CHECK(policy_charge(1 * MS, 50) == 2 * MS);
	CHECK(policy_charge(1 * MS, 1) == 100 * MS);
	CHECK(policy_charge(1 * MS, 0) == 100 * MS);   /* clamped, never divides by zero */
	CHECK(policy_charge(0, 90) == 0);
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
		dl += policy_charge(1 * MS, 50);
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
	test_deadline();
	test_no_starvation();
	test_burner_yields();
	test_preempt();
	test_slice();
	test_histogram();
	printf("policy: %d passed, %d failed\n", passed, failed);
	return failed ? 1 : 0;
}
