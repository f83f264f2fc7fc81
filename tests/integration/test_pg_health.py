"""webstack.ops.pg_health against a real PostgreSQL 15 whose sick conditions are staged for real."""

from __future__ import annotations

import contextlib
import threading
import time

import psycopg2
import pytest
from ansible_run import run_module, run_module_full
from psycopg2.extras import wait_select
from test_pg_maintenance import make_table

MODULE = "webstack.ops.pg_health"
XID_LIMIT = 2 ** 31


def session(db, autocommit=True):
    conn = psycopg2.connect(**db.conninfo)
    conn.autocommit = autocommit
    return conn


def flush_stats(conn):
    """Make the session write its pending statistics (pg_stat_force_next_flush takes effect when it goes idle)."""
    conn.rollback()
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute("SELECT pg_stat_force_next_flush()")


def run_times(db, statement, times):
    """One session runs statement `times` times (a query the application repeats)."""
    conn = session(db)
    try:
        with conn.cursor() as cur:
            for _attempt in range(times):
                cur.execute(statement)
        flush_stats(conn)
    finally:
        conn.close()


def provoke_deadlock(db):
    """Two sessions update two rows in opposite orders; PostgreSQL kills one after deadlock_timeout (1 s)."""
    db.execute("CREATE TABLE accounts (id int PRIMARY KEY, balance int)")
    db.execute("INSERT INTO accounts VALUES (1, 0), (2, 0)")
    first, second = session(db, autocommit=False), session(db, autocommit=False)
    victims = []

    def update(conn, row):
        try:
            with conn.cursor() as cur:
                cur.execute("UPDATE accounts SET balance = balance + 1 WHERE id = %s", (row,))
            conn.commit()
        except psycopg2.errors.DeadlockDetected:
            victims.append(conn)
        flush_stats(conn)

    try:
        with first.cursor() as cur:
            cur.execute("UPDATE accounts SET balance = balance + 1 WHERE id = 1")
        with second.cursor() as cur:
            cur.execute("UPDATE accounts SET balance = balance + 1 WHERE id = 2")
        crossing = threading.Thread(target=update, args=(first, 2))
        crossing.start()
        time.sleep(0.2)  # first now waits for row 2
        update(second, 1)
        crossing.join()
    finally:
        first.close()
        second.close()
    assert len(victims) == 1


@contextlib.contextmanager
def sleeping_query(db):
    """Another session runs pg_sleep(60) until the block ends (an async connection, cancelled at the end)."""
    conn = psycopg2.connect(async_=1, **db.conninfo)
    wait_select(conn)
    cur = conn.cursor()
    cur.execute("SELECT pg_sleep(60)")
    try:
        yield
    finally:
        conn.cancel()
        with contextlib.suppress(psycopg2.Error):
            wait_select(conn)
        conn.close()


@contextlib.contextmanager
def idle_in_transaction(db, statement="SELECT 1"):
    """Another session opens a transaction, runs statement and leaves it open until the block ends."""
    conn = session(db, autocommit=False)
    try:
        with conn.cursor() as cur:
            cur.execute(statement)
        yield
    finally:
        conn.close()


