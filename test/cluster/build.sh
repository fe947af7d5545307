#!/usr/bin/env bash
# Builds the control plane the tests run (kube-apiserver, kubectl, etcd) from source through the
# Go module proxy, at the versions go.mod pins, into
#   ${SCX_SLO_CACHE_ROOT:-/var/cache/scx-slo}/k8s/<kubernetes version>/bin
# That folder is outside /root and /tmp, so the sched_ext VM guest sees it too. Idempotent: when the
# three binaries are there and were built from this go.mod/go.sum, it does nothing. Static binaries
# (CGO_ENABLED=0), stripped, with the version strings Kubernetes' own build stamps in.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
say() { printf '[cluster] %s\n' "$*" >&2; }
die() { printf '[cluster] error: %s\n' "$*" >&2; exit 1; }

command -v go >/dev/null 2>&1 || die "go is not installed (Go >= 1.26 is needed to build the control plane)"

mod_version() { awk -v m="$1" '$1 == m && $2 ~ /^v/ { print $2; exit }' "$HERE/go.mod"; }
K8S_VERSION=$(mod_version k8s.io/kubernetes)
ETCD_VERSION=$(mod_version go.etcd.io/etcd/server/v3)
[ -n "$K8S_VERSION" ] && [ -n "$ETCD_VERSION" ] || die "go.mod names no k8s.io/kubernetes or etcd version"

CACHE_ROOT=${SCX_SLO_CACHE_ROOT:-/var/cache/scx-slo}
DEST="$CACHE_ROOT/k8s/$K8S_VERSION"
BIN="$DEST/bin"
# What the binaries were built from: a change to the pins or to the build flags rebuilds them.
STAMP_WANT="$(cat "$HERE/go.mod" "$HERE/go.sum" "$HERE/build.sh" | sha256sum | cut -d' ' -f1)"

built() {
  [ -f "$BIN/.stamp" ] && [ "$(cat "$BIN/.stamp")" = "$STAMP_WANT" ] || return 1
  [ -x "$BIN/kube-apiserver" ] && [ -x "$BIN/kubectl" ] && [ -x "$BIN/etcd" ] || return 1
  "$BIN/kube-apiserver" --version 2>/dev/null | grep -qx "Kubernetes $K8S_VERSION"
}

t0=$(date +%s%N)
if built; then
  say "kube-apiserver, kubectl $K8S_VERSION and etcd $ETCD_VERSION present in $BIN" \
    "(checked in $((($(date +%s%N) - t0) / 1000000)) ms)"
  exit 0
fi

mkdir -p "$DEST"
# Two builds at once (two make runs) would race on the same folder: the second waits.
exec 9>"$DEST/.lock"
flock 9
if built; then
  say "built meanwhile by another run: $BIN"
  exit 0
fi

start=$(date +%s)
say "building kube-apiserver, kubectl $K8S_VERSION and etcd $ETCD_VERSION (first time: many minutes)"
STAGE=$(mktemp -d "$DEST/.build.XXXXXX")
trap 'rm -rf "$STAGE"' EXIT

# Kubernetes' own release build sets these; without them the binaries report v0.0.0-master.
minor=${K8S_VERSION#v*.}
minor=${minor%%.*}
major=${K8S_VERSION#v}
major=${major%%.*}
ldx=""
for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
  ldx+=" -X $pkg.gitVersion=$K8S_VERSION -X $pkg.gitMajor=$major -X $pkg.gitMinor=$minor"
  ldx+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=1970-01-01T00:00:00Z"
done

cd "$HERE"
export CGO_ENABLED=0 GOFLAGS=-mod=readonly
go build -trimpath -buildvcs=false -ldflags "-s -w$ldx" -o "$STAGE/" \
  k8s.io/kubernetes/cmd/kube-apiserver k8s.io/kubernetes/cmd/kubectl
go build -trimpath -buildvcs=false -ldflags "-s -w" -o "$STAGE/etcd" go.etcd.io/etcd/server/v3

"$STAGE/kube-apiserver" --version | grep -qx "Kubernetes $K8S_VERSION" ||
  die "kube-apiserver reports $("$STAGE/kube-apiserver" --version), expected $K8S_VERSION"
mkdir -p "$BIN"
for b in kube-apiserver kubectl etcd; do mv -f "$STAGE/$b" "$BIN/$b"; done
echo "$STAMP_WANT" > "$BIN/.stamp"
say "built in $(($(date +%s) - start)) s: $BIN"
ls -l "$BIN" | awk 'NR > 1 { printf "[cluster]   %-16s %4d MiB\n", $9, $5 / 1048576 }' >&2
