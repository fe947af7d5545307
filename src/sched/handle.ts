// The agent's handle on the scheduler: everything that touches the loader and the pins in bpffs.
//   - the serve session (map writes, stats, miss events), one while the maps are pinned, renewed
//     when the pins are replaced (an `unload --purge` and a fresh load);
//   - the standby copy, verified in the background while scx_slo runs, so a re-attach is one
//     link creation;
//   - attach (standby first, else a cold load), unload, and the last exit record;
//   - adoption of a scheduler found running: kept when its pins are of this build's layout, else
//     handed over to this build (native/layout.c), and the last hand-over remembered;
//   - a watch on the pin folder: an unload removes the link pin, and whoever supervises the
//     scheduler hears of it at once.
// It holds no scheduler state of its own: the link and maps are pinned and outlive the process.
import { EventEmitter } from "node:events";
import { existsSync, statSync, watch, type FSWatcher } from "node:fs";
import path from "node:path";
import type { ExitInfo, HandOver } from "../api/status.js";
import { errorMessage, silentLogger, type Logger } from "../util/log.js";
import { withTimeout } from "../util/process.js";
import {
  adoptScheduler,
  loadScheduler,
  schedulerStatus,
  unloadScheduler,
  type LoaderPaths,
  type LoadOptions,
  type MissEvent,
} from "./loader.js";
import { readScxSysfs, SCX_SYSFS, type ScxSysfs } from "./scx-sysfs.js";
import { LoaderSession } from "./session.js";
import { StandbyScheduler } from "./standby.js";

/** How long a re-attach waits for a standby copy still in the verifier. */
const STANDBY_WAIT_MS = 2000;

export interface SchedulerHandleOptions {
  readonly paths: LoaderPaths;
  readonly load?: LoadOptions;
  /** sched_ext's sysfs folder (tests point it at a folder without sched_ext). */
  readonly scxSysfsDir?: string;
  readonly log?: Logger;
  /** Called with the standby attach's outcome (metrics). */
  readonly onStandbyAttach?: (result: "ok" | "failed") => void;
}

export type StandbyState = "none" | "preparing" | "ready";

/**
 * Events: "miss" (MissEvent) for each deadline miss on the ring buffer; "exit" (the sched_ext
 * exit kind) the moment the scheduler stops, while a serve session is open; "pins" when something
 * changed in the pin folder; "pins-checked" when pins found by mapSession() turned out to be of
 * this build's layout (a session is given out from now on).
 */
export class SchedulerHandle extends EventEmitter {
  private readonly log: Logger;
  private session: LoaderSession | null = null;
  private sessionMapIno: bigint | null = null;
  private standby: StandbyScheduler | null = null;
  private pinWatcher: FSWatcher | null = null;
  private closed = false;
  private handOver: HandOver | null = null;
  /**
   * slo_map's inode once the pins are known to be of this build's layout: no session is given out
   * for others, since this build's loader would write values another build's scheduler misreads.
   */
  private checkedMapIno: bigint | null = null;
  private checking = false;
  private foreignLogged: bigint | null = null;
  /** This build's own load or hand-over is under way: the pins it is making are checked after. */
  private loading = false;

  constructor(private readonly o: SchedulerHandleOptions) {
    super();
    this.log = o.log ?? silentLogger;
  }

  get paths(): LoaderPaths {
    return this.o.paths;
  }

  /** What the kernel says about sched_ext now (two small sysfs reads). */
  kernelState(): ScxSysfs {
    return readScxSysfs(this.o.scxSysfsDir ?? SCX_SYSFS);
  }

  /** The link pin is present (an unload removes it; the kernel detaches a moment later). */
  linkPinned(): boolean {
    return existsSync(path.join(this.o.paths.pinDir, "link"));
  }

  /**
   * The serve session for the maps pinned now; null when no maps are pinned (never loaded on
   * this boot, or purged), and while they are not known to be of this build's layout (checked in
   * the background; "pins-checked" says when they are). A session for replaced pins is closed and
   * a new one started.
   */
  mapSession(): LoaderSession | null {
    if (this.closed) return null;
    const ino = this.mapIno();
    if (ino === null) {
      this.closeSession();
      return null;
    }
    if (ino !== this.checkedMapIno) {
      this.closeSession();
      this.checkLayout(ino);
      return null;
    }
    if (this.session?.alive && this.sessionMapIno === ino) return this.session;
    this.closeSession();
    const s = new LoaderSession(this.o.paths);
    s.on("miss", (ev: MissEvent) => this.emit("miss", ev));
    s.on("exit-event", (kind: number) => this.emit("exit", kind));
    s.on("stderr", (text: string) => this.log.debug(`loader: ${text.trim()}`));
    s.on("exit", (code: number | null, signal: string | null) => {
      if (this.session === s && !this.closed) {
        this.log.warn(`loader session ended (code ${code}, signal ${signal}); restarting it`);
      }
    });
    this.session = s;
    this.sessionMapIno = ino;
    return s;
  }

  /**
   * Attaches the standby copy when there is one (waiting a little for one still in the verifier,
   * rather than running a second verifier beside it), else loads the object afresh.
   */
  async attach(): Promise<void> {
    this.loading = true;
    try {
      await this.attachNow();
    } finally {
      this.loading = false;
    }
  }

  private async attachNow(): Promise<void> {
    const standby = this.standby;
    this.standby = null;
    if (standby && !standby.ready) await withTimeout(standby.prepared, STANDBY_WAIT_MS);
    if (standby?.ready) {
      try {
        this.noteHandOver(await standby.attach());
        this.checkedMapIno = this.mapIno();
        this.o.onStandbyAttach?.("ok");
        return;
      } catch (err) {
        this.o.onStandbyAttach?.("failed");
        this.log.warn(`attaching the standby copy failed (${errorMessage(err)}); loading afresh`);
      }
    }
    await standby?.close();
    this.noteHandOver(await loadScheduler(this.o.paths, this.o.load ?? {}));
    this.checkedMapIno = this.mapIno();
  }

