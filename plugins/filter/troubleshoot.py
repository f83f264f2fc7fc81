# Copyright (c) webstack.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The troubleshoot role's reading of a diagnosis: what it gathered, digested, and the likely causes with their remedies.

`troubleshoot_diagnose(gathered, symptom, settings)` takes the registered results of the symptom's checks and returns
{"facts": a digest people read, "findings": [finding]}. A finding names a cause, the evidence for it and the guide's
remedy; `action` (with `target`) is the remedy the role can apply with troubleshoot_apply, None when it is advice only.
Pure functions over plain data, so the unit tests can feed them every case.
"""

from __future__ import annotations

import re

from ansible_collections.webstack.ops.plugins.module_utils._alerts import CRIT, WARN

INFO = "info"  # a finding that explains rather than alarms (the alerts' levels are warn and crit)
ORDER = {CRIT: 0, WARN: 1, INFO: 2}
SYMPTOMS = ("high_memory", "high_cpu", "db_connections", "celery", "static_files", "ssl_expired", "disk_full")


def finding(level, cause, evidence, remedy, *, action=None, target=None):
    return {"level": level, "cause": cause, "evidence": [item for item in evidence if item], "remedy": remedy,
            "action": action, "target": target}


def human(size):
    """Bytes as people read them (binary units, like `du -h`)."""
    if size is None:
        return "unknown"
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(value) < 1024 or unit == "TiB":
            return ("%d %s" % (value, unit)) if unit == "B" else ("%.1f %s" % (value, unit))
        value /= 1024
    return "%s B" % size  # not reached


def _ran(result):
    """A registered result that ran and did not fail."""
    return bool(result) and not result.get("skipped") and not result.get("failed")


def _failed(result):
    return bool(result) and not result.get("skipped") and bool(result.get("failed"))


def _message(result):
    return (result or {}).get("msg") or "the task failed without a message"


# Containers (webstack.ops.container_status).


def containers_by_name(result):
    return {c["name"]: c for c in (result or {}).get("containers") or []}


def missing_containers(result):
    return [a["value"] for a in (result or {}).get("alerts") or [] if a.get("check") == "container_missing"]


def container_state(container):
    """'exited (exit code 137, OOM-killed)' and the like."""
    details = ["exit code %s" % container.get("exit_code")]
    if container.get("oom_killed"):
        details.append("OOM-killed")
    return "%s (%s)" % (container.get("status"), ", ".join(details))


def down_findings(result, names, why):
    """A crit finding with the `start_container` remedy for each of `names` that exists and is not running."""
    found = []
    by_name = containers_by_name(result)
    for name in names:
        container = by_name.get(name)
        if container and not container["running"]:
            found.append(finding(CRIT, "container %s is %s: %s" % (name, container_state(container), why),
                                 ["restart policy %s, restart count %s" % (container.get("restart_policy"), container.get("restart_count"))],
                                 "start %s (docker start %s); look at its last logs (docker logs --tail 50 %s) for why it stopped"
                                 % (name, name, name), action="start_container", target=name))
    for name in missing_containers(result):
        if name in names:
            found.append(finding(CRIT, "container %s does not exist: %s" % (name, why), [],
                                 "create it again from the compose file (docker compose up -d %s)" % name))
    return found


def container_check_failed(result, what):
    if _failed(result):
        return [finding(CRIT, "the Docker engine could not be read: %s" % _message(result), [],
                        "check that dockerd runs and troubleshoot_docker_host; %s cannot be diagnosed without it" % what)]
    return []


# /proc texts.


def meminfo(text):
    """MemTotal, MemAvailable, SwapTotal, SwapFree in bytes from /proc/meminfo."""
    values = {}
    for line in (text or "").splitlines():
        match = re.match(r"(\w+):\s+(\d+)(?: kB)?", line)
        if match:
            values[match.group(1)] = int(match.group(2)) * 1024
    total, available = values.get("MemTotal"), values.get("MemAvailable")
    return {"total": total, "available": available,
            "used_percent": round(100.0 * (total - available) / total, 1) if total and available is not None else None,
            "swap_total": values.get("SwapTotal"), "swap_used": (values.get("SwapTotal") or 0) - (values.get("SwapFree") or 0)}


def loadavg(text, stat_text):
    """The 1, 5 and 15 minute load averages from /proc/loadavg and the CPU count from /proc/stat."""
    fields = (text or "").split()
    cpus = len([line for line in (stat_text or "").splitlines() if re.match(r"cpu\d+\s", line)]) or None
    loads = [float(value) for value in fields[:3]] if len(fields) >= 3 else [None, None, None]
    return {"load1": loads[0], "load5": loads[1], "load15": loads[2], "cpus": cpus,
            "load1_per_cpu": round(loads[0] / cpus, 2) if cpus and loads[0] is not None else None}


# disk_full helpers.


def du_entries(results, top):
    """The largest entries of `du -x -a -k --max-depth=N PATH` outputs (one registered result per path), biggest first.

    The path itself (its total) is left out when something under it is listed, so the first entry names a culprit.
    """
    entries = []
    for result in results or []:
        root = str(result.get("item", "")).rstrip("/") or "/"
        for line in (result.get("stdout") or "").splitlines():
            size, _tab, path = line.partition("\t")
            if size.strip().isdigit() and path:
                entries.append({"path": path, "size": int(size) * 1024, "root": root})
    children = [e for e in entries if e["path"].rstrip("/") != e["root"]]
    chosen = children or entries
    chosen.sort(key=lambda e: e["size"], reverse=True)
    return [{"path": e["path"], "size": e["size"], "size_human": human(e["size"])} for e in chosen[:top]]


def _dangling(image):
    tags = image.get("RepoTags") or []
    return not tags or all(tag == "<none>:<none>" for tag in tags)


def _own_size(image):
    """What removing the image gives back: its size without the layers it shares with other images."""
    return max((image.get("Size") or 0) - max(image.get("SharedSize") or 0, 0), 0)


def docker_usage(disk_usage, project):
    """What `docker system df` shows, and what a prune that keeps the project's containers would give back."""
    usage = disk_usage or {}
    images = usage.get("Images") or []
    containers = usage.get("Containers") or []
    cache = usage.get("BuildCache") or []
    dangling = [i for i in images if _dangling(i) and not i.get("Containers")]
    stopped = [c for c in containers if c.get("State") != "running"
               and (c.get("Labels") or {}).get("com.docker.compose.project") != project]
    cache_size = sum(item.get("Size") or 0 for item in cache if not item.get("InUse"))
    reclaimable = sum(_own_size(i) for i in dangling) + sum(c.get("SizeRw") or 0 for c in stopped) + cache_size
    return {"layers_size": usage.get("LayersSize"), "images": len(images),
            "images_size": sum(i.get("Size") or 0 for i in images),
            "dangling_images": [{"id": (i.get("Id") or "")[7:19], "size": _own_size(i)} for i in dangling],
            "stopped_containers": [{"name": (c.get("Names") or ["?"])[0].lstrip("/"), "image": c.get("Image"), "size": c.get("SizeRw") or 0}
                                   for c in stopped],
            "build_cache_size": cache_size, "reclaimable": reclaimable, "reclaimable_human": human(reclaimable)}


