#!/usr/bin/env bash
# Load shedding of POST /api/query: 1,000 requests/s for 30 s of a small query (see
# shed.py): share of 503s, p99 of the admitted answers, slowest answer against
# query_queue_wait + query_timeout. SOCLE=path uses that binary instead of building the
# release one; RATE and DURATION (seconds) change the load. The load generator is one
# address holding hundreds of connections (a proxy, in effect), so the server's per-address
# connection cap is raised to the total cap (docs/server.md, Connections); OLD=1 leaves the
# `server:` settings out, for a binary that predates them.
set -euo pipefail
cd "$(dirname "$0")/../.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/socle-target}"
if [ -z "${SOCLE:-}" ]; then
    cargo build --release -p socle-cli >&2
    SOCLE="$CARGO_TARGET_DIR/release/socle"
fi
cargo build --release --quiet --manifest-path bench/server/loadgen/Cargo.toml \
    --target-dir "$CARGO_TARGET_DIR/loadgen" >&2
settings=(--server-yml "max_connections_per_address: 4096")
if [ -n "${OLD:-}" ]; then settings=(); fi
exec python3 bench/server/shed.py --socle "$SOCLE" \
    --loadgen "$CARGO_TARGET_DIR/loadgen/release/socle-loadgen" \
    --rate "${RATE:-1000}" --seconds "${DURATION:-30}" "${settings[@]}" "$@"
