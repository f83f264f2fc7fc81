"""playbooks/daily.yml (role daily_checks) on one host in the web, db and cache groups, against the session's real
PostgreSQL and Redis, a real HTTP server for /health/ and a real log file. No Docker engine here: the container check
points at a port where none answers, which must surface as a critical alert while every other check still runs.
(The whole stack with its staged faults: test_sandbox_stack.py.)"""

from __future__ import annotations

import json
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from ansible_run import run_playbook


class Health(BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        self.send_response(200 if self.path == "/health/" else 404)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - http.server's signature
        pass


@pytest.fixture
def health_url():
    server = ThreadingHTTPServer(("127.0.0.1", 0), Health)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield "http://127.0.0.1:%d/health/" % server.server_address[1]
    server.shutdown()
    server.server_close()


def inventory(tmp_path, pg_db, redis_server, *, health_url, free_port, log):
    host = dict(
        ansible_connection="local", ansible_python_interpreter=sys.executable, prerequisites_method="none",
        webstack_postgres_host=pg_db.server.host, webstack_postgres_port=pg_db.server.port,
        webstack_postgres_user=pg_db.server.user, webstack_postgres_password=pg_db.server.password,
        webstack_postgres_db=pg_db.name,
        webstack_redis_host=redis_server.host, webstack_redis_port=redis_server.port,
        webstack_redis_password=redis_server.password,
        webstack_health_url=health_url, webstack_docker_host="tcp://127.0.0.1:%d" % free_port,
        webstack_log_paths=[str(log)], webstack_state_dir=str(tmp_path / "marks"),
        daily_checks_log_containers=[], daily_checks_disk_paths=[str(tmp_path)],
    )
    path = tmp_path / "inventory.json"
    path.write_text(json.dumps({"all": {"children": {group: {"hosts": {"box": host}} for group in ("web", "db", "cache")}}}))
    return str(path)


def summary(run):
    return run.report["global_custom_stats"]["daily_checks"]["box"]


def test_daily_playbook_runs_every_check_reports_and_fails_on_critical(tmp_path, pg_db, redis_server, health_url, free_port):
    log = tmp_path / "django.log"
    log.write_text("".join("2026-11-29 06:00:0%d,123 ERROR django.request Internal Server Error: /error/\n" % i for i in range(3)))
    inv = inventory(tmp_path, pg_db, redis_server, health_url=health_url, free_port=free_port, log=log)

    run = run_playbook("playbooks/daily.yml", "-i", inv)
    assert run.rc != 0, run.output  # the unreachable Docker engine is critical
    found = summary(run)
    assert found["level"] == "crit"
    by_source = {}
    for item in found["alerts"]:
        by_source.setdefault(item["source"], []).append(item)
    assert [a["check"] for a in by_source["containers"]] == ["containers_unavailable"]
    assert "the Docker engine tcp://127.0.0.1:%d did not answer" % free_port in by_source["containers"][0]["message"]
    assert [a["value"] for a in by_source["logs"] if a["check"] == "log_error"] == [3], found  # the three ERROR lines
    assert not {"health", "database", "redis", "disk"} & set(by_source), found  # those ran and found nothing
    waited = run.task_result("Wait for the checks started in the background", "box")["results"]
    ran = {result["item"]["key"]: result for result in waited}
    assert sorted(ran) == ["containers", "database", "disk", "health", "logs", "redis"]  # no Flower, no broker: no Celery
    assert ran["health"]["status"] == 200 and ran["database"]["database_size"] > 0 and ran["redis"]["version"]
    assert "critical: could not check containers" in run.output
    changed = [t["task"]["name"] for play in run.report["plays"] for t in play["tasks"] if t["hosts"].get("box", {}).get("changed")]
    assert changed == []  # the checks only read
    assert pg_db.server.password not in run.output and redis_server.password not in run.output
    marks = {p.name: p.read_bytes() for p in (tmp_path / "marks").iterdir()}
    assert "log_scan.json" in marks

    log.write_text(log.read_text() + "2026-11-29 07:00:00,000 ERROR django.request one more\n")
    check = run_playbook("playbooks/daily.yml", "-i", inv, "--check", "-e", "daily_checks_fail_on_crit=false")
    assert check.rc == 0, check.output  # only reported
    assert {p.name: p.read_bytes() for p in (tmp_path / "marks").iterdir()} == marks  # --check moves no mark
    errors = [a["value"] for a in summary(check)["alerts"] if a["check"] == "log_error"]
    assert errors == [1]  # only the line added since the last run
