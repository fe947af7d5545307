import { readFileSync } from "node:fs";
import path from "node:path";
import { findProjectRoot } from "./project-root.js";

/** The package version (package.json), "unknown" if it cannot be read. */
export function packageVersion(): string {
  try {
    const pkg = JSON.parse(readFileSync(path.join(findProjectRoot(), "package.json"), "utf8")) as {
      version?: string;
    };
    return pkg.version ?? "unknown";
  } catch {
    return "unknown";
  }
}
