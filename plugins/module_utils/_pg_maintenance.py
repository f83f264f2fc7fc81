# Copyright (c) webstack.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""VACUUM / ANALYZE planning and execution behind the pg_maintenance module."""

from __future__ import annotations

import time
from dataclasses import dataclass

from ansible_collections.webstack.ops.plugins.module_utils._postgres import (
    connected,
    psycopg2,
    qualified_name,
    set_timeouts,
    sql,
)

ACTIONS = ("analyze", "vacuum", "vacuum_analyze", "vacuum_full")

# Statement per action; the table is always a quoted sql.Identifier.
STATEMENTS = {
    "analyze": "ANALYZE {}",
    "vacuum": "VACUUM {}",
    "vacuum_analyze": "VACUUM (ANALYZE) {}",
    "vacuum_full": "VACUUM (FULL) {}",
}

# Other sessions' temporary tables are left out: VACUUM skips them anyway.
TABLE_STATS_QUERY = """
SELECT s.schemaname, s.relname, s.n_live_tup, s.n_dead_tup, s.n_mod_since_analyze,
       COALESCE(s.last_analyze, s.last_autoanalyze) IS NOT NULL AS analyzed, c.reltuples,
       c.relkind = 'p' AS partitioned,
       (SELECT n.nspname || '.' || r.relname FROM pg_class r JOIN pg_namespace n ON n.oid = r.relnamespace
        WHERE c.relispartition AND r.oid = pg_partition_root(c.oid)) AS partition_of
FROM pg_stat_user_tables s JOIN pg_class c ON c.oid = s.relid
WHERE c.relpersistence <> 't'
ORDER BY s.schemaname, s.relname
"""


class MaintenanceError(Exception):
    """Bad input found before anything ran; the message says what to fix."""


class ConnectionLost(Exception):
    """The server went away mid-run; `done` holds the tables finished before."""

    def __init__(self, error, done):
        super().__init__(str(error).strip())
        self.done = done


@dataclass(frozen=True)
class Thresholds:
    """When a table needs work, in the spirit of autovacuum's formula (threshold + scale factor * rows)."""

    vacuum_threshold: int = 50
    vacuum_scale_factor: float = 0.1
    analyze_threshold: int = 50
    analyze_scale_factor: float = 0.05


@dataclass(frozen=True)
class TableStats:
    schema: str
    name: str
    live_tuples: int
    dead_tuples: int
    changed_since_analyze: int
    analyzed: bool
    reltuples: float
    partitioned: bool = False
    partition_of: str | None = None

    @property
    def qualified(self):
        return "%s.%s" % (self.schema, self.name)

    @property
    def rows(self):
        # reltuples is -1 until the first VACUUM or ANALYZE; fall back to the live-tuple count then.
        return self.reltuples if self.reltuples >= 0 else self.live_tuples


def vacuum_reason(table, limits):
    """Why the table needs a VACUUM, or None when its dead tuples are under the limit."""
    limit = limits.vacuum_threshold + limits.vacuum_scale_factor * table.rows
    if table.dead_tuples > limit:
        return "%d dead tuples > %d" % (table.dead_tuples, limit)
    return None


def analyze_reason(table, limits):
    """Why the table needs an ANALYZE, or None when its statistics are fresh enough."""
    if not table.analyzed and table.rows > 0:
        return "never analyzed"
    limit = limits.analyze_threshold + limits.analyze_scale_factor * table.rows
    if table.changed_since_analyze > limit:
        return "%d rows changed since last analyze > %d" % (table.changed_since_analyze, limit)
    return None


def reason_for(action, table, limits):
    """Why `action` is needed on the table, or None when it can be skipped."""
    if action == "analyze":
        return analyze_reason(table, limits)
    if action in ("vacuum", "vacuum_full"):
        return vacuum_reason(table, limits)
    return vacuum_reason(table, limits) or analyze_reason(table, limits)


def partition_parent_reason(table, partitions_planned):
    """Why a partitioned table needs ANALYZE: a partition of it is worked on this run, or it never was
    analyzed (autovacuum never analyzes it, and PostgreSQL keeps no change counts for it)."""
    if partitions_planned:
        return "partitions changed: %s" % ", ".join(partitions_planned)
    return None if table.analyzed else "never analyzed"


