#!/usr/bin/env bash
# Builds the sched-ext/scx schedulers that the benchmark compares scx_slo against, from crates.io
# at the versions pinned in bench/peers/versions.env, into
#   ${SCX_SLO_CACHE_ROOT:-/var/cache/scx-slo}/scx-peers/bin
# Idempotent: installs missing apt packages (as root), skips a crate already built at its pinned
# version with the pinned clang, and prints the time taken. The binaries live outside the
# checkout, under a path the sched_ext VM sees read-only.
set -euo pipefail

HERE=$(cd "$(dirname "$0")" && pwd)
CACHE_ROOT=${SCX_SLO_CACHE_ROOT:-/var/cache/scx-slo}
PEERS="$CACHE_ROOT/scx-peers"
BIN="$PEERS/bin"
STAMPS="$PEERS/stamps"
START=$(date +%s)

say() { printf '[peers] %s\n' "$*" >&2; }
die() { printf '[peers] error: %s\n' "$*" >&2; exit 1; }

CRATES=()
BPF_CLANG=
while IFS='=' read -r key val; do
  case "$key" in
    '' | \#*) ;;
    BPF_CLANG) BPF_CLANG=$val ;;
    scx_*) CRATES+=("$key@$val") ;;
    *) die "versions.env: unknown key $key" ;;
  esac
done < "$HERE/versions.env"
[ -n "$BPF_CLANG" ] || die "versions.env names no BPF_CLANG"
[ ${#CRATES[@]} -gt 0 ] || die "versions.env names no crate"
CLANG_MAJOR=${BPF_CLANG#clang-}

stamp_of() { printf '%s %s\n' "$1" "$BPF_CLANG"; }
built() { # crate@version: its binary is there and was built at this version with this clang
  local name=${1%@*}
  [ -x "$BIN/$name" ] && [ "$(cat "$STAMPS/$name" 2>/dev/null)" = "$(stamp_of "$1")" ]
}

report() {
  local c name
  for c in "${CRATES[@]}"; do
    name=${c%@*}
    say "$(printf '%-12s %-6s %6s KiB' "$name" "${c#*@}" "$(($(stat -c %s "$BIN/$name") / 1024))")"
  done
  say "done in $(($(date +%s) - START)) s"
}

todo=()
for c in "${CRATES[@]}"; do built "$c" || todo+=("$c"); done
if [ ${#todo[@]} -eq 0 ]; then
  say "all present in $BIN ($BPF_CLANG); nothing to build"
  report
  exit 0
fi

# --- build dependencies -----------------------------------------------------------------------
# libbpf-sys compiles its vendored libbpf with make/gcc against libelf and zlib; bindgen (scx_utils,
# scx_cargo) loads libclang, which the pinned clang brings along.
APT_PKGS=("$BPF_CLANG" libelf-dev zlib1g-dev pkg-config make gcc)
missing=()
for p in "${APT_PKGS[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  [ "$(id -u)" = 0 ] || die "missing packages ${missing[*]}: run as root"
  # A package apt has never heard of has no candidate until the lists are fetched.
  policy=$(apt-cache policy "${missing[@]}" 2>/dev/null || true)
  if [ "$(grep -c 'Candidate: [0-9]' <<<"$policy")" -lt ${#missing[@]} ]; then
    say "apt-get update"
    apt-get -o DPkg::Lock::Timeout=600 update -qq
  fi
  say "installing ${missing[*]}"
  DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y -qq \
    --no-install-recommends "${missing[@]}" >/dev/null
fi
command -v "$BPF_CLANG" >/dev/null || die "$BPF_CLANG not on PATH after install"
LIBCLANG_PATH=/usr/lib/llvm-$CLANG_MAJOR/lib
[ -d "$LIBCLANG_PATH" ] || die "no $LIBCLANG_PATH (libclang for bindgen)"

command -v cargo >/dev/null || die "cargo not found (the scx crates need Rust >= 1.91)"
rustv=$(rustc --version | awk '{print $2}')
[ "$(printf '%s\n1.91.0\n' "$rustv" | sort -V | head -1)" = 1.91.0 ] ||
  die "rustc $rustv is older than 1.91, which the scx 1.1 crates need"

# --- the crates -------------------------------------------------------------------------------
mkdir -p "$BIN" "$STAMPS"
# One target directory for all: libbpf-sys, scx_utils and the rest compile once.
export CARGO_TARGET_DIR="$PEERS/target"
export BPF_CLANG LIBCLANG_PATH
for c in "${todo[@]}"; do
  name=${c%@*}
  t0=$(date +%s)
  say "building $c with $BPF_CLANG"
  # --force: a crate cargo already installed at this version but with another clang is rebuilt.
  cargo install --locked --force --root "$PEERS" "$name@=${c#*@}"
  stamp_of "$c" > "$STAMPS/$name"
  say "built $c in $(($(date +%s) - t0)) s"
done

report
