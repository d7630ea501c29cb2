#!/usr/bin/env bash
# Extraction benchmark: `socle extract` vs a dlt pipeline (PyPI dlt[duckdb]) vs DuckDB
# read_csv + INSERT, loading the same generated CSV (10M rows, ~1 GB) into a table merged on
# its key; same machine, same run. ROWS=200000 for a small run; SKIP_BUILD=1 to use the
# socle binary already in $CARGO_TARGET_DIR; --tools dlt,duckdb to leave socle out.
set -euo pipefail
cd "$(dirname "$0")/../.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/socle-target}"
if [ "${SKIP_BUILD:-0}" != 1 ]; then
    cargo build --release -p socle-cli >&2
fi
python3 -c "import duckdb, dlt" 2>/dev/null || python3 -m pip install --quiet --root-user-action=ignore \
    "duckdb>=1.4" "dlt[duckdb]==1.*" >&2
exec python3 bench/extract/bench.py --socle "$CARGO_TARGET_DIR/release/socle" "$@"