# The symptoms.


def high_memory(gathered, settings):
    containers = containers_by_name(gathered.get("containers"))
    host = meminfo(gathered.get("meminfo"))
    redis = gathered.get("redis") or {}
    limit = settings.get("memory_percent", 90)
    found = container_check_failed(gathered.get("containers"), "container memory")
    for name, c in sorted(containers.items()):
        if c.get("oom_killed") and not c["running"]:
            found.append(finding(CRIT, "container %s was killed by the kernel's OOM killer and is down" % name,
                                 ["memory limit %s" % human(c.get("memory_limit")) if c.get("memory_limit") else None],
                                 "start %s; if it happens again raise its memory limit (mem_limit) or find what grows in it" % name,
                                 action="start_container", target=name))
        elif c.get("oom_killed"):
            found.append(finding(WARN, "container %s was OOM-killed and restarted by its restart policy (restart count %s)"
                                 % (name, c.get("restart_count")), [],
                                 "raise its memory limit (mem_limit) or find what grows in it; it runs again"))
        if c.get("memory_percent") is not None and c["memory_percent"] >= limit:
            found.append(finding(WARN, "container %s uses %.1f%% of its memory limit (%s of %s)"
                                 % (name, c["memory_percent"], human(c.get("memory_bytes")), human(c.get("memory_limit"))),
                                 ["threshold %s%%" % limit],
                                 "restart %s to give the memory back (docker restart %s), then watch whether it grows again"
                                 % (name, name), action="restart_container", target=name))
    ooms = (gathered.get("containers") or {}).get("kernel_oom") or []
    if ooms:
        found.append(finding(WARN, "the kernel's OOM killer killed %d process(es) since %s, the last %s (pid %s) at %s" % (
            len(ooms), ooms[0].get("time"), ooms[-1].get("process"), ooms[-1].get("pid"), ooms[-1].get("time")),
            [oom.get("message") for oom in ooms[-3:]],
            "find which container ran them (a cgroup's \"Memory cgroup out of memory\" is a container at its limit) and raise "
            "that limit or the host's memory"))
    if host["used_percent"] is not None and host["used_percent"] >= settings.get("host_memory_percent", 90):
        biggest = sorted((c for c in containers.values() if c.get("memory_bytes")), key=lambda c: c["memory_bytes"], reverse=True)[:3]
        found.append(finding(WARN, "the host has %.1f%% of its memory in use (%s available of %s)"
                             % (host["used_percent"], human(host["available"]), human(host["total"])),
                             ["largest containers: " + ", ".join("%s %s" % (c["name"], human(c["memory_bytes"])) for c in biggest)
                              if biggest else None],
                             "restart the largest container or add memory; check for processes outside Docker (top -o %MEM)"))
    memory = redis.get("memory") or {}
    if _failed(redis):
        found.append(finding(WARN, "Redis could not be read: %s" % _message(redis), [], "check the redis_cache container and the password"))
    elif memory.get("used_percent") is not None and memory["used_percent"] >= settings.get("redis_memory_percent", 90):
        stats = redis.get("stats") or {}
        found.append(finding(WARN, "Redis uses %.1f%% of its memory limit (%s of %s %s, policy %s)" % (
            memory["used_percent"], human(memory.get("used")), human(memory.get("limit")), memory.get("limit_source"),
            memory.get("maxmemory_policy") or "unknown"),
            ["evicted keys %s" % stats.get("evicted_keys") if stats.get("evicted_keys") is not None else None,
             "keys: %s" % ", ".join("%s %s" % (db, info.get("keys")) for db, info in sorted((redis.get("keyspace") or {}).items()))
             if redis.get("keyspace") else None],
            "clear the Django cache's keys (the guide's `cache.clear()`: SCAN and UNLINK of the cache prefix); "
            "if it fills again, lower the cache timeouts or raise maxmemory", action="clear_cache"))
    keys = ("name", "running", "memory_bytes", "memory_limit", "memory_percent", "oom_killed")
    facts = {"host_memory": host, "containers": [{key: c.get(key) for key in keys} for c in containers.values()],
             "redis_memory": memory or None}
    return facts, found


