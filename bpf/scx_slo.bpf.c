/* SPDX-License-Identifier: GPL-2.0 */
/*
 * scx_slo: an Earliest-Deadline-First scheduler for cgroups with latency budgets.
 *
 * Each cgroup may carry an SLO in slo_map: a latency budget (how long its tasks may wait for a
 * CPU) and an importance (1-100). A task takes the SLO of its own cgroup or of the nearest
 * ancestor that has one, so a single entry for a pod covers every container in it. Tasks with no
 * SLO get a default budget (100 ms unless the loader says otherwise) and a default importance.
 *
 * Every runnable task carries a deadline: when it is queued, at least now + budget. While it
 * runs, the CPU it uses is charged to its deadline, scaled by 100 / importance, so a cgroup that
 * burns CPU pushes its own deadline out and yields to others in proportion to how little it
 * matters; the debt is kept across sleeps but capped, so it expires. The charge is also scaled by
 * the task's share of the machine as the fair class would divide it: by each cgroup's cpu.weight
 * (Kubernetes: CPU requests) among the cgroups with runnable tasks, then by the task's own weight
 * (nice, SCHED_IDLE) within its cgroup (cgroup_share.bpf.h). A task that gets its share is
 * charged as a lone nice-0 task; one that takes more falls behind, and a lighter task's cap lies
 * further out, so among tasks that all burn CPU the shares follow those weights
 * (policy_lag_cap). When a slice ends, the task keeps its CPU while its charged deadline is still
 * the earliest. All tasks share one queue ordered by deadline and each CPU runs the earliest.
 * Work without an SLO sorts after SLO work, but its deadlines keep coming due (100 ms by
 * default), so it is slowed, never starved, and the kernel's runnable-task watchdog never fires
 * because of the policy.
 *
 * A wake-up that finds an idle CPU goes straight to it. When none is idle and the waking task
 * has an SLO, it preempts a CPU (among those it may use) whose current task is due more than one
 * budget later: the CPU doing the wake-up if it qualifies, since it is already in the kernel and
 * needs no inter-processor interrupt, else the one running the latest deadline. The task is put
 * at the head of that CPU's local queue, so a latency-critical task does not sit behind a batch
 * task's whole slice. Slices are bounded by the budget. Per-CPU kernel threads, which cannot run anywhere else, are served
 * on their own CPU at once.
 *
 * CPU limits (cpu.max): with a sched_ext scheduler attached the kernel hands them to the scheduler
 * instead of enforcing them. Unless the loader is told not to, a cgroup that has used
 * its quota for the period is held back until the next one (cpu_max.bpf.h), so an SLO buys a
 * cgroup latency, never CPU beyond its limit.
 *
 * For every SLO cgroup the run-queue wait (runnable -> running) is measured here in the kernel:
 * a log-linear histogram, runs, total and worst wait, and misses (wait > budget). Each miss also
 * goes to user space on a ring buffer, at most MISS_EVENTS_PER_CPU_PER_SEC per CPU; the excess is
 * counted as dropped.
 *
 * The maps are pinned by the loader, so the scheduler outlives the process that loaded it; user
 * space changes SLOs by writing slo_map and bumping control.gen, never by reloading. A cgroup's
 * entries are dropped here when the cgroup is destroyed, so they cannot leak. If this
 * scheduler errors out or stalls, sched_ext puts every task back on the fair class by itself;
 * why it stopped is kept in exit_map.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>

#include "scx_slo.h"
#include "policy.h"

char _license[] SEC("license") = "GPL";

#define PF_KTHREAD 0x00200000
#define SHARED_DSQ 0
#define NSEC_PER_MSEC 1000000ULL
#define ENOMEM 12

#define BPF_STRUCT_OPS(name, args...) SEC("struct_ops/" #name) BPF_PROG(name, ##args)
#define BPF_STRUCT_OPS_SLEEPABLE(name, args...) SEC("struct_ops.s/" #name) BPF_PROG(name, ##args)

/* Set by the loader before load. */
const volatile u64 default_budget_ns = 100 * NSEC_PER_MSEC;
const volatile u32 default_importance = 50;
const volatile u64 max_slice_ns = 5 * NSEC_PER_MSEC;
const volatile u64 min_slice_ns = 200 * 1000ULL;
const volatile u64 lag_cap_ns = 100 * NSEC_PER_MSEC;
const volatile u32 nr_cpus = 1;  /* possible CPUs */

