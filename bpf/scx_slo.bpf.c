/* SPDX-License-Identifier: GPL-2.0 */
/*
 * scx_slo: an Earliest-Deadline-First scheduler for cgroups with latency budgets.
 *
 * SLOs
 * ----
 * A cgroup may carry an SLO in slo_map: a latency budget (how long its tasks may wait for a CPU,
 * 1 ms to 10 s) and an importance (1 to 100). A task takes the SLO of its own cgroup or of the
 * nearest ancestor that has one, so one entry for a pod covers every container in it. Tasks with
 * no SLO get the loader's default budget (100 ms) and importance (50). User space changes SLOs by
 * writing slo_map and bumping control.gen; each task re-resolves at its next wake-up, so a change
 * applies live, never by reloading.
 *
 * Deadlines
 * ---------
 * Every runnable task carries a deadline: when it is queued, at least now + budget (budgets
 * beyond 1 s sort as 1 s, so nothing queued is due past the kernel's 5 s watchdog). CPU time a
 * task uses is charged to its deadline at 100 / importance, times 100 / its charge weight (see
 * Shares), so a cgroup that burns CPU pushes its own deadline out and yields in proportion to how
 * little it matters. The debt survives sleeps but is capped (lag_cap_ns past a fresh deadline,
 * further for lighter tasks), so it expires. All tasks share one queue ordered by deadline, and
 * each CPU runs the earliest. When a slice ends, the task keeps its CPU while its charged deadline
 * is still the earliest. Work without an SLO sorts after SLO work, but its deadlines come due, so
 * it is slowed, never starved.
 *
 * Shares
 * ------
 * A task's charge weight is its share of the machine as the fair class would divide it among the
 * tasks runnable now: each cgroup's cpu.weight (Kubernetes derives it from CPU requests) over the
 * active weights in its parent, level by level, then the task's own weight (nice, SCHED_IDLE) in
 * its cgroup (cgroup_share.bpf.h). A task that gets exactly its share pays wall time; one that
 * takes more falls behind in deadline order. So a pod's CPU follows its requests, not its thread
 * count.
 *
 * Placement and preemption
 * ------------------------
 * A wake-up that finds an idle CPU goes straight to it. When none is idle and the waking task has
 * an SLO, it preempts a CPU (among those it may use) whose current task is due more than one
 * budget later: the CPU doing the wake-up if it qualifies (no inter-processor interrupt needed),
 * else the one running the latest deadline. The task goes to the head of that CPU's local queue,
 * so it does not sit behind a batch task's slice. Slices are bounded by the budget. Per-CPU kernel
 * threads, which cannot run anywhere else, are served on their own CPU at once.
 *
 * CPU limits
 * ----------
 * With a sched_ext scheduler attached the kernel hands cpu.max to the scheduler instead of
 * enforcing it. Unless the loader is told not to, a cgroup that has used its quota for the period
 * is held back until the next one (cpu_max.bpf.h): an SLO buys a cgroup latency, never CPU beyond
 * its limit.
 *
 * Measurement and safety
 * ----------------------
 * The run-queue wait (runnable -> running) of every SLO cgroup is measured here, in the kernel
 * (measure.bpf.h): a histogram, runs, total and worst wait, misses (wait > budget), each miss also
 * on a rate-limited ring buffer. The maps are pinned by the loader, so the scheduler outlives the
 * process that loaded it; a destroyed cgroup's entries are dropped here, so nothing leaks while no
 * agent runs. Budgets and importance are clamped here too, so a map written around the agent
 * cannot break the policy. If the scheduler errors out or stalls, sched_ext puts every task back
 * on the fair class by itself, and why it stopped is kept in exit_map.
 *
 * A worked example
 * ----------------
 * Two CPUs. Pod "pay" (cpu.weight 100) has an SLO of 5 ms at importance 90; cgroup "batch"
 * (cpu.weight 100) runs 4 CPU hogs with the defaults, 100 ms at importance 50. Both cgroups are
 * active, so each is entitled to half the machine: pay's one task 1 CPU (charge weight 100), each
 * hog a quarter of a CPU (charge weight 25).
 *
 *  - A hog that runs a 5 ms slice is charged 5 * 100/50 * 100/25 = 40 ms. The hogs' deadlines sit
 *    100 ms and more ahead of the clock, and they take turns on whatever CPU pay leaves them.
 *  - pay's task wakes at t = 1000 ms with no debt: deadline 1005 ms. Both CPUs run hogs due at
 *    1100 ms or later, more than one budget (5 ms) after 1005, so it preempts one at once and goes
 *    to the head of that CPU's queue instead of waiting out a hog's slice.
 *  - It runs 2 ms and sleeps: charged 2 * 100/90 * 100/100 = 2.2 ms, deadline 1007.2 ms, still
 *    far ahead of the hogs, so its next wake-up preempts again.
 *  - Were pay to spin, it would be charged 1.1 ms per ms, slightly faster than the clock: it keeps
 *    its 1 CPU for a long time, and once its debt carries it behind the hogs (capped at a fresh
 *    deadline plus lag_cap_ns) it takes turns with them. Its share, 1 CPU, is what it keeps; the
 *    4 hogs share the other, as the fair class would divide two cgroups of equal weight.
 */