def _pg_activity_findings(pg):
    """Advice on the long sessions, one finding per session (its longest-running kind), three of each kind at most."""
    found, seen = [], set()
    for key, what in (("long_queries", "a query has been running"), ("long_transactions", "a transaction has been open"),
                      ("idle_in_transaction", "a session has been idle in a transaction")):
        for session in [s for s in pg.get(key) or [] if s.get("pid") not in seen][:3]:
            seen.add(session.get("pid"))
            seconds = session.get("state_seconds") if key == "idle_in_transaction" else session.get(
                "query_seconds" if key == "long_queries" else "transaction_seconds")
            found.append(finding(WARN, "%s for %s s (pid %s, user %s, application %s, %s)" % (
                what, round(seconds or 0), session.get("pid"), session.get("user"), session.get("application_name") or "-",
                session.get("state")),
                ["query: %s" % (session.get("query") or "")[:200], "waiting on %s %s" % (session.get("wait_event_type"), session.get("wait_event"))
                 if session.get("wait_event_type") else None],
                "find out what it is before ending it: SELECT pg_cancel_backend(%s) cancels the query, "
                "pg_terminate_backend(%s) ends the session (not done by this runbook)" % (session.get("pid"), session.get("pid"))))
    return found


def high_cpu(gathered, settings):
    containers = containers_by_name(gathered.get("containers"))
    load = loadavg(gathered.get("loadavg"), gathered.get("stat"))
    pg = gathered.get("postgres") or {}
    found = container_check_failed(gathered.get("containers"), "container CPU")
    hot = sorted((c for c in containers.values() if (c.get("cpu_percent") or 0) >= settings.get("cpu_percent", 80)),
                 key=lambda c: c["cpu_percent"], reverse=True)
    for c in hot:
        found.append(finding(WARN, "container %s uses %.0f%% CPU (of one CPU)" % (c["name"], c["cpu_percent"]),
                             ["threshold %s%%" % settings.get("cpu_percent", 80)],
                             "look inside first (docker top %s); restart it if it is stuck (docker restart %s)" % (c["name"], c["name"]),
                             action="restart_container", target=c["name"]))
    if load["load1_per_cpu"] is not None and load["load1_per_cpu"] >= settings.get("load_per_cpu", 1.0):
        found.append(finding(WARN if hot else INFO, "the host's load average is %s on %s CPU(s) (%s per CPU)" % (
            load["load1"], load["cpus"], load["load1_per_cpu"]),
            ["5 and 15 minutes: %s, %s" % (load["load5"], load["load15"]),
             "busiest containers: " + ", ".join("%s %s%%" % (c["name"], c.get("cpu_percent")) for c in sorted(
                 containers.values(), key=lambda c: c.get("cpu_percent") or 0, reverse=True)[:3]) if containers else None],
            "if no container is busy, look at the host's processes (top)"))
    if _failed(pg):
        found.append(finding(WARN, "PostgreSQL could not be read: %s" % _message(pg), [], "see the db_connections symptom"))
    found += _pg_activity_findings(pg)
    dead = pg.get("dead_tuples") or []
    if dead:
        found.append(finding(WARN, "%d table(s) carry many dead rows, which makes scans work harder: %s" % (
            len(dead), ", ".join("%s (%s dead)" % (t.get("name"), t.get("dead_tuples")) for t in dead[:5])), [],
            "VACUUM ANALYZE the tables that need it", action="vacuum_analyze"))
    top = ((pg.get("statements") or {}).get("by_total") or [])[:1]
    if top:
        found.append(finding(INFO, "the statement with the most total time takes %s%% of it (%s calls, mean %s ms)" % (
            top[0].get("percent_of_total"), top[0].get("calls"), top[0].get("mean_time_ms")), [(top[0].get("query") or "")[:200]],
            "EXPLAIN ANALYZE it; an index may be missing (the monthly review lists candidates)"))
    facts = {"load": load, "containers": [{"name": c["name"], "cpu_percent": c.get("cpu_percent"), "running": c["running"]}
                                          for c in containers.values()],
             "long_queries": len(pg.get("long_queries") or []), "dead_tuple_tables": [t.get("name") for t in dead]}
    return facts, found


