// The observer's cost on this machine's real CPUs (no VM): context-switch-heavy benchmarks with
// and without the observer attached, interleaved, then the observer's own run time per event
// from the kernel's BPF statistics.
//
//   node dist/bench/observe-overhead.js [--reps N] [--workloads messaging,pipe,hackbench]
//       [--label L] [--out DIR]
//
// Arms, rotated within each repetition so no arm always runs first:
//   off       no observer
//   baseline  the observer's programs attached but returning at once
//             (build/observe_baseline.bpf.o): what any program on these tracepoints costs
//   on        observer attached, the benchmark in no SLO cgroup: what every context switch and
//             wake-up of a node pays
//   on-slo    observer attached, the benchmark inside an SLO cgroup: every one of its waits is
//             measured and charged to the cgroups that ran meanwhile (the observer's worst case)
// Each record has the benchmark's own elapsed time and the CPU time its cgroup used (cpu.stat):
// on a shared machine the CPU time moves less with other tenants' load than the elapsed time.
// Timing runs with kernel.bpf_stats_enabled as found (normally 0: statistics cost two clock
// reads per program run); a last pass turns it on and reads run_time_ns / run_cnt of each
// program for ns per event (the baseline's runs give what the statistics add), then restores
// it. Needs root, perf (linux-perf), hackbench (rt-tests), bpftool and `make build`.
//
// Writes results.json, summary.md, raw/ (every benchmark's own output) and a NOTES.md stub to
// bench/results/<date>-observe-overhead[-label]/. Run it on an otherwise idle machine: the
// figures are differences of a few percent.
import { spawnSync } from "node:child_process";
import { cpus, loadavg } from "node:os";
import { existsSync, mkdirSync, readFileSync, rmdirSync, statSync, writeFileSync } from "node:fs";
import path from "node:path";
import { intOption, parseOptions } from "../src/util/args.js";
import { findProjectRoot } from "../src/util/project-root.js";
import {
  defaultObserverPaths,
  ObserverSession,
  startObserver,
  stopObserver,
} from "../src/sched/observer.js";
import { cgroup2Root, ensureBpffs } from "../test/observer-rig.js";
import { resultsDir } from "./host.js";
import { median } from "./stats.js";

interface Workload {
  readonly name: string;
  readonly argv: readonly string[];
  /** The benchmark's own elapsed time, in seconds, from its output. */
  readonly parse: (stdout: string) => number | null;
}

const perfTotal = (out: string) => {
  const m = /Total time:\s*([\d.]+)\s*\[sec\]/.exec(out);
  return m ? Number(m[1]) : null;
};

const WORKLOADS: readonly Workload[] = [
  // hackbench over sockets, processes: 10 groups of 20 senders and 20 receivers.
  {
    name: "messaging",
    argv: ["perf", "bench", "sched", "messaging", "-g", "10", "-l", "100"],
    parse: perfTotal,
  },
  // Two processes passing a token through a pipe: nothing but wake-ups and switches.
  { name: "pipe", argv: ["perf", "bench", "sched", "pipe", "-l", "200000"], parse: perfTotal },
  // rt-tests' hackbench over pipes, threads.
  {
    name: "hackbench",
    argv: ["hackbench", "-p", "-T", "-g", "10", "-l", "500"],
    parse: (out) => {
      const m = /^Time:\s*([\d.]+)/m.exec(out);
      return m ? Number(m[1]) : null;
    },
  },
];

const ARMS = ["off", "baseline", "on", "on-slo"] as const;
type Arm = (typeof ARMS)[number];

const PIN_DIR = "/sys/fs/bpf/scx_slo_observe_bench";
const BASELINE_PIN_DIR = "/sys/fs/bpf/scx_slo_observe_bench_baseline";
/** The benchmarks run in one of two cgroups: the SLO one (on-slo) or the plain one. */
const CGROUPS = { slo: "scx-slo-observe-bench-slo", plain: "scx-slo-observe-bench" };
const BPF_STATS = "/proc/sys/kernel/bpf_stats_enabled";

