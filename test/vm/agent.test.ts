// The node agent against the real sched_ext kernel. Each test is one VM boot in which a shell
// script drives the scenario with the real CLI (`node dist/src/cli/main.js`), the real loader and
// real cgroups, and writes its measurements to $SCXVM_OUT/result.json; the assertions run here.
// The agent's own log comes back as agent.log in the run folder.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import path from "node:path";
import { scenario, samples } from "./agent-scenario.js";
import { EXPORTED_BUCKETS } from "../../src/metrics/per-slo.js";

test("agent applies a file config; a changed budget takes effect without a reload; /metrics shows waits and misses", async () => {
  const { r, result } = await scenario(
    "apply",
    String.raw`
mkdir $CG/slo-a
echo "/slo-a 1 90" > /tmp/slo.conf
t0=$(now_ms)
start_agent /tmp/slo.conf
wait_until 120 ready || fail "agent not ready"
t_ready=$(( $(now_ms) - t0 ))
wait_until 10 metric_is scx_slo_budget_seconds /slo-a 0.001 || fail "SLO not applied"
seq0=$(enable_seq)
# Waits to measure: CPU hogs and a periodic waker (cyclictest, 1 ms) in the SLO cgroup, for a
# few seconds only: with a 1 ms budget they leave little CPU to anything without an SLO (the agent
# and curl included), which is the scheduler doing its job, not something to poll through.
in_cgroup /slo-a stress-ng --cpu 3 --cpu-method int64 --timeout 5s -q --temp-path /tmp & hogs=$!
in_cgroup /slo-a cyclictest -q -i 1000 -D 5 > /dev/null & waker=$!
wait $hogs $waker
wait_until 20 metric_pos scx_slo_misses_total /slo-a || fail "no misses measured"
# Rewrite the file in place, as an operator's editor would.
echo "/slo-a 7 90" > /tmp/slo.conf
t1=$(now_ms)
wait_until 10 metric_is scx_slo_budget_seconds /slo-a 0.007 || fail "new budget not in the map"
t_map=$(( $(now_ms) - t1 ))
# A light waker so the cgroup runs again and the scheduler reports the budget it applied.
in_cgroup /slo-a cyclictest -q -i 1000 -D 4 > /dev/null &
wait_until 10 metric_is scx_slo_budget_in_force_seconds /slo-a 0.007 || fail "new budget not in force"
t_force=$(( $(now_ms) - t1 ))
seq1=$(enable_seq)
curl -s $URL/metrics > $OUT/metrics.txt
echo 1 > $CG/slo-a/cgroup.kill
jq -n --argjson seq0 $seq0 --argjson seq1 $seq1 --argjson ready $t_ready --argjson map $t_map --argjson force $t_force \
  '{enable_seq_before:$seq0, enable_seq_after:$seq1, ready_ms:$ready, budget_in_map_ms:$map, budget_in_force_ms:$force}' > $OUT/result.json
stop_agent
`,
  );
  const metrics = readFileSync(path.join(r.outDir, "metrics.txt"), "utf8");
  assert.equal(result.enable_seq_after, result.enable_seq_before, "the scheduler was not reloaded");
  const buckets = samples(metrics, "scx_slo_wait_seconds_bucket", "/slo-a");
  assert.equal(buckets.length, EXPORTED_BUCKETS.length + 1, "each exported bucket, and +Inf");
  for (let i = 1; i < buckets.length; i++) {
    assert.ok(buckets[i]!.value >= buckets[i - 1]!.value, "cumulative buckets");
  }
  const count = samples(metrics, "scx_slo_wait_seconds_count", "/slo-a")[0]!.value;
  const misses = samples(metrics, "scx_slo_misses_total", "/slo-a")[0]!.value;
  assert.ok(count > 0, "waits measured");
  assert.equal(buckets[buckets.length - 1]!.value, count, "+Inf == _count");
  assert.ok(misses > 0, "misses counted");
  assert.ok(samples(metrics, "scx_slo_wait_seconds_sum", "/slo-a")[0]!.value > 0);
  console.log(
    `# agent ready ${result.ready_ms} ms after start; new budget in the map ${result.budget_in_map_ms} ms and in force ${result.budget_in_force_ms} ms after the rewrite; enable_seq ${result.enable_seq_before} -> ${result.enable_seq_after}; ${count} waits, ${misses} misses`,
  );
});

