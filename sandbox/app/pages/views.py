"""The home page: records a PageVisit and the visitor's RequestFingerprint."""

import time

from django.http import HttpResponse
from utils.models import RequestFingerprint
from utils.requestinfo import client_ip, fingerprint_fields, is_suspicious

from .models import PageVisit

PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>webstack sandbox</title></head>
<body><h1>webstack sandbox</h1><p>The reference site of the webstack.ops collection.</p>
<p><a href="/health/">health</a> &middot; <a href="/admin/">admin</a></p></body></html>
"""


def home(request):
    started = time.monotonic()
    PageVisit.objects.create(
        path=request.get_full_path()[:2000],
        user_agent=request.META.get("HTTP_USER_AGENT", ""),
        ip_address=client_ip(request),
        referer=request.META.get("HTTP_REFERER") or None,
        session_key=request.session.session_key,  # None unless the visitor has a session
        response_ms=int((time.monotonic() - started) * 1000),
    )
    if not is_suspicious(request):  # FingerprintMiddleware has recorded suspicious ones already
        RequestFingerprint.objects.create(is_suspicious=False, **fingerprint_fields(request))
    return HttpResponse(PAGE)