def db_connections(gathered, settings):
    pg = gathered.get("postgres") or {}
    name = settings.get("postgres_container") or ""
    found = down_findings(gathered.get("containers"), [name] if name else [], "PostgreSQL is not running, so every connection fails")
    connections = pg.get("connections") or {}
    if _failed(pg) and not found:
        message = _message(pg)
        restart = bool(name) and "too many" in message.lower()
        found.append(finding(CRIT, "PostgreSQL does not accept connections: %s" % message, [],
                             "restart %s (the guide's `docker restart %s`) after looking at who holds the connections" % (name, name)
                             if restart else "check the server, the address, the port and the password",
                             action="restart_container" if restart else None, target=name if restart else None))
    percent = connections.get("percent")
    if percent is not None:
        states = ", ".join("%s %s" % (state, count) for state, count in sorted((connections.get("by_state") or {}).items()))
        evidence = ["by state: %s" % states if states else None, "superuser_reserved_connections %s" % connections.get("superuser_reserved")]
        text = "%s of max_connections %s are in use (%.0f%%)" % (connections.get("total"), connections.get("max_connections"), percent)
        if percent >= settings.get("connections_crit_percent", 90):
            found.append(finding(CRIT, text + ": new connections will soon be refused (too many clients)", evidence,
                                 "restart %s to drop them (the guide's `docker restart %s`); then find the client that leaks "
                                 "connections, or raise max_connections or pool them (PgBouncer)" % (name, name) if name else
                                 "restart PostgreSQL to drop them, then find the client that leaks connections",
                                 action="restart_container" if name else None, target=name or None))
        elif percent >= settings.get("connections_warn_percent", 80):
            found.append(finding(WARN, text, evidence, "find the clients that hold them (pg_stat_activity by application_name and "
                                 "client_addr); raise max_connections or pool them (PgBouncer) before they run out"))
    found += _pg_activity_findings(pg)
    facts = {"connections": connections or None, "long_queries": pg.get("long_queries") or [],
             "long_transactions": pg.get("long_transactions") or [], "idle_in_transaction": pg.get("idle_in_transaction") or []}
    return facts, found


