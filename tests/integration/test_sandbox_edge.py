"""sandbox/edge.py against real servers: certbot gets certificates from Pebble through nginx (real HTTP-01), nginx serves them.

One module-wide stack: Pebble (1-hour certificates, HTTP-01 validation on nginx's HTTP port), nginx with the
site's blocks, a tiny HTTP upstream in a thread. Every server is stopped by PID at the end.
"""

from __future__ import annotations

import http.client
import shutil
import socket
import ssl
import threading
import time
import urllib.request
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import SimpleNamespace

import boto3
import edge
import pytest
from harness import NginxServer, PebbleServer, ServerError, free_port

DOMAIN = "sandbox.webstack.test"


class Upstream(BaseHTTPRequestHandler):
    """Stands in for gunicorn: 200 with the proxy headers it received."""

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        body = (f"upstream ok path={self.path} host={self.headers.get('Host')} proto={self.headers.get('X-Forwarded-Proto')} "
                f"real_ip={self.headers.get('X-Real-IP')}").encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - http.server's signature
        """Quiet."""


def https_get(site: SimpleNamespace, path: str = "/", cafile: Path | None = None) -> tuple[int, bytes]:
    """GET https://DOMAIN:https_port/path, connecting to 127.0.0.1 with SNI=DOMAIN, verified against Pebble's root."""
    context = ssl.create_default_context(cafile=str(cafile or site.root))
    conn = http.client.HTTPSConnection(DOMAIN, site.https_port, timeout=10, context=context)
    conn.sock = context.wrap_socket(socket.create_connection(("127.0.0.1", site.https_port), timeout=10), server_hostname=DOMAIN)
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def snapshot(directory: Path) -> dict[str, bytes | str]:
    """Every file's bytes and every symlink's target under directory."""
    found: dict[str, bytes | str] = {}
    for path in sorted(directory.rglob("*")):
        if path.is_symlink():
            found[str(path.relative_to(directory))] = "-> " + str(path.readlink())
        elif path.is_file():
            found[str(path.relative_to(directory))] = path.read_bytes()
    return found


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SimpleNamespace]:
    """Pebble + nginx + upstream, with the site configured by edge.configure_site()."""
    base = tmp_path_factory.mktemp("edge")
    http_port, https_port = free_port(), free_port()
    upstream = ThreadingHTTPServer(("127.0.0.1", free_port()), Upstream)
    thread = threading.Thread(target=upstream.serve_forever, daemon=True)
    thread.start()
    pebble = PebbleServer(base / "pebble", http_port=http_port, validity_period=3600)
    nginx = NginxServer(base / "nginx")
    try:
        pebble.start()
        nginx.start()
        static_root = base / "static"
        (static_root / "css").mkdir(parents=True)
        (static_root / "css" / "site.css").write_text("body { color: black; }\n")
        began = time.monotonic()
        result = edge.configure_site(nginx, pebble, DOMAIN, http_port=http_port, https_port=https_port,
                                     upstream=f"127.0.0.1:{upstream.server_port}", webroot=base / "webroot", static_root=static_root,
                                     certbot_dir=base / "certbot", renew_before_expiry="10 minutes")
        root = base / "pebble-root.pem"
        root.write_text(edge.pebble_root(pebble))
        yield SimpleNamespace(base=base, pebble=pebble, nginx=nginx, http_port=http_port, https_port=https_port, upstream=upstream,
                              certbot_dir=base / "certbot", webroot=base / "webroot", static_root=static_root, first=result, root=root,
                              configure_seconds=round(time.monotonic() - began, 2))
    finally:
        nginx.stop()
        pebble.stop()
        upstream.shutdown()
        upstream.server_close()


