#!/usr/bin/env bash
# ML benchmark: `socle ml` vs the Python library a user would otherwise pick (mlxtend,
# Prophet, scikit-learn, implicit), on the same data in the same run. The peers live in their
# own virtual environment so that they do not disturb the other benchmarks' packages.
#
#   bench/ml/run.sh                       # every comparison
#   bench/ml/run.sh --only rules,forecast # some of them
#   SOCLE=/path/to/socle bench/ml/run.sh  # a binary already built (no cargo build)
set -euo pipefail
cd "$(dirname "$0")/../.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/socle-target}"
if [ -z "${SOCLE:-}" ]; then
    cargo build --release -p socle-cli >&2
    SOCLE="$CARGO_TARGET_DIR/release/socle"
fi
VENV="${BENCH_VENV:-$HOME/.cache/socle-bench-ml-venv}"
if ! "$VENV/bin/python" -c "import prophet, mlxtend, sklearn, implicit, pandas, numpy" 2>/dev/null; then
    echo "installing the Python peers into $VENV ..." >&2
    python3 -m venv "$VENV"
    "$VENV/bin/pip" install --quiet --upgrade pip >&2
    "$VENV/bin/pip" install --quiet \
        "prophet>=1.1,<2" "mlxtend>=0.25,<0.26" "scikit-learn>=1.5,<2" "implicit>=0.7,<0.8" \
        "pandas>=2,<3" "numpy>=1.26,<3" >&2
fi
exec "$VENV/bin/python" bench/ml/bench.py --socle "$SOCLE" "$@"
