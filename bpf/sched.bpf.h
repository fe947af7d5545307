/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The scheduler's internal header: sched_ext kfuncs and their compatibility shims, the loader's
 * tunables, the queues, and the per-task and per-CPU state every part of scx_slo reads. The
 * policy itself is explained at the top of scx_slo.bpf.c.
 */
#ifndef SCX_SLO_SCHED_BPF_H
#define SCX_SLO_SCHED_BPF_H

#include "common.bpf.h"

#define BPF_STRUCT_OPS(name, args...) SEC("struct_ops/" #name) BPF_PROG(name, ##args)
#define BPF_STRUCT_OPS_SLEEPABLE(name, args...) SEC("struct_ops.s/" #name) BPF_PROG(name, ##args)

/* Dispatch queues (DSQ ids). */
#define SHARED_DSQ 0    /* every runnable task, by deadline */
#define STALL_DSQ 1     /* test builds: never dispatched */
#define THROTTLE_DSQ 2  /* tasks of cgroups over their cpu.max quota, by release time */

/* ---- tunables, set by the loader before load ------------------------------------------- */

const volatile u64 default_budget_ns = 100 * NSEC_PER_MSEC;
const volatile u32 default_importance = 50;
const volatile u64 max_slice_ns = 5 * NSEC_PER_MSEC;
const volatile u64 min_slice_ns = 200 * NSEC_PER_USEC;
const volatile u64 lag_cap_ns = 100 * NSEC_PER_MSEC;
const volatile u32 nr_cpus = 1; /* possible CPUs */

/* ---- kfuncs ---------------------------------------------------------------------------- */

/*
 * Declared here rather than taken from a kernel tree so the object is self-contained; the ones
 * renamed in 6.13 are declared under both names as weak symbols and picked at run time.
 */
void scx_bpf_dsq_insert(struct task_struct *p, u64 dsq_id, u64 slice, u64 enq_flags) __ksym __weak;
void scx_bpf_dsq_insert_vtime(struct task_struct *p, u64 dsq_id, u64 slice, u64 vtime,
			      u64 enq_flags) __ksym __weak;
bool scx_bpf_dsq_move_to_local(u64 dsq_id) __ksym __weak;
void scx_bpf_dispatch(struct task_struct *p, u64 dsq_id, u64 slice, u64 enq_flags) __ksym __weak;
void scx_bpf_dispatch_vtime(struct task_struct *p, u64 dsq_id, u64 slice, u64 vtime,
			    u64 enq_flags) __ksym __weak;
bool scx_bpf_consume(u64 dsq_id) __ksym __weak;
u64 scx_bpf_now(void) __ksym __weak;
s32 scx_bpf_create_dsq(u64 dsq_id, s32 node) __ksym;
s32 scx_bpf_select_cpu_dfl(struct task_struct *p, s32 prev_cpu, u64 wake_flags,
			   bool *is_idle) __ksym;
void scx_bpf_kick_cpu(s32 cpu, u64 flags) __ksym;
s32 scx_bpf_pick_idle_cpu(const struct cpumask *cpus_allowed, u64 flags) __ksym;
s32 scx_bpf_task_cpu(const struct task_struct *p) __ksym;
bool bpf_cpumask_test_cpu(u32 cpu, const struct cpumask *cpumask) __ksym;
u32 bpf_cpumask_weight(const struct cpumask *cpumask) __ksym;
const struct cpumask *scx_bpf_get_online_cpumask(void) __ksym;
void scx_bpf_put_cpumask(const struct cpumask *cpumask) __ksym;

static __always_inline void insert_local(struct task_struct *p, u64 slice, u64 enq_flags)
{
	if (bpf_ksym_exists(scx_bpf_dsq_insert))
		scx_bpf_dsq_insert(p, SCX_DSQ_LOCAL, slice, enq_flags);
	else
		scx_bpf_dispatch(p, SCX_DSQ_LOCAL, slice, enq_flags);
}

static __always_inline void insert_local_on(struct task_struct *p, s32 cpu, u64 slice,
					    u64 enq_flags)
{
	if (bpf_ksym_exists(scx_bpf_dsq_insert))
		scx_bpf_dsq_insert(p, SCX_DSQ_LOCAL_ON | cpu, slice, enq_flags);
	else
		scx_bpf_dispatch(p, SCX_DSQ_LOCAL_ON | cpu, slice, enq_flags);
}