#ifdef SCX_SLO_TEST_HOOKS
/*
 * Test builds only (build/scx_slo_test.bpf.o): tasks of this cgroup are parked in a queue that
 * is never dispatched, so the kernel's runnable-task watchdog must eject the scheduler.
 */
const volatile u64 test_stall_cgid;
#define STALL_DSQ 1
#endif

/*
 * Kfuncs. Declared here rather than taken from a kernel tree so the object is self-contained;
 * the ones renamed in 6.13 are declared under both names as weak symbols and picked at run time.
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

static __always_inline void insert_vtime_into(struct task_struct *p, u64 dsq, u64 slice, u64 dl,
					      u64 enq_flags)
{
	if (bpf_ksym_exists(scx_bpf_dsq_insert_vtime))
		scx_bpf_dsq_insert_vtime(p, dsq, slice, dl, enq_flags);
	else
		scx_bpf_dispatch_vtime(p, dsq, slice, dl, enq_flags);
}

static __always_inline void insert_by_deadline(struct task_struct *p, u64 slice, u64 dl,
					       u64 enq_flags)
{
	insert_vtime_into(p, SHARED_DSQ, slice, dl, enq_flags);
}

static __always_inline bool move_to_local(u64 dsq_id)
{
	if (bpf_ksym_exists(scx_bpf_dsq_move_to_local))
		return scx_bpf_dsq_move_to_local(dsq_id);
	return scx_bpf_consume(dsq_id);
}

static __always_inline u64 now_ns(void)
{
	if (bpf_ksym_exists(scx_bpf_now))
		return scx_bpf_now();
	return bpf_ktime_get_ns();
}

/* ---- maps ------------------------------------------------------------------------------ */

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, SLO_MAP_MAX_ENTRIES);
	__type(key, u64);
	__type(value, struct slo_cfg);
} slo_map SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, SLO_MAP_MAX_ENTRIES);
	__type(key, u64);
	__type(value, struct cg_stats);
} stats_map SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, u32);
	__type(value, struct slo_control);
} control_map SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, u32);
	__type(value, struct slo_counters);
} counters_map SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, u32);
	__type(value, struct slo_exit);
} exit_map SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 256 * 1024);
} miss_events SEC(".maps");

/* Per-CPU: the deadline of the task running there (0 = idle or not ours), for preemption. */
struct cpu_ctx {
	u64 running_dl;
	u64 rate_window_start;
	u32 rate_count;
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, u32);
	__type(value, struct cpu_ctx);
} cpu_ctx_map SEC(".maps");

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

struct {
	__uint(type, BPF_MAP_TYPE_TASK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct task_ctx);
} task_ctx_stor SEC(".maps");

/* ---- helpers --------------------------------------------------------------------------- */

static __always_inline struct slo_control *control(void)
{
	u32 zero = 0;

	return bpf_map_lookup_elem(&control_map, &zero);
}

static __always_inline struct slo_counters *counters(void)
{
	u32 zero = 0;

	return bpf_map_lookup_elem(&counters_map, &zero);
}

static __always_inline struct cpu_ctx *this_cpu_ctx(void)
{
	u32 zero = 0;

	return bpf_map_lookup_elem(&cpu_ctx_map, &zero);
}

static __always_inline struct task_ctx *lookup_task_ctx(struct task_struct *p)
{
	return bpf_task_storage_get(&task_ctx_stor, p, 0, 0);
}

/* The id of cgrp's ancestor at level (cgrp itself at its own level), 0 if there is none. */
static __always_inline u64 cgroup_ancestor_id(struct cgroup *cgrp, int level)
{
	struct cgroup *anc = NULL;

	bpf_probe_read_kernel(&anc, sizeof(anc), &cgrp->ancestors[level]);
	return anc ? BPF_CORE_READ(anc, kn, id) : 0;
}

