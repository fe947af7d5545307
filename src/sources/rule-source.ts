// A source of SLO rules for the agent: the config file (sources/file/) or the node's pods in
// Kubernetes (sources/kubernetes/). A source keeps its rules current on its own and says when
// they change; the agent only reads them.
import type { SloRule } from "../slo/model.js";

export interface RuleSource {
  readonly kind: "file" | "kubernetes";
  /** For logs and status: the file path, or the node name. */
  readonly description: string;
  /** The rules in force; null until the first good set (nothing is reconciled before it). */
  current(): readonly SloRule[] | null;
  /** Starts watching; onChange is called whenever current() changes. */
  start(onChange: () => void): Promise<void>;
  /** Re-reads now (an operator's SIGHUP); a source that follows events may only note it. */
  reload(why: string): Promise<void>;
  stop(): Promise<void>;
}

/** How a config reload ended: the new rules are in force, or the running ones stay. */
export type ReloadResult = "ok" | "failed";