#include "sched.bpf.h"
#include "slo_lookup.bpf.h"
#include "measure.bpf.h"
#include "cpu_max.bpf.h"
#include "cgroup_share.bpf.h"

char _license[] SEC("license") = "GPL";

/* Part of this build's layout identity (bpf/scx_slo.h): the loader reads it from the object. */
const volatile u32 scx_slo_abi_version = SCX_SLO_ABI_VERSION;

#ifdef SCX_SLO_TEST_HOOKS
/*
 * Test builds only (build/scx_slo_test.bpf.o): tasks of this cgroup are parked in a queue that
 * is never dispatched, so the kernel's runnable-task watchdog must eject the scheduler.
 */
const volatile u64 test_stall_cgid;
#endif

/* ---- maps ------------------------------------------------------------------------------ */

/* Pinned: why the scheduler last stopped, readable after it is gone. */
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, u32);
	__type(value, struct slo_exit);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} exit_map SEC(".maps");

/* Pinned: the scheduler's attaches and exits, for whoever supervises it. */
struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 4096);
	__uint(pinning, LIBBPF_PIN_BY_NAME);
} sched_events SEC(".maps");

static void emit_sched_event(u32 kind, s64 exit_kind)
{
	struct sched_event *ev = bpf_ringbuf_reserve(&sched_events, sizeof(*ev), 0);

	if (!ev)
		return;
	ev->kind = kind;
	ev->pad = 0;
	ev->exit_kind = exit_kind;
	ev->at_ns = bpf_ktime_get_ns();
	bpf_ringbuf_submit(ev, 0);
}

/* ---- SLO lookup ------------------------------------------------------------------------ */

/* Resolve the task's SLO (slo_lookup.bpf.h), unless the cached one is current. */
static void resolve_slo(struct task_struct *p, struct task_ctx *tctx)
{
	struct cgroup *cgrp = task_dfl_cgroup(p);
	struct slo_found found;
	u64 cgid = cgrp->kn->id;
	u64 gen = slo_gen();

	if (tctx->own_cgid == cgid && tctx->gen == gen && tctx->budget_ns)
		return;

	tctx->own_cgid = cgid;
	tctx->bw_gen = 0;
	tctx->gen = gen;
	tctx->has_slo = 0;
	tctx->slo_cgid = 0;
	tctx->budget_ns = default_budget_ns;
	tctx->importance = default_importance;
	if (slo_lookup(cgrp, &found)) {
		tctx->has_slo = 1;
		tctx->slo_cgid = found.cgid;
		tctx->budget_ns = found.budget_ns;
		tctx->importance = found.importance;
	}
}

static __always_inline struct task_ctx *task_slo(struct task_struct *p)
{
	struct task_ctx *tctx = lookup_task_ctx(p);

	if (tctx)
		resolve_slo(p, tctx);
	return tctx;
}

static __always_inline bool is_pinned_kthread(const struct task_struct *p)
{
	return (p->flags & PF_KTHREAD) && p->nr_cpus_allowed == 1;
}

