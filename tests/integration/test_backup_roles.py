"""The backup, restore, monthly and quarterly playbooks against the real PostgreSQL and SeaweedFS, through ansible-playbook."""

from __future__ import annotations

import dataclasses
import datetime
import hashlib
import http.server
import json
import os
import threading
import uuid
from pathlib import Path
from typing import Any

import boto3
import psycopg2
import pytest
from ansible_collections.webstack.ops.plugins.module_utils import _backup_catalog as catalog
from ansible_run import local_inventory, run_playbook, task_title
from psycopg2 import sql

HOST = "dbhost"
GUIDE_TABLES = {"blog_blogcomment": 30, "pages_pagevisit": 500, "utils_requestfingerprint": 200, "utils_lighthouseresult": 5}


@pytest.fixture(scope="module")
def bucket(s3_server):
    """One bucket for the module (every bucket costs SeaweedFS a volume); each test works under a prefix of its own."""
    client = boto3.client("s3", endpoint_url=s3_server.endpoint_url, aws_access_key_id=s3_server.access_key,
                          aws_secret_access_key=s3_server.secret_key, region_name="us-east-1")
    name = "test-roles-%s" % uuid.uuid4().hex[:8]
    client.create_bucket(Bucket=name)
    return client, name


@pytest.fixture
def site(pg_db):
    """pg_db with the guide's four tables and some rows in each."""
    for table, rows in GUIDE_TABLES.items():
        ident = sql.Identifier(table)
        pg_db.execute(sql.SQL("CREATE TABLE {} (id bigserial PRIMARY KEY, note text, created_at timestamptz DEFAULT now())").format(ident))
        pg_db.execute(sql.SQL("INSERT INTO {} (note) SELECT 'row ' || g FROM generate_series(1, %s) g").format(ident), (rows,))
    return pg_db


@pytest.fixture
def stack(tmp_path, site, s3_server, bucket):
    """The inventory, the database, the bucket and the prefix of one test."""
    client, name = bucket
    return Stack(tmp_path, site, s3_server, client, name, "t%s/postgres/" % uuid.uuid4().hex[:8])


@dataclasses.dataclass
class Stack:
    tmp_path: Path
    db: Any
    s3_server: Any
    client: Any
    bucket: str
    prefix: str

    def inventory(self, **host_vars):
        """A one-host inventory in group db that reaches the test servers the way production vars do."""
        values = dict(
            webstack_postgres_host=self.db.server.host,
            webstack_postgres_port=self.db.server.port,
            webstack_postgres_user=self.db.server.user,
            webstack_postgres_password=self.db.server.password,
            webstack_postgres_db=self.db.name,
            webstack_s3_endpoint_url=self.s3_server.endpoint_url,
            webstack_s3_access_key=self.s3_server.access_key,
            webstack_s3_secret_key=self.s3_server.secret_key,
            webstack_s3_bucket=self.bucket,
            webstack_backup_prefix=self.prefix,
            restore_stop_containers=[],
        )
        values.update(host_vars)
        directory = self.tmp_path / ("inventory-%s" % uuid.uuid4().hex[:6])
        directory.mkdir()
        return local_inventory(directory, "db", HOST, **values)

    def run(self, playbook, *args, ok=True, **host_vars):
        run = run_playbook("playbooks/%s.yml" % playbook, "-i", self.inventory(**host_vars), *args)
        assert (run.rc == 0) is ok, run.output
        assert self.s3_server.secret_key not in run.output and self.db.server.password not in run.output
        return run

    def objects(self):
        pages = self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=self.prefix)
        return sorted(item["Key"] for page in pages for item in page.get("Contents", []))

    def backups(self):
        return [k for k in self.objects() if not k.endswith(catalog.MANIFEST_SUFFIX)]

    def fetch(self, key):
        return self.client.get_object(Bucket=self.bucket, Key=key)["Body"].read()

    def put_old_backup(self, days):
        """A small fake backup with its manifest, `days` old."""
        started = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(days=days)
        key = catalog.backup_key(self.prefix, self.db.name, "custom", "zstd", started)
        self.client.put_object(Bucket=self.bucket, Key=key, Body=b"old")
        self.client.put_object(Bucket=self.bucket, Key=catalog.manifest_key(key),
                               Body=catalog.manifest_body(key=key, size=3, sha256=hashlib.sha256(b"old").hexdigest()))
        return key

    def count(self, table, dbname=None):
        conninfo = dict(self.db.conninfo, dbname=dbname or self.db.name)
        with psycopg2.connect(**conninfo) as conn, conn.cursor() as cur:
            cur.execute(sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(table)))
            return cur.fetchone()[0]

    def databases(self):
        return {row[0] for row in self.db.execute("SELECT datname FROM pg_database")}


