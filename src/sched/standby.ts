// A verified copy of the scheduler waiting to be attached: `scx-slo-loader standby`. Opening the
// object with libbpf and passing the verifier is most of a load's time, the attach itself a small
// part, so the agent keeps one ready while scx_slo runs and a re-attach after an exit costs only
// the link creation (docs/reliability.md has the figures).
import { spawn, type ChildProcessWithoutNullStreams } from "node:child_process";
import { existsSync } from "node:fs";
import { createInterface } from "node:readline";
import type { HandOver } from "../api/status.js";
import { withTimeout } from "../util/process.js";
import { handOverOf, LoaderError, loadArgs, type LoaderPaths, type LoadOptions } from "./loader.js";
import { LoadReplySchema, parseLine, StandbyLineSchema } from "./replies.js";

const ERROR_PREFIX = "scx-slo-loader: error: ";

export class StandbyScheduler {
  private readonly child: ChildProcessWithoutNullStreams;
  private readonly lines: string[] = [];
  private waiters: (() => void)[] = [];
  private exited = false;
  private stderr = "";
  private isReady = false;
  /** Settles once the object is verified (true) or the child failed first (false). */
  readonly prepared: Promise<boolean>;

  constructor(paths: LoaderPaths, opts: LoadOptions = {}) {
    if (!existsSync(paths.binary)) {
      throw new LoaderError(`${paths.binary} is missing: run \`make build\``);
    }
    this.child = spawn(
      paths.binary,
      ["standby", ...loadArgs(paths, opts), "--pin-dir", paths.pinDir],
      { stdio: ["pipe", "pipe", "pipe"] },
    );
    createInterface({ input: this.child.stdout }).on("line", (line) => {
      this.lines.push(line);
      this.notify();
    });
    this.child.stderr.on("data", (d: Buffer) => (this.stderr += d.toString()));
    this.child.stdin.on("error", () => {
      /* seen as the exit */
    });
    const ended = () => {
      this.exited = true;
      this.notify();
    };
    // "close", not "exit": it comes after the last stdout line has been read.
    this.child.on("close", ended);
    this.child.on("error", ended);
    this.prepared = this.nextLine().then((line) => {
      this.isReady = replyField(line, "ready");
      return this.isReady;
    });
  }

  /** Verified and not yet used: attach() will take one link creation. */
  get ready(): boolean {
    return this.isReady && !this.exited;
  }

  /** Why the standby could not be made or used: the loader's error line (notices come first). */
  get error(): string {
    const lines = this.stderr.trim().split("\n");
    const line = lines.find((l) => l.startsWith(ERROR_PREFIX)) ?? lines[0] ?? "";
    return line.replace(ERROR_PREFIX, "") || "the standby loader exited";
  }

  /**
   * Attaches the verified copy; rejects with the loader's error (the caller loads afresh), or
   * after timeoutMs if the kernel's enable never returns (the child is killed then). Resolves with
   * the hand-over when it replaced pins of another build's layout.
   */
  async attach(timeoutMs = 5000): Promise<HandOver | null> {
    if (!this.ready) throw new LoaderError(`standby not ready: ${this.error}`);
    this.isReady = false;
    this.child.stdin.end("attach\n");
    const reply = await withTimeout(this.nextLine(), timeoutMs);
    if (reply === undefined) {
      this.child.kill("SIGKILL");
      throw new LoaderError(`the standby attach did not answer within ${timeoutMs} ms`);
    }
    if (!replyField(reply, "ok")) {
      await this.exit();
      throw new LoaderError(this.error);
    }
    return handOverOf(parseLine(LoadReplySchema, reply ?? "", "standby attach"));
  }

  /**
   * Drops the copy unattached: a verified one exits on end of input, one still in the verifier is
   * killed (a standby creates and pins nothing, so that is safe). Resolves once it has exited.
   */
  close(): Promise<void> {
    const verifying = !this.isReady;
    this.isReady = false;
    if (!this.exited) {
      if (verifying) this.child.kill("SIGKILL");
      else this.child.stdin.end();
    }
    return this.exit();
  }

  private exit(): Promise<void> {
    return new Promise((r) => (this.exited ? r() : this.child.once("close", () => r())));
  }

  private notify(): void {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }

  /** The next stdout line, or null once the child has exited without one. */
  private async nextLine(): Promise<string | null> {
    for (;;) {
      const line = this.lines.shift();
      if (line !== undefined) return line;
      if (this.exited) return null;
      await new Promise<void>((r) => this.waiters.push(r));
    }
  }
}

/** Whether the line says field: true; anything else (no line, not JSON, another shape) is no. */
function replyField(line: string | null, field: "ready" | "ok"): boolean {
  if (line === null) return false;
  try {
    const r = StandbyLineSchema.safeParse(JSON.parse(line));
    return r.success && r.data[field] === true;
  } catch {
    return false;
  }
}
