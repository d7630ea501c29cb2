#!/usr/bin/env bash
# Installs and starts what socle's tests need, on a fresh Debian machine or a developer's:
#   - PostgreSQL (a private cluster on 127.0.0.1:55432, user `socle`, trust auth)
#   - MariaDB (a private server on 127.0.0.1:53306 with its datadir, socket, pid file and
#     error log under ${TMPDIR:-/tmp}/socle-test-mariadb; user `socle` password `socle`
#     from any host, with all privileges, and a database `socle_test`)
#   - Chromium and chromium-driver (headless: the `socle docs` site and the web UI)
#   - Python packages: deltalake + pyarrow (reading socle tables from another tool),
#     moto[server] (an S3-compatible server on loopback), dbt-core + dbt-duckdb 1.10 (the
#     reference that socle's dbt runs are compared with), aiosmtpd (SMTP server for alerts)
# Source it (`. scripts/test-services.sh`) to get SOCLE_TEST_POSTGRES_URL and
# SOCLE_TEST_MYSQL_URL exported. Ports and directories can be moved with SOCLE_PG_PORT,
# SOCLE_PG_DATA, SOCLE_MYSQL_PORT and SOCLE_MYSQL_DIR.
# Packages come from Debian's repositories and are installed only when missing (as root, or
# through sudo). The servers are started directly, in the background, never through systemd
# or `service` (CI containers have no init system): as root they run as the `postgres` and
# `mysql` users. A server that already answers on its port is left alone; one that does not
# is started from a fresh data directory (test data is thrown away).
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

# --- MariaDB --------------------------------------------------------------------------
SOCLE_MYSQL_PORT="${SOCLE_MYSQL_PORT:-53306}"
SOCLE_MYSQL_DIR="${SOCLE_MYSQL_DIR:-${TMPDIR:-/tmp}/socle-test-mariadb}"
# The first of the given programs found on PATH or in the sbin directories (mariadbd lives in
# /usr/sbin, which a developer's PATH may lack); nothing and a failure if there is none.
mysql_bin() {
    local name
    for name in "$@"; do
        PATH="$PATH:/usr/local/sbin:/usr/sbin:/sbin" type -P "$name" && return 0
    done
    return 1
}
mysql_find_bins() {
    MYSQLD="$(mysql_bin mariadbd mysqld || true)"
    MYSQL_INSTALL_DB="$(mysql_bin mariadb-install-db mysql_install_db || true)"
    MYSQL_CLIENT="$(mysql_bin mariadb mysql || true)"
    MYSQL_ADMIN="$(mysql_bin mariadb-admin mysqladmin || true)"
    [ -n "$MYSQLD" ] && [ -n "$MYSQL_INSTALL_DB" ] && [ -n "$MYSQL_CLIENT" ] && [ -n "$MYSQL_ADMIN" ]
}
# Succeeds when a server answers on the port, even one that refuses these credentials.
mysql_answers() {
    "$MYSQL_ADMIN" --no-defaults --protocol=TCP -h 127.0.0.1 -P "$SOCLE_MYSQL_PORT" \
        -u socle -psocle --connect-timeout=2 ping >/dev/null 2>&1
}
# Prints the message and the tail of the given logs (by default the server's), then fails.
mysql_fail() {
    echo "error: MariaDB: $1" >&2
    shift
    [ "$#" -gt 0 ] || set -- "$SOCLE_MYSQL_DIR/mariadbd.out" "$SOCLE_MYSQL_DIR/error.log"
    local log
    for log in "$@"; do
        if [ -s "$log" ]; then
            echo "--- last lines of $log:" >&2
            tail -n 30 "$log" >&2
        fi
    done
    return 1
}
mysql_start() {
    local dir="$SOCLE_MYSQL_DIR" pid="" i err
    # A server of ours left running on this directory (on another port, or hung): stop it
    # before its files are removed. Only a mariadbd/mysqld process is signalled.
    if [ -f "$dir/mariadbd.pid" ]; then
        pid="$(cat "$dir/mariadbd.pid" 2>/dev/null || true)"
        case "$pid" in
            '' | *[!0-9]*) ;;
            *)
                if grep -qE '^(mariadbd|mysqld)$' "/proc/$pid/comm" 2>/dev/null; then
                    kill "$pid" 2>/dev/null || true
                    for i in $(seq 100); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
                    kill -9 "$pid" 2>/dev/null || true
                fi
                ;;
        esac
    fi
    rm -rf "$dir"
    mkdir -p "$dir"
    local user_opt=()
    if [ "$(id -u)" = 0 ]; then
        chown mysql: "$dir"
        user_opt=(--user=mysql)
    fi
    # Only this file is read (--defaults-file), never /etc/mysql or ~/.my.cnf. Durability is
    # traded for speed as with PostgreSQL's fsync=off; no native AIO, which containers may
    # not allow.
    cat >"$dir/my.cnf" <<EOF