  /**
   * scx_slo was found attached: keeps it if its pins are of this build's layout (false), else hands
   * over to this build (true). When that fails the old one keeps running and no session is given
   * out for its maps until they are replaced.
   */
  async adopt(): Promise<boolean> {
    this.loading = true;
    const h = await adoptScheduler(this.o.paths, this.o.load ?? {}).finally(
      () => (this.loading = false),
    );
    this.noteHandOver(h);
    this.checkedMapIno = this.mapIno();
    return h !== null;
  }

  private mapIno(): bigint | null {
    try {
      return statSync(path.join(this.o.paths.pinDir, "slo_map"), { bigint: true }).ino;
    } catch {
      return null;
    }
  }

  /** Asks the loader whether the pins at ino are of this build's layout; one check at a time. */
  private checkLayout(ino: bigint): void {
    if (this.checking || this.loading) return;
    this.checking = true;
    void schedulerStatus(this.o.paths)
      .then((st) => {
        if (this.mapIno() !== ino || this.closed) return;
        const layout = st.layout;
        // null: nothing to compare (an object that cannot be opened fails its own load anyway).
        if (layout?.compatible !== false) {
          this.checkedMapIno = ino;
          this.emit("pins-checked");
        } else if (this.foreignLogged !== ino) {
          this.foreignLogged = ino;
          this.log.warn(
            `the pinned maps are another build's (layout ${layout.pinned?.hash ?? "unknown"}, ` +
              `this build's ${layout.object?.hash}): they are not written until this build's ` +
              "scheduler replaces them",
          );
        }
      })
      .catch((err) => this.log.debug(`layout check: ${errorMessage(err)}`))
      .finally(() => (this.checking = false));
  }

  /** The last hand-over from a scheduler pinned by another build; null if none. */
  get lastHandOver(): HandOver | null {
    return this.handOver;
  }

  private noteHandOver(h: HandOver | null): void {
    if (h === null) return;
    this.handOver = h;
    const from = h.from
      ? `ABI ${h.from.abi}, layout ${h.from.hash}`
      : "a build without a layout id";
    const gap = h.fallback_ms === null ? "" : `; the fair class ran ${h.fallback_ms} ms in between`;
    this.log.warn(
      `hand-over: the scheduler pinned by another build (${from}) was replaced by this one ` +
        `(ABI ${h.to.abi}, layout ${h.to.hash})${gap}; ${h.maps_replaced} maps replaced, ` +
        `${h.pins_dropped} old pins dropped; SLOs are written again`,
    );
  }

  /** Unpins the link: the kernel falls back to its fair class. The maps stay. */
  unload(): Promise<void> {
    return unloadScheduler(this.o.paths);
  }

  /** Why the scheduler last stopped (exit_map); null when it never has or cannot be read. */
  async lastExit(): Promise<ExitInfo | null> {
    const s = this.session?.alive
      ? await this.session.status()
      : await schedulerStatus(this.o.paths);
    return s.exit ?? null;
  }

  /** Verifies the next copy in the background; a failure only means the slow path next time. */
  prepareStandby(): void {
    void this.dropStandby();
    if (this.closed) return;
    let standby: StandbyScheduler;
    try {
      standby = new StandbyScheduler(this.o.paths, this.o.load ?? {});
    } catch (err) {
      this.log.warn(`no standby copy of the scheduler: ${errorMessage(err)}`);
      return;
    }
    this.standby = standby;
    void standby.prepared.then((ok) => {
      if (ok) this.log.debug("standby copy of scx_slo verified; a re-attach will take one attach");
      else if (this.standby === standby)
        this.log.warn(`no standby copy of the scheduler: ${standby.error}`);
    });
  }

  dropStandby(): Promise<void> {
    const standby = this.standby;
    this.standby = null;
    return standby?.close() ?? Promise.resolve();
  }

  standbyState(): StandbyState {
    if (this.standby === null) return "none";
    return this.standby.ready ? "ready" : "preparing";
  }

  /** Told by the supervisor that the scheduler runs: listen for its exit, prepare a standby. */
  onAttached(): void {
    this.mapSession();
    this.watchPins();
    this.prepareStandby();
  }

  /**
   * Told by the supervisor that safe mode keeps the scheduler down: a verified copy stays ready
   * (the maps stay pinned), so turning safe mode off costs one attach.
   */
  onParked(): void {
    if (this.standby === null) this.prepareStandby();
  }

  /** Emits "pins" on any change in the pin folder; a no-op until the folder exists. */
  watchPins(): void {
    if (this.pinWatcher !== null || this.closed) return;
    try {
      this.pinWatcher = watch(this.o.paths.pinDir, { persistent: false }, () => this.emit("pins"));
      this.pinWatcher.on("error", () => {
        this.pinWatcher?.close();
        this.pinWatcher = null;
      });
    } catch {
      this.pinWatcher = null;
    }
  }

  /** Closes the session child, the standby and the watch. The scheduler stays as it is. */
  async close(): Promise<void> {
    this.closed = true;
    this.pinWatcher?.close();
    this.pinWatcher = null;
    await this.dropStandby();
    const s = this.session;
    this.session = null;
    await s?.close();
  }

  private closeSession(): void {
    const s = this.session;
    this.session = null;
    this.sessionMapIno = null;
    if (s?.alive) void s.close();
  }
}
