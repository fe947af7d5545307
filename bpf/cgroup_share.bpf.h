/* SPDX-License-Identifier: GPL-2.0 */
/*
 * cpu.weight for scx_slo. While a sched_ext scheduler is attached the fair class no longer divides
 * CPU among cgroups; the kernel passes each cgroup's cpu.weight to the scheduler instead
 * (ops.cgroup_init, ops.cgroup_set_weight). Kubernetes derives cpu.weight from CPU requests, so
 * without this a pod with many threads would take the CPU its neighbours asked for.
 *
 * The cpu controller's tree is flattened into one number per task: its share of the machine, as
 * the fair class would divide it among the tasks runnable now. At each level a cgroup gets its
 * weight over the sum in its parent, and a task its own weight over the sum in its cgroup, where a
 * cgroup's sum counts its runnable tasks and its active children (those with runnable tasks
 * below them). The sums follow tasks becoming runnable and quiescent (share_enter/share_leave)
 * with atomic updates; a cgroup's count of what is active in it changes under its lock
 * (cg_count), so that a change of state and the weight it carries up go together.
 *
 * The share, in CPUs, times the default task weight is the weight a task's CPU time is charged at
 * (ops.stopping). A task that gets exactly its share is charged as a lone nice-0 task always was
 * (wall time, times 100 / importance); one that gets more falls behind in deadline order, one that
 * gets less goes first. Within one cgroup the task weight (nice) decides.
 */
#ifndef SCX_SLO_CGROUP_SHARE_BPF_H
#define SCX_SLO_CGROUP_SHARE_BPF_H

#include "sched.bpf.h"

/* A cgroup-rich node (Kubernetes: about four per pod) stays well inside this. */
#define CG_SHARE_MAX_ENTRIES 16384
/*
 * The cgroup2 root's id (its directory's inode number). ops.cgroup_init names the root too, so
 * the top level has its sum; without CONFIG_EXT_GROUP_SCHED no cgroup is named and every task
 * keeps its own weight.
 */
#define CGROUP_ROOT_ID 1

/*
 * One cgroup of the cpu controller's tree. Changes to sum are deltas that commute, so they are
 * plain atomic adds from any CPU. Whether the cgroup is active, and with which weight it counts
 * in its parent, must change together, so nr_active and weight change under the lock only: an
 * activation then always adds what the next deactivation takes back, in whatever order the two
 * reach the parent.
 */
struct cg_share {
	struct bpf_spin_lock lock;
	u32 weight;      /* cpu.weight; counted in the parent's sum while active */
	u64 parent_id;   /* 0 for the root */
	s64 sum;         /* weights of the runnable tasks here and of the active children */
	s64 nr_active;   /* runnable tasks here + active children; below 0 for a moment at most */
};

/* State of one load only (rebuilt by ops.cgroup_init at every attach), so never pinned. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, CG_SHARE_MAX_ENTRIES);
	__type(key, u64);
	__type(value, struct cg_share);
} cg_share_map SEC(".maps");

/* Online CPUs when the scheduler attached: the machine that shares divide (ops.init). */
u32 share_cpus = 1;

/*
 * The task's cgroup on the cpu controller's tree (its own, or the nearest ancestor with cpu). An
 * autogroup (a session of a task in the root cgroup) has no cgroup; the kernel counts it as root.
 */
static __always_inline u64 task_cpu_cgid(const struct task_struct *p)
{
	struct cgroup *cgrp = p->sched_task_group->css.cgroup;

	return cgrp ? cgrp->kn->id : CGROUP_ROOT_ID;
}

static __always_inline struct cg_share *cg_share_of(u64 id)
{
	return id ? bpf_map_lookup_elem(&cg_share_map, &id) : NULL;
}

/*
 * cg gains (delta 1) or loses (delta -1) one runnable task or active child. Returns what that
 * changes in its parent's sum: its weight when cg became active, minus it when cg became
 * inactive, else 0. A loss can reach the parent before the gain it follows; the count then dips
 * below 0 and back, and neither step is a change of state.
 */
static s64 cg_count(struct cg_share *cg, s64 delta)
{
	s64 nr, up = 0;

	bpf_spin_lock(&cg->lock);
	nr = cg->nr_active + delta;
	cg->nr_active = nr;
	if (delta > 0 && nr == 1)
		up = cg->weight;
	else if (delta < 0 && nr == 0)
		up = -(s64)cg->weight;
	bpf_spin_unlock(&cg->lock);
	return up;
}

