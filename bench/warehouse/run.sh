#!/usr/bin/env bash
# Warehouse benchmark: socle sql vs DuckDB on the same generated data, same machine, same run.
set -euo pipefail
cd "$(dirname "$0")/../.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/socle-target}"
cargo build --release -p socle-cli >&2
python3 -c "import duckdb" 2>/dev/null || python3 -m pip install --quiet --root-user-action=ignore "duckdb>=1.4" >&2
exec python3 bench/warehouse/bench.py --socle "$CARGO_TARGET_DIR/release/socle" "$@"