[mysqld]
datadir = $dir/data
socket = $dir/mariadbd.sock
pid-file = $dir/mariadbd.pid
log-error = $dir/error.log
port = $SOCLE_MYSQL_PORT
bind-address = 127.0.0.1
skip-name-resolve
character-set-server = utf8mb4
collation-server = utf8mb4_general_ci
max_connections = 200
innodb_flush_log_at_trx_commit = 2
innodb_doublewrite = 0
innodb_use_native_aio = 0

[client]
socket = $dir/mariadbd.sock
port = $SOCLE_MYSQL_PORT
EOF
    # Run inside the bootstrap that creates the system tables: the test user and database.
    # No test database and no anonymous users (--skip-test-db); root stays reachable only
    # by the system's root through the Unix socket.
    cat >"$dir/init.sql" <<'EOF'
FLUSH PRIVILEGES;
CREATE USER IF NOT EXISTS 'socle'@'%' IDENTIFIED BY 'socle';
CREATE USER IF NOT EXISTS 'socle'@'localhost' IDENTIFIED BY 'socle';
GRANT ALL PRIVILEGES ON *.* TO 'socle'@'%';
GRANT ALL PRIVILEGES ON *.* TO 'socle'@'localhost';
CREATE DATABASE IF NOT EXISTS socle_test;
EOF
    if ! "$MYSQL_INSTALL_DB" --defaults-file="$dir/my.cnf" "${user_opt[@]}" \
        --datadir="$dir/data" --skip-test-db --skip-name-resolve \
        --extra-file="$dir/init.sql" >"$dir/install.log" 2>&1; then
        mysql_fail "$MYSQL_INSTALL_DB could not create $dir/data" "$dir/install.log" "$dir/error.log"
        return 1
    fi
    # In its own session (setsid), so that neither the end of the calling script nor a
    # Ctrl-C in a developer's terminal stops it; the shell writes the server's pid (exec
    # keeps it) so that an early death is seen at once.
    setsid -f sh -c 'echo $$ >"$0"; exec "$@"' "$dir/launch.pid" \
        "$MYSQLD" --defaults-file="$dir/my.cnf" "${user_opt[@]}" \
        </dev/null >"$dir/mariadbd.out" 2>&1
    pid=""
    for i in $(seq 300); do # at most 60 s
        [ -n "$pid" ] || pid="$(cat "$dir/launch.pid" 2>/dev/null || true)"
        if mysql_answers; then
            if ! err="$("$MYSQL_CLIENT" --no-defaults --protocol=TCP -h 127.0.0.1 -P "$SOCLE_MYSQL_PORT" \
                -u socle -psocle socle_test -e 'SELECT 1' 2>&1 >/dev/null)"; then
                mysql_fail "the server on 127.0.0.1:$SOCLE_MYSQL_PORT refuses socle/socle on socle_test: $err"
                return 1
            fi
            echo "started MariaDB on 127.0.0.1:$SOCLE_MYSQL_PORT" >&2
            return 0
        fi
        if [ -n "$pid" ] && ! kill -0 "$pid" 2>/dev/null; then
            mysql_fail "$MYSQLD exited while starting"
            return 1
        fi
        sleep 0.2
    done
    mysql_fail "$MYSQLD does not answer on 127.0.0.1:$SOCLE_MYSQL_PORT after 60 s"
    return 1
}
if ! mysql_find_bins; then
    echo "installing MariaDB from Debian's packages..." >&2
    apt_install mariadb-server mariadb-client
    mysql_find_bins || mysql_fail "mariadbd, mariadb-install-db, mariadb or mariadb-admin still missing after installing mariadb-server and mariadb-client"
fi
if ! mysql_answers; then
    mysql_start
fi
export SOCLE_TEST_MYSQL_URL="mysql://socle:socle@127.0.0.1:${SOCLE_MYSQL_PORT}/socle_test"

# --- Chromium and its WebDriver (the docs site and the web UI in tests) ---------------
if ! command -v chromium >/dev/null || ! command -v chromedriver >/dev/null; then
    echo "installing Chromium and chromium-driver from Debian's packages..." >&2
    apt_install chromium chromium-driver
fi

# --- openssl (self-signed certificates for the HTTPS test) ------------------------------
if ! command -v openssl >/dev/null; then
    apt_install openssl
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
