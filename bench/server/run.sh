#!/usr/bin/env bash
# Server benchmark: idle memory of `socle serve` with a 200-table catalog beside Airflow 3's
# api-server + scheduler, server time of each UI page, and a loopback load test (1,000
# requests/s for 30 s on the catalog and query endpoints, p99 reported). See bench.py.
# SKIP_BUILD=1 reuses the built binary; RATE and DURATION (seconds) change the load.
set -euo pipefail
cd "$(dirname "$0")/../.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/socle-target}"
if [ "${SKIP_BUILD:-0}" != 1 ]; then
    cargo build --release -p socle-cli >&2
fi
# The load generator is its own small crate (hyper), built once.
cargo build --release --quiet --manifest-path bench/server/loadgen/Cargo.toml \
    --target-dir "$CARGO_TARGET_DIR/loadgen" >&2
VENV="${AIRFLOW_VENV:-$HOME/.cache/airflow-venv}"
if [ ! -x "$VENV/bin/airflow" ]; then
    echo "installing apache-airflow 3 into $VENV ..." >&2
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install --quiet "apache-airflow==3.*" >&2
fi
exec python3 bench/server/bench.py --socle "$CARGO_TARGET_DIR/release/socle" \
    --loadgen "$CARGO_TARGET_DIR/loadgen/release/socle-loadgen" --airflow "$VENV/bin/airflow" \
    --rate "${RATE:-1000}" --seconds "${DURATION:-30}"
