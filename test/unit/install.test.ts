// `make install` (deploy/install.sh) on a host without Kubernetes: the commands every usage line
// names exist and run, the systemd unit points at them and passes systemd's own check.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { findProjectRoot } from "../../src/util/project-root.js";

const root = findProjectRoot();
const version = (
  JSON.parse(readFileSync(path.join(root, "package.json"), "utf8")) as { version: string }
).version;

test("install puts scx-slo, scx-slo-shed and a systemd unit in place", () => {
  const dest = mkdtempSync(path.join(tmpdir(), "scx-install-"));
  try {
    const r = spawnSync(path.join(root, "deploy", "install.sh"), [dest, "/usr/local"], {
      encoding: "utf8",
      timeout: 120_000,
    });
    assert.equal(r.status, 0, r.stderr);
    const lib = path.join(dest, "usr/local/lib/scx-slo");
    const bin = path.join(dest, "usr/local/bin");
    // The wrappers name the final location; run the installed tree where it was put.
    const run = (name: "cli" | "shed", ...args: string[]) =>
      spawnSync(process.execPath, [path.join(lib, "dist/src", name, "main.js"), ...args], {
        encoding: "utf8",
        timeout: 20_000,
      });
    for (const cmd of ["scx-slo", "scx-slo-shed"]) {
      const text = readFileSync(path.join(bin, cmd), "utf8");
      assert.match(text, new RegExp(`^#!/bin/sh\\nexec node /usr/local/lib/scx-slo/dist/src/`));
    }
    const v = run("cli", "version");
    assert.equal(v.status, 0, v.stderr);
    assert.equal(v.stdout, `scx-slo ${version}\n`);
    const shed = run("shed", "--help");
    assert.equal(shed.status, 0, shed.stderr);
    assert.match(shed.stdout, /^usage: scx-slo-shed /);
    assert.ok(existsSync(path.join(lib, "build", "scx-slo-loader")));
    assert.ok(existsSync(path.join(lib, "build", "scx_slo.bpf.o")));
    assert.ok(!existsSync(path.join(lib, "node_modules", "typescript")), "no dev dependencies");
    const check = run("cli", "config", "check", path.join(dest, "etc/scx-slo/config"));
    assert.equal(check.status, 0, check.stderr);

    const unit = path.join(dest, "etc/systemd/system/scx-slo.service");
    const text = readFileSync(unit, "utf8");
    assert.match(
      text,
      /^ExecStart=\/usr\/local\/bin\/scx-slo run --config \/etc\/scx-slo\/config$/m,
    );
    assert.ok(!text.includes("@"), "every placeholder filled in");
    // systemd's own check, with ExecStart pointed at where this test installed the command.
    const units = mkdtempSync(path.join(tmpdir(), "scx-unit-"));
    try {
      const copy = path.join(units, "scx-slo.service");
      writeFileSync(copy, text.replaceAll("/usr/local/", `${dest}/usr/local/`));
      const verify = spawnSync("systemd-analyze", ["verify", copy], { encoding: "utf8" });
      assert.equal(verify.error, undefined, "systemd-analyze runs (Debian's systemd package)");
      assert.equal(verify.status, 0, verify.stderr);
    } finally {
      rmSync(units, { recursive: true, force: true });
    }
  } finally {
    rmSync(dest, { recursive: true, force: true });
  }
});