def test_certbot_obtains_a_certificate_from_pebble_through_nginx_and_nginx_serves_it(site):
    first = site.first
    assert first["changed"]
    for key in ("fullchain", "privkey", "cert", "chain"):
        assert Path(first[key]).is_file()
    assert Path(first["fullchain"]) == site.certbot_dir.resolve() / "config" / "live" / DOMAIN / "fullchain.pem"
    assert Path(first["fullchain"]).read_text().count("BEGIN CERTIFICATE") == 2  # leaf + Pebble's intermediate
    # 1-hour certificates (validity_period), not Pebble's 5 years
    left = edge.certificate_info(first["cert"])["not_after"] - edge.dt.datetime.now(edge.dt.UTC)
    assert edge.dt.timedelta(minutes=50) < left <= edge.dt.timedelta(hours=1, minutes=1)
    assert edge.dt.datetime.fromisoformat(first["not_after"]) == edge.certificate_info(first["cert"])["not_after"]

    status, body = https_get(site, "/some/page?x=1")
    assert status == 200
    assert body.decode() == f"upstream ok path=/some/page?x=1 host={DOMAIN} proto=https real_ip=127.0.0.1"
    served = edge.served_certificate("127.0.0.1", site.https_port, DOMAIN, cafile=site.root)
    assert served["serial"] == first["serial"] == edge.certificate_info(first["cert"])["serial"]
    print(f"configure_site (HTTP block, certbot, HTTPS block): {site.configure_seconds} s")


def test_the_system_trust_store_does_not_know_pebbles_root(site):
    with pytest.raises(ssl.SSLCertVerificationError):
        https_get(site, cafile=Path(ssl.get_default_verify_paths().cafile or "/etc/ssl/certs/ca-certificates.crt"))


def test_http_answers_challenges_and_redirects_the_rest_to_https(site):
    challenge = site.webroot / ".well-known" / "acme-challenge" / "token123"
    challenge.write_text("key-authorization")
    conn = http.client.HTTPConnection("127.0.0.1", site.http_port, timeout=5)
    try:
        conn.request("GET", "/.well-known/acme-challenge/token123", headers={"Host": DOMAIN})
        response = conn.getresponse()
        assert (response.status, response.read()) == (200, b"key-authorization")
        conn.request("GET", "/admin/login/?next=/", headers={"Host": DOMAIN})
        response = conn.getresponse()
        response.read()
        assert response.status == 301
        assert response.getheader("Location") == f"https://{DOMAIN}:{site.https_port}/admin/login/?next=/"
    finally:
        conn.close()
        challenge.unlink()


def test_static_files_come_from_static_root_and_requests_are_logged_in_combined_format(site):
    assert https_get(site, "/static/css/site.css") == (200, b"body { color: black; }\n")
    assert https_get(site, "/static/missing.css")[0] == 404
    log = site.nginx.prefix / "logs" / f"{DOMAIN}.access.log"
    deadline = time.monotonic() + 5
    while '"GET /static/missing.css HTTP/1.1" 404' not in log.read_text() and time.monotonic() < deadline:
        time.sleep(0.1)
    line = next(line for line in log.read_text().splitlines() if "/static/missing.css" in line)
    # combined: $remote_addr - $remote_user [$time_local] "$request" $status $body_bytes_sent "$http_referer" "$http_user_agent"
    assert edge.re.fullmatch(r'127\.0\.0\.1 - - \[[^]]+\] "GET /static/missing\.css HTTP/1\.1" 404 \d+ "-" "[^"]*"', line), line
    assert (site.nginx.prefix / "logs" / f"{DOMAIN}.error.log").exists()


def test_obtaining_again_keeps_the_valid_certificate(site):
    again = edge.obtain_certificate(site.pebble, DOMAIN, site.webroot, site.certbot_dir, site.http_port, renew_before_expiry="10 minutes")
    assert not again["changed"]
    assert again["serial"] == edge.certificate_info(again["cert"])["serial"]
    assert again["serial"] == edge.served_certificate("127.0.0.1", site.https_port, DOMAIN)["serial"]
    assert "not yet due for renewal" in again["output"]


def test_renew_without_force_keeps_a_certificate_that_is_not_due(site):
    before = edge.certificate_info(edge.certbot_paths(site.certbot_dir, DOMAIN)["cert"])["serial"]
    result = edge.renew(site.pebble, DOMAIN, site.certbot_dir, nginx=site.nginx)
    assert not result["changed"]
    assert result["serial"] == before


