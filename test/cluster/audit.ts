// The API server's own record of one user's requests: an audit policy that logs that user's
// requests (metadata only) and nothing else, and a reader that counts them. Counted on the server's
// side, the agent's requests cannot be under-reported by the agent.
import { readFileSync, writeFileSync } from "node:fs";
import path from "node:path";

export interface AuditSetup {
  /** Give these to startControlPlane({ extraApiServerArgs }). */
  readonly apiServerArgs: readonly string[];
  readonly logFile: string;
}

/** Writes the policy into dir; the log goes there too (it survives API server restarts). */
export function auditOf(user: string, dir: string): AuditSetup {
  const policy = path.join(dir, "audit-policy.yaml");
  const logFile = path.join(dir, "audit.log");
  writeFileSync(
    policy,
    [
      "apiVersion: audit.k8s.io/v1",
      "kind: Policy",
      "omitStages: [RequestReceived]",
      "rules:",
      "  - level: Metadata",
      `    users: [${JSON.stringify(user)}]`,
      "  - level: None",
      "",
    ].join("\n"),
  );
  return {
    apiServerArgs: [
      `--audit-policy-file=${policy}`,
      `--audit-log-path=${logFile}`,
      "--audit-log-format=json",
      "--audit-log-mode=blocking",
    ],
    logFile,
  };
}

export interface AuditedRequest {
  readonly id: string;
  readonly verb: string;
  readonly resource: string;
  readonly uri: string;
  readonly user: string;
  /** The response code of its last recorded stage (a watch: 200 once it streams). */
  readonly code: number;
  /** When the API server received it (ms since the epoch). */
  readonly at: number;
}

interface AuditEvent {
  auditID: string;
  stage: string;
  verb: string;
  requestURI: string;
  user?: { username?: string };
  objectRef?: { resource?: string; subresource?: string };
  responseStatus?: { code?: number };
  requestReceivedTimestamp: string;
}

/** Every request in the log, one entry per request (its stages merged), oldest first. */
export function readAudit(logFile: string): AuditedRequest[] {
  let text = "";
  try {
    text = readFileSync(logFile, "utf8");
  } catch {
    return [];
  }
  const byId = new Map<string, AuditedRequest>();
  for (const line of text.split("\n")) {
    if (!line.trim()) continue;
    let ev: AuditEvent;
    try {
      ev = JSON.parse(line) as AuditEvent;
    } catch {
      continue; // a line being written
    }
    const resource = ev.objectRef?.resource
      ? ev.objectRef.resource + (ev.objectRef.subresource ? `/${ev.objectRef.subresource}` : "")
      : "";
    byId.set(ev.auditID, {
      id: ev.auditID,
      verb: ev.verb,
      resource,
      uri: ev.requestURI,
      user: ev.user?.username ?? "",
      code: ev.responseStatus?.code ?? byId.get(ev.auditID)?.code ?? 0,
      at: Date.parse(ev.requestReceivedTimestamp),
    });
  }
  return [...byId.values()].sort((a, b) => a.at - b.at);
}

/** Requests received in [from, to) ms, counted by "verb resource". */
export function countByVerb(
  requests: readonly AuditedRequest[],
  from = 0,
  to = Infinity,
): Record<string, number> {
  const out: Record<string, number> = {};
  for (const r of requests) {
    if (r.at < from || r.at >= to) continue;
    const k = `${r.verb} ${r.resource}`;
    out[k] = (out[k] ?? 0) + 1;
  }
  return out;
}
