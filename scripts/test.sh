#!/usr/bin/env bash
# The test command of the README: starts the services the tests need, then runs every test
# of the workspace with cargo-nextest (falls back to cargo test when nextest is missing).
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/socle-target}"
. scripts/test-services.sh
# The crash tests drive a binary built with failpoints (SOCLE_FAILPOINT aborts at named
# points); then one test checks that a build without them ignores the variable.
if cargo nextest --version >/dev/null 2>&1; then
    cargo nextest run --workspace --features socle-cli/failpoints --no-fail-fast "$@"
    cargo nextest run -p socle-core --no-fail-fast -E 'test(/failpoint/)'
else
    cargo test --workspace --features socle-cli/failpoints --no-fail-fast "$@"
    cargo test -p socle-core --no-fail-fast failpoint
fi
