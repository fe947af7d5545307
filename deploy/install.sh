#!/usr/bin/env bash
# Installs what `make build` built as commands on this host, for running scx-slo without
# Kubernetes:  deploy/install.sh [DESTDIR] [PREFIX]   (make install DESTDIR=... PREFIX=...)
#   PREFIX/lib/scx-slo/      package.json, dist/src, production node_modules, build/{loader,object}
#   PREFIX/bin/scx-slo       the CLI (agent, status, config, safe-mode)
#   PREFIX/bin/scx-slo-shed  the load-shedding sidecar
#   /etc/systemd/system/scx-slo.service, and /etc/scx-slo/config (an example, only if absent)
# Idempotent; needs Node 20 on PATH at run time.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
DESTDIR=${1:-}
PREFIX=${2:-/usr/local}
LIBDIR=$PREFIX/lib/scx-slo
BINDIR=$PREFIX/bin

for f in dist/src/cli/main.js dist/src/shed/main.js build/scx-slo-loader build/scx_slo.bpf.o; do
  [ -e "$ROOT/$f" ] || { echo "install: $f is missing: run \`make build\` first" >&2; exit 1; }
done

lib=$DESTDIR$LIBDIR
rm -rf "$lib.new"
mkdir -p "$lib.new/dist" "$lib.new/build" "$DESTDIR$BINDIR"
cp "$ROOT/package.json" "$ROOT/package-lock.json" "$ROOT/README.md" "$lib.new/"
cp -a "$ROOT/dist/src" "$lib.new/dist/src"
cp "$ROOT/build/scx-slo-loader" "$ROOT/build/scx_slo.bpf.o" "$lib.new/build/"
cp -a "$ROOT/node_modules" "$lib.new/node_modules"
(cd "$lib.new" && npm prune --omit=dev --no-audit --no-fund --loglevel=error >/dev/null)
rm -rf "$lib"
mv "$lib.new" "$lib"

for cmd in scx-slo:cli scx-slo-shed:shed; do
  name=${cmd%%:*}
  dir=${cmd##*:}
  printf '#!/bin/sh\nexec node %s/dist/src/%s/main.js "$@"\n' "$LIBDIR" "$dir" > "$DESTDIR$BINDIR/$name"
  chmod 755 "$DESTDIR$BINDIR/$name"
done

unit=$DESTDIR/etc/systemd/system/scx-slo.service
mkdir -p "$(dirname "$unit")"
sed -e "s|@BINDIR@|$BINDIR|g" -e "s|@LIBDIR@|$LIBDIR|g" "$ROOT/deploy/systemd/scx-slo.service" > "$unit"

if [ ! -e "$DESTDIR/etc/scx-slo/config" ]; then
  "$DESTDIR$BINDIR/scx-slo" config init "$DESTDIR/etc/scx-slo/config" >/dev/null 2>&1 ||
    node "$lib/dist/src/cli/main.js" config init "$DESTDIR/etc/scx-slo/config" >/dev/null
fi
echo "installed: $BINDIR/scx-slo, $BINDIR/scx-slo-shed, $LIBDIR, /etc/systemd/system/scx-slo.service"
