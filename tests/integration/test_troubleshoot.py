"""playbooks/troubleshoot.yml on the whole sandbox, each symptom's fault staged for real (sandbox/faults.py).

The diagnosis names the cause; a run without troubleshoot_apply leaves the fault as it was (celery, static_files,
ssl_expired, db_connections, high_cpu); the run with it brings the service back, checked from outside Ansible (for
disk_full and high_memory only that run, to keep the suite short; db_connections and high_cpu stop at the diagnosis:
their remedies restart PostgreSQL or the web container). Every fault is undone in `finally`: the session's sandbox
is shared with the other tests.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import http.client
import json
import os
import shutil
import signal
import socket
import ssl
import urllib.request
from pathlib import Path

import docker
import edge
import faults
import psycopg2
import pytest
import redis
from ansible_run import run_playbook
from harness import SERVICES

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="the sandbox and the tmpfs of disk_full need root")

PLAYBOOK = "playbooks/troubleshoot.yml"


def troubleshoot(sandbox, symptom, *args, apply=False):
    """One run as ops type it: this host's `troubleshoot` run statistic (symptom, findings, applied, diagnosis)."""
    state_dir, state = sandbox
    extra = ["-e", "troubleshoot_apply=true"] if apply else []
    run = run_playbook(PLAYBOOK, "-i", "inventories/sandbox", "-e", "troubleshoot_symptom=" + symptom, *extra, *args,
                       env={"WEBSTACK_SANDBOX_STATE": str(state_dir)})
    assert run.rc == 0, run.stdout[-6000:] + run.stderr[-3000:]
    site = state["sandbox"]
    for secret in (site["postgres"]["password"], site["redis"]["password"], site["s3"]["secret_key"]):
        assert secret not in run.output
    return run.report["global_custom_stats"]["troubleshoot"]["sandbox"]


def found(summary, action=None, target=None):
    """The findings that call for `action` (on `target`), or with no action at all when action is None."""
    return [f for f in summary["findings"] if f["action"] == action and (target is None or f["target"] == target)]


@pytest.fixture
def engine(sandbox):
    client = docker.DockerClient(base_url=sandbox[1]["dockerd"]["base_url"])
    yield client
    client.close()


def test_a_missing_or_unknown_symptom_is_refused_before_anything_runs(sandbox):
    run = run_playbook(PLAYBOOK, "-i", "inventories/sandbox", "-e", "troubleshoot_symptom=slow_site",
                       env={"WEBSTACK_SANDBOX_STATE": str(sandbox[0])})
    assert run.rc != 0
    assert "Set troubleshoot_symptom to one of high_memory, high_cpu, db_connections, celery" in run.stdout
    assert "got 'slow_site'" in run.stdout and "webstack.ops.troubleshoot" not in run.stdout  # the role never started


def flower_workers(site):
    with urllib.request.urlopen(site["flower_url"] + "api/workers?status=1", timeout=20) as response:  # noqa: S310 - loopback
        return json.loads(response.read())


def test_celery_a_stopped_worker_is_named_then_started_and_back_in_flower(sandbox, engine):
    state = sandbox[1]
    stopped = faults.stop_container(engine, "celery_worker", timeout=1)  # SIGKILL after 1 s: the worker is down all the same
    try:
        diagnosed = troubleshoot(sandbox, "celery")
        cause = found(diagnosed, "start_container", "celery_worker")
        assert cause and cause[0]["level"] == "crit" and "celery_worker is exited" in cause[0]["cause"], diagnosed
        assert diagnosed["applied"] == [] and engine.containers.get("celery_worker").status == "exited"  # nothing changed

        applied = troubleshoot(sandbox, "celery", apply=True)
        assert applied["applied"] == [{"action": "start_container", "target": "celery_worker", "changed": True, "detail": None}]
        assert engine.containers.get("celery_worker").status == "running"
        assert any(name.startswith("worker@") and online for name, online in flower_workers(state["sandbox"]).items())
    finally:
        faults.start_container(engine, stopped)


def static_probe(site, path="/static/admin/css/base.css"):
    """(status, content type) of a static file through nginx, by the site's name at 127.0.0.1, certificate checked."""
    context = ssl.create_default_context(cafile=site["ca_root"])
    sock = context.wrap_socket(socket.create_connection(("127.0.0.1", site["ports"]["https"]), timeout=10), server_hostname=site["domain"])
    conn = http.client.HTTPConnection(site["domain"], site["ports"]["https"], timeout=10)
    conn.sock = sock  # connected and wrapped: http.client only speaks HTTP over it
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        response.read()
        return response.status, response.getheader("Content-Type")
    finally:
        conn.close()


