#!/usr/bin/env bash
# Runs the tracer daemon with docker-compose on a machine without a registry: makes the
# daemon's image from the host-built binary, then `docker-compose up -d --no-build` with the
# repository's docker-compose.yml, and waits until the daemon traces. Needs root.
#
# The image is a root file system holding the binary plus the shared libraries and the
# loader `ldd` names for it, `tar`red into `docker import` (as the tests make theirs). That
# needs nothing but the binary this host already builds: no registry, no network, no base
# image, no second toolchain. (A static binary in a scratch image would also need musl or
# static glibc plus static libelf/zlib from libbpf-sys's vendored features: a second,
# slower build, for no gain here.) The BPF object and the errno probe are embedded in the
# binary; the daemon imports the probe's image itself through the Docker socket.
#
# Environment (all optional):
#   CTRACE_BIN       the binary to put in the image; default target/release/ctrace, built
#                    here first (`cargo build --release --locked`, a no-op when up to date)
#   CTRACE_IMAGE     the image's tag (default ctrace:local, as docker-compose.yml)
#   CTRACE_DATA_DIR  host directory for the store and Tracefiles (default ./data)
#   COMPOSE_PROJECT_NAME  as for docker-compose (default: this directory's name)
# Arguments go to `docker-compose up -d --no-build`. Stop with `docker-compose down`.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/setup-host.sh

bin=${CTRACE_BIN:-}
if [ -z "$bin" ]; then
    cargo build --release --locked
    bin=target/release/ctrace
fi
[ -x "$bin" ] || { echo "compose-up: $bin is not an executable" >&2; exit 1; }
image=${CTRACE_IMAGE:-ctrace:local}
export CTRACE_IMAGE=$image

# The same binary makes the same image: skip the import when the tag already holds it.
sum=$(sha256sum "$bin" | cut -d' ' -f1)
have=$(docker image inspect --format '{{index .Config.Labels "ctrace.binary-sha256"}}' \
    "$image" 2>/dev/null || true)
if [ "$have" != "$sum" ]; then
    root=$(mktemp -d)
    trap 'rm -rf "$root"' EXIT
    install -D -m 0755 "$bin" "$root/usr/local/bin/ctrace"
    # "libc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x...)", "/lib64/ld-linux-x86-64.so.2
    # (0x...)": every absolute path; `cp -L` stores the file a symlink names under the link's
    # path. A static binary has none (ldd then fails, which is fine).
    libs=$(ldd "$bin" 2>/dev/null | grep -o '/[^ ]*' || true)
    for lib in $libs; do
        mkdir -p "$root$(dirname "$lib")"
        cp -L "$lib" "$root$lib"
    done
    mkdir -p "$root"/{proc,sys,dev,etc,var/lib/ctrace,var/run}
    install -d -m 1777 "$root/tmp"
    old=$(docker image inspect --format '{{.Id}}' "$image" 2>/dev/null || true)
    tar -C "$root" -c . | docker import \
        --change 'ENTRYPOINT ["/usr/local/bin/ctrace"]' \
        --change 'CMD ["trace"]' \
        --change "LABEL ctrace.binary-sha256=$sum" \
        - "$image" >/dev/null
    echo "compose-up: imported $image from $bin ($(du -sh "$root" | cut -f1))"
    # The previous import, now untagged; kept if a container still uses it.
    if [ -n "$old" ]; then
        docker image rm "$old" >/dev/null 2>&1 || true
    fi
fi

docker-compose up -d --no-build "$@"

# Ready: the daemon has its BPF programs loaded and Docker's inventory.
id=$(docker-compose ps -q ctrace)
for _ in $(seq 1 120); do
    if docker logs "$id" 2>&1 | grep -q 'waiting for Docker events'; then
        docker logs "$id" 2>&1 | tail -n 3
        exit 0
    fi
    if [ "$(docker inspect --format '{{.State.Running}}' "$id")" != true ]; then
        break
    fi
    sleep 0.5
done
echo "compose-up: the daemon is not tracing; its log:" >&2
docker logs "$id" 2>&1 | tail -n 30 >&2
exit 1
