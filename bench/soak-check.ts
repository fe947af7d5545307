// Judges a soak run (test/vm/guest/soak-scenario.ts writes soak.json) against the targets of
// docs/reliability.md: the critical tail, the agent's memory, the SLO map against the wanted set,
// watchdog ejections, time in fallback, kernel log errors. One table for the short run in CI and
// the hours-long record (bench/soak.ts), with the thresholds each is held to.

/** What the kernel's log and sched_ext's state say so far, in a sample and at the end. */
export interface SoakKernelCounts {
  fallback_ms_total: number;
  attached_s_total: number;
  disables: number;
  ejections: number;
  watchdog_ejections: number;
  rcu_stall_ejections?: number;
  rcu_stalls?: number;
  kernel_errors: number;
}

export interface SoakSample extends SoakKernelCounts {
  t_s: number;
  p99_us: number;
  p50_us: number;
  samples: number;
  agent_pid: number;
  agent_life: number;
  agent_age_s: number;
  rss_kib: number | null;
  map_entries: number;
  wanted: number;
  leaked: number;
  missing: number;
  wrong_values: number;
  converge_ms: number;
  state: string;
  agent_state: string | null;
  safe_mode: boolean | null;
}

export interface SoakRun {
  params: Record<string, number>;
  kernel?: string;
  samples: SoakSample[];
  events: { t_s: number; what: string }[];
  disabledReasons?: string[];
  final?: {
    entries: number;
    wanted: number;
    leaked: number;
    missing: number;
    wrongValues: number;
    churn_cgroups: number;
    churn_remove_failures: number;
    agent_lives: number;
    state: string;
    ops: string | null;
    enable_seq: number;
  } & SoakKernelCounts;
}

export interface Limits {
  /** Last window's p99 at most this times the first's. */
  p99Ratio: number;
  /** RSS spread (max - min) within one agent life, after warmUpS of it, in KiB. */
  rssSpreadKiB: number;
  /** Seconds of an agent's life before its RSS counts. */
  warmUpS: number;
  /** Time sched_ext was disabled over the time since the first attach. */
  fallbackFraction: number;
  /**
   * Whether exits other than the planned force-outs and the watchdog's (an RCU CPU stall report,
   * a runtime error) fail the run, and with them the time in fallback and being attached at the
   * end. The record holds them to 0; CI reports them, since a guest starved by a busy host gets
   * RCU stall reports whichever scheduler runs.
   */
  strictExits: boolean;
}

/** The targets, for the hours-long record. */
export const RECORD_LIMITS: Limits = {
  p99Ratio: 1.2,
  rssSpreadKiB: 2048,
  warmUpS: 120,
  fallbackFraction: 0.001,
  strictExits: true,
};

/**
 * For the few minutes CI runs on a shared 2-core host: the same checks, with the timing ones wide
 * enough that the emulator's noise cannot fail them (a few force-outs in 150 s are a larger share
 * of the time by construction; a short life has little warm-up).
 */
export const CI_LIMITS: Limits = {
  p99Ratio: Infinity,
  rssSpreadKiB: 16 * 1024,
  warmUpS: 20,
  fallbackFraction: 0.1,
  strictExits: false,
};

export interface Verdict {
  name: string;
  target: string;
  value: string;
  pass: boolean;
}

const mib = (kib: number) => `${(kib / 1024).toFixed(1)} MiB`;

/** RSS spread per agent life after its warm-up: [life, spread KiB, min, max]. */
export function rssSpreads(run: SoakRun, warmUpS: number): [number, number, number, number][] {
  const byLife = new Map<number, number[]>();
  for (const s of run.samples) {
    if (s.rss_kib === null || s.agent_age_s < warmUpS) continue;
    byLife.set(s.agent_life, [...(byLife.get(s.agent_life) ?? []), s.rss_kib]);
  }
  return [...byLife].map(([life, v]) => [
    life,
    Math.max(...v) - Math.min(...v),
    Math.min(...v),
    Math.max(...v),
  ]);
}

