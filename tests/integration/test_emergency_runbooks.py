"""The emergency runbooks on the whole sandbox, their faults staged for real (sandbox/faults.py), as ops run them:
under --check first (nothing changes), then for real (the stack is back). Each test leaves the stack healthy."""

from __future__ import annotations

import concurrent.futures
import json
import subprocess
import tarfile
from pathlib import Path

import containers
import docker
import faults
import psycopg2
from ansible_run import ROOT, ansible_env, sandbox_playbook

APP = ["website", "celery_worker", "celery_beat", "flower"]
GUIDE_CONTAINERS = ["postgres_db", "redis_cache", *APP]


def _runbook(state_dir, playbook, stat, *args):
    """playbooks/<playbook> on the sandbox: (exit status, this host's run statistic `stat` or None, the output)."""
    proc = subprocess.run([str(ROOT / ".venv/bin/ansible-playbook"), str(ROOT / "playbooks" / playbook), *args], cwd=ROOT,
                          env=ansible_env(WEBSTACK_SANDBOX_STATE=str(state_dir), ANSIBLE_STDOUT_CALLBACK="ansible.posix.json"),
                          capture_output=True, text=True, timeout=600, check=False)
    report = json.loads(proc.stdout)
    return proc.returncode, report.get("global_custom_stats", {}).get(stat, {}).get("sandbox"), proc.stdout + proc.stderr


def _started_at(engine, name):
    """Docker's StartedAt (UTC, nanoseconds, trailing zeros trimmed) as a comparable (seconds, nanoseconds) pair."""
    seconds, _dot, fraction = engine.containers.get(name).attrs["State"]["StartedAt"].rstrip("Z").partition(".")
    return seconds, int((fraction + "000000000")[:9])


def _running(engine, name):
    return engine.containers.get(name).attrs["State"]["Running"]


def _secrets(site):
    settings = site["settings"]
    return [site["postgres"]["password"], site["redis"]["password"], site["s3"]["secret_key"], settings["secret_key"],
            settings["passwords"]["admin"]]


def _healthy_again(engine, records):
    """Undo of the stopped containers: each started if still down, then waited for until healthy."""
    for record in records:
        faults.start_container(engine, record)
    for name in GUIDE_CONTAINERS:
        container = engine.containers.get(name)
        if container.attrs["Config"].get("Healthcheck"):
            containers.wait_healthy(container, timeout=120)


def test_outage_runbook_diagnoses_under_check_then_starts_the_stack_in_dependency_order(sandbox):
    state_dir, state = sandbox
    site = state["sandbox"]
    engine = docker.DockerClient(base_url=state["dockerd"]["base_url"])
    down = ["postgres_db", "website", "celery_worker"]  # in the runbook's dependency order
    # docker stop, all at once; the app's containers are killed after a second (the database shuts down cleanly)
    with concurrent.futures.ThreadPoolExecutor(len(down)) as pool:
        records = list(pool.map(lambda name: faults.stop_container(engine, name, timeout=10 if name == "postgres_db" else 1), down))
    try:
        rc, checked, out = _runbook(state_dir, "emergency_outage.yml", "emergency_outage", "--check")
        assert rc == 0, out[-6000:]
        assert checked["down"] == down and checked["would_start"] == down and checked["started"] == []
        assert checked["bundle"] is None and not (state_dir / "bundles").exists()  # --check writes nothing, anywhere
        assert not any(_running(engine, name) for name in down)  # and starts nothing
        assert checked["health_ok"] is False and checked["nginx"]["config_ok"] and checked["nginx"]["running"]

        rc, done, out = _runbook(state_dir, "emergency_outage.yml", "emergency_outage", "-e", "emergency_outage_health_delay=1")
        assert rc == 0, out[-6000:]
        assert done["down"] == down and done["started"] == down and done["start_failed"] == []
        started = [_started_at(engine, name) for name in down]
        assert started == sorted(started)  # the database first, then the web app, then the worker
        assert all(_running(engine, name) for name in GUIDE_CONTAINERS) and done["health_ok"] is True

        bundle = Path(done["bundle"])
        assert bundle.parent == state_dir / "bundles" and bundle.name.endswith(".tar.gz")
        with tarfile.open(bundle) as tar:
            members = {m.name: tar.extractfile(m).read() for m in tar.getmembers()}
        assert {"containers/%s.log" % name for name in GUIDE_CONTAINERS} | {"files/error.log", "containers.json", "info.json"} \
            <= set(members)
        assert b"database system is shut down" in members["containers/postgres_db.log"]  # the stopped database's last words
        stopped = {c["name"]: c["status"] for c in json.loads(members["containers.json"])}  # read before the restart
        assert all(stopped[name] == "exited" for name in down)
        assert not any(secret.encode() in data for secret in _secrets(site) for data in members.values())
        assert not any(secret in out for secret in _secrets(site))
    finally:
        _healthy_again(engine, records)
        engine.close()


