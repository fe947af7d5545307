// Text built up as byte chunks, for responses that grow with the node (the exposition with
// thousands of SLO cgroups, /status), so that their memory does not depend on when V8 collects.
//
// The pieces written are short-lived strings, encoded into the current chunk once a few KiB have
// gathered: they die young and the scavenger takes them at once. (Collected into an array and
// joined at the end, they would live through the whole render, be promoted to the old
// generation, and leave it grown by several times the text until a later full collection.)
//
// The chunks are Buffers outside V8's heap, taken from a pool and given back when every holder
// has let the text go. V8 would free them only at a full collection, which it starts for memory
// outside its heap only after tens of MiB more of it, so a few renders of a large exposition
// would pile up before any went. Reused, the chunks of one render are what the next one writes
// into.

/** Characters gathered before they are encoded into the chunks. */
const PENDING_CHARS = 8 * 1024;

const DEFAULT_CHUNK_BYTES = 64 * 1024;

/** Free chunks, kept for the next text of about the same size. */
export class ChunkPool {
  private readonly free: Buffer[] = [];
  /** Free chunks kept at most: as many as the largest text of late needed. */
  private keep = 0;

  constructor(readonly chunkBytes = DEFAULT_CHUNK_BYTES) {}

  take(): Buffer {
    return this.free.pop() ?? Buffer.allocUnsafeSlow(this.chunkBytes);
  }

  /** A text of n chunks was written: keep that many for the next one. */
  noteUse(n: number): void {
    this.keep = n;
    if (this.free.length > n) this.free.splice(n);
  }

  give(chunks: readonly Buffer[]): void {
    for (const c of chunks) {
      if (this.free.length >= this.keep) return;
      this.free.push(c);
    }
  }

  /** Free chunks held now. */
  get held(): number {
    return this.free.length;
  }
}

/**
 * A finished text: its bytes, in order, and a count of its holders. The chunks go back to the
 * pool when the last holder releases it. A holder that never does (a response cut off before it
 * was sent) only means the chunks are left to the garbage collector instead.
 */
export class PooledText {
  private holders = 1;

  constructor(
    /** The text as UTF-8, in order. */
    readonly chunks: readonly Buffer[],
    private readonly backing: readonly Buffer[],
    private readonly pool: ChunkPool | null,
  ) {}

  get byteLength(): number {
    return chunksLength(this.chunks);
  }

  /** One more holder; the text must not have been released by all of them yet. */
  retain(): this {
    if (this.holders === 0) throw new Error("text retained after its chunks were given back");
    this.holders++;
    return this;
  }

  release(): void {
    if (this.holders === 0) return;
    if (--this.holders === 0) this.pool?.give(this.backing);
  }

  toString(): string {
    return Buffer.concat(this.chunks).toString();
  }
}

export class TextChunks {
  private readonly backing: Buffer[] = [];
  private chunk: Buffer | null = null;
  private used = 0;
  private pending = "";

  constructor(private readonly pool: ChunkPool | null = null) {}

  write(text: string): void {
    this.pending += text;
    if (this.pending.length >= PENDING_CHARS) this.encodePending();
  }

  /** The text written, held once (by the caller); the writer starts afresh. */
  finish(): PooledText {
    this.encodePending();
    const backing = this.backing.splice(0);
    const chunks = backing.map((b, i) => (i === backing.length - 1 ? b.subarray(0, this.used) : b));
    this.chunk = null;
    this.used = 0;
    this.pool?.noteUse(backing.length);
    return new PooledText(chunks, backing, this.pool);
  }

  private encodePending(): void {
    const s = this.pending;
    this.pending = "";
    if (s.length === 0) return;
    // Most text is ASCII, where a character is a byte and latin1 writes it as UTF-8 would; other
    // text is encoded first, then copied (a character may then straddle two chunks, which the
    // byte stream does not mind).
    if (Buffer.byteLength(s) === s.length) {
      for (let at = 0; at < s.length;) {
        const n = this.room().write(at === 0 ? s : s.slice(at), this.used, "latin1");
        this.used += n;
        at += n;
      }
    } else {
      const bytes = Buffer.from(s);
      for (let at = 0; at < bytes.length;) {
        const n = bytes.copy(this.room(), this.used, at);
        this.used += n;
        at += n;
      }
    }
  }

  /** The current chunk, with room after `used`; a fresh one when it is full. */
  private room(): Buffer {
    if (this.chunk !== null && this.used < this.chunk.length) return this.chunk;
    this.chunk = this.pool?.take() ?? Buffer.allocUnsafeSlow(DEFAULT_CHUNK_BYTES);
    this.backing.push(this.chunk);
    this.used = 0;
    return this.chunk;
  }
}

/** The chunks' total length in bytes. */
export function chunksLength(chunks: readonly Buffer[]): number {
  let n = 0;
  for (const c of chunks) n += c.length;
  return n;
}