def celery(gathered, settings):
    result = gathered.get("containers")
    status = gathered.get("celery") or {}
    workers = settings.get("celery_containers") or []
    broker = settings.get("broker_container") or ""
    flower = settings.get("flower_container") or ""
    found = container_check_failed(result, "the Celery containers")
    found += down_findings(result, workers, "its tasks are not run")
    found += down_findings(result, [broker] if broker else [], "the broker is down: nothing can be queued nor consumed")
    found += down_findings(result, [flower] if flower else [], "Flower is down: the workers cannot be seen")
    by_name = containers_by_name(result)
    if _failed(status):
        if not found:
            found.append(finding(WARN, "Celery could not be read: %s" % _message(status), [], "check Flower's URL and the broker URL"))
    elif status and not status.get("skipped"):
        online = status.get("workers_online") or 0
        running_workers = [n for n in workers if by_name.get(n, {}).get("running") and "beat" not in n]
        if online < settings.get("min_workers", 1) and running_workers and not any(f["action"] == "start_container" for f in found):
            found.append(finding(CRIT, "no Celery worker is online in Flower although %s runs" % ", ".join(running_workers),
                                 ["Flower knows: %s" % ", ".join("%s (%s)" % (w.get("name"), "online" if w.get("online") else "offline")
                                                                 for w in status.get("workers") or []) or "no worker"],
                                 "restart it (docker restart %s) and read its log: a worker that cannot reach the broker or "
                                 "is stuck on a task stops its heartbeats" % running_workers[0], action="restart_container", target=running_workers[0]))
        for queue, waiting in sorted((status.get("queues") or {}).items()):
            if waiting and waiting >= settings.get("queue_warn", 100):
                found.append(finding(WARN, "%s message(s) wait in queue %s" % (waiting, queue), [],
                                     "add worker concurrency, or find the task that floods it"))
        failed = status.get("failed_tasks") or {}
        if failed.get("count"):
            recent = failed.get("recent") or []
            found.append(finding(WARN, "%s task(s) failed since %s" % (failed["count"], failed.get("since")),
                                 ["%s: %s" % (t.get("name"), t.get("exception")) for t in recent[:3]],
                                 "read the tracebacks in Flower or the worker's log"))
    facts = {"containers": {n: by_name[n]["status"] for n in [*workers, broker, flower] if n in by_name},
             "workers_online": status.get("workers_online"), "workers": status.get("workers"), "queues": status.get("queues")}
    return facts, found


COLLECTSTATIC = "run collectstatic (manage.py collectstatic --noinput in the web container)"


def static_root_facts(files, root, probe_path):
    """From one `find` of STATIC_ROOT for the probe file and the manifest: exists, entries (examined), probe, manifest."""
    if not _ran(files):
        return {"exists": None, "entries": None, "probe": None, "manifest": None}
    found = {f.get("path") for f in files.get("files") or []}
    base = root.rstrip("/")
    return {"exists": root not in (files.get("skipped_paths") or {}), "entries": files.get("examined"),
            "probe": "%s/%s" % (base, probe_path) in found, "manifest": "%s/staticfiles.json" % base in found}


def _static_on_disk(on_disk, settings):
    """STATIC_ROOT on the host: there, not empty, holding the probe file."""
    root, probe_path = settings.get("static_root") or "", settings.get("static_probe") or ""
    if not root or on_disk["exists"] is None:
        return []
    if not on_disk["exists"]:
        return [finding(CRIT, "STATIC_ROOT %s does not exist: collectstatic has not run on this host" % root, [], COLLECTSTATIC,
                        action="collectstatic")]
    if not on_disk["entries"]:
        return [finding(CRIT, "STATIC_ROOT %s is empty: the collected files are gone" % root, [], COLLECTSTATIC, action="collectstatic")]
    if probe_path and not on_disk["probe"]:
        return [finding(CRIT, "%s is missing under STATIC_ROOT %s (%s entries there): collectstatic's output is incomplete"
                        % (probe_path, root, on_disk["entries"]), [], COLLECTSTATIC, action="collectstatic")]
    return []


def _static_served(probe, settings, on_disk):
    """The probe file through nginx: 200 with the right content type."""
    if not probe or probe.get("skipped"):
        return []
    root, probe_path = settings.get("static_root") or "", settings.get("static_probe") or ""
    status, url = probe.get("status"), settings.get("static_url") or probe.get("url") or probe_path
    content_type = (probe.get("content_type") or "").split(";")[0].strip()
    expected = settings.get("static_content_type") or ""
    if status == 200 and expected and content_type != expected:
        return [finding(WARN, "/static/%s is served as %s, not %s: browsers refuse such stylesheets and scripts"
                        % (probe_path, content_type or "no content type", expected), [url],
                        "include mime.types in nginx's http block (include /etc/nginx/mime.types;), nginx -t, reload")]
    if status == 200 or (status == 404 and on_disk):
        if on_disk:
            on_disk[0]["evidence"].append("nginx answers %s for %s" % (status, url))
        return []
    if status == 404:
        return [finding(CRIT, "nginx answers 404 for /static/%s although the file is under STATIC_ROOT" % probe_path, [url],
                        "check that nginx's `location /static/` alias points at STATIC_ROOT (%s), then nginx -t and reload" % root)]
    if status == 403:
        return [finding(CRIT, "nginx answers 403 for /static/%s: it may not read the files" % probe_path, [url],
                        "let nginx's user read STATIC_ROOT (chmod -R a+rX %s)" % root)]
    return [finding(CRIT, "/static/%s does not answer as it should: %s" % (
        probe_path, "HTTP %s" % status if status and status > 0 else probe.get("msg") or "no answer"), [url],
        "check nginx (it serves /static/) and its error log")]


