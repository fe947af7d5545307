// Text written into pooled byte chunks (util/text-chunks.ts), served as one body (http/server.ts),
// and let go by a shared result once too old (util/shared-result.ts).
import { test } from "node:test";
import assert from "node:assert/strict";
import { startHttpServer } from "../../src/http/server.js";
import { parseListen } from "../../src/util/listen.js";
import { SharedResult } from "../../src/util/shared-result.js";
import { ChunkPool, TextChunks } from "../../src/util/text-chunks.js";

/** Pieces of every kind: ASCII, two-, three- and four-byte UTF-8, short and long. */
function pieces(n: number): string[] {
  const kinds = ["a", "é", "€", "𝄞", "line of ASCII text\n"];
  return Array.from({ length: n }, (_, i) => kinds[i % kinds.length]!.repeat(1 + (i % 997)));
}

test("the chunks hold exactly the UTF-8 of what was written, across chunk boundaries", () => {
  const pool = new ChunkPool(1024);
  const out = new TextChunks(pool);
  const written = pieces(3000);
  for (const p of written) out.write(p);
  const text = out.finish();
  const expected = Buffer.from(written.join(""));
  assert.ok(text.chunks.length > 100, `${text.chunks.length} chunks`);
  assert.equal(text.byteLength, expected.length);
  assert.ok(Buffer.concat(text.chunks).equals(expected));
  assert.equal(text.toString(), written.join(""));
  assert.equal(new TextChunks().finish().byteLength, 0, "nothing written: no bytes");
});

test("chunks go back to the pool when the last holder lets go, and are written again", () => {
  const pool = new ChunkPool(1024);
  const render = (s: string) => {
    const out = new TextChunks(pool);
    for (let i = 0; i < 50; i++) out.write(s.repeat(100));
    return out.finish();
  };
  const first = render("x");
  const n = first.chunks.length;
  assert.equal(pool.held, 0);
  first.retain(); // a response being sent
  first.release(); // the cache lets go
  assert.equal(pool.held, 0, "still held by the response");
  first.release();
  assert.equal(pool.held, n, "every chunk back");
  assert.throws(() => first.retain(), /after its chunks were given back/);
  first.release(); // once too often: no effect
  assert.equal(pool.held, n);

  const second = render("y");
  assert.equal(pool.held, 0, "the next text took them");
  assert.equal(second.toString(), "y".repeat(5000));
  // Two texts held at once: when both are given back, the pool keeps one text's worth.
  const third = render("z");
  second.release();
  third.release();
  assert.equal(pool.held, n);
});

test("a body of chunks is served whole with its length; sent is called once it is out", async () => {
  const pool = new ChunkPool(1024);
  const out = new TextChunks(pool);
  const written = pieces(500);
  for (const p of written) out.write(p);
  const text = out.finish();
  let sent = 0;
  const srv = await startHttpServer(
    () => ({
      status: 200,
      contentType: "text/plain",
      body: text.retain().chunks,
      sent: () => {
        sent++;
        text.release();
      },
    }),
    parseListen("127.0.0.1:0"),
  );
  try {
    const r = await fetch(`${srv.url}/x`);
    assert.equal(r.headers.get("content-length"), String(text.byteLength));
    assert.equal(await r.text(), written.join(""));
    const head = await fetch(`${srv.url}/x`, { method: "HEAD" });
    assert.equal(head.headers.get("content-length"), String(text.byteLength));
    assert.equal(await head.text(), "");
    await new Promise((r) => setTimeout(r, 50));
    assert.equal(sent, 2);
    text.release();
    assert.equal(pool.held, text.chunks.length, "back in the pool after both responses");
  } finally {
    await srv.close();
  }
});

test("a shared result is produced once for concurrent callers and let go once too old", async () => {
  let produced = 0;
  const dropped: number[] = [];
  const shared = new SharedResult(
    async () => ++produced,
    30,
    (v) => dropped.push(v),
  );
  assert.deepEqual(await Promise.all([shared.get(), shared.get(), shared.get()]), [1, 1, 1]);
  assert.deepEqual(dropped, []);
  await new Promise((r) => setTimeout(r, 80));
  assert.deepEqual(dropped, [1], "dropped once too old, without a further call");
  assert.equal(await shared.get(), 2);
});
