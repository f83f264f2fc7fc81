# Copyright (c) webstack.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Batched retention deletes behind the pg_retention module (private to the collection).

Each table is walked in ranges of its integer primary key (or of its heap pages, by ctid, when it has
none), one DELETE per range, each committed on its own: no lock is held longer than one batch, and
replication and autovacuum keep up. The range width adapts to a time budget per batch.
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass, field

from ansible_collections.webstack.ops.plugins.module_utils._postgres import (
    connected,
    psycopg2,
    qualified_name,
    set_timeouts,
    sql,
)

# Base types a retention column may have, as SQL type names to cast the cutoff to.
TIME_TYPES = {"timestamptz": "timestamptz", "timestamp": "timestamp", "date": "date"}
INTEGER_TYPES = ("int2", "int4", "int8")
MIN_CTID_SERVER = 140000  # TID range scans (PostgreSQL 14) keep a ctid batch to its pages
MAX_GROWTH = 20  # the batch size stays between batch_size / MAX_GROWTH and batch_size * MAX_GROWTH
ROWS_PER_PAGE_GUESS = 50  # for a table never analyzed, to turn batch_size rows into pages

# Candidate tables: ordinary and partitioned, no catalogs, no temporary tables (other sessions' or ours).
TABLES_QUERY = """
SELECT c.oid, n.nspname, c.relname, c.relkind, pg_table_is_visible(c.oid)
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind IN ('r', 'p') AND c.relpersistence <> 't'
  AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg\\_toast%%'
  AND (c.relname = ANY(%(names)s) OR n.nspname || '.' || c.relname = ANY(%(names)s))
"""
# Columns with their base type (a domain counts as the type it is over).
COLUMNS_QUERY = """
SELECT a.attname, b.typname, format_type(a.atttypid, a.atttypmod)
FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid
JOIN pg_type b ON b.oid = CASE WHEN t.typtype = 'd' THEN t.typbasetype ELSE t.oid END
WHERE a.attrelid = %s AND a.attnum > 0 AND NOT a.attisdropped
"""
PRIMARY_KEY_QUERY = """
SELECT a.attname, t.typname
FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = i.indkey[0]
JOIN pg_type t ON t.oid = a.atttypid
WHERE i.indrelid = %s AND i.indisprimary AND i.indnkeyatts = 1
"""


class RetentionError(Exception):
    """Bad input found before anything was deleted; the message says what to fix."""


class ConnectionLost(Exception):
    """The server went away mid-run; `report` is the table's report up to then, when in a walk."""

    def __init__(self, error, report=None):
        super().__init__(error)
        self.report = report


@dataclass(frozen=True)
class Policy:
    """One table's retention rule as the user gave it."""

    name: str
    days: int
    column: str = "created_at"
    where: dict = field(default_factory=dict)
    max_rows: int = 0


@dataclass
class Target:
    """A policy resolved against the catalog: everything reaching SQL was found there."""

    policy: Policy
    oid: int
    schema: str
    name: str
    column_type: str
    key: str | None  # single-column integer primary key, or None for the ctid walk

    @property
    def qualified(self):
        return "%s.%s" % (self.schema, self.name)

    @property
    def method(self):
        return "key_range" if self.key else "ctid"


def policy_problems(policies):
    """What is wrong with the policies themselves (no database needed), as messages."""
    problems = []
    for i, policy in enumerate(policies):
        where = "tables[%d] (%s)" % (i, policy.name)
        if not policy.name.strip():
            problems.append("tables[%d]: empty table name" % i)
        if policy.days < 1:
            problems.append("%s: days must be 1 or more, got %s (an age of zero or less would delete current rows)"
                            % (where, policy.days))
        if not policy.column.strip():
            problems.append("%s: empty column name" % where)
        if policy.max_rows < 0:
            problems.append("%s: max_rows must be 0 (no cap) or more, got %s" % (where, policy.max_rows))
        for column, value in policy.where.items():
            if value is not None and not isinstance(value, (str, int, float, bool)):
                problems.append("%s: where.%s must be a string, number, boolean or null, got %r" % (where, column, value))
    return problems