static __always_inline void insert_by_deadline(struct task_struct *p, u64 slice, u64 dl,
					       u64 enq_flags)
{
	insert_vtime_into(p, SHARED_DSQ, slice, dl, enq_flags);
}

/* ---- placement and preemption ------------------------------------------------------- */

static bool may_preempt(struct task_struct *p, struct task_ctx *tctx, s32 cpu,
			struct cpu_ctx *cctx)
{
	return cctx && cctx->running_dl && bpf_cpumask_test_cpu(cpu, p->cpus_ptr) &&
	       policy_should_preempt(cctx->running_dl, tctx->deadline, tctx->budget_ns);
}

/*
 * The CPU to take for a waking SLO task when none is idle, among the CPUs it may use (a CPU cannot
 * take a task outside its affinity) whose current task policy_should_preempt() lets it displace.
 * `near` comes first when it qualifies: the CPU doing the wake-up (select_cpu) is already in the
 * kernel, often in the very timer interrupt that woke the task, and the CPU whose run-queue holds
 * the task (enqueue) needs no migration; either way no inter-processor interrupt is needed and the
 * task runs as soon as the kernel returns. Otherwise, the CPU running the latest deadline.
 */
static s32 pick_victim(struct task_struct *p, struct task_ctx *tctx, s32 near)
{
	s32 victim = -1, cpu;
	u64 latest = 0;

	if (may_preempt(p, tctx, near, cpu_ctx_of(near)))
		return near;
	bpf_for(cpu, 0, nr_cpus) {
		struct cpu_ctx *cctx = cpu_ctx_of(cpu);

		if (!cctx)
			break;
		if (!may_preempt(p, tctx, cpu, cctx))
			continue;
		if (victim < 0 || policy_before(latest, cctx->running_dl)) {
			latest = cctx->running_dl;
			victim = cpu;
		}
	}
	return victim;
}

/* Claim a victim CPU, so that a second waker in the same instant preempts another one. */
static void claim_victim(struct task_ctx *tctx, s32 cpu)
{
	struct cpu_ctx *cctx = cpu_ctx_of(cpu);

	if (cctx)
		cctx->running_dl = tctx->deadline;
	stat_inc(SLO_CNT_preempt_kicks);
}

/*
 * Place a waking SLO task on a CPU now: an idle one if any, else preempt a victim (pick_victim).
 * The task goes straight to that CPU's local queue (at its head, when preempting), so it does
 * not wait for a dispatch round through the shared queue. Returns false when neither exists.
 */
static bool place_now(struct task_struct *p, struct task_ctx *tctx, u64 enq_flags)
{
	s32 cpu;

	cpu = scx_bpf_pick_idle_cpu(p->cpus_ptr, 0);
	if (cpu >= 0 && cpu == scx_bpf_task_cpu(p)) {
		/*
		 * Idle, and the very CPU whose run-queue is taking the task (a task pinned to one CPU,
		 * woken by that CPU's own timer): the kernel reschedules an idle CPU that gets a task in
		 * its local queue, so a kick would only add a self-interrupt.
		 */
		insert_local(p, task_slice(tctx), enq_flags);
		stat_inc(SLO_CNT_direct_idle);
		return true;
	}
	if (cpu >= 0) {
		insert_local_on(p, cpu, task_slice(tctx), enq_flags);
		scx_bpf_kick_cpu(cpu, SCX_KICK_IDLE);
		stat_inc(SLO_CNT_idle_kicks);
		return true;
	}
	cpu = pick_victim(p, tctx, scx_bpf_task_cpu(p));
	if (cpu < 0) {
		stat_inc(SLO_CNT_no_victim);
		return false;
	}
	claim_victim(tctx, cpu);
	insert_local_on(p, cpu, task_slice(tctx), enq_flags | SCX_ENQ_PREEMPT);
	return true;
}

