// A result produced at most once per interval and shared: every caller within the interval gets
// the same value, and callers that arrive while it is being produced wait for that one production
// instead of starting their own. For renders that cost much and change little (the Prometheus
// exposition), so that N concurrent readers cost one render, not N. The value is let go once it
// is too old to be served: a large render is not kept between scrapes.

export class SharedResult<T> {
  private value: T | undefined;
  private at = -Infinity;
  private producing: Promise<T> | null = null;
  private expiry: NodeJS.Timeout | null = null;

  constructor(
    private readonly produce: () => Promise<T>,
    private readonly maxAgeMs: number,
    /** Called with a value once it is let go (too old, or replaced). */
    private readonly drop: (value: T) => void = () => {},
    private readonly now: () => number = Date.now,
  ) {}

  get(): Promise<T> {
    if (this.value !== undefined && this.now() - this.at <= this.maxAgeMs) {
      return Promise.resolve(this.value);
    }
    this.producing ??= this.produce()
      .then((v) => {
        this.letGo();
        this.value = v;
        this.at = this.now();
        this.expiry = setTimeout(() => this.letGo(), this.maxAgeMs + 1);
        this.expiry.unref();
        return v;
      })
      .finally(() => (this.producing = null));
    return this.producing;
  }

  private letGo(): void {
    if (this.expiry) clearTimeout(this.expiry);
    this.expiry = null;
    const v = this.value;
    this.value = undefined;
    if (v !== undefined) this.drop(v);
  }
}
