#!/usr/bin/env bash
# The test command: set up the host, then formatting, lints and every test, the root and
# Docker ones included (with CI set they fail, never skip, when the environment is missing).
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/setup-host.sh
cargo fmt --check
cargo clippy --all-targets --locked -- -D warnings
# Root/Docker tests serialize themselves (every daemon sees every labelled container).
log=$(mktemp)
trap 'rm -f "$log"' EXIT
set +e
cargo test --locked 2>&1 | tee "$log"
status=${PIPESTATUS[0]}
set -e
# One closing line for all the test binaries together.
awk '/^test result:/ { for (i = 2; i <= NF; i++) { if ($i ~ /^passed;/) p += $(i-1); if ($i ~ /^failed;/) f += $(i-1) } }
     END { printf "total: %d passed, %d failed\n", p, f }' "$log"
exit "$status"