def messages(run, task_name):
    """The msg of a debug task, as a list of lines (the json callback's result; one result per loop item)."""
    result = run.task_result(task_name, HOST)
    if "results" in result:
        return [r["msg"] for r in result["results"]]
    return result["msg"] if isinstance(result["msg"], list) else [result["msg"]]


def changed_tasks(run):
    return [task_title(t) for play in run.report["plays"] for t in play["tasks"] if t["hosts"].get(HOST, {}).get("changed")]


def stats(run, name):
    return run.report["global_custom_stats"][name][HOST]


# backup


def test_backup_check_mode_writes_nothing_then_the_backup_lands_in_s3(stack):
    check = stack.run("backup", "--check")
    assert stack.objects() == []
    [line] = messages(check, "Report the backup")[:1]
    assert line.startswith("would write s3://%s/%s%s_" % (stack.bucket, stack.prefix, stack.db.name))

    run = stack.run("backup")
    last = stats(run, "backup_last")
    assert stack.backups() == [last["key"]] and catalog.manifest_key(last["key"]) in stack.objects()
    body = stack.fetch(last["key"])
    assert len(body) == last["size"] and hashlib.sha256(body).hexdigest() == last["sha256"]
    manifest = json.loads(stack.fetch(catalog.manifest_key(last["key"])))
    assert manifest["sha256"] == last["sha256"] and manifest["database"] == stack.db.name
    assert "wrote s3://%s/%s" % (stack.bucket, last["key"]) in messages(run, "Report the backup")[0]
    assert changed_tasks(run) == ["Dump the database into S3"]

    # Every run is a new backup: a backup is never "already done".
    again = stack.run("backup")
    assert len(stack.backups()) == 2 and stats(again, "backup_last")["key"] != last["key"]


def test_backup_prunes_past_retention_but_keeps_the_minimum(stack):
    old = [stack.put_old_backup(days) for days in (40, 50, 60)]
    check = stack.run("backup", "--check", backup_keep_min=2)
    assert set(old) <= set(stack.backups()) and len(stack.backups()) == 3
    assert "would prune 2 backup(s) older than 30 days" in " ".join(messages(check, "Report the backup"))

    run = stack.run("backup", backup_keep_min=2)
    # The new backup and the newest old one are the two kept at least; the other old ones are gone with their manifests.
    assert stack.backups() == sorted([stats(run, "backup_last")["key"], old[0]])
    assert sorted(stats(run, "backup_last")["pruned"]) == sorted(old[1:])
    assert not any(k.startswith(old[2]) for k in stack.objects())


def test_backup_without_prune_keeps_everything(stack):
    old = stack.put_old_backup(400)
    stack.run("backup", backup_prune=False, backup_keep_min=1)
    assert old in stack.backups() and len(stack.backups()) == 2


def test_backup_failure_names_the_cause_and_leaves_nothing(stack):
    missing = "no-such-bucket-%s" % uuid.uuid4().hex[:6]
    run = stack.run("backup", ok=False, webstack_s3_bucket=missing)
    assert "failed on bucket %s" % missing in run.output and "check the bucket name" in run.output
    run = stack.run("backup", ok=False, webstack_postgres_db="no_such_db")
    assert "no_such_db" in run.output and stack.objects() == []


def test_backup_refuses_an_empty_bucket_before_anything_runs(stack):
    run = stack.run("backup", ok=False, webstack_s3_bucket="")
    assert "backup needs backup_s3_bucket" in run.output


def test_backup_schedule_installs_a_nightly_cron_file(stack, tmp_path, monkeypatch):
    # ansible.builtin.cron wants a crontab binary even when it writes a cron file directly; this machine
    # runs no cron, so a stand-in that is never called (it fails if it is) goes on the PATH.
    fake_bin = tmp_path / "bin"
    fake_bin.mkdir()
    (fake_bin / "crontab").write_text("#!/bin/sh\necho 'crontab must not be called' >&2\nexit 1\n")
    (fake_bin / "crontab").chmod(0o755)
    monkeypatch.setenv("PATH", "%s:%s" % (fake_bin, os.environ["PATH"]))
    cron_file = tmp_path / "cron.d" / "webstack-ops-backup"
    cron_file.parent.mkdir()
    options = dict(backup_run=False, backup_schedule=True, backup_schedule_cron_file=str(cron_file),
                   backup_schedule_checkout="/srv/webstack ops", backup_schedule_inventory="inventories/prod")
    check = stack.run("backup", "--check", **options)
    assert not cron_file.exists() and changed_tasks(check) == ["Schedule the nightly backup"]

    run = stack.run("backup", **options)
    assert changed_tasks(run) == ["Schedule the nightly backup"] and stack.objects() == []
    [line] = [line for line in cron_file.read_text().splitlines() if line and not line.startswith("#")]
    assert line.startswith("0 2 * * * root cd '/srv/webstack ops' && flock -n /run/lock/webstack-ops-backup.lock "
                           ".venv/bin/ansible-playbook playbooks/backup.yml -i inventories/prod --limit dbhost")
    assert line.endswith(">> /var/log/webstack-ops-backup.log 2>&1")

    assert changed_tasks(stack.run("backup", "--check", **options)) == []
    assert changed_tasks(stack.run("backup", **options)) == []
    stack.run("backup", backup_schedule_state="absent", **options)
    assert not cron_file.exists() or "ansible-playbook" not in cron_file.read_text()


