#!/usr/bin/env bash
# Start or stop a throwaway PostgreSQL 15 cluster on loopback (tests, CI, benchmarks).
#
#   url=$(scripts/pg_cluster.sh start DIR)   # initdb in DIR (created if missing), start on
#                                            # 127.0.0.1 at a free port, create database "mug",
#                                            # print a postgresql+psycopg:// URL on stdout
#   scripts/pg_cluster.sh stop DIR           # stop the server and remove DIR
#
# The cluster trusts loopback connections and runs with fsync off: it holds nothing worth
# keeping and is deleted on stop. PostgreSQL refuses to run as root, so under root the
# server runs as the "postgres" user (or "nobody" when there is none).
set -euo pipefail

PG_BIN=${PG_BIN:-/usr/lib/postgresql/15/bin}
cmd=${1:-}
dir=${2:-}
if [[ -z "$cmd" || -z "$dir" ]]; then
    echo "usage: $0 start|stop DIR" >&2
    exit 2
fi

as_owner() {
    if [[ $(id -u) -eq 0 ]]; then
        runuser -u "$owner" -- "$@"
    else
        "$@"
    fi
}

if [[ $(id -u) -eq 0 ]]; then
    if id postgres >/dev/null 2>&1; then owner=postgres; else owner=nobody; fi
else
    owner=$(id -un)
fi

case "$cmd" in
start)
    if [[ ! -x "$PG_BIN/initdb" ]]; then
        echo "$0: no PostgreSQL server binaries in $PG_BIN (set PG_BIN)" >&2
        exit 3
    fi
    mkdir -p "$dir"
    dir=$(cd "$dir" && pwd)
    [[ $(id -u) -eq 0 ]] && chown "$owner" "$dir"
    as_owner "$PG_BIN/initdb" -D "$dir/data" -U postgres -A trust -E UTF8 --no-locale >"$dir/initdb.log" 2>&1 \
        || { cat "$dir/initdb.log" >&2; exit 1; }
    # A port that was free a moment ago can be taken before the server binds it: retry.
    for _ in 1 2 3 4 5; do
        port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
        if as_owner "$PG_BIN/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 start \
            -o "-c listen_addresses=127.0.0.1 -p $port -k $dir -c fsync=off -c full_page_writes=off -c max_connections=200" \
            >/dev/null; then
            echo "$port" >"$dir/port"
            as_owner "$PG_BIN/createdb" -h 127.0.0.1 -p "$port" -U postgres mug
            echo "postgresql+psycopg://postgres@127.0.0.1:$port/mug"
            exit 0
        fi
    done
    cat "$dir/server.log" >&2
    exit 1
    ;;
stop)
    if [[ -d "$dir/data" ]]; then
        as_owner "$PG_BIN/pg_ctl" -D "$dir/data" -m immediate -w stop >/dev/null 2>&1 || true
    fi
    rm -rf "$dir"
    ;;
*)
    echo "usage: $0 start|stop DIR" >&2
    exit 2
    ;;
esac
