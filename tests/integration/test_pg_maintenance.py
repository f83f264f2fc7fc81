"""webstack.ops.pg_maintenance against a real PostgreSQL 15, run through ansible-playbook."""

from __future__ import annotations

import contextlib
import subprocess
import sys
import threading

import psycopg2
import pytest
from ansible_run import run_module, run_module_full
from psycopg2 import sql

MODULE = "webstack.ops.pg_maintenance"


def table_stats(db, name):
    """n_dead_tup, last_vacuum, last_analyze of a table, read afresh."""
    with psycopg2.connect(**db.conninfo) as conn, conn.cursor() as cur:
        cur.execute(
            "SELECT n_dead_tup, last_vacuum, last_analyze FROM pg_stat_user_tables WHERE relname = %s", (name,))
        return cur.fetchone()


def make_table(db, name, rows=30000, delete_every=3, analyze=True):
    """A table without autovacuum, analyzed, then with every n-th row deleted (dead tuples)."""
    ident = sql.Identifier(name)
    db.execute(sql.SQL("CREATE TABLE {} (id serial PRIMARY KEY, path text) WITH (autovacuum_enabled = false)").format(ident))
    db.execute(sql.SQL("INSERT INTO {} (path) SELECT '/blog/post-' || i FROM generate_series(1, %s) i").format(ident), (rows,))
    if analyze:
        db.execute(sql.SQL("ANALYZE {}").format(ident))
    if delete_every:
        db.execute(sql.SQL("DELETE FROM {} WHERE id %% %s = 0").format(ident), (delete_every,))


@contextlib.contextmanager
def another_session_locks(db, table):
    """Another session holds an ACCESS EXCLUSIVE lock on table until the block ends."""
    holder = psycopg2.connect(**db.conninfo)
    try:
        with holder.cursor() as cur:
            cur.execute(sql.SQL("LOCK TABLE {} IN ACCESS EXCLUSIVE MODE").format(sql.Identifier(table)))
            yield
    finally:
        holder.close()


@pytest.fixture
def dirty(pg_db):
    make_table(pg_db, "pages_pagevisit")
    return pg_db


def test_a_table_full_of_dead_tuples_is_vacuumed(dirty):
    dead_before, last_vacuum, _last_analyze = table_stats(dirty, "pages_pagevisit")
    assert dead_before == 10000 and last_vacuum is None

    result = run_module(MODULE, dirty.module_args(tables=["pages_pagevisit"]))

    assert result["changed"] is True
    assert result["queries"] == ['VACUUM (ANALYZE) "public"."pages_pagevisit"']
    [done] = result["tables"]
    assert done["name"] == "public.pages_pagevisit" and done["action"] == "vacuum_analyze"
    assert done["dead_tuples_before"] == 10000 and done["dead_tuples_after"] == 0
    assert done["seconds"] >= 0
    dead_after, last_vacuum, last_analyze = table_stats(dirty, "pages_pagevisit")
    assert dead_after == 0 and last_vacuum is not None and last_analyze is not None
    assert result["size_before"] > 0 and result["size_after"] > 0 and result["size_before_pretty"]


def test_check_mode_reports_the_statements_and_changes_nothing(dirty):
    result = run_module(MODULE, dirty.module_args(), check=True)

    assert result["changed"] is True
    assert result["queries"] == ['VACUUM (ANALYZE) "public"."pages_pagevisit"']
    assert result["tables"] == []
    assert result["size_after"] == result["size_before"]
    dead, last_vacuum, _last_analyze = table_stats(dirty, "pages_pagevisit")
    assert dead == 10000 and last_vacuum is None