def resolve_tables(requested, known):
    """Map requested names (`table` or `schema.table`) to known tables, all or nothing.

    An exact table name wins over a schema.table split, so a table whose name
    contains a dot is still found. Raises MaintenanceError naming every unknown
    or ambiguous name before any statement runs.
    """
    by_name = {}
    by_qualified = {}
    for table in known:
        by_name.setdefault(table.name, []).append(table)
        by_qualified[(table.schema, table.name)] = table
    resolved, unknown, ambiguous = [], [], []
    blank = [name for name in requested if not name.strip()]
    if blank:
        raise MaintenanceError("empty table name in tables: %r. Nothing was run." % (requested,))
    for name in requested:
        matches = by_name.get(name, [])
        if not matches and "." in name:
            schema, table = name.split(".", 1)
            matches = [by_qualified[(schema, table)]] if (schema, table) in by_qualified else []
        if len(matches) > 1:
            ambiguous.append("%s (in schemas %s)" % (name, ", ".join(t.schema for t in matches)))
        elif not matches:
            unknown.append(name)
        elif matches[0] not in resolved:
            resolved.append(matches[0])
    problems = []
    if unknown:
        problems.append("unknown table(s): %s (not a table of this database: a view, a typo or another database?)"
                        % ", ".join(unknown))
    if ambiguous:
        problems.append("ambiguous table(s), name them as schema.table: %s" % "; ".join(ambiguous))
    if problems:
        raise MaintenanceError("%s. Nothing was run." % "; ".join(problems))
    return resolved


class Maintenance:
    """Plans and runs VACUUM/ANALYZE over one database through an autocommit psycopg2 connection."""

    def __init__(self, conn, action, limits):
        self.conn = conn
        self.action = action
        self.limits = limits

    def table_stats(self):
        with self.conn.cursor() as cur:
            cur.execute("SELECT pg_stat_clear_snapshot()")
            cur.execute(TABLE_STATS_QUERY)
            return [TableStats(*row) for row in cur.fetchall()]

    def statement(self, table):
        action = "analyze" if table.partitioned else self.action  # VACUUM of a parent would redo its partitions
        return sql.SQL(STATEMENTS[action]).format(qualified_name(table.schema, table.name))

    def plan(self, requested, only_if_needed):
        """Tables to work on and tables skipped (with the reason) for this run."""
        known = self.table_stats()
        targets = resolve_tables(requested, known) if requested is not None else known
        todo, skipped = [], []
        for table in targets:
            if table.partitioned:
                continue
            reason = reason_for(self.action, table, self.limits) if only_if_needed else "requested"
            if reason:
                todo.append((table, reason))
            else:
                skipped.append({"name": table.qualified, "reason": self.skip_reason(table)})
        # Partitioned tables get ANALYZE only: VACUUM of one would redo its partitions.
        for parent in (t for t in targets if t.partitioned):
            if self.action not in ("analyze", "vacuum_analyze"):
                skipped.append({"name": parent.qualified, "reason": "partitioned table: its partitions are vacuumed one by one"})
                continue
            partitions = [t.qualified for t, _reason in todo if t.partition_of == parent.qualified]
            reason = partition_parent_reason(parent, partitions) if only_if_needed else "requested"
            if reason:
                todo.append((parent, reason))
            else:
                skipped.append({"name": parent.qualified, "reason": "partitioned table: no partition changed"})
        return todo, skipped

    @staticmethod
    def skip_reason(table):
        return "below thresholds: %d dead tuples, %d rows changed since last analyze, %d rows" % (
            table.dead_tuples, table.changed_since_analyze, table.rows)

    def run(self, todo, lock_timeout_ms=0, statement_timeout_ms=0):
        """Run the planned statements one table at a time; a failing table does not stop the others.

        The timeouts hold for these statements only, so a busy table fails fast instead of hanging the run.
        """
        done, failed = [], []
        with self.conn.cursor() as cur:
            set_timeouts(cur, lock_timeout_ms, statement_timeout_ms)
            for table, reason in todo:
                started = time.monotonic()
                try:
                    cur.execute(self.statement(table))
                except psycopg2.Error as exc:
                    if not connected(self.conn):
                        raise ConnectionLost(exc, done) from exc
                    failed.append({"name": table.qualified, "error": str(exc).strip()})
                    continue
                done.append({
                    "name": table.qualified,
                    "action": "analyze" if table.partitioned else self.action,
                    "reason": reason,
                    "seconds": round(time.monotonic() - started, 4),
                    "dead_tuples_before": table.dead_tuples,
                })
            set_timeouts(cur, 0, 0)
        after = {t.qualified: t.dead_tuples for t in self.table_stats()} if done else {}
        for entry in done:
            entry["dead_tuples_after"] = after.get(entry["name"])
        return done, failed
