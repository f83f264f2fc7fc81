#!/bin/sh
# redis-server in the foreground on 127.0.0.1:$REDIS_PORT, password $REDIS_PASSWORD, no snapshots,
# LRU eviction past $REDIS_MAXMEMORY. Extra arguments are passed on to redis-server.
set -eu

: "${REDIS_PASSWORD:?REDIS_PASSWORD must be set}"
REDIS_PORT="${REDIS_PORT:-6379}"
REDIS_MAXMEMORY="${REDIS_MAXMEMORY:-128mb}"

exec setpriv --reuid=redis --regid=redis --init-groups \
    redis-server --bind 127.0.0.1 --port "$REDIS_PORT" --requirepass "$REDIS_PASSWORD" --save '' --appendonly no \
    --maxmemory "$REDIS_MAXMEMORY" --maxmemory-policy allkeys-lru --daemonize no --dir /var/lib/redis "$@"
