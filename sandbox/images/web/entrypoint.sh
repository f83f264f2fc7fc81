#!/bin/sh
# One image, four roles (the guide's containers):
#   web      manage.py migrate (+ collectstatic when STATIC_ROOT is set), then gunicorn on 127.0.0.1:$WEB_PORT
#   worker   celery -A webstack_site worker
#   beat     celery -A webstack_site beat
#   flower   celery -A webstack_site flower on 127.0.0.1:$FLOWER_PORT
# Anything else is run as given.
set -eu

cd /app
if [ -n "${LOG_DIR:-}" ]; then
    mkdir -p "$LOG_DIR"
fi

role="${1:-web}"
case "$role" in
    web)
        python manage.py migrate --noinput
        if [ -n "${STATIC_ROOT:-}" ]; then
            mkdir -p "$STATIC_ROOT"
            python manage.py collectstatic --noinput > /dev/null
        fi
        exec gunicorn webstack_site.wsgi:application --bind "127.0.0.1:${WEB_PORT:-8000}" \
            --workers "${GUNICORN_WORKERS:-2}" --timeout "${GUNICORN_TIMEOUT:-60}" --access-logfile - --error-logfile -
        ;;
    worker)
        exec celery -A webstack_site worker --loglevel "${CELERY_LOGLEVEL:-INFO}" --concurrency "${CELERY_CONCURRENCY:-2}" \
            --hostname "worker@%h"
        ;;
    beat)
        exec celery -A webstack_site beat --loglevel "${CELERY_LOGLEVEL:-INFO}" --schedule /tmp/celerybeat-schedule
        ;;
    flower)
        exec celery -A webstack_site flower --address=127.0.0.1 --port="${FLOWER_PORT:-5555}"
        ;;
    *)
        exec "$@"
        ;;
esac