/*
 * Resolve the task's SLO: its own cgroup first, then each ancestor up to the root's children.
 * The task's cgroup on the unified hierarchy is used (not the cpu controller's), so an SLO on a
 * leaf cgroup works whether or not the cpu controller is enabled down to it.
 */
static void resolve_slo(struct task_struct *p, struct task_ctx *tctx)
{
	/*
	 * Plain loads, not BPF_CORE_READ: this runs on every wake-up, and the verifier turns them
	 * into guarded loads where BPF_CORE_READ makes a helper call per pointer.
	 */
	struct cgroup *cgrp = p->cgroups->dfl_cgrp;
	struct slo_control *ctl = control();
	u64 cgid = cgrp->kn->id;
	u64 gen = ctl ? ctl->gen : 0;
	int level, i;

	if (tctx->own_cgid == cgid && tctx->gen == gen && tctx->budget_ns)
		return;

	tctx->own_cgid = cgid;
	tctx->bw_gen = 0;
	tctx->gen = gen;
	tctx->has_slo = 0;
	tctx->slo_cgid = 0;
	tctx->budget_ns = default_budget_ns;
	tctx->importance = default_importance;

	level = BPF_CORE_READ(cgrp, level);
	bpf_for(i, 0, SLO_MAX_CGROUP_DEPTH) {
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
		tctx->has_slo = 1;
		tctx->slo_cgid = id;
		/* Clamped here too: the map is writable by anyone holding its pin. */
		tctx->budget_ns = policy_clamp_budget(cfg->budget_ns);
		tctx->importance = policy_clamp_importance(cfg->importance);
		break;
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

#include "cpu_max.bpf.h"
#include "cgroup_share.bpf.h"

/* ---- measurement ----------------------------------------------------------------------- */

static bool miss_rate_ok(u64 now)
{
	struct cpu_ctx *cctx = this_cpu_ctx();

	if (!cctx)
		return false;
	if (now - cctx->rate_window_start >= 1000 * NSEC_PER_MSEC) {
		cctx->rate_window_start = now;
		cctx->rate_count = 0;
	}
	if (cctx->rate_count >= MISS_EVENTS_PER_CPU_PER_SEC)
		return false;
	cctx->rate_count++;
	return true;
}

static void report_miss(struct task_struct *p, struct task_ctx *tctx, u64 wait, u64 now)
{
	struct slo_counters *cnt = counters();
	struct miss_event *ev;

	if (!miss_rate_ok(now)) {
		if (cnt)
			cnt->miss_drops++;
		return;
	}
	ev = bpf_ringbuf_reserve(&miss_events, sizeof(*ev), 0);
	if (!ev) {
		if (cnt)
			cnt->miss_drops++;
		return;
	}
	ev->cgroup_id = tctx->slo_cgid;
	ev->wait_ns = wait;
	ev->budget_ns = tctx->budget_ns;
	ev->at_ns = now;
	ev->pid = p->pid;
	ev->cpu = bpf_get_smp_processor_id();
	bpf_probe_read_kernel_str(ev->comm, sizeof(ev->comm), p->comm);
	bpf_ringbuf_submit(ev, 0);
	if (cnt)
		cnt->miss_events++;
}

/* Template for a new stats entry (too big for the BPF stack). */
struct cg_stats empty_stats;

/* `wait` ended when the task started running, at `ran_at`. */
static void record_wait(struct task_struct *p, struct task_ctx *tctx, u64 wait, u64 ran_at)
{
	struct cg_stats *st;
	u32 bucket;

	st = bpf_map_lookup_elem(&stats_map, &tctx->slo_cgid);
	if (!st) {
		bpf_map_update_elem(&stats_map, &tctx->slo_cgid, &empty_stats, BPF_NOEXIST);
		st = bpf_map_lookup_elem(&stats_map, &tctx->slo_cgid);
		if (!st)
			return;
	}
	st->budget_ns = tctx->budget_ns;
	st->importance = tctx->importance;
	__sync_fetch_and_add(&st->runs, 1);
	__sync_fetch_and_add(&st->wait_sum_ns, wait);
	if (wait > st->wait_max_ns)
		st->wait_max_ns = wait;
	bucket = policy_hist_bucket(wait);
	if (bucket < HIST_BUCKETS)
		__sync_fetch_and_add(&st->hist[bucket], 1);
	if (wait > tctx->budget_ns) {
		__sync_fetch_and_add(&st->misses, 1);
		report_miss(p, tctx, wait, ran_at);
	}
}

/* ---- placement and preemption ------------------------------------------------------- */

static __always_inline void insert_local_on(struct task_struct *p, s32 cpu, u64 slice,
					    u64 enq_flags)
{
	if (bpf_ksym_exists(scx_bpf_dsq_insert))
		scx_bpf_dsq_insert(p, SCX_DSQ_LOCAL_ON | cpu, slice, enq_flags);
	else
		scx_bpf_dispatch(p, SCX_DSQ_LOCAL_ON | cpu, slice, enq_flags);
}

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
	u32 zero = 0;

	if (may_preempt(p, tctx, near, bpf_map_lookup_percpu_elem(&cpu_ctx_map, &zero, near)))
		return near;
	bpf_for(cpu, 0, nr_cpus) {
		struct cpu_ctx *cctx = bpf_map_lookup_percpu_elem(&cpu_ctx_map, &zero, cpu);

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
	struct slo_counters *cnt = counters();
	struct cpu_ctx *cctx;
	u32 zero = 0;

	cctx = bpf_map_lookup_percpu_elem(&cpu_ctx_map, &zero, cpu);
	if (cctx)
		cctx->running_dl = tctx->deadline;
	if (cnt)
		cnt->preempt_kicks++;
}

/*
 * Place a waking SLO task on a CPU now: an idle one if any, else preempt a victim (pick_victim).
 * The task goes straight to that CPU's local queue (at its head, when preempting), so it does
 * not wait for a dispatch round through the shared queue. Returns false when neither exists.
 */
static bool place_now(struct task_struct *p, struct task_ctx *tctx, u64 enq_flags)
{
	struct slo_counters *cnt = counters();
	s32 cpu;

	cpu = scx_bpf_pick_idle_cpu(p->cpus_ptr, 0);
	if (cpu >= 0 && cpu == scx_bpf_task_cpu(p)) {
		/*
		 * Idle, and the very CPU whose run-queue is taking the task (a task pinned to one CPU,
		 * woken by that CPU's own timer): the kernel reschedules an idle CPU that gets a task in
		 * its local queue, so a kick would only add a self-interrupt.
		 */
		insert_local(p, task_slice(tctx), enq_flags);
		if (cnt)
			cnt->direct_idle++;
		return true;
	}
	if (cpu >= 0) {
		insert_local_on(p, cpu, task_slice(tctx), enq_flags);
		scx_bpf_kick_cpu(cpu, SCX_KICK_IDLE);
		if (cnt)
			cnt->idle_kicks++;
		return true;
	}
	cpu = pick_victim(p, tctx, scx_bpf_task_cpu(p));
	if (cpu < 0) {
		if (cnt)
			cnt->no_victim++;
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
		struct slo_counters *cnt = counters();

		scx_bpf_kick_cpu(cpu, SCX_KICK_IDLE);
		if (cnt)
			cnt->idle_kicks++;
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
		struct slo_counters *cnt = counters();

		insert_local(p, task_slice(tctx), 0);
		if (cnt)
			cnt->direct_idle++;
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
		struct slo_counters *cnt = counters();

		insert_local(p, max_slice_ns, enq_flags);
		if (cnt)
			cnt->kthread_local++;
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
		if (tctx->waited_from)
			record_wait(p, tctx, tctx->running_at - tctx->waited_from, tctx->running_at);
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
	if (ex)
		ex->kind = 0;
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
	if (!ex)
		return;
	ex->kind = ei->kind;
	ex->exit_code = ei->exit_code;
	ex->at_ns = bpf_ktime_get_ns();
	bpf_probe_read_kernel_str(ex->reason, sizeof(ex->reason), ei->reason);
	bpf_probe_read_kernel_str(ex->msg, sizeof(ex->msg), ei->msg);
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
