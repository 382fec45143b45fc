#!/usr/bin/env bash
# Installs what ctrace needs on a fresh Debian machine and starts dockerd when none runs.
# Idempotent: does nothing that is already done. Needs root.
set -euo pipefail

if [ "$(id -u)" -ne 0 ]; then
    echo "setup-host: run as root (installs Debian packages, starts dockerd)" >&2
    exit 1
fi

# clang + libelf + zlib + pkg-config build the eBPF skeleton; gcc + libc6-dev build the static
# errno probe; docker.io is the engine; busybox-static, binutils and python3 make the test
# images (no registry here); bpftrace is the tests' independent witness; docker-compose (1.29,
# Debian's) runs the daemon from docker-compose.yml (scripts/compose-up.sh, tests/compose.rs);
# chromium renders `ctrace report` pages headless in tests/report.rs; podman (4.3, Debian's) is
# the second engine, reached through its Docker-compatible API (tests/podman.rs); crun is the
# second OCI runtime (`docker run --runtime crun`, `requirements --runtime crun`);
# protobuf-compiler (protoc) builds containerd's API client (containerd-client, `--containerd`).
need=()
for pkg in clang llvm libelf-dev zlib1g-dev pkg-config gcc libc6-dev docker.io busybox-static \
    binutils python3 bpftrace docker-compose chromium podman crun protobuf-compiler; do
    dpkg -s "$pkg" >/dev/null 2>&1 || need+=("$pkg")
done
if [ ${#need[@]} -gt 0 ]; then
    echo "setup-host: installing ${need[*]}"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

# podman sets default rlimits on every container, which fails where the host cannot raise
# them (this VM kind lacks CAP_SYS_RESOURCE): no defaults, unless the admin chose some.
conf=/etc/containers/containers.conf
if ! grep -Eq '^[[:space:]]*default_ulimits[[:space:]]*=' "$conf" 2>/dev/null; then
    echo "setup-host: podman: default_ulimits = [] in $conf"
    mkdir -p /etc/containers
    if grep -Eq '^[[:space:]]*\[containers\]' "$conf" 2>/dev/null; then
        sed -i '/^[[:space:]]*\[containers\]/a default_ulimits = []' "$conf"
    else
        printf '[containers]\ndefault_ulimits = []\n' >>"$conf"
    fi
fi

# crun refuses a cgroup v1 "hybrid" host whose unified (v2) hierarchy holds a controller
# ("cgroups in hybrid mode not supported"). This VM kind leaves hugetlb there, unmounted in
# v1: give each such controller its v1 hierarchy, as systemd does on hybrid hosts.
unified=/sys/fs/cgroup/unified
if [ -f "$unified/cgroup.controllers" ] && [ -z "$(cat "$unified/cgroup.subtree_control")" ]; then
    for ctrl in $(cat "$unified/cgroup.controllers"); do
        echo "setup-host: cgroup v1 hierarchy for $ctrl (crun needs an empty v2 hierarchy here)"
        mkdir -p "/sys/fs/cgroup/$ctrl"
        mount -t cgroup -o "$ctrl" cgroup "/sys/fs/cgroup/$ctrl"
    done
fi

if ! docker info >/dev/null 2>&1; then
    echo "setup-host: starting dockerd (no bridge, no iptables; containers use --network none)"
    log=/var/log/ctrace-dockerd.log
    nohup dockerd --bridge=none --iptables=false --ip6tables=false \
        --add-runtime crun=/usr/bin/crun >"$log" 2>&1 &
    echo "setup-host: dockerd pid $!"
    for _ in $(seq 1 60); do
        docker info >/dev/null 2>&1 && break
        sleep 0.5
    done
    if ! docker info >/dev/null 2>&1; then
        echo "setup-host: dockerd did not come up; its log:" >&2
        tail -n 30 "$log" >&2
        exit 1
    fi
fi
