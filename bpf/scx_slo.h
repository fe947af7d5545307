/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Everything that crosses the BPF <-> user-space boundary, defined once. Included by the BPF
 * programs (after vmlinux.h) and by native/ (after <linux/types.h>). The loader prints these
 * constants (`scx-slo-loader abi`); test/unit/abi.test.ts checks that the TypeScript side
 * (src/slo/model.ts, src/sched/histogram.ts) agrees with them.
 */
#ifndef SCX_SLO_H
#define SCX_SLO_H

#define SCX_SLO_NAME "scx_slo"

/*
 * The layout identity of a build, checked before a scheduler pinned by another build is adopted
 * (native/layout.c). It is this number, which the object carries in .rodata
 * (scx_slo_abi_version), and a hash the loader computes from the object's BTF over every pinned
 * map: name, type, key and value sizes, entries, flags and each member of the value type. A
 * change to a pinned map or to a struct in it changes the hash by itself; bump this number when
 * the meaning of a field changes and its layout does not.
 */
#define SCX_SLO_ABI_VERSION 1

/*
 * Value of the single-slot layout_map the loader pins beside the others: the identity of the
 * build whose maps are pinned. Never change this struct: every build reads it.
 */
struct slo_layout {
	__u64 abi_version;
	__u64 layout_hash;
};

/* Limits: the BPF side clamps to these even if user space writes the map directly. */
#define SLO_BUDGET_MIN_NS 1000000ULL         /* 1 ms */
#define SLO_BUDGET_MAX_NS 10000000000ULL     /* 10 s */
/*
 * Budgets beyond this sort as if they were this long (policy_queue_budget): a task queued with a
 * 10 s deadline behind busy work would wait past the kernel's 5 s runnable-task watchdog.
 */
#define SLO_QUEUE_BUDGET_MAX_NS 1000000000ULL /* 1 s */
#define SLO_IMPORTANCE_MIN 1
#define SLO_IMPORTANCE_MAX 100
/* The kernel's task weight as sched_ext gives it (p->scx.weight): 100 at nice 0, 1-10000. */
#define TASK_WEIGHT_DFL 100
#define TASK_WEIGHT_MIN 1
#define TASK_WEIGHT_MAX 10000
#define SLO_MAP_MAX_ENTRIES 4096
#define SLO_MAX_CGROUP_DEPTH 16

/*
 * Run-queue wait histogram: log-linear buckets over nanoseconds. Bucket 0 holds waits below
 * 2^HIST_MIN_SHIFT ns; above that every power of two is split into HIST_SUBS equal parts
 * (~19% wide at worst, fine enough for a p99), up to 2^(HIST_MIN_SHIFT + HIST_OCTAVES) ns
 * (~17 s); the last bucket holds everything longer.
 */
#define HIST_MIN_SHIFT 10   /* 1.024 us */
#define HIST_SUB_BITS 2
#define HIST_SUBS (1 << HIST_SUB_BITS)
#define HIST_OCTAVES 24
#define HIST_BUCKETS (1 + HIST_OCTAVES * HIST_SUBS + 1)

/* Value of the SLO map (key: u64 cgroup id, the cgroup directory's inode number). */
#ifndef SCX_SLO_TEST_LAYOUT_B
struct slo_cfg {
	__u64 budget_ns;
	__u32 importance;
	__u32 flags;  /* reserved, 0 */
};
#else
/*
 * Test builds only (build/layout-b/): the same fields in another order. Every size libbpf
 * compares when it reuses a pinned map is unchanged, so only the layout identity tells this
 * build's maps from the default's (test/vm/upgrade.test.ts).
 */
struct slo_cfg {
	__u32 importance;
	__u32 flags;
	__u64 budget_ns;
};
#endif

/* Value of the per-cgroup stats map (key: the id of the cgroup that carries the SLO). */
struct cg_stats {
	__u64 runs;           /* runnable -> running transitions measured */
	__u64 wait_sum_ns;
	__u64 wait_max_ns;
	__u64 misses;         /* waits longer than the budget */
	__u64 budget_ns;      /* the budget in force, after the BPF-side clamp */
	__u64 importance;     /* likewise */
	__u64 hist[HIST_BUCKETS];
};

/* One element of the single-slot control array: tunables user space may change while attached. */
struct slo_control {
	__u64 gen;            /* bumped by user space after every SLO map change */
	__u64 nr_attach;      /* times ops.init ran against these maps */
};