def test_check_run_check_run_with_only_if_needed(dirty):
    args = dirty.module_args(only_if_needed=True)

    first_check = run_module(MODULE, args, check=True)
    assert first_check["changed"] is True and len(first_check["queries"]) == 1
    assert table_stats(dirty, "pages_pagevisit")[1] is None

    first_run = run_module(MODULE, args)
    assert first_run["changed"] is True
    vacuumed_at = table_stats(dirty, "pages_pagevisit")[1]
    assert vacuumed_at is not None

    second_check = run_module(MODULE, args, check=True)
    assert second_check["changed"] is False and second_check["queries"] == []

    second_run = run_module(MODULE, args)
    assert second_run["changed"] is False and second_run["tables"] == []
    assert [s["name"] for s in second_run["skipped_tables"]] == ["public.pages_pagevisit"]
    assert table_stats(dirty, "pages_pagevisit")[1] == vacuumed_at


def test_only_if_needed_skips_a_clean_table(dirty):
    make_table(dirty, "blog_blogcomment", rows=2000, delete_every=0)
    dirty.execute("VACUUM ANALYZE blog_blogcomment")
    clean_vacuumed_at = table_stats(dirty, "blog_blogcomment")[1]

    result = run_module(MODULE, dirty.module_args(only_if_needed=True))

    assert [t["name"] for t in result["tables"]] == ["public.pages_pagevisit"]
    assert "10000 dead tuples > " in result["tables"][0]["reason"]
    [skipped] = result["skipped_tables"]
    assert skipped["name"] == "public.blog_blogcomment" and skipped["reason"].startswith("below thresholds")
    assert table_stats(dirty, "blog_blogcomment")[1] == clean_vacuumed_at
    assert table_stats(dirty, "pages_pagevisit")[0] == 0


def test_an_unknown_table_fails_naming_it_and_runs_nothing(dirty):
    result, run = run_module_full(MODULE, dirty.module_args(tables=["pages_pagevisit", "no_such_table"]))

    assert result["failed"] is True
    assert "unknown table(s): no_such_table" in result["msg"] and "Nothing was run" in result["msg"]
    assert table_stats(dirty, "pages_pagevisit")[1] is None
    assert run.rc != 0


def test_names_with_quotes_spaces_and_semicolons_are_identifiers_not_sql(dirty):
    weird = 'we;ird "name"'
    make_table(dirty, weird, rows=3000)

    attack = run_module(MODULE, dirty.module_args(tables=["pages_pagevisit; DROP TABLE pages_pagevisit"]))
    assert attack["failed"] is True and "unknown table(s)" in attack["msg"]
    assert table_stats(dirty, "pages_pagevisit") is not None  # still there

    result = run_module(MODULE, dirty.module_args(tables=[weird]))
    assert result["queries"] == ['VACUUM (ANALYZE) "public"."we;ird ""name"""']
    assert table_stats(dirty, weird)[0] == 0 and table_stats(dirty, weird)[1] is not None


def test_a_server_that_does_not_answer_fails_with_host_port_and_reason(dirty, free_port):
    result = run_module(MODULE, dirty.module_args(login_port=free_port, connect_timeout=3))

    assert result["failed"] is True
    assert "Could not connect to PostgreSQL at 127.0.0.1:%d" % free_port in result["msg"]
    assert "Connection refused" in result["msg"]


def test_a_wrong_password_fails_without_showing_the_password(dirty):
    secret = "Wr0ng-Pa55word-that-must-not-leak"
    result, run = run_module_full(MODULE, dirty.module_args(login_password=secret))

    assert result["failed"] is True
    assert "password authentication failed" in result["msg"]
    assert secret not in run.output


def test_vacuum_full_is_refused_unless_allowed(dirty):
    refused = run_module(MODULE, dirty.module_args(action="vacuum_full"))
    assert refused["failed"] is True and "allow_full: true" in refused["msg"]
    assert table_stats(dirty, "pages_pagevisit")[1] is None

    size_before_full = dirty.relation_size("pages_pagevisit")
    done = run_module(MODULE, dirty.module_args(action="vacuum_full", allow_full=True))
    assert done["changed"] is True and done["queries"] == ['VACUUM (FULL) "public"."pages_pagevisit"']
    assert dirty.relation_size("pages_pagevisit") < size_before_full  # rewritten without the dead rows


