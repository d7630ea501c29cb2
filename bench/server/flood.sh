#!/usr/bin/env bash
# Connection flood (issue 16): attackers on 127.0.0.1 hold 20,000 idle or half-sent
# connections to `socle serve` while a client on 127.0.0.2 calls /healthz and, signed in,
# /api/me and /api/project; prints the client's p50/p99/max and failures. See flood.py.
# SOCLE=path/to/socle measures that binary (no build); otherwise the release build is
# built and used. SOCKETS, PROCS (attacker processes) and DURATION (s) change the flood.
set -euo pipefail
cd "$(dirname "$0")/../.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/socle-target}"
if [ -z "${SOCLE:-}" ]; then
    cargo build --release -p socle-cli >&2
    SOCLE="$CARGO_TARGET_DIR/release/socle"
fi
exec python3 bench/server/flood.py --socle "$SOCLE" --sockets "${SOCKETS:-20000}" \
    --procs "${PROCS:-2}" --seconds "${DURATION:-60}"
