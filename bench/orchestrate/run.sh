#!/usr/bin/env bash
# Orchestration benchmark: `socle run` vs `airflow dags test` (Airflow 3, in its own virtual
# environment so that it does not disturb dbt's dependencies) on no-op command tasks.
set -euo pipefail
cd "$(dirname "$0")/../.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/socle-target}"
cargo build --release -p socle-cli >&2
VENV="${AIRFLOW_VENV:-$HOME/.cache/airflow-venv}"
if [ ! -x "$VENV/bin/airflow" ]; then
    echo "installing apache-airflow 3 into $VENV ..." >&2
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install --quiet "apache-airflow==3.*" >&2
fi
exec python3 bench/orchestrate/bench.py --socle "$CARGO_TARGET_DIR/release/socle" --airflow "$VENV/bin/airflow" "$@"