def _static_s3(s3, public, settings):
    """With troubleshoot_static_s3_bucket: objects under the prefix, and the probe's public URL."""
    found = []
    if _failed(s3):
        found.append(finding(CRIT, "the static files' bucket could not be listed: %s" % _message(s3), [],
                             "check the bucket name, the credentials and the region"))
    elif _ran(s3) and not (s3.get("s3_keys") or []):
        found.append(finding(CRIT, "no static file in s3://%s/%s" % (settings.get("static_s3_bucket"), settings.get("static_s3_prefix")), [],
                             "run collectstatic (with S3 storage it uploads them)", action="collectstatic"))
    if public and not public.get("skipped") and public.get("status") != 200:
        found.append(finding(CRIT, "the static file's public URL answers %s" % (public.get("status") or public.get("msg")), [public.get("url")],
                             "a 403 means the bucket policy does not allow public reads of static/; "
                             "a 404 that the object is missing (collectstatic)"))
    return found


def static_files(gathered, settings):
    on_disk = static_root_facts(gathered.get("static_files"), settings.get("static_root") or "", settings.get("static_probe") or "")
    probe = gathered.get("probe") or {}
    s3, public = gathered.get("s3_objects") or {}, gathered.get("s3_probe") or {}
    local = _static_on_disk(on_disk, settings)
    found = local + _static_served(probe, settings, local) + _static_s3(s3, public, settings)
    facts = dict(on_disk, static_root=settings.get("static_root"), probe_path=settings.get("static_probe"), probe_status=probe.get("status"),
                 probe_content_type=probe.get("content_type"), s3_objects=len(s3.get("s3_keys") or []) if _ran(s3) else None,
                 s3_public_status=public.get("status"))
    return facts, found


def _days(value):
    return "%.1f days" % value if value is not None else "unknown days"


def ssl_expired(gathered, settings):
    """From webstack.ops.certbot_status: each lineage on disk and what nginx serves for it."""
    status = gathered.get("certs") or {}
    warn_days = settings.get("cert_warn_days", 14)
    found = []
    if _failed(status):
        found.append(finding(CRIT, "certbot's certificates could not be read: %s" % _message(status), [],
                             "check troubleshoot_certbot_config_dir and troubleshoot_cert_names (`certbot certificates` lists them)"))
    for cert in status.get("certificates") or []:
        name, served = cert.get("name"), cert.get("served") or {}
        disk_left = cert.get("days_left")
        on_disk = "certbot's certificate: serial %s, until %s (%s left), due for renewal: %s" % (
            cert.get("serial"), cert.get("not_after"), _days(disk_left), cert.get("due"))
        if served.get("error"):
            found.append(finding(CRIT, "no certificate could be fetched for %s from %s:%s: %s" % (
                name, served.get("address"), served.get("port"), served["error"]), [on_disk],
                "check that nginx runs and listens for TLS there"))
            continue
        served_left = served.get("days_left")
        stale = bool(served) and served.get("fingerprint_sha256") != cert.get("fingerprint_sha256")
        serving = None
        if served:
            serving = "nginx serves %s: serial %s, until %s (%s left), issuer %s" % (
                "another certificate" if stale else "this certificate", served.get("serial"), served.get("not_after"),
                _days(served_left), served.get("issuer"))
        untrusted = "does not verify: %s" % served["verify_error"] if served.get("verified") is False else None
        if stale and disk_left is not None and disk_left > warn_days:
            expired = served_left is not None and served_left <= 0
            found.append(finding(CRIT if expired else WARN, "nginx serves for %s a certificate that %s (serial %s), not certbot's valid "
                                 "one (serial %s): it was not reloaded after the renewal, or its ssl_certificate is not certbot's" % (
                                     name, "expired on %s" % served.get("not_after") if expired else "ends %s" % served.get("not_after"),
                                     served.get("serial"), cert.get("serial")),
                                 [serving, on_disk, untrusted],
                                 "nginx -t, then reload nginx; if it still serves the old one, point ssl_certificate at "
                                 "certbot's live/%s/fullchain.pem" % name, action="reload_nginx", target=name))
        elif disk_left is not None and disk_left <= warn_days:
            expired = disk_left <= 0 or (served_left is not None and served_left <= 0)
            when = "expired on %s" % cert.get("not_after") if disk_left <= 0 else "expires in %s (%s)" % (_days(disk_left), cert.get("not_after"))
            found.append(finding(CRIT if expired else WARN, "the certificate of %s %s: certbot did not renew it" % (name, when),
                                 [serving, on_disk, untrusted, "renewal by %s against %s" % (
                                     (cert.get("renewal") or {}).get("authenticator"), (cert.get("renewal") or {}).get("server"))],
                                 "certbot renew --cert-name %s, then nginx -t and reload nginx; if the renewal fails, read certbot's "
                                 "log (the ACME server must reach /.well-known/acme-challenge/ on port 80)" % name,
                                 action="renew_certificate", target=name))
        elif untrusted:
            found.append(finding(WARN, "the certificate served for %s %s" % (name, untrusted), [serving, on_disk],
                                 "check its names and chain (ssl_certificate must be fullchain.pem, not cert.pem)"))
    served_keys = ("serial", "not_after", "days_left", "verified", "verify_error", "error")
    facts = {"certificates": [dict({key: c.get(key) for key in ("name", "serial", "not_after", "days_left", "due")},
                                   served={key: (c.get("served") or {}).get(key) for key in served_keys})
                              for c in status.get("certificates") or []]}
    return facts, found


