#!/usr/bin/env bash
# Installs and starts what socle's tests need, on a fresh Debian machine or a developer's:
#   - PostgreSQL (a private cluster on 127.0.0.1:55432, user `socle`, trust auth)
#   - Chromium (headless, to check that the `socle docs` site renders)
#   - Python packages: deltalake + pyarrow (reading socle tables from another tool),
#     moto[server] (an S3-compatible server on loopback), dbt-core + dbt-duckdb 1.10 (the
#     reference that socle's dbt runs are compared with), aiosmtpd (SMTP server for alerts)
# Source it (`. scripts/test-services.sh`) to get SOCLE_TEST_POSTGRES_URL exported.
# Idempotent: a second run finds everything in place and returns in a second.
set -euo pipefail

SOCLE_PG_PORT="${SOCLE_PG_PORT:-55432}"
SOCLE_PG_DATA="${SOCLE_PG_DATA:-${TMPDIR:-/tmp}/socle-test-pg}"

as_root() {
    if [ "$(id -u)" = 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else
        echo "need root to run: $*" >&2; return 1; fi
}

apt_updated=0
apt_install() {
    if [ "$apt_updated" = 0 ]; then
        as_root apt-get update -qq
        apt_updated=1
    fi
    DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

# --- PostgreSQL -----------------------------------------------------------------------
pg_bin() { ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1; }
if [ -z "$(pg_bin)" ]; then
    echo "installing PostgreSQL from Debian's packages..." >&2
    apt_install postgresql
fi
PGBIN="$(pg_bin)"
if ! "$PGBIN/pg_isready" -q -h 127.0.0.1 -p "$SOCLE_PG_PORT"; then
    run_pg() {
        if [ "$(id -u)" = 0 ]; then su postgres -s /bin/sh -c "$*"; else sh -c "$*"; fi
    }
    rm -rf "$SOCLE_PG_DATA"
    mkdir -p "$SOCLE_PG_DATA"
    if [ "$(id -u)" = 0 ]; then chown postgres "$SOCLE_PG_DATA"; fi
    run_pg "'$PGBIN/initdb' -D '$SOCLE_PG_DATA' -U socle --auth=trust -E UTF8 --no-locale" >/dev/null
    run_pg "'$PGBIN/pg_ctl' -D '$SOCLE_PG_DATA' -l '$SOCLE_PG_DATA/server.log' -w -o \"-p $SOCLE_PG_PORT -k '$SOCLE_PG_DATA' -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200\" start" >/dev/null
    echo "started PostgreSQL on 127.0.0.1:$SOCLE_PG_PORT" >&2
fi
export SOCLE_TEST_POSTGRES_URL="postgres://socle@127.0.0.1:$SOCLE_PG_PORT/postgres"

# --- Chromium (renders the docs site in tests) ----------------------------------------
if ! command -v chromium >/dev/null; then
    echo "installing Chromium from Debian's packages..." >&2
    apt_install chromium
fi

# --- Python packages --------------------------------------------------------------------
if ! command -v python3 >/dev/null; then
    apt_install python3 python3-pip
fi
if ! python3 -c "import deltalake, pyarrow, moto.server, flask_cors" 2>/dev/null; then
    echo "installing Python test packages (deltalake, pyarrow, moto[server])..." >&2
    python3 -m pip install --quiet --disable-pip-version-check --root-user-action=ignore \
        "deltalake==1.6.6" "pyarrow>=15" "moto[server]>=5.0" >&2
fi
if ! python3 -c "import aiosmtpd" 2>/dev/null; then
    echo "installing aiosmtpd (an SMTP server for the alert tests)..." >&2
    python3 -m pip install --quiet --disable-pip-version-check --root-user-action=ignore "aiosmtpd>=1.4" >&2
fi
if ! command -v dbt >/dev/null || ! python3 -c "import dbt.adapters.duckdb" 2>/dev/null; then
    echo "installing dbt-core and dbt-duckdb 1.10 (reference for dbt compatibility tests)..." >&2
    python3 -m pip install --quiet --disable-pip-version-check --root-user-action=ignore \
        "dbt-core==1.10.*" "dbt-duckdb==1.10.*" >&2
fi
