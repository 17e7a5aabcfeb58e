#!/usr/bin/env bash
# Start a throw-away PostgreSQL server on 127.0.0.1 for the tests and print its URL.
#
#   scripts/start_postgres.sh [--install] DATA_DIR [PORT]   -> prints postgresql://...
#   scripts/stop_postgres.sh DATA_DIR
#
# initdb refuses to run as root, so as root the cluster belongs to the `postgres` user (or
# `nobody`). Authentication is `trust` on 127.0.0.1 only; nothing listens elsewhere.
# --install: apt-get install postgresql first when the binaries are missing.
# Use the URL with FCANET_TEST_POSTGRES_URL=... python -m pytest tests/test_corrections_postgres.py
case "${1:-}" in -h|--help) sed -n "2,10p" "$0" | sed "s/^# \{0,1\}//"; exit 0;; esac
set -euo pipefail

if [ "${1:-}" = "--install" ]; then
    shift
    if ! command -v initdb >/dev/null 2>&1 && ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
    fi
fi
DATA_DIR="${1:?usage: start_postgres.sh [--install] DATA_DIR [PORT]}"
PORT="${2:-54329}"

BIN="$(dirname "$(readlink -f "$(command -v initdb 2>/dev/null || ls /usr/lib/postgresql/*/bin/initdb 2>/dev/null | sort -V | tail -1)")")"
if [ ! -x "$BIN/initdb" ]; then
    echo "PostgreSQL binaries not found (apt-get install postgresql, or pass --install)" >&2
    exit 3
fi

RUN=()
if [ "$(id -u)" = "0" ]; then
    PGUSER_OS="$(getent passwd postgres >/dev/null && echo postgres || echo nobody)"
    RUN=(runuser -u "$PGUSER_OS" --)
fi

mkdir -p "$DATA_DIR"
[ "${#RUN[@]}" -gt 0 ] && chown "$PGUSER_OS" "$DATA_DIR"
if [ ! -f "$DATA_DIR/pgdata/PG_VERSION" ]; then
    "${RUN[@]}" "$BIN/initdb" -D "$DATA_DIR/pgdata" -U fcanet --auth=trust -E UTF8 >"$DATA_DIR/initdb.log" 2>&1
fi
"${RUN[@]}" "$BIN/pg_ctl" -D "$DATA_DIR/pgdata" -l "$DATA_DIR/server.log" -w -t 60 \
    -o "-h 127.0.0.1 -p $PORT -k $DATA_DIR -c fsync=on" start >/dev/null
"${RUN[@]}" "$BIN/psql" -h 127.0.0.1 -p "$PORT" -U fcanet -d postgres -qtAc \
    "SELECT 1 FROM pg_database WHERE datname = 'fcanet_test'" | grep -q 1 || \
    "${RUN[@]}" "$BIN/createdb" -h 127.0.0.1 -p "$PORT" -U fcanet fcanet_test
echo "postgresql://fcanet@127.0.0.1:$PORT/fcanet_test"
