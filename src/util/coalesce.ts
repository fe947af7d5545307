// One run at a time. A request that arrives while a run is under way is folded into a single
// further run after it (with the first reason that came in meanwhile), and its caller awaits the
// run that covers it. The rescan, the config reload and the supervisor's check all work this way:
// events may come in bursts, and only the latest state matters.

export class Coalescer {
  private running: Promise<void> | null = null;
  private again: string | null = null;

  constructor(
    private readonly body: (reason: string) => Promise<void>,
    /** Once this says true, no new run starts (a run under way finishes). */
    private readonly stopped: () => boolean = () => false,
  ) {}

  /** Runs body now, or once more after the run under way; resolves when that run is done. */
  request(reason: string): Promise<void> {
    if (this.stopped()) return Promise.resolve();
    if (this.running) {
      this.again ??= reason;
      return this.running;
    }
    this.running = (async () => {
      let why: string | null = reason;
      try {
        while (why !== null && !this.stopped()) {
          this.again = null;
          await this.body(why);
          why = this.again;
        }
      } finally {
        this.running = null;
        this.again = null;
      }
    })();
    return this.running;
  }

  /** True while a run is under way. */
  get busy(): boolean {
    return this.running !== null;
  }

  /** Resolves once no run is under way. */
  idle(): Promise<void> {
    return this.running ?? Promise.resolve();
  }
}
