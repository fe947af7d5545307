import { existsSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";

let cached: string | undefined;

/** The checkout this code runs from (the folder holding package.json), for build/ and .cache/. */
export function findProjectRoot(): string {
  if (cached) return cached;
  let dir = path.dirname(fileURLToPath(import.meta.url));
  while (!existsSync(path.join(dir, "package.json"))) {
    const parent = path.dirname(dir);
    if (parent === dir) throw new Error("scx-slo: cannot find the project root (no package.json)");
    dir = parent;
  }
  cached = dir;
  return dir;
}
