#!/usr/bin/env bash
# Stop the server scripts/start_postgres.sh started in DATA_DIR.
case "${1:-}" in -h|--help) sed -n "2,2p" "$0" | sed "s/^# \{0,1\}//"; exit 0;; esac
set -euo pipefail
DATA_DIR="${1:?usage: stop_postgres.sh DATA_DIR}"
BIN="$(dirname "$(readlink -f "$(command -v pg_ctl 2>/dev/null || ls /usr/lib/postgresql/*/bin/pg_ctl 2>/dev/null | sort -V | tail -1)")")"
RUN=()
if [ "$(id -u)" = "0" ]; then
    RUN=(runuser -u "$(stat -c %U "$DATA_DIR/pgdata")" --)
fi
"${RUN[@]}" "$BIN/pg_ctl" -D "$DATA_DIR/pgdata" -m fast -w stop >/dev/null
