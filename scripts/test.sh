#!/usr/bin/env bash
# The test command: set up the host, then formatting, lints and every test, the root and
# Docker ones included (with CI set they fail, never skip, when the environment is missing).
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/setup-host.sh
cargo fmt --check
cargo clippy --all-targets --locked -- -D warnings
# Root/Docker tests serialize themselves (every daemon sees every labelled container).
cargo test --locked
