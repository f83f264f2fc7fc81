#!/usr/bin/python
# Copyright (c) webstack.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: pg_retention
short_description: Delete PostgreSQL rows older than an age, in small committed batches
version_added: 0.1.0
description:
  - Deletes the rows of one or more tables whose timestamp column is older than a number of days, optionally only
    those matching extra column values, the way a production database can take it.
  - Each table is walked in ranges of its single-column integer primary key (the bigint C(id) of a Django table),
    one C(DELETE) per range, each committed on its own, so no lock is held longer than one batch and replication
    and autovacuum keep up. A table without such a key is walked by heap pages (C(ctid) ranges, PostgreSQL 14 or
    later); O(method) chooses.
  - The range width starts at O(batch_size) and then follows O(batch_seconds), the time budget of one batch.
  - Every table, column and filter column is checked against the catalog before anything is deleted, and reaches
    SQL only as a quoted identifier; filter values are query parameters.
notes:
  - Keep O(login_password) in a vault. Ad hoc C(ansible -m ... -a) runs may echo module arguments on failure;
    there leave O(login_password) empty and let libpq read C(PGPASSWORD) or C(~/.pgpass) on the managed host.
  - The cutoff is the server's C(now()) minus the age, read once per table at the start of its walk.
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - webstack.ops.postgres
attributes:
  check_mode:
    support: full
    details:
      - In check mode nothing is deleted; RV(tables[].rows) is the number of rows that would be deleted (with
        O(max_rows) applied) and RV(tables[].matching) the number of rows past the cutoff.
  diff_mode:
    support: none
  platform:
    platforms: posix
options:
  tables:
    description:
      - The retention rules, one per table. A table may appear more than once (with different filters).
    type: list
    elements: dict
    required: true
    suboptions:
      name:
        description:
          - Table, as V(table) or V(schema.table). An unknown or ambiguous name fails the task before anything is deleted.
        type: str
        required: true
      column:
        description: Column holding the row's time, of type C(timestamp), C(timestamptz) or C(date).
        type: str
        default: created_at
      days:
        description: Rows whose O(tables[].column) is older than this many days are deleted. Must be 1 or more.
        type: int
        required: true
      where:
        description:
          - Delete only the rows whose columns equal these values (column name to value, all must match);
            a V(null) value matches C(IS NULL). For example C(is_suspicious) set to V(false) deletes only the
            fingerprints not marked suspicious.
        type: dict
      max_rows:
        description: Most rows deleted from this table in this run; overrides O(max_rows).
        type: int
  batch_size:
    description:
      - Width of the first batch, in primary-key values (rows, for a table without gaps), or its equivalent in
        heap pages for the ctid walk. Must be 1 or more.
      - With O(batch_seconds), later batches are between 1/20 and 20 times this.
    type: int
    default: 20000
  batch_seconds:
    description:
      - Time budget of one batch in seconds; each batch's width is moved toward it from the speed of the one
        before (at most doubled or halved at a time). V(0) keeps O(batch_size) fixed.
      - The default leaves room under 0.2 s for a batch slowed by a checkpoint or a busy machine; larger batches
        were not faster (bench/RESULTS.md, section retention).
    type: float
    default: 0.05
  max_rows:
    description: Most rows deleted from each table in one run; V(0) is no cap. The next run goes on where this one stopped.
    type: int
    default: 0
  method:
    description:
      - How tables are walked. V(key_range) walks ranges of the single-column integer primary key, from the smallest
        to the largest key of the rows to delete (one query finds them first); a table without such a key is refused.
        V(ctid) walks ranges of heap pages over the whole table, with TID range scans (PostgreSQL 14 or later).
        V(auto) is V(key_range) where the table has such a key, V(ctid) elsewhere.
      - V(ctid) reads the whole table, page after page as one sequential scan would, with no bounds query; it is the
        faster one when most of a table goes (bench/RESULTS.md, section retention). V(key_range) reads only the key
        range of the rows to delete, but its bounds query reads the rows newer than the cutoff.
        A row updated while the walk runs may move to pages already walked and then waits for the next run.
    type: str
    choices: [auto, key_range, ctid]
    default: auto
  analyze:
    description: Run C(ANALYZE) on each table rows were deleted from, afterwards (not in check mode).
    type: bool
    default: false
  lock_timeout:
    description:
      - Seconds one batch may wait for a lock (a row another session holds, a table lock) before the table is given up
        (at least 0.001, at most 2147483); V(0) waits forever.
      - Batches already committed stay deleted; the other tables are still processed, then the task fails.
    type: float
    default: 5
  statement_timeout:
    description: Seconds one statement may run before it is cancelled (at least 0.001, at most 2147483); V(0) means no limit.
    type: float
    default: 0