def test_db_restore_runbook_refuses_without_confirmation_then_brings_a_dropped_table_back(sandbox):
    state_dir, state = sandbox
    site = state["sandbox"]
    pg = site["postgres"]

    def query(statement):
        with psycopg2.connect(host=pg["host"], port=pg["port"], user=pg["user"], password=pg["password"], dbname=pg["db"]) as conn, \
                conn.cursor() as cur:
            cur.execute(statement)
            return cur.fetchall() if cur.description else None

    query("DROP EXTENSION IF EXISTS amcheck")  # as a fresh database is: pg_amcheck's extension is the runbook's to create
    query("INSERT INTO blog_blogcomment (post_slug, author_name, author_email, content, is_approved, created_at) "
          "SELECT 'emergency-' || g, 'reader', 'reader@example.com', 'comment ' || g, true, now() FROM generate_series(1, 50) AS g")
    comments = query("SELECT count(*) FROM blog_blogcomment")
    sandbox_playbook("backup.yml", state_dir)
    engine = docker.DockerClient(base_url=state["dockerd"]["base_url"])
    website_started = _started_at(engine, "website")
    query("DROP TABLE blog_blogcomment")
    try:
        # the refusal and --check at once: neither may change anything
        with concurrent.futures.ThreadPoolExecutor(2) as pool:
            refusal = pool.submit(_runbook, state_dir, "emergency_db_restore.yml", "emergency_db_restore")
            rc, checked, checked_out = _runbook(state_dir, "emergency_db_restore.yml", "emergency_db_restore", "--check")
        assert rc == 0, checked_out[-6000:]
        rc, refused, refused_out = refusal.result()
        assert rc != 0 and refused is None and "-e emergency_db_restore_confirm=true" in refused_out, refused_out[-4000:]
        assert checked["diagnosis"]["reachable"] and checked["diagnosis"]["missing_tables"] == ["blog_blogcomment"]
        assert checked["backup"].startswith("postgres/webstack_") and checked["restored"] is False
        assert any(a["check"] == "missing_tables" and a["level"] == "crit" for a in checked["alerts"])
        assert checked["diagnosis"]["amcheck"]["verdict"] == "amcheck_missing"  # --check creates no extension
        # neither the refusal nor --check changed anything
        assert query("SELECT to_regclass('public.blog_blogcomment')") == [(None,)]
        assert _started_at(engine, "website") == website_started

        rc, done, out = _runbook(state_dir, "emergency_db_restore.yml", "emergency_db_restore", "-e", "emergency_db_restore_confirm=true",
                                 "-e", "emergency_db_restore_amcheck_install_missing=true", "-e", "emergency_db_restore_health_delay=1")
        assert rc == 0, out[-6000:]
        assert query("SELECT count(*) FROM blog_blogcomment") == comments  # the table is back with its rows
        assert done["restored"] and done["checksum_verified"] and done["backup"] == checked["backup"]
        assert done["containers_stopped_and_started"] == ["website", "celery_worker", "celery_beat"]
        assert _running(engine, "website") and _started_at(engine, "website") > website_started
        assert done["django_checks"] == {"check": 0, "migrate --check": 0} and done["health_ok"] is True
        assert done["diagnosis"]["amcheck"]["verdict"] == "clean" and done["diagnosis"]["amcheck"]["installed_extension"]
        assert not any(secret in text for secret in _secrets(site) for text in (out, checked_out))
    finally:
        if query("SELECT to_regclass('public.blog_blogcomment')") == [(None,)]:  # the runbook failed: put the table back
            sandbox_playbook("restore.yml", state_dir, "-e", "restore_force=true")
        engine.close()
