// The pgbench workload's host-side pieces: its per-transaction log and finding Debian's server.
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { findPgBin, parsePgbenchLog } from "../../bench/workloads/pgbench.js";

test("parsePgbenchLog: latency counts from the scheduled start (time + schedule lag)", () => {
  const log = [
    "0 1 1071 0 1795522241 824371 75",
    "1 1 682 0 1795522241 825378 81",
    "2 1 skipped 0 1795522241 850963 122",
    "3 1 500 0 1795522241 850963", // no -R: no lag column
    "",
  ].join("\n");
  assert.deepEqual(parsePgbenchLog(log), {
    latenciesUs: [1146, 763, 500],
    lagsUs: [75, 81, 0],
  });
});

test("findPgBin: the newest installed major, or an error naming the package", () => {
  const root = mkdtempSync(path.join(tmpdir(), "pg-"));
  assert.throws(() => findPgBin(root), /postgresql-15/);
  for (const major of ["9", "15", "13"]) {
    mkdirSync(path.join(root, major, "bin"), { recursive: true });
    writeFileSync(path.join(root, major, "bin", "postgres"), "");
  }
  mkdirSync(path.join(root, "16"));
  assert.equal(findPgBin(root), path.join(root, "15", "bin"));
});
