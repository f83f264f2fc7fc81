#!/usr/bin/python
# Copyright (c) webstack.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: pg_maintenance
short_description: VACUUM and ANALYZE PostgreSQL tables, only where needed
version_added: 0.1.0
description:
  - Runs C(ANALYZE), C(VACUUM), C(VACUUM ANALYZE) or C(VACUUM FULL) on chosen tables or on every user table
    of a database, one table at a time, and returns per-table timings and dead tuples before and after.
  - With O(only_if_needed=true), tables whose dead tuples and changed rows are under thresholds
    (autovacuum's formula, threshold plus scale factor times rows) are skipped and listed with the reason.
  - Every table name is checked before anything runs and reaches SQL only as a quoted identifier.
  - System catalogs are left to autovacuum.
notes:
  - Keep O(login_password) in a vault. Ad hoc C(ansible -m ... -a) runs may echo module arguments on failure;
    there leave O(login_password) empty and let libpq read C(PGPASSWORD) or C(~/.pgpass) on the managed host.
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - webstack.ops.postgres
attributes:
  check_mode:
    support: full
    details:
      - In check mode nothing runs; RV(queries) lists the statements that would run.
  diff_mode:
    support: none
  platform:
    platforms: posix
options:
  action:
    description:
      - What to run on each table.
      - V(vacuum_full) rewrites tables under an C(ACCESS EXCLUSIVE) lock and is refused unless O(allow_full=true).
    type: str
    choices: [analyze, vacuum, vacuum_analyze, vacuum_full]
    default: vacuum_analyze
  tables:
    description:
      - Tables to work on, as V(table) or V(schema.table). An unknown or ambiguous name fails the task before
        anything runs.
      - Omitted, every user table of O(login_db) (materialized views and partitions included; other sessions'
        temporary tables left out). An empty list is refused, so that a filter that matched nothing does not
        widen the run to the whole database.
      - A partitioned table only gets C(ANALYZE); its partitions are worked on one by one.
    type: list
    elements: str
  only_if_needed:
    description:
      - Skip tables that do not need O(action), judged from C(pg_stat_user_tables).
    type: bool
    default: false
  vacuum_threshold:
    description: Dead tuples a table may have, before the scale factor, without needing a VACUUM (0 or more).
    type: int
    default: 50
  vacuum_scale_factor:
    description: Fraction of a table's rows added to O(vacuum_threshold), from 0 to 100 as autovacuum allows.
    type: float
    default: 0.1
  analyze_threshold:
    description: Rows changed since the last analyze a table may have, before the scale factor, without needing an ANALYZE (0 or more).
    type: int
    default: 50
  analyze_scale_factor:
    description: Fraction of a table's rows added to O(analyze_threshold), from 0 to 100.
    type: float
    default: 0.05
  allow_full:
    description: Allow O(action=vacuum_full).
    type: bool
    default: false
  lock_timeout:
    description:
      - Seconds to wait for a table's lock before giving up on that table (at least 0.001, at most 2147483); V(0) waits forever.
      - A table that times out is reported in RV(failed_tables); the other tables are still processed, then the task fails.
    type: float
    default: 10
  statement_timeout:
    description: Seconds one statement may run before it is cancelled (at least 0.001, at most 2147483); V(0) means no limit.
    type: float
    default: 0
author:
  - webstack.ops maintainers (@webstack)
"""

EXAMPLES = r"""
- name: VACUUM ANALYZE the tables that need it
  webstack.ops.pg_maintenance:
    login_host: 127.0.0.1
    login_password: "{{ vault_postgres_password }}"
    login_db: webstack
    only_if_needed: true

- name: ANALYZE two tables, giving up quickly on a busy one
  webstack.ops.pg_maintenance:
    login_db: webstack
    action: analyze
    tables:
      - pages_pagevisit
      - public.utils_requestfingerprint
    lock_timeout: 2
"""

RETURN = r"""
database:
  description: The database worked on.
  returned: success
  type: str
  sample: webstack
tables:
  description: Tables worked on, in order (empty in check mode).
  returned: success, and on failure once the run started
  type: list
  elements: dict
  contains:
    name:
      description: Schema-qualified table name.
      type: str
      sample: public.pages_pagevisit
    action:
      description: What ran.
      type: str
      sample: vacuum_analyze
    reason:
      description: Why the table was chosen (V(requested) without O(only_if_needed)).
      type: str
      sample: 10000 dead tuples > 2050
    seconds:
      description: Time the statement took.
      type: float
      sample: 0.0123
    dead_tuples_before:
      description: C(n_dead_tup) before.
      type: int
      sample: 10000
    dead_tuples_after:
      description: C(n_dead_tup) after.
      type: int
      sample: 0
  sample: []
skipped_tables:
  description: Tables left alone (by O(only_if_needed), or partitioned tables under a VACUUM), with the reason.
  returned: success, and on failure once the run started
  type: list
  elements: dict
  sample: [{"name": "public.blog_blogcomment", "reason": "below thresholds: 0 dead tuples, 0 rows changed since last analyze, 120 rows"}]
failed_tables:
  description: Tables whose statement failed (lock or statement timeout, permissions), with the server's message.
  returned: success, and on failure once the run started
  type: list
  elements: dict
  sample: [{"name": "public.pages_pagevisit", "error": "canceling statement due to lock timeout"}]
queries:
  description: The statements planned for this run (all of them ran unless listed in RV(failed_tables)), or that would run in check mode.
  returned: success, and on failure once the run started
  type: list
  elements: str
  sample: ['VACUUM (ANALYZE) "public"."pages_pagevisit"']
size_before:
  description: Database size in bytes before.
  returned: success
  type: int
  sample: 8437251
size_after:
  description: Database size in bytes after (equal to RV(size_before) in check mode).
  returned: success
  type: int
  sample: 8232451
size_before_pretty:
  description: RV(size_before) as C(pg_size_pretty) prints it.
  returned: success
  type: str
  sample: 8240 kB
size_after_pretty:
  description: RV(size_after) as C(pg_size_pretty) prints it.
  returned: success
  type: str
  sample: 8040 kB
"""

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.webstack.ops.plugins.module_utils._pg_maintenance import (
    ACTIONS,
    ConnectionLost,
    Maintenance,
    MaintenanceError,
    Thresholds,
)
from ansible_collections.webstack.ops.plugins.module_utils._postgres import (
    bad_timeouts,
    connect,
    database_size,
    describe_target,
    postgres_argument_spec,
    psycopg2,
    scrub,
)


def bad_option(params):
    """What is wrong with the numeric and list options, or None."""
    for name in ("vacuum_threshold", "analyze_threshold"):
        if params[name] < 0:
            return "%s must be 0 or more, got %s" % (name, params[name])
    for name in ("vacuum_scale_factor", "analyze_scale_factor"):
        if not 0 <= params[name] <= 100:
            return "%s must be between 0 and 100, got %s" % (name, params[name])
    problem = bad_timeouts(params)
    if problem:
        return problem
    if params["tables"] == []:
        return "tables is an empty list: omit it to work on every user table"
    return None


def main():
    argument_spec = postgres_argument_spec()
    argument_spec.update(
        action=dict(type="str", choices=list(ACTIONS), default="vacuum_analyze"),
        tables=dict(type="list", elements="str"),
        only_if_needed=dict(type="bool", default=False),
        vacuum_threshold=dict(type="int", default=50),
        vacuum_scale_factor=dict(type="float", default=0.1),
        analyze_threshold=dict(type="int", default=50),
        analyze_scale_factor=dict(type="float", default=0.05),
        allow_full=dict(type="bool", default=False),
        lock_timeout=dict(type="float", default=10),
        statement_timeout=dict(type="float", default=0),
    )
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True)
    params = module.params
    problem = bad_option(params)
    if problem:
        module.fail_json(msg="%s. Nothing was run." % problem)
    if params["action"] == "vacuum_full" and not params["allow_full"]:
        module.fail_json(msg="action=vacuum_full rewrites each table under an ACCESS EXCLUSIVE lock that blocks "
                             "reads and writes; set allow_full: true to run it anyway.")

    conn = connect(module)
    limits = Thresholds(params["vacuum_threshold"], params["vacuum_scale_factor"],
                        params["analyze_threshold"], params["analyze_scale_factor"])
    job = Maintenance(conn, params["action"], limits)
    queries = []
    try:
        with conn.cursor() as cur:
            size_before = database_size(cur)
        todo, skipped = job.plan(params["tables"], params["only_if_needed"])
        queries = [job.statement(table).as_string(conn) for table, _reason in todo]
        done, failed = ([], []) if module.check_mode else job.run(
            todo, round(params["lock_timeout"] * 1000), round(params["statement_timeout"] * 1000))
        size_after = size_before
        if done:
            with conn.cursor() as cur:
                size_after = database_size(cur)
    except MaintenanceError as exc:
        module.fail_json(msg="%s: %s" % (describe_target(params), exc))
    except ConnectionLost as exc:
        module.fail_json(
            msg="Lost the connection to %s after %d table(s): %s. Check the server's log and whether it restarted; "
                "tables already done are in `tables`." % (describe_target(params), len(exc.done), scrub(exc, params)),
            changed=bool(exc.done), tables=exc.done, queries=queries)
    except psycopg2.Error as exc:
        module.fail_json(msg="%s failed on %s: %s. Check the role's privileges and the server's log." % (
            params["action"], describe_target(params), scrub(exc, params)))
    finally:
        conn.close()

    result = dict(
        changed=bool(queries) if module.check_mode else bool(done),
        database=params["login_db"],
        tables=done,
        skipped_tables=skipped,
        failed_tables=failed,
        queries=queries,
        size_before=size_before[0],
        size_before_pretty=size_before[1],
        size_after=size_after[0],
        size_after_pretty=size_after[1],
    )
    if failed:
        module.fail_json(
            msg="%s failed on %d table(s) of %s: %s. Check for long transactions or locks on them (pg_stat_activity, "
                "pg_locks), or raise lock_timeout/statement_timeout." % (
                    params["action"], len(failed), describe_target(params),
                    "; ".join("%s: %s" % (f["name"], f["error"]) for f in failed)),
            **result)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