def test_analyze_only_updates_statistics_without_vacuuming(dirty):
    result = run_module(MODULE, dirty.module_args(action="analyze"))

    assert result["queries"] == ['ANALYZE "public"."pages_pagevisit"']
    _dead, last_vacuum, last_analyze = table_stats(dirty, "pages_pagevisit")
    assert last_vacuum is None and last_analyze is not None


def test_a_locked_table_fails_fast_and_the_others_still_run(dirty):
    make_table(dirty, "utils_requestfingerprint", rows=3000)
    with another_session_locks(dirty, "pages_pagevisit"):
        result = run_module(MODULE, dirty.module_args(lock_timeout=1))

    assert result["failed"] is True
    assert [f["name"] for f in result["failed_tables"]] == ["public.pages_pagevisit"]
    assert "lock timeout" in result["failed_tables"][0]["error"]
    assert "public.pages_pagevisit" in result["msg"] and "pg_locks" in result["msg"]
    assert [t["name"] for t in result["tables"]] == ["public.utils_requestfingerprint"]
    assert table_stats(dirty, "utils_requestfingerprint")[1] is not None
    assert table_stats(dirty, "pages_pagevisit")[1] is None


def test_without_psycopg2_the_message_names_the_package(dirty, tmp_path):
    bare = tmp_path / "bare"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(bare)], check=True)
    result = run_module(MODULE, dirty.module_args(), interpreter=str(bare / "bin" / "python"))

    assert result["failed"] is True
    assert "psycopg2" in result["msg"] and "python3-psycopg2" in result["msg"]
    assert "Traceback" not in result["msg"]


def test_the_unix_socket_is_used_when_given(dirty):
    result = run_module(MODULE, dirty.module_args(login_host="192.0.2.1", login_unix_socket=str(dirty.server.socket_dir),
                                                  tables=["pages_pagevisit"]))
    assert result["changed"] is True and table_stats(dirty, "pages_pagevisit")[0] == 0


def test_a_table_in_another_schema_is_found_by_its_qualified_name(dirty):
    dirty.execute("CREATE SCHEMA audit")
    make_table(dirty, "pages_pagevisit_archive", rows=3000)
    dirty.execute("ALTER TABLE pages_pagevisit_archive SET SCHEMA audit")
    result = run_module(MODULE, dirty.module_args(tables=["audit.pages_pagevisit_archive"]))
    assert result["queries"] == ['VACUUM (ANALYZE) "audit"."pages_pagevisit_archive"']


def test_a_partitioned_table_gets_analyze_and_its_partitions_vacuum(pg_db):
    pg_db.execute("CREATE TABLE visits (id int, created_at date) PARTITION BY RANGE (created_at)")
    for year in (2025, 2026):
        pg_db.execute("CREATE TABLE visits_%d PARTITION OF visits FOR VALUES FROM ('%d-01-01') TO ('%d-01-01') "
                      "WITH (autovacuum_enabled = false)" % (year, year, year + 1))
    pg_db.execute("INSERT INTO visits SELECT i, DATE '2025-01-01' + (i % 700) FROM generate_series(1, 20000) i")
    pg_db.execute("ANALYZE visits")
    pg_db.execute("DELETE FROM visits WHERE created_at < '2026-01-01' AND id % 2 = 0")

    result = run_module(MODULE, pg_db.module_args(only_if_needed=True))

    assert result["queries"] == ['VACUUM (ANALYZE) "public"."visits_2025"', 'ANALYZE "public"."visits"']
    assert result["tables"][1]["reason"] == "partitions changed: public.visits_2025"
    assert [s["name"] for s in result["skipped_tables"]] == ["public.visits_2026"]
    vacuum_only = run_module(MODULE, pg_db.module_args(action="vacuum", tables=["visits"]))
    assert vacuum_only["queries"] == [] and vacuum_only["changed"] is False
    assert "partitions are vacuumed one by one" in vacuum_only["skipped_tables"][0]["reason"]


