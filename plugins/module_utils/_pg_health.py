# Copyright (c) webstack.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Read-only PostgreSQL health facts and their alerts, behind the pg_health module.

Threshold logic is kept in plain functions over plain values, so it can be unit-tested without a server;
the Health class only reads the statistics views and hands their rows to those functions.
"""

from __future__ import annotations

from dataclasses import dataclass

from ansible_collections.webstack.ops.plugins.module_utils._alerts import CRIT, WARN, alert
from ansible_collections.webstack.ops.plugins.module_utils._postgres import connected, psycopg2, set_timeouts, sql

CHECKS = ("database_size", "connections", "activity", "database_stats", "dead_tuples", "wraparound",
          "statements", "indexes", "seq_scans")

QUERY_TEXT_LIMIT = 500  # characters of a query's text kept in the results
MESSAGE_ITEMS = 3  # objects named in one alert message
XID_LIMIT = 2 ** 31  # transaction IDs PostgreSQL can tell apart; it stops assigning new ones a few million before


@dataclass(frozen=True)
class Limits:
    """Every threshold of the checks; the defaults are the module's (see its documentation for why)."""

    connections_warn_percent: float = 80
    connections_crit_percent: float = 90
    long_query_seconds: float = 300
    long_transaction_seconds: float = 300
    idle_in_transaction_seconds: float = 60
    deadlocks_max: int = 0
    conflicts_max: int = 0
    cache_hit_ratio_warn: float = 0.95
    cache_hit_ratio_crit: float = 0.90
    cache_hit_min_blocks: int = 10000
    dead_tuples_min: int = 10000
    dead_tuples_ratio: float = 0.1
    wraparound_warn: int = 1000000000
    wraparound_crit: int = 1500000000
    seq_scan_min_rows: int = 10000
    seq_scan_min_count: int = 100
    seq_scan_ratio: float = 10


def bad_limits(limits):
    """What is wrong with the thresholds, or None."""
    problems = [
        (not 0 < limits.connections_warn_percent <= limits.connections_crit_percent <= 100,
         "connections_warn_percent and connections_crit_percent must satisfy 0 < warn <= crit <= 100"),
        (not 0 <= limits.cache_hit_ratio_crit <= limits.cache_hit_ratio_warn <= 1,
         "cache_hit_ratio_warn and cache_hit_ratio_crit must satisfy 0 <= crit <= warn <= 1"),
        (not 0 < limits.wraparound_warn <= limits.wraparound_crit < XID_LIMIT,
         "wraparound_warn and wraparound_crit must satisfy 0 < warn <= crit < %d" % XID_LIMIT),
        (not 0 <= limits.dead_tuples_ratio <= 100, "dead_tuples_ratio must be between 0 and 100"),
        (limits.seq_scan_ratio < 0, "seq_scan_ratio must be 0 or more"),
    ]
    for name in ("long_query_seconds", "long_transaction_seconds", "idle_in_transaction_seconds"):
        problems.append((getattr(limits, name) <= 0, "%s must be more than 0" % name))
    for name in ("deadlocks_max", "conflicts_max", "cache_hit_min_blocks", "dead_tuples_min", "seq_scan_min_rows",
                 "seq_scan_min_count"):
        problems.append((getattr(limits, name) < 0, "%s must be 0 or more" % name))
    found = [message for wrong, message in problems if wrong]
    return "; ".join(found) or None


def short(text, length=80):
    """A query's text on one line, cut for a message."""
    text = " ".join((text or "").split())
    return text if len(text) <= length else text[:length - 3] + "..."


def some(names):
    """The first few names of a list, for a message."""
    shown = ", ".join(names[:MESSAGE_ITEMS])
    return shown + (", ..." if len(names) > MESSAGE_ITEMS else "")


# --- Pure threshold logic -------------------------------------------------------------------------------------

def connection_alerts(total, max_connections, limits):
    """The connections alert, if client connections reach a percentage of max_connections."""
    percent = round(total * 100.0 / max_connections, 1)
    for level, limit in ((CRIT, limits.connections_crit_percent), (WARN, limits.connections_warn_percent)):
        if percent >= limit:
            return [alert("connections", level, percent, limit,
                          "%d client connections are %.1f%% of max_connections %d (limit %s%%)"
                          % (total, percent, max_connections, limit))]
    return []


