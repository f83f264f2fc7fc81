#!/usr/bin/python
# Copyright (c) webstack.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: pg_health
short_description: Read-only PostgreSQL health facts with thresholds and alerts
version_added: 0.1.0
description:
  - Reads PostgreSQL's statistics views and returns health facts with an RV(alerts) list (check, level V(warn) or
    V(crit), value, threshold, message) that roles and reports consume, and the worst RV(level).
  - "Checks (O(checks)): V(database_size); V(connections) by state against C(max_connections); V(activity): queries
    and transactions running longer than a threshold and sessions idle in transaction; V(database_stats): deadlocks,
    recovery conflicts, cache hit ratio, temporary files and when the statistics were reset; V(dead_tuples) with the
    ages of the last (auto)vacuum and (auto)analyze; V(wraparound): transaction ID age of every database;
    V(statements): the C(pg_stat_statements) top O(statements_top) by mean and by total time; V(indexes): unused
    and invalid indexes; V(seq_scans): tables read sequentially far more often than through an index
    (missing-index candidates)."
  - Connections, activity and wraparound cover the whole server; the other checks cover O(login_db).
  - Reads only and takes no lock but the C(ACCESS SHARE) lock of C(pg_relation_size) on indexes; every statement
    runs under O(statement_timeout) (and the same C(lock_timeout)) so that a sick server cannot hang the task.
    A check that fails (timeout, permission) is listed in RV(failed_checks) with a C(check_failed) alert, and
    the other checks still run.
notes:
  - The cumulative counters (deadlocks, conflicts, cache hits, index and sequential scans) count since the
    statistics were last reset (RV(database_stats.stats_reset)); C(pg_stat_reset()) starts them again.
  - A role without superuser needs C(pg_monitor) (or C(pg_read_all_stats)) to see other users' sessions and
    C(pg_stat_statements) entries.
  - Written for PostgreSQL 13 and later (C(pg_stat_statements) 1.8 column names); tested with PostgreSQL 15.
  - Keep O(login_password) in a vault.
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - webstack.ops.postgres
attributes:
  check_mode:
    support: full
    details:
      - The module only reads; it runs the same in check mode and never reports a change.
  diff_mode:
    support: none
  platform:
    platforms: posix