static __always_inline void insert_vtime_into(struct task_struct *p, u64 dsq, u64 slice, u64 dl,
					      u64 enq_flags)
{
	if (bpf_ksym_exists(scx_bpf_dsq_insert_vtime))
		scx_bpf_dsq_insert_vtime(p, dsq, slice, dl, enq_flags);
	else
		scx_bpf_dispatch_vtime(p, dsq, slice, dl, enq_flags);
}

static __always_inline bool move_to_local(u64 dsq_id)
{
	if (bpf_ksym_exists(scx_bpf_dsq_move_to_local))
		return scx_bpf_dsq_move_to_local(dsq_id);
	return scx_bpf_consume(dsq_id);
}

/* The run-queue clock when the kernel has scx_bpf_now (6.14+), else the monotonic clock. */
static __always_inline u64 now_ns(void)
{
	if (bpf_ksym_exists(scx_bpf_now))
		return scx_bpf_now();
	return bpf_ktime_get_ns();
}

/* ---- per-task and per-CPU state -------------------------------------------------------- */

/* Per-task: the SLO it resolved to (cached until its cgroup or control.gen changes). */
struct task_ctx {
	u64 own_cgid;       /* the task's cgroup when the SLO was resolved */
	u64 gen;            /* control.gen when the SLO was resolved */
	u64 slo_cgid;       /* cgroup carrying the SLO, 0 if none */
	u64 budget_ns;
	u32 importance;
	u32 has_slo;
	u64 deadline;
	u64 runnable_at;    /* start of the current wait, 0 when not waiting */
	u64 running_at;
	u64 waited_from;    /* start of the wait that ended at running_at (SLO tasks), 0 if none */
	u64 bw_gen;         /* bw_gen when bw_limited was found out (cpu_max.bpf.h), 0: not yet */
	u32 bw_limited;     /* own_cgid has a cpu.max entry */
	u64 share_cgid;     /* cpu cgroup whose sum counts this task while runnable, 0 if none */
	u32 share_weight;   /* the weight counted there */
	u32 charge_weight;  /* the weight its CPU time was last charged at (cgroup_share.bpf.h) */
};

/* State of one load: tasks get a fresh context at every attach (ops.init_task). */
struct {
	__uint(type, BPF_MAP_TYPE_TASK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct task_ctx);
} task_ctx_stor SEC(".maps");

/* Per-CPU: the deadline of the task running there (0 = idle or not ours), for preemption. */
struct cpu_ctx {
	u64 running_dl;
};

/* State of one load. */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, u32);
	__type(value, struct cpu_ctx);
} cpu_ctx_map SEC(".maps");

static __always_inline struct task_ctx *lookup_task_ctx(struct task_struct *p)
{
	return bpf_task_storage_get(&task_ctx_stor, p, 0, 0);
}

static __always_inline struct cpu_ctx *this_cpu_ctx(void)
{
	u32 zero = 0;

	return bpf_map_lookup_elem(&cpu_ctx_map, &zero);
}

static __always_inline struct cpu_ctx *cpu_ctx_of(s32 cpu)
{
	u32 zero = 0;

	return bpf_map_lookup_percpu_elem(&cpu_ctx_map, &zero, cpu);
}

/* ---- deadlines ------------------------------------------------------------------------- */

static __always_inline u64 task_slice(const struct task_ctx *tctx)
{
	return policy_slice(tctx->budget_ns, max_slice_ns, min_slice_ns);
}

/* The weight its CPU time was last charged at (cgroup_share.bpf.h); its own until it first stops. */
static __always_inline u32 charge_weight(const struct task_struct *p, const struct task_ctx *tctx)
{
	return tctx->charge_weight ? tctx->charge_weight : p->scx.weight;
}

/*
 * The deadline a task with deadline dl so far is queued with at time now: policy_deadline with
 * the queue budget and its weight's lag cap.
 */
static __always_inline u64 queue_deadline(struct task_struct *p, struct task_ctx *tctx, u64 dl,
					  u64 now)
{
	return policy_deadline(dl, now, policy_queue_budget(tctx->budget_ns),
			       policy_lag_cap(lag_cap_ns, task_slice(tctx), charge_weight(p, tctx)));
}

/* The deadline of a task that has no task context (its storage could not be allocated). */
static __always_inline u64 default_deadline(void)
{
	return now_ns() + policy_queue_budget(default_budget_ns);
}

#endif /* SCX_SLO_SCHED_BPF_H */