def test_dry_run_goes_to_pebble_and_changes_nothing_on_disk(site):
    config = site.certbot_dir / "config"
    before = snapshot(config)
    output = edge.renew_dry_run(site.pebble, DOMAIN, site.certbot_dir)
    assert "simulated renewal" in output.lower() or "dry run" in output.lower()
    assert "staging" not in output.lower()
    assert site.pebble.directory_url in (site.certbot_dir / "logs" / "letsencrypt.log").read_text()
    assert snapshot(config) == before


def test_forced_renewal_issues_a_new_certificate_that_nginx_then_serves(site):
    paths = edge.certbot_paths(site.certbot_dir, DOMAIN)
    before = edge.certificate_info(paths["cert"])["serial"]
    began = time.monotonic()
    result = edge.renew(site.pebble, DOMAIN, site.certbot_dir, nginx=site.nginx, force=True, https_port=site.https_port)
    seconds = time.monotonic() - began
    assert result["changed"]
    assert result["serial"] != before
    assert result["serial"] == edge.certificate_info(paths["cert"])["serial"]
    # the deploy hook ran `nginx -t` and reloaded nginx: the new certificate is served, verified
    served = edge.wait_until_served("127.0.0.1", site.https_port, DOMAIN, result["serial"])
    assert served["serial"] == result["serial"]
    assert https_get(site)[0] == 200
    assert (site.certbot_dir / "hooks" / "deploy-nginx-reload.sh").exists()
    print(f"forced renewal + deploy hook: {seconds:.2f} s")


def test_a_broken_nginx_config_is_refused_and_nginx_keeps_serving_the_old_one(site):
    good = site.nginx.extra_servers
    serial = edge.served_certificate("127.0.0.1", site.https_port, DOMAIN)["serial"]
    site.nginx.extra_servers = good + "\n    server { listen 127.0.0.1:1; no_such_directive on; }\n"
    try:
        with pytest.raises(ServerError, match="nginx -t"):
            site.nginx.reload()
        assert https_get(site, "/still")[0] == 200
        assert edge.served_certificate("127.0.0.1", site.https_port, DOMAIN)["serial"] == serial
        assert "no_such_directive" not in site.nginx.conf_path.read_text()  # the refused text never replaced nginx.conf
        # the deploy hook validates too: with a broken file edited on disk by hand, a renewal's reload is refused and reported
        good_text = site.nginx.conf_path.read_text()
        site.nginx.conf_path.write_text(site.nginx.config_text())
        with pytest.raises(edge.EdgeError, match="hook failed"):
            edge.renew(site.pebble, DOMAIN, site.certbot_dir, nginx=site.nginx, force=True)
        assert edge.served_certificate("127.0.0.1", site.https_port, DOMAIN)["serial"] == serial
        site.nginx.conf_path.write_text(good_text)
    finally:
        site.nginx.extra_servers = good
        site.nginx.reload()
    # the certificate renewed during the failed hook is served once nginx reloads a valid configuration
    current = edge.certificate_info(edge.certbot_paths(site.certbot_dir, DOMAIN)["cert"])["serial"]
    edge.wait_until_served("127.0.0.1", site.https_port, DOMAIN, current)


def test_configure_site_again_changes_nothing_and_rolls_back_a_refused_config(site):
    conf = site.nginx.conf_path.read_text()
    kwargs = dict(http_port=site.http_port, https_port=site.https_port, upstream=f"127.0.0.1:{site.upstream.server_port}",
                  webroot=site.webroot, static_root=site.static_root, certbot_dir=site.certbot_dir, renew_before_expiry="10 minutes")
    again = edge.configure_site(site.nginx, site.pebble, DOMAIN, **kwargs)
    assert (again["changed"], again["reloads"]) == (False, 0)
    assert site.nginx.conf_path.read_text() == conf

    with pytest.raises(edge.EdgeError, match="nginx refused the configuration"):
        edge.configure_site(site.nginx, site.pebble, DOMAIN, base_servers="    server { bogus_directive; }", **kwargs)
    assert site.nginx.conf_path.read_text() == conf  # put back
    assert https_get(site)[0] == 200


