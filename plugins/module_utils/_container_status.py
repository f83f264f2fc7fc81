# Copyright (c) webstack.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Containers' state, restarts, OOM kills and resource use, read from the Docker API (private to the collection).

One engine connection per run: the containers are listed once, their stats sampled in parallel (Docker takes
about a second per sample, for its CPU delta), and the kernel's OOM messages read from /dev/kmsg when allowed.
"""

from __future__ import annotations

import concurrent.futures
import datetime as dt
import errno
import os
import re

from ansible_collections.webstack.ops.plugins.module_utils._alerts import CRIT, WARN, alert
from ansible_collections.webstack.ops.plugins.module_utils._docker import docker

COMPOSE_PROJECT = "com.docker.compose.project"
COMPOSE_SERVICE = "com.docker.compose.service"
KMSG = "/dev/kmsg"
KILLED = re.compile(r"Killed process (\d+) \(([^)]*)\)")
STATE_KIND = "container_status"


def utcnow():
    return dt.datetime.now(dt.timezone.utc)


def parse_time(text):
    """Docker's RFC 3339 times (nanoseconds, Z) as aware datetimes; None for the zero time of a never-started container."""
    if not text or text.startswith("0001-"):
        return None
    match = re.match(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(\.\d+)?(Z|[+-]\d\d:\d\d)$", text)
    if not match:
        return None
    fraction = (match.group(2) or ".0")[:7]
    zone = "+00:00" if match.group(3) == "Z" else match.group(3)
    return dt.datetime.fromisoformat(match.group(1) + fraction + zone)


def select(client, names, project):
    """(containers, names not found): the named ones, those of a compose project, or every container."""
    found, missing = [], []
    for name in names or []:
        try:
            found.append(client.containers.get(name))
        except docker.errors.NotFound:
            missing.append(name)
    if project:
        found += client.containers.list(all=True, filters={"label": "%s=%s" % (COMPOSE_PROJECT, project)})
    if not names and not project:
        found = client.containers.list(all=True)
    unique = {c.id: c for c in found}
    return sorted(unique.values(), key=lambda c: c.name), missing


def describe(container, now):
    """The figures of one container from its inspect data."""
    attrs = container.attrs
    state = attrs["State"]
    labels = attrs["Config"].get("Labels") or {}
    started = parse_time(state.get("StartedAt"))
    running = bool(state.get("Running"))
    return dict(
        name=container.name, id=container.id[:12], image=attrs["Config"].get("Image"),
        service=labels.get(COMPOSE_SERVICE), project=labels.get(COMPOSE_PROJECT),
        status=state.get("Status"), running=running, health=(state.get("Health") or {}).get("Status"),
        restart_count=attrs.get("RestartCount", 0), oom_killed=bool(state.get("OOMKilled")),
        exit_code=state.get("ExitCode"), started_at=started.isoformat() if started else None,
        uptime_s=round((now - started).total_seconds()) if running and started else None,
        restart_policy=(attrs["HostConfig"].get("RestartPolicy") or {}).get("Name") or "no",
    )


def usage(stats):
    """CPU percent (of one CPU, as `docker stats`) and memory in use without the page cache, from one stats sample."""
    cpu, pre = stats.get("cpu_stats") or {}, stats.get("precpu_stats") or {}
    cpu_delta = (cpu.get("cpu_usage") or {}).get("total_usage", 0) - (pre.get("cpu_usage") or {}).get("total_usage", 0)
    system_delta = cpu.get("system_cpu_usage", 0) - pre.get("system_cpu_usage", 0)
    cpus = cpu.get("online_cpus") or len((cpu.get("cpu_usage") or {}).get("percpu_usage") or []) or 1
    cpu_percent = round(100.0 * cpu_delta / system_delta * cpus, 1) if system_delta > 0 and cpu_delta >= 0 else None
    memory = stats.get("memory_stats") or {}
    used = memory.get("usage")
    if used is not None:
        detail = memory.get("stats") or {}
        # What `docker stats` shows: cgroup v2 subtracts inactive_file, v1 total_inactive_file.
        used -= detail.get("inactive_file", detail.get("total_inactive_file", 0))
    limit = memory.get("limit")
    return dict(cpu_percent=cpu_percent, memory_bytes=used, memory_limit=limit,
                memory_percent=round(100.0 * used / limit, 1) if used is not None and limit else None)


def sample(containers, workers=8):
    """One stats sample per running container, in parallel: {id: usage}."""
    running = [c for c in containers if c.attrs["State"].get("Running")]
    if not running:
        return {}
    with concurrent.futures.ThreadPoolExecutor(max_workers=min(workers, len(running))) as pool:
        futures = {c.id: pool.submit(c.stats, stream=False) for c in running}
    out = {}
    for cid, future in futures.items():
        try:
            out[cid] = usage(future.result())
        except docker.errors.APIError:  # the container stopped between the list and the sample
            continue
    return out


def kernel_ooms(since, path=KMSG):
    """The kernel's "Killed process" lines since `since` (aware datetime), or None when the log is not readable."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except OSError:
        return None
    booted = boot_time()
    found = []
    try:
        while True:
            try:
                record = os.read(fd, 8192).decode("utf-8", "replace")
            except OSError as exc:
                if exc.errno == errno.EPIPE:  # a record was overwritten while we read: go on with the next
                    continue
                if exc.errno == errno.EAGAIN:
                    break
                raise
            head, _sep, message = record.partition(";")
            fields = head.split(",")
            match = KILLED.search(message)
            if len(fields) < 3 or not match:
                continue
            when = booted + dt.timedelta(microseconds=int(fields[2]))
            if when >= since:
                found.append(dict(time=when.isoformat(timespec="seconds"), pid=int(match.group(1)), process=match.group(2),
                                  message=message.strip().splitlines()[0][:300]))
    finally:
        os.close(fd)
    return found


def boot_time():
    with open("/proc/stat") as stat:
        for line in stat:
            if line.startswith("btime "):
                return dt.datetime.fromtimestamp(int(line.split()[1]), dt.timezone.utc)
    raise RuntimeError("no btime in /proc/stat")


def new_state(checked_at, containers):
    """What the next run compares with: when this one ran, each container's restart count and start time."""
    return dict(kind=STATE_KIND, version=1, checked_at=checked_at.isoformat(),
                containers={c["name"]: dict(restart_count=c["restart_count"], started_at=c["started_at"]) for c in containers})


def previous_check(state):
    """When the last check ran (aware datetime), None without one."""
    try:
        return dt.datetime.fromisoformat(state["checked_at"])
    except (KeyError, TypeError, ValueError):
        return None


def restarted(current, previous):
    """How a container restarted since the last run, in words, or None."""
    if not previous:
        return None
    more = current["restart_count"] - previous.get("restart_count", 0)
    if more > 0:
        return "restarted %d time(s) by Docker since the last check" % more
    if current["started_at"] and previous.get("started_at") and current["started_at"] != previous["started_at"]:
        return "started again since the last check (at %s)" % current["started_at"]
    return None


def check(containers, missing, previous, ooms, memory_warn):
    """The alerts of one run."""
    alerts = [alert("container_missing", CRIT, name, None, "container %s does not exist" % name) for name in missing]
    for c in containers:
        name = c["name"]
        if not c["running"]:
            alerts.append(alert("container_down", CRIT, c["status"], "running", "container %s is %s (exit code %s)" % (
                name, c["status"], c["exit_code"])))
        if c["health"] == "unhealthy":
            alerts.append(alert("container_unhealthy", CRIT, c["health"], "healthy", "container %s is unhealthy" % name))
        if c["oom_killed"]:
            alerts.append(alert("container_oom_killed", CRIT, True, False,
                                "container %s was killed for lack of memory (OOMKilled)" % name))
        how = restarted(c, (previous.get("containers") or {}).get(name))
        if how:
            alerts.append(alert("container_restarted", WARN, c["restart_count"], None, "container %s %s" % (name, how)))
        if c.get("memory_percent") is not None and c["memory_percent"] >= memory_warn:
            alerts.append(alert("container_memory", WARN, c["memory_percent"], memory_warn, "container %s uses %.1f%% of its "
                                "memory limit (warn at %s%%)" % (name, c["memory_percent"], memory_warn)))
    if ooms:
        alerts.append(alert("kernel_oom", WARN, len(ooms), 0, "the kernel's OOM killer killed %d process(es) since %s: %s" % (
            len(ooms), ooms[0]["time"], ", ".join("%s (%s)" % (o["process"], o["pid"]) for o in ooms[:5]))))
    return alerts
