// The observer's cost on this machine's real CPUs (no VM): context-switch-heavy benchmarks with
// and without the observer attached, interleaved, then the observer's own run time per event
// from the kernel's BPF statistics.
//
//   node dist/bench/observe-overhead.js [--reps N] [--workloads messaging,pipe,hackbench]
//       [--label L] [--out DIR]
//
// Arms, rotated within each repetition so no arm always runs first:
//   off     no observer
//   on      observer attached, the benchmark in no SLO cgroup: what every context switch and
//           wake-up of a node pays
//   on-slo  observer attached, the benchmark inside an SLO cgroup: every one of its waits is
//           measured and charged to the cgroups that ran meanwhile (the observer's worst case)
// Timing runs with kernel.bpf_stats_enabled as found (normally 0: statistics cost two clock
// reads per program run); a last pass turns it on and reads run_time_ns / run_cnt of each
// program for ns per event, then restores it. Needs root, perf (linux-perf), hackbench
// (rt-tests), bpftool and `make build`.
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

const ARMS = ["off", "on", "on-slo"] as const;
type Arm = (typeof ARMS)[number];

const PIN_DIR = "/sys/fs/bpf/scx_slo_observe_bench";
const SLO_CGROUP = "scx-slo-observe-bench";
const BPF_STATS = "/proc/sys/kernel/bpf_stats_enabled";

export interface OverheadRecord {
  arm: Arm;
  workload: string;
  rep: number;
  seconds: number;
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
  if (!existsSync(paths.object)) throw new Error(`${paths.object} is missing: run \`make build\``);

  const started = new Date();
  const label = values.label ? `observe-overhead-${values.label}` : "observe-overhead";
  const dir =
    values.out ?? resultsDir(path.join(findProjectRoot(), "bench", "results"), started, label);
  const rawDir = path.join(dir, "raw");
  mkdirSync(rawDir, { recursive: true });

  ensureBpffs();
  await stopObserver(paths, true);
  const cgDir = path.join(cgroup2Root(), SLO_CGROUP);
  if (!existsSync(cgDir)) mkdirSync(cgDir);
  const cgProcs = path.join(cgDir, "cgroup.procs");
  const sloId = statSync(cgDir, { bigint: true }).ino;
  const statsBefore = readFileSync(BPF_STATS, "utf8").trim();
  const loadStart = loadavg();
  const records: OverheadRecord[] = [];
  const progStats: ProgStats[] = [];

  let attached = false;
  const setArm = async (arm: Arm) => {
    const want = arm !== "off";
    if (want && !attached) {
      await startObserver(paths);
      const s = new ObserverSession(paths);
      await s.set([{ cgroupId: sloId, budgetNs: 100e6, importance: 50 }]);
      await s.close();
    }
    if (!want && attached) await stopObserver(paths);
    attached = want;
  };
  const run = (w: Workload, arm: Arm, tag: string): number => {
    const out = sh(w.argv, arm === "on-slo" ? { cgroupProcs: cgProcs } : {});
    writeFileSync(path.join(rawDir, `${tag}-${w.name}-${arm}.txt`), out);
    const seconds = w.parse(out);
    if (seconds === null) throw new Error(`no time in ${w.name}'s output:\n${out}`);
    return seconds;
  };

  try {
    for (let rep = 0; rep < reps; rep++) {
      for (const w of workloads) {
        const order = ARMS.map((_, i) => ARMS[(i + rep) % ARMS.length]!);
        for (const arm of order) {
          await setArm(arm);
          const seconds = run(w, arm, `rep${rep}`);
          records.push({ arm, workload: w.name, rep, seconds });
          process.stdout.write(`rep ${rep} ${w.name} ${arm}: ${seconds.toFixed(3)} s\n`);
        }
      }
    }
    // ns per event: statistics on, each workload once per observed arm.
    await setArm("on");
    const ours = new Set(
      bpfProgs()
        .filter((p) => p.name?.startsWith("obs_"))
        .map((p) => p.id),
    );
    writeFileSync(BPF_STATS, "1");
    for (const w of workloads) {
      for (const arm of ["on", "on-slo"] as const) {
        const before = new Map(bpfProgs().map((p) => [p.id, p]));
        run(w, arm, "bpf-stats");
        for (const p of bpfProgs()) {
          const b = before.get(p.id);
          if (!ours.has(p.id) || !b) continue;
          const runCnt = (p.run_cnt ?? 0) - (b.run_cnt ?? 0);
          const runTimeNs = (p.run_time_ns ?? 0) - (b.run_time_ns ?? 0);
          progStats.push({
            workload: w.name,
            arm,
            prog: p.name ?? String(p.id),
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
    try {
      rmdirSync(cgDir);
    } catch {
      // a benchmark process still exiting: left for the next run
    }
  }

  const summary = workloads.map((w) => {
    const secs = (arm: Arm) =>
      records.filter((r) => r.workload === w.name && r.arm === arm).map((r) => r.seconds);
    const off = median(secs("off"));
    const on = median(secs("on"));
    const onSlo = median(secs("on-slo"));
    return {
      workload: w.name,
      off_median_s: off,
      on_median_s: on,
      on_slo_median_s: onSlo,
      on_overhead_pct: (on / off - 1) * 100,
      on_slo_overhead_pct: (onSlo / off - 1) * 100,
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
    "| workload | off (median s) | on | on-slo | on vs off | on-slo vs off |",
    "| --- | --- | --- | --- | --- | --- |",
    ...summary.map(
      (s) =>
        `| ${s.workload} | ${s.off_median_s.toFixed(3)} | ${s.on_median_s.toFixed(3)} | ` +
        `${s.on_slo_median_s.toFixed(3)} | ${pct(s.on_overhead_pct)} | ${pct(s.on_slo_overhead_pct)} |`,
    ),
    "",
    "ns per program run (kernel.bpf_stats_enabled=1, one run of each workload):",
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
        "- What the figures show and do not show: (the goal is under 3% on every benchmark for `on`)",
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
