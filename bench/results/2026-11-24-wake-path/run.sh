#!/bin/sh
# The wake-up path experiment recorded here (see NOTES.md). From the project root, after `make build`:
#   sh bench/results/2026-11-24-wake-path/run.sh [reps] [seconds] [output directory]
# builds the toy schedulers, boots the VM once and runs every arm interleaved at 8 hogs, then a
# pass with kernel.bpf_stats_enabled for the per-callback cost. Writes raw.txt and results.json
# into the output directory (default: this one).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
if [ "${1:-}" = guest ]; then
  REPS=$2; S=$3; TOYS=$4
  L=$PWD/build/scx-slo-loader
  cd /tmp  # stress-ng needs a writable working directory; the project is shared read-only
  CG=/sys/fs/cgroup
  echo "+cpu" > $CG/cgroup.subtree_control 2>/dev/null || true
  mkdir -p $CG/crit $CG/batch
  cg=$(stat -c %i $CG/crit)
  # crit_cgid as the 8 little-endian bytes bpftool wants
  le=$(printf '%016x' "$cg" | sed 's/\(..\)/\1 /g' | awk '{for (i = NF; i > 0; i--) printf "0x%s ", $i}')
  attach() {
    case $1 in
      scx_slo) $L load >/dev/null && printf '1 set %s 1000000 90\n' "$cg" | $L serve >/dev/null ;;
      toy*) o=$(echo "$1" | sed 's/toy+hooks/toy_hook/; s/toy+select/toy_selc/; s/^toy$/toy_fifo/')
            mkdir -p /sys/fs/bpf/toy
            bpftool struct_ops register "$TOYS/$o.bpf.o" /sys/fs/bpf/toy >/dev/null
            bpftool map update name "$o.bss" key 0 0 0 0 value $le ;;
    esac
  }
  detach() {
    case $1 in scx_slo) $L unload >/dev/null ;; toy*) rm -rf /sys/fs/bpf/toy ;; esac
  }
  ops() { bpftool prog show | awk '/struct_ops/ {n = $4} /run_time_ns/ {for (i = 1; i <= NF; i++) {if ($i == "run_time_ns") t = $(i + 1); if ($i == "run_cnt") c = $(i + 1)}; print n, t, c}' | sort; }
  cell() { # arm rep
    prio=""; [ "$1" = fair-rt ] && prio="-p50"
    attach "$1"
    sh -c "echo \$\$ > $CG/batch/cgroup.procs; exec stress-ng --cpu 8 --timeout $((S + 2)) --metrics-brief" > /tmp/st.txt 2>&1 &
    sleep 1
    [ "$2" = stats ] && ops > /tmp/ops0
    sh -c "echo \$\$ > $CG/crit/cgroup.procs; exec cyclictest -q -m -D$S -i1000 -h100000 $prio" > /tmp/ct.txt
    [ "$2" = stats ] && ops > /tmp/ops1
    wait
    detach "$1"
    bogo=$(awk '$4 == "cpu" || $3 == "cpu" {for (i = NF; i > 0; i--) if ($i ~ /^[0-9.]+$/) {n++; if (n == 2) {print $i; exit}}}' /tmp/st.txt)
    if [ "$2" = stats ]; then
      join /tmp/ops0 /tmp/ops1 | awk -v a="$1" '{dc = $5 - $3; if (dc > 0) printf "OPS %s %s %.2f %d\n", a, $1, ($4 - $2) / dc / 1000, dc}'
    fi
    awk -v a="$1" -v r="$2" -v b="${bogo:-null}" '/^[0-9]/ {c[$1 + 0] = $2; n += $2}
      /Overflows/ {c[100000] += $NF; n += $NF}
      END {t = 0; for (i = 0; i <= 100000; i++) {t += c[i]; if (!p50 && t >= n * 0.5) p50 = i; if (!p99 && t >= n * 0.99) p99 = i; if (!p999 && t >= n * 0.999) p999 = i}
           printf "REC %s %s p50 %d p99 %d p999 %d samples %d bogo %s\n", a, r, p50, p99, p999, n, b}' /tmp/ct.txt
  }
  r=0
  while [ $r -lt "$REPS" ]; do
    for a in fair fair-rt scx_slo toy toy+hooks toy+select; do cell $a $r; done
    r=$((r + 1))
  done
  sysctl -qw kernel.bpf_stats_enabled=1
  for a in scx_slo toy toy+hooks; do cell $a stats; done
  exit 0
fi

reps=${1:-6}; secs=${2:-10}; out=${3:-$here}; mkdir -p "$out"; started=$(date -u +%Y-%m-%dT%H:%M:%SZ)
toys=$PWD/.cache/toys; mkdir -p "$toys"
kdir=.cache/kernel/$(cat .cache/kernel/current)
for v in fifo: hook:-DWITH_HOOKS selc:-DWITH_SELECT; do
  clang-19 -O2 -g -target bpf -D__TARGET_ARCH_x86 -mcpu=v3 -I"$kdir" -Wno-missing-declarations \
    ${v#*:} -c "$here/toy.bpf.c" -o "$toys/toy_${v%%:*}.bpf.o"
done
node dist/vm/cli.js --timeout 900 -- sh "$here/run.sh" guest "$reps" "$secs" "$toys" | tee "$out/raw.txt"
machine=$(node -e 'import("./dist/bench/host.js").then((m) => console.log(m.describeMachine()))')
STARTED="$started" MACHINE="$machine" node -e '
const fs = require("fs");
const recs = fs.readFileSync(process.argv[1], "utf8").split("\n").filter((l) => l.startsWith("REC ") && !/ stats /.test(l))
  .map((l) => { const f = l.trim().split(/\s+/);
    return { arm: f[1], workload: "cyclictest", bg: 8, rep: Number(f[2]), p50_us: Number(f[4]), p99_us: Number(f[6]),
             p999_us: Number(f[8]), samples: Number(f[10]), batch_ops_per_s: f[12] === "null" ? null : Number(f[12]) }; });
fs.writeFileSync(process.argv[2], JSON.stringify({ schema: 1, machine: process.env.MACHINE, started: process.env.STARTED, records: recs }, null, 2) + "\n");
' "$out/raw.txt" "$out/results.json"
