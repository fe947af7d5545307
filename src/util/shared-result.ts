// A result produced at most once per interval and shared: every caller within the interval gets
// the same value, and callers that arrive while it is being produced wait for that one production
// instead of starting their own. For renders that cost much and change little (the Prometheus
// exposition), so that N concurrent readers cost one render, not N.

export class SharedResult<T> {
  private value: T | undefined;
  private at = -Infinity;
  private producing: Promise<T> | null = null;

  constructor(
    private readonly produce: () => Promise<T>,
    private readonly maxAgeMs: number,
    private readonly now: () => number = Date.now,
  ) {}

  get(): Promise<T> {
    if (this.value !== undefined && this.now() - this.at <= this.maxAgeMs) {
      return Promise.resolve(this.value);
    }
    this.producing ??= this.produce()
      .then((v) => {
        this.value = v;
        this.at = this.now();
        return v;
      })
      .finally(() => (this.producing = null));
    return this.producing;
  }
}