export interface OverheadRecord {
  arm: Arm;
  workload: string;
  rep: number;
  seconds: number;
  /** CPU time the benchmark's cgroup used while it ran. */
  cpu_s: number;
}

export interface ProgStats {
  workload: string;
  arm: Arm;
  prog: string;
  runCnt: number;
  runTimeNs: number;
  nsPerRun: number;
}

function sh(argv: readonly string[], opts: { cgroupProcs?: string } = {}): string {
  const r = opts.cgroupProcs
    ? spawnSync("/bin/sh", ["-c", 'echo $$ > "$0" && exec "$@"', opts.cgroupProcs, ...argv], {
        encoding: "utf8",
      })
    : spawnSync(argv[0]!, argv.slice(1), { encoding: "utf8" });
  if (r.error) throw r.error;
  if (r.status !== 0) {
    throw new Error(`${argv.join(" ")} failed (${r.status}): ${(r.stderr || r.stdout).trim()}`);
  }
  return `${r.stdout}${r.stderr}`;
}

interface BpfProg {
  id: number;
  name?: string;
  run_time_ns?: number;
  run_cnt?: number;
}

function bpfProgs(): BpfProg[] {
  return JSON.parse(sh(["bpftool", "prog", "show", "--json"])) as BpfProg[];
}

/** usage_usec of a cgroup v2 folder's cpu.stat (present without the cpu controller too). */
function cpuUsageUs(dir: string): number {
  const m = /^usage_usec (\d+)$/m.exec(readFileSync(path.join(dir, "cpu.stat"), "utf8"));
  if (!m) throw new Error(`no usage_usec in ${dir}/cpu.stat`);
  return Number(m[1]);
}

function machineLine(): string {
  const cpu = cpus()[0]?.model ?? "unknown CPU";
  const kernel = readFileSync("/proc/sys/kernel/osrelease", "utf8").trim();
  return `${cpu}, ${cpus().length} CPUs, Linux ${kernel}, on the host (no VM)`;
}