test("kill -9 of the agent leaves the scheduler attached; a restarted agent adopts it and reconciles", async () => {
  const { result } = await scenario(
    "adopt",
    String.raw`
mkdir $CG/b1 $CG/b2
echo "/b1 10 50" > /tmp/slo.conf
start_agent /tmp/slo.conf
wait_until 120 ready || fail "agent not ready"
wait_until 10 metric_is scx_slo_budget_seconds /b1 0.01 || fail "SLO not applied"
seq0=$(enable_seq)
wait_until 10 standby_is ready || fail "no standby copy verified"
sessions_before=$(loader_procs serve)
standbys_before=$(loader_procs standby)
kill -9 $AGENT; wait $AGENT 2>/dev/null
sleep 1
state_after_kill=$(kstate); ops_after_kill=$(ops)
sessions_after_kill=$(pgrep -x scx-slo-loader | wc -l)
link_after_kill=$(build/scx-slo-loader status | jq .link_pinned)
# The config changes while no agent runs.
printf '/b1 20 50\n/b2 30 60\n' > /tmp/slo.conf
start_agent /tmp/slo.conf
wait_until 120 ready || fail "restarted agent not ready"
wait_until 10 metric_is scx_slo_budget_seconds /b1 0.02 || fail "changed SLO not reconciled"
wait_until 10 metric_is scx_slo_budget_seconds /b2 0.03 || fail "new SLO not reconciled"
seq1=$(enable_seq)
status_json > $OUT/status.json
stop_agent
state_after_stop=$(kstate); ops_after_stop=$(ops)
jq -n --arg st "$state_after_kill" --arg ops "$ops_after_kill" --argjson link "$link_after_kill" \
  --argjson s0 "$sessions_before" --argjson sb0 "$standbys_before" --argjson s1 "$sessions_after_kill" --argjson seq0 $seq0 --argjson seq1 $seq1 \
  --arg st2 "$state_after_stop" --arg ops2 "$ops_after_stop" --slurpfile s $OUT/status.json \
  '{state_after_kill:$st, ops_after_kill:$ops, link_pinned_after_kill:$link, sessions_before:$s0, standbys_before:$sb0,
    sessions_after_kill:$s1, enable_seq_before:$seq0, enable_seq_after:$seq1, adopted:$s[0].scheduler.adopted,
    state:$s[0].scheduler.state, applied:$s[0].slos.applied, state_after_stop:$st2, ops_after_stop:$ops2}' > $OUT/result.json
`,
  );
  assert.equal(result.state_after_kill, "enabled");
  assert.equal(result.ops_after_kill, "scx_slo");
  assert.equal(result.link_pinned_after_kill, true);
  assert.equal(result.sessions_before, 1);
  assert.equal(result.standbys_before, 1);
  assert.equal(
    result.sessions_after_kill,
    0,
    "the loader session and the standby copy exit with the agent",
  );
  assert.equal(result.adopted, true);
  assert.equal(result.state, "attached");
  assert.equal(result.enable_seq_after, result.enable_seq_before, "adopted without a reload");
  assert.equal(result.applied, 2);
  assert.equal(result.state_after_stop, "enabled", "SIGTERM leaves the scheduler attached too");
  assert.equal(result.ops_after_stop, "scx_slo");
  console.log(
    `# after kill -9: sched_ext ${result.state_after_kill}, ops ${result.ops_after_kill}; restarted agent adopted it (enable_seq ${result.enable_seq_before} -> ${result.enable_seq_after}) and applied ${result.applied} SLOs`,
  );
});

