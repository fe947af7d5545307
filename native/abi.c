// SPDX-License-Identifier: GPL-2.0
/*
 * The contract with user space, as this build of the loader sees it: `scx-slo-loader abi` prints
 * the shared constants of bpf/scx_slo.h and the counters table as one JSON line, and the counters
 * are summed over CPUs here for `serve`'s stats. The agent and the tests read both, so nothing on
 * the TypeScript side keeps a copy in step by hand.
 */
#include <stdlib.h>
#include <string.h>

#include "common.h"

const struct counter_desc slo_counter_desc[NR_SLO_COUNTERS] = {
#define SLO_COUNTER_DESC(name, metric, help) [SLO_CNT_##name] = { #name, metric, help },
	SLO_COUNTERS(SLO_COUNTER_DESC)
#undef SLO_COUNTER_DESC
};

int cmd_abi(void)
{
	int i;

	printf("{\"name\":\"%s\",\"abi_version\":%d,\"budget_min_ns\":%llu,\"budget_max_ns\":%llu,"
	       "\"queue_budget_max_ns\":%llu,\"importance_min\":%d,\"importance_max\":%d,"
	       "\"slo_map_max_entries\":%d,\"max_cgroup_depth\":%d,"
	       "\"hist_min_shift\":%d,\"hist_sub_bits\":%d,\"hist_octaves\":%d,\"hist_buckets\":%d,"
	       "\"miss_events_per_cpu_per_sec\":%d,\"offender_idle\":\"%llu\","
	       "\"offender_unseen\":\"%llu\",\"observe_run_history\":%d,\"counters\":[",
	       SCX_SLO_NAME, SCX_SLO_ABI_VERSION, SLO_BUDGET_MIN_NS, SLO_BUDGET_MAX_NS, SLO_QUEUE_BUDGET_MAX_NS,
	       SLO_IMPORTANCE_MIN, SLO_IMPORTANCE_MAX, SLO_MAP_MAX_ENTRIES, SLO_MAX_CGROUP_DEPTH,
	       HIST_MIN_SHIFT, HIST_SUB_BITS, HIST_OCTAVES, HIST_BUCKETS,
	       MISS_EVENTS_PER_CPU_PER_SEC, OFFENDER_IDLE, OFFENDER_UNSEEN, OBSERVE_RUN_HISTORY);
	for (i = 0; i < NR_SLO_COUNTERS; i++) {
		printf("%s{\"name\":", i ? "," : "");
		json_string(stdout, slo_counter_desc[i].name);
		fputs(",\"metric\":", stdout);
		json_string(stdout, slo_counter_desc[i].metric);
		fputs(",\"help\":", stdout);
		json_string(stdout, slo_counter_desc[i].help);
		fputc('}', stdout);
	}
	fputs("]}\n", stdout);
	return 0;
}

/* `"counters":{"name":sum,...}`, each summed over the possible CPUs (zeros without the map). */
void write_counters(FILE *f, int counters_fd)
{
	int ncpu = nr_possible_cpus(), i, c;
	__u64 *per = calloc((size_t)ncpu, sizeof(*per));

	fputs("\"counters\":{", f);
	for (i = 0; i < NR_SLO_COUNTERS; i++) {
		__u32 key = (__u32)i;
		__u64 sum = 0;

		if (per && counters_fd >= 0 && !bpf_map_lookup_elem(counters_fd, &key, per))
			for (c = 0; c < ncpu; c++)
				sum += per[c];
		fprintf(f, "%s\"%s\":%llu", i ? "," : "", slo_counter_desc[i].name,
			(unsigned long long)sum);
	}
	fputc('}', f);
	free(per);
}
