#!/usr/bin/python
# Copyright (c) webstack.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: celery_status
short_description: Celery workers, failed tasks, queue lengths and beat task runs, with alerts
version_added: 0.1.0
description:
  - Reads Flower's HTTP API for the workers (online by their heartbeats, active and processed tasks, pool size,
    queues consumed) and the failed tasks, the Redis broker for the messages waiting in each queue, and
    optionally the app's task-run table for the last run of each beat task.
  - Raises RV(alerts) for too few workers online, a long queue, a queue that grew since the last run, failed
    tasks since the last run (or within O(failed_window)), and beat tasks that did not run within their
    expected interval.
  - Read-only. With O(state_file), the queue lengths and the time of the newest failure seen are kept on the
    managed host for the next run.
notes:
  - The task never reports C(changed); writing O(state_file) is reported as RV(state_updated).
  - Flower keeps tasks in memory (up to its C(--max_tasks)); after a Flower restart, earlier failures are gone.
  - Failure times come from the workers' clocks, the age of beat task runs from the database's clock.
  - Keep O(flower_password), O(broker_url) and O(login_password) in a vault.
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
  - webstack.ops.postgres
attributes:
  check_mode:
    support: full
    details:
      - Everything is read as usual; O(state_file) is not written (RV(state_would_update) tells whether it would be).
  diff_mode:
    support: none
  platform:
    platforms: posix