def disk_full(gathered, settings):
    disks = gathered.get("disks") or {}
    largest = du_entries(gathered.get("du"), settings.get("disk_top", 10))
    docker = docker_usage((gathered.get("docker") or {}).get("disk_usage"), settings.get("project"))
    logs = [f for f in (gathered.get("logs") or {}).get("files") or [] if f.get("size")]
    logs.sort(key=lambda f: f["size"], reverse=True)
    logs_size = sum(f["size"] for f in logs)
    found = []
    if _failed(disks):
        found.append(finding(CRIT, "disk space could not be read: %s" % _message(disks), [], "check troubleshoot_disk_paths"))
    warn = settings.get("disk_warn_percent", 80)
    for fs in disks.get("filesystems") or []:
        used = max(fs.get("used_percent") or 0, fs.get("inodes_used_percent") or 0)
        if used >= warn:
            under = [e for e in largest if e["path"] == fs.get("mount") or e["path"].startswith(fs.get("mount", "").rstrip("/") + "/")]
            inodes = (fs.get("inodes_used_percent") or 0) >= warn and (fs.get("used_percent") or 0) < warn
            culprit = under[0] if under else None
            found.append(finding(CRIT if used >= settings.get("disk_crit_percent", 90) else WARN,
                                 "filesystem %s is %.0f%% full (%s)%s" % (
                                     fs.get("mount"), used, "inodes" if inodes else "%s free" % human(fs.get("available_bytes")),
                                     "; the largest entry is %s (%s)" % (culprit["path"], culprit["size_human"]) if culprit else ""),
                                 ["%s %s" % (e["size_human"], e["path"]) for e in under[:5]],
                                 "remove or move what is not needed there (old backups, dumps, uploads); "
                                 "prune Docker and rotate the logs if they live on it"))
    if docker["reclaimable"] > 0 or docker["dangling_images"] or docker["stopped_containers"]:
        parts = []
        if docker["dangling_images"]:
            parts.append("%d dangling image(s)" % len(docker["dangling_images"]))
        if docker["stopped_containers"]:
            parts.append("%d stopped container(s) not of project %s (%s)" % (
                len(docker["stopped_containers"]), settings.get("project"), ", ".join(c["name"] for c in docker["stopped_containers"][:5])))
        if docker["build_cache_size"]:
            parts.append("build cache %s" % human(docker["build_cache_size"]))
        found.append(finding(WARN if found else INFO, "Docker can give back %s: %s" % (docker["reclaimable_human"], ", ".join(parts) or "unused data"),
                             ["images %d (%s), layers %s" % (docker["images"], human(docker["images_size"]), human(docker["layers_size"]))],
                             "prune Docker: dangling images, stopped containers that are not the project's, the build cache",
                             action="prune_docker"))
    if logs and logs_size >= settings.get("log_size_mb", 100) * 1024 * 1024:
        found.append(finding(WARN, "the logs take %s; the largest is %s (%s)" % (human(logs_size), logs[0]["path"], human(logs[0]["size"])),
                             ["%s %s" % (human(f["size"]), f["path"]) for f in logs[:5]], "rotate and compress the logs (logrotate)",
                             action="rotate_logs"))
    facts = {"filesystems": disks.get("filesystems"), "largest": largest, "docker": docker, "logs_size": logs_size}
    return facts, found


DIAGNOSES = {"high_memory": high_memory, "high_cpu": high_cpu, "db_connections": db_connections, "celery": celery,
             "static_files": static_files, "ssl_expired": ssl_expired, "disk_full": disk_full}