export function judge(run: SoakRun, limits: Limits): Verdict[] {
  const s = run.samples;
  const f = run.final;
  const out: Verdict[] = [];
  // The kernel's view at the end, or at the last sample of a run cut short.
  const last = s.at(-1);
  const k = f ?? last;
  const reported = (pass: boolean) => pass || !limits.strictExits;
  const first = s[0];
  if (first && last) {
    const ratio = last.p99_us / first.p99_us;
    out.push({
      name: "critical p99, last window vs first",
      target: Number.isFinite(limits.p99Ratio) ? `<= ${limits.p99Ratio}x` : "reported",
      value: `${last.p99_us} / ${first.p99_us} us = ${ratio.toFixed(2)}x (windows: min ${Math.min(...s.map((x) => x.p99_us))}, max ${Math.max(...s.map((x) => x.p99_us))} us)`,
      pass: ratio <= limits.p99Ratio && s.every((x) => x.samples > 0),
    });
  }
  const spreads = rssSpreads(run, limits.warmUpS);
  const worst = spreads.reduce((m, x) => Math.max(m, x[1]), 0);
  const rssAll = s.map((x) => x.rss_kib ?? 0).filter((x) => x > 0);
  out.push({
    name: `agent RSS within each life after ${limits.warmUpS} s`,
    target: `spread <= ${mib(limits.rssSpreadKiB)}`,
    value: `worst spread ${mib(worst)} over ${spreads.length} lives (RSS ${mib(Math.min(...rssAll))}-${mib(Math.max(...rssAll))})`,
    pass: spreads.length > 0 && worst <= limits.rssSpreadKiB,
  });
  const leakedInSamples = s.reduce((m, x) => m + x.leaked, 0);
  const missingFinal = f?.missing ?? NaN;
  out.push({
    name: "SLO map entries left for cgroups that are gone (leaked), at the end",
    target: "0, and the map exactly the wanted set",
    value: `${f?.leaked} (map ${f?.entries}/${f?.wanted} wanted + the agent's own, ${missingFinal} missing)`,
    pass: f?.leaked === 0 && missingFinal === 0 && f.wrongValues === 0,
  });
  const unsettled = s.filter((x) => x.leaked > 0 || x.missing > 0 || x.wrong_values > 0);
  out.push({
    name: "SLO map matches the rules at every sample (within the convergence wait)",
    target: limits.strictExits ? "every sample" : "reported",
    value: `${s.length - unsettled.length}/${s.length} (${leakedInSamples} stale entries seen); slowest ${Math.max(...s.map((x) => x.converge_ms))} ms`,
    pass: reported(unsettled.length === 0),
  });
  const planned = (k?.disables ?? 0) - (k?.ejections ?? 0);
  const otherExits = (k?.ejections ?? 0) - (k?.watchdog_ejections ?? 0);
  out.push({
    name: "watchdog ejections (runnable task stall)",
    target: "0",
    value: `${k?.watchdog_ejections}`,
    pass: k?.watchdog_ejections === 0,
  });
  out.push({
    name: "other unplanned exits of scx_slo",
    target: limits.strictExits ? "0" : "reported",
    value: `${otherExits} (${k?.rcu_stall_ejections ?? 0} on RCU CPU stall reports; the kernel logged ${k?.rcu_stalls ?? 0} RCU stalls); planned SysRq-S force-outs: ${planned}`,
    pass: reported(otherExits === 0),
  });
  const fraction = k ? k.fallback_ms_total / (k.attached_s_total * 1000) : NaN;
  out.push({
    name: "time in fallback (sched_ext disabled, from the kernel log)",
    target: `< ${(limits.fallbackFraction * 100).toFixed(1)}%${limits.strictExits ? "" : " with no other exits"}`,
    value: `${k?.fallback_ms_total} ms of ${k?.attached_s_total} s = ${(fraction * 100).toFixed(3)}% over ${k?.disables} exits`,
    pass: fraction < limits.fallbackFraction || (!limits.strictExits && otherExits > 0),
  });
  out.push({
    name: "kernel log errors (BUG, WARNING, Oops, Call Trace)",
    target: "0",
    value: String(k?.kernel_errors),
    pass: k?.kernel_errors === 0,
  });
  const kills = run.events.filter((e) => e.what.startsWith("agent killed")).length;
  const forced = run.events.filter((e) => e.what.startsWith("scheduler forced out")).length;
  const attachedAtEnd = f?.state === "enabled" && f.ops === "scx_slo";
  out.push({
    name: "faults survived: agent kills, force-outs, safe mode never entered",
    target: "every agent life started; force-outs seen; scx_slo attached at the end",
    value: `${kills} kills (${f?.agent_lives} agent lives), ${forced} force-outs (${planned} seen), ${f?.churn_cgroups} churn cgroups; end: ${f?.state} ${f?.ops}`,
    pass:
      f !== undefined &&
      f.agent_lives === kills + 1 &&
      // A SysRq-S while scx_slo is detached (an agent still starting) has nothing to disable.
      planned <= forced &&
      (forced === 0 || planned > 0) &&
      reported(attachedAtEnd && s.every((x) => x.safe_mode !== true)),
  });
  return out;
}

export function verdictTable(rows: readonly Verdict[]): string {
  const lines = ["| check | target | measured | |", "| --- | --- | --- | --- |"];
  for (const r of rows) {
    lines.push(`| ${r.name} | ${r.target} | ${r.value} | ${r.pass ? "pass" : "**FAIL**"} |`);
  }
  return lines.join("\n") + "\n";
}