options:
  checks:
    description: Checks to run; by default all of them.
    type: list
    elements: str
    choices: [database_size, connections, activity, database_stats, dead_tuples, wraparound, statements, indexes, seq_scans]
    default: [database_size, connections, activity, database_stats, dead_tuples, wraparound, statements, indexes, seq_scans]
  connections_warn_percent:
    description:
      - Warn when client connections reach this percentage of C(max_connections) (postgres_exporter's mixin
        alerts at 80%).
    type: float
    default: 80
  connections_crit_percent:
    description: Critical when client connections reach this percentage of C(max_connections).
    type: float
    default: 90
  long_query_seconds:
    description: Warn about queries active for longer than this many seconds (the guide's 5 minutes).
    type: float
    default: 300
  long_transaction_seconds:
    description:
      - Warn about transactions open for longer than this many seconds, active or idle; they hold locks and keep
        VACUUM from removing dead rows.
    type: float
    default: 300
  idle_in_transaction_seconds:
    description:
      - Warn about sessions idle inside an open transaction for longer than this many seconds (a web request that
        lasts under a second should never leave one for a minute).
    type: float
    default: 60
  deadlocks_max:
    description:
      - Warn when the database's deadlock counter, cumulative since the statistics reset, is above this.
      - V(0) warns about any deadlock; once it is understood, reset the statistics or raise this to the count
        reported, so that only new deadlocks warn.
    type: int
    default: 0
  conflicts_max:
    description: Warn when queries cancelled by recovery conflicts (on a standby), since the statistics reset, are above this.
    type: int
    default: 0
  cache_hit_ratio_warn:
    description:
      - Warn when the share of block reads found in C(shared_buffers) is below this (0 to 1).
      - Web workloads whose working set fits in memory stay above 0.99; below 0.95 (a common monitoring warning)
        the working set no longer fits or large scans read from disk.
    type: float
    default: 0.95
  cache_hit_ratio_crit:
    description: Critical when the cache hit ratio is below this (0 to 1).
    type: float
    default: 0.90
  cache_hit_min_blocks:
    description: Judge the cache hit ratio only once this many blocks were read since the statistics reset, so that fresh statistics do not alert.
    type: int
    default: 10000
  dead_tuples_min:
    description: A table has many dead tuples when it has more than this many and more than O(dead_tuples_ratio) of its live rows.
    type: int
    default: 10000
  dead_tuples_ratio:
    description: Fraction of a table's live rows its dead tuples must exceed, with O(dead_tuples_min), to be listed.
    type: float
    default: 0.1
  wraparound_warn:
    description:
      - Warn when the transaction ID age (C(age(datfrozenxid))) of a database is above this.
      - Autovacuum freezes a database long before its age reaches C(autovacuum_freeze_max_age) (200 million by
        default); one billion, five times that, means freezing is not keeping up. PostgreSQL stops accepting writes
        near 2.1 billion.
    type: int
    default: 1000000000
  wraparound_crit:
    description: Critical when the transaction ID age of a database is above this (about 70% of the way to the stop).
    type: int
    default: 1500000000
  statements_top:
    description: Statements listed by mean time and by total time from C(pg_stat_statements).
    type: int
    default: 10
  seq_scan_min_rows:
    description:
      - A missing-index candidate has at least this many live rows, was read sequentially at least
        O(seq_scan_min_count) times since the statistics reset, and more than O(seq_scan_ratio) times as often as
        through an index.
    type: int
    default: 10000
  seq_scan_min_count:
    description: Sequential scans since the statistics reset a missing-index candidate has at least.
    type: int
    default: 100
  seq_scan_ratio:
    description: How many times more sequential scans than index scans a missing-index candidate has (more than).
    type: float
    default: 10
  max_items:
    description: Longest list returned per fact (sessions, tables, indexes), worst first. Alerts count them all.
    type: int
    default: 25
  statement_timeout:
    description: Seconds each of the module's statements may run or wait for a lock before it is cancelled (0.001 to 2147483).
    type: float
    default: 10
  fail_on:
    description:
      - Fail the task when RV(level) reaches this; V(none) never fails on alerts.
      - The facts are returned either way.
    type: str
    choices: [none, warn, crit]
    default: none
author:
  - webstack.ops maintainers (@webstack)
"""

EXAMPLES = r"""
- name: Read the database's health
  webstack.ops.pg_health:
    login_host: 127.0.0.1
    login_password: "{{ vault_postgres_password }}"
    login_db: webstack
  register: health

- name: Show the alerts
  ansible.builtin.debug:
    msg: "{{ health.alerts | map(attribute='message') | list }}"

- name: The continuous checks only, failing on a critical alert
  webstack.ops.pg_health:
    login_db: webstack
    checks: [connections, activity, database_stats, wraparound]
    long_query_seconds: 120
    fail_on: crit
"""

RETURN = r"""
database:
  description: The database the per-database checks read (O(login_db)).
  returned: success
  type: str
  sample: webstack
server_version:
  description: C(server_version) of the server.
  returned: success
  type: str
  sample: "15.8 (Debian 15.8-0+deb12u1)"
level:
  description: The worst alert level, V(ok) when there is none.
  returned: success, and when O(fail_on) fails the task
  type: str
  sample: warn
alerts:
  description: Alerts raised, empty when all is well.
  returned: success
  type: list
  elements: dict
  contains:
    check:
      description:
        - C(connections), C(long_queries), C(long_transactions), C(idle_in_transaction), C(deadlocks), C(conflicts),
          C(cache_hit_ratio), C(dead_tuples), C(wraparound), C(invalid_indexes) or C(check_failed).
      type: str
    level:
      description: C(warn) or C(crit).
      type: str
    value:
      description: What was measured (percent, seconds, count, ratio, transaction ID age).
      type: raw
    threshold:
      description: The limit it crossed.
      type: raw
    message:
      description: The alert for people, naming the worst session, table or database.
      type: str
  sample: [{"check": "long_queries", "level": "warn", "value": 412.3, "threshold": 300,
            "message": "1 queries running longer than 300 s; longest 412 s (pid 4242, database webstack, user web): SELECT ..."}]
notes:
  description: What could not be read and why, when it is not a failure (C(pg_stat_statements) missing).
  returned: success
  type: list
  elements: str
  sample: ["pg_stat_statements is not installed in this database, so there is no top of statements: ..."]
failed_checks:
  description: Checks that failed (timeout, permission), with the server's message.
  returned: success
  type: list
  elements: dict
  sample: [{"check": "indexes", "error": "canceling statement due to lock timeout"}]
database_size:
  description: Size of O(login_db) in bytes.
  returned: when the database_size check runs
  type: int
  sample: 8437251
database_size_pretty:
  description: The same as C(pg_size_pretty) prints it.
  returned: when the database_size check runs
  type: str
  sample: 8240 kB
connections:
  description: Client connections of the whole server.
  returned: when the connections check runs
  type: dict
  sample: {"total": 12, "max_connections": 100, "superuser_reserved": 3, "percent": 12.0,
           "by_state": {"active": 2, "idle": 9, "idle in transaction": 1}}
long_queries:
  description:
    - Queries active for longer than O(long_query_seconds), longest first, with C(pid), C(database), C(user),
      C(application_name), C(client_addr), C(state), C(wait_event_type), C(wait_event), C(query_seconds),
      C(transaction_seconds), C(state_seconds) and C(query) (first 500 characters).
  returned: when the activity check runs
  type: list
  elements: dict
long_transactions:
  description: Sessions whose transaction is open for longer than O(long_transaction_seconds), same fields.
  returned: when the activity check runs
  type: list
  elements: dict
idle_in_transaction:
  description: Sessions idle in transaction for longer than O(idle_in_transaction_seconds) (C(state_seconds)), same fields.
  returned: when the activity check runs
  type: list
  elements: dict
database_stats:
  description: The C(pg_stat_database) row of O(login_db) and its cache hit ratio.
  returned: when the database_stats check runs
  type: dict
  contains:
    deadlocks:
      description: Deadlocks detected since RV(database_stats.stats_reset).
      type: int
    conflicts:
      description: Queries cancelled by recovery conflicts (standbys only).
      type: int
    cache_hit_ratio:
      description: blks_hit / (blks_hit + blks_read), null before any read.
      type: float
    stats_reset:
      description: When the statistics were last reset (UTC), null if never.
      type: str
  sample: {"database": "webstack", "backends": 4, "xact_commit": 182733, "xact_rollback": 12, "blks_read": 1520,
           "blks_hit": 2883012, "cache_hit_ratio": 0.9995, "conflicts": 0, "deadlocks": 0, "temp_files": 0,
           "temp_bytes": 0, "stats_reset": null}
dead_tuples:
  description:
    - Tables over O(dead_tuples_min) dead tuples and O(dead_tuples_ratio) of their live rows, most first, with
      the seconds since their last vacuum, autovacuum, analyze and autoanalyze (null if never).
  returned: when the dead_tuples check runs
  type: list
  elements: dict
  sample: [{"name": "public.pages_pagevisit", "live_tuples": 20000, "dead_tuples": 15000, "dead_ratio": 0.75,
            "since_last_vacuum": null, "since_last_autovacuum": 86400, "since_last_analyze": null,
            "since_last_autoanalyze": 86390}]
wraparound:
  description: Transaction ID age of every database, oldest first, and its percentage of the 2^31 limit.
  returned: when the wraparound check runs
  type: dict
  sample: {"autovacuum_freeze_max_age": 200000000, "databases": [{"database": "webstack", "age": 184233, "percent": 0.01}]}
statements:
  description:
    - The C(pg_stat_statements) entries of O(login_db), top O(statements_top) by mean and by total execution time,
      with C(queryid), C(query), C(calls), C(total_time_ms), C(mean_time_ms), C(rows) and C(percent_of_total).
    - C(available) is false (and RV(notes) says why) when the extension is missing or not loaded.
  returned: when the statements check runs
  type: dict
  sample: {"available": true, "version": "1.10", "by_mean": [], "by_total": []}
unused_indexes:
  description: Indexes never scanned since the statistics reset that enforce nothing (not unique, primary or constraint), largest first.
  returned: when the indexes check runs
  type: list
  elements: dict
  sample: [{"name": "public.pages_pagevisit_path_idx", "table": "public.pages_pagevisit", "size": 2260992,
            "size_pretty": "2208 kB", "definition": "CREATE INDEX pages_pagevisit_path_idx ON public.pages_pagevisit USING btree (path)"}]
invalid_indexes:
  description: Invalid indexes (a failed or running C(CREATE INDEX CONCURRENTLY)).
  returned: when the indexes check runs
  type: list
  elements: dict
seq_scan_tables:
  description: Missing-index candidates (see O(seq_scan_min_rows)), most rows read sequentially first.
  returned: when the seq_scans check runs
  type: list
  elements: dict
  sample: [{"name": "public.utils_requestfingerprint", "seq_scan": 5210, "idx_scan": 3, "seq_tup_read": 260500000,
            "live_tuples": 50000, "rows_per_seq_scan": 50000}]
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.webstack.ops.plugins.module_utils._alerts import worst_level
from ansible_collections.webstack.ops.plugins.module_utils._pg_health import CHECKS, ConnectionLost, Health, Limits, bad_limits
from ansible_collections.webstack.ops.plugins.module_utils._postgres import (
    MAX_TIMEOUT,
    connect,
    describe_target,
    postgres_argument_spec,
    psycopg2,
    scrub,
)

LIMIT_OPTIONS = dict(
    connections_warn_percent="float", connections_crit_percent="float", long_query_seconds="float",
    long_transaction_seconds="float", idle_in_transaction_seconds="float", deadlocks_max="int", conflicts_max="int",
    cache_hit_ratio_warn="float", cache_hit_ratio_crit="float", cache_hit_min_blocks="int", dead_tuples_min="int",
    dead_tuples_ratio="float", wraparound_warn="int", wraparound_crit="int", seq_scan_min_rows="int",
    seq_scan_min_count="int", seq_scan_ratio="float",
)
FAIL_LEVELS = {"warn": ("warn", "crit"), "crit": ("crit",), "none": ()}


def bad_option(params, limits):
    """What is wrong with the options, or None."""
    problems = [bad_limits(limits)]
    if not params["checks"]:
        problems.append("checks is an empty list: omit it to run every check")
    if params["statements_top"] < 1 or params["max_items"] < 1:
        problems.append("statements_top and max_items must be at least 1")
    if not 0.001 <= params["statement_timeout"] <= MAX_TIMEOUT:
        problems.append("statement_timeout must be between 0.001 and %d seconds" % MAX_TIMEOUT)
    return "; ".join(p for p in problems if p) or None


def main():
    argument_spec = postgres_argument_spec()
    argument_spec.update(
        checks=dict(type="list", elements="str", choices=list(CHECKS), default=list(CHECKS)),
        statements_top=dict(type="int", default=10),
        max_items=dict(type="int", default=25),
        statement_timeout=dict(type="float", default=10),
        fail_on=dict(type="str", choices=["none", "warn", "crit"], default="none"),
    )
    defaults = Limits()
    for name, kind in LIMIT_OPTIONS.items():
        argument_spec[name] = dict(type=kind, default=getattr(defaults, name))
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True)
    params = module.params
    limits = Limits(**{name: params[name] for name in LIMIT_OPTIONS})
    problem = bad_option(params, limits)
    if problem:
        module.fail_json(msg="%s. Nothing was read." % problem)

    conn = connect(module)
    health = Health(conn, limits, params["statements_top"], params["max_items"])
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT current_setting('server_version')")
            version = cur.fetchone()[0]
        facts = health.run(params["checks"], round(params["statement_timeout"] * 1000))
    except ConnectionLost as exc:
        module.fail_json(msg="Lost the connection to %s while reading its health: %s. Check the server's log and "
                             "whether it restarted." % (describe_target(params), scrub(exc, params)))
    except psycopg2.Error as exc:
        module.fail_json(msg="Could not read the health of %s: %s. Check the role's privileges (pg_monitor) and the "
                             "server's log." % (describe_target(params), scrub(exc, params)))
    finally:
        conn.close()

    level = worst_level(health.alerts)
    result = dict(changed=False, database=params["login_db"], server_version=version, level=level,
                  alerts=health.alerts, notes=health.notes, failed_checks=health.failed, **facts)
    if level in FAIL_LEVELS[params["fail_on"]]:
        module.fail_json(msg="%s: health level %s (fail_on=%s): %s" % (
            describe_target(params), level, params["fail_on"],
            "; ".join("%s %s" % (a["level"].upper(), a["message"]) for a in health.alerts)), **result)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
