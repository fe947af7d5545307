// Runs inside the sched_ext VM (driven by test/vm/soak.test.ts for a few minutes, and by
// bench/soak.ts for hours): every fault at once, for SOAK_DURATION_S seconds.
//   - a critical cgroup with an SLO runs cyclictest against CPU hogs without an SLO, throughout;
//   - SLO cgroups with a process in each are created and deleted every SOAK_CHURN_MS;
//   - the config is rewritten every SOAK_CONFIG_S, a good one and a bad one in turn;
//   - the agent is killed with SIGKILL every SOAK_KILL_EVERY_S and started again at once;
//   - the scheduler is forced out by the kernel (SysRq-S) every SOAK_FORCE_EVERY_S.
// Every SOAK_SAMPLE_S (one cyclictest window) it records the window's critical p99, the agent's
// RSS, the SLO map against the set the rules call for, the time sched_ext spent disabled (from
// the kernel log), ejections and kernel log errors. Everything goes to $SCXVM_OUT/soak.json after
// each sample, so a run cut short still leaves what it saw. Judged by bench/soak-check.ts.
import { spawnSync, type ChildProcess } from "node:child_process";
import { appendFileSync, existsSync, readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import type { SoakSample } from "../../../bench/soak-check.js";
import { parseCyclictestHistogram } from "../../../bench/workloads/cyclictest.js";
import { cgroupId, createCgroup, removeCgroup } from "../../../src/cgroup/cgroupfs.js";
import { spawnInCgroup } from "../../../src/cgroup/spawn.js";
import { defaultLoaderPaths, type SloEntry } from "../../../src/sched/loader.js";
import { LoaderSession } from "../../../src/sched/session.js";
import { sleep, waitFor } from "../../../src/util/process.js";

const num = (name: string, dflt: number) => Number(process.env[name] ?? dflt);
const P = {
  durationS: num("SOAK_DURATION_S", 150),
  sampleS: num("SOAK_SAMPLE_S", 15),
  churnMs: num("SOAK_CHURN_MS", 2000),
  /** Churn cgroups alive at once: each lives churnLive x churnMs. */
  churnLive: num("SOAK_CHURN_LIVE", 5),
  configS: num("SOAK_CONFIG_S", 20),
  killEveryS: num("SOAK_KILL_EVERY_S", 60),
  killPhaseS: num("SOAK_KILL_PHASE_S", 50),
  forceEveryS: num("SOAK_FORCE_EVERY_S", 60),
  forcePhaseS: num("SOAK_FORCE_PHASE_S", 80),
  hogs: num("SOAK_HOGS", 4),
  /** How long a sample waits for the SLO map to match the wanted set before it counts. */
  convergeMs: num("SOAK_CONVERGE_MS", 10_000),
};

const OUT = process.env.SCXVM_OUT ?? "/tmp";
const CONFIG = "/tmp/soak.yaml";
const AGENT_LOG = path.join(OUT, "agent.log");
const URL = "http://127.0.0.1:9617";
const CRIT = "/soak/crit";
const AGENT_CG = "/soak/agent";
const CRIT_BUDGET_NS = 1_000_000;

const t0 = performance.now();
const tS = () => (performance.now() - t0) / 1000;
const events: { t_s: number; what: string }[] = [];
const samples: SoakSample[] = [];
const out: Record<string, unknown> = { params: P, samples, events };
const save = () => writeFileSync(path.join(OUT, "soak.json"), JSON.stringify(out, null, 1));
const note = (what: string) => {
  events.push({ t_s: Math.round(tS() * 10) / 10, what });
  console.log(`[soak ${tS().toFixed(1)} s] ${what}`);
};
const sysfs = (f: string) => readFileSync(`/sys/kernel/sched_ext/${f}`, "utf8").trim();

// ---- the config: good ones alternate the churn budget, so each is a real change ------------
let goodConfigs = 0;
let churnBudgetMs = 5;
function writeConfig(good: boolean): void {
  if (good) {
    churnBudgetMs = goodConfigs++ % 2 === 0 ? 5 : 6;
    writeFileSync(
      CONFIG,
      `version: 1\nslos:\n  - cgroup: "${CRIT}"\n    budget_ms: ${CRIT_BUDGET_NS / 1e6}\n    importance: 90\n` +
        `  - match: "/soak/churn/*"\n    budget_ms: ${churnBudgetMs}\n    importance: 60\n`,
    );
  } else {
    // Rejected as a whole: the agent keeps the rules it has.
    writeFileSync(CONFIG, `version: 1\nslos:\n  - cgroup: "${CRIT}"\n    budget_ms: -3\n`);
  }
}

// ---- the agent -------------------------------------------------------------------------------
let agent = null as ChildProcess | null;
let agentLife = 0;
let agentStartedAt = 0;
function startAgent(): void {
  agent = spawnInCgroup(AGENT_CG, ["node", "dist/src/cli/main.js", "run", "--config", CONFIG], {
    cwd: process.cwd(),
  });
  agentLife++;
  agentStartedAt = tS();
  const log = (d: Buffer) => appendFileSync(AGENT_LOG, d);
  agent.stdout!.on("data", log);
  agent.stderr!.on("data", log);
}
async function killAgent(signal: NodeJS.Signals): Promise<void> {
  const a = agent;
  agent = null;
  if (!a || a.exitCode !== null) return;
  const exited = new Promise((r) => a.once("exit", r));
  a.kill(signal);
  await exited;
}
function rssKiB(pid: number | undefined): number | null {
  try {
    return Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, "utf8"))?.[1]);
  } catch {
    return null;
  }
}
type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any
async function agentStatus(): Promise<Json | null> {
  try {
    const r = await fetch(`${URL}/status`, { signal: AbortSignal.timeout(5000) });
    return (await r.json()) as Json;
  } catch {
    return null;
  }
}

