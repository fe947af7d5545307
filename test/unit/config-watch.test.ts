// The file rule source: loads at start, reloads on change, rejects a bad file and keeps the
// running rules, counts reloads.
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync, renameSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { ConfigFileSource } from "../../src/sources/file/source.js";
import type { ReloadResult } from "../../src/sources/rule-source.js";

async function until(cond: () => boolean, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error("condition not reached");
    await new Promise((r) => setTimeout(r, 10));
  }
}

test("reload on change; a bad file is rejected and the running rules stay", async () => {
  const dir = mkdtempSync(path.join(tmpdir(), "scx-watch-"));
  const file = path.join(dir, "config");
  writeFileSync(file, "/a 10 50\n");
  const results: ReloadResult[] = [];
  const errors: string[] = [];
  let changes = 0;
  const src = new ConfigFileSource({
    file,
    debounceMs: 20,
    pollMs: 100,
    onReload: (r) => results.push(r),
    log: { debug() {}, info() {}, warn() {}, error: (m) => errors.push(m) },
  });
  try {
    await src.start(() => changes++);
    assert.equal(src.current()?.length, 1);
    assert.equal(src.current()?.[0]?.budgetNs, 10e6);
    assert.equal(changes, 1);

    writeFileSync(file, "/a 20 50\n/b 5 60\n");
    await until(() => src.current()?.length === 2);
    assert.equal(src.current()?.[0]?.budgetNs, 20e6);

    writeFileSync(file, "/a 0 50\n");
    await until(() => results.includes("failed"));
    assert.equal(src.current()?.length, 2, "the running rules stay");
    assert.ok(
      errors.some((e) => /config:1: budget_ms: budget_ms 0 is below the minimum/.test(e)),
      errors.join("\n"),
    );

    // Replaced by rename, as editors and ConfigMap updates do.
    writeFileSync(`${file}.new`, "/c 30 70\n");
    renameSync(`${file}.new`, file);
    await until(() => src.current()?.[0]?.match.kind === "path" && src.current()?.length === 1);
    assert.deepEqual(results, ["ok", "ok", "failed", "ok"]);
  } finally {
    await src.stop();
    rmSync(dir, { recursive: true });
  }
});

test("an empty file (caught mid-write) keeps the running rules; `none` clears them", async () => {
  const dir = mkdtempSync(path.join(tmpdir(), "scx-watch-"));
  const file = path.join(dir, "config");
  writeFileSync(file, "/a 10 50\n/b 5 60\n");
  const results: ReloadResult[] = [];
  const errors: string[] = [];
  const src = new ConfigFileSource({
    file,
    debounceMs: 20,
    pollMs: 100,
    onReload: (r) => results.push(r),
    log: { debug() {}, info() {}, warn() {}, error: (m) => errors.push(m) },
  });
  try {
    await src.start(() => {});
    assert.equal(src.current()?.length, 2);
    for (const [i, text] of ["", "  \n\n", "# rules follow\n"].entries()) {
      writeFileSync(file, text);
      await until(() => results.filter((r) => r === "failed").length === i + 1);
      assert.equal(src.current()?.length, 2, `the running rules stay (${JSON.stringify(text)})`);
    }
    assert.ok(
      errors.some((e) => /rejected .*the running config \(2 rules\) stays in force/.test(e)),
      errors.join("\n"),
    );
    assert.ok(errors.some((e) => /config: the file has no rules .*\(fix: .*`none`/.test(e)));
    writeFileSync(file, "none\n");
    await until(() => src.current()?.length === 0);
    assert.deepEqual(results, ["ok", "failed", "failed", "failed", "ok"]);
  } finally {
    await src.stop();
    rmSync(dir, { recursive: true });
  }
});

test("a missing file at start: no rules (nothing reconciled) until it appears", async () => {
  const dir = mkdtempSync(path.join(tmpdir(), "scx-watch-"));
  const file = path.join(dir, "config");
  const src = new ConfigFileSource({ file, debounceMs: 20, pollMs: 50 });
  try {
    await src.start(() => {});
    assert.equal(src.current(), null);
    writeFileSync(file, "/x 10 10\n");
    await until(() => src.current() !== null);
    assert.equal(src.current()?.length, 1);
  } finally {
    await src.stop();
    rmSync(dir, { recursive: true });
  }
});
