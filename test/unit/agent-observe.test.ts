// The agent in observe mode on this machine's own kernel (BPF and BTF, no sched_ext): it starts
// the tracing observer by itself, writes the SLO where the observer reads it, and /metrics and
// /status give the SLO cgroup's waits, its misses and the neighbour that held the CPU, as they
// would scx_slo's. Real cgroups, real cyclictest and stress-ng on one CPU; needs root.
import { after, test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { cpus, tmpdir } from "node:os";
import path from "node:path";
import { Agent } from "../../src/agent/agent.js";
import { AgentStatusSchema } from "../../src/api/status.js";
import { defaultLoaderPaths } from "../../src/sched/loader.js";
import { defaultObserverPaths, stopObserver } from "../../src/sched/observer.js";
import { silentLogger } from "../../src/util/log.js";
import { ensureBpffs, makeRig, runPhase, type ObserveRig } from "../observer-rig.js";

const isRoot = process.getuid?.() === 0;
const observerPaths = {
  ...defaultObserverPaths(),
  pinDir: `/sys/fs/bpf/scx_slo_agent_observe_test_${process.pid}`,
};
const skip = !isRoot
  ? "needs root"
  : !existsSync(observerPaths.object)
    ? "run `make build`"
    : existsSync("/sys/kernel/sched_ext/state")
      ? "this kernel has sched_ext: observe mode is tested in the VM"
      : false;

let rig: ObserveRig | undefined;
const dir = mkdtempSync(path.join(tmpdir(), "scx-agent-observe-"));
after(async () => {
  rig?.cleanup();
  if (isRoot) await stopObserver(observerPaths, true).catch(() => {});
  rmSync(dir, { recursive: true, force: true });
});

test(
  "no sched_ext: the agent observes; waits, misses and the neighbour reach /metrics",
  { skip },
  async () => {
    ensureBpffs();
    rig = makeRig(`scx-agent-observe-${process.pid}`, cpus().length - 1);
    const rel = (abs: string) => abs.slice(rig!.root.length);
    const config = path.join(dir, "config");
    writeFileSync(config, `${rel(rig.sloDir)} 1 90\n`);
    mkdirSync(path.join(dir, "no-sched-ext"));
    const agent = new Agent({
      source: { kind: "file", file: config },
      listen: { host: "127.0.0.1", port: 0 },
      loaderPaths: { ...defaultLoaderPaths(), pinDir: path.join(dir, "pins") },
      observerPaths,
      log: silentLogger,
      cgroupRoot: rig.root,
      safeModeFile: path.join(dir, "safe-mode"),
      scxSysfsDir: path.join(dir, "no-sched-ext"),
      selfCgroup: null,
    });
    const url = await agent.start();
    try {
      const status = async () =>
        AgentStatusSchema.parse(await (await fetch(`${url}/status`)).json());
      const st = await status();
      assert.deepEqual(st.mode, {
        mode: "observe",
        reason: "the kernel has no sched_ext",
        observer: "instead",
      });
      assert.equal(st.slos.applied, 1, "the SLO is in the observer's map");

      await runPhase(rig, {
        hogs: 3,
        seconds: 3,
        reset: async () => {},
        stats: async () => ({ counters: {}, cgroups: [] }),
        offenders: async () => [],
      });
      // /metrics reads the observer's stats (at most a second old).
      await new Promise((r) => setTimeout(r, 1100));
      const metrics = await (await fetch(`${url}/metrics`)).text();
      const labels = `cgroup="${rel(rig.sloDir)}",namespace="",pod=""`;
      const value = (name: string, extra = "") =>
        Number(
          new RegExp(`^${name}\\{${escape(labels)}${extra}\\} (\\S+)$`, "m").exec(metrics)?.[1],
        );
      assert.match(metrics, /^scx_slo_mode\{mode="observe"\} 1$/m);
      assert.ok(value("scx_slo_runs_total") > 100, "cyclictest's waits measured");
      assert.ok(value("scx_slo_misses_total") > 0, "with 3 hogs on its CPU, 1 ms is missed");
      const hogs = value(
        "scx_slo_neighbour_wait_seconds_total",
        `,neighbour="${rel(rig.hogsDir)}"`,
      );
      assert.ok(
        hogs > 0,
        `the hogs are named as the neighbour:\n${metrics
          .split("\n")
          .filter((l) => l.includes("neighbour"))
          .join("\n")}`,
      );
      const after = await status();
      const c = after.cgroups.find((x) => x.cgroup === rel(rig!.sloDir))!;
      assert.equal(c.neighbours[0]?.cgroup, rel(rig.hogsDir), "the hogs held the CPU longest");
    } finally {
      await agent.stop();
    }
  },
);

function escape(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\/]/g, "\\$&");
}
