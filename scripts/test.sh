#!/usr/bin/env bash
# The test command of the README: starts the services the tests need, then runs every test
# of the workspace with cargo-nextest (falls back to cargo test when nextest is missing).
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/socle-target}"
. scripts/test-services.sh
if cargo nextest --version >/dev/null 2>&1; then
    cargo nextest run --workspace --no-fail-fast "$@"
else
    cargo test --workspace --no-fail-fast "$@"
fi