def next_batch_size(size, seconds, budget, low, high):
    """The next batch's size, moved toward what fits in `budget` seconds at the rate just seen.

    At most doubled or halved per batch (one slow batch, say a checkpoint, does not collapse it), and kept
    within [low, high]. A budget of 0 keeps the size fixed.
    """
    if budget <= 0:
        return size
    factor = 2.0 if seconds <= 0 else min(2.0, max(0.5, budget / seconds))
    return int(min(high, max(low, size * factor)))


def batch_bounds(batch_size):
    """(low, high) the adapted batch size stays within."""
    return max(1, batch_size // MAX_GROWTH), batch_size * MAX_GROWTH


def pick(name, found):
    """The one catalog row for a requested name: exact table name first, then schema.table;
    among several schemas, the one the search_path sees. Returns (row, problem)."""
    matches = [row for row in found if row[2] == name]
    if not matches and "." in name:
        matches = [row for row in found if "%s.%s" % (row[1], row[2]) == name]
    if len(matches) > 1:
        visible = [row for row in matches if row[4]]
        if len(visible) == 1:
            return visible[0], None
        return None, "ambiguous table %s (in schemas %s): name it as schema.table" % (
            name, ", ".join(sorted(row[1] for row in matches)))
    if not matches:
        return None, "unknown table %s (not a table of this database: a view, a typo or another database?)" % name
    return matches[0], None


class Retention:
    """Plans and runs retention deletes over one database through an autocommit psycopg2 connection."""

    def __init__(self, conn):
        self.conn = conn

    # ------------------------------------------------------------ planning (nothing deleted)

    def plan(self, policies, method="auto"):
        """Resolve every policy against the catalog; RetentionError naming every problem, before any delete.

        `method`: auto (key ranges when the table has a single-column integer primary key, else ctid ranges),
        key_range or ctid.
        """
        problems = policy_problems(policies)
        with self.conn.cursor() as cur:
            cur.execute(TABLES_QUERY, {"names": sorted({p.name for p in policies})})
            found = cur.fetchall()
            cur.execute("SELECT current_setting('server_version_num')::int")
            server_version = cur.fetchone()[0]
            targets = []
            for i, policy in enumerate(policies):
                if not policy.name.strip():
                    continue  # already reported
                row, problem = pick(policy.name, found)
                if problem:
                    problems.append("tables[%d]: %s" % (i, problem))
                    continue
                _oid, schema, name, relkind, _visible = row
                target, problem = self._target(cur, policy, row, method)
                if not problem and target.key is None and relkind == "p":
                    problem = ("a partitioned table is not walked by ctid (it needs a single-column integer primary "
                               "key and method auto or key_range): list its partitions instead")
                if not problem and target.key is None and server_version < MIN_CTID_SERVER:
                    problem = ("walking by ctid (no single-column integer primary key, or method ctid) needs "
                               "PostgreSQL 14 or later (server is %d)" % server_version)
                if problem:
                    problems.append("tables[%d] (%s.%s): %s" % (i, schema, name, problem))
                else:
                    targets.append(target)
        if problems:
            raise RetentionError("; ".join(problems))
        return targets

    @staticmethod
    def _target(cur, policy, row, method):
        oid, schema, name, _relkind, _visible = row
        cur.execute(COLUMNS_QUERY, (oid,))
        columns = {column: (base, shown) for column, base, shown in cur.fetchall()}
        types = {column: base for column, (base, _shown) in columns.items()}
        if policy.column not in types:
            return None, "unknown column %s" % policy.column
        if types[policy.column] not in TIME_TYPES:
            return None, "column %s is %s, not a timestamp, timestamptz or date" % (policy.column, columns[policy.column][1])
        unknown = [column for column in policy.where if column not in types]
        if unknown:
            return None, "unknown column(s) in where: %s" % ", ".join(unknown)
        cur.execute(PRIMARY_KEY_QUERY, (oid,))
        pk = cur.fetchone()
        key = pk[0] if pk and pk[1] in INTEGER_TYPES and method != "ctid" else None
        if key is None and method == "key_range":
            return None, "no single-column integer primary key to walk (method auto or ctid walks heap pages)"
        return Target(policy, oid, schema, name, types[policy.column], key), None

    def condition(self, target):
        """The row filter: column older than the cutoff, and the where pairs (quoted identifiers, parameters)."""
        parts = [sql.SQL("{} < %(cutoff)s").format(sql.Identifier(target.policy.column))]
        params = {}
        for i, (column, value) in enumerate(sorted(target.policy.where.items())):
            if value is None:
                parts.append(sql.SQL("{} IS NULL").format(sql.Identifier(column)))
            else:
                placeholder = "w%d" % i
                parts.append(sql.SQL("{} = {}").format(sql.Identifier(column), sql.Placeholder(placeholder)))
                params[placeholder] = value
        return sql.SQL(" AND ").join(parts), params

    def statements(self, target):
        """(DELETE of one range, the same capped at %(limit)s rows)."""
        table = qualified_name(target.schema, target.name)
        cond, _params = self.condition(target)
        if target.key:
            key = sql.Identifier(target.key)
            in_range = sql.SQL("{key} >= %(lo)s AND {key} < %(hi)s").format(key=key)
            plain = sql.SQL("DELETE FROM {t} WHERE {r} AND {c}").format(t=table, r=in_range, c=cond)
            capped = sql.SQL("DELETE FROM {t} WHERE {key} IN (SELECT {key} FROM {t} WHERE {r} AND {c} "
                             "ORDER BY {key} LIMIT %(limit)s)").format(t=table, key=key, r=in_range, c=cond)
        else:
            in_range = sql.SQL("ctid >= %(lo)s::tid AND ctid < %(hi)s::tid")
            plain = sql.SQL("DELETE FROM {t} WHERE {r} AND {c}").format(t=table, r=in_range, c=cond)
            capped = sql.SQL("DELETE FROM {t} WHERE ctid = ANY(ARRAY(SELECT ctid FROM {t} WHERE {r} AND {c} "
                             "LIMIT %(limit)s))").format(t=table, r=in_range, c=cond)
        return plain, capped

    def prepare(self, target, count=False):
        """Cutoff and the range to walk, read once: {cutoff, low, high[, matching]}.

        The cutoff is the server's now() minus the age, in the column's type, fixed for the whole walk.
        `low`/`high` are the smallest and largest key of the rows to delete (None when there is none),
        or heap pages 0 to the table's size for the ctid walk.
        """
        started = time.monotonic()
        table = qualified_name(target.schema, target.name)
        cond, params = self.condition(target)
        with self.conn.cursor() as cur:
            cur.execute(sql.SQL("SELECT CAST(now() - make_interval(days => %s) AS {})").format(
                sql.SQL(TIME_TYPES[target.column_type])), (target.policy.days,))
            params["cutoff"] = cur.fetchone()[0]
            plan = {"cutoff": params["cutoff"]}
            if target.key:
                key = sql.Identifier(target.key)
                cur.execute(sql.SQL("SELECT min({k}), max({k}){n} FROM {t} WHERE {c}").format(
                    k=key, t=table, c=cond, n=sql.SQL(", count(*)" if count else "")), params)
                row = cur.fetchone()
                plan.update(low=row[0], high=row[1])
            else:
                cur.execute("SELECT pg_relation_size(%s) / current_setting('block_size')::int, reltuples, relpages "
                            "FROM pg_class WHERE oid = %s", (target.oid, target.oid))
                pages, reltuples, relpages = cur.fetchone()
                plan.update(low=0, high=pages, rows_per_page=reltuples / relpages if relpages and reltuples > 0
                            else ROWS_PER_PAGE_GUESS)
                if count:
                    cur.execute(sql.SQL("SELECT count(*) FROM {t} WHERE {c}").format(t=table, c=cond), params)
                    row = (cur.fetchone()[0],)
            if count:
                plan["matching"] = row[-1]
        plan["seconds"] = time.monotonic() - started
        return plan

    # ------------------------------------------------------------ running

    def walk(self, target, plan, batch_size, batch_seconds, max_rows):
        """Delete in committed batches; returns the table's report. A psycopg2 error stops this table: the
        report gets `error`, batches already committed stay done."""
        report = self.new_report(target, plan)
        if plan["low"] is None:
            return report
        started = time.monotonic() - plan["seconds"]  # the table's time includes reading its bounds
        plain, capped = self.statements(target)
        _cond, base = self.condition(target)
        base["cutoff"] = plan["cutoff"]
        if target.key:
            size = batch_size
            low, high = batch_bounds(batch_size)
            position, end = plan["low"], plan["high"] + 1
        else:
            size = max(1, int(batch_size / max(plan["rows_per_page"], 1)))
            low, high = max(1, size // MAX_GROWTH), size * MAX_GROWTH
            position, end = plan["low"], plan["high"]
        with self.conn.cursor() as cur:
            if not target.key:  # only TID range scans: a batch reads its own pages, never the whole index
                cur.execute("SELECT set_config('enable_indexscan', 'off', false), "
                            "set_config('enable_bitmapscan', 'off', false), set_config('enable_seqscan', 'off', false)")
            try:
                while position < end:
                    remaining = max_rows - report["rows"] if max_rows else None
                    stop = position + size if target.key else min(position + size, end)
                    params = dict(base, lo=self.bound(target, position), hi=self.bound(target, stop), limit=remaining)
                    # A key range holds at most `size` rows; a page range of ctids may hold more.
                    limited = remaining is not None and (remaining < size or not target.key)
                    took = time.monotonic()
                    try:
                        cur.execute(capped if limited else plain, params)
                    except psycopg2.Error as exc:
                        report["error"] = str(exc).strip()
                        if not connected(self.conn):
                            raise ConnectionLost(report["error"], report) from exc
                        break
                    took = time.monotonic() - took
                    report["rows"] += cur.rowcount
                    report["batches"] += 1
                    report["longest_batch_seconds"] = round(max(report["longest_batch_seconds"], took), 4)
                    if limited and cur.rowcount >= remaining:
                        report["capped"] = True
                        break
                    position = stop
                    size = next_batch_size(size, took, batch_seconds, low, high)
            finally:
                if not target.key and not self.conn.closed:
                    with contextlib.suppress(psycopg2.Error):  # the connection is gone: its error is already raised
                        cur.execute("RESET enable_indexscan; RESET enable_bitmapscan; RESET enable_seqscan")
        report["seconds"] = round(time.monotonic() - started, 4)
        return report

    @staticmethod
    def bound(target, position):
        return position if target.key else "(%d,0)" % position

    def new_report(self, target, plan):
        cutoff = plan["cutoff"]
        return {
            "name": target.qualified,
            "column": target.policy.column,
            "days": target.policy.days,
            "where": dict(target.policy.where),
            "cutoff": cutoff.isoformat() if hasattr(cutoff, "isoformat") else str(cutoff),
            "method": target.method,
            "key": target.key,
            "statement": self.statements(target)[0].as_string(self.conn),
            "rows": 0,
            "batches": 0,
            "longest_batch_seconds": 0.0,
            "seconds": round(plan["seconds"], 4),
            "capped": False,
            "analyzed": False,
        }

    def analyze(self, target):
        """ANALYZE the table: its statistics after a large delete would mislead the planner. The error, or None."""
        try:
            with self.conn.cursor() as cur:
                cur.execute(sql.SQL("ANALYZE {}").format(qualified_name(target.schema, target.name)))
        except psycopg2.Error as exc:
            if not connected(self.conn):
                raise ConnectionLost(str(exc).strip()) from exc
            return str(exc).strip()
        return None

    def set_timeouts(self, lock_timeout_ms, statement_timeout_ms):
        with self.conn.cursor() as cur:
            set_timeouts(cur, lock_timeout_ms, statement_timeout_ms)
