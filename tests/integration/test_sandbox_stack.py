"""The whole sandbox through `stackctl`, as `make sandbox-up` / `sandbox-down` run it."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import urllib.request
from pathlib import Path

import boto3
import docker
import edge
import faults
import orchestrate
import psycopg2
import psycopg2.errors
import redis
import zstandard
from ansible_run import ROOT, run_module, runner_run, sandbox_playbook, stackctl
from harness.base import proc_start_time, wait_until
from test_monthly_security import vulnerability_service  # noqa: F401  # pylint: disable=unused-import  # a fixture, used by name

GUIDE_CONTAINERS = ["celery_beat", "celery_worker", "flower", "postgres_db", "redis_cache", "website"]


def test_the_guides_containers_run_under_their_names(sandbox):
    _state_dir, state = sandbox
    client = docker.DockerClient(base_url=state["dockerd"]["base_url"])
    running = {c.name: c for c in client.containers.list()}
    assert sorted(running) == GUIDE_CONTAINERS
    for container in running.values():
        assert container.labels["com.docker.compose.project"] == "webstack"
        assert container.attrs["HostConfig"]["RestartPolicy"]["Name"] == "unless-stopped"
    client.close()


def test_health_through_nginx_with_the_certificate_certbot_got_from_pebble(sandbox):
    _state_dir, state = sandbox
    site = state["sandbox"]
    port = site["ports"]["https"]
    body = subprocess.run(["curl", "-sS", "--fail", "--resolve", "%s:%d:127.0.0.1" % (site["domain"], port),
                           "--cacert", site["ca_root"], "https://%s:%d/health/" % (site["domain"], port)],
                          capture_output=True, text=True, timeout=30, check=True).stdout
    assert json.loads(body) == {"status": "ok", "database": "ok", "cache": "ok"}
    served = edge.served_certificate("127.0.0.1", port, site["domain"], cafile=site["ca_root"])
    assert served["serial"] == site["certificate"]["serial"]


def test_flower_lists_the_worker_and_the_backup_bucket_exists(sandbox):
    _state_dir, state = sandbox
    site = state["sandbox"]
    with urllib.request.urlopen(site["flower_url"] + "api/workers?refresh=1", timeout=20) as response:  # noqa: S310 - loopback
        workers = json.loads(response.read())
    assert any(name.startswith("worker@") for name in workers)
    s3 = boto3.client("s3", endpoint_url=site["s3"]["endpoint_url"], aws_access_key_id=site["s3"]["access_key"],
                      aws_secret_access_key=site["s3"]["secret_key"], region_name="us-east-1")
    assert site["bucket"] in [b["Name"] for b in s3.list_buckets()["Buckets"]]


def test_up_again_reuses_everything(sandbox):
    state_dir, state = sandbox
    out = stackctl("up", "sandbox", state_dir=state_dir)
    for name in ("dockerd", "s3", "pebble", "nginx"):
        assert "%s: already running" % name in out
    again = json.loads((state_dir / "state.json").read_text())
    assert again["sandbox"]["containers"] == state["sandbox"]["containers"]


def _health(site):
    port = site["ports"]["https"]
    body = subprocess.run(["curl", "-sS", "--fail", "--resolve", "%s:%d:127.0.0.1" % (site["domain"], port),
                           "--cacert", site["ca_root"], "https://%s:%d/health/" % (site["domain"], port)],
                          capture_output=True, text=True, timeout=30, check=True).stdout
    return json.loads(body)["status"]


def _marker(site, write=False):
    pg = site["postgres"]
    with psycopg2.connect(host=pg["host"], port=pg["port"], user=pg["user"], password=pg["password"], dbname=pg["db"]) as conn, \
            conn.cursor() as cur:
        if write:
            cur.execute("CREATE TABLE kept_marker (note text); INSERT INTO kept_marker VALUES ('before down')")
        cur.execute("SELECT note FROM kept_marker")
        return cur.fetchall()


def test_down_stops_everything_and_up_after_a_killed_engine_keeps_the_data():
    state_dir = Path(tempfile.mkdtemp(prefix="webstack-test-sandbox-", dir="/var/tmp"))
    state_dir.chmod(0o711)
    try:
        stackctl("up", "sandbox", state_dir=state_dir)
        state = json.loads((state_dir / "state.json").read_text())
        _marker(state["sandbox"], write=True)
        # A run whose processes were ended: the engine stops without removing the containers (it restarts them by
        # their policy when it starts again), then `down` forgets state.json's entry. The database left on disk
        # keeps its passwords (settings.json beside it), and the leftover containers are replaced.
        os.kill(state["dockerd"]["pid"], signal.SIGTERM)
        assert wait_until(lambda: proc_start_time(state["dockerd"]["pid"]) is None, 60)
        stackctl("down", state_dir=state_dir)
        assert json.loads(stackctl("status", state_dir=state_dir)) == {}
        for name in ("dockerd", "s3", "pebble", "nginx"):
            assert proc_start_time(state[name]["pid"]) is None, name

        stackctl("up", "sandbox", state_dir=state_dir)
        state = json.loads((state_dir / "state.json").read_text())
        assert _marker(state["sandbox"]) == [("before down",)]
        assert _health(state["sandbox"]) == "ok"
    finally:
        stackctl("down", state_dir=state_dir)
    shutil.rmtree(state_dir, ignore_errors=True)


def test_kept_settings_reuse_passwords_replace_taken_ports_and_drop_data_without_settings(docker_engine, tmp_path):
    client = docker.DockerClient(base_url=docker_engine.base_url)
    project = "kept-settings-test"  # no container of this project exists: only the files are at stake
    try:
        data_dir = tmp_path / "stack"
        (data_dir / "pgdata").mkdir(parents=True)
        (data_dir / "pgdata" / "PG_VERSION").write_text("15\n")  # data from an older version, its passwords unknown
        first = orchestrate.kept_settings(client, data_dir, project=project)
        assert not (data_dir / "pgdata").exists()
        assert oct((data_dir / "settings.json").stat().st_mode & 0o777) == "0o600"

        with socket.socket() as taken:
            taken.bind(("127.0.0.1", first["ports"]["redis"]))
            taken.listen()
            again = orchestrate.kept_settings(client, data_dir, project=project)
        assert again["passwords"] == first["passwords"] and again["secret_key"] == first["secret_key"]
        assert again["ports"]["postgres"] == first["ports"]["postgres"]
        assert again["ports"]["redis"] != first["ports"]["redis"]
    finally:
        client.close()


def test_s3_backup_runs_pg_dump_inside_the_database_container(sandbox):
    """The guide's `docker exec postgres_db pg_dump`, streamed into the sandbox's bucket, and restorable."""
    _state_dir, state = sandbox
    site = state["sandbox"]
    pg, s3 = site["postgres"], site["s3"]
    if not _has_marker(site):
        _marker(site, write=True)
    result = run_module("webstack.ops.s3_backup", dict(
        container="postgres_db", docker_host=state["dockerd"]["base_url"], login_user=pg["user"], login_db=pg["db"],
        bucket=s3["bucket"], endpoint_url=s3["endpoint_url"], access_key=s3["access_key"], secret_key=s3["secret_key"],
        prefix="container-test/", format="custom"))
    assert result["changed"] is True, result.get("msg")
    client = boto3.client("s3", endpoint_url=s3["endpoint_url"], aws_access_key_id=s3["access_key"],
                          aws_secret_access_key=s3["secret_key"], region_name="us-east-1")
    data = client.get_object(Bucket=s3["bucket"], Key=result["key"])["Body"].read()
    assert hashlib.sha256(data).hexdigest() == result["sha256"]
    listing = subprocess.run(["pg_restore", "--list"], input=zstandard.ZstdDecompressor().stream_reader(data).read(),
                             capture_output=True, check=True).stdout.decode()
    assert "TABLE DATA public kept_marker" in listing and "TABLE DATA public pages_pagevisit" in listing

    # a container that does not exist: the message names it, nothing is uploaded
    missing = run_module("webstack.ops.s3_backup", dict(
        container="no_such_container", docker_host=state["dockerd"]["base_url"], login_db=pg["db"],
        bucket=s3["bucket"], endpoint_url=s3["endpoint_url"], access_key=s3["access_key"], secret_key=s3["secret_key"],
        prefix="container-missing/"))
    assert missing["failed"] and "container no_such_container" in missing["msg"]
    assert client.list_objects_v2(Bucket=s3["bucket"], Prefix="container-missing/").get("KeyCount", 0) == 0


def _has_marker(site):
    try:
        _marker(site)
    except psycopg2.errors.UndefinedTable:
        return False
    return True


def test_backup_restore_and_audits_through_the_playbooks_on_the_sandbox(sandbox, vulnerability_service, tmp_path):  # noqa: F811
    """The guide's backup and recovery on the whole stack, as ops run it: pg_dump and pg_restore in postgres_db,
    the app containers stopped for the restore and started again, the site healthy after."""
    state_dir, state = sandbox
    site = state["sandbox"]
    pg, s3 = site["postgres"], site["s3"]
    subprocess.run([sys.executable, str(ROOT / "sandbox/seed.py"), "--state-dir", str(state_dir)], check=True, capture_output=True, timeout=600)
    sandbox_playbook("backup.yml", state_dir)
    client = boto3.client("s3", endpoint_url=s3["endpoint_url"], aws_access_key_id=s3["access_key"],
                          aws_secret_access_key=s3["secret_key"], region_name="us-east-1")
    keys = [item["Key"] for item in client.list_objects_v2(Bucket=s3["bucket"], Prefix="postgres/").get("Contents", [])]
    assert any(key.endswith(".sql.zst") for key in keys) and any(key.endswith(".manifest.json") for key in keys)

    def query(statement):
        with psycopg2.connect(host=pg["host"], port=pg["port"], user=pg["user"], password=pg["password"], dbname=pg["db"]) as conn, \
                conn.cursor() as cur:
            cur.execute(statement)
            return cur.fetchall() if cur.description else None

    query("CREATE TABLE made_after_the_backup (note text)")
    engine = docker.DockerClient(base_url=state["dockerd"]["base_url"])
    website_started = engine.containers.get("website").attrs["State"]["StartedAt"]
    out = sandbox_playbook("restore.yml", state_dir, "-e", "restore_force=true")
    assert query("SELECT to_regclass('public.made_after_the_backup')") == [(None,)]  # the database is the backup's again
    website = engine.containers.get("website")
    assert website.status == "running" and website.attrs["State"]["StartedAt"] != website_started  # stopped, then started
    assert _health(site) == "ok"
    engine.close()

    # monthly.yml's pip-audit asks pypi.org: here it goes to the loopback stand-in of test_monthly_security.
    proxy, ca_bundle, _service = vulnerability_service
    audit = {"monthly_security_audit_cache_dir": str(tmp_path / "pip-audit-cache"),
             "monthly_security_audit_environment": {"HTTPS_PROXY": proxy, "https_proxy": proxy, "NO_PROXY": "",
                                                    "no_proxy": "", "REQUESTS_CA_BUNDLE": ca_bundle}}
    outputs = [out, sandbox_playbook("monthly.yml", state_dir, "-e", json.dumps(audit))]
    assert "dependency_vulnerable" in outputs[-1] and "CVE-0000-0001" in outputs[-1]  # the website container's Django
    assert query("SELECT count(*) FROM pg_database WHERE datname = 'webstack_backup_verify'") == [(0,)]  # scratch dropped
    outputs.append(sandbox_playbook("quarterly.yml", state_dir))
    for secret in (pg["password"], s3["secret_key"]):
        assert all(secret not in text for text in outputs)


def _daily(state_dir, *args, **env):
    """daily.yml on the sandbox through ansible-runner, as AWX runs it: (exit status, this host's summary from the run
    statistics, which AWX keeps as the job's artifacts, the output)."""
    run = runner_run("playbooks/daily.yml", *args, inventory=ROOT / "inventories/sandbox", timeout=600,
                     env=dict(env, WEBSTACK_SANDBOX_STATE=str(state_dir)))
    summary = run.stats.get("artifact_data", {}).get("daily_checks", {}).get("sandbox")
    assert summary is not None and run.status == ("successful" if run.rc == 0 else "failed"), run.stdout[-6000:]
    return run.rc, summary, run.stdout


def test_daily_checks_are_quiet_on_the_healthy_sandbox_and_critical_on_staged_faults(sandbox):
    """daily.yml as ops run it: every check on the whole stack, then a 503 /health/, a stopped worker and an error
    burst staged for real (sandbox/faults.py), seen first under --check (nothing written), then for real."""
    state_dir, state = sandbox
    site = state["sandbox"]
    rc, healthy, out = _daily(state_dir)
    assert rc == 0 and [a for a in healthy["alerts"] if a["level"] == "crit"] == [], out[-6000:]
    marks = state_dir / "checks"
    assert {p.name for p in marks.iterdir()} >= {"container_status.json", "log_scan.json"}

    engine = docker.DockerClient(base_url=state["dockerd"]["base_url"])
    switch = faults.health_fail(Path(site["settings"]["dirs"]["faults"]) / "health-fail")
    stopped = faults.stop_container(engine, "celery_worker", timeout=5)
    faults.error_burst("http://127.0.0.1:%d/error/" % site["settings"]["ports"]["web"], count=5)
    try:
        before = {p.name: p.read_bytes() for p in marks.iterdir()}
        rc, checked, out = _daily(state_dir, "--check", "-e", "daily_checks_health_delay=0.5")
        assert {p.name: p.read_bytes() for p in marks.iterdir()} == before  # --check keeps the marks
        reports = state_dir / "reports"
        rc, found, out = _daily(state_dir, "-e", "daily_checks_health_delay=0.5",
                                ANSIBLE_CALLBACKS_ENABLED="webstack.ops.maintenance_report", WEBSTACK_REPORT_DIR=str(reports))
        assert rc != 0 and "critical:" in out  # the play fails on critical alerts, after reporting them
        board = json.loads((reports / "report.json").read_text())["hosts"]["sandbox"]
        assert board["checks"]["http_check"]["level"] == "crit" and board["checks"]["container_status"]["level"] == "crit"
        assert {"http_down", "container_down", "log_error"} <= {a["check"] for a in board["alerts"]}
        assert "celery_worker" in (reports / "report.html").read_text()  # the page names the stopped container
        for summary in (checked, found):
            seen = {(a["source"], a["check"], a["level"]) for a in summary["alerts"]}
            assert {("health", "http_down", "crit"), ("containers", "container_down", "crit")} <= seen, summary
            assert any(source == "logs" and check == "log_error" for source, check, _level in seen), summary
            assert any(source == "celery" and level == "crit" for source, _check, level in seen), summary
        assert site["postgres"]["password"] not in out and site["redis"]["password"] not in out
    finally:
        faults.start_container(engine, stopped)
        faults.undo_health_fail(switch)
        engine.close()
    rc, again, out = _daily(state_dir, "-e", "daily_checks_fail_on_crit=false")
    assert rc == 0 and not any(a["source"] == "health" for a in again["alerts"]), out[-4000:]

    # The weekly cache care through the app's own command in the web container: a cached page is gone after it.
    cache = redis.Redis(host="127.0.0.1", port=site["redis"]["port"], password=site["redis"]["password"], db=1)
    cache.set("webstack:1:views.decorators.cache.cache_page.test", b"cached")
    weekly = sandbox_playbook("weekly.yml", state_dir, "-e", "weekly_cache_method=command")
    assert '"command_output": "cache cleared: 1 keys removed' in weekly, weekly[-3000:]  # the app's own report
    assert cache.exists("webstack:1:views.decorators.cache.cache_page.test") == 0
    cache.close()