def over(sessions, key, seconds):
    """Sessions whose `key` age is over `seconds`, longest first."""
    return sorted((s for s in sessions if s[key] is not None and s[key] > seconds), key=lambda s: -s[key])


def session_alert(check, sessions, key, limit, what):
    """One warn alert for sessions over a time limit (the longest named), or none."""
    if not sessions:
        return []
    worst = sessions[0]
    return [alert(check, WARN, worst[key], limit,
                  "%d %s longer than %s s; longest %.0f s (pid %s, database %s, user %s): %s"
                  % (len(sessions), what, limit, worst[key], worst["pid"], worst["database"], worst["user"],
                     short(worst["query"])))]


def activity(sessions, limits):
    """Long queries, long transactions and idle-in-transaction sessions, with their alerts.

    sessions: client backends other than ours, as dicts with pid, database, user, state, query_seconds,
    transaction_seconds, state_seconds and query.
    """
    long_queries = over([s for s in sessions if s["state"] == "active"], "query_seconds", limits.long_query_seconds)
    long_transactions = over(sessions, "transaction_seconds", limits.long_transaction_seconds)
    idle = over([s for s in sessions if (s["state"] or "").startswith("idle in transaction")], "state_seconds",
                limits.idle_in_transaction_seconds)
    alerts = (session_alert("long_queries", long_queries, "query_seconds", limits.long_query_seconds,
                            "queries running")
              + session_alert("long_transactions", long_transactions, "transaction_seconds",
                              limits.long_transaction_seconds, "transactions open")
              + session_alert("idle_in_transaction", idle, "state_seconds", limits.idle_in_transaction_seconds,
                              "sessions idle in transaction"))
    return long_queries, long_transactions, idle, alerts


def cache_hit_ratio(blks_hit, blks_read):
    """Share of block reads found in shared buffers, None before any read."""
    total = blks_hit + blks_read
    return round(float(blks_hit) / total, 4) if total else None


def database_stats_alerts(stats, limits):
    """Deadlock, recovery-conflict and cache-hit alerts from one pg_stat_database row (a dict)."""
    alerts = []
    since = "since the statistics reset at %s" % stats["stats_reset"] if stats["stats_reset"] else \
        "since the statistics were created (never reset)"
    if stats["deadlocks"] > limits.deadlocks_max:
        alerts.append(alert("deadlocks", WARN, stats["deadlocks"], limits.deadlocks_max,
                            "%d deadlock(s) in database %s %s (limit %d; the counter only grows until "
                            "pg_stat_reset())" % (stats["deadlocks"], stats["database"], since, limits.deadlocks_max)))
    if stats["conflicts"] > limits.conflicts_max:
        alerts.append(alert("conflicts", WARN, stats["conflicts"], limits.conflicts_max,
                            "%d query(ies) cancelled by recovery conflicts in database %s %s (limit %d)"
                            % (stats["conflicts"], stats["database"], since, limits.conflicts_max)))
    ratio = stats["cache_hit_ratio"]
    if ratio is not None and stats["blks_hit"] + stats["blks_read"] >= limits.cache_hit_min_blocks:
        for level, limit in ((CRIT, limits.cache_hit_ratio_crit), (WARN, limits.cache_hit_ratio_warn)):
            if ratio < limit:
                alerts.append(alert("cache_hit_ratio", level, ratio, limit,
                                    "cache hit ratio of database %s is %.4f (limit %s): %d of %d blocks read "
                                    "outside shared_buffers %s" % (stats["database"], ratio, limit, stats["blks_read"],
                                                                   stats["blks_hit"] + stats["blks_read"], since)))
                break
    return alerts


def has_many_dead_tuples(dead, live, limits):
    """Over dead_tuples_min dead tuples and over dead_tuples_ratio of the live ones."""
    return dead > limits.dead_tuples_min and dead > limits.dead_tuples_ratio * live


def dead_tuple_alerts(tables, limits):
    """One warn alert naming the tables with many dead tuples (most dead tuples first), or none."""
    if not tables:
        return []
    return [alert("dead_tuples", WARN, tables[0]["dead_tuples"], limits.dead_tuples_min,
                  "%d table(s) with over %d dead tuples and over %s%% of their live rows: %s"
                  % (len(tables), limits.dead_tuples_min, round(limits.dead_tuples_ratio * 100, 2),
                     some(["%s (%d dead, %d live)" % (t["name"], t["dead_tuples"], t["live_tuples"]) for t in tables])))]


