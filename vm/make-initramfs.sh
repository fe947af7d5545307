#!/usr/bin/env bash
# Builds <kernel-dir>/initramfs.cpio.gz: static busybox, the 9p/overlay modules and vm/guest-init.
# Rebuilt whenever guest-init changes (cheap: under a second).
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
dest=${1:?usage: make-initramfs.sh KERNEL_DIR}
out="$dest/initramfs.cpio.gz"
if [ -f "$out" ] && [ "$out" -nt "$ROOT/vm/guest-init" ] && [ "$out" -nt "$ROOT/vm/make-initramfs.sh" ]; then
  exit 0
fi
bb=$(command -v busybox || true)
[ -n "$bb" ] && file -L "$bb" 2>/dev/null | grep -q 'statically linked' || bb=/bin/busybox
[ -x "$bb" ] || { echo "[initramfs] error: busybox-static missing (run: make setup)" >&2; exit 1; }
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
mkdir -p "$stage"/{bin,dev,proc,sys,mnt,lib/modules}
cp "$bb" "$stage/bin/busybox"
cp "$dest"/modules/*.ko "$stage/lib/modules/" 2>/dev/null || true
cp "$ROOT/vm/guest-init" "$stage/init"
chmod +x "$stage/init"
(cd "$stage" && find . | cpio -o -H newc --quiet | gzip -1 > "$out.tmp")
mv "$out.tmp" "$out"