/* A task queued in the shared DSQ: wake an idle CPU for it (select_cpu can race with idling). */
static void kick_idle_for(struct task_struct *p)
{
	s32 cpu = scx_bpf_pick_idle_cpu(p->cpus_ptr, 0);

	if (cpu >= 0) {
		scx_bpf_kick_cpu(cpu, SCX_KICK_IDLE);
		stat_inc(SLO_CNT_idle_kicks);
	}
}

/* ---- sched_ext_ops --------------------------------------------------------------------- */

s32 BPF_STRUCT_OPS(slo_select_cpu, struct task_struct *p, s32 prev_cpu, u64 wake_flags)
{
	struct task_ctx *tctx = task_slo(p);
	bool is_idle = false;
	s32 cpu, victim;

	cpu = scx_bpf_select_cpu_dfl(p, prev_cpu, wake_flags, &is_idle);
	/* A cgroup over its cpu.max quota is held in ops.enqueue, so nothing is dispatched here. */
	if (!tctx || bw_exhausted(tctx))
		return cpu;
	tctx->deadline = queue_deadline(p, tctx, tctx->deadline, now_ns());
	if (is_idle) {
		insert_local(p, task_slice(tctx), 0);
		stat_inc(SLO_CNT_direct_idle);
		return cpu;
	}
	/*
	 * No idle CPU: an SLO task goes straight to the head of the local queue of the CPU it
	 * preempts (direct dispatch, so ops.enqueue is skipped and nothing is decided twice).
	 */
	if (tctx->has_slo && (victim = pick_victim(p, tctx, bpf_get_smp_processor_id())) >= 0) {
		claim_victim(tctx, victim);
		insert_local(p, task_slice(tctx), SCX_ENQ_PREEMPT);
		return victim;
	}
	return cpu;
}
void BPF_STRUCT_OPS(slo_enqueue, struct task_struct *p, u64 enq_flags)
{
	struct task_ctx *tctx;

	if (is_pinned_kthread(p)) {
		insert_local(p, max_slice_ns, enq_flags);
		stat_inc(SLO_CNT_kthread_local);
		return;
	}
	tctx = task_slo(p);
	if (!tctx) {
		insert_by_deadline(p, max_slice_ns, default_deadline(), enq_flags);
		return;
	}
	if (bw_hold(p, tctx, enq_flags))
		return;
	/* Its slice ended and nothing else wants this CPU (SCX_OPS_ENQ_LAST): keep running it. */
	if (enq_flags & SCX_ENQ_LAST) {
		insert_local(p, task_slice(tctx), enq_flags);
		return;
	}
#ifdef SCX_SLO_TEST_HOOKS
	if (test_stall_cgid && tctx->slo_cgid == test_stall_cgid) {
		insert_vtime_into(p, STALL_DSQ, max_slice_ns, 0, enq_flags);
		return;
	}
#endif
	tctx->deadline = queue_deadline(p, tctx, tctx->deadline, now_ns());
	if (tctx->has_slo && place_now(p, tctx, enq_flags))
		return;
	insert_by_deadline(p, task_slice(tctx), tctx->deadline, enq_flags);
	kick_idle_for(p);
}

/*
 * ops.dispatch runs when prev's slice is over but before prev is queued again, so the shared
 * queue alone would hand the CPU to the best of the others even when prev, charged for the slice
 * it just had, is due earlier. Keep prev then (a fresh slice), so the earliest deadline runs.
 */
static bool keep_prev(struct task_struct *prev)
{
	struct task_struct *head;
	struct task_ctx *tctx;
	struct cpu_ctx *cctx;
	u64 now, dl;

	if (!prev || !(prev->scx.flags & SCX_TASK_QUEUED))
		return false;
	/* Resolved as on every enqueue: a task kept this way may never be queued again. */
	tctx = task_slo(prev);
	/* A cgroup under cpu.max pays for each slice before it gets another (ops.stopping). */
	if (!tctx || !tctx->running_at || task_bw(tctx))
		return false;
	now = now_ns();
	/* At the weight of its last charge: stopping, not this, walks the cgroup tree. */
	dl = tctx->deadline +
	     policy_charge(now - tctx->running_at, tctx->importance, charge_weight(prev, tctx));
	dl = queue_deadline(prev, tctx, dl, now);
	bpf_for_each(scx_dsq, head, SHARED_DSQ, 0) {
		if (policy_before(head->scx.dsq_vtime, dl))
			return false;
		break;
	}
	prev->scx.slice = task_slice(tctx);
	/* ops.running is not called again for a kept task: show wakers its charged deadline. */
	cctx = this_cpu_ctx();
	if (cctx)
		cctx->running_dl = dl;
	return true;
}

