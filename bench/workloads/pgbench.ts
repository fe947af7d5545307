// The `pgbench` workload: PostgreSQL (Debian's, from the host's read-only root) in the critical
// cgroup under cpu.max, driven by rate-limited pgbench (-R: each transaction has a scheduled
// start and its latency counts from there, so it is open-loop) from the loadgen cgroup. The
// cgroup's CPU use over the run is recorded beside the latencies: while a sched_ext scheduler is
// attached the kernel leaves cpu.max to the scheduler, so whether it held is a finding.
import { execFileSync } from "node:child_process";
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import path from "node:path";
import { readCpuStat } from "../../src/cgroup/cgroupfs.js";
import { spawnInCgroup } from "../../src/cgroup/spawn.js";
import { sleep, waitFor } from "../../src/util/process.js";
import { percentilesFromSamples } from "../stats.js";
import type { CellContext, RunningWorkload, Workload } from "../workload.js";
import { stopChild } from "./lines.js";

export interface PgbenchOptions {
  /** Transactions per second over all clients (pgbench -R). */
  rate: number;
  clients: number;
  /** The critical cgroup's cpu.max while the database runs. */
  cpuMax: string;
  /** pgbench's built-in script: "select-only" (read, CPU-bound) or "tpcb-like". */
  script: string;
  scale: number;
}

// 200 tps puts the database's demand at about its cpu.max (0.5 cores) under the emulated CPU:
// the fair arms get throttled now and then, and a scheduler that ignores cpu.max shows it.
export const PGBENCH_DEFAULTS: PgbenchOptions = {
  rate: 200,
  clients: 4,
  cpuMax: "50000 100000",
  script: "select-only",
  scale: 1,
};

const DATA = "/tmp/scx-pg/data";
const SOCK = "/tmp/scx-pg/sock";
const LOGS = "/tmp/scx-pg/log";
const OS_USER = "postgres";

/** Debian's newest installed server: /usr/lib/postgresql/<major>/bin. */
export function findPgBin(root = "/usr/lib/postgresql"): string {
  const majors = existsSync(root)
    ? readdirSync(root)
        .filter((d) => existsSync(path.join(root, d, "bin", "postgres")))
        .sort((a, b) => Number(b) - Number(a))
    : [];
  if (!majors.length) {
    throw new Error(`no PostgreSQL server under ${root}: install Debian's postgresql-15`);
  }
  return path.join(root, majors[0]!, "bin");
}

/** Runs argv as the database's OS user (postgres refuses to run as root). */
function asPostgres(argv: string[]): string[] {
  return ["setpriv", `--reuid=${OS_USER}`, `--regid=${OS_USER}`, "--init-groups", ...argv];
}

/** pgbench -l lines: client tx_no time_us script_no epoch epoch_us [schedule_lag_us]. */
export function parsePgbenchLog(text: string): { latenciesUs: number[]; lagsUs: number[] } {
  const latenciesUs: number[] = [];
  const lagsUs: number[] = [];
  for (const line of text.split("\n")) {
    const f = line.trim().split(/\s+/);
    if (f.length < 6 || f[2] === "skipped") continue;
    const lag = f.length >= 7 ? Number(f[6]) : 0;
    // With -R the logged time starts when the transaction really started; from the schedule,
    // its latency includes the lag, as pgbench's own summary counts it.
    latenciesUs.push(Number(f[2]) + lag);
    lagsUs.push(lag);
  }
  return { latenciesUs, lagsUs };
}

function pgConf(): string {
  return [
    `unix_socket_directories = '${SOCK}'`,
    "listen_addresses = ''",
    "max_connections = 20",
    "shared_buffers = 32MB",
    // tmpfs and a throw-away database: durability only costs emulated CPU here.
    "fsync = off",
    "synchronous_commit = off",
    "full_page_writes = off",
    // Background work on its own timetable would land in random cells.
    "autovacuum = off",
    "logging_collector = off",
    "",
  ].join("\n");
}