def is_seq_scan_heavy(seq_scan, idx_scan, live, limits):
    """A table big enough, scanned sequentially often enough and much more often than through an index."""
    return live >= limits.seq_scan_min_rows and seq_scan >= limits.seq_scan_min_count \
        and seq_scan > limits.seq_scan_ratio * (idx_scan or 0)


def wraparound_alerts(databases, limits):
    """One alert for the databases whose oldest unfrozen transaction ID is too old (worst level), or none."""
    for level, limit in ((CRIT, limits.wraparound_crit), (WARN, limits.wraparound_warn)):
        old = [d for d in databases if d["age"] > limit]
        if old:
            worst = old[0]
            return [alert("wraparound", level, worst["age"], limit,
                          "transaction ID age of %d database(s) over %d: %s; PostgreSQL stops accepting writes near "
                          "%d. Check that (anti-wraparound) autovacuum runs and finishes there"
                          % (len(old), limit, some(["%s %d (%.1f%%)" % (d["database"], d["age"], d["percent"])
                                                    for d in old]), XID_LIMIT))]
    return []


def index_alerts(invalid):
    """A warn alert for invalid indexes (a failed or still running CREATE INDEX CONCURRENTLY), or none."""
    if not invalid:
        return []
    return [alert("invalid_indexes", WARN, len(invalid), 0,
                  "%d invalid index(es), left by a failed CREATE INDEX CONCURRENTLY or one still running; "
                  "they slow writes and serve no reads, drop and create them again: %s"
                  % (len(invalid), some([i["name"] for i in invalid])))]


# --- Reading the server -----------------------------------------------------------------------------------------

CONNECTIONS_QUERY = """
SELECT coalesce(state, 'unknown'), count(*) FROM pg_stat_activity WHERE backend_type = 'client backend' GROUP BY 1
"""

SETTINGS_QUERY = """
SELECT current_setting('max_connections')::int, current_setting('superuser_reserved_connections')::int
"""

# Client backends only: autovacuum workers and WAL senders run long by design.
ACTIVITY_QUERY = """
SELECT pid, datname, usename, application_name, client_addr::text, state, wait_event_type, wait_event,
       round(EXTRACT(EPOCH FROM now() - query_start)::numeric, 1)::float8,
       round(EXTRACT(EPOCH FROM now() - xact_start)::numeric, 1)::float8,
       round(EXTRACT(EPOCH FROM now() - state_change)::numeric, 1)::float8,
       left(query, %s)
FROM pg_stat_activity
WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()
"""
ACTIVITY_FIELDS = ("pid", "database", "user", "application_name", "client_addr", "state", "wait_event_type",
                   "wait_event", "query_seconds", "transaction_seconds", "state_seconds", "query")

DATABASE_STATS_QUERY = """
SELECT datname, numbackends, xact_commit, xact_rollback, blks_read, blks_hit, conflicts, deadlocks, temp_files,
       temp_bytes, to_char(stats_reset AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"')
FROM pg_stat_database WHERE datname = current_database()
"""
DATABASE_STATS_FIELDS = ("database", "backends", "xact_commit", "xact_rollback", "blks_read", "blks_hit", "conflicts",
                         "deadlocks", "temp_files", "temp_bytes", "stats_reset")


def _age(column):
    return "round(EXTRACT(EPOCH FROM now() - %s))::bigint" % column


# No pg_relation_size() here: it would wait for the lock of a table being rewritten.
TABLES_QUERY = """
SELECT schemaname || '.' || relname, n_live_tup, n_dead_tup, seq_scan, seq_tup_read, idx_scan,
       %s, %s, %s, %s
FROM pg_stat_user_tables
""" % (_age("last_vacuum"), _age("last_autovacuum"), _age("last_analyze"), _age("last_autoanalyze"))
TABLE_FIELDS = ("name", "live_tuples", "dead_tuples", "seq_scan", "seq_tup_read", "idx_scan", "since_last_vacuum",
                "since_last_autovacuum", "since_last_analyze", "since_last_autoanalyze")

WRAPAROUND_QUERY = """
SELECT datname, age(datfrozenxid), current_setting('autovacuum_freeze_max_age')::bigint
FROM pg_database ORDER BY 2 DESC, 1
"""