void BPF_STRUCT_OPS(slo_dispatch, s32 cpu, struct task_struct *prev)
{
	bw_release_due();
	if (keep_prev(prev))
		return;
	move_to_local(SHARED_DSQ);
}

/*
 * The wait starts here; the SLO is resolved by select_cpu or enqueue, which come next. The task
 * now counts in its cgroup's share.
 */
void BPF_STRUCT_OPS(slo_runnable, struct task_struct *p, u64 enq_flags)
{
	struct task_ctx *tctx = lookup_task_ctx(p);

	if (!tctx)
		return;
	tctx->runnable_at = now_ns();
	share_enter(p, tctx);
}

/*
 * Asleep, exiting, leaving sched_ext (say, for SCHED_FIFO), or about to change cgroup or weight
 * (then runnable follows at once).
 */
void BPF_STRUCT_OPS(slo_quiescent, struct task_struct *p, u64 deq_flags)
{
	struct task_ctx *tctx = lookup_task_ctx(p);

	if (tctx)
		share_leave(tctx);
}

/*
 * On the path from wake-up to run, so it only notes the time: the wait is put into the stats
 * when the task stops, after the woken task has had the CPU.
 */
void BPF_STRUCT_OPS(slo_running, struct task_struct *p)
{
	struct task_ctx *tctx = lookup_task_ctx(p);
	struct cpu_ctx *cctx = this_cpu_ctx();
	u64 now = now_ns();

	if (!tctx)
		return;
	tctx->running_at = now;
	bw_limit_slice(p, tctx);
	if (cctx)
		cctx->running_dl = tctx->deadline ? tctx->deadline : 1;
	if (tctx->runnable_at) {
		tctx->waited_from = tctx->has_slo ? tctx->runnable_at : 0;
		tctx->runnable_at = 0;
	}
}

void BPF_STRUCT_OPS(slo_stopping, struct task_struct *p, bool runnable)
{
	struct task_ctx *tctx = lookup_task_ctx(p);
	struct cpu_ctx *cctx = this_cpu_ctx();
	u64 now = now_ns();

	if (cctx)
		cctx->running_dl = 0;
	if (!tctx)
		return;
	if (tctx->running_at) {
		/* Still counted in its cgroup here: quiescent comes after stopping. */
		tctx->charge_weight = share_weight(p, tctx);
		tctx->deadline += policy_charge(now - tctx->running_at, tctx->importance,
						tctx->charge_weight);
		bw_charge(tctx, now - tctx->running_at);
		if (tctx->waited_from) {
			struct wait_sample w = {
				.slo_cgid = tctx->slo_cgid,
				.budget_ns = tctx->budget_ns,
				.importance = tctx->importance,
				.wait_ns = tctx->running_at - tctx->waited_from,
				.ran_at = tctx->running_at,
			};

			record_wait(p, &w);
		}
	}
	tctx->running_at = 0;
	tctx->waited_from = 0;
	/* Preempted or out of slice but still runnable: a new wait starts now. */
	if (runnable)
		tctx->runnable_at = now;
}

/*
 * A cgroup is being destroyed: drop its SLO and stats here, so nothing leaks even while no agent
 * runs. (Called for cgroups on the cpu controller's hierarchy, which every Kubernetes pod is.)
 * sched_ext also calls this for every live cgroup when the scheduler is disabled; those are still
 * online and keep their entries, so SLOs and counters survive a re-attach.
 */
void BPF_STRUCT_OPS(slo_cgroup_exit, struct cgroup *cgrp)
{
	u64 id = BPF_CORE_READ(cgrp, kn, id);

	share_cgroup_exit(cgrp);
	if (BPF_CORE_READ(cgrp, self.flags) & CSS_ONLINE)
		return;

	bpf_map_delete_elem(&slo_map, &id);
	bpf_map_delete_elem(&stats_map, &id);
	bpf_map_delete_elem(&bw_map, &id);
}