options:
  flower_url:
    description: Flower's base URL (with its C(--url_prefix) if it has one).
    type: str
    default: http://127.0.0.1:5555
  flower_user:
    description: User for Flower's basic auth (C(--basic-auth user:password)); omitted, no credentials are sent.
    type: str
  flower_password:
    description: Password of O(flower_user). Never logged nor returned.
    type: str
  timeout:
    description:
      - Seconds to wait for each answer of Flower (it asks every worker first, for up to its C(--inspect_timeout)) and
        of the broker. The database's is O(connect_timeout).
    type: float
    default: 10
  validate_certs:
    description: Verify Flower's TLS certificate when O(flower_url) is https.
    type: bool
    default: true
  broker_url:
    description:
      - The Redis broker, as in C(CELERY_BROKER_URL) (C(redis://:password@host:6379/0), C(rediss://) for TLS).
        It may hold the password, so it is never logged.
      - Omitted, queue lengths are not read.
    type: str
  broker_password:
    description: The broker's password, when it is not in O(broker_url) (it wins over the URL's).
    type: str
  queues:
    description: Queues whose waiting messages are counted (all priority steps).
    type: list
    elements: str
    default: [celery]
  min_workers:
    description: Fewer workers online than this is a C(crit) alert; V(0) turns the alert off.
    type: int
    default: 1
  queue_warn:
    description: Messages waiting in one queue that raise a C(warn) alert; V(0) turns it off.
    type: int
    default: 100
  queue_crit:
    description: Messages waiting in one queue that raise a C(crit) alert; V(0) turns it off.
    type: int
    default: 1000
  queue_growth:
    description:
      - A queue longer by this many messages than at the last run (kept in O(state_file)) raises a C(warn) alert;
        V(0) turns it off.
    type: int
    default: 10
  failed_window:
    description:
      - Without a previous run in O(state_file), failures within this age count (V(30m), V(24h), V(7d), or seconds).
        With one, the failures after the newest one the last run saw.
    type: str
    default: 24h
  failed_warn:
    description: Failed tasks (since the last run or within O(failed_window)) that raise a C(warn) alert; V(0) turns it off.
    type: int
    default: 1
  failed_crit:
    description: Failed tasks that raise a C(crit) alert; V(0) turns it off.
    type: int
    default: 10
  state_file:
    description:
      - JSON file on the managed host with the queue lengths and the newest failure this run saw. Created (0600)
        with its directory; not written in check mode.
    type: path
  taskrun_table:
    description:
      - Table (V(table) or V(schema.table)) where the app records its task runs, with columns C(name),
        C(started_at), C(finished_at) and C(status) (the sandbox app's C(utils_taskrun)). Read through the
        O(login_host) etc. connection options.
      - Omitted, beat tasks are not read.
    type: str
  beat_max_age:
    description:
      - Per task name, the longest time its latest run may be ago (V(26h), V(10m), or seconds); older, or no run
        at all, is a C(warn) alert. Needs O(taskrun_table).
    type: dict
    default: {}
author:
  - webstack.ops maintainers (@webstack)
"""

EXAMPLES = r"""
- name: Celery workers, failures and queues, as the daily checks read them
  webstack.ops.celery_status:
    flower_url: http://127.0.0.1:5555
    flower_user: ops
    flower_password: "{{ vault_flower_password }}"
    broker_url: "redis://:{{ vault_redis_password }}@127.0.0.1:6379/0"
    state_file: /var/lib/webstack-ops/celery_status.json
  register: celery

- name: Also the beat schedule, from the app's task-run table
  webstack.ops.celery_status:
    broker_url: redis://127.0.0.1:6379/0
    login_db: webstack
    login_user: webstack
    login_password: "{{ vault_postgres_password }}"
    taskrun_table: utils_taskrun
    beat_max_age:
      utils.tasks.collect_lighthouse_scores: 26h
      blog.tasks.publish_scheduled_posts: 15m
"""

RETURN = r"""
workers:
  description: Workers Flower knows, online or not.
  returned: success
  type: list
  elements: dict
  contains:
    name:
      description: Worker host name.
      type: str
    online:
      description: Whether its heartbeats are current.
      type: bool
    active:
      description: Tasks it is running.
      type: int
    processed:
      description: Tasks it received since it started (Flower's C(stats.total)).
      type: int
    concurrency:
      description: Its pool's size (null when it did not answer).
      type: int
    queues:
      description: Queues it consumes.
      type: list
      elements: str
  sample: [{name: celery@web1, online: true, active: 0, processed: 42, concurrency: 2, queues: [celery]}]
workers_online:
  description: How many workers are online.
  returned: success
  type: int
  sample: 1
queues:
  description: Messages waiting per queue (null without O(broker_url)).
  returned: success
  type: dict
  sample: {celery: 0}
failed_tasks:
  description: Failed tasks since the last run (or within O(failed_window)).
  returned: success
  type: dict
  contains:
    count:
      description: How many.
      type: int
    since:
      description: From when (UTC).
      type: str
    known:
      description: Failed tasks Flower holds in all (at most 1000 are asked for).
      type: int
    recent:
      description: The newest ones (up to 10) with task name, worker, time and exception.
      type: list
      elements: dict
  sample: {count: 1, since: "2026-11-28T10:00:00Z", known: 3, recent: [{uuid: "0b0c...", name: utils.tasks.ping,
           worker: celery@web1, failed: 1796032800.5, exception: "TypeError('...')"}]}
beat_tasks:
  description: Per task name, its latest run in O(taskrun_table) (null without it).
  returned: success
  type: dict
  sample: {utils.tasks.ping: {last_started: "2026-11-29T10:00:00+00:00", last_finished: "2026-11-29T10:00:00.2+00:00",
           last_status: success, age_seconds: 35.2}}
state_updated:
  description: Whether O(state_file) was written (never in check mode).
  returned: success
  type: bool
  sample: true
state_would_update:
  description: Whether what O(state_file) keeps changed, so that a run outside check mode writes it.
  returned: success
  type: bool
  sample: true
alerts:
  description: Checks C(celery_workers), C(celery_queue), C(celery_queue_growth), C(celery_failed_tasks), C(celery_beat).
  returned: success
  type: list
  elements: dict
  sample: [{check: celery_workers, level: crit, value: 0, threshold: 1, message: "no Celery worker online (...)"}]
level:
  description: The worst alert level, C(ok), C(warn) or C(crit).
  returned: success
  type: str
  sample: ok
"""

import time

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.webstack.ops.plugins.module_utils import _postgres, _redis
from ansible_collections.webstack.ops.plugins.module_utils._alerts import worst_level
from ansible_collections.webstack.ops.plugins.module_utils._celery_status import (
    RECENT_FAILURES,
    CeleryError,
    Flower,
    broker_params,
    celery_alerts,
    iso_utc,
    last_runs,
    parse_age,
    queue_lengths,
    read_failures,
    read_workers,
)
from ansible_collections.webstack.ops.plugins.module_utils._state_file import StateFileError, keep_state, load_state

THRESHOLDS = ("min_workers", "queue_warn", "queue_crit", "queue_growth", "failed_warn", "failed_crit")


def read_queues(module, params):
    """Queue lengths from the broker, or a clear failure (never the password)."""
    _redis.ensure_driver(module)
    try:
        conn_params = broker_params(params["broker_url"], params["broker_password"], params["timeout"])
    except CeleryError as exc:
        module.fail_json(msg="celery_status: %s." % exc)
    client = _redis.redis.Redis(**_redis.connection_kwargs(conn_params))
    try:
        return queue_lengths(client, params["queues"])
    except _redis.redis.exceptions.RedisError as exc:
        module.fail_json(msg="celery_status: %s" % _redis.explain(exc, conn_params, "reading queue lengths from"))
    finally:
        client.close()


def read_beat(module, params, names):
    conn = _postgres.connect(module)
    try:
        return last_runs(conn, _postgres.sql, params["taskrun_table"], names)
    except _postgres.psycopg2.Error as exc:
        module.fail_json(msg="celery_status: cannot read the task runs in %s on %s: %s. Check taskrun_table (the app "
                             "records its task runs there?) and login_db." % (
                                 params["taskrun_table"], _postgres.describe_target(params), _postgres.scrub(exc, params)))
    finally:
        conn.close()


def main():
    argument_spec = _postgres.postgres_argument_spec()
    argument_spec.update(
        flower_url=dict(type="str", default="http://127.0.0.1:5555"),
        flower_user=dict(type="str"),
        flower_password=dict(type="str", no_log=True),
        timeout=dict(type="float", default=10),
        validate_certs=dict(type="bool", default=True),
        broker_url=dict(type="str", no_log=True),
        broker_password=dict(type="str", no_log=True),
        queues=dict(type="list", elements="str", default=["celery"]),
        min_workers=dict(type="int", default=1),
        queue_warn=dict(type="int", default=100),
        queue_crit=dict(type="int", default=1000),
        queue_growth=dict(type="int", default=10),
        failed_window=dict(type="str", default="24h"),
        failed_warn=dict(type="int", default=1),
        failed_crit=dict(type="int", default=10),
        state_file=dict(type="path"),
        taskrun_table=dict(type="str"),
        beat_max_age=dict(type="dict", default={}),
    )
    module = AnsibleModule(argument_spec=argument_spec, supports_check_mode=True)
    params = module.params
    try:
        for name in THRESHOLDS:
            if params[name] < 0:
                raise CeleryError("%s must be 0 (off) or more, got %s" % (name, params[name]))
        window = parse_age(params["failed_window"], "failed_window")
        beat_max_age = {task: parse_age(age, "beat_max_age.%s" % task) for task, age in params["beat_max_age"].items()}
        if beat_max_age and not params["taskrun_table"]:
            raise CeleryError("beat_max_age needs taskrun_table (where the app records its task runs)")
        state = load_state(params["state_file"], "celery_status") if params["state_file"] else None
    except (CeleryError, StateFileError) as exc:
        module.fail_json(msg="celery_status: %s. Nothing was read." % exc)

    previous = state or {}
    since = previous.get("last_failure") or time.time() - window
    try:
        flower = Flower(params["flower_url"], params["flower_user"], params["flower_password"], params["timeout"],
                        params["validate_certs"])
        workers = read_workers(flower)
        known_failed, recent = read_failures(flower, since)
    except CeleryError as exc:
        module.fail_json(msg="celery_status: %s." % exc)

    queues = read_queues(module, params) if params["broker_url"] else None
    beat_tasks = read_beat(module, params, sorted(beat_max_age)) if params["taskrun_table"] else None

    figures = dict(
        workers=workers,
        workers_online=sum(1 for w in workers if w["online"]),
        queues=queues,
        failed_tasks=dict(count=len(recent), since=iso_utc(since), known=known_failed, recent=recent[:RECENT_FAILURES]),
        beat_tasks=beat_tasks,
    )
    limits = {name: params[name] for name in THRESHOLDS}
    limits["beat_max_age"] = beat_max_age
    alerts = celery_alerts(figures, limits, previous.get("queues") or {})

    updated = would_update = False
    if state is not None:
        new_state = dict(state, queues=queues if queues is not None else state.get("queues", {}),
                         last_failure=max([since] + [task["failed"] for task in recent]) if recent else state.get("last_failure"))
        would_update = new_state != state
        try:
            updated = keep_state(params["state_file"], new_state if would_update else None, module.check_mode)
        except StateFileError as exc:
            module.fail_json(msg="celery_status: %s." % exc, **figures)
    module.exit_json(changed=False, state_updated=updated, state_would_update=would_update, alerts=alerts,
                     level=worst_level(alerts), **figures)


if __name__ == "__main__":
    main()