def stage_table_conditions(db):
    """Dead tuples, an unused index, an invalid index, a seq-scan-heavy table, a cache that misses, pg_stat_statements."""
    db.execute("CREATE EXTENSION pg_stat_statements")
    make_table(db, "pages_pagevisit", rows=30000, delete_every=2)  # 15000 dead, 15000 live, autovacuum off
    make_table(db, "blog_blogcomment", rows=10000, delete_every=2)  # 5000 dead: under dead_tuples_min
    db.execute("CREATE INDEX pages_pagevisit_path_idx ON pages_pagevisit (path)")  # never scanned
    db.execute("CREATE UNIQUE INDEX blog_blogcomment_path_key ON blog_blogcomment (path)")  # unused but enforces
    db.execute("CREATE TABLE dupes (v int)")
    db.execute("INSERT INTO dupes VALUES (1), (1)")
    with pytest.raises(psycopg2.errors.UniqueViolation):
        db.execute("CREATE UNIQUE INDEX CONCURRENTLY dupes_v_key ON dupes (v)")  # fails, leaves an invalid index
    db.execute("CREATE TABLE utils_requestfingerprint (id serial PRIMARY KEY, ip_address text)")
    db.execute("INSERT INTO utils_requestfingerprint (ip_address) SELECT '10.0.0.' || (i % 250) FROM generate_series(1, 2000) i")
    run_times(db, "SELECT count(*) FROM utils_requestfingerprint WHERE ip_address = '10.0.0.7'", 30)
    # 34 MB: created and scanned through ring buffers, most of its blocks are read from outside shared_buffers.
    db.execute("CREATE TABLE archive AS SELECT g AS id, repeat('x', 200) AS pad FROM generate_series(1, 150000) g")
    run_times(db, "SELECT count(*) FROM archive", 20)


def alert_levels(result):
    return {a["check"]: a["level"] for a in result["alerts"]}


def names(items):
    return [i["name"] for i in items]


def test_every_check_fires_on_its_real_condition_and_check_mode_reads_the_same(pg_db):
    stage_table_conditions(pg_db)
    args = pg_db.module_args(
        long_query_seconds=1, long_transaction_seconds=1, idle_in_transaction_seconds=1,
        connections_warn_percent=1, connections_crit_percent=2, wraparound_warn=1, wraparound_crit=XID_LIMIT - 1,
        seq_scan_min_rows=1000, seq_scan_min_count=20, statements_top=50, cache_hit_ratio_warn=0.99, cache_hit_ratio_crit=0.95)
    with sleeping_query(pg_db), idle_in_transaction(pg_db, "SELECT count(*) FROM blog_blogcomment"):
        started = time.monotonic()
        provoke_deadlock(pg_db)
        time.sleep(max(0.0, 1.5 - (time.monotonic() - started)))
        result = run_module(MODULE, args)
        checked = run_module(MODULE, dict(args, fail_on="crit"), check=True)

    assert result["changed"] is False and not result.get("failed")
    assert alert_levels(result) == {
        "connections": "crit", "long_queries": "warn", "long_transactions": "warn", "idle_in_transaction": "warn",
        "deadlocks": "warn", "cache_hit_ratio": "crit", "dead_tuples": "warn", "wraparound": "warn",
        "invalid_indexes": "warn",
    }
    assert result["level"] == "crit" and result["failed_checks"] == [] and result["notes"] == []

    assert result["connections"]["total"] >= 3 and result["connections"]["max_connections"] == 100
    [sleeper] = result["long_queries"]
    assert "pg_sleep(60)" in sleeper["query"] and sleeper["query_seconds"] >= 1 and sleeper["database"] == pg_db.name
    [idle] = result["idle_in_transaction"]
    assert idle["state"] == "idle in transaction" and "blog_blogcomment" in idle["query"] and idle["state_seconds"] >= 1
    assert {s["pid"] for s in result["long_transactions"]} == {sleeper["pid"], idle["pid"]}

    stats = result["database_stats"]
    assert stats["deadlocks"] == 1 and stats["stats_reset"] is None and stats["cache_hit_ratio"] < 0.95
    [dead] = result["dead_tuples"]
    assert dead["name"] == "public.pages_pagevisit" and dead["dead_tuples"] == 15000 and dead["live_tuples"] == 15000
    assert dead["since_last_vacuum"] is None and dead["since_last_autovacuum"] is None and dead["since_last_analyze"] >= 0

    assert names(result["unused_indexes"]) == ["public.pages_pagevisit_path_idx"]  # not the primary keys, not the unique index
    assert result["unused_indexes"][0]["size"] > 0
    assert names(result["invalid_indexes"]) == ["public.dupes_v_key"]
    candidates = {t["name"]: t for t in result["seq_scan_tables"]}
    assert candidates["public.utils_requestfingerprint"]["seq_scan"] >= 30
    assert not candidates["public.utils_requestfingerprint"]["idx_scan"]
    assert "public.pages_pagevisit" not in candidates and "public.blog_blogcomment" not in candidates  # few seq scans

    assert {d["database"] for d in result["wraparound"]["databases"]} >= {pg_db.name, "template0", "postgres"}
    statements = result["statements"]
    assert statements["available"] is True
    [repeated] = [s for s in statements["by_total"] if "FROM utils_requestfingerprint WHERE ip_address" in s["query"]]
    assert repeated["calls"] == 30 and "$1" in repeated["query"]
    means = [s["mean_time_ms"] for s in statements["by_mean"]]
    assert means == sorted(means, reverse=True) and 0 < len(means) <= 50

    # Check mode reads the same, changes nothing; fail_on=crit fails the task and still returns the facts.
    assert checked["failed"] is True and checked["changed"] is False
    assert "health level crit" in checked["msg"] and "CRIT" in checked["msg"]
    assert alert_levels(checked) == alert_levels(result)
    assert names(checked["dead_tuples"]) == names(result["dead_tuples"])
    assert names(checked["unused_indexes"]) == names(result["unused_indexes"])