def test_configure_site_refuses_a_bad_value_before_touching_nginx(site):
    with pytest.raises(edge.EdgeError, match="upstream"):
        edge.site_config(DOMAIN, site.http_port, site.https_port, "127.0.0.1:8000; evil", None, None, site.webroot, site.static_root)
    with pytest.raises(edge.EdgeError, match="domain"):
        edge.site_config("bad domain;", site.http_port, site.https_port, "127.0.0.1:8000", None, None, site.webroot, site.static_root)


def test_with_the_acme_server_stopped_obtain_and_renew_fail_naming_it(site, tmp_path):
    stopped = PebbleServer(tmp_path / "pebble", http_port=site.http_port)
    stopped.start()
    stopped.stop()
    certbot_dir = tmp_path / "certbot"
    with pytest.raises(edge.EdgeError) as failed:
        edge.obtain_certificate(stopped, DOMAIN, site.webroot, certbot_dir, site.http_port)
    message = str(failed.value)
    assert f"against ACME server {stopped.directory_url} failed" in message
    assert f"the ACME server {stopped.directory_url} does not answer" in message
    assert "letsencrypt.log" in message  # certbot's log tail

    shutil.copytree(site.certbot_dir, certbot_dir, symlinks=True, dirs_exist_ok=True)
    with pytest.raises(edge.EdgeError, match=f"against ACME server {edge.re.escape(stopped.directory_url)} failed"):
        edge.renew(stopped, DOMAIN, certbot_dir, force=True)


def test_after_a_pebble_restart_certbot_registers_again_and_replaces_the_untrusted_certificate(site, tmp_path):
    """Pebble forgets accounts and makes a new root at every start; the sandbox's certbot dir outlives it."""
    pebble = PebbleServer(tmp_path / "pebble", http_port=site.http_port)
    certbot_dir = tmp_path / "certbot"
    try:
        pebble.start()
        first = edge.obtain_certificate(pebble, DOMAIN, site.webroot, certbot_dir, site.http_port)
        pebble.stop()
        pebble.start()  # same ports, no state, new root
        assert not edge.chains_to(first["cert"], first["chain"], edge.pebble_root(pebble))
        again = edge.obtain_certificate(pebble, DOMAIN, site.webroot, certbot_dir, site.http_port)
        assert again["changed"]
        assert edge.chains_to(again["cert"], again["chain"], edge.pebble_root(pebble))
        assert not edge.obtain_certificate(pebble, DOMAIN, site.webroot, certbot_dir, site.http_port)["changed"]
        pebble.stop()
        pebble.start()
        renewed = edge.renew(pebble, DOMAIN, certbot_dir, force=True)
        assert renewed["changed"]
    finally:
        pebble.stop()


def test_obtain_refuses_when_pebble_validates_on_another_port(site, tmp_path):
    other = SimpleNamespace(**{**vars(site.pebble), "http_port": site.http_port + 1})
    with pytest.raises(edge.EdgeError, match="start Pebble with http_port"):
        edge.obtain_certificate(other, DOMAIN, site.webroot, tmp_path, site.http_port)


def test_ensure_bucket_creates_the_bucket_then_reports_it_existed(s3_server):
    bucket = "backups-" + uuid.uuid4().hex[:8]
    args = (s3_server.endpoint_url, s3_server.access_key, s3_server.secret_key, bucket)
    assert edge.ensure_bucket(*args) is True
    assert edge.ensure_bucket(*args) is False
    client = boto3.client("s3", endpoint_url=s3_server.endpoint_url, aws_access_key_id=s3_server.access_key,
                          aws_secret_access_key=s3_server.secret_key, region_name=s3_server.region)
    assert bucket in [entry["Name"] for entry in client.list_buckets()["Buckets"]]
    with pytest.raises(edge.EdgeError, match=s3_server.endpoint_url):
        edge.ensure_bucket(s3_server.endpoint_url, s3_server.access_key, "wrong-secret", bucket + "-x")


def test_pebble_root_is_fetched_over_verified_https(site):
    assert edge.pebble_root(site.pebble).startswith("-----BEGIN CERTIFICATE-----")
    with pytest.raises(OSError):
        urllib.request.urlopen(site.pebble.management_url + "/roots/0", timeout=5)  # noqa: S310 - not trusted by the system