/*
 * The kernel hands each cgroup's cpu.weight (cgroup_share.bpf.h) and cpu.max limit (cpu_max.bpf.h)
 * to the scheduler.
 */
s32 BPF_STRUCT_OPS_SLEEPABLE(slo_cgroup_init, struct cgroup *cgrp, struct scx_cgroup_init_args *args)
{
	share_cgroup_init(cgrp, args->weight);
	/* The bandwidth fields arrived with cgroup_set_bandwidth (6.17); older kernels lack both. */
	if (bpf_core_field_exists(args->bw_quota_us))
		bw_set(cgrp, args->bw_period_us, args->bw_quota_us);
	return 0;
}

void BPF_STRUCT_OPS(slo_cgroup_set_weight, struct cgroup *cgrp, u32 weight)
{
	share_cgroup_set_weight(cgrp, weight);
}

void BPF_STRUCT_OPS(slo_cgroup_set_bandwidth, struct cgroup *cgrp, u64 period_us, u64 quota_us,
		    u64 burst_us)
{
	bw_set(cgrp, period_us, quota_us);
}

s32 BPF_STRUCT_OPS(slo_init_task, struct task_struct *p, struct scx_init_task_args *args)
{
	if (!bpf_task_storage_get(&task_ctx_stor, p, 0, BPF_LOCAL_STORAGE_GET_F_CREATE))
		return -ENOMEM;
	return 0;
}

s32 BPF_STRUCT_OPS_SLEEPABLE(slo_init)
{
	struct slo_control *ctl = control();
	struct slo_exit *ex;
	u32 zero = 0;

	if (ctl)
		__sync_fetch_and_add(&ctl->nr_attach, 1);
	ex = bpf_map_lookup_elem(&exit_map, &zero);
	if (ex) {
		ex->kind = 0;
		ex->exit_code = 0;
		ex->reason[0] = 0;
		ex->msg[0] = 0;
	}
#ifdef SCX_SLO_TEST_HOOKS
	if (scx_bpf_create_dsq(STALL_DSQ, -1))
		return -ENOMEM;
#endif
	if (bw_init())
		return -ENOMEM;
	share_init();
	return scx_bpf_create_dsq(SHARED_DSQ, -1);
}

void BPF_STRUCT_OPS(slo_exit, struct scx_exit_info *ei)
{
	struct slo_exit *ex;
	u32 zero = 0;

	ex = bpf_map_lookup_elem(&exit_map, &zero);
	if (ex) {
		ex->kind = ei->kind;
		ex->exit_code = ei->exit_code;
		ex->at_ns = bpf_ktime_get_ns();
		bpf_probe_read_kernel_str(ex->reason, sizeof(ex->reason), ei->reason);
		bpf_probe_read_kernel_str(ex->msg, sizeof(ex->msg), ei->msg);
	}
	/* After the record: whoever hears the event reads why. */
	emit_sched_event(SCHED_EVENT_EXIT, ei->kind);
}

SEC(".struct_ops.link")
struct sched_ext_ops slo_ops = {
	.select_cpu = (void *)slo_select_cpu,
	.enqueue = (void *)slo_enqueue,
	.dispatch = (void *)slo_dispatch,
	.runnable = (void *)slo_runnable,
	.quiescent = (void *)slo_quiescent,
	.running = (void *)slo_running,
	.stopping = (void *)slo_stopping,
	.init_task = (void *)slo_init_task,
	.cgroup_init = (void *)slo_cgroup_init,
	.cgroup_exit = (void *)slo_cgroup_exit,
	.cgroup_set_weight = (void *)slo_cgroup_set_weight,
	.cgroup_set_bandwidth = (void *)slo_cgroup_set_bandwidth,
	.init = (void *)slo_init,
	.exit = (void *)slo_exit,
	.flags = SCX_OPS_ENQ_LAST,
	.timeout_ms = 5000,
	.name = SCX_SLO_NAME,
};
