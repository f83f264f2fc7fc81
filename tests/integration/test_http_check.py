"""webstack.ops.http_check against real HTTP and HTTPS servers on 127.0.0.1 (the uptime rule: 3 consecutive failures)."""

from __future__ import annotations

import ssl
import subprocess
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import SimpleNamespace

import pytest
from ansible_run import run_module

MODULE = "webstack.ops.http_check"
NAME = "health.webstack.test"


class Handler(BaseHTTPRequestHandler):
    """/health/ answers 503 for the first `failures` requests, then 200; it records each request's Host."""

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        server = self.server
        server.hosts.append(self.headers.get("Host"))
        status = 503 if len(server.hosts) <= server.failures else 200
        self.send_response(status if self.path == "/health/" else 404)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - http.server's signature
        pass


def serve(tls_dir=None) -> Iterator[SimpleNamespace]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.hosts, server.failures = [], 0
    if tls_dir is not None:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(tls_dir / "cert.pem", tls_dir / "key.pem")
        server.socket = context.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield SimpleNamespace(server=server, port=server.server_address[1])
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def site():
    yield from serve()


@pytest.fixture
def tls_site(tmp_path):
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=%s" % NAME,
                    "-addext", "subjectAltName=DNS:%s" % NAME, "-keyout", str(tmp_path / "key.pem"),
                    "-out", str(tmp_path / "cert.pem")], check=True, capture_output=True)
    for served in serve(tmp_path):
        served.ca = str(tmp_path / "cert.pem")
        yield served


def test_two_failures_then_an_answer_is_no_alert_and_three_are_critical(site):
    site.server.failures = 2
    url = "http://127.0.0.1:%d/health/" % site.port
    result = run_module(MODULE, dict(url=url, delay=0.2))
    assert result["changed"] is False and result["ok"] is True and result["level"] == "ok", result
    assert [a["status"] for a in result["attempts"]] == [503, 503, 200] and result["alerts"] == []

    site.server.hosts, site.server.failures = [], 3
    failed = run_module(MODULE, dict(url=url, delay=0.2), check=True)  # check mode probes the same
    assert failed["ok"] is False and failed["status"] == 503 and len(site.server.hosts) == 3
    assert [(a["check"], a["level"]) for a in failed["alerts"]] == [("http_down", "crit")]
    assert "failed 3 consecutive attempt(s), last: HTTP 503" in failed["alerts"][0]["message"]


def test_https_by_name_through_another_address_checks_the_certificate(tls_site):
    url = "https://%s:%d/health/" % (NAME, tls_site.port)
    result = run_module(MODULE, dict(url=url, connect_to="127.0.0.1", ca_path=tls_site.ca, attempts=1))
    assert result["ok"] is True and result["status"] == 200, result
    assert tls_site.server.hosts == ["%s:%d" % (NAME, tls_site.port)]  # the site's name went in the Host header

    untrusted = run_module(MODULE, dict(url=url, connect_to="127.0.0.1", attempts=1))  # the system CAs do not know it
    assert untrusted["ok"] is False and "TLS certificate not accepted" in untrusted["alerts"][0]["message"]


def test_nothing_listening_is_critical_and_a_bad_url_is_refused(free_port):
    result = run_module(MODULE, dict(url="http://127.0.0.1:%d/health/" % free_port, attempts=2, delay=0))
    assert result["ok"] is False and result["status"] is None
    assert "connection refused" in result["alerts"][0]["message"]
    bad = run_module(MODULE, dict(url="ftp://example.test/"))
    assert bad["failed"] and "http:// or https://" in bad["msg"]