// ---- churn -----------------------------------------------------------------------------------
interface ChurnCg {
  path: string;
  id: bigint;
  proc: ChildProcess;
}
const live: ChurnCg[] = [];
let churnSeq = 0;
let churnPaused = false;
let churnIdle: Promise<void> = Promise.resolve();
let churnRemoveFailures = 0;
async function churnStep(): Promise<void> {
  const p = `/soak/churn/c${churnSeq++}`;
  const id = createCgroup(p);
  live.push({ path: p, id, proc: spawnInCgroup(p, ["sleep", "100000"]) });
  while (live.length > P.churnLive) {
    const old = live.shift()!;
    const done = waitFor(old.proc);
    old.proc.kill("SIGKILL");
    await done;
    let removed = false;
    for (let i = 0; i < 50 && !removed; i++) {
      try {
        removeCgroup(old.path);
        removed = true;
      } catch {
        await sleep(20); // the killed task may still be leaving the cgroup
      }
    }
    if (!removed) churnRemoveFailures++;
  }
}
async function churnLoop(until: number): Promise<void> {
  while (tS() < until) {
    const started = performance.now();
    if (!churnPaused) {
      churnIdle = churnStep();
      await churnIdle;
    }
    await sleep(Math.max(0, P.churnMs - (performance.now() - started)));
  }
}

// ---- the kernel log --------------------------------------------------------------------------
interface KernelView {
  fallbackMs: number;
  attachedS: number;
  disables: number;
  /** Exits that were not the planned SysRq-S force-outs. */
  ejections: number;
  /** The sched_ext watchdog's: a runnable task waited past timeout_ms. */
  watchdog: number;
  /** sched_ext's reaction to an RCU CPU stall report while scx_slo ran. */
  rcuStallEjections: number;
  /** RCU stall reports, whoever was running. */
  rcuStalls: number;
  /** BUG, WARNING, Oops, Call Trace lines. */
  errors: number;
  disabledReasons: string[];
}
function kernelView(): KernelView {
  const lines = spawnSync("dmesg", { encoding: "utf8" }).stdout.split("\n");
  const uptimeMs = Number(readFileSync("/proc/uptime", "utf8").split(" ")[0]) * 1000;
  let firstEnable: number | null = null;
  let disabledAt: number | null = null;
  let fallbackMs = 0;
  const v: KernelView = {
    fallbackMs: 0,
    attachedS: 0,
    disables: 0,
    ejections: 0,
    watchdog: 0,
    rcuStallEjections: 0,
    rcuStalls: 0,
    errors: 0,
    disabledReasons: [],
  };
  lines.forEach((line, i) => {
    const m =
      /^\[\s*([0-9.]+)\] sched_ext: BPF scheduler "scx_slo" (enabled|disabled \((.*)\))/.exec(line);
    if (m) {
      const t = Number(m[1]) * 1000;
      if (m[2] === "enabled") {
        firstEnable ??= t;
        if (disabledAt !== null) fallbackMs += t - disabledAt;
        disabledAt = null;
        return;
      }
      v.disables++;
      disabledAt = t;
      // The next line, when it is sched_ext's, says what went wrong.
      const detail = /sched_ext: scx_slo: (.*)/.exec(lines[i + 1] ?? "")?.[1] ?? "";
      const reason = detail ? `${m[3]}: ${detail}` : (m[3] ?? "");
      v.disabledReasons.push(reason);
      // The planned force-outs are SysRq-S; anything else is the kernel ejecting the scheduler.
      if (!/sysrq/i.test(reason)) v.ejections++;
      if (/runnable task stall|watchdog/i.test(reason)) v.watchdog++;
      if (/RCU CPU stall/i.test(reason)) v.rcuStallEjections++;
      return;
    }
    if (/rcu: INFO: .*detected stalls/.test(line)) v.rcuStalls++;
    if (/\b(BUG|WARNING|Oops|Call Trace)\b/.test(line)) v.errors++;
  });
  if (disabledAt !== null) fallbackMs += uptimeMs - disabledAt;
  v.fallbackMs = fallbackMs;
  v.attachedS = firstEnable === null ? 0 : (uptimeMs - firstEnable) / 1000;
  return v;
}