def test_other_sessions_temporary_tables_are_left_out(dirty):
    holder = psycopg2.connect(**dirty.conninfo)
    try:
        with holder.cursor() as cur:
            cur.execute("CREATE TEMP TABLE scratch AS SELECT generate_series(1, 1000) AS i")
        holder.commit()
        result = run_module(MODULE, dirty.module_args(), check=True)
        assert result["queries"] == ['VACUUM (ANALYZE) "public"."pages_pagevisit"']
    finally:
        holder.close()


def test_a_statement_timeout_fails_that_table_and_the_others_run(dirty):
    """statement_timeout counts the wait for a lock too: a table held by another session runs into it."""
    make_table(dirty, "small", rows=3000)
    with another_session_locks(dirty, "pages_pagevisit"):
        result = run_module(MODULE, dirty.module_args(tables=["pages_pagevisit", "small"], lock_timeout=0, statement_timeout=0.5))
    assert result["failed"] is True
    assert [f["name"] for f in result["failed_tables"]] == ["public.pages_pagevisit"]
    assert "statement timeout" in result["failed_tables"][0]["error"]
    assert [t["name"] for t in result["tables"]] == ["public.small"]


def test_a_database_that_does_not_exist_is_named(pg_server):
    result = run_module(MODULE, {"login_host": pg_server.host, "login_port": pg_server.port,
                                 "login_password": pg_server.password, "login_db": "no_such_db"})
    assert result["failed"] is True
    assert "database \"no_such_db\" does not exist" in result["msg"] and "%d" % pg_server.port in result["msg"]


@pytest.mark.parametrize(("option", "value", "message"), [
    ("vacuum_threshold", -5, "vacuum_threshold must be 0 or more"),
    ("analyze_scale_factor", -1, "analyze_scale_factor must be between 0 and 100"),
    ("lock_timeout", -1, "lock_timeout must be 0 (no limit) or between 0.001 and 2147483 seconds"),
    ("statement_timeout", 99999999, "statement_timeout must be 0 (no limit) or between"),
    ("tables", [], "tables is an empty list: omit it to work on every user table"),
    ("tables", ["pages_pagevisit", " "], "empty table name in tables"),
])
def test_bad_options_fail_before_anything_runs(dirty, option, value, message):
    result = run_module(MODULE, dirty.module_args(**{option: value}))
    assert result["failed"] is True and message in result["msg"] and "Nothing was run" in result["msg"]
    assert table_stats(dirty, "pages_pagevisit")[1] is None


def test_a_connection_lost_mid_run_still_reports_the_tables_done(dirty):
    make_table(dirty, "a_first", rows=3000)
    stop = threading.Event()

    def terminate_the_module_when_it_waits():
        conn = psycopg2.connect(**dirty.conninfo)
        conn.autocommit = True  # pg_stat_activity is read once per transaction
        try:
            with conn.cursor() as cur:
                while not stop.wait(0.05):
                    cur.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                                "WHERE application_name = 'webstack.ops' AND wait_event_type = 'Lock'")
                    if cur.fetchall():
                        break
        finally:
            conn.close()

    killer = threading.Thread(target=terminate_the_module_when_it_waits)
    with another_session_locks(dirty, "pages_pagevisit"):  # the module finishes a_first, then waits on this lock
        killer.start()
        try:
            result = run_module(MODULE, dirty.module_args(tables=["a_first", "pages_pagevisit"], lock_timeout=30))
        finally:
            stop.set()
            killer.join()

    assert result["failed"] is True and result["changed"] is True
    assert "Lost the connection" in result["msg"] and "after 1 table(s)" in result["msg"]
    assert [t["name"] for t in result["tables"]] == ["public.a_first"]
    assert table_stats(dirty, "a_first")[1] is not None