# monthly: backup verification


def test_monthly_verify_restores_into_a_scratch_database_and_drops_it(stack):
    stack.run("backup")
    scratch = "%s_backup_verify" % stack.db.name
    check = stack.run("monthly", "--check")
    assert scratch not in stack.databases()
    assert messages(check, "Report the verification")[0].startswith("would restore %s%s_" % (stack.prefix, stack.db.name))

    run = stack.run("monthly")
    verify = stats(run, "monthly_backup_verify")
    assert verify["checksum_verified"] is True and verify["dropped"] is True
    assert verify["row_counts"] == {"public.%s" % t: n for t, n in GUIDE_TABLES.items()}
    assert scratch not in stack.databases()
    lines = messages(run, "Report the verification")
    assert "checksum verified; 4 table(s), 735 rows; scratch database dropped" in lines[0]
    assert "public.pages_pagevisit: 500" in lines

    stack.run("monthly")  # again: same result, nothing left behind
    assert scratch not in stack.databases()


def test_monthly_verify_fails_when_a_table_is_short_and_drops_the_scratch(stack):
    stack.run("backup")
    run = stack.run("monthly", ok=False, monthly_backup_verify_expect={"pages_pagevisit": 501, "blog_blogcomment": 1})
    assert "Backup verification failed" in run.output and "pages_pagevisit" in run.output
    assert "%s_backup_verify" % stack.db.name not in stack.databases()


def test_monthly_verify_without_a_backup_names_the_cause(stack):
    run = stack.run("monthly", ok=False)
    assert "Backup verification failed" in run.output and stack.prefix in run.output


def test_monthly_verify_can_keep_the_scratch_and_compare_with_the_source(stack):
    stack.run("backup")
    scratch = "keep_%s" % uuid.uuid4().hex[:6]
    stack.run("monthly", monthly_backup_verify_scratch_db=scratch, monthly_backup_verify_keep_scratch=True,
              monthly_backup_verify_compare_with_source=True)
    try:
        assert stack.count("pages_pagevisit", scratch) == 500
    finally:
        stack.db.execute('DROP DATABASE "%s"' % scratch)


# quarterly: backup audit


def test_quarterly_audit_reports_and_retention_holds(stack):
    stack.run("backup")
    last = stats(stack.run("backup"), "backup_last")
    check = stack.run("quarterly", "--check")
    run = stack.run("quarterly")
    assert changed_tasks(run) == [] and changed_tasks(check) == []
    listing = run.task_result("List the backups with their age, size and checksum", HOST)  # visible to the report
    assert listing["count"] == 2 and listing["alerts"] == [] and "censored" not in listing
    audit = stats(run, "quarterly_audit_backups")
    assert audit["count"] == 2 and audit["alerts"] == [] and audit["retention"]["holds"] is True
    assert audit["newest"]["key"] == stack.backups()[-1] and audit["oldest"]["key"] == stack.backups()[0]
    assert audit["newest"]["sha256"] == last["sha256"] and audit["newest"]["key"] == last["key"]
    lines = messages(run, "Report the backup audit")
    assert lines[0].startswith("2 backup(s) (2 complete), ")
    assert "retention (30 days, keep 7): holds" in lines
    [trend] = messages(run, "Report the size trend per backup name")
    assert trend.startswith("%s: 2 complete backup(s), newest " % stack.db.name) and "against the one before" in trend


def test_quarterly_audit_shows_retention_not_holding_and_fails_on_crit(stack):
    [stack.put_old_backup(days) for days in range(40, 50)]
    run = stack.run("quarterly", ok=False)
    audit = stats(run, "quarterly_audit_backups")
    assert audit["retention"]["would_delete"] == 3 and audit["retention"]["holds"] is False
    assert [a["check"] for a in audit["alerts"]] == ["backup_age"]
    assert "Critical backup alert(s): newest complete backup of %s is" % stack.db.name in run.output
    assert "3 backup(s) past it are still stored" in " ".join(messages(run, "Report the backup audit"))

    relaxed = stack.run("quarterly", quarterly_audit_fail_on_alerts=False)
    assert "CRIT: newest complete backup" in " ".join(messages(relaxed, "Report the backup audit"))