// ---- the SLO map against what the rules call for ---------------------------------------------
let session = null as LoaderSession | null;
async function mapEntries(): Promise<SloEntry[]> {
  if (!session?.alive) session = new LoaderSession(defaultLoaderPaths());
  return session.list();
}
async function compareMap(): Promise<{
  entries: number;
  wanted: number;
  leaked: number;
  missing: number;
  wrongValues: number;
  convergeMs: number;
}> {
  const started = performance.now();
  for (;;) {
    const want = new Map<bigint, number>([
      [cgroupId(CRIT), CRIT_BUDGET_NS],
      ...live.map((c) => [c.id, churnBudgetMs * 1e6] as [bigint, number]),
    ]);
    const selfId = cgroupId(AGENT_CG);
    let entries: SloEntry[] = [];
    try {
      entries = await mapEntries();
    } catch {
      /* the session is renewed at the next try */
    }
    const inMap = new Set(entries.map((e) => e.cgroupId));
    const leaked = entries.filter((e) => !want.has(e.cgroupId) && e.cgroupId !== selfId).length;
    const missing = [...want.keys()].filter((id) => !inMap.has(id)).length;
    const wrongValues = entries.filter(
      (e) => want.has(e.cgroupId) && want.get(e.cgroupId) !== e.budgetNs,
    ).length;
    const convergeMs = Math.round(performance.now() - started);
    if ((leaked === 0 && missing === 0 && wrongValues === 0) || convergeMs > P.convergeMs) {
      return {
        entries: entries.length,
        wanted: want.size,
        leaked,
        missing,
        wrongValues,
        convergeMs,
      };
    }
    await sleep(250);
  }
}

// ---- scheduled faults ------------------------------------------------------------------------
function every(phaseS: number, everyS: number, until: number, fn: () => Promise<void>): void {
  const run = async (at: number) => {
    if (at >= until) return;
    await sleep(Math.max(0, (at - tS()) * 1000));
    await fn();
    void run(at + everyS);
  };
  void run(phaseS);
}

// ---- the run ---------------------------------------------------------------------------------
// Under emulation a 2 MiB page copy (khugepaged collapsing a huge page, kcompactd migrating one)
// is slow enough that such a thread, preempted inside an RCU read-side section while the hogs
// run, holds up a grace period past the kernel's 21 s RCU stall report, under the fair class as
// under scx_slo; and sched_ext ejects any BPF scheduler on such a report. Neither thread's work
// is part of this scenario, so the guest does without it.
for (const [file, value] of [
  ["/sys/kernel/mm/transparent_hugepage/enabled", "never"],
  ["/sys/kernel/mm/transparent_hugepage/defrag", "never"],
  ["/proc/sys/vm/compaction_proactiveness", "0"],
]) {
  try {
    writeFileSync(file!, value!);
  } catch {
    /* absent on this kernel: nothing to turn off */
  }
}
createCgroup("/soak");
createCgroup(CRIT);
createCgroup(AGENT_CG);
createCgroup("/soak/batch");
createCgroup("/soak/churn");
writeConfig(true);
out.kernel = readFileSync("/proc/sys/kernel/osrelease", "utf8").trim();
startAgent();
note("agent started");
const t0Attach = performance.now();
while (performance.now() - t0Attach < 120_000 && sysfs("state") !== "enabled") await sleep(200);
note(`scx_slo ${sysfs("state")}`);
const hogs = spawnInCgroup("/soak/batch", [
  "stress-ng",
  "--cpu",
  String(P.hogs),
  "--timeout",
  `${P.durationS + 600}s`,
  "--temp-path",
  "/tmp",
  "-q",
]);
const end = tS() + P.durationS;
const churn = churnLoop(end);
let configGood = true;
every(P.configS, P.configS, end, async () => {
  configGood = !configGood;
  writeConfig(configGood);
  note(`config rewritten (${configGood ? `good, churn budget ${churnBudgetMs} ms` : "bad"})`);
});
every(P.killPhaseS, P.killEveryS, end, async () => {
  await killAgent("SIGKILL");
  note("agent killed (SIGKILL)");
  startAgent();
  note(`agent started (life ${agentLife})`);
});
every(P.forcePhaseS, P.forceEveryS, end, async () => {
  writeFileSync("/proc/sysrq-trigger", "S");
  note("scheduler forced out (SysRq-S)");
});

