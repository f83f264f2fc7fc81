#!/bin/sh
# Initialise PGDATA on first start (superuser password from POSTGRES_PASSWORD, scram on 127.0.0.1,
# trust on the container's unix socket for `docker exec postgres_db pg_dump`), then run postgres
# in the foreground as the postgres user, listening on 127.0.0.1:$POSTGRES_PORT only.
set -eu

: "${POSTGRES_PASSWORD:?POSTGRES_PASSWORD must be set}"
POSTGRES_PORT="${POSTGRES_PORT:-5432}"
POSTGRES_USER="${POSTGRES_USER:-postgres}"
POSTGRES_DB="${POSTGRES_DB:-postgres}"
PGDATA="${PGDATA:-/var/lib/postgresql/data}"
export PGPORT="$POSTGRES_PORT"

as_postgres() {
    setpriv --reuid=postgres --regid=postgres --init-groups "$@"
}

mkdir -p "$PGDATA" /var/run/postgresql
chown postgres:postgres "$PGDATA" /var/run/postgresql
chmod 0700 "$PGDATA"
# A data dir made by an image whose postgres user had another uid: hand it over.
if [ -e "$PGDATA/PG_VERSION" ] && [ "$(stat -c %U "$PGDATA/PG_VERSION")" != postgres ]; then
    chown -R postgres:postgres "$PGDATA"
fi

if [ ! -s "$PGDATA/PG_VERSION" ]; then
    echo "postgres-entrypoint: initialising $PGDATA"
    pwfile="$(mktemp)"
    printf '%s\n' "$POSTGRES_PASSWORD" > "$pwfile"
    chown postgres "$pwfile"
    as_postgres initdb -D "$PGDATA" -U "$POSTGRES_USER" --pwfile="$pwfile" --encoding=UTF8 --locale=C.UTF-8 \
        --auth-local=trust --auth-host=scram-sha-256
    rm -f "$pwfile"
    cat >> "$PGDATA/postgresql.conf" <<CONF

# webstack sandbox
listen_addresses = '127.0.0.1'
shared_preload_libraries = 'pg_stat_statements'
pg_stat_statements.track = all
password_encryption = 'scram-sha-256'
log_min_duration_statement = 1000
CONF
    if [ "$POSTGRES_DB" != "postgres" ]; then
        echo "CREATE DATABASE \"$POSTGRES_DB\";" | as_postgres postgres --single -D "$PGDATA" -j postgres > /dev/null
    fi
    echo "CREATE EXTENSION IF NOT EXISTS pg_stat_statements;" | as_postgres postgres --single -D "$PGDATA" -j "$POSTGRES_DB" > /dev/null
    echo "postgres-entrypoint: initialised"
fi

exec setpriv --reuid=postgres --regid=postgres --init-groups \
    postgres -D "$PGDATA" -c listen_addresses=127.0.0.1 -c port="$POSTGRES_PORT" -c shared_preload_libraries=pg_stat_statements