async function main(): Promise<void> {
  const { values } = parseOptions(process.argv.slice(2), {
    reps: { type: "string", default: "10" },
    workloads: { type: "string", default: WORKLOADS.map((w) => w.name).join(",") },
    label: { type: "string" },
    out: { type: "string" },
  });
  const reps = intOption("reps", values.reps, 1, 1000);
  const wanted = values.workloads.split(",");
  const workloads = WORKLOADS.filter((w) => wanted.includes(w.name));
  if (workloads.length !== wanted.length) {
    throw new Error(`--workloads takes ${WORKLOADS.map((w) => w.name).join(",")}`);
  }
  if (process.getuid?.() !== 0) throw new Error("needs root (BPF, cgroups)");
  const paths = { ...defaultObserverPaths(), pinDir: PIN_DIR };
  const baseline = {
    ...paths,
    object: path.join(path.dirname(paths.object), "observe_baseline.bpf.o"),
    pinDir: BASELINE_PIN_DIR,
  };
  for (const o of [paths.object, baseline.object]) {
    if (!existsSync(o)) throw new Error(`${o} is missing: run \`make build\``);
  }

  const started = new Date();
  const label = values.label ? `observe-overhead-${values.label}` : "observe-overhead";
  const dir =
    values.out ?? resultsDir(path.join(findProjectRoot(), "bench", "results"), started, label);
  const rawDir = path.join(dir, "raw");
  mkdirSync(rawDir, { recursive: true });

  ensureBpffs();
  await stopObserver(paths, true);
  await stopObserver(baseline, true);
  const cgDirs = {
    slo: path.join(cgroup2Root(), CGROUPS.slo),
    plain: path.join(cgroup2Root(), CGROUPS.plain),
  };
  for (const d of Object.values(cgDirs)) if (!existsSync(d)) mkdirSync(d);
  const sloId = statSync(cgDirs.slo, { bigint: true }).ino;
  const statsBefore = readFileSync(BPF_STATS, "utf8").trim();
  const loadStart = loadavg();
  const records: OverheadRecord[] = [];
  const progStats: ProgStats[] = [];

  // What is attached now: nothing, the baseline or the observer (on and on-slo share it).
  let attached: "none" | "baseline" | "observer" = "none";
  const setArm = async (arm: Arm) => {
    const want = arm === "off" ? "none" : arm === "baseline" ? "baseline" : "observer";
    if (want === attached) return;
    if (attached === "observer") await stopObserver(paths);
    if (attached === "baseline") await stopObserver(baseline);
    if (want === "baseline") await startObserver(baseline);
    if (want === "observer") {
      await startObserver(paths);
      const s = new ObserverSession(paths);
      await s.set([{ cgroupId: sloId, budgetNs: 100e6, importance: 50 }]);
      await s.close();
    }
    attached = want;
  };
  const run = (w: Workload, arm: Arm, tag: string): { seconds: number; cpu_s: number } => {
    const dir = arm === "on-slo" ? cgDirs.slo : cgDirs.plain;
    const before = cpuUsageUs(dir);
    const out = sh(w.argv, { cgroupProcs: path.join(dir, "cgroup.procs") });
    const cpu_s = (cpuUsageUs(dir) - before) / 1e6;
    writeFileSync(path.join(rawDir, `${tag}-${w.name}-${arm}.txt`), out);
    const seconds = w.parse(out);
    if (seconds === null) throw new Error(`no time in ${w.name}'s output:\n${out}`);
    return { seconds, cpu_s };
  };

  try {
    for (let rep = 0; rep < reps; rep++) {
      for (const w of workloads) {
        const order = ARMS.map((_, i) => ARMS[(i + rep) % ARMS.length]!);
        for (const arm of order) {
          await setArm(arm);
          const { seconds, cpu_s } = run(w, arm, `rep${rep}`);
          records.push({ arm, workload: w.name, rep, seconds, cpu_s });
          process.stdout.write(
            `rep ${rep} ${w.name} ${arm}: ${seconds.toFixed(3)} s, cpu ${cpu_s.toFixed(3)} s\n`,
          );
        }
      }
    }
    // ns per event: statistics on, each workload once per attached arm. The baseline's programs
    // do nothing, so their figure is what the statistics themselves add to every run.
    const others = new Set(bpfProgs().map((p) => p.id));
    writeFileSync(BPF_STATS, "1");
    for (const arm of ["baseline", "on", "on-slo"] as const) {
      await setArm(arm);
      for (const w of workloads) {
        const before = new Map(bpfProgs().map((p) => [p.id, p]));
        run(w, arm, "bpf-stats");
        for (const p of bpfProgs()) {
          const b = before.get(p.id);
          if (others.has(p.id) || !p.name?.startsWith("obs_") || !b) continue;
          const runCnt = (p.run_cnt ?? 0) - (b.run_cnt ?? 0);
          const runTimeNs = (p.run_time_ns ?? 0) - (b.run_time_ns ?? 0);
          progStats.push({
            workload: w.name,
            arm,
            prog: p.name,
            runCnt,
            runTimeNs,
            nsPerRun: runCnt ? runTimeNs / runCnt : 0,
          });
        }
      }
    }
  } finally {
    writeFileSync(BPF_STATS, statsBefore);
    await stopObserver(paths, true).catch(() => {});
    await stopObserver(baseline, true).catch(() => {});
    for (const d of Object.values(cgDirs)) {
      try {
        rmdirSync(d);
      } catch {
        // a benchmark process still exiting: left for the next run
      }
    }
  }

  const summary = workloads.map((w) => {
    const med = (arm: Arm, field: "seconds" | "cpu_s") =>
      median(records.filter((r) => r.workload === w.name && r.arm === arm).map((r) => r[field]));
    const arms = Object.fromEntries(
      ARMS.map((arm) => [arm, { median_s: med(arm, "seconds"), median_cpu_s: med(arm, "cpu_s") }]),
    ) as Record<Arm, { median_s: number; median_cpu_s: number }>;
    const pct = (arm: Arm, field: "median_s" | "median_cpu_s") =>
      (arms[arm][field] / arms.off[field] - 1) * 100;
    return {
      workload: w.name,
      arms,
      overhead_pct: Object.fromEntries(
        ARMS.filter((a) => a !== "off").map((arm) => [
          arm,
          { elapsed: pct(arm, "median_s"), cpu: pct(arm, "median_cpu_s") },
        ]),
      ),
    };
  });
  const results = {
    schema: 1,
    kind: "observe-overhead",
    machine: machineLine(),
    started: started.toISOString(),
    reps,
    loadavg_start: loadStart,
    loadavg_end: loadavg(),
    bpf_stats_enabled_during_timing: statsBefore,
    records,
    prog_stats: progStats,
    summary,
  };
  writeFileSync(path.join(dir, "results.json"), JSON.stringify(results, null, 1) + "\n");

  const pct = (x: number) => `${x >= 0 ? "+" : ""}${x.toFixed(1)}%`;
  const lines = [
    `# Observer overhead, ${started.toISOString().slice(0, 10)}`,
    "",
    `${results.machine}. ${reps} interleaved repetitions per arm; load average at start ` +
      `${loadStart.map((l) => l.toFixed(2)).join(" ")}, at the end ` +
      `${results.loadavg_end.map((l) => l.toFixed(2)).join(" ")}.`,
    "",
    "Medians; each arm against off, by the benchmark's elapsed time and by its cgroup's CPU time:",
    "",
    "| workload | off s (cpu s) | baseline | on | on-slo |",
    "| --- | --- | --- | --- | --- |",
    ...summary.map((s) => {
      const cell = (arm: Exclude<Arm, "off">) =>
        `${pct(s.overhead_pct[arm]!.elapsed)} (cpu ${pct(s.overhead_pct[arm]!.cpu)})`;
      return (
        `| ${s.workload} | ${s.arms.off.median_s.toFixed(3)} (${s.arms.off.median_cpu_s.toFixed(3)}) | ` +
        `${cell("baseline")} | ${cell("on")} | ${cell("on-slo")} |`
      );
    }),
    "",
    "ns per program run (kernel.bpf_stats_enabled=1, one run of each workload; the baseline's",
    "programs return at once, so their figure is the statistics' own share of every other):",
    "",
    "| workload | arm | program | runs | ns/run |",
    "| --- | --- | --- | --- | --- |",
    ...progStats
      .filter((p) => p.runCnt > 0)
      .map(
        (p) => `| ${p.workload} | ${p.arm} | ${p.prog} | ${p.runCnt} | ${p.nsPerRun.toFixed(0)} |`,
      ),
    "",
  ];
  writeFileSync(path.join(dir, "summary.md"), lines.join("\n"));
  const notes = path.join(dir, "NOTES.md");
  if (!existsSync(notes)) {
    writeFileSync(
      notes,
      [
        "# Notes",
        "",
        "- Code: (commit)",
        "- Machine and conditions: (idle? other load? frequency scaling?)",
        "- What the figures show and do not show: (the goal is under 3% on every benchmark for `on`;",
        "  `baseline` is what any program on these tracepoints costs, `on` minus it the observer's own)",
        "",
      ].join("\n"),
    );
  }
  process.stdout.write(`\n${lines.join("\n")}\nwritten to ${dir}\n`);
}

main().catch((err: unknown) => {
  process.stderr.write(`observe-overhead: ${(err as Error).message}\n`);
  process.exit(1);
});
