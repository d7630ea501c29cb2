#!/usr/bin/env bash
# Transformation benchmark: `socle build` vs `dbt build` (dbt-core + dbt-duckdb 1.10) on the
# same generated projects, same machine, same run.
set -euo pipefail
cd "$(dirname "$0")/../.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/socle-target}"
cargo build --release -p socle-cli >&2
python3 -c "import duckdb, dbt.adapters.duckdb" 2>/dev/null || python3 -m pip install --quiet --root-user-action=ignore \
    "duckdb>=1.4" "dbt-core==1.10.*" "dbt-duckdb==1.10.*" >&2
exec python3 bench/transform/bench.py --socle "$CARGO_TARGET_DIR/release/socle" "$@"
