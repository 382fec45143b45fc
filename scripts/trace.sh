#!/usr/bin/env bash
# Run the tracer: set up the host, build, start `ctrace trace` (arguments are passed on).
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/setup-host.sh
cargo build --release --locked
exec target/release/ctrace trace "$@"
