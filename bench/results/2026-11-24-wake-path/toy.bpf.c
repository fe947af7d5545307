/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Experiment only, not part of the product: the least a sched_ext scheduler can do for one
 * latency-critical cgroup, to measure how far scx_slo sits from the emulator's floor.
 *
 * Tasks of the cgroup whose id user space writes into crit_cgid go to the head of their own CPU's
 * local queue and preempt what runs there. Everything else shares one queue in arrival order. No
 * accounting, no fairness, no statistics. Built three ways (run.sh): as is; -DWITH_HOOKS adds
 * ops.runnable/running/stopping bodies as small as a real scheduler's (a task-storage lookup, a
 * time stamp, a per-CPU store); -DWITH_SELECT adds an ops.select_cpu that only asks the kernel's
 * default for an idle CPU.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

char _license[] SEC("license") = "GPL";

#define BPF_STRUCT_OPS(name, args...) SEC("struct_ops/" #name) BPF_PROG(name, ##args)
#define BPF_STRUCT_OPS_SLEEPABLE(name, args...) SEC("struct_ops.s/" #name) BPF_PROG(name, ##args)
#define SHARED_DSQ 0
#define CRIT_SLICE_NS 1000000ULL
#define BATCH_SLICE_NS 5000000ULL

void scx_bpf_dsq_insert(struct task_struct *p, u64 dsq_id, u64 slice, u64 enq_flags) __ksym;
void scx_bpf_dsq_insert_vtime(struct task_struct *p, u64 dsq_id, u64 slice, u64 vtime,
			      u64 enq_flags) __ksym;
bool scx_bpf_dsq_move_to_local(u64 dsq_id) __ksym;
s32 scx_bpf_create_dsq(u64 dsq_id, s32 node) __ksym;
u64 scx_bpf_now(void) __ksym;

u64 crit_cgid;

void BPF_STRUCT_OPS(toy_enqueue, struct task_struct *p, u64 enq_flags)
{
	if (p->cgroups->dfl_cgrp->kn->id == crit_cgid)
		scx_bpf_dsq_insert(p, SCX_DSQ_LOCAL, CRIT_SLICE_NS,
				   enq_flags | SCX_ENQ_PREEMPT | SCX_ENQ_HEAD);
	else
		scx_bpf_dsq_insert_vtime(p, SHARED_DSQ, BATCH_SLICE_NS, scx_bpf_now(), enq_flags);
}

void BPF_STRUCT_OPS(toy_dispatch, s32 cpu, struct task_struct *prev)
{
	scx_bpf_dsq_move_to_local(SHARED_DSQ);
}

#ifdef WITH_HOOKS
struct toy_task { u64 runnable_at, running_at, used; };
struct {
	__uint(type, BPF_MAP_TYPE_TASK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct toy_task);
} toy_tasks SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, u32);
	__type(value, u64);
} running_used SEC(".maps");

void BPF_STRUCT_OPS(toy_runnable, struct task_struct *p, u64 enq_flags)
{
	struct toy_task *t = bpf_task_storage_get(&toy_tasks, p, 0, 0);

	if (t)
		t->runnable_at = scx_bpf_now();
}

void BPF_STRUCT_OPS(toy_running, struct task_struct *p)
{
	struct toy_task *t = bpf_task_storage_get(&toy_tasks, p, 0, 0);
	u32 zero = 0;
	u64 *cur = bpf_map_lookup_elem(&running_used, &zero);

	if (!t)
		return;
	t->running_at = scx_bpf_now();
	if (cur)
		*cur = t->used;
}

void BPF_STRUCT_OPS(toy_stopping, struct task_struct *p, bool runnable)
{
	struct toy_task *t = bpf_task_storage_get(&toy_tasks, p, 0, 0);
	u32 zero = 0;
	u64 *cur = bpf_map_lookup_elem(&running_used, &zero);

	if (cur)
		*cur = 0;
	if (t)
		t->used += scx_bpf_now() - t->running_at;
}

s32 BPF_STRUCT_OPS(toy_init_task, struct task_struct *p, struct scx_init_task_args *args)
{
	return bpf_task_storage_get(&toy_tasks, p, 0, BPF_LOCAL_STORAGE_GET_F_CREATE) ? 0 : -12;
}
#endif

#ifdef WITH_SELECT
s32 scx_bpf_select_cpu_dfl(struct task_struct *p, s32 prev_cpu, u64 wake_flags,
			   bool *is_idle) __ksym;

s32 BPF_STRUCT_OPS(toy_select_cpu, struct task_struct *p, s32 prev_cpu, u64 wake_flags)
{
	bool idle = false;
	s32 cpu = scx_bpf_select_cpu_dfl(p, prev_cpu, wake_flags, &idle);

	if (idle)
		scx_bpf_dsq_insert(p, SCX_DSQ_LOCAL, CRIT_SLICE_NS, 0);
	return cpu;
}
#endif

s32 BPF_STRUCT_OPS_SLEEPABLE(toy_init)
{
	return scx_bpf_create_dsq(SHARED_DSQ, -1);
}

void BPF_STRUCT_OPS(toy_exit, struct scx_exit_info *ei)
{
}

SEC(".struct_ops.link")
struct sched_ext_ops toy_ops = {
	.enqueue = (void *)toy_enqueue,
	.dispatch = (void *)toy_dispatch,
#ifdef WITH_HOOKS
	.runnable = (void *)toy_runnable,
	.running = (void *)toy_running,
	.stopping = (void *)toy_stopping,
	.init_task = (void *)toy_init_task,
#endif
#ifdef WITH_SELECT
	.select_cpu = (void *)toy_select_cpu,
#endif
	.init = (void *)toy_init,
	.exit = (void *)toy_exit,
	.flags = SCX_OPS_ENQ_LAST,
	.name = "toy",
};
