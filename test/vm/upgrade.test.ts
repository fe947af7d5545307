// Upgrade and downgrade across builds of different layouts, in one VM boot: the default build (A)
// and build/layout-b (B: loader and object whose SLO map value has its fields in another order,
// of the same size, so libbpf alone would reuse A's maps and misread them). Each step starts an
// agent of one build over what the previous agent (killed with -9) left pinned and attached:
//   A   first load;
//   A2  the same build again: adopted as it runs, no re-attach;
//   B   upgrade: B's agent finds A's pins, hands over (fresh maps, A detached, B attached at once,
//       pins replaced), writes the SLOs again;
//   A3  downgrade: the same from B back to A.
// A task of the SLO cgroup (cyclictest) wakes every 10 ms throughout; the kernel's per-cgroup stats say which
// budget and importance the running scheduler read for it.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import path from "node:path";
import { scenario } from "./agent-scenario.js";

type Step = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any

const STEPS = ["A", "A2", "B", "A3"] as const;
/** Fails a hand-over that took far longer than its 200 ms target (see the assertion). */
const FALLBACK_BOUND_MS = 3000;
let steps: Record<string, Step>;
let dmesg: string;

/** ms between the last "disabled" and the following "enabled" line of sched_ext in a kernel log. */
function kernelGapMs(log: string): number | null {
  let disabledAt: number | null = null;
  let gap: number | null = null;
  for (const m of log.matchAll(/^\[\s*([0-9.]+)\] sched_ext: BPF scheduler "scx_slo" (\w+)/gm)) {
    const t = Number(m[1]) * 1000;
    if (m[2] === "disabled") disabledAt = t;
    else if (m[2] === "enabled" && disabledAt !== null) gap = t - disabledAt;
  }
  return gap;
}

test("upgrade, downgrade and compatible adoption between builds of two layouts", async () => {
  const { r, result } = await scenario(
    "upgrade",
    String.raw`
PIN=/sys/fs/bpf/scx_slo
mkdir $CG/crit
CRIT=$(stat -c %i $CG/crit)
echo "/crit 7 90" > /tmp/slo.conf
# One process waking every 10 ms (no forks: the guest is slow enough under emulation).
in_cgroup /crit cyclictest -q -i10000 -D900 > /dev/null & TICK=$!
# On a failure, what ran: the agent may be stuck, or not started.
stuck() { ps -eo pid,stat,etime,args > $OUT/ps.txt; fail "$@"; }
use_build() {
  if [ "$1" = B ]; then D=build/layout-b; else D=build; fi
  export SCX_SLO_LOADER=$D/scx-slo-loader SCX_SLO_BPF_OBJ=$D/scx_slo.bpf.o
}
serve1() { echo "1 $1" | timeout 10 $SCX_SLO_LOADER serve | head -n 1; }
applied_is() { [ "$(status_json | jq .slos.applied)" = "$1" ]; }
# The running scheduler read this cgroup's SLO as written: its own stats entry says so.
kernel_sees() { serve1 stats | jq -e --arg c $CRIT '.cgroups[] | select(.cgroup_id == $c) | select(.budget_ns == 7000000 and .importance == 90)'; }
slo_map_id() { bpftool map show pinned $PIN/slo_map -j | jq .id; }
echo '{}' > $OUT/steps.json
T0=$(now_ms)
for step in A A2 B A3; do
  echo "step $step at $(( $(now_ms) - T0 )) ms"
  use_build $(echo $step | cut -c1)
  seq0=$(enable_seq); id0=$(slo_map_id 2>/dev/null); [ -n "$id0" ] || id0=null
  start_agent /tmp/slo.conf
  wait_until 120 ready || stuck "$step: agent not ready"
  echo "$step: agent ready at $(( $(now_ms) - T0 )) ms"
  wait_until 20 applied_is 1 || stuck "$step: SLO not applied"
  wait_until 20 kernel_sees || stuck "$step: the running scheduler does not read the SLO as written"
  status_json > $OUT/$step-status.json
  $SCX_SLO_LOADER status > $OUT/$step-loader-status.json
  serve1 "get $CRIT" > $OUT/$step-get.json
  kill -9 $AGENT; wait $AGENT 2>/dev/null; AGENT=
  attached || fail "$step: scheduler not attached after the agent was killed"
  jq --arg s $step --argjson seq0 $seq0 --argjson seq1 $(enable_seq) --argjson id0 $id0 \
    --argjson id1 $(slo_map_id) --arg pins "$(ls $PIN | tr '\n' ' ')" \
    --slurpfile st $OUT/$step-status.json --slurpfile ls $OUT/$step-loader-status.json \
    --slurpfile get $OUT/$step-get.json \
    '.[$s] = {enable_seq_before:$seq0, enable_seq_after:$seq1, slo_map_id_before:$id0,
      slo_map_id_after:$id1, pins:$pins, status:$st[0].scheduler, loader_layout:$ls[0].layout,
      slo:$get[0].slo}' $OUT/steps.json > $OUT/steps.tmp && mv $OUT/steps.tmp $OUT/steps.json
  # What the other build's loader says of these pins.
  use_build $( [ $(echo $step | cut -c1) = A ] && echo B || echo A)
  $SCX_SLO_LOADER status | jq .layout > $OUT/$step-other-view.json
done
kill -0 $TICK || fail "the SLO cgroup's task died"
kill $TICK
dmesg > $OUT/dmesg.txt
jq -n --argjson alive 1 '{tick_alive: $alive}' > $OUT/result.json
`,
    900_000,
  );
  assert.equal(result.tick_alive, 1);
  steps = JSON.parse(readFileSync(path.join(r.outDir, "steps.json"), "utf8")) as Record<
    string,
    Step
  >;
  for (const s of STEPS) {
    steps[s]!.otherView = JSON.parse(
      readFileSync(path.join(r.outDir, `${s}-other-view.json`), "utf8"),
    );
  }
  dmesg = readFileSync(path.join(r.outDir, "dmesg.txt"), "utf8");
  const log = readFileSync(path.join(r.outDir, "agent.log"), "utf8");
  assert.equal((log.match(/hand-over: the scheduler pinned by another build/g) ?? []).length, 2);
  assert.doesNotMatch(dmesg, /sched_ext: .*(error|stall)|BUG|WARNING/);
});

