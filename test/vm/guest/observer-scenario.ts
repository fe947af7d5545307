// Runs inside the VM (driven by test/vm/observer.test.ts), in one of two modes (first argument):
//   alone   any kernel (Debian's 6.1 here): the observer by itself, a cyclictest in an SLO
//           cgroup alone on CPU 1 and then beside stress-ng hogs of another cgroup there;
//   beside  the sched_ext kernel: scx_slo attached and the observer reading its SLOs
//           (--slo-pin-dir), both measuring one SLO cgroup's waits under the same load.
// Writes what it saw to $SCXVM_OUT/scenario.json.
import { existsSync } from "node:fs";
import {
  defaultLoaderPaths,
  loadScheduler,
  unloadScheduler,
  type StatsSnapshot,
} from "../../../src/sched/loader.js";
import {
  defaultObserverPaths,
  ObserverSession,
  observerStatus,
  startObserver,
  stopObserver,
} from "../../../src/sched/observer.js";
import { LoaderSession } from "../../../src/sched/session.js";
import { makeRig, runPhase } from "../../observer-rig.js";
import { scenarioRecorder, sysfs } from "./scenario.js";

const mode = process.argv[2];
const seconds = Number(process.argv[3] ?? "3");
const { out, save } = scenarioRecorder();
const obsPaths = defaultObserverPaths();
const schedPaths = defaultLoaderPaths();
const BUDGET_NS = 1_000_000;
/** JSON-ready: cgroup ids are bigints, written as decimal strings. */
const plain = (v: unknown): unknown =>
  JSON.parse(JSON.stringify(v, (_k, x: unknown) => (typeof x === "bigint" ? x.toString() : x)));

out.mode = mode;
out.kernel = (await import("node:os")).release();
out.schedExt = existsSync("/sys/kernel/sched_ext/state");
save();

const rig = makeRig("observe", 1);
out.rig = { sloId: String(rig.sloId), hogsId: String(rig.hogsId), extraProcs: rig.extraProcs };

try {
  if (mode === "alone") {
    out.started = await startObserver(obsPaths);
    out.status = await observerStatus(obsPaths);
    save();
    const s = new ObserverSession(obsPaths);
    const phase = (hogs: number) =>
      runPhase(rig, {
        hogs,
        seconds,
        reset: async () => {
          await s.del([rig.sloId]);
          await s.set([{ cgroupId: rig.sloId, budgetNs: BUDGET_NS, importance: 50 }]);
        },
        stats: () => s.stats(),
        offenders: () => s.offenders(),
      });
    out.quiet = plain(await phase(0));
    save();
    out.busy = plain(await phase(3));
    save();
    await s.close();
  } else if (mode === "beside") {
    await loadScheduler(schedPaths);
    out.ops = sysfs("root/ops");
    out.started = await startObserver(obsPaths, { sloPinDir: schedPaths.pinDir });
    save();
    // SLOs go to the scheduler's map, which the observer reads too.
    const sched = new LoaderSession(schedPaths);
    const obs = new ObserverSession(obsPaths);
    let schedStats: StatsSnapshot | null = null;
    const busy = await runPhase(rig, {
      hogs: 3,
      seconds,
      reset: () => sched.set([{ cgroupId: rig.sloId, budgetNs: BUDGET_NS, importance: 50 }]),
      // Both read right after the run, the scheduler's first.
      stats: async () => {
        schedStats = await sched.stats();
        return obs.stats();
      },
      offenders: () => obs.offenders(),
    });
    out.busy = plain(busy);
    out.scheduler = plain(
      (schedStats as StatsSnapshot | null)?.cgroups.find((c) => c.cgroupId === rig.sloId) ?? null,
    );
    out.observerSeesSlo = (await obs.list()).some((e) => e.cgroupId === rig.sloId);
    out.stateAtEnd = sysfs("state");
    save();
    await sched.close();
    await obs.close();
  } else {
    throw new Error(`unknown mode ${mode}: alone or beside`);
  }
} finally {
  rig.cleanup();
  await stopObserver(obsPaths, true).catch(() => {});
  if (mode === "beside") await unloadScheduler(schedPaths, true).catch(() => {});
}
save();
console.log("scenario complete");
