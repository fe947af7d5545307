#!/usr/bin/env bash
# Builds the agent's container image from what `make build` built, with podman and no registry:
#   deploy/image/build.sh [--save FILE]   # as root; FILE: an OCI archive of the image
# Result: localhost/scx-slo:<version> in the private store of deploy/image/podman.sh, also tagged
# with deploy/daemonset.yaml's name (ghcr.io/scx-slo/scx-slo:<version>).
#
# Idempotent, and quick when nothing changed:
#   1. podman, runc and mmdebstrap from apt, when missing.
#   2. The base: a Debian trixie root filesystem (mmdebstrap, variant essential) with what the
#      agent and the loader need at run time, cached as a tarball under
#      ${SCX_SLO_CACHE_ROOT:-/var/cache/scx-slo}/image/ and made again only when its package
#      list or mirrors change. Trixie, because it is the Debian release that packages Node 20
#      (bookworm has Node 18; package.json wants 20). The loader built on bookworm runs there
#      unchanged: it needs libbpf.so.1 symbols up to LIBBPF_1.2.0 and glibc 2.34, and trixie has
#      libbpf 1.5 and glibc 2.41.
#   3. The production node modules (`npm ci --omit=dev`), again only when the lock changes.
#   4. The image (deploy/Containerfile) from a staging folder holding package.json, the modules,
#      dist/src and the BPF object and loader; skipped when an image of the same inputs exists
#      (its label io.scx-slo.inputs holds their hash).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
CACHE=${SCX_SLO_CACHE_ROOT:-/var/cache/scx-slo}/image
PODMAN=("$ROOT/deploy/image/podman.sh")
LOCAL_NAME=localhost/scx-slo
PUBLISHED_NAME=ghcr.io/scx-slo/scx-slo

say() { printf '[image] %s\n' "$*" >&2; }
die() { printf '[image] error: %s\n' "$*" >&2; exit 1; }

save=""
while [ $# -gt 0 ]; do
  case "$1" in
    --save) save=${2:?--save needs a file}; shift 2 ;;
    -h | --help) sed -n '2,5p' "$0"; exit 0 ;;
    *) die "unknown argument $1" ;;
  esac
done

[ "$(id -u)" = 0 ] || die "run as root (podman's store and mmdebstrap need it)"
for f in dist/src/cli/main.js build/scx_slo.bpf.o build/scx-slo-loader package-lock.json; do
  [ -e "$ROOT/$f" ] || die "$f is missing: run \`make build\` first"
done

mkdir -p "$CACHE"
exec 9>"$CACHE/lock"
flock 9 # one build at a time; a second caller waits and then finds everything done

# --- 1. tools ------------------------------------------------------------------------------
if ! command -v podman >/dev/null || ! command -v runc >/dev/null ||
  ! command -v mmdebstrap >/dev/null; then
  say "installing podman, runc and mmdebstrap"
  apt_install() {
    DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq \
      --no-install-recommends podman runc mmdebstrap >/dev/null
  }
  apt_install || { apt-get -o DPkg::Lock::Timeout=600 update -qq && apt_install; }
fi

# --- 2. the base ---------------------------------------------------------------------------
# What the agent (node) and the loader (ldd build/scx-slo-loader: libbpf, libelf, zlib) need.
# No ca-certificates: the agent's one TLS peer is the API server, checked against the service
# account's ca.crt.
SUITE=trixie
BASE_PACKAGES=(nodejs libbpf1 libelf1t64 zlib1g)
MIRRORS=(
  "deb http://deb.debian.org/debian $SUITE main"
  "deb http://deb.debian.org/debian $SUITE-updates main"
  "deb http://deb.debian.org/debian-security $SUITE-security main"
)
MMDEBSTRAP_OPTS=(
  --variant=essential --format=tar
  "--include=$(IFS=,; echo "${BASE_PACKAGES[*]}")"
  --dpkgopt='path-exclude=/usr/share/man/*'
  --dpkgopt='path-exclude=/usr/share/info/*'
  --dpkgopt='path-exclude=/usr/share/locale/*'
  --dpkgopt='path-exclude=/usr/share/doc/*'
  --dpkgopt='path-include=/usr/share/doc/*/copyright'
)
base_key=$(printf '%s\n' "$SUITE" "${MMDEBSTRAP_OPTS[@]}" "${MIRRORS[@]}" | sha256sum | cut -c1-12)
base_tar=$CACHE/base-$SUITE-$base_key.tar
base_image=localhost/scx-slo-base:$SUITE-$base_key

