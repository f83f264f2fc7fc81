"""The quarterly_cleanup role against a real PostgreSQL holding the guide's tables, through ansible-playbook."""

from __future__ import annotations

import datetime as dt
import json
import sys
from pathlib import Path

import psycopg2
import pytest
from ansible_run import run_playbook
from psycopg2 import sql

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))
import datagen  # noqa: E402

# The guide's policies (the role's defaults), and rows per table: timestamps uniform over three years.
POLICIES = {"utils_requestfingerprint": 90, "pages_pagevisit": 180, "utils_lighthouseresult": 365}
ROWS = {"utils_requestfingerprint": 1500, "pages_pagevisit": 3000, "utils_lighthouseresult": 200}
PLAY = [{"name": "quarterly cleanup", "hosts": "db", "gather_facts": False,
         "roles": [{"role": "webstack.ops.quarterly_cleanup"}]}]


@pytest.fixture
def site(pg_db, tmp_path):
    """The guide's three tables filled by bench/datagen.py, and an inventory reaching them like production vars do."""
    conn = psycopg2.connect(**pg_db.conninfo)
    conn.autocommit = True
    try:
        for table, rows in ROWS.items():
            datagen.create_table(conn, table)
            datagen.fill(conn, table, rows, seed=7)
    finally:
        conn.close()
    host = dict(ansible_connection="local", ansible_python_interpreter=sys.executable,
                webstack_postgres_host=pg_db.server.host, webstack_postgres_port=pg_db.server.port,
                webstack_postgres_user=pg_db.server.user, webstack_postgres_password=pg_db.server.password,
                webstack_postgres_db=pg_db.name)
    inventory = tmp_path / "inventory.json"
    inventory.write_text(json.dumps({"db": {"hosts": {"dbhost": host}}}))
    playbook = tmp_path / "play.yml"
    playbook.write_text(json.dumps(PLAY))
    return pg_db, str(playbook), str(inventory)


def snapshot(db):
    """{table: {id: created_at}} of every row."""
    return {table: dict(db.execute(sql.SQL("SELECT id, created_at FROM {}").format(sql.Identifier(table))))
            for table in POLICIES}


def test_check_mode_counts_and_the_run_deletes_exactly_the_rows_past_each_policy(site):
    db, playbook, inventory = site
    before = snapshot(db)

    check = run_playbook(playbook, "-i", inventory, "--check")
    assert check.rc == 0, check.output
    planned = check.task_result("Delete the rows past their retention, in committed batches", "dbhost")
    assert snapshot(db) == before
    for table in planned["tables"]:
        cutoff = dt.datetime.fromisoformat(table["cutoff"])
        old = sum(1 for created in before[table["name"].split(".")[1]].values() if created < cutoff)
        assert table["rows"] == table["matching"] == old > 0, table

    run = run_playbook(playbook, "-i", inventory, "-e", "quarterly_cleanup_lighthouseresult_days=730")
    assert run.rc == 0, run.output
    result = run.task_result("Delete the rows past their retention, in committed batches", "dbhost")
    assert result["changed"] is True
    after = snapshot(db)
    days = dict(POLICIES, utils_lighthouseresult=730)  # one policy overridden
    for table in result["tables"]:
        name = table["name"].split(".")[1]
        cutoff = dt.datetime.fromisoformat(table["cutoff"])
        assert table["days"] == days[name] and table["analyzed"] is True
        kept = {i: created for i, created in before[name].items() if created >= cutoff}
        assert after[name] == kept, name  # every row past the cutoff gone, every other row still there
        assert table["rows"] == len(before[name]) - len(kept)
        assert abs(dt.datetime.now(dt.timezone.utc) - dt.timedelta(days=days[name]) - cutoff) < dt.timedelta(minutes=5)
    assert run.report["global_custom_stats"]["quarterly_cleanup"]["dbhost"] == {
        t["name"]: t["rows"] for t in result["tables"]}

    lines = [r["msg"] for r in run.task_result("Report each table", "dbhost")["results"]]
    assert lines[0].startswith("public.utils_requestfingerprint: %d row(s) with created_at older than 90 days (before "
                               % result["tables"][0]["rows"])
    assert "deleted in " in lines[1] and "ANALYZE done" in lines[1]
    assert db.server.password not in run.output


def test_a_bad_policy_fails_the_role_and_deletes_nothing(site):
    db, playbook, inventory = site
    before = snapshot(db)
    run = run_playbook(playbook, "-i", inventory, "-e", "quarterly_cleanup_pagevisit_days=0", json_output=False)
    assert run.rc != 0
    assert "tables[1] (pages_pagevisit): days must be 1 or more, got 0" in run.output
    assert "Nothing was deleted" in run.output
    assert snapshot(db) == before
