#!/bin/sh
# Runs inside the sched_ext VM: attaches each peer scheduler in turn, runs a short load under it,
# detaches it with SIGINT and checks that the kernel is back on its fair class. From the checkout:
#   node dist/vm/cli.js --cpus 2 --timeout 900 -- sh bench/peers/vm-smoke.sh [ARM...]
# (scx_lavd and scx_layered spend minutes in the BPF verifier under emulation; all arms take
# 5-10 min). LAVD_EXTRA adds options to the lavd arm, e.g. --log-level=debug.
# Arms: fair lavd lavd-bw bpfland flash layered (default: all; fair is the kernel's own class, no
# scheduler attached, for comparison within the same boot). Binaries come from
# ${SCX_SLO_CACHE_ROOT:-/var/cache/scx-slo}/scx-peers/bin (bench/peers/build.sh).
#
# Per arm it prints one line
#   arm=<arm> ops=<name> attach_ms=<ms> detach_ms=<ms> exit=<status> load_ms=<ms>
#       batch_cpu_ms=<ms> critical_cpu_ms=<ms> ok|FAIL
# where batch_cpu_ms is the CPU that two hogs in /bench/batch (cpu.max 0.5 CPU, set before the
# scheduler attaches) used in the load_ms the load took: about load_ms/2 when cpu.max holds,
# about load_ms*CPUs when it does not. Each scheduler's own output follows, indented.
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
BIN=${SCX_SLO_CACHE_ROOT:-/var/cache/scx-slo}/scx-peers/bin
SCX=/sys/kernel/sched_ext
CG=/sys/fs/cgroup/bench
LOAD_S=${LOAD_S:-3}
ATTACH_TIMEOUT_S=${ATTACH_TIMEOUT_S:-600}
# Under the VM harness the logs go to its results share, readable from the host while it runs.
LOGS=${SCXVM_OUT:-/tmp}/peers
mkdir -p "$LOGS"

now_ms() { echo $(($(date +%s%N) / 1000000)); }
usage_ms() { echo $(($(sed -n 's/^usage_usec //p' "$1/cpu.stat") / 1000)); }
state() { cat "$SCX/state" 2>/dev/null; }
ops() { cat "$SCX/root/ops" 2>/dev/null; }

# The command line of each arm: how an operator would start it (see bench/peers/README.md).
arm_cmd() {
  case "$1" in
    fair) echo ;;
    lavd) echo "$BIN/scx_lavd ${LAVD_EXTRA:-}" ;;
    lavd-bw) echo "$BIN/scx_lavd --enable-cpu-bw" ;;
    bpfland) echo "$BIN/scx_bpfland" ;;
    flash) echo "$BIN/scx_flash" ;;
    layered) echo "$BIN/scx_layered --stats 1 f:$HERE/layered-critical.json" ;;
    *) return 1 ;;
  esac
}
# The name each registers as, the prefix of $SCX/root/ops while it is attached.
arm_ops() {
  case "$1" in
    fair) echo none ;;
    lavd | lavd-bw) echo lavd ;;
    *) echo "$1" ;;
  esac
}

# libbpf resolves the schedulers' __kconfig externs (CONFIG_HZ, CONFIG_NR_CPUS) from
# /boot/config-$(uname -r) or /proc/config.gz, and refuses to load them without either. A Debian
# node has the former; the guest sees the host's /boot, so the cached kernel's config goes on a
# tmpfs /boot here.
if [ ! -e "/boot/config-$(uname -r)" ] && [ ! -e /proc/config.gz ]; then
  kconfig="$HERE/../../.cache/kernel/$(uname -r)/config"
  [ -f "$kconfig" ] || { echo "no kernel config for $(uname -r) at $kconfig"; exit 1; }
  mount -t tmpfs -o mode=755 tmpfs /boot && cp "$kconfig" "/boot/config-$(uname -r)" || exit 1
fi

mkdir -p "$CG/critical" "$CG/batch"
echo "+cpu" > "$CG/cgroup.subtree_control" 2>/dev/null
echo "uname=$(uname -r) cpus=$(nproc) state=$(state)"