# Unique, primary-key and exclusion indexes enforce rules even unscanned; indexes behind constraints too.
UNUSED_INDEXES_QUERY = """
SELECT s.schemaname || '.' || s.indexrelname, s.schemaname || '.' || s.relname, pg_relation_size(s.indexrelid),
       pg_size_pretty(pg_relation_size(s.indexrelid)), pg_get_indexdef(s.indexrelid)
FROM pg_stat_user_indexes s JOIN pg_index i ON i.indexrelid = s.indexrelid
WHERE s.idx_scan = 0 AND i.indisvalid AND NOT i.indisunique AND NOT i.indisprimary AND NOT i.indisexclusion
  AND NOT EXISTS (SELECT 1 FROM pg_constraint c WHERE c.conindid = s.indexrelid)
ORDER BY 3 DESC, 1
LIMIT %s
"""
UNUSED_INDEX_FIELDS = ("name", "table", "size", "size_pretty", "definition")

INVALID_INDEXES_QUERY = """
SELECT n.nspname || '.' || c.relname, n.nspname || '.' || t.relname, pg_get_indexdef(c.oid)
FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_class t ON t.oid = i.indrelid
JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE NOT i.indisvalid ORDER BY 1
"""

EXTENSION_QUERY = """
SELECT n.nspname, e.extversion FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace
WHERE e.extname = 'pg_stat_statements'
"""

# This database's statements only; the share is of the total time of all of them.
STATEMENTS_QUERY = """
SELECT queryid, left(query, %s), calls, round(total_exec_time::numeric, 3)::float8,
       round(mean_exec_time::numeric, 3)::float8, rows,
       round((100 * total_exec_time / nullif(sum(total_exec_time) OVER (), 0))::numeric, 2)::float8
FROM {} WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())
ORDER BY {} DESC LIMIT %s
"""
STATEMENT_FIELDS = ("queryid", "query", "calls", "total_time_ms", "mean_time_ms", "rows", "percent_of_total")


class ConnectionLost(Exception):
    """The server stopped answering mid-run."""