def test_static_files_removed_are_named_then_collected_and_served_again(sandbox, engine):
    state = sandbox[1]
    site = state["sandbox"]
    static = Path(site["settings"]["dirs"]["static"])
    assert static_probe(site) == (200, "text/css")
    for entry in static.iterdir():
        shutil.rmtree(entry) if entry.is_dir() else entry.unlink()
    try:
        diagnosed = troubleshoot(sandbox, "static_files")
        cause = found(diagnosed, "collectstatic")
        assert cause and "is empty" in cause[0]["cause"], diagnosed
        assert any("nginx answers 404" in item for item in cause[0]["evidence"])
        assert not any(static.iterdir()) and static_probe(site)[0] == 404  # nothing changed

        applied = troubleshoot(sandbox, "static_files", apply=True)
        assert [(a["action"], a["changed"]) for a in applied["applied"]] == [("collectstatic", True)]
        assert "static files copied" in applied["applied"][0]["detail"]
        assert static_probe(site) == (200, "text/css")
    finally:
        if not (static / "admin/css/base.css").exists():
            engine.containers.get("website").exec_run(["python", "manage.py", "collectstatic", "--noinput"], workdir="/app")


def test_ssl_expired_lineage_is_named_then_renewed_and_the_fresh_certificate_served(sandbox):
    state_dir, state = sandbox
    site = state["sandbox"]
    nginx = SERVICES["nginx"].from_state(state_dir / "nginx", state["nginx"])
    before = edge.served_certificate("127.0.0.1", site["ports"]["https"], site["domain"])["serial"]
    record = faults.expired_lineage(nginx, site["domain"], state_dir / "certbot", https_port=site["ports"]["https"])
    try:
        diagnosed = troubleshoot(sandbox, "ssl_expired")
        cause = found(diagnosed, "renew_certificate", site["domain"])
        assert cause and cause[0]["level"] == "crit" and "expired on" in cause[0]["cause"], diagnosed
        assert record["serial"] in " ".join(cause[0]["evidence"])
        assert edge.served_certificate("127.0.0.1", site["ports"]["https"], site["domain"])["serial"] == record["serial"]  # unchanged

        applied = troubleshoot(sandbox, "ssl_expired", apply=True)
        assert applied["applied"][0]["action"] == "renew_certificate" and applied["applied"][0]["changed"] is True
        fresh = edge.served_certificate("127.0.0.1", site["ports"]["https"], site["domain"], cafile=site["ca_root"])  # verifies
        assert fresh["serial"] != record["serial"] and fresh["not_after"] > dt.datetime.now(dt.UTC) + dt.timedelta(days=365)
    finally:
        faults.undo_expired_lineage(nginx, record)  # the certificate of before: later tests find what state.json says
    assert edge.served_certificate("127.0.0.1", site["ports"]["https"], site["domain"])["serial"] == before


def test_disk_full_names_the_largest_entry_and_the_prune_keeps_the_projects_containers(sandbox, engine, tmp_path):
    """One run with troubleshoot_apply: its report names the full filesystem's largest entry and what Docker holds; the
    prune removes those and nothing of the project's."""
    disk = faults.fill_disk(tmp_path / "disk", size_mb=16, percent=95)
    stray = engine.containers.create("webstack-sandbox/base:bookworm", ["true"], name="troubleshoot-stray")
    dangling = stray.commit()  # an image without a tag that nothing uses
    project = sorted(c.name for c in engine.containers.list(all=True, filters={"label": "com.docker.compose.project=webstack"}))
    try:
        applied = troubleshoot(sandbox, "disk_full", "-e", json.dumps({"troubleshoot_disk_paths": [disk["mount"]]}), apply=True)
        full = found(applied)[0]
        assert full["level"] == "crit" and "%s is 9" % disk["mount"] in full["cause"] and "filler.bin" in full["cause"], applied
        prune = found(applied, "prune_docker")
        assert prune and "troubleshoot-stray" in prune[0]["cause"] and "1 dangling image(s)" in prune[0]["cause"]
        assert [a["action"] for a in applied["applied"]] == ["prune_docker"]
        with pytest.raises(docker.errors.NotFound):
            engine.containers.get("troubleshoot-stray")
        with pytest.raises(docker.errors.ImageNotFound):
            engine.images.get(dangling.id)
        assert sorted(c.name for c in engine.containers.list(all=True, filters={"label": "com.docker.compose.project=webstack"})) == project
        assert faults.disk_used_percent(disk["mount"]) >= 90  # what fills it is named, for a person to decide on
    finally:
        faults.undo_fill_disk(disk)
        for leftover in engine.containers.list(all=True, filters={"name": "troubleshoot-stray"}):
            leftover.remove(force=True)