def test_quarterly_audit_of_an_empty_prefix_is_critical(stack):
    run = stack.run("quarterly", ok=False)
    assert "no backup of %s under s3://%s/%s" % (stack.db.name, stack.bucket, stack.prefix) in run.output


# restore


@pytest.fixture
def health_server():
    """A local /health/ answering the status in .status (200 at first); its URL."""
    class Handler(http.server.BaseHTTPRequestHandler):
        status = 200

        def do_GET(self):  # noqa: N802 - http.server's name
            self.send_response(Handler.status if self.path == "/health/" else 404)
            self.end_headers()
            self.wfile.write(b"ok")

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    server.handler = Handler
    server.url = "http://127.0.0.1:%d/health/" % server.server_address[1]
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


def test_restore_refuses_without_force(stack):
    stack.run("backup")
    stack.db.execute("DELETE FROM pages_pagevisit")
    run = stack.run("restore", ok=False)
    assert "Set restore_force to true to confirm" in run.output and "Nothing was changed" in run.output
    assert stack.count("pages_pagevisit") == 0


def test_restore_brings_the_rows_back_and_checks_health(stack, health_server):
    stack.run("backup")
    stack.db.execute("DELETE FROM pages_pagevisit WHERE id > 100; CREATE TABLE intruder (id int)")
    options = dict(restore_force=True, restore_health_url=health_server.url, restore_expect={"pages_pagevisit": 500})

    check = stack.run("restore", "--check", **options)
    assert stack.count("pages_pagevisit") == 100 and changed_tasks(check) == ["Restore the backup over the database"]
    assert messages(check, "Report the backup chosen")[0].startswith("would restore %s%s_" % (stack.prefix, stack.db.name))

    run = stack.run("restore", **options)
    assert stack.count("pages_pagevisit") == 500 and stack.count("blog_blogcomment") == 30
    assert "intruder" not in {r[0] for r in stack.db.execute("SELECT tablename FROM pg_tables")}
    restored = stats(run, "restore_last")
    assert restored["checksum_verified"] is True and restored["row_counts"]["public.pages_pagevisit"] == 500
    lines = messages(run, "Report the restore")
    assert "health: 200" in lines and "containers stopped and started again: none" in lines
    assert "public.pages_pagevisit: 500" in lines


def test_restore_failing_its_checks_leaves_the_database_as_it_was(stack):
    stack.run("backup")
    stack.db.execute("DELETE FROM pages_pagevisit WHERE id > 100")
    run = stack.run("restore", ok=False, restore_force=True, restore_expect={"pages_pagevisit": 100000})
    assert "pages_pagevisit" in run.output
    assert stack.count("pages_pagevisit") == 100
    assert run.task_result("Start the app containers again", HOST)  # the always part ran


def test_restore_stops_nothing_when_the_backup_is_missing(stack):
    run = stack.run("restore", ok=False, restore_force=True, restore_stop_containers=["website"],
                    webstack_docker_host="unix:///nonexistent/docker.sock")
    assert "Nothing was stopped nor changed" in run.output
    assert not any(t == "Look at the app containers" for t in changed_tasks(run))


def test_restore_does_not_touch_the_database_when_the_engine_is_unreachable(stack):
    stack.run("backup")
    stack.db.execute("DELETE FROM pages_pagevisit")
    run = stack.run("restore", ok=False, restore_force=True, restore_stop_containers=["website"],
                    webstack_docker_host="unix:///nonexistent/docker.sock")
    assert "nonexistent/docker.sock" in run.output
    assert stack.count("pages_pagevisit") == 0


def test_restore_fails_when_the_site_stays_unhealthy(stack, health_server):
    stack.run("backup")
    health_server.handler.status = 503
    run = stack.run("restore", ok=False, restore_force=True, restore_health_url=health_server.url,
                    restore_health_retries=2, restore_health_delay=0)
    assert "Wait for the site's health check" in run.output or "503" in run.output
    assert stack.count("pages_pagevisit") == 500


@pytest.mark.parametrize("playbook", ["backup", "restore", "monthly", "quarterly"])
def test_playbooks_pass_syntax_check_on_both_inventories(playbook):
    for inventory in ("inventories/example", "inventories/sandbox"):
        run = run_playbook("playbooks/%s.yml" % playbook, "-i", inventory, "--syntax-check", json_output=False)
        assert run.rc == 0, run.output
