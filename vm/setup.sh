#!/usr/bin/env bash
# Installs everything scx-slo needs on Debian bookworm, as root, idempotently:
#   - apt suites bookworm-backports / trixie-backports at a low pin (nothing else upgrades)
#   - the toolchain (clang-19, libbpf 1.4.6, bpftool 7.5), QEMU 10, load tools
#   - Prometheus (prometheus, promtool): the tests check the metrics exposition and the dashboard
#   - the newest Debian 7.x kernel with CONFIG_SCHED_CLASS_EXT=y, into .cache/kernel (git-ignored),
#     and the newest one in sid (a second kernel the scheduler's VM tests run on too)
#   - vmlinux.h from that kernel's BTF
# A second run with everything present touches no network and takes seconds.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
CACHE="$ROOT/.cache"
KDIR="$CACHE/kernel"
STAMP="$CACHE/setup.done"

say() { printf '[setup] %s\n' "$*" >&2; }
die() { printf '[setup] error: %s\n' "$*" >&2; exit 1; }

[ "$(id -u)" = 0 ] || die "run as root (apt-get and qemu's 9p share need it): sudo make setup"
grep -q 'bookworm' /etc/os-release || say "warning: not Debian bookworm; package names may differ"

APT_PKGS=(clang-19 llvm-19 libelf-dev zlib1g-dev pkg-config make gcc
  busybox-static cpio xz-utils zstd rt-tests stress-ng util-linux iproute2 postgresql-15 curl jq
  prometheus linux-perf openssl)
BACKPORT_PKGS=(libbpf-dev bpftool qemu-system-x86)

host_tools_present() {
  for b in clang-19 llvm-strip-19 bpftool qemu-system-x86_64 busybox cpio xz zstd cyclictest stress-ng \
    chrt setpriv ip curl jq perf hackbench openssl /usr/lib/postgresql/15/bin/pgbench prometheus promtool; do
    command -v "$b" >/dev/null 2>&1 || [ -x "/usr/sbin/$b" ] || return 1
  done
  [ -f /usr/include/bpf/libbpf.h ] || return 1
}

kernel_present() {
  [ -f "$KDIR/$1" ] || return 1
  local ver; ver=$(cat "$KDIR/$1")
  [ -f "$KDIR/$ver/vmlinuz" ] && [ -f "$KDIR/$ver/initramfs.cpio.gz" ] &&
    [ -s "$KDIR/$ver/vmlinux.h" ]
}
cache_present() { kernel_present current && kernel_present sid; }

# Debian bookworm's own 6.1 kernel, on which the observer (bpf/observe.bpf.c) is tested.
lts_present() { compgen -G "${SCX_SLO_CACHE_ROOT:-/var/cache/scx-slo}/kernels/6.1.0-*-amd64/modules/virtio_pci.ko" >/dev/null; }

if host_tools_present && cache_present && lts_present && [ -f "$STAMP" ]; then
  say "everything present (kernel $(cat "$KDIR/current")); nothing to do"
  exit 0
fi

# --- apt suites ----------------------------------------------------------------------------
SRC=/etc/apt/sources.list.d/scx-slo-backports.sources
PIN=/etc/apt/preferences.d/scx-slo-backports.pref
if [ ! -f "$SRC" ]; then
  say "adding bookworm-backports and trixie-backports (low pin priority)"
  cat > "$SRC" <<'SRCEOF'
Types: deb
URIs: http://deb.debian.org/debian
Suites: bookworm-backports trixie trixie-backports
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRCEOF
  cat > "$PIN" <<'PINEOF'
# scx-slo: never upgrade the host from these suites unless a package is asked for by -t.
Package: *
Pin: release n=bookworm-backports
Pin-Priority: 100

Package: *
Pin: release n=trixie
Pin-Priority: 50

Package: *
Pin: release n=trixie-backports
Pin-Priority: 50
PINEOF
  rm -f "$CACHE/apt-updated"
fi
mkdir -p "$CACHE"
if [ ! -f "$CACHE/apt-updated" ] || ! host_tools_present; then
  say "apt-get update"
  apt-get update -qq
  touch "$CACHE/apt-updated"
fi

if ! host_tools_present; then
  say "installing toolchain and load tools"
  # The benchmark runs its own PostgreSQL in the VM: no default cluster on the host.
  mkdir -p /etc/postgresql-common/createcluster.d
  echo "create_main_cluster = false" > /etc/postgresql-common/createcluster.d/scx-slo.conf
  had_prometheus=$(command -v prometheus || true)
  # Another install may hold the dpkg lock: wait for it rather than fail.
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    -o DPkg::Lock::Timeout=600 "${APT_PKGS[@]}" >/dev/null
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
    -o DPkg::Lock::Timeout=600 -t bookworm-backports "${BACKPORT_PKGS[@]}" >/dev/null
  # The tests run their own Prometheus on a free port; the package's server (port 9090, started
  # at install on a systemd host) is not needed, so one installed here is left stopped.
  if [ -z "$had_prometheus" ] && [ -d /run/systemd/system ]; then
    systemctl disable --now prometheus.service >/dev/null 2>&1 || true
  fi
  host_tools_present || die "toolchain still incomplete after apt-get install"
fi

# --- the sched_ext kernel -------------------------------------------------------------------
mkdir -p "$KDIR"
kernel_present current || "$ROOT/vm/fetch-kernel.sh"
kernel_present sid || "$ROOT/vm/fetch-kernel.sh" sid
lts_present || "$ROOT/vm/fetch-lts-kernel.sh" 6.1 >/dev/null
touch "$STAMP"
say "done: kernels $(cat "$KDIR/current") (default) and $(cat "$KDIR/sid") (sid)"