def test_high_memory_a_full_redis_is_named_then_only_the_django_cache_is_cleared(sandbox):
    state = sandbox[1]
    login = state["sandbox"]["redis"]
    cache = redis.Redis(host="127.0.0.1", port=login["port"], password=login["password"], db=1)
    broker = redis.Redis(host="127.0.0.1", port=login["port"], password=login["password"], db=0)
    limit = int(cache.config_get("maxmemory")["maxmemory"])
    blob, number = os.urandom(1 << 20), 0
    broker_keys = set(broker.keys("*"))
    try:
        while cache.info("memory")["used_memory"] < 0.92 * limit:  # under maxmemory: nothing is evicted (allkeys-lru)
            cache.set("webstack:1:troubleshoot-fill:%d" % number, blob)
            number += 1
        applied = troubleshoot(sandbox, "high_memory", apply=True)  # one run: its diagnosis comes first
        cause = found(applied, "clear_cache")
        assert cause and "Redis uses 9" in cause[0]["cause"] and "maxmemory" in cause[0]["cause"], applied
        cleared = [a for a in applied["applied"] if a["action"] == "clear_cache"]
        assert cleared and cleared[0]["changed"] and cleared[0]["detail"].startswith("%d key(s) deleted" % number)
        assert not cache.keys("webstack:1:troubleshoot-fill:*") and cache.info("memory")["used_memory"] < 0.2 * limit
        assert broker_keys <= set(broker.keys("*"))  # Celery's broker (database 0) untouched
    finally:
        for key in cache.scan_iter("webstack:1:troubleshoot-fill:*"):
            cache.delete(key)
        cache.close()
        broker.close()


def test_db_connections_and_high_cpu_are_diagnosed_and_left_as_they_are(sandbox, engine):
    """Diagnosis only (their remedies restart PostgreSQL or the web container, not done to the shared stack here)."""
    state = sandbox[1]
    login = state["sandbox"]["postgres"]

    def connect():
        return psycopg2.connect(host=login["host"], port=login["port"], user=login["user"], password=login["password"],
                                dbname=login["db"], application_name="troubleshoot-test")

    probe = connect()
    probe.autocommit = True
    with probe.cursor() as cur:
        cur.execute("SELECT count(*), current_setting('max_connections')::int FROM pg_stat_activity WHERE backend_type = 'client backend'")
        used, most = cur.fetchone()
    held = [connect() for _number in range(max(0, most * 93 // 100 - used - 1))]  # 93% with pg_health's own connection
    blocked = faults.block_database(login, login["db"], "pages_pagevisit", seconds=120)
    try:  # by the time pg_health looks (after Ansible's start), the blocker has slept longer than half a second
        diagnosed = troubleshoot(sandbox, "db_connections", "-e", "troubleshoot_long_query_seconds=0.5")
        crit = found(diagnosed, "restart_container", "postgres_db")
        assert crit and crit[0]["level"] == "crit" and "of max_connections %d are in use" % most in crit[0]["cause"], diagnosed
        blocker = [f for f in found(diagnosed) if "pid %s" % _blocker_pid(probe) in f["cause"]]
        assert blocker and "pg_terminate_backend" in blocker[0]["remedy"] and "LOCK TABLE" in blocker[0]["evidence"][0]
        assert faults.lock_held(login, login["db"], "pages_pagevisit") and all(not c.closed for c in held)  # nothing changed
    finally:
        faults.undo_block_database(login, blocked)
        for conn in held:
            conn.close()
        probe.close()

    website = engine.containers.get("website")
    started = website.attrs["State"]["StartedAt"]
    hog = engine.api.exec_create(website.id, ["python", "-c", "import time\nend = time.time() + 60\nwhile time.time() < end:\n    pass\n"])
    engine.api.exec_start(hog["Id"], detach=True)  # one CPU busy until it is killed below (60 s at most)
    try:
        faults.wait_for(lambda: engine.api.exec_inspect(hog["Id"])["Pid"], 10, "the CPU hog to start")
        # 5%: on a busy 2-core machine the hog gets only its share of a CPU; the idle stack stays under 2%
        diagnosed = troubleshoot(sandbox, "high_cpu", "-e", "troubleshoot_cpu_percent=5")
        hot = found(diagnosed, "restart_container", "website")
        assert hot and "website uses" in hot[0]["cause"] and "CPU" in hot[0]["cause"], diagnosed
        website.reload()
        assert website.attrs["State"]["StartedAt"] == started  # not restarted
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(engine.api.exec_inspect(hog["Id"])["Pid"], signal.SIGKILL)


def _blocker_pid(conn):
    with conn.cursor() as cur:
        cur.execute("SELECT pid FROM pg_stat_activity WHERE application_name = %s", (faults.BLOCKER,))
        return cur.fetchone()[0]
