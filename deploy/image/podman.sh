#!/usr/bin/env bash
# podman on scx-slo's private image store: `deploy/image/podman.sh ARGS...` runs `podman ARGS...`
# with settings that work on the project's machines, without touching the host's own
# /etc/containers configuration or image store:
#   - images under ${SCX_SLO_CACHE_ROOT:-/var/cache/scx-slo}/image/storage (overlay; vfs where
#     that folder is itself on overlayfs, or SCX_SLO_IMAGE_STORAGE_DRIVER=vfs|overlay);
#     per-boot state under /run/scx-slo-image/, cleared when the boot id changes, since /run is not
#     a tmpfs on every machine and podman would otherwise trust state from before a reboot;
#   - runc and the cgroupfs manager: cgroups are mounted hybrid (v1 controllers beside
#     /sys/fs/cgroup/unified), which crun refuses ("cgroups in hybrid mode not supported") and
#     runc handles; no systemd is running, so no systemd cgroup manager or journald events;
#   - no network: every container gets an empty network namespace (loopback only) unless a
#     command asks for another, and no CNI plugin is reachable, so podman can never create its
#     default bridge (10.88.0.0/16) or its iptables rules on the host;
#   - ulimits no higher than the ones podman itself runs with: podman sets nofile 1048576 and
#     nproc 32768 in a container by default, and a runtime without CAP_SYS_RESOURCE (a sandbox)
#     cannot raise a limit above what it inherited ("setrlimit RLIMIT_NOFILE: Operation not
#     permitted"); podman lowers its own nproc to 32768.
set -euo pipefail

CACHE_ROOT=${SCX_SLO_CACHE_ROOT:-/var/cache/scx-slo}
STORE=$CACHE_ROOT/image/storage
# Per-boot state belongs to one store: a store elsewhere (another cache root) gets its own.
RUN_DIR=/run/scx-slo-image/$(printf '%s' "$STORE" | sha256sum | cut -c1-12)

command -v podman >/dev/null || {
  echo "podman.sh: podman is not installed (deploy/image/build.sh installs it)" >&2
  exit 1
}

mkdir -p "$STORE" "$RUN_DIR"
boot_id=$(cat /proc/sys/kernel/random/boot_id)
if [ "$(cat "$RUN_DIR/boot_id" 2>/dev/null)" != "$boot_id" ]; then
  # Only this boot's container state lives here; images stay in $STORE.
  find "$RUN_DIR" -mindepth 1 -maxdepth 1 -exec rm -rf {} +
  echo "$boot_id" >"$RUN_DIR/boot_id"
fi
mkdir -p "$RUN_DIR/runroot" "$RUN_DIR/tmp" "$RUN_DIR/cni-config" "$RUN_DIR/no-cni-plugins"

driver=${SCX_SLO_IMAGE_STORAGE_DRIVER:-}
if [ -z "$driver" ]; then
  if [ "$(stat -f -c %T "$STORE")" = overlayfs ]; then driver=vfs; else driver=overlay; fi
fi

cap() { # cap LIMIT MAX: the smaller of a `ulimit -H` value ("unlimited" included) and MAX
  if [ "$1" = unlimited ] || [ "$1" -gt "$2" ]; then echo "$2"; else echo "$1"; fi
}
nofile=$(cap "$(ulimit -Hn)" 1048576)
nproc=$(cap "$(ulimit -Hu)" 32768)

# One file per setting set, written once and renamed into place (concurrent callers agree).
conf_dir=$RUN_DIR/conf
mkdir -p "$conf_dir"
containers_conf=$conf_dir/containers-$nofile-$nproc.conf
storage_conf=$conf_dir/storage-$driver.conf
if [ ! -f "$containers_conf" ]; then
  cat >"$containers_conf.$$" <<EOF
[containers]
netns = "none"
default_ulimits = ["nofile=$nofile:$nofile", "nproc=$nproc:$nproc"]

[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
tmp_dir = "$RUN_DIR/tmp"

[network]
network_backend = "cni"
network_config_dir = "$RUN_DIR/cni-config"
cni_plugin_dirs = ["$RUN_DIR/no-cni-plugins"]
EOF
  mv "$containers_conf.$$" "$containers_conf"
fi
if [ ! -f "$storage_conf" ]; then
  cat >"$storage_conf.$$" <<EOF
[storage]
driver = "$driver"
graphroot = "$STORE"
runroot = "$RUN_DIR/runroot"
EOF
  mv "$storage_conf.$$" "$storage_conf"
fi

export CONTAINERS_CONF=$containers_conf CONTAINERS_STORAGE_CONF=$storage_conf
exec podman "$@"