test("forced scheduler exit (loader unload): the agent re-attaches within 1 s", async () => {
  const { result } = await scenario(
    "reattach",
    String.raw`
mkdir $CG/svc
echo "/svc 10 50" > /tmp/slo.conf
start_agent /tmp/slo.conf
wait_until 120 ready || fail "agent not ready"
wait_until 10 metric0_is scx_slo_slo_entries 1 || fail "SLO not applied"
wait_until 10 standby_is ready || fail "no standby copy verified"
# Measured from just before the unload to root/ops naming scx_slo under a new enable_seq.
node -e '
const fs = require("fs"), cp = require("child_process");
const rd = (f) => { try { return fs.readFileSync(f, "utf8").trim(); } catch { return ""; } };
const S = "/sys/kernel/sched_ext/";
const out = (o) => fs.writeFileSync(process.env.SCXVM_OUT + "/reattach.json", JSON.stringify(o));
const seq0 = Number(rd(S + "enable_seq"));
const ms = (t) => Number(process.hrtime.bigint() - t) / 1e6;
const t0 = process.hrtime.bigint();
cp.execFileSync("build/scx-slo-loader", ["unload"]);
const unloadMs = ms(t0);
let detachMs = null;
const iv = setInterval(() => {
  const st = rd(S + "state"), ops = rd(S + "root/ops"), seq = Number(rd(S + "enable_seq"));
  if (detachMs === null && st !== "enabled") detachMs = ms(t0);
  if (seq > seq0 && st === "enabled" && ops === "scx_slo") {
    clearInterval(iv);
    out({ unload_ms: unloadMs, detach_ms: detachMs, reattach_ms: ms(t0), enable_seq_before: seq0, enable_seq_after: seq });
  } else if (ms(t0) > 15000) {
    clearInterval(iv);
    out({ error: "not re-attached within 15 s", detach_ms: detachMs });
  }
}, 2);
'
wait_until 5 metric0_is scx_slo_scheduler_reattaches_total 1 || fail "re-attach not counted"
wait_until 5 metric_is scx_slo_budget_seconds /svc 0.01 || fail "SLO lost"
wait_until 5 state_metric_is attached || fail "state metric not attached"
wait_until 10 standby_is ready || fail "no new standby copy after the re-attach"
status_json > $OUT/status.json
standby_ok=$(curl -s "$URL/metrics" | awk '$1 == "scx_slo_scheduler_standby_attaches_total{result=\"ok\"}" { print $2 }')
jq -n --slurpfile r $OUT/reattach.json --slurpfile s $OUT/status.json --argjson sb "$standby_ok" \
  '$r[0] + {standby_attaches_ok: $sb, state: $s[0].scheduler.state, reattaches: $s[0].scheduler.reattaches,
   detaches: $s[0].scheduler.unplanned_detaches, last_exit: $s[0].scheduler.last_exit, applied: $s[0].slos.applied}' > $OUT/result.json
stop_agent
`,
  );
  assert.equal(result.error, undefined, String(result.error));
  const reattachMs = result.reattach_ms as number;
  assert.ok((result.enable_seq_after as number) > (result.enable_seq_before as number));
  assert.equal(result.state, "attached");
  assert.equal(result.reattaches, 1);
  assert.equal(result.detaches, 1);
  assert.equal((result.last_exit as { kind_name: string }).kind_name, "unregistered");
  assert.equal(result.applied, 1);
  assert.equal(result.standby_attaches_ok, 1, "the re-attach used the standby copy");
  console.log(
    `# re-attach: ${reattachMs.toFixed(0)} ms from unload to root/ops = scx_slo again (unload command ${(result.unload_ms as number).toFixed(0)} ms, kernel left enabled after ${(result.detach_ms as number).toFixed(0)} ms)`,
  );
  assert.ok(reattachMs < 1000, `re-attach took ${reattachMs.toFixed(0)} ms, limit 1000 ms`);
});

