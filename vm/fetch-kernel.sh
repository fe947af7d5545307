#!/usr/bin/env bash
# Downloads a Debian 7.x kernel with sched_ext into .cache/kernel/<abi>/, checks it has
# CONFIG_SCHED_CLASS_EXT=y, and prepares what the VM and the BPF build need:
#   vmlinuz, the five modules the initramfs loads, initramfs.cpio.gz, config, vmlinux.h.
# Nothing is installed on the host: apt-get download + dpkg-deb -x only.
#
#   vm/fetch-kernel.sh        the newest 7.x from the host's apt suites (trixie-backports);
#                             .cache/kernel/current names it (the BPF build and the VM default)
#   vm/fetch-kernel.sh sid    the newest 7.x in Debian unstable, read through an apt state of its
#                             own (sid is never added to the host's sources);
#                             .cache/kernel/sid names it (SCX_SLO_KERNEL=sid picks it in the VM)
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
KDIR="$ROOT/.cache/kernel"
which=${1:-current}
say() { printf '[fetch-kernel] %s\n' "$*" >&2; }
die() { printf '[fetch-kernel] error: %s\n' "$*" >&2; exit 1; }

APT_OPTS=()
case "$which" in
  current) ;;
  sid)
    # A private apt configuration: lists under the cache, sid as its only source, so the host's
    # package policy is untouched. Lists are read again only when the kernel they name is gone.
    SID="${SCX_SLO_CACHE_ROOT:-/var/cache/scx-slo}/apt-sid"
    mkdir -p "$SID/lists/partial" "$SID/archives/partial"
    echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian sid main" \
      > "$SID/sources.list"
    APT_OPTS=(-o "Dir::Etc::SourceList=$SID/sources.list" -o Dir::Etc::SourceParts=/dev/null
      -o "Dir::State::Lists=$SID/lists" -o "Dir::Cache=$SID" -o "Dir::Cache::archives=$SID/archives"
      -o Dir::Etc::Preferences=/dev/null -o Dir::Etc::PreferencesParts=/dev/null)
    sid_update() { say "apt-get update (sid, private lists in $SID)"; apt-get "${APT_OPTS[@]}" update -qq; }
    ls "$SID"/lists/*_Packages* >/dev/null 2>&1 || sid_update
    ;;
  *) die "usage: fetch-kernel.sh [sid]" ;;
esac

# Newest linux-image-amd64 metapackage version whose upstream major is >= 7 (Debian's 6.x have
# sched_ext compiled out). Resolved at run time: versions move.
resolve() {
  meta_ver=$(apt-cache "${APT_OPTS[@]}" madison linux-image-amd64 |
    awk -F'|' -v want="$([ "$which" = sid ] && echo ' sid/' || echo .)" 'index($3, want) || want == "." {gsub(/ /,"",$2); print $2}' |
    awk -F. '$1 >= 7' | sort -V | tail -n 1)
  [ -n "$meta_ver" ] || return 1
  abi=$(apt-cache "${APT_OPTS[@]}" depends "linux-image-amd64=$meta_ver" |
    sed -n 's/.*Depends: linux-image-\([0-9].*-amd64\)$/\1/p' | head -n 1)
  [ -n "$abi" ]
}
resolve || die "no linux-image-amd64 >= 7.0 in apt's lists ($which); is trixie-backports in the sources? (run: make setup)"
say "newest 7.x kernel ($which): $abi (linux-image-amd64 $meta_ver)"

dest="$KDIR/$abi"
mkdir -p "$dest"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

download() {
  (cd "$work" && apt-get "${APT_OPTS[@]}" download -qq -o APT::Sandbox::User=root \
    "linux-binary-$abi" "linux-modules-$abi" "linux-base-$abi" >/dev/null)
}

if [ ! -f "$dest/config" ] || [ ! -f "$dest/vmlinuz" ] || [ ! -d "$dest/modules" ]; then
  if ! download; then
    # sid moves fast: lists a few days old can name packages the mirror has dropped.
    [ "$which" = sid ] || die "apt-get download of linux-{binary,modules,base}-$abi failed"
    sid_update
    rmdir "$dest" 2>/dev/null || true
    resolve || die "no linux-image-amd64 >= 7.0 in sid's lists"
    dest="$KDIR/$abi"
    mkdir -p "$dest"
    download || die "apt-get download of linux-{binary,modules,base}-$abi failed"
  fi
  for deb in "$work"/*.deb; do dpkg-deb -x "$deb" "$work/root"; done
  cfg=$(find "$work/root" -path "*/modules/$abi/config" -o -name "config-$abi" | head -n 1)
  [ -n "$cfg" ] || die "no kernel config for $abi in the downloaded packages"
  if ! grep -q '^CONFIG_SCHED_CLASS_EXT=y' "$cfg"; then
    die "kernel $abi lacks CONFIG_SCHED_CLASS_EXT=y; scx-slo needs a sched_ext kernel"
  fi
  cp "$cfg" "$dest/config"
  vmlinuz=$(find "$work/root" -path "*/modules/$abi/vmlinuz" -o -name "vmlinuz-$abi" | head -n 1)
  [ -n "$vmlinuz" ] || die "no vmlinuz in linux-binary-$abi"
  cp "$vmlinuz" "$dest/vmlinuz"
  # The initramfs needs 9p (the host root share) and overlay; keep just those modules.
  mkdir -p "$dest/modules"
  for m in netfs 9pnet 9pnet_virtio 9p overlay; do
    f=$(find "$work/root" -name "$m.ko*" | head -n 1)
    if [ -z "$f" ]; then
      grep -qE "^CONFIG_$(echo "$m" | tr a-z A-Z | tr -d _)=y" "$cfg" && continue
      say "note: module $m not found (may be built in)"; continue
    fi
    case "$f" in
      *.xz) xz -dc "$f" > "$dest/modules/$m.ko" ;;
      *.zst) zstd -qdc "$f" > "$dest/modules/$m.ko" ;;
      *) cp "$f" "$dest/modules/$m.ko" ;;
    esac
  done
fi

# vmlinux.h: the bzImage carries a zstd-compressed ELF; its .BTF section has every sched_ext type.
if [ ! -s "$dest/vmlinux.h" ]; then
  off=$(LC_ALL=C grep -obUaP '\x28\xb5\x2f\xfd' "$dest/vmlinuz" | head -n 1 | cut -d: -f1)
  [ -n "$off" ] || die "no zstd payload in $dest/vmlinuz"
  tail -c +"$((off + 1))" "$dest/vmlinuz" | zstd -qdc > "$work/vmlinux" 2>/dev/null || true
  [ -s "$work/vmlinux" ] || die "could not decompress the kernel payload"
  bpftool btf dump file "$work/vmlinux" format c > "$dest/vmlinux.h.tmp"
  grep -q 'struct sched_ext_ops {' "$dest/vmlinux.h.tmp" || die "vmlinux.h has no struct sched_ext_ops"
  mv "$dest/vmlinux.h.tmp" "$dest/vmlinux.h"
fi

"$ROOT/vm/make-initramfs.sh" "$dest"
echo "$abi" > "$KDIR/$which"
say "ready: $dest"