# Two CPU hogs in the batch cgroup and a 1 ms periodic waker (SCHED_OTHER) in the critical one
# for LOAD_S seconds; sets load_ms, batch_ms, crit_ms.
run_load() {
  b0=$(usage_ms "$CG/batch")
  c0=$(usage_ms "$CG/critical")
  l0=$(now_ms)
  sh -c "echo \$\$ > $CG/batch/cgroup.procs && exec stress-ng --cpu 2 --timeout ${LOAD_S}s --temp-path /tmp --quiet" &
  hogs=$!
  sh -c "echo \$\$ > $CG/critical/cgroup.procs && exec cyclictest -q -D $LOAD_S -i 1000 -t 1" > /dev/null &
  waker=$!
  wait "$hogs" "$waker"
  load_ms=$(($(now_ms) - l0))
  batch_ms=$(($(usage_ms "$CG/batch") - b0))
  crit_ms=$(($(usage_ms "$CG/critical") - c0))
}

# Starts the arm's scheduler and waits until the kernel names it; sets pid and attach_ms (-1:
# it exited or did not attach within ATTACH_TIMEOUT_S).
attach() {
  t0=$(now_ms)
  # shellcheck disable=SC2086 # the command line splits into words on purpose
  $cmd > "$log" 2>&1 &
  pid=$!
  attach_ms=-1
  next_beat=10000
  while [ $(($(now_ms) - t0)) -lt $((ATTACH_TIMEOUT_S * 1000)) ]; do
    if [ "$(state)" = enabled ] && case "$(ops)" in "$want"*) true ;; *) false ;; esac then
      attach_ms=$(($(now_ms) - t0))
      return
    fi
    kill -0 "$pid" 2>/dev/null || return
    sleep 0.05
    if [ $(($(now_ms) - t0)) -ge $next_beat ]; then
      echo "  $arm: waiting ${next_beat} ms, state $(state)"
      next_beat=$((next_beat + 30000))
    fi
  done
}

# SIGINT, as an operator stops it; sets rc and detach_ms (-1: still attached after 10 s). One
# that ignores SIGINT for 15 s is killed and fails.
detach() {
  t1=$(now_ms)
  kill -INT "$pid" 2>/dev/null
  while kill -0 "$pid" 2>/dev/null && [ $(($(now_ms) - t1)) -lt 15000 ]; do sleep 0.05; done
  if kill -0 "$pid" 2>/dev/null; then
    echo "  $arm: still running 15 s after SIGINT; SIGKILL"
    kill -KILL "$pid"
    verdict=FAIL
  fi
  wait "$pid"
  rc=$?
  detach_ms=-1
  while [ $(($(now_ms) - t1)) -lt 10000 ]; do
    [ "$(state)" = disabled ] && { detach_ms=$(($(now_ms) - t1)); return; }
    sleep 0.05
  done
}

fails=0
for arm in ${*:-fair lavd lavd-bw bpfland flash layered}; do
  cmd=$(arm_cmd "$arm") || { echo "arm=$arm unknown"; fails=$((fails + 1)); continue; }
  want=$(arm_ops "$arm")
  log="$LOGS/$arm.log"
  : > "$log"
  verdict=ok name=none attach_ms=0 detach_ms=0 rc=0 load_ms=-1 batch_ms=-1 crit_ms=-1
  if [ "$(state)" != disabled ]; then
    echo "arm=$arm: sched_ext is $(state) before start FAIL"
    fails=$((fails + 1))
    continue
  fi
  # The limit is in place before the scheduler attaches and no task is in the cgroup yet: a
  # limit changed while a scheduler is attached can crash 7.3 on unload (docs/kernel-issues.md).
  echo "50000 100000" > "$CG/batch/cpu.max"
  dmesg -C
  if [ "$arm" = fair ]; then
    run_load
  else
    echo "  $arm: starting $cmd"
    attach
    name=$(ops)
    if [ "$attach_ms" -ge 0 ]; then
      run_load
      [ "$(state)" = enabled ] || verdict=FAIL
    else
      verdict=FAIL
    fi
    detach
    [ "$detach_ms" -ge 0 ] || verdict=FAIL
  fi
  echo max > "$CG/batch/cpu.max"
  echo "arm=$arm ops=$name attach_ms=$attach_ms detach_ms=$detach_ms exit=$rc load_ms=$load_ms batch_cpu_ms=$batch_ms critical_cpu_ms=$crit_ms $verdict"
  sed 's/^/    /' "$log"
  dmesg | grep -i 'sched_ext' | sed 's/^/    dmesg: /'
  [ "$verdict" = ok ] || fails=$((fails + 1))
done
rmdir "$CG/critical" "$CG/batch" "$CG" 2>/dev/null
echo "peers failed: $fails"
[ "$fails" -eq 0 ]
