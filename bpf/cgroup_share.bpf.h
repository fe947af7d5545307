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
 * with atomic updates, so CPUs keep them without a lock.
 *
 * The share, in CPUs, times the default task weight is the weight a task's CPU time is charged at
 * (ops.stopping). A task that gets exactly its share pays wall time, as a lone nice-0 task always
 * did; one that gets more falls behind in deadline order, one that gets less goes first. Among
 * tasks of one cgroup that leaves the task weight (nice) in charge, as before.
 *
 * Included by scx_slo.bpf.c after its helpers.
 */
#ifndef SCX_SLO_CGROUP_SHARE_BPF_H
#define SCX_SLO_CGROUP_SHARE_BPF_H

/* A cgroup-rich node (Kubernetes: about four per pod) stays well inside this. */
#define CG_SHARE_MAX_ENTRIES 16384
/* The cgroup2 root's id (its directory's inode number). */
#define CGROUP_ROOT_ID 1

/* One cgroup of the cpu controller's tree. */
struct cg_share {
	u64 parent_id;         /* 0 for the root */
	u64 sum;               /* weights of the runnable tasks here and of the active children */
	s64 nr_active;         /* runnable tasks here + active children */
	u32 weight;            /* cpu.weight */
	u32 weight_in_parent;  /* what this cgroup added to its parent's sum, 0 while inactive */
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

/* The task's cgroup on the cpu controller's tree (its own, or the nearest ancestor with cpu). */
static __always_inline u64 task_cpu_cgid(const struct task_struct *p)
{
	return p->sched_task_group->css.cgroup->kn->id;
}

static __always_inline struct cg_share *cg_share_of(u64 id)
{
	return id ? bpf_map_lookup_elem(&cg_share_map, &id) : NULL;
}

/*
 * A cgroup became active: add it to its parent, and on up while each parent becomes active in
 * turn. weight_in_parent is swapped, not just set, because a concurrent deactivation can run
 * first and subtract nothing; what it left behind is taken back here.
 */
static void share_activate_up(struct cg_share *cg)
{
	int i;

	bpf_for(i, 0, SLO_MAX_CGROUP_DEPTH) {
		struct cg_share *parent = cg_share_of(cg->parent_id);
		u32 w = cg->weight, old;

		if (!parent)
			return;
		old = __sync_lock_test_and_set(&cg->weight_in_parent, w);
		__sync_fetch_and_add(&parent->sum, (u64)w - old);
		if (__sync_fetch_and_add(&parent->nr_active, 1) != 0)
			return;
		cg = parent;
	}
}

static void share_deactivate_up(struct cg_share *cg)
{
	int i;

	bpf_for(i, 0, SLO_MAX_CGROUP_DEPTH) {
		struct cg_share *parent = cg_share_of(cg->parent_id);
		u32 old;

		if (!parent)
			return;
		old = __sync_lock_test_and_set(&cg->weight_in_parent, 0);
		__sync_fetch_and_sub(&parent->sum, (u64)old);
		if (__sync_fetch_and_sub(&parent->nr_active, 1) != 1)
			return;
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
	__sync_fetch_and_sub(&cg->sum, (u64)tctx->share_weight);
	if (__sync_fetch_and_sub(&cg->nr_active, 1) == 1)
		share_deactivate_up(cg);
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
	__sync_fetch_and_add(&cg->sum, (u64)w);
	if (__sync_fetch_and_add(&cg->nr_active, 1) == 0)
		share_activate_up(cg);
}

/*
 * The weight a runnable task's CPU time is charged at now (see the top of this file). A task not
 * counted in any cgroup (no entry: the map was full) keeps its own weight.
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
		share = policy_share_step(share, w, cg->sum);
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

	if (level > 0) {
		struct cgroup *parent = NULL;

		bpf_probe_read_kernel(&parent, sizeof(parent), &cgrp->ancestors[level - 1]);
		if (parent)
			cg.parent_id = BPF_CORE_READ(parent, kn, id);
	}
	/* A full map must not fail the cgroup's creation: its tasks keep their own weights. */
	bpf_map_update_elem(&cg_share_map, &id, &cg, BPF_ANY);
	return 0;
}

static void share_cgroup_set_weight(struct cgroup *cgrp, u32 weight)
{
	struct cg_share *cg = cg_share_of(cgrp->kn->id);
	struct cg_share *parent;
	u32 w = policy_clamp_weight(weight), old;

	if (!cg)
		return;
	cg->weight = w;
	parent = cg_share_of(cg->parent_id);
	if (!parent || cg->nr_active <= 0)
		return;
	old = __sync_lock_test_and_set(&cg->weight_in_parent, w);
	__sync_fetch_and_add(&parent->sum, (u64)w - old);
}

/* The cgroup is gone; give back anything a race left in its parent's sum. */
static void share_cgroup_exit(struct cgroup *cgrp)
{
	u64 id = cgrp->kn->id;
	struct cg_share *cg = cg_share_of(id);
	struct cg_share *parent;
	u32 old;

	if (!cg)
		return;
	parent = cg_share_of(cg->parent_id);
	old = __sync_lock_test_and_set(&cg->weight_in_parent, 0);
	if (parent && old)
		__sync_fetch_and_sub(&parent->sum, (u64)old);
	bpf_map_delete_elem(&cg_share_map, &id);
}

static void share_init(void)
{
	const struct cpumask *online = scx_bpf_get_online_cpumask();
	struct cg_share root = { .weight = TASK_WEIGHT_DFL };
	u64 id = CGROUP_ROOT_ID;

	/* ops.cgroup_init may not be called for the root: without it the top level has no sum. */
	bpf_map_update_elem(&cg_share_map, &id, &root, BPF_NOEXIST);
	share_cpus = bpf_cpumask_weight(online);
	scx_bpf_put_cpumask(online);
	if (!share_cpus)
		share_cpus = 1;
}

#endif /* SCX_SLO_CGROUP_SHARE_BPF_H */