def troubleshoot_diagnose(gathered, symptom, settings=None):
    """{"facts", "findings"} of one symptom's gathered results; findings worst first."""
    if symptom not in DIAGNOSES:
        raise ValueError("unknown symptom %r; choose one of %s" % (symptom, ", ".join(SYMPTOMS)))
    facts, found = DIAGNOSES[symptom](gathered or {}, settings or {})
    found.sort(key=lambda f: ORDER[f["level"]])
    return {"facts": facts, "findings": found}


def troubleshoot_actions(findings, action):
    """The distinct targets of the findings that call for `action` (an empty string for an action without target)."""
    targets = []
    for item in findings or []:
        if item.get("action") == action and (item.get("target") or "") not in targets:
            targets.append(item.get("target") or "")
    return targets


def _prune_detail(result):
    reclaimed = sum(result.get(key) or 0 for key in ("containers_space_reclaimed", "images_space_reclaimed", "builder_cache_space_reclaimed"))
    removed = (len(result.get("containers") or []), len(result.get("images") or []), human(reclaimed))
    return "%d container(s), %d image(s) removed; %s given back" % removed


# One line on what a remedy did, from its module's result.
APPLIED_DETAIL = {
    "clear_cache": lambda r: "%s key(s) deleted, Redis memory %s -> %s" % (
        r.get("deleted"), r.get("memory_before_human"), r.get("memory_after_human")),
    "vacuum_analyze": lambda r: "VACUUM ANALYZE of %s: %s" % (
        r.get("database"), ", ".join(t.get("name", "?") for t in r.get("tables") or []) or "no table needed it"),
    "collectstatic": lambda r: ((r.get("stdout") or "").strip().splitlines() or ["no output"])[-1],
    "renew_certificate": lambda r: "renewed: %s" % (", ".join(r.get("renewed") or []) or "nothing (not due)"),
    "prune_docker": _prune_detail,
    "rotate_logs": lambda r: "the weekly_logs role ran (its report is above)",
}


def troubleshoot_applied(results):
    """What the remedies did, from {action: registered result}: [{action, target, changed, detail}]; skipped ones left out."""
    done = []
    for action, registered in (results or {}).items():
        result = registered or {}
        if result.get("skipped") and "results" not in result:
            continue
        if "results" in result:  # a loop: one entry per container
            done += [{"action": action, "target": item.get("item"), "changed": bool(item.get("changed")), "detail": None}
                     for item in result["results"] if not item.get("skipped")]
            continue
        done.append({"action": action, "target": None, "changed": None if result.get("ran") else bool(result.get("changed")),
                     "detail": APPLIED_DETAIL[action](result) if action in APPLIED_DETAIL else None})
    return done


def troubleshoot_not_back(results):
    """The containers of a looped docker_container_info that are not running (or not healthy, with a health check), in words."""
    late = []
    for result in results or []:
        if result.get("skipped"):
            continue
        state = (result.get("container") or {}).get("State") or {} if result.get("exists") else {}
        health = (state.get("Health") or {}).get("Status")
        if not state.get("Running") or health not in (None, "healthy"):
            late.append("%s (%s%s)" % (result.get("item"), state.get("Status") or "missing", ", health %s" % health if health else ""))
    return late


def troubleshoot_report(findings, applied, symptom, apply, check_mode=False):
    """The summary's lines: the findings worst first with their remedies, then what was applied (or how to apply it).

    Under --check nothing was applied: the remedies the findings call for are listed as what a real run would do.
    """
    lines = ["%s: %s" % (symptom, "%d finding(s)" % len(findings) if findings else "nothing found: the guide's checks for it all pass")]
    for item in findings or []:
        lines.append("[%s] %s" % (item["level"], item["cause"]))
        lines += ["    evidence: %s" % evidence for evidence in item.get("evidence") or []]
        how = " (this runbook applies it with -e troubleshoot_apply=true)" if item.get("action") and not apply else ""
        lines.append("    remedy: %s%s" % (item["remedy"], how))
    if apply and check_mode:
        lines += ["would apply %s%s (check mode: nothing changed)" % (action, " " + target if target else "")
                  for action, target in dict.fromkeys((f["action"], f.get("target")) for f in findings or [] if f.get("action"))]
    elif apply:
        lines += ["applied %s%s: %s" % (entry["action"], " " + entry["target"] if entry.get("target") else "",
                                        entry.get("detail") or ("changed" if entry.get("changed") else "nothing to change"))
                  for entry in applied or []] or ["applied: nothing (no finding calls for a remedy this runbook applies)"]
    return lines


class FilterModule:
    def filters(self):
        return {"troubleshoot_diagnose": troubleshoot_diagnose, "troubleshoot_actions": troubleshoot_actions,
                "troubleshoot_applied": troubleshoot_applied, "troubleshoot_report": troubleshoot_report,
                "troubleshoot_not_back": troubleshoot_not_back}