test("500 SLO cgroups reconcile in under 1 s; removed cgroups lose their entries; RSS under 80 MiB", async () => {
  const { r, result } = await scenario(
    "scale",
    String.raw`
mkdir $CG/many
mkdir $(seq -f "$CG/many/c%g" 1 500)
echo none > /tmp/slo.conf
start_agent /tmp/slo.conf
wait_until 120 ready || fail "agent not ready"
rss_idle=$(rss_kib $AGENT)
seq -f "/many/c%g 5 50" 1 500 > /tmp/slo.new
t0=$(now_ms)
mv /tmp/slo.new /tmp/slo.conf
# Waiting on the agent's log, not /metrics, so the wait does not load the agent it measures.
wait_until 20 grep -q "(500 entries" "$OUT/agent.log" || fail "500 SLOs not applied"
t_seen=$(( $(now_ms) - t0 ))
metric0_is scx_slo_slo_entries 500 || fail "metrics do not show 500 entries"
status_json > $OUT/status-500.json
# Load in 10 of them so their histograms fill, while /metrics and /status are scraped.
for i in $(seq 1 10); do in_cgroup /many/c$i stress-ng --cpu 1 --timeout 10s -q --temp-path /tmp & done
rss_500=0
for i in 1 2 3 4 5 6; do
  sleep 1.5
  curl -s $URL/metrics > $OUT/metrics.txt
  curl -s $URL/status > /dev/null
  r=$(rss_kib $AGENT); [ "$r" -gt "$rss_500" ] && rss_500=$r
done
rmdir $(seq -f "$CG/many/c%g" 401 500)
t1=$(now_ms)
wait_until 20 grep -q "100 removed, 400 unchanged" "$OUT/agent.log" || fail "removed cgroups kept their entries"
t_gone=$(( $(now_ms) - t1 ))
sleep 2
metric0_is scx_slo_slo_entries 400 || fail "metrics do not show 400 entries"
status_json > $OUT/status-400.json
curl -s $URL/metrics > /dev/null
rss_end=$(rss_kib $AGENT); hwm=$(hwm_kib $AGENT)
jq -n --slurpfile a $OUT/status-500.json --slurpfile b $OUT/status-400.json \
  --argjson seen $t_seen --argjson gone $t_gone --argjson r0 $rss_idle --argjson r1 $rss_500 --argjson r2 $rss_end --argjson hwm $hwm \
  '{reconcile_500:$a[0].slos.last_change, applied_500:$a[0].slos.applied, seen_500_ms:$seen,
    reconcile_gone:$b[0].slos.last_change, periodic_400:$b[0].slos.last_reconcile, seen_gone_ms:$gone,
    rss_idle_kib:$r0, rss_500_kib:$r1, rss_end_kib:$r2, hwm_kib:$hwm}' > $OUT/result.json
stop_agent
`,
  );
  type Rec = {
    set: number;
    deleted: number;
    entries: number;
    durationMs: number;
    resolveMs: number;
  };
  const r500 = result.reconcile_500 as Rec;
  const gone = result.reconcile_gone as Rec;
  const periodic = result.periodic_400 as Rec;
  assert.equal(r500.set, 500);
  assert.equal(r500.entries, 500);
  assert.equal(gone.deleted, 100);
  assert.equal(gone.entries, 400);
  const metrics = readFileSync(path.join(r.outDir, "metrics.txt"), "utf8");
  const histograms = metrics.split("\n").filter((l) => l.startsWith("scx_slo_wait_seconds_count{"));
  assert.ok(histograms.length >= 5, `${histograms.length} cgroups with waits in /metrics`);
  const mib = (k: unknown) => (k as number) / 1024;
  console.log(
    `# 500 SLO cgroups: reconcile ${r500.durationMs.toFixed(0)} ms (resolve ${r500.resolveMs.toFixed(0)} ms), ` +
      `${result.seen_500_ms} ms from the config file's rename to the log line; 100 removed cgroups dropped in ` +
      `${gone.durationMs.toFixed(0)} ms; a periodic rescan of 400 takes ${periodic.durationMs.toFixed(0)} ms`,
  );
  console.log(
    `# agent RSS: ${mib(result.rss_idle_kib).toFixed(1)} MiB idle, ${mib(result.rss_500_kib).toFixed(1)} MiB with 500 SLOs ` +
      `(${histograms.length} busy, scraped), ` +
      `${mib(result.rss_end_kib).toFixed(1)} MiB at the end, peak (VmHWM) ${mib(result.hwm_kib).toFixed(1)} MiB`,
  );
  assert.ok(r500.durationMs < 1000, `reconcile of 500 took ${r500.durationMs.toFixed(0)} ms`);
  assert.ok(mib(result.hwm_kib) < 80, `peak RSS ${mib(result.hwm_kib).toFixed(1)} MiB`);
  assert.ok(mib(result.rss_end_kib) < 80, `RSS ${mib(result.rss_end_kib).toFixed(1)} MiB`);
});

