// Drives the real agent CLI in the sched_ext VM: each scenario is one VM boot in which a shell
// script (with the helpers below) runs the scenario and writes its measurements to
// $SCXVM_OUT/result.json; the assertions run on the host. The agent's own log comes back as
// agent.log in the run folder.
import assert from "node:assert/strict";
import { existsSync, readFileSync } from "node:fs";
import path from "node:path";
import { runInVm, type VmResult } from "../../vm/harness.js";

/** Shell helpers every scenario starts with. */
export const PRELUDE = String.raw`
set -u
CLI="node dist/src/cli/main.js"
OUT="$SCXVM_OUT"
URL=http://127.0.0.1:9617
CG=/sys/fs/cgroup
AGENT=
now_ms() { echo $(( $(date +%s%N) / 1000000 )); }
enable_seq() { cat /sys/kernel/sched_ext/enable_seq; }
ops() { cat /sys/kernel/sched_ext/root/ops 2>/dev/null || echo none; }
kstate() { cat /sys/kernel/sched_ext/state; }
attached() { [ "$(kstate)" = enabled ] && [ "$(ops)" = scx_slo ]; }
detached() { [ "$(kstate)" = disabled ]; }
# wait_until SECONDS CMD...: polls every 0.1 s; status 1 on timeout
wait_until() { _t=$1; shift; _end=$(( $(now_ms) + _t * 1000 )); while ! "$@" >/dev/null 2>&1; do [ "$(now_ms)" -gt "$_end" ] && return 1; sleep 0.1; done; return 0; }
start_agent() { $CLI run --config "$1" -v >> "$OUT/agent.log" 2>&1 & AGENT=$!; }
ready() { curl -sf "$URL/readyz"; }
# metric NAME CGROUP: the value of NAME{cgroup="CGROUP",...}; metric0 NAME: an unlabelled one
metric() { curl -s "$URL/metrics" | awk -v n="$1" -v c="cgroup=\"$2\"" 'index($0, n "{") == 1 && index($0, c) { print $2; exit }'; }
metric_is() { [ "$(metric "$1" "$2")" = "$3" ]; }
metric_pos() { _v=$(metric "$1" "$2"); [ -n "$_v" ] && [ "$_v" != 0 ]; }
metric0() { curl -s "$URL/metrics" | awk -v n="$1" '$1 == n { print $2; exit }'; }
metric0_is() { [ "$(metric0 "$1")" = "$2" ]; }
state_metric_is() { curl -s "$URL/metrics" | grep -q "^scx_slo_scheduler_state{state=\"$1\"} 1"; }
status_json() { curl -s "$URL/status"; }
# scx-slo-loader processes running the given command (pgrep -f would match this script too).
loader_procs() { for _p in $(pgrep -x scx-slo-loader); do tr '\0' ' ' < /proc/$_p/cmdline; echo; done | grep -c " $1 "; }
standby_is() { [ "$(curl -s "$URL/status" | jq -r .scheduler.standby)" = "$1" ]; }
rss_kib() { awk '/^VmRSS/ {print $2}' /proc/$1/status; }
hwm_kib() { awk '/^VmHWM/ {print $2}' /proc/$1/status; }
in_cgroup() { _cg=$1; shift; sh -c 'echo $$ > "$0/cgroup.procs" && exec "$@"' "$CG$_cg" "$@"; }
fail() { echo "FAIL: $*"; jq -n --arg e "$*" '{error: $e}' > "$OUT/result.json"; [ -n "$AGENT" ] && kill "$AGENT" 2>/dev/null; exit 1; }
stop_agent() { kill "$AGENT"; wait "$AGENT"; echo "agent exit status $?"; AGENT=; }
`;

export async function scenario(
  name: string,
  script: string,
  timeoutMs = 300_000,
): Promise<{ r: VmResult; result: Record<string, unknown> }> {
  const r = await runInVm({
    command: `${PRELUDE}\n${script}`,
    cpus: 2,
    memoryMiB: 1536,
    timeoutMs,
  });
  const file = path.join(r.outDir, "result.json");
  const result = existsSync(file)
    ? (JSON.parse(readFileSync(file, "utf8")) as Record<string, unknown>)
    : {};
  const log = path.join(r.outDir, "agent.log");
  const tail = existsSync(log) ? readFileSync(log, "utf8").split("\n").slice(-25).join("\n") : "";
  assert.equal(
    r.exitCode,
    0,
    `${name}: scenario failed (${String(result.error ?? "no result")})\n${r.output}\nagent.log tail:\n${tail}\nrun folder: ${r.outDir}`,
  );
  return { r, result };
}

/** Samples of one metric family from exposition text. */
export function samples(
  text: string,
  name: string,
  cgroup: string,
): { labels: string; value: number }[] {
  const out: { labels: string; value: number }[] = [];
  for (const line of text.split("\n")) {
    const m = /^([a-z_]+)\{([^}]*)\} (\S+)$/.exec(line);
    if (m && m[1] === name && m[2]!.includes(`cgroup="${cgroup}"`)) {
      out.push({ labels: m[2]!, value: m[3] === "+Inf" ? Infinity : Number(m[3]) });
    }
  }
  return out;
}
