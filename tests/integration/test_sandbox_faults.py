"""sandbox/faults.py against real servers: every fault injected, observed as a check would see it, then undone (twice).

Servers: the session's PostgreSQL (pg_server) and Docker engine (docker_engine); a module-wide Pebble + nginx site
(certbot, 5-year certificates) for the certificate faults; a tiny http.server answering 500 for the error burst.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import SimpleNamespace

import edge
import faults
import psycopg2
import pytest
from harness import NginxServer, PebbleServer, ServerError, free_port

DOMAIN = "faults.webstack.test"


def now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


# Disk.


def df_used_percent(mount: Path) -> int:
    out = subprocess.run(["df", "--output=pcent", str(mount)], capture_output=True, text=True, check=True).stdout
    return int(out.splitlines()[-1].strip().rstrip("%"))


def test_fill_disk_fills_a_small_filesystem_past_90_percent_and_undo_unmounts_it(tmp_path):
    mount = tmp_path / "disk"
    record = faults.fill_disk(mount, size_mb=16, percent=95)
    try:
        assert os.path.ismount(mount)
        assert df_used_percent(mount) >= 90
        assert record["percent"] >= 90
        assert record == faults.fill_disk(mount, size_mb=16, percent=95)  # again: same filesystem, same fill
    finally:
        faults.undo_fill_disk(record)
    assert not os.path.ismount(mount)
    faults.undo_fill_disk(record)  # already undone: nothing to do
    assert not os.path.ismount(mount)


# Database.


@pytest.fixture
def blocked_table(pg_db):
    pg_db.execute("CREATE TABLE pages_pagevisit (id serial PRIMARY KEY, path text)")
    pg_db.execute("INSERT INTO pages_pagevisit (path) VALUES ('/'), ('/blog/')")
    return pg_db


def update_from_another_session(db) -> str:
    """'ok' or the error of an UPDATE with lock_timeout 500ms."""
    conn = psycopg2.connect(**db.conninfo)
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            cur.execute("SET lock_timeout = '500ms'")
            cur.execute("UPDATE pages_pagevisit SET path = path")
        return "ok"
    except psycopg2.errors.LockNotAvailable as exc:
        return f"lock timeout: {exc}".strip()
    finally:
        conn.close()


def test_block_database_holds_a_lock_until_undone(blocked_table):
    db = blocked_table
    login = {"host": db.server.host, "port": db.server.port, "user": db.server.user, "password": db.server.password}
    assert update_from_another_session(db) == "ok"
    record = faults.block_database(login, db.name, "pages_pagevisit", seconds=300)
    try:
        began = time.monotonic()
        assert update_from_another_session(db).startswith("lock timeout")
        assert 0.4 < time.monotonic() - began < 5
        time.sleep(2)
        rows = db.execute("SELECT state, now() - query_start, query FROM pg_stat_activity "
                          "WHERE application_name = %s AND datname = %s", (faults.BLOCKER, db.name))
        assert len(rows) == 1
        state, running_for, query = rows[0]
        assert state == "active"
        assert running_for > dt.timedelta(seconds=2)
        assert "pg_sleep" in query
        # the guide's query for long-running queries finds it
        long_running = db.execute("SELECT pid FROM pg_stat_activity WHERE state = 'active' AND now() - query_start > interval '2 seconds' "
                                  "AND datname = %s", (db.name,))
        assert len(long_running) == 1
    finally:
        faults.undo_block_database(login, record)
    assert update_from_another_session(db) == "ok"
    assert db.execute("SELECT count(*) FROM pg_stat_activity WHERE application_name = %s", (faults.BLOCKER,))[0][0] == 0
    faults.undo_block_database(login, record)  # already undone: nothing to do
    assert update_from_another_session(db) == "ok"


# Certificates.


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SimpleNamespace]:
    """Pebble (default 5-year certificates) + nginx with DOMAIN configured by edge.configure_site()."""
    base = tmp_path_factory.mktemp("faults-edge")
    http_port, https_port = free_port(), free_port()
    pebble = PebbleServer(base / "pebble", http_port=http_port)
    nginx = NginxServer(base / "nginx")
    try:
        pebble.start()
        nginx.start()
        edge.configure_site(nginx, pebble, DOMAIN, http_port=http_port, https_port=https_port, upstream=f"127.0.0.1:{free_port()}",
                            webroot=base / "webroot", static_root=base / "static", certbot_dir=base / "certbot")
        yield SimpleNamespace(base=base, pebble=pebble, nginx=nginx, https_port=https_port, certbot_dir=base / "certbot",
                              webroot=base / "webroot")
    finally:
        nginx.stop()
        pebble.stop()


def served(site) -> dict:
    return edge.served_certificate("127.0.0.1", site.https_port, DOMAIN)


def test_near_expiry_certificate_is_served_and_undo_serves_a_normal_one(site):
    assert served(site)["not_after"] - now() > dt.timedelta(days=365)
    began = time.monotonic()
    record = faults.near_expiry_certificate(site.pebble, site.nginx, DOMAIN, site.certbot_dir, webroot=site.webroot,
                                            state_dir=site.base / "faults", days=7, https_port=site.https_port)
    inject_seconds = time.monotonic() - began
    try:
        left = served(site)["not_after"] - now()
        assert dt.timedelta(days=7) - dt.timedelta(minutes=10) < left <= dt.timedelta(days=7, minutes=1)
        assert served(site)["serial"] == record["serial"]
    finally:
        began = time.monotonic()
        undone = faults.undo_near_expiry_certificate(site.pebble, site.nginx, record)
        undo_seconds = time.monotonic() - began
    assert undone is not None
    assert served(site)["not_after"] - now() > dt.timedelta(days=365)
    assert served(site)["serial"] == undone["serial"]
    root = site.base / "root.pem"
    root.write_text(edge.pebble_root(site.pebble))
    assert edge.served_certificate("127.0.0.1", site.https_port, DOMAIN, cafile=root)  # chains to the sandbox Pebble again
    assert faults.undo_near_expiry_certificate(site.pebble, site.nginx, record) is None  # already undone
    print(f"near_expiry_certificate: inject {inject_seconds:.1f} s, undo {undo_seconds:.1f} s")


def test_expired_certificate_is_served_and_undo_restores_certbots(site):
    normal = served(site)
    assert normal["not_after"] > now()
    record = faults.expired_certificate(site.nginx, DOMAIN, site.certbot_dir, state_dir=site.base / "faults", https_port=site.https_port)
    try:
        expired = served(site)
        assert expired["serial"] == record["serial"] != normal["serial"]
        assert expired["not_after"] < now() - dt.timedelta(days=2)
        assert not edge.chains_to(record["cert"], record["cert"], Path(record["cert"]).read_text())  # openssl: expired
        assert "ssl_certificate " + record["cert"] + ";" in site.nginx.conf_path.read_text()
    finally:
        assert faults.undo_expired_certificate(site.nginx, record) is True
    assert served(site)["serial"] == normal["serial"]
    assert record["cert"] not in site.nginx.conf_path.read_text()
    assert faults.undo_expired_certificate(site.nginx, record) is False  # already undone


def test_expired_certificate_refuses_a_site_it_does_not_know(site):
    with pytest.raises(RuntimeError, match="no `ssl_certificate"):
        faults.expired_certificate(site.nginx, "other.webstack.test", site.certbot_dir, state_dir=site.base / "faults")


def test_nginx_reload_keeps_file_and_server_when_the_new_configuration_is_bad(site):
    nginx = site.nginx
    on_disk = nginx.conf_path.read_text()
    good = nginx.extra_servers
    serial = served(site)["serial"]
    nginx.extra_servers = good + "\n    server { listen 127.0.0.1:1; this_is_no_directive on; }\n"
    try:
        with pytest.raises(ServerError, match="nginx -t"):
            nginx.reload()
    finally:
        nginx.extra_servers = good
    assert nginx.conf_path.read_text() == on_disk
    assert not list(nginx.conf_path.parent.glob(".nginx.conf.*"))
    assert nginx.alive()
    assert served(site)["serial"] == serial


# Logs and health.


def test_error_burst_appends_errors_in_the_apps_format(tmp_path):
    log = tmp_path / "django.log"
    log.write_text("2026-01-01 00:00:00,000 INFO django.server GET / 200\n")
    record = faults.error_burst(log, 5)
    assert record["error_lines"] == 5
    text = log.read_text()
    errors = [line for line in text.splitlines() if "ERROR" in line]  # the guide: grep ERROR
    assert len(errors) == 5
    pattern = r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} ERROR django\.request Internal Server Error: /error/"
    assert all(re.fullmatch(pattern, line) for line in errors)
    assert text.count("Traceback (most recent call last):") == 5
    assert text.startswith("2026-01-01 00:00:00,000 INFO")


class Failing(BaseHTTPRequestHandler):
    hits: list[str] = []

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        Failing.hits.append(self.path)
        body = b"<h1>Server Error (500)</h1>"
        self.send_response(500)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - http.server's signature
        """Quiet."""


def test_error_burst_hits_the_url_count_times():
    server = ThreadingHTTPServer(("127.0.0.1", 0), Failing)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        Failing.hits.clear()
        record = faults.error_burst(f"http://127.0.0.1:{server.server_port}/error/", 7)
    finally:
        server.shutdown()
        server.server_close()
    assert record["statuses"] == {"500": 7}
    assert Failing.hits == ["/error/"] * 7


def test_error_burst_says_when_the_url_does_not_answer(free_port):
    with pytest.raises(RuntimeError, match="does not answer"):
        faults.error_burst(f"http://127.0.0.1:{free_port}/error/", 2)


def test_health_fail_creates_and_removes_the_switch_file(tmp_path):
    switch = tmp_path / "state" / "health-force-fail"
    record = faults.health_fail(switch)
    assert switch.is_file()
    assert record["created"]
    assert faults.undo_health_fail(record) is True
    assert not switch.exists()
    assert faults.undo_health_fail(record) is False


# Containers.


@pytest.fixture
def client(docker_client):
    return docker_client


@pytest.fixture
def victim(client, base_image) -> Iterator:
    """A small python3 container with restart policy unless-stopped and a 256 MiB limit, removed afterwards."""
    container = client.containers.run(base_image, ["python3", "-c", "import time\nwhile True: time.sleep(1)"],
                                      name=f"fault-victim-{uuid.uuid4().hex[:8]}", detach=True, network_mode="none",
                                      restart_policy={"Name": "unless-stopped"}, mem_limit="256m", memswap_limit="256m",
                                      labels={"org.webstack-ops.test": "faults"})
    try:
        faults.wait_for(lambda: faults.container_state(container)["running"], 30, "the test container")
        yield container
    finally:
        container.remove(force=True)


def test_stop_container_and_start_it_again(client, victim):
    record = faults.stop_container(client, victim.name, timeout=2)
    assert record["after"]["running"] is False
    time.sleep(2)
    assert faults.container_state(victim)["status"] == "exited"  # unless-stopped does not restart a stopped container
    assert faults.start_container(client, record) is True
    assert faults.container_state(victim)["running"]
    assert faults.start_container(client, record) is False


def test_kill_container_is_restarted_by_unless_stopped(client, victim):
    record = faults.kill_container(client, victim.name)
    print(f"kill_container (host SIGKILL): before {record['before']}, after {record['after']}")
    assert record["restart_policy"] == "unless-stopped"
    after = record["after"]
    assert after["running"]
    assert after["restart_count"] == record["before"]["restart_count"] + 1
    assert after["pid"] != record["before"]["pid"]
    assert after["oom_killed"] is False
    assert faults.start_container(client, record) is False  # already running: nothing to undo


def test_docker_kill_is_a_manual_stop_that_unless_stopped_does_not_restart(client, victim):
    record = faults.kill_container(client, victim.name, via_docker=True, wait=5)
    print(f"kill_container (docker kill): before {record['before']}, after {record['after']}")
    time.sleep(3)
    state = faults.container_state(victim)
    assert state["status"] == "exited"
    assert state["exit_code"] == 137
    assert state["restart_count"] == record["before"]["restart_count"]
    assert faults.start_container(client, record) is True
    assert faults.container_state(victim)["running"]
    assert faults.start_container(client, record) is False


def test_oom_container_reports_oomkilled_and_restarts(client, victim):
    began = time.monotonic()
    record = faults.oom_container(client, victim.name, limit="24m")
    seconds = time.monotonic() - began
    print(f"oom_container ({seconds:.1f} s): before {record['before']}, after {record['after']}, exec exit {record['exec_exit_code']}")
    after = record["after"]
    assert after["oom_killed"] is True
    assert after["restart_count"] == record["before"]["restart_count"] + 1
    assert after["running"]
    victim.reload()
    assert victim.attrs["HostConfig"]["Memory"] == 24 * 1024 * 1024
    assert faults.undo_oom_container(client, record) is True
    victim.reload()
    assert victim.attrs["HostConfig"]["Memory"] == 256 * 1024 * 1024
    assert victim.attrs["HostConfig"]["MemorySwap"] == 256 * 1024 * 1024
    assert faults.undo_oom_container(client, record) is False
