"""Request logging (one line per request, `slow request` above SLOW_REQUEST_MS) and probe fingerprinting."""

import logging
import time

from django.conf import settings
from django.db import DatabaseError

from .models import RequestFingerprint
from .requestinfo import fingerprint_fields, is_suspicious

logger = logging.getLogger("webstack.requests")


class RequestLogMiddleware:
    """Logs `METHOD PATH STATUS N ms` at INFO, or `slow request METHOD PATH STATUS N ms` at WARNING.

    Unhandled exceptions reach this middleware as 500 responses; Django's django.request logger
    has already written their ERROR line with the traceback.
    """

    def __init__(self, get_response):
        self.get_response = get_response
        self.slow_ms = settings.SLOW_REQUEST_MS

    def __call__(self, request):
        started = time.monotonic()
        response = self.get_response(request)
        elapsed_ms = int((time.monotonic() - started) * 1000)
        request.elapsed_ms = elapsed_ms
        line = "%s %s %d %d ms" % (request.method, request.get_full_path(), response.status_code, elapsed_ms)
        if elapsed_ms >= self.slow_ms:
            logger.warning("slow request %s", line)
        else:
            logger.info("%s", line)
        return response


class FingerprintMiddleware:
    """Records a suspicious RequestFingerprint for scanner probes (/wp-login.php, /.env, sqlmap, ...)."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if is_suspicious(request):
            try:
                RequestFingerprint.objects.create(is_suspicious=True, **fingerprint_fields(request))
            except DatabaseError:
                logger.exception("could not record the fingerprint of %s", request.path)
        return self.get_response(request)
