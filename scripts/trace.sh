#!/usr/bin/env bash
# Run the tracer: set up the host, build, start `ctrace trace` (arguments are passed on).
# No paths are passed: the daemon uses its defaults (store /var/lib/ctrace/ctrace.db,
# Tracefiles in /var/lib/ctrace), the same whichever directory this is started from and the
# same the other commands read; `--db`/`--data` or CTRACE_DB/CTRACE_DATA change them.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/setup-host.sh
cargo build --release --locked
exec target/release/ctrace trace "$@"