export function pgbenchWorkload(o: PgbenchOptions): Workload {
  let bin = "";
  return {
    name: "pgbench",
    needsLoadgen: true,
    hogMarginS: 3,
    supportsRealtime: false,
    criticalCpuMax: o.cpuMax,
    async init() {
      bin = findPgBin();
      rmSync("/tmp/scx-pg", { recursive: true, force: true });
      for (const d of [DATA, SOCK, LOGS]) mkdirSync(d, { recursive: true });
      execFileSync("chown", ["-R", `${OS_USER}:${OS_USER}`, "/tmp/scx-pg"]);
      const [cmd, ...args] = asPostgres([
        path.join(bin, "initdb"),
        "-D",
        DATA,
        "-A",
        "trust",
        "-N",
      ]);
      execFileSync(cmd!, [...args, "-U", "postgres"], { stdio: "ignore" });
      writeFileSync(path.join(DATA, "postgresql.auto.conf"), pgConf());
      const server = await startServer(bin, "/");
      try {
        execFileSync(
          path.join(bin, "pgbench"),
          ["-h", SOCK, "-U", "postgres", "-i", "-q", "-s", String(o.scale), "postgres"],
          { stdio: "ignore" },
        );
      } finally {
        await stopServer(server);
      }
    },
    prepare: (ctx) => preparePgbench(ctx, o, bin),
    async cleanup() {
      rmSync("/tmp/scx-pg", { recursive: true, force: true });
    },
  };
}

async function startServer(bin: string, cgroup: string) {
  const child = spawnInCgroup(cgroup, asPostgres([path.join(bin, "postgres"), "-D", DATA]));
  const exited = waitFor(child);
  for (let i = 0; i < 600; i++) {
    try {
      execFileSync(path.join(bin, "pg_isready"), ["-q", "-h", SOCK, "-U", "postgres"]);
      return child;
    } catch {
      if (child.exitCode !== null) {
        throw new Error(`postgres exited (${child.exitCode}): ${(await exited).stderr.trim()}`);
      }
      await sleep(100);
    }
  }
  await stopChild(child);
  throw new Error("postgres not ready within 60 s");
}

async function stopServer(child: ReturnType<typeof spawnInCgroup>): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  // SIGINT is postgres's fast shutdown: no waiting for idle clients, no crash recovery next time.
  const gone = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  child.kill("SIGINT");
  const timer = setTimeout(() => child.kill("SIGKILL"), 15_000);
  await gone;
  clearTimeout(timer);
}

async function preparePgbench(
  ctx: CellContext,
  o: PgbenchOptions,
  bin: string,
): Promise<RunningWorkload> {
  if (!ctx.cg.loadgen) throw new Error("pgbench workload needs the loadgen cgroup");
  const gen = ctx.cg.loadgen;
  // The cgroup's cpu.max is the ladder's (Workload.criticalCpuMax), in place before the arm.
  const server = await startServer(bin, ctx.cg.critical);
  const close = () => stopServer(server);
  return {
    close,
    async measure() {
      for (const f of readdirSync(LOGS)) rmSync(path.join(LOGS, f));
      const before = readCpuStat(ctx.cg.critical);
      const started = Date.now();
      const client = spawnInCgroup(gen, [
        path.join(bin, "pgbench"),
        ...["-h", SOCK, "-U", "postgres", "-n", "-b", o.script],
        ...["-c", String(o.clients), "-j", "1", "-R", String(o.rate)],
        ...["-T", String(ctx.durationS), "-l", "--log-prefix", path.join(LOGS, "tx")],
        "postgres",
      ]);
      const r = await waitFor(client);
      const runS = (Date.now() - started) / 1000;
      const after = readCpuStat(ctx.cg.critical);
      if (r.code !== 0) throw new Error(`pgbench failed (${r.code}): ${r.stderr.trim()}`);
      const logs = readdirSync(LOGS).map((f) => readFileSync(path.join(LOGS, f), "utf8"));
      const { latenciesUs, lagsUs } = parsePgbenchLog(logs.join("\n"));
      const tps = /tps = ([\d.]+)/.exec(r.stdout);
      const d = (k: string) => (after[k] ?? 0) - (before[k] ?? 0);
      return {
        ...percentilesFromSamples(latenciesUs),
        pg_rate: o.rate,
        pg_script: o.script,
        pg_tps: tps ? Number(tps[1]) : null,
        pg_schedule_lag_p99_us: percentilesFromSamples(lagsUs).p99_us,
        critical_cpu_max: o.cpuMax,
        critical_run_cpu_usec: d("usage_usec"),
        critical_nr_throttled: d("nr_throttled"),
        critical_throttled_usec: d("throttled_usec"),
        run_s: runS,
      };
    },
  };
}