author:
  - webstack.ops maintainers (@webstack)
"""

EXAMPLES = r"""
- name: The guide's quarterly retention, suspicious fingerprints kept
  webstack.ops.pg_retention:
    login_host: 127.0.0.1
    login_password: "{{ vault_postgres_password }}"
    login_db: webstack
    tables:
      - name: utils_requestfingerprint
        days: 90
        where:
          is_suspicious: false
      - name: pages_pagevisit
        days: 180
      - name: utils_lighthouseresult
        days: 365
    analyze: true

- name: Count what a 30-day retention would delete, delete nothing
  webstack.ops.pg_retention:
    login_db: webstack
    tables:
      - name: blog_blogcomment
        days: 30
  check_mode: true

- name: At most a million rows per run, in smaller batches, giving up quickly on locks
  webstack.ops.pg_retention:
    login_db: webstack
    tables:
      - name: audit.events
        column: logged_at
        days: 365
    max_rows: 1000000
    batch_seconds: 0.02
    lock_timeout: 1
"""

RETURN = r"""
database:
  description: The database worked on.
  returned: success
  type: str
  sample: webstack
rows:
  description: Rows deleted over all tables (in check mode, rows that would be deleted).
  returned: success, and on failure once the run started
  type: int
  sample: 3342051
tables:
  description: One entry per rule, in order.
  returned: success, and on failure once the run started
  type: list
  elements: dict
  contains:
    name:
      description: Schema-qualified table name.
      type: str
      sample: public.pages_pagevisit
    column:
      description: The timestamp column.
      type: str
      sample: created_at
    days:
      description: The age.
      type: int
      sample: 180
    where:
      description: The extra filter.
      type: dict
      sample: {}
    cutoff:
      description: Rows older than this (ISO 8601, in the column's type) were deleted.
      type: str
      sample: "2025-07-05T09:12:44.123456+00:00"
    method:
      description: V(key_range) (primary-key ranges) or V(ctid) (heap page ranges).
      type: str
      sample: key_range
    key:
      description: The primary key walked, or V(null) for the ctid walk.
      type: str
      sample: id
    statement:
      description: The DELETE run per batch, with its parameters as placeholders.
      type: str
      sample: DELETE FROM "public"."pages_pagevisit" WHERE "id" >= %(lo)s AND "id" < %(hi)s AND "created_at" < %(cutoff)s
    rows:
      description: Rows deleted (in check mode, that would be deleted).
      type: int
      sample: 3342051
    matching:
      description: Rows past the cutoff before the run (check mode only).
      type: int
      sample: 3342051
    batches:
      description: DELETE statements run (0 in check mode).
      type: int
      sample: 41
    longest_batch_seconds:
      description: Time of the longest batch, commit included.
      type: float
      sample: 0.1287
    seconds:
      description: Time spent on this table, reading its cutoff and key bounds included.
      type: float
      sample: 3.21
    capped:
      description: Whether the run stopped at the O(max_rows) cap.
      type: bool
      sample: false
    analyzed:
      description: Whether C(ANALYZE) ran on the table afterwards.
      type: bool
      sample: true
    error:
      description: Why the walk of this table stopped early (lock or statement timeout, permissions); its committed batches stay deleted.
      type: str
      returned: when the table failed
      sample: canceling statement due to lock timeout
failed_tables:
  description: Tables whose walk stopped on an error, with the server's message and the rows deleted before it.
  returned: success, and on failure once the run started
  type: list
  elements: dict
  sample: [{"name": "public.pages_pagevisit", "error": "canceling statement due to lock timeout", "rows": 40000}]
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.webstack.ops.plugins.module_utils._pg_retention import (
    ConnectionLost,
    Policy,
    Retention,
    RetentionError,
)
from ansible_collections.webstack.ops.plugins.module_utils._postgres import (
    bad_timeouts,
    connect,
    describe_target,
    postgres_argument_spec,
    psycopg2,
    scrub,
)


def bad_option(params):
    """What is wrong with the run-wide options, or None."""
    if params["batch_size"] < 1:
        return "batch_size must be 1 or more, got %s" % params["batch_size"]
    if params["batch_seconds"] < 0:
        return "batch_seconds must be 0 (fixed batch size) or more, got %s" % params["batch_seconds"]
    if params["max_rows"] < 0:
        return "max_rows must be 0 (no cap) or more, got %s" % params["max_rows"]
    problem = bad_timeouts(params)
    if problem:
        return problem
    if not params["tables"]:
        return "tables is empty: give at least one table with its days"
    return None


def policies(params):
    return [Policy(name=t["name"], days=t["days"], column=t["column"], where=t["where"] or {},
                   max_rows=params["max_rows"] if t["max_rows"] is None else t["max_rows"])
            for t in params["tables"]]


def run(module, job, targets, reports, failed):
    """Prepare every table first (a bad filter value fails before anything is deleted), then walk them,
    appending to reports and failed as it goes."""
    params = module.params
    plans = [job.prepare(target, count=module.check_mode) for target in targets]
    for target, plan in zip(targets, plans, strict=True):
        if module.check_mode:
            report = job.new_report(target, plan)
            cap = target.policy.max_rows
            report["matching"] = plan["matching"]
            report["rows"] = min(plan["matching"], cap) if cap else plan["matching"]
            report["capped"] = bool(cap) and plan["matching"] > cap
        else:
            try:
                report = job.walk(target, plan, params["batch_size"], params["batch_seconds"], target.policy.max_rows)
            except ConnectionLost as exc:
                reports.append(exc.report)
                raise
            if "error" in report:
                failed.append({"name": report["name"], "error": report["error"], "rows": report["rows"]})
        reports.append(report)
    if params["analyze"] and not module.check_mode:
        for target, report in zip(targets, reports, strict=True):
            if report["rows"]:
                problem = job.analyze(target)
                report["analyzed"] = problem is None
                if problem:
                    module.warn("ANALYZE of %s failed after its rows were deleted: %s" % (report["name"], problem))


def main():
    argument_spec = postgres_argument_spec()
    argument_spec.update(
        tables=dict(type="list", elements="dict", required=True, options=dict(
            name=dict(type="str", required=True),
            column=dict(type="str", default="created_at"),
            days=dict(type="int", required=True),
            where=dict(type="dict"),
            max_rows=dict(type="int"),
        )),
        batch_size=dict(type="int", default=20000),
        batch_seconds=dict(type="float", default=0.05),
        max_rows=dict(type="int", default=0),
        method=dict(type="str", choices=["auto", "key_range", "ctid"], default="auto"),
        analyze=dict(type="bool", default=False),
        lock_timeout=dict(type="float", default=5),
        statement_timeout=dict(type="float", default=0),
    )
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True)
    params = module.params
    problem = bad_option(params)
    if problem:
        module.fail_json(msg="%s. Nothing was deleted." % problem)

    conn = connect(module)
    job = Retention(conn)
    reports, failed = [], []
    try:
        job.set_timeouts(round(params["lock_timeout"] * 1000), round(params["statement_timeout"] * 1000))
        targets = job.plan(policies(params), params["method"])
        run(module, job, targets, reports, failed)
    except RetentionError as exc:
        module.fail_json(msg="%s: %s. Nothing was deleted." % (describe_target(params), exc))
    except ConnectionLost as exc:
        module.fail_json(
            msg="Lost the connection to %s after %d row(s) deleted: %s. Check the server's log and whether it "
                "restarted; rows of committed batches stay deleted." % (
                    describe_target(params), sum(r["rows"] for r in reports), scrub(exc, params)),
            changed=any(r["rows"] for r in reports), tables=reports)
    except psycopg2.Error as exc:
        done = sum(r["rows"] for r in reports)
        module.fail_json(msg="Retention failed on %s%s: %s. Check the filter values, the role's privileges and the "
                             "server's log." % (describe_target(params), "" if done else " before anything was deleted",
                                                scrub(exc, params)))
    finally:
        conn.close()

    total = sum(r["rows"] for r in reports)
    result = dict(
        changed=total > 0,
        database=params["login_db"],
        rows=total,
        tables=reports,
        failed_tables=failed,
    )
    if failed:
        module.fail_json(
            msg="Retention stopped early on %d table(s) of %s: %s. Committed batches stay deleted; check for long "
                "transactions or locks on them (pg_stat_activity, pg_locks), or raise lock_timeout/statement_timeout, "
                "then run again." % (len(failed), describe_target(params), "; ".join(
                    "%s after %d row(s): %s" % (f["name"], f["rows"], f["error"]) for f in failed)),
            **result)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
