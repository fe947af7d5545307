/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The SLOs user space wrote and how a task finds its own: slo_map (key: the cgroup id, the cgroup
 * directory's inode) and control.gen, which user space bumps after every change. A task takes the
 * SLO of its own cgroup or of the nearest ancestor that has one, so one entry for a pod covers
 * every container in it. Callers cache the result per task and look again only when the task's
 * cgroup or control.gen changed, so an SLO change applies live. Shared by the scheduler and the
 * observer (observe.bpf.c); free of sched_ext, and of anything newer than bounded loops (5.3).
 */
#ifndef SCX_SLO_SLO_LOOKUP_BPF_H
#define SCX_SLO_SLO_LOOKUP_BPF_H

#include "common.bpf.h"

/* Pinned: the SLOs user space wrote (key: u64 cgroup id, the cgroup directory's inode). */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, SLO_MAP_MAX_ENTRIES);
	__type(key, u64);
	__type(value, struct slo_cfg);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} slo_map SEC(".maps");

/* Pinned: control.gen, bumped by user space after every SLO change. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, u32);
	__type(value, struct slo_control);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} control_map SEC(".maps");

static __always_inline struct slo_control *control(void)
{
	u32 zero = 0;

	return bpf_map_lookup_elem(&control_map, &zero);
}

/* control.gen now: a cached SLO resolved under another generation is looked up again. */
static __always_inline u64 slo_gen(void)
{
	struct slo_control *ctl = control();

	return ctl ? ctl->gen : 0;
}

/*
 * The task's cgroup on the unified hierarchy (not the cpu controller's), so an SLO on a leaf
 * cgroup works whether or not the cpu controller is enabled down to it. Plain loads, not
 * BPF_CORE_READ: this runs on every wake-up, and the verifier turns them into guarded loads where
 * BPF_CORE_READ makes a helper call per pointer.
 */
static __always_inline struct cgroup *task_dfl_cgroup(struct task_struct *p)
{
	return p->cgroups->dfl_cgrp;
}

/* The SLO a cgroup's tasks run under. */
struct slo_found {
	u64 cgid;           /* the cgroup carrying it, 0 if none */
	u64 budget_ns;      /* clamped: the map is writable by anyone holding its pin */
	u32 importance;     /* likewise */
};

/*
 * The SLO of cgrp or of its nearest ancestor that has one, up to the root's children; false (and
 * *out untouched) when none has. A bounded loop rather than bpf_for, so older kernels load it.
 */
static bool slo_lookup(struct cgroup *cgrp, struct slo_found *out)
{
	int level = BPF_CORE_READ(cgrp, level), i;

	for (i = 0; i < SLO_MAX_CGROUP_DEPTH; i++) {
		struct slo_cfg *cfg;
		u64 id;

		if (level - i < 1)
			break;
		id = cgroup_ancestor_id(cgrp, level - i);
		if (!id)
			break;
		cfg = bpf_map_lookup_elem(&slo_map, &id);
		if (!cfg)
			continue;
		out->cgid = id;
		out->budget_ns = policy_clamp_budget(cfg->budget_ns);
		out->importance = policy_clamp_importance(cfg->importance);
		return true;
	}
	return false;
}

#endif /* SCX_SLO_SLO_LOOKUP_BPF_H */