if [ ! -s "$base_tar" ]; then
  say "making the $SUITE base root filesystem (mmdebstrap: ${BASE_PACKAGES[*]})"
  rm -f "$CACHE"/base-*.tar "$CACHE"/base-*.tar.partial
  mmdebstrap -q "${MMDEBSTRAP_OPTS[@]}" "$SUITE" "$base_tar.partial" "${MIRRORS[@]}"
  mv "$base_tar.partial" "$base_tar"
fi
if ! "${PODMAN[@]}" image exists "$base_image"; then
  say "importing the base as $base_image"
  "${PODMAN[@]}" import --quiet "$base_tar" "$base_image" >/dev/null
fi

# --- 3. production node modules ------------------------------------------------------------
modules=$CACHE/modules
lock_hash=$(cat "$ROOT/package.json" "$ROOT/package-lock.json" | sha256sum | cut -c1-64)
if [ "$(cat "$modules/inputs" 2>/dev/null)" != "$lock_hash" ]; then
  say "npm ci --omit=dev"
  rm -rf "$modules"
  mkdir -p "$modules"
  cp "$ROOT/package.json" "$ROOT/package-lock.json" "$modules/"
  (cd "$modules" && npm ci --omit=dev --ignore-scripts --no-audit --no-fund --loglevel=error >/dev/null)
  echo "$lock_hash" >"$modules/inputs"
fi

# --- 4. the image --------------------------------------------------------------------------
version=$(node -p 'require(process.argv[1]).version' "$ROOT/package.json")
context=$CACHE/context
rm -rf "$context"
mkdir -p "$context/dist" "$context/build" "$context/bin"
cp "$ROOT/package.json" "$context/"
for cmd in scx-slo:cli scx-slo-shed:shed; do
  printf '#!/bin/sh\nexec node /opt/scx-slo/dist/src/%s/main.js "$@"\n' "${cmd##*:}" >"$context/bin/${cmd%%:*}"
  chmod 755 "$context/bin/${cmd%%:*}"
done
cp -a "$modules/node_modules" "$context/"
cp -a "$ROOT/dist/src" "$context/dist/"
cp "$ROOT/build/scx_slo.bpf.o" "$ROOT/build/scx-slo-loader" "$context/build/"

inputs=$(
  cd "$context"
  {
    echo "$base_image" "$version"
    sha256sum "$ROOT/deploy/Containerfile" | cut -c1-64
    find . -type f -print0 | LC_ALL=C sort -z | xargs -0 sha256sum
  } | sha256sum | cut -c1-64
)
have=$("${PODMAN[@]}" image inspect --format '{{index .Labels "io.scx-slo.inputs"}}' \
  "$LOCAL_NAME:$version" 2>/dev/null || true)
if [ "$have" = "$inputs" ]; then
  say "$LOCAL_NAME:$version is up to date"
else
  say "building $LOCAL_NAME:$version"
  "${PODMAN[@]}" build --quiet --pull=never --network=none --layers=false \
    --build-arg "BASE=$base_image" --build-arg "VERSION=$version" \
    --label "io.scx-slo.inputs=$inputs" \
    -f "$ROOT/deploy/Containerfile" -t "$LOCAL_NAME:$version" -t "$PUBLISHED_NAME:$version" \
    "$context" >/dev/null
  # The image it replaced, and a base of an older package list, are no longer needed.
  "${PODMAN[@]}" image prune --force >/dev/null
  "${PODMAN[@]}" images --format '{{.Repository}}:{{.Tag}}' localhost/scx-slo-base |
    grep -vxF "$base_image" | xargs -r "${PODMAN[@]}" rmi >/dev/null 2>&1 || true
fi
rm -rf "$context"

if [ -n "$save" ]; then
  say "saving to $save (OCI archive)"
  rm -f "$save"
  "${PODMAN[@]}" save --quiet --format oci-archive -o "$save" "$PUBLISHED_NAME:$version"
fi
size=$("${PODMAN[@]}" image inspect --format '{{.Size}}' "$LOCAL_NAME:$version")
say "$LOCAL_NAME:$version ($((size / 1000000)) MB); run it with deploy/image/podman.sh run --rm $LOCAL_NAME:$version --help"
