#!/bin/sh
# What the compose file relies on from the official postgres image: on an
# empty PGDATA, a cluster whose `postgres` superuser has POSTGRES_PASSWORD,
# password logins over TCP, and /docker-entrypoint-initdb.d/*.sh and *.sql run
# once (a non-executable .sh is sourced, as the official image does); then the
# server on port 5432 on every address. pg_isready (the healthcheck) is on PATH.
set -eu
: "${PGDATA:?}"
if [ ! -s "$PGDATA/PG_VERSION" ]; then
    pwfile=$(mktemp)
    printf '%s\n' "${POSTGRES_PASSWORD:?POSTGRES_PASSWORD must be set}" >"$pwfile"
    initdb -D "$PGDATA" --username=postgres --pwfile="$pwfile" \
        --auth-local=trust --auth-host=scram-sha-256 >/dev/null
    rm -f "$pwfile"
    echo 'host all all all scram-sha-256' >>"$PGDATA/pg_hba.conf"
    # The init scripts talk to a server on a private socket only, so the
    # healthcheck (default socket) fails until the real server is up.
    initsock=$(mktemp -d)
    pg_ctl -D "$PGDATA" -o "-c listen_addresses='' -k $initsock" -w start >/dev/null
    export PGHOST="$initsock"
    for f in /docker-entrypoint-initdb.d/*; do
        case "$f" in
            *.sh) echo "entrypoint: running $f"; if [ -x "$f" ]; then "$f"; else . "$f"; fi ;;
            *.sql) echo "entrypoint: running $f"; psql -v ON_ERROR_STOP=1 --username=postgres --dbname=postgres -f "$f" ;;
            *) ;;
        esac
    done
    unset PGHOST
    pg_ctl -D "$PGDATA" -m fast -w stop >/dev/null
    rmdir "$initsock"
    echo "entrypoint: database initialised"
fi
exec postgres -D "$PGDATA" -c listen_addresses='*' -c port=5432