/* Carries a change of cg's state up the tree, as far as it changes each ancestor's. */
static void share_propagate(struct cg_share *cg, s64 up)
{
	int i;

	bpf_for(i, 0, SLO_MAX_CGROUP_DEPTH) {
		struct cg_share *parent;

		if (!up)
			return;
		parent = cg_share_of(cg->parent_id);
		if (!parent)
			return;
		__sync_fetch_and_add(&parent->sum, up);
		up = cg_count(parent, up > 0 ? 1 : -1);
		cg = parent;
	}
}

/* The task stopped being runnable (or is about to be counted again): take it out of its sum. */
static void share_leave(struct task_ctx *tctx)
{
	struct cg_share *cg = cg_share_of(tctx->share_cgid);

	tctx->share_cgid = 0;
	if (!cg)
		return;
	__sync_fetch_and_sub(&cg->sum, (s64)tctx->share_weight);
	share_propagate(cg, cg_count(cg, -1));
}

/*
 * The task became runnable: count it in its cgroup. What was counted is kept in the task, so that
 * share_leave takes back exactly that even after the task's weight or cgroup changed.
 */
static void share_enter(struct task_struct *p, struct task_ctx *tctx)
{
	u64 id = task_cpu_cgid(p);
	struct cg_share *cg = cg_share_of(id);
	u32 w = policy_clamp_weight(p->scx.weight);

	if (tctx->share_cgid)
		share_leave(tctx);
	if (!cg)
		return;
	tctx->share_cgid = id;
	tctx->share_weight = w;
	__sync_fetch_and_add(&cg->sum, (s64)w);
	share_propagate(cg, cg_count(cg, 1));
}

/*
 * The weight a runnable task's CPU time is charged at now (see the top of this file). A task not
 * counted in any cgroup (no entry: the map was full, or the kernel names no cgroups) keeps its
 * own weight.
 */
static u32 share_weight(struct task_struct *p, struct task_ctx *tctx)
{
	struct cg_share *cg = cg_share_of(tctx->share_cgid);
	u64 share = SHARE_ONE;
	u32 w = tctx->share_weight;
	int i;

	if (!cg)
		return p->scx.weight;
	bpf_for(i, 0, SLO_MAX_CGROUP_DEPTH) {
		s64 sum = cg->sum;

		share = policy_share_step(share, w, sum > 0 ? sum : 0);
		w = cg->weight;
		cg = cg_share_of(cg->parent_id);
		if (!cg)
			break;
	}
	return policy_share_weight(share, share_cpus);
}

static s32 share_cgroup_init(struct cgroup *cgrp, u32 weight)
{
	struct cg_share cg = { .weight = policy_clamp_weight(weight) };
	u64 id = cgrp->kn->id;
	int level = cgrp->level;

	if (level > 0)
		cg.parent_id = cgroup_ancestor_id(cgrp, level - 1);
	/* A full map must not fail the cgroup's creation: its tasks keep their own weights. */
	bpf_map_update_elem(&cg_share_map, &id, &cg, BPF_ANY);
	return 0;
}

/* A live cpu.weight change: an active cgroup's part of its parent's sum changes with it. */
static void share_cgroup_set_weight(struct cgroup *cgrp, u32 weight)
{
	struct cg_share *cg = cg_share_of(cgrp->kn->id);
	struct cg_share *parent;
	u32 w = policy_clamp_weight(weight);
	s64 delta = 0;

	if (!cg)
		return;
	parent = cg_share_of(cg->parent_id);
	bpf_spin_lock(&cg->lock);
	if (cg->nr_active > 0)
		delta = (s64)w - cg->weight;
	cg->weight = w;
	bpf_spin_unlock(&cg->lock);
	if (parent && delta)
		__sync_fetch_and_add(&parent->sum, delta);
}

/* The cgroup is gone; if anything still counted it as active, its ancestors learn it is not. */
static void share_cgroup_exit(struct cgroup *cgrp)
{
	u64 id = cgrp->kn->id;
	struct cg_share *cg = cg_share_of(id);
	s64 up = 0;

	if (!cg)
		return;
	bpf_spin_lock(&cg->lock);
	if (cg->nr_active > 0)
		up = -(s64)cg->weight;
	cg->nr_active = 0;
	bpf_spin_unlock(&cg->lock);
	share_propagate(cg, up);
	bpf_map_delete_elem(&cg_share_map, &id);
}

static void share_init(void)
{
	const struct cpumask *online = scx_bpf_get_online_cpumask();

	share_cpus = bpf_cpumask_weight(online);
	scx_bpf_put_cpumask(online);
	if (!share_cpus)
		share_cpus = 1;
}

#endif /* SCX_SLO_CGROUP_SHARE_BPF_H */