def test_a_healthy_database_raises_nothing_and_notes_the_missing_pg_stat_statements(pg_db):
    make_table(pg_db, "blog_blogcomment", rows=10000, delete_every=2)  # 5000 dead tuples: under the default 10000
    with contextlib.closing(session(pg_db)):  # an idle session, not in a transaction
        result = run_module(MODULE, pg_db.module_args())

    assert result["alerts"] == [] and result["level"] == "ok" and result["changed"] is False
    assert result["long_queries"] == result["idle_in_transaction"] == result["dead_tuples"] == []
    assert result["statements"] == {"available": False, "version": None, "by_mean": [], "by_total": []}
    [note] = result["notes"]
    assert "pg_stat_statements is not installed" in note and "CREATE EXTENSION pg_stat_statements" in note
    assert result["database_size"] > 0 and result["database_stats"]["deadlocks"] == 0


def test_a_check_blocked_by_a_lock_times_out_and_the_others_still_run(pg_db):
    make_table(pg_db, "pages_pagevisit", rows=30000, delete_every=2)
    pg_db.execute("CREATE INDEX pages_pagevisit_path_idx ON pages_pagevisit (path)")
    args = pg_db.module_args(checks=["indexes", "dead_tuples"], statement_timeout=0.5)
    with idle_in_transaction(pg_db, "DROP INDEX pages_pagevisit_path_idx"):  # holds the index's ACCESS EXCLUSIVE lock
        started = time.monotonic()
        result = run_module(MODULE, args)
        took = time.monotonic() - started

    assert not result.get("failed") and took < 8
    [failed] = result["failed_checks"]
    assert failed["check"] == "indexes" and "timeout" in failed["error"]
    assert alert_levels(result) == {"check_failed": "warn", "dead_tuples": "warn"}
    assert names(result["dead_tuples"]) == ["public.pages_pagevisit"]
    assert "unused_indexes" not in result  # its check failed
    assert "connections" not in result  # not asked for


def test_a_server_that_does_not_answer_fails_with_host_port_and_reason(pg_db, free_port):
    result = run_module(MODULE, pg_db.module_args(login_port=free_port, connect_timeout=3))
    assert result["failed"] is True
    assert "Could not connect to PostgreSQL at 127.0.0.1:%d" % free_port in result["msg"]
    assert "Connection refused" in result["msg"]


def test_a_wrong_password_fails_without_showing_the_password(pg_db):
    secret = "Wr0ng-Pa55word-that-must-not-leak"
    result, run = run_module_full(MODULE, pg_db.module_args(login_password=secret))
    assert result["failed"] is True and "password authentication failed" in result["msg"]
    assert secret not in run.output