class Health:
    """Runs the chosen checks over one autocommit psycopg2 connection; reads only."""

    def __init__(self, conn, limits, statements_top=10, max_items=25):
        self.conn = conn
        self.limits = limits
        self.statements_top = statements_top
        self.max_items = max_items
        self.alerts = []
        self.notes = []
        self.failed = []

    def rows(self, query, params=None):
        with self.conn.cursor() as cur:
            cur.execute(query, params)
            return cur.fetchall()

    def run(self, checks, timeout_ms):
        """Facts of the checks as one dict; alerts, notes and failed checks are kept on self.

        Each check is its own statement(s) under the timeouts: one that fails (timeout, permission) is
        reported and the others still run.
        """
        with self.conn.cursor() as cur:
            set_timeouts(cur, timeout_ms, timeout_ms)
        facts = {}
        for check in CHECKS:
            if check not in checks:
                continue
            try:
                facts.update(getattr(self, "check_" + check)())
            except psycopg2.Error as exc:
                if not connected(self.conn):
                    raise ConnectionLost(str(exc).strip()) from exc
                self.failed.append(dict(check=check, error=str(exc).strip()))
        if self.failed:
            self.alerts.append(alert("check_failed", WARN, len(self.failed), 0,
                                     "%d check(s) could not run: %s" % (len(self.failed), "; ".join(
                                         "%s: %s" % (f["check"], f["error"]) for f in self.failed))))
        return facts

    def check_database_size(self):
        [(size, pretty)] = self.rows(
            "SELECT pg_database_size(current_database()), pg_size_pretty(pg_database_size(current_database()))")
        return dict(database_size=size, database_size_pretty=pretty)

    def check_connections(self):
        by_state = dict(self.rows(CONNECTIONS_QUERY))
        [(max_connections, reserved)] = self.rows(SETTINGS_QUERY)
        total = sum(by_state.values())
        self.alerts += connection_alerts(total, max_connections, self.limits)
        return dict(connections=dict(total=total, max_connections=max_connections, superuser_reserved=reserved,
                                     percent=round(total * 100.0 / max_connections, 1), by_state=by_state))

    def check_activity(self):
        sessions = [dict(zip(ACTIVITY_FIELDS, row, strict=True)) for row in self.rows(ACTIVITY_QUERY, (QUERY_TEXT_LIMIT,))]
        long_queries, long_transactions, idle, alerts = activity(sessions, self.limits)
        self.alerts += alerts
        return dict(long_queries=long_queries[:self.max_items], long_transactions=long_transactions[:self.max_items],
                    idle_in_transaction=idle[:self.max_items])

    def check_database_stats(self):
        stats = dict(zip(DATABASE_STATS_FIELDS, self.rows(DATABASE_STATS_QUERY)[0], strict=True))
        stats["cache_hit_ratio"] = cache_hit_ratio(stats["blks_hit"], stats["blks_read"])
        self.alerts += database_stats_alerts(stats, self.limits)
        return dict(database_stats=stats)

    def tables(self):
        return [dict(zip(TABLE_FIELDS, row, strict=True)) for row in self.rows(TABLES_QUERY)]

    def check_dead_tuples(self):
        heavy = [t for t in self.tables() if has_many_dead_tuples(t["dead_tuples"], t["live_tuples"], self.limits)]
        heavy.sort(key=lambda t: (-t["dead_tuples"], t["name"]))
        for table in heavy:
            table["dead_ratio"] = round(table["dead_tuples"] / float(table["live_tuples"]), 4) if table["live_tuples"] \
                else None
            for key in ("seq_scan", "seq_tup_read", "idx_scan"):
                del table[key]
        self.alerts += dead_tuple_alerts(heavy, self.limits)
        return dict(dead_tuples=heavy[:self.max_items])

    def check_wraparound(self):
        rows = self.rows(WRAPAROUND_QUERY)
        databases = [dict(database=name, age=age, percent=round(age * 100.0 / XID_LIMIT, 2)) for name, age, _max in rows]
        self.alerts += wraparound_alerts(databases, self.limits)
        return dict(wraparound=dict(autovacuum_freeze_max_age=rows[0][2] if rows else None, databases=databases))

    def check_statements(self):
        found = self.rows(EXTENSION_QUERY)
        empty = dict(available=False, version=None, by_mean=[], by_total=[])
        if not found:
            self.notes.append("pg_stat_statements is not installed in this database, so there is no top of "
                              "statements: run CREATE EXTENSION pg_stat_statements in it (the server must also load "
                              "the library through shared_preload_libraries).")
            return dict(statements=empty)
        schema, version = found[0]
        view = sql.Identifier(schema, "pg_stat_statements")
        tops = {}
        try:
            for key, column in (("by_mean", "mean_exec_time"), ("by_total", "total_exec_time")):
                query = sql.SQL(STATEMENTS_QUERY).format(view, sql.Identifier(column))
                tops[key] = [dict(zip(STATEMENT_FIELDS, row, strict=True))
                             for row in self.rows(query, (QUERY_TEXT_LIMIT, self.statements_top))]
        except psycopg2.Error as exc:
            if exc.pgcode != "55000":  # object_not_in_prerequisite_state: the library is not loaded
                raise
            self.notes.append("pg_stat_statements is installed in this database but the server does not load it: "
                              "add it to shared_preload_libraries and restart PostgreSQL (%s)." % str(exc).strip())
            return dict(statements=dict(empty, version=version))
        return dict(statements=dict(available=True, version=version, **tops))

    def check_indexes(self):
        unused = [dict(zip(UNUSED_INDEX_FIELDS, row, strict=True)) for row in self.rows(UNUSED_INDEXES_QUERY, (self.max_items,))]
        invalid = [dict(name=name, table=table, definition=definition)
                   for name, table, definition in self.rows(INVALID_INDEXES_QUERY)]
        self.alerts += index_alerts(invalid)
        return dict(unused_indexes=unused, invalid_indexes=invalid[:self.max_items])

    def check_seq_scans(self):
        heavy = [t for t in self.tables()
                 if is_seq_scan_heavy(t["seq_scan"], t["idx_scan"], t["live_tuples"], self.limits)]
        heavy.sort(key=lambda t: (-t["seq_tup_read"], t["name"]))
        return dict(seq_scan_tables=[dict(name=t["name"], seq_scan=t["seq_scan"], idx_scan=t["idx_scan"],
                                          seq_tup_read=t["seq_tup_read"], live_tuples=t["live_tuples"],
                                          rows_per_seq_scan=t["seq_tup_read"] // max(t["seq_scan"], 1))
                                     for t in heavy[:self.max_items]])
