"""/health/ (database and cache), and /slow/ and /error/, which exist to produce slow-request and ERROR log lines."""

import time
import uuid
from pathlib import Path

from django.conf import settings
from django.core.cache import cache
from django.db import Error as DatabaseError
from django.db import connection
from django.http import HttpResponseBadRequest, JsonResponse
from redis.exceptions import RedisError

MAX_SLOW_MS = 60_000


def check_database():
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()


def check_cache():
    key = "health:%s" % uuid.uuid4().hex
    token = uuid.uuid4().hex
    cache.set(key, token, timeout=30)
    if cache.get(key) != token:
        raise RedisError("the value set was not read back")
    cache.delete(key)


def health(request):
    """200 {"status": "ok", "database": "ok", "cache": "ok"}, or 503 naming what failed in `failed`."""
    body = {"status": "ok"}
    failed = []
    for name, check, errors in (("database", check_database, DatabaseError), ("cache", check_cache, (RedisError, OSError))):
        try:
            check()
            body[name] = "ok"
        except errors as exc:
            body[name] = "error: %s: %s" % (type(exc).__name__, str(exc).strip()[:300])
            failed.append(name)
    force_file = settings.HEALTH_FORCE_FAIL_FILE
    if force_file and Path(force_file).exists():
        body["forced"] = "HEALTH_FORCE_FAIL_FILE %s exists" % force_file
        failed.append("forced")
    if failed:
        body["status"] = "error"
        body["failed"] = failed
        return JsonResponse(body, status=503)
    return JsonResponse(body)


def slow(request):
    """Sleeps ?ms=N milliseconds (0 to 60000), to produce slow requests."""
    try:
        ms = int(request.GET.get("ms", "1500"))
    except ValueError:
        return HttpResponseBadRequest("ms must be an integer\n")
    if not 0 <= ms <= MAX_SLOW_MS:
        return HttpResponseBadRequest("ms must be between 0 and %d\n" % MAX_SLOW_MS)
    time.sleep(ms / 1000)
    return JsonResponse({"slept_ms": ms})


def error(request):
    """Raises, so Django logs an ERROR line with the traceback and answers 500."""
    raise RuntimeError("deliberate error from /error/ (sandbox log tests)")
