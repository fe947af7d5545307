// One `scx-slo-loader serve` child: the agent's line protocol to the pinned maps (see
// native/serve.c). Requests are answered in order; deadline misses arrive as "miss" events and
// the scheduler's exit as an "exit-event" (with the sched_ext exit kind). The
// child holds no scheduler state of its own: if it dies, a new session picks up the pinned maps
// where it left off.
import { spawn, type ChildProcessWithoutNullStreams } from "node:child_process";
import { EventEmitter } from "node:events";
import { existsSync } from "node:fs";
import { createInterface } from "node:readline";
import {
  LoaderError,
  type LoaderPaths,
  type MissEvent,
  type SloEntry,
  type StatsSnapshot,
} from "./loader.js";
import {
  CountsReplySchema,
  ExitEventSchema,
  GetReplySchema,
  MissEventSchema,
  parseReply,
  SchedulerStatusSchema,
  SessionReplySchema,
  SloListSchema,
  StatsReplySchema,
  type SchedulerStatus,
} from "./replies.js";

interface Pending {
  resolve: (reply: Record<string, unknown>) => void;
  reject: (err: Error) => void;
}

/** SLO entries per `set` request, and ids per `del`: no request line grows without bound. */
const SET_CHUNK = 512;
const DEL_CHUNK = 1024;

export class LoaderSession extends EventEmitter {
  private child: ChildProcessWithoutNullStreams;
  private nextId = 1;
  private pending = new Map<number, Pending>();
  private closed = false;

  constructor(paths: LoaderPaths) {
    super();
    if (!existsSync(paths.binary)) {
      throw new LoaderError(`${paths.binary} is missing: run \`make build\``);
    }
    this.child = spawn(paths.binary, ["serve", "--pin-dir", paths.pinDir], {
      stdio: ["pipe", "pipe", "pipe"],
    });
    const lines = createInterface({ input: this.child.stdout });
    lines.on("line", (line) => this.onLine(line));
    this.child.stderr.on("data", (d: Buffer) => this.emit("stderr", d.toString()));
    this.child.on("exit", (code, signal) => {
      this.closed = true;
      this.rejectAll(new LoaderError(`loader session ended (code ${code}, signal ${signal})`));
      this.emit("exit", code, signal);
    });
    this.child.on("error", (err) => {
      // e.g. the binary exists but cannot be executed: reported like an exit, never thrown
      this.closed = true;
      this.rejectAll(new LoaderError(`loader session failed: ${err.message}`));
      this.emit("exit", null, null);
    });
    this.child.stdin.on("error", () => {
      /* reported through "exit" */
    });
  }

  get alive(): boolean {
    return !this.closed;
  }

  private rejectAll(err: Error): void {
    for (const p of this.pending.values()) p.reject(err);
    this.pending.clear();
  }

  private onLine(line: string): void {
    let msg: unknown;
    try {
      msg = JSON.parse(line);
    } catch {
      this.emit("stderr", `unparsable loader line: ${line}`);
      return;
    }
    if ((msg as { event?: unknown }).event === "exit") {
      try {
        this.emit("exit-event", parseReply(ExitEventSchema, msg, "exit event").exit_kind);
      } catch (err) {
        this.emit("stderr", (err as Error).message);
      }
      return;
    }
    if ((msg as { event?: unknown }).event === "miss") {
      try {
        const ev = parseReply(MissEventSchema, msg, "miss event");
        const event: MissEvent = {
          cgroupId: ev.cgroup_id,
          waitNs: ev.wait_ns,
          budgetNs: ev.budget_ns,
          atNs: ev.at_ns,
          pid: ev.pid,
          cpu: ev.cpu,
          comm: ev.comm,
        };
        this.emit("miss", event);
      } catch (err) {
        this.emit("stderr", (err as Error).message);
      }
      return;
    }
    let reply;
    try {
      reply = parseReply(SessionReplySchema, msg, "loader session");
    } catch (err) {
      this.emit("stderr", (err as Error).message);
      return;
    }
    if (reply.id === null) return;
    const p = this.pending.get(reply.id);
    if (!p) return;
    this.pending.delete(reply.id);
    if (reply.ok) p.resolve(reply);
    else p.reject(new LoaderError(reply.error));
  }

  protected request(words: string): Promise<Record<string, unknown>> {
    if (this.closed) return Promise.reject(new LoaderError("loader session is closed"));
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.child.stdin.write(`${id} ${words}\n`);
    });
  }

  /** Adds or changes SLOs; each chunk is validated as a whole by the loader (all or nothing). */
  async set(entries: readonly SloEntry[]): Promise<void> {
    for (let i = 0; i < entries.length; i += SET_CHUNK) {
      const chunk = entries.slice(i, i + SET_CHUNK);
      await this.request(
        "set " +
          chunk.map((e) => `${e.cgroupId} ${Math.round(e.budgetNs)} ${e.importance}`).join(" "),
      );
    }
  }

  async del(cgroupIds: readonly bigint[]): Promise<void> {
    for (let i = 0; i < cgroupIds.length; i += DEL_CHUNK) {
      await this.request("del " + cgroupIds.slice(i, i + DEL_CHUNK).join(" "));
    }
  }

  /** The SLO map's entry for one cgroup; null when it has none. */
  async get(cgroupId: bigint): Promise<SloEntry | null> {
    const { slo } = parseReply(GetReplySchema, await this.request(`get ${cgroupId}`), "loader get");
    return slo && { cgroupId: slo.cgroup_id, budgetNs: slo.budget_ns, importance: slo.importance };
  }

  async list(): Promise<SloEntry[]> {
    const reply = parseReply(SloListSchema, await this.request("list"), "loader list");
    return reply.slos.map((s) => ({
      cgroupId: s.cgroup_id,
      budgetNs: s.budget_ns,
      importance: s.importance,
    }));
  }

  async stats(): Promise<StatsSnapshot> {
    const reply = parseReply(StatsReplySchema, await this.request("stats"), "loader stats");
    const buckets = reply.hist_buckets;
    return {
      counters: reply.counters,
      cgroups: reply.cgroups.map((c) => ({
        cgroupId: c.cgroup_id,
        runs: c.runs,
        waitSumNs: c.wait_sum_ns,
        waitMaxNs: c.wait_max_ns,
        misses: c.misses,
        budgetNs: c.budget_ns,
        importance: c.importance,
        hist: [...c.hist, ...new Array<number>(Math.max(0, buckets - c.hist.length)).fill(0)],
      })),
    };
  }

  /** Runs and misses per SLO cgroup: the overload window's samples, cheaper than stats(). */
  async counts(): Promise<{ cgroupId: bigint; runs: number; misses: number }[]> {
    const reply = parseReply(CountsReplySchema, await this.request("counts"), "loader counts");
    return reply.cgroups.map((c) => ({ cgroupId: c.cgroup_id, runs: c.runs, misses: c.misses }));
  }

  async status(): Promise<SchedulerStatus> {
    return parseReply(SchedulerStatusSchema, await this.request("status"), "loader status");
  }

  async close(): Promise<void> {
    if (this.closed) return;
    await new Promise<void>((resolve) => {
      this.child.once("exit", () => resolve());
      this.child.stdin.end();
    });
  }
}