test("safe mode via the CLI and via the flag file detaches and stays detached; off re-attaches", async () => {
  const { result } = await scenario(
    "safe-mode",
    String.raw`
FLAG=/run/scx-slo/safe-mode
mkdir $CG/e1
echo "/e1 10 50" > /tmp/slo.conf
start_agent /tmp/slo.conf
wait_until 120 ready || fail "agent not ready"
attached || fail "not attached at start"
t0=$(now_ms)
$CLI safe-mode on --reason "vm test" > $OUT/cli-on.txt 2>&1 || fail "safe-mode on failed"
wait_until 5 detached || fail "safe mode on did not detach"
t_on=$(( $(now_ms) - t0 ))
wait_until 5 state_metric_is safe_mode || fail "state metric not safe_mode"
sleep 3
still_detached=$(detached && echo true || echo false)
ready_in_safe=$(curl -s -o /dev/null -w '%{http_code}' $URL/readyz)
$CLI status --json > $OUT/cli-status.json
t0=$(now_ms)
$CLI safe-mode off > $OUT/cli-off.txt 2>&1 || fail "safe-mode off failed"
wait_until 10 attached || fail "safe mode off did not re-attach"
t_off=$(( $(now_ms) - t0 ))
wait_until 5 ready || fail "not ready after off"
t0=$(now_ms)
mkdir -p /run/scx-slo; touch $FLAG
wait_until 5 detached || fail "the flag file did not detach"
t_flag_on=$(( $(now_ms) - t0 ))
sleep 2
flag_still_detached=$(detached && echo true || echo false)
t0=$(now_ms)
rm $FLAG
wait_until 10 attached || fail "removing the flag file did not re-attach"
t_flag_off=$(( $(now_ms) - t0 ))
wait_until 5 metric_is scx_slo_budget_seconds /e1 0.01 || fail "SLO lost across safe mode"
status_json > $OUT/status.json
jq -n --argjson on $t_on --argjson off $t_off --argjson fon $t_flag_on --argjson foff $t_flag_off \
  --argjson still $still_detached --argjson fstill $flag_still_detached --argjson ready $ready_in_safe \
  --slurpfile c $OUT/cli-status.json --slurpfile s $OUT/status.json \
  '{cli_on_detach_ms:$on, cli_off_attach_ms:$off, flag_on_detach_ms:$fon, flag_off_attach_ms:$foff,
    stayed_detached:$still, flag_stayed_detached:$fstill, readyz_in_safe_mode:$ready,
    cli_status_agent_state:$c[0].agent.scheduler.state, cli_status_safe_mode:$c[0].safe_mode.on,
    cli_status_attached:$c[0].scheduler.attached,
    state:$s[0].scheduler.state, unplanned_detaches:$s[0].scheduler.unplanned_detaches}' > $OUT/result.json
stop_agent
`,
  );
  assert.equal(result.stayed_detached, true);
  assert.equal(result.flag_stayed_detached, true);
  assert.equal(result.readyz_in_safe_mode, 200, "safe mode is a deliberate, ready state");
  assert.equal(result.cli_status_agent_state, "safe_mode");
  assert.equal(result.cli_status_safe_mode, true);
  assert.equal(result.cli_status_attached, false);
  assert.equal(result.state, "attached");
  assert.equal(result.unplanned_detaches, 0, "safe mode is not counted as a failure");
  console.log(
    `# safe mode: CLI on -> detached ${result.cli_on_detach_ms} ms, CLI off -> attached ${result.cli_off_attach_ms} ms ` +
      `(both include the CLI's node start-up); flag file on -> detached ${result.flag_on_detach_ms} ms, removed -> attached ${result.flag_off_attach_ms} ms`,
  );
});
