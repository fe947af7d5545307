// The agent's container image, built for real by deploy/image/build.sh (podman, a local Debian
// base, no registry) and run with podman: the CLI answers, reads a config mounted into the
// container, and the loader finds its libraries in the image. The first build makes the base
// root filesystem (a minute or two); later ones reuse it and take seconds.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { parseDocument } from "yaml";
import { findProjectRoot } from "../../src/util/project-root.js";

const root = findProjectRoot();
const version = (
  JSON.parse(readFileSync(path.join(root, "package.json"), "utf8")) as {
    version: string;
  }
).version;
const image = `localhost/scx-slo:${version}`;
const podmanScript = path.join(root, "deploy", "image", "podman.sh");

const podman = (...args: string[]) =>
  spawnSync(podmanScript, args, { encoding: "utf8", timeout: 120_000 });
const run = (...args: string[]) => podman("run", "--rm", "--network", "none", ...args);

test(
  "the image builds from the local base and its CLI, config check and loader run",
  { skip: process.getuid?.() !== 0 && "podman's store needs root", timeout: 20 * 60_000 },
  async (t) => {
    const build = spawnSync(path.join(root, "deploy", "image", "build.sh"), [], {
      encoding: "utf8",
      timeout: 19 * 60_000,
    });
    assert.equal(build.status, 0, build.stderr);

    await t.test("tagged with the name and version deploy/daemonset.yaml runs", () => {
      const ds = parseDocument(readFileSync(path.join(root, "deploy", "daemonset.yaml"), "utf8"));
      const dsImage = ds.getIn(["spec", "template", "spec", "containers", 0, "image"]) as string;
      assert.ok(dsImage.endsWith(`/scx-slo:${version}`), dsImage);
      assert.equal(podman("image", "exists", dsImage).status, 0, `${dsImage} not built`);
      assert.equal(podman("image", "exists", image).status, 0);
    });

    await t.test("version", () => {
      const r = run(image, "version");
      assert.equal(r.status, 0, r.stderr);
      assert.match(r.stdout, new RegExp(`\\b${version.replaceAll(".", "\\.")}\\b`));
    });

    await t.test("config check of a mounted config: valid exits 0, invalid 1 with its line", () => {
      const dir = mkdtempSync(path.join(tmpdir(), "scx-slo-image-"));
      try {
        writeFileSync(path.join(dir, "good"), "/kubepods/critical/payment-api 50 90\n");
        writeFileSync(path.join(dir, "bad"), "# budget 0 is out of range\n/kubepods/x 0 90\n");
        const mount = ["-v", `${dir}:/etc/scx-slo:ro`, image, "config", "check"];
        const good = run(...mount, "/etc/scx-slo/good");
        assert.equal(good.status, 0, good.stdout + good.stderr);
        const bad = run(...mount, "/etc/scx-slo/bad");
        assert.equal(bad.status, 1, bad.stdout + bad.stderr);
        assert.match(bad.stdout + bad.stderr, /\/etc\/scx-slo\/bad:2:/);
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
    });

    await t.test("the loader runs against the image's libbpf", () => {
      const loader = "/opt/scx-slo/build/scx-slo-loader";
      const r = run("--entrypoint", loader, image, "status", "--pin-dir", "/nonexistent");
      assert.equal(r.status, 0, r.stderr);
      const status = JSON.parse(r.stdout) as { attached: unknown };
      assert.equal(typeof status.attached, "boolean", r.stdout);
    });
  },
);