/*
 * Scheduler counters, listed once: X(name, Prometheus metric, help). counters_map is a per-CPU
 * array indexed by enum slo_counter; the loader sums the CPUs and names each counter in its
 * replies, and the agent exports every one it is given. Adding a counter is one line here.
 */
#define SLO_COUNTERS(X)                                                                          \
	X(miss_events, "miss_events_total", "Deadline misses the scheduler sent on its ring buffer") \
	X(miss_drops, "ringbuf_drops_total",                                                      \
	  "Deadline misses not sent on the ring buffer (rate limit or buffer full)")             \
	X(preempt_kicks, "preempt_kicks_total", "CPUs preempted so a waking SLO task runs at once") \
	X(direct_idle, "direct_idle_total", "Wake-ups placed straight on an idle CPU")            \
	X(kthread_local, "kthread_local_total", "Pinned kernel threads served on their own CPU")  \
	X(idle_kicks, "idle_kicks_total", "Idle CPUs woken for a task queued without one")       \
	X(no_victim, "no_victim_total",                                                           \
	  "SLO wake-ups that found no idle CPU and nothing later to preempt")                    \
	X(throttled, "cpu_max_throttled_total",                                                   \
	  "Tasks held back until the next period because their cgroup used its cpu.max quota")

enum slo_counter {
#define SLO_COUNTER_ENUM(name, metric, help) SLO_CNT_##name,
	SLO_COUNTERS(SLO_COUNTER_ENUM)
#undef SLO_COUNTER_ENUM
	NR_SLO_COUNTERS
};

/* Ring-buffer record for one deadline miss. */
struct miss_event {
	__u64 cgroup_id;      /* the SLO cgroup */
	__u64 wait_ns;
	__u64 budget_ns;
	__u64 at_ns;          /* bpf_ktime_get_ns() when the task got the CPU */
	__u32 pid;
	__u32 cpu;
	char comm[16];
};

#define MISS_EVENTS_PER_CPU_PER_SEC 1000

/*
 * Ring-buffer record of the scheduler's life (sched_events): it stopped (ops.exit, whatever the
 * reason), so user space hears of an exit at once instead of polling for it.
 */
enum sched_event_kind {
	SCHED_EVENT_EXIT = 1,
};

struct sched_event {
	__u32 kind;           /* enum sched_event_kind */
	__u32 pad;
	__s64 exit_kind;      /* enum scx_exit_kind */
	__u64 at_ns;
};

/* Why the scheduler last stopped, kept in a pinned map so user space can read it afterwards. */
#define EXIT_REASON_LEN 128
#define EXIT_MSG_LEN 1024
struct slo_exit {
	__s64 kind;           /* enum scx_exit_kind; 0 while running */
	__s64 exit_code;
	__u64 at_ns;
	char reason[EXIT_REASON_LEN];
	char msg[EXIT_MSG_LEN];
};

/*
 * The observer (bpf/observe.bpf.c), for kernels without sched_ext: the same SLO map, stats and
 * ring buffer as the scheduler, plus who held the CPU while an SLO cgroup's task waited. Key of
 * the pinned offenders map: the SLO cgroup that waited and the cgroup that ran meanwhile.
 */
struct offender_key {
	__u64 slo_cgid;
	__u64 cgid;           /* the cgroup that held the CPU, or OFFENDER_IDLE / OFFENDER_UNSEEN */
};

struct offender_stats {
	__u64 waits;          /* waits of the SLO cgroup during which this cgroup held the CPU */
	__u64 wait_ns;        /* CPU time it held inside those waits */
	__u64 misses;         /* of those waits, the ones longer than the budget */
	__u64 miss_ns;        /* CPU time it held inside the missed waits */
	__u64 last_wait_ns;   /* start of the last wait it was charged for (bpf_ktime_get_ns) */
};

/* The CPU ran its idle task: the wake-up itself, or the task waited on another CPU's queue. */
#define OFFENDER_IDLE 0ULL
/* Before the oldest run the CPU's history keeps (OBSERVE_RUN_HISTORY runs of distinct cgroups). */
#define OFFENDER_UNSEEN 0xffffffffffffffffULL
#define OBSERVE_RUN_HISTORY 8
#define OFFENDERS_MAX_ENTRIES 16384

#endif /* SCX_SLO_H */
