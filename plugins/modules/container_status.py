#!/usr/bin/python
# Copyright (c) webstack.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: container_status
short_description: State, health, restarts, OOM kills and resource use of Docker containers, with alerts
version_added: 0.1.0
description:
  - Reads the containers of a Docker engine through its API (the Docker SDK), the guide's C(docker ps) and
    C(docker stats) in one connection. Per container it returns the state, health, restart count, whether
    the kernel killed it for lack of memory (C(OOMKilled)), the exit code, uptime, and CPU and memory from one
    stats sample.
  - RV(alerts) has a critical alert for a container that is missing, not running, unhealthy or OOM-killed, a
    warning for one restarted since the last check (needs O(state_file)) or near its memory limit, and a
    warning when the kernel log shows OOM kills since the last check (or within O(oom_window_hours)).
  - The kernel log is read from C(/dev/kmsg) when the module may (root, or C(kernel.dmesg_restrict=0));
    otherwise RV(kernel_oom) is null and a note says so.
notes:
  - The state file is the module's own bookkeeping (restart counts and start times of the last check); writing it
    does not count as a change.
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
    details:
      - The module only reads. In check mode the state file is not written.
  diff_mode:
    support: none
  platform:
    platforms: posix
options:
  names:
    description:
      - Containers to check, by name or ID. A name that does not exist raises a critical alert.
      - With neither O(names) nor O(project), every container of the engine.
    type: list
    elements: str
  project:
    description:
      - Check the containers of this docker-compose project (label C(com.docker.compose.project)), stopped ones included.
    type: str
  docker_host:
    description:
      - The Docker engine, as C(unix:///run/docker.sock) or C(tcp://127.0.0.1:2375). Omitted, C(DOCKER_HOST), else the
        local socket.
    type: str
  stats:
    description:
      - Take one stats sample of every running container (CPU and memory). About a second, all containers in parallel.
    type: bool
    default: true
  memory_warn_percent:
    description: Warn when a container uses at least this percentage of its memory limit (containers with a limit only).
    type: float
    default: 90
  state_file:
    description:
      - Where to keep this check's figures for the next run, on the managed host, so that restarts and kernel OOM kills
        since the last check are found. Omitted, restarts since the last check are not reported.
    type: path
  oom_window_hours:
    description: Without a previous check in O(state_file), kernel OOM kills of the last this many hours are reported.
    type: float
    default: 24
  kernel_log:
    description: Read the kernel's OOM messages from C(/dev/kmsg).
    type: bool
    default: true
requirements:
  - docker (the Docker SDK for Python)
author:
  - webstack.ops maintainers (@webstack)
"""

EXAMPLES = r"""
- name: Check the stack's containers
  webstack.ops.container_status:
    project: webstack
    state_file: /var/lib/webstack-ops/container_status.json
  register: containers

- name: Fail on a container that is down
  ansible.builtin.assert:
    that: containers.alerts | selectattr('level', 'equalto', 'crit') | list | length == 0
    fail_msg: "{{ containers.alerts | map(attribute='message') | join('; ') }}"
"""

RETURN = r"""
containers:
  description: One entry per container, by name.
  returned: success
  type: list
  elements: dict
  contains:
    name:
      description: Container name.
      type: str
      sample: website
    id:
      description: Short container ID.
      type: str
      sample: 3f2a1b4c5d6e
    image:
      description: The image the container was created from.
      type: str
      sample: webstack/web:latest
    service:
      description: Its docker-compose service, when it has one.
      type: str
      sample: website
    project:
      description: Its docker-compose project, when it has one.
      type: str
      sample: webstack
    status:
      description: Docker's state (running, exited, restarting, paused, created, dead).
      type: str
      sample: running
    running:
      description: Whether it runs.
      type: bool
      sample: true
    health:
      description: Its health check's status (healthy, unhealthy, starting), null without a health check.
      type: str
      sample: healthy
    restart_count:
      description: Restarts by its restart policy since it was created.
      type: int
      sample: 0
    oom_killed:
      description: Whether its last exit was the kernel's OOM killer.
      type: bool
      sample: false
    exit_code:
      description: Exit code of its last run.
      type: int
      sample: 0
    started_at:
      description: When it last started (UTC, ISO 8601).
      type: str
      sample: "2026-11-29T06:00:00.123456+00:00"
    uptime_s:
      description: Seconds since it started, null when not running.
      type: int
      sample: 86400
    restart_policy:
      description: Its restart policy.
      type: str
      sample: unless-stopped
    cpu_percent:
      description: CPU use during the stats sample, in percent of one CPU (as C(docker stats)); absent without O(stats).
      type: float
      sample: 3.2
    memory_bytes:
      description: Memory in use without the page cache (as C(docker stats)).
      type: int
      sample: 123456789
    memory_limit:
      description: Its memory limit (the host's memory when it has none).
      type: int
      sample: 536870912
    memory_percent:
      description: RV(containers[].memory_bytes) in percent of the limit.
      type: float
      sample: 23.0
kernel_oom:
  description: The kernel's OOM kills since the last check (or O(oom_window_hours)); null when the kernel log was not readable.
  returned: success
  type: list
  elements: dict
  sample: [{"time": "2026-11-29T05:12:00+00:00", "pid": 4242, "process": "python3", "message": "Killed process 4242 (python3) ..."}]
alerts:
  description: Problems found, each with check, level (warn, crit), value, threshold and message.
  returned: success
  type: list
  elements: dict
  sample: [{"check": "container_down", "level": "crit", "value": "exited", "threshold": "running",
            "message": "container celery_worker is exited (exit code 137)"}]
level:
  description: The worst alert level, V(ok) without alerts.
  returned: success
  type: str
  sample: crit
state_updated:
  description: Whether O(state_file) was written (never in check mode).
  returned: success
  type: bool
  sample: true
notes:
  description: What could not be checked, and why.
  returned: success
  type: list
  elements: str
"""

import datetime as dt

from ansible.module_utils.basic import AnsibleModule, missing_required_lib
from ansible_collections.webstack.ops.plugins.module_utils import _container_status as status
from ansible_collections.webstack.ops.plugins.module_utils._alerts import worst_level
from ansible_collections.webstack.ops.plugins.module_utils._docker import DOCKER_HINT, DOCKER_IMPORT_ERROR, DockerError, connect, docker, engine_name
from ansible_collections.webstack.ops.plugins.module_utils._state_file import StateFileError, keep_state, load_state


def run(module):
    params = module.params
    now = status.utcnow()
    try:
        client = connect(params["docker_host"])
    except DockerError as exc:
        module.fail_json(msg=str(exc))
    notes = []
    try:
        found, missing = status.select(client, params["names"], params["project"])
        usage = status.sample(found) if params["stats"] else {}
        containers = [dict(status.describe(c, now), **usage.get(c.id, {})) for c in found]
    except docker.errors.DockerException as exc:
        module.fail_json(msg="reading containers from the Docker engine %s failed: %s" % (engine_name(params["docker_host"]), exc))
    finally:
        client.close()

    try:
        previous = load_state(params["state_file"], status.STATE_KIND) if params["state_file"] else {}
    except StateFileError as exc:
        module.fail_json(msg="container_status: %s." % exc)
    ooms = None
    if params["kernel_log"]:
        since = status.previous_check(previous) or now - dt.timedelta(hours=params["oom_window_hours"])
        ooms = status.kernel_ooms(since)
        if ooms is None:
            notes.append("the kernel log (%s) is not readable here: OOM kills of other processes are not checked" % status.KMSG)
    if params["project"] and not found:
        notes.append("no container carries the label %s=%s" % (status.COMPOSE_PROJECT, params["project"]))
    alerts = status.check(containers, missing, previous, ooms, params["memory_warn_percent"])

    try:
        state_updated = keep_state(params["state_file"], status.new_state(now, containers) if params["state_file"] else None,
                                   module.check_mode)
    except StateFileError as exc:
        module.fail_json(msg="container_status: %s." % exc)
    module.exit_json(changed=False, containers=containers, kernel_oom=ooms, alerts=alerts, level=worst_level(alerts),
                     state_updated=state_updated, notes=notes)


def main():
    module = AnsibleModule(
        argument_spec=dict(
            names=dict(type="list", elements="str"),
            project=dict(type="str"),
            docker_host=dict(type="str"),
            stats=dict(type="bool", default=True),
            memory_warn_percent=dict(type="float", default=90),
            state_file=dict(type="path"),
            oom_window_hours=dict(type="float", default=24),
            kernel_log=dict(type="bool", default=True),
        ),
        supports_check_mode=True,
    )
    if docker is None:
        module.fail_json(msg=missing_required_lib("docker", reason=DOCKER_HINT), exception=DOCKER_IMPORT_ERROR)
    run(module)


if __name__ == "__main__":
    main()