// Windows back to back until the end; a sample's own reads (the map, the kernel log, /status)
// come between two windows, so the last window may end a little after the faults stop.
while (tS() + P.sampleS / 2 < end) {
  const ct = spawnInCgroup(CRIT, [
    "cyclictest",
    "-q",
    "-m",
    `-D${Math.max(1, P.sampleS - 1)}`,
    "-i1000",
    "-h100000",
  ]);
  const r = await waitFor(ct);
  const pct = parseCyclictestHistogram(r.stdout);
  churnPaused = true;
  await churnIdle;
  const map = await compareMap();
  churnPaused = false;
  const k = kernelView();
  const st = await agentStatus();
  samples.push({
    t_s: Math.round(tS()),
    p99_us: pct.p99_us,
    p50_us: pct.p50_us,
    samples: pct.samples,
    agent_pid: agent?.pid ?? 0,
    agent_life: agentLife,
    agent_age_s: Math.round(tS() - agentStartedAt),
    rss_kib: rssKiB(agent?.pid),
    map_entries: map.entries,
    wanted: map.wanted,
    leaked: map.leaked,
    missing: map.missing,
    wrong_values: map.wrongValues,
    converge_ms: map.convergeMs,
    fallback_ms_total: Math.round(k.fallbackMs),
    attached_s_total: Math.round(k.attachedS),
    disables: k.disables,
    ejections: k.ejections,
    watchdog_ejections: k.watchdog,
    rcu_stall_ejections: k.rcuStallEjections,
    rcu_stalls: k.rcuStalls,
    kernel_errors: k.errors,
    state: sysfs("state"),
    agent_state: st?.scheduler?.state ?? null,
    safe_mode: st?.safe_mode?.on ?? null,
  });
  out.disabledReasons = k.disabledReasons;
  save();
  const s = samples.at(-1)!;
  console.log(
    `[soak ${s.t_s} s] p99 ${s.p99_us} us, rss ${((s.rss_kib ?? 0) / 1024).toFixed(1)} MiB, ` +
      `map ${s.map_entries}/${s.wanted} leaked ${s.leaked} missing ${s.missing}, ` +
      `fallback ${s.fallback_ms_total} ms, ejections ${s.ejections}, errors ${s.kernel_errors}`,
  );
}

// ---- the end: churn stops, its cgroups go, the map must come back to the fixed set ----------
await churn;
churnPaused = true;
while (live.length) {
  const old = live.shift()!;
  const done = waitFor(old.proc);
  old.proc.kill("SIGKILL");
  await done;
  await sleep(50);
  try {
    removeCgroup(old.path);
  } catch {
    churnRemoveFailures++;
  }
}
hogs.kill("SIGKILL");
const final = await compareMap();
const k = kernelView();
out.final = {
  ...final,
  churn_cgroups: churnSeq,
  churn_remove_failures: churnRemoveFailures,
  agent_lives: agentLife,
  state: sysfs("state"),
  ops: existsSync("/sys/kernel/sched_ext/root/ops") ? sysfs("root/ops") : null,
  enable_seq: Number(sysfs("enable_seq")),
  fallback_ms_total: Math.round(k.fallbackMs),
  attached_s_total: Math.round(k.attachedS),
  disables: k.disables,
  ejections: k.ejections,
  watchdog_ejections: k.watchdog,
  rcu_stall_ejections: k.rcuStallEjections,
  rcu_stalls: k.rcuStalls,
  kernel_errors: k.errors,
  agent_status: await agentStatus(),
};
out.disabledReasons = k.disabledReasons;
save();
await session?.close();
await killAgent("SIGTERM");
note("done");
save();
process.exit(0);
