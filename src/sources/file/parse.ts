// The standalone SLO config file: reading and parsing it.
//
// Two formats declare the same rules: the original tool's line format (`path budget_ms importance`)
// and YAML. A file with any error yields no rules at all, so the caller keeps the config it is
// running instead of applying half a file. Every error carries file, line, field and a fix, because
// the person reading it is usually an operator looking at a log line, not at this code.

import { isUtf8 } from "node:buffer";
import { constants as fsConstants } from "node:fs";
import { open, type FileHandle } from "node:fs/promises";
import { MAX_SLO_ENTRIES } from "../../slo/model.js";
import type { Problem } from "../../slo/validate.js";
import { errorMessage } from "../../util/log.js";
import { fail, type ConfigError, type ParseResult } from "./errors.js";
import { parseLines } from "./lines.js";
import { parseYaml } from "./yaml.js";

/** Comfortably above the largest legal config (4096 rules of ~100 bytes is ~400 KiB). */
export const MAX_CONFIG_BYTES = 1024 * 1024;

/** `file:line: field: message (fix: ...)`, always one line (values are quoted, newlines escaped). */
export function formatConfigError(e: ConfigError): string {
  const where = e.line === null ? e.file : `${e.file}:${e.line}`;
  const field = e.field === null ? "" : `${e.field}: `;
  return `${where}: ${field}${e.message} (fix: ${e.fix})`.replace(/[\r\n\u2028\u2029]+/g, " ");
}

/** Parses config text; never throws: bad content is reported as errors. */
export function parseConfig(text: string, fileName: string): ParseResult {
  const body = text.startsWith("\uFEFF") ? text.slice(1) : text;
  try {
    return looksLikeYaml(body) ? parseYaml(body, fileName) : parseLines(body, fileName);
  } catch (err) {
    // Only a bug gets here; reporting it keeps the agent on its running config instead of crashing.
    return fail(fileName, null, null, {
      message: `internal error while parsing: ${errorMessage(err)}`,
      fix: "report this as a bug in scx-slo, with the config file attached",
    });
  }
}

/** Checks size and encoding of raw file bytes, then parses them. Never throws. */
export function parseConfigBytes(bytes: Uint8Array, fileName: string): ParseResult {
  if (bytes.length > MAX_CONFIG_BYTES) {
    return fail(fileName, null, null, tooLarge(bytes.length));
  }
  if (
    bytes.length >= 2 &&
    ((bytes[0] === 0xff && bytes[1] === 0xfe) || (bytes[0] === 0xfe && bytes[1] === 0xff))
  ) {
    return fail(fileName, 1, null, {
      message: "file is UTF-16 encoded",
      fix: "save the config as UTF-8 text",
    });
  }
  const nul = bytes.indexOf(0);
  if (nul >= 0) {
    return fail(fileName, lineOfOffset(bytes, nul), null, {
      message: "file contains NUL bytes: it is binary data, not an SLO config",
      fix: "point the agent at the text config file (see `scx-slo config init` for an example)",
    });
  }
  if (!isUtf8(bytes)) {
    return fail(fileName, firstNonUtf8Line(bytes), null, {
      message: "file is not valid UTF-8 text",
      fix: "save the config as UTF-8 text; if this is not the config file, check the path",
    });
  }
  return parseConfig(new TextDecoder("utf-8").decode(bytes), fileName);
}

/** Reads and parses a config file. Resolves with errors (never rejects) for unreadable files too. */
export async function loadConfigFile(path: string): Promise<ParseResult> {
  let bytes: Uint8Array;
  try {
    // O_NONBLOCK: opening a FIFO (or a device) would otherwise hang the agent until a writer shows up.
    const fh = await open(path, fsConstants.O_RDONLY | fsConstants.O_NONBLOCK);
    try {
      const st = await fh.stat();
      if (!st.isFile()) {
        return fail(path, null, null, {
          message: "not a regular file",
          fix: "point the agent at a regular text file",
        });
      }
      if (st.size > MAX_CONFIG_BYTES) return fail(path, null, null, tooLarge(st.size));
      bytes = await readUpTo(fh, st.size, MAX_CONFIG_BYTES + 1);
    } finally {
      await fh.close();
    }
  } catch (err) {
    return fail(path, null, null, ioProblem(err));
  }
  return parseConfigBytes(bytes, path);
}

/**
 * Reads a file of `expected` bytes, or more if it grew since fstat, but never more than `limit`
 * (reading one byte past the size limit tells a file that grew past it). The buffer is sized to
 * the file: one of the limit's size on every reload would leave the agent's memory to the
 * allocator's mercy under a storm of reloads (SIGHUP, a busy editor).
 */
async function readUpTo(fh: FileHandle, expected: number, limit: number): Promise<Uint8Array> {
  let buf = Buffer.alloc(Math.min(expected + 1, limit));
  let filled = 0;
  for (;;) {
    if (filled === buf.length) {
      if (buf.length === limit) break;
      const bigger = Buffer.alloc(Math.min(buf.length * 2, limit));
      buf.copy(bigger, 0, 0, filled);
      buf = bigger;
    }
    const { bytesRead } = await fh.read(buf, filled, buf.length - filled, null);
    if (bytesRead === 0) break;
    filled += bytesRead;
  }
  return buf.subarray(0, filled);
}

function tooLarge(size: number): Problem {
  return {
    message: `file is ${size} bytes, larger than the ${MAX_CONFIG_BYTES}-byte (1 MiB) limit`,
    fix: `an SLO config holds at most ${MAX_SLO_ENTRIES} short rules; check that the path is the config file`,
  };
}

function ioProblem(err: unknown): Problem {
  const code = (err as { code?: unknown } | null)?.code;
  switch (code) {
    case "ENOENT":
      return {
        message: "cannot read: no such file",
        fix: "create it with `scx-slo config init`, or pass the right path",
      };
    case "EACCES":
    case "EPERM":
      return {
        message: "cannot read: permission denied",
        fix: "make the file readable by the agent's user",
      };
    case "EISDIR":
      return { message: "is a directory", fix: "point the agent at the config file itself" };
    default:
      return {
        message: `cannot read: ${errorMessage(err)}`,
        fix: "check the path and the file system",
      };
  }
}

function lineOfOffset(bytes: Uint8Array, offset: number): number {
  let line = 1;
  for (let i = 0; i < offset; i++) if (bytes[i] === 0x0a) line++;
  return line;
}

function firstNonUtf8Line(bytes: Uint8Array): number {
  let start = 0;
  for (let line = 1; ; line++) {
    const nl = bytes.indexOf(0x0a, start);
    const end = nl < 0 ? bytes.length : nl;
    if (!isUtf8(bytes.subarray(start, end)) || nl < 0) return line;
    start = nl + 1;
  }
}

// A line-format rule always starts with "/", so a first line that is a YAML key (or a document
// marker) cannot be a valid line-format file anyway.
const YAML_START = /^(?:(?:version|slos|defaults)\s*:|---|%YAML)/;

function looksLikeYaml(text: string): boolean {
  let start = 0;
  while (start <= text.length) {
    const nl = text.indexOf("\n", start);
    const line = text.slice(start, nl < 0 ? text.length : nl).trim();
    if (line !== "" && !line.startsWith("#")) return YAML_START.test(line);
    if (nl < 0) break;
    start = nl + 1;
  }
  return false;
}
