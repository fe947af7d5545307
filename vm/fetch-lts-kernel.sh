#!/usr/bin/env bash
# Downloads Debian's newest kernel of one LTS series (default 6.1, bookworm's own; no sched_ext)
# into ${SCX_SLO_CACHE_ROOT:-/var/cache/scx-slo}/kernels/<abi>/ with what the VM harness boots:
# vmlinuz, config, the 9p/overlay modules and the initramfs. Prints that folder on stdout.
# The observer (bpf/observe.bpf.c) is tested on it; the scheduler cannot run there.
# Nothing is installed on the host: apt-get download + dpkg-deb -x only. Idempotent.
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/.." && pwd)
SERIES=${1:-6.1}
BASE=${SCX_SLO_CACHE_ROOT:-/var/cache/scx-slo}/kernels
say() { printf '[fetch-lts-kernel] %s\n' "$*" >&2; }
die() { printf '[fetch-lts-kernel] error: %s\n' "$*" >&2; exit 1; }

# Newest linux-image-<series>.0-N-amd64 in apt's lists (Debian bumps N with each ABI change).
pkg=$(apt-cache search --names-only "^linux-image-${SERIES//./\\.}\.0-[0-9]+-amd64\$" | cut -d' ' -f1 |
  sort -V | tail -n 1)
[ -n "$pkg" ] || die "no linux-image-$SERIES.0-N-amd64 in apt's lists (run: apt-get update)"
abi=${pkg#linux-image-}
dest="$BASE/$abi"
if [ -f "$dest/vmlinuz" ] && [ -f "$dest/config" ] && [ -f "$dest/modules/virtio_pci.ko" ]; then
  "$ROOT/vm/make-initramfs.sh" "$dest"
  echo "$dest"
  exit 0
fi
say "downloading $pkg"
mkdir -p "$dest"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# Bookworm's image package carries the modules; newer series split them into linux-modules-*.
(cd "$work" && apt-get download -qq -o APT::Sandbox::User=root "$pkg" >/dev/null) ||
  die "apt-get download $pkg failed"
for deb in "$work"/*.deb; do dpkg-deb -x "$deb" "$work/root"; done
cfg=$(find "$work/root" -name "config-$abi" | head -n 1)
vmlinuz=$(find "$work/root" -name "vmlinuz-$abi" | head -n 1)
[ -n "$cfg" ] && [ -n "$vmlinuz" ] || die "no config or vmlinuz in $pkg"
grep -q '^CONFIG_DEBUG_INFO_BTF=y' "$cfg" || die "$abi has no BTF: the observer cannot load there"
mkdir -p "$dest/modules"
# What vm/guest-init loads: on these kernels virtio and fscache are modules too.
for m in virtio_ring virtio virtio_pci_legacy_dev virtio_pci_modern_dev virtio_pci \
  netfs fscache 9pnet 9pnet_virtio 9p overlay; do
  f=$(find "$work/root" -name "$m.ko*" | head -n 1)
  [ -n "$f" ] || continue
  case "$f" in
    *.xz) xz -dc "$f" > "$dest/modules/$m.ko" ;;
    *.zst) zstd -qdc "$f" > "$dest/modules/$m.ko" ;;
    *) cp "$f" "$dest/modules/$m.ko" ;;
  esac
done
cp "$cfg" "$dest/config"
cp "$vmlinuz" "$dest/vmlinuz.tmp" && mv "$dest/vmlinuz.tmp" "$dest/vmlinuz"
"$ROOT/vm/make-initramfs.sh" "$dest"
say "ready: $dest"
echo "$dest"
