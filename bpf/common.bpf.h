/* SPDX-License-Identifier: GPL-2.0 */
/*
 * What every part of the BPF side shares: headers, the kfuncs it calls (with the shims for names
 * that changed between kernels), the counters, and the clock. Each .bpf.h includes this first, so
 * every part compiles on its own. Nothing here is sched_ext policy.
 */
#ifndef SCX_SLO_COMMON_BPF_H
#define SCX_SLO_COMMON_BPF_H

#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>

#include "scx_slo.h"
#include "policy.h"

#define NSEC_PER_USEC 1000ULL
#define NSEC_PER_MSEC 1000000ULL
#define ENOMEM 12
#define PF_KTHREAD 0x00200000

/* ---- counters ------------------------------------------------------------------------- */

/* Pinned: cumulative across re-attaches, like the stats. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, NR_SLO_COUNTERS);
	__type(key, u32);
	__type(value, u64);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} counters_map SEC(".maps");

static __always_inline void stat_inc(enum slo_counter idx)
{
	u32 key = idx;
	u64 *cnt = bpf_map_lookup_elem(&counters_map, &key);

	if (cnt)
		(*cnt)++;
}

/* ---- cgroups -------------------------------------------------------------------------- */

/* Before Linux 6.1 a cgroup kept its ancestors' ids rather than pointers to them. */
struct cgroup___pre_6_1 {
	u64 ancestor_ids[0];
} __attribute__((preserve_access_index));

/* The id of cgrp's ancestor at level (cgrp itself at its own level), 0 if there is none. */
static __always_inline u64 cgroup_ancestor_id(struct cgroup *cgrp, int level)
{
	struct cgroup *anc = NULL;

	if (!bpf_core_field_exists(cgrp->ancestors)) {
		struct cgroup___pre_6_1 *old = (void *)cgrp;
		u64 id = 0;

		bpf_probe_read_kernel(&id, sizeof(id), &old->ancestor_ids[level]);
		return id;
	}
	bpf_probe_read_kernel(&anc, sizeof(anc), &cgrp->ancestors[level]);
	return anc ? BPF_CORE_READ(anc, kn, id) : 0;
}

#endif /* SCX_SLO_COMMON_BPF_H */
