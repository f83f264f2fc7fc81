# Copyright (c) webstack.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""One URL probed a few times, as an uptime monitor does, optionally at a chosen address (private to the collection).

`connect_to` is curl's --resolve: the TCP connection goes to that address while the Host header, TLS server
name and certificate check use the URL's name, so a site can be checked through its own nginx before (or
without) DNS pointing there.
"""

from __future__ import annotations

import http.client
import socket
import ssl
import time
from urllib.parse import urlsplit


class Probe:
    """GETs of one URL; each returns (status or None, seconds, error or None)."""

    def __init__(self, url, *, connect_to=None, ca_path=None, validate_certs=True, timeout=10, headers=None):
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("url must be an http:// or https:// URL with a host name, got %r" % url)
        self.scheme, self.name = parts.scheme, parts.hostname
        self.port = parts.port or (443 if parts.scheme == "https" else 80)
        self.path = (parts.path or "/") + ("?" + parts.query if parts.query else "")
        self.address = connect_to or self.name
        self.timeout = timeout
        self.headers = dict(headers or {})
        self.headers.setdefault("Host", parts.netloc.rsplit("@", 1)[-1])
        self.headers.setdefault("User-Agent", "webstack.ops http_check")
        self.context = None
        if self.scheme == "https":
            self.context = ssl.create_default_context(cafile=ca_path)
            if not validate_certs:
                self.context.check_hostname = False
                self.context.verify_mode = ssl.CERT_NONE

    def once(self):
        began = time.monotonic()
        sock = None
        try:
            sock = socket.create_connection((self.address, self.port), timeout=self.timeout)
            if self.context is not None:
                sock = self.context.wrap_socket(sock, server_hostname=self.name)
            conn = http.client.HTTPConnection(self.name, self.port, timeout=self.timeout)
            conn.sock = sock  # already connected (and wrapped): http.client only speaks HTTP over it
            conn.request("GET", self.path, headers=self.headers)
            response = conn.getresponse()
            response.read(65536)
            return response.status, time.monotonic() - began, None
        except (OSError, http.client.HTTPException) as exc:
            return None, time.monotonic() - began, describe(exc)
        finally:
            if sock is not None:
                sock.close()


def describe(exc):
    if isinstance(exc, ssl.SSLCertVerificationError):
        return "TLS certificate not accepted: %s" % (exc.verify_message or exc)
    if isinstance(exc, socket.timeout):
        return "no answer within the timeout"
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    return "%s: %s" % (type(exc).__name__, exc)


def probe(checker, attempts, delay, expect, sleep=time.sleep):
    """Up to `attempts` GETs, `delay` seconds apart, until one answers an expected status.

    Returns (ok, tries): ok when one answered as expected; tries lists each attempt's status, seconds and error.
    """
    tries = []
    for number in range(attempts):
        if number:
            sleep(delay)
        status, seconds, error = checker.once()
        tries.append(dict(status=status, seconds=round(seconds, 3), error=error))
        if status in expect:
            return True, tries
    return False, tries