test("the two builds have different layouts and each says whether the pins are its own", () => {
  const a = steps.A!.loader_layout;
  const b = steps.B!.loader_layout;
  assert.equal(a.object.abi, b.object.abi, "same ABI version: only the layout hash tells them");
  assert.notEqual(a.object.hash, b.object.hash);
  for (const s of STEPS) {
    assert.equal(steps[s]!.loader_layout.compatible, true, `${s}: its own loader`);
    assert.equal(steps[s]!.otherView.compatible, false, `${s}: the other build's loader`);
  }
});

test("the same build adopts a compatible pin as it runs: no re-attach, same maps", () => {
  const s = steps.A2!;
  assert.equal(s.enable_seq_after, s.enable_seq_before);
  assert.equal(s.slo_map_id_after, s.slo_map_id_before);
  assert.equal(s.status.adopted, true);
  assert.equal(s.status.handover, null);
  assert.deepEqual(s.slo, { cgroup_id: s.slo.cgroup_id, budget_ns: 7_000_000, importance: 90 });
});

for (const [step, from, to, what] of [
  ["B", "A", "B", "upgrade"],
  ["A3", "B", "A", "downgrade"],
] as const) {
  test(`${what} (${from} -> ${to}): hand-over, SLOs written again, old pins gone`, () => {
    const s = steps[step]!;
    const h = s.status.handover;
    assert.ok(h, "the agent reports a hand-over");
    assert.deepEqual(h.from, steps[from === "A" ? "A" : "B"]!.loader_layout.object);
    assert.deepEqual(h.to, s.loader_layout.object);
    assert.equal(s.status.adopted, false);
    assert.match(s.status.reason, /handed over/);
    assert.equal(s.enable_seq_after, s.enable_seq_before + 1, "one attach: the new build's");
    assert.notEqual(s.slo_map_id_after, s.slo_map_id_before, "new maps pinned in place");
    assert.ok(h.maps_replaced >= 9, `${h.maps_replaced} maps replaced`);
    assert.deepEqual(s.slo, { cgroup_id: s.slo.cgroup_id, budget_ns: 7_000_000, importance: 90 });
    console.log(
      `# ${what}: fair class for ${h.fallback_ms} ms (loader: detach to attach), ` +
        `${h.maps_replaced} maps replaced, ${h.pins_dropped} pins dropped; pins now: ${s.pins}`,
    );
    // The target is 200 ms (docs/reliability.md has the figures). The loader verifies the new
    // object before it detaches the old one, so this is the kernel's detach and attach alone; the
    // bound only catches one that hangs (the loader gives a detach 5 s). On a shared 2-core host
    // under emulation, busy with other work, it has taken ten times the target.
    assert.ok(h.fallback_ms < FALLBACK_BOUND_MS, `fallback ${h.fallback_ms} ms`);
  });
}

test("the kernel log agrees on the fallback time of the downgrade", () => {
  const gap = kernelGapMs(dmesg);
  const loader = steps.A3!.status.handover?.fallback_ms as number;
  console.log(
    `# kernel log: scx_slo disabled -> enabled ${gap?.toFixed(1)} ms; the loader measured ${loader} ms (unpin to attach, the teardown included)`,
  );
  assert.ok(gap !== null && gap <= loader + 1, `kernel log gap ${gap} ms, loader ${loader} ms`);
});
