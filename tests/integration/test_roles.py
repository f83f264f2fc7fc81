"""The weekly playbook and its roles against a real PostgreSQL, through ansible-playbook."""

from __future__ import annotations

import subprocess
import sys

from ansible_run import local_inventory, run_playbook, task_title
from test_pg_maintenance import make_table, table_stats


def inventory(tmp_path, db, **host_vars):
    """A one-host inventory in group db that reaches the test database the way production vars do."""
    return local_inventory(tmp_path, "db", "dbhost", webstack_postgres_host=db.server.host, webstack_postgres_port=db.server.port,
                           webstack_postgres_user=db.server.user, webstack_postgres_password=db.server.password,
                           webstack_postgres_db=db.name, **host_vars)


def changed_tasks(run):
    return [task_title(t) for play in run.report["plays"] for t in play["tasks"]
            if t["hosts"].get("dbhost", {}).get("changed")]


def test_weekly_playbook_check_run_check_run(tmp_path, pg_db):
    make_table(pg_db, "pages_pagevisit")
    make_table(pg_db, "blog_blogcomment", rows=500, delete_every=0)
    pg_db.execute("VACUUM ANALYZE blog_blogcomment")
    inv = inventory(tmp_path, pg_db)

    check = run_playbook("playbooks/weekly.yml", "-i", inv, "--check")
    assert check.rc == 0, check.output
    assert changed_tasks(check) == ["Run VACUUM ANALYZE where needed and measure the database size"]
    assert table_stats(pg_db, "pages_pagevisit")[:2] == (10000, None)

    run = run_playbook("playbooks/weekly.yml", "-i", inv)
    assert run.rc == 0, run.output
    [result] = run.task_result("Run VACUUM ANALYZE where needed and measure the database size", "dbhost")["results"]
    assert [t["name"] for t in result["tables"]] == ["public.pages_pagevisit"]
    assert [s["name"] for s in result["skipped_tables"]] == ["public.blog_blogcomment"]
    assert table_stats(pg_db, "pages_pagevisit")[0] == 0

    # The size is kept as a fact and published as a run statistic.
    assert run.report["global_custom_stats"]["weekly_db_database_sizes"]["dbhost"][pg_db.name]["bytes"] > 0

    again_check = run_playbook("playbooks/weekly.yml", "-i", inv, "--check")
    assert again_check.rc == 0 and changed_tasks(again_check) == []
    again = run_playbook("playbooks/weekly.yml", "-i", inv)
    assert again.rc == 0 and changed_tasks(again) == [], again.output


def test_weekly_playbook_prints_what_it_did(tmp_path, pg_db):
    make_table(pg_db, "pages_pagevisit")
    run = run_playbook("playbooks/weekly.yml", "-i", inventory(tmp_path, pg_db), json_output=False)
    assert run.rc == 0, run.output
    assert "%s: VACUUM ANALYZE ran on 1 table(s)" % pg_db.name in run.stdout
    assert "public.pages_pagevisit: 10000 dead tuples > " in run.stdout
    assert pg_db.server.password not in run.output


def test_weekly_db_rejects_a_bad_variable_with_its_name(tmp_path, pg_db):
    run = run_playbook("playbooks/weekly.yml", "-i", inventory(tmp_path, pg_db, weekly_db_action="vacuum_full"),
                       json_output=False)
    assert run.rc != 0
    assert "weekly_db_action" in run.output and "vacuum_full" in run.output


def test_weekly_db_only_some_tables_and_every_table_without_thresholds(tmp_path, pg_db):
    make_table(pg_db, "pages_pagevisit")
    make_table(pg_db, "utils_requestfingerprint")
    inv = inventory(tmp_path, pg_db, weekly_db_tables=["utils_requestfingerprint"], weekly_db_only_if_needed=False)
    run = run_playbook("playbooks/weekly.yml", "-i", inv)
    assert run.rc == 0, run.output
    assert table_stats(pg_db, "utils_requestfingerprint")[0] == 0
    assert table_stats(pg_db, "pages_pagevisit")[0] == 10000


def test_prerequisites_venv_method_makes_a_bare_host_ready(tmp_path, pg_db):
    """A host whose Python lacks psycopg2: the role builds a venv from PyPI and the module then runs with it."""
    bare = tmp_path / "bare"
    subprocess.run([sys.executable, "-m", "venv", str(bare)], check=True)
    venv = tmp_path / "webstack-venv"
    make_table(pg_db, "pages_pagevisit")
    inv = inventory(tmp_path, pg_db, ansible_python_interpreter=str(bare / "bin/python"),
                    prerequisites_method="venv", prerequisites_venv_path=str(venv))

    # Check mode plans the venv but cannot run the modules without it: the failure names the package.
    check = run_playbook("playbooks/weekly.yml", "-i", inv, "--check", timeout=600)
    assert check.rc != 0 and not venv.exists()
    assert check.task_result("Create the venv and install the libraries", "dbhost")["changed"] is True
    assert "python3-psycopg2" in check.output

    run = run_playbook("playbooks/weekly.yml", "-i", inv, timeout=900)
    assert run.rc == 0, run.output
    subprocess.run([str(venv / "bin/python"), "-c", "import psycopg2, redis, boto3, docker, cryptography, zstandard, jinja2"],
                   check=True)
    assert table_stats(pg_db, "pages_pagevisit")[0] == 0  # the module ran with the venv's Python

    again = run_playbook("playbooks/weekly.yml", "-i", inv, timeout=600)
    assert again.rc == 0 and not any(
        t["hosts"]["dbhost"].get("changed") for p in again.report["plays"] for t in p["tasks"]), again.output


def test_one_failing_database_does_not_hide_the_others(tmp_path, pg_db):
    make_table(pg_db, "pages_pagevisit")
    inv = inventory(tmp_path, pg_db, weekly_db_databases=["no_such_db", pg_db.name])
    run = run_playbook("playbooks/weekly.yml", "-i", inv, json_output=False)
    assert run.rc != 0
    assert "%s: VACUUM ANALYZE ran on 1 table(s)" % pg_db.name in run.stdout
    assert 'database \\"no_such_db\\" does not exist' in run.stdout or 'database "no_such_db" does not exist' in run.stdout
    assert table_stats(pg_db, "pages_pagevisit")[0] == 0
