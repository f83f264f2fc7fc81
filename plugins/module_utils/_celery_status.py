# Copyright (c) webstack.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Celery's state behind the celery_status module: workers and tasks from Flower's HTTP API, queue lengths
from the Redis broker, the last run of each beat task from the app's task-run table."""

from __future__ import annotations

import json
import time
from urllib.error import HTTPError, URLError
from urllib.parse import unquote, urlencode, urlsplit, urlunsplit

from ansible.module_utils.urls import ConnectionError as UrlsConnectionError
from ansible.module_utils.urls import open_url
from ansible_collections.webstack.ops.plugins.module_utils._alerts import CRIT, WARN, alert

# kombu's Redis transport keeps messages of priority steps 3, 6 and 9 under the queue name plus these suffixes.
PRIORITY_SUFFIXES = ("", "\x06\x163", "\x06\x166", "\x06\x169")
FAILED_LIMIT = 1000  # newest failed tasks asked of Flower
RECENT_FAILURES = 10  # failed tasks returned with their exception


class CeleryError(Exception):
    """A source could not be read; the message says which, why, and what to check (never a password)."""


def parse_age(value, what):
    """Seconds from an int (seconds) or a text like 90s, 30m, 26h, 7d."""
    text = str(value).strip()
    units = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
    try:
        seconds = float(text[:-1]) * units[text[-1]] if text[-1:] in units else float(text)
    except ValueError:
        raise CeleryError("%s: %r is not an age (seconds, or a number with s, m, h, d or w)" % (what, value)) from None
    if seconds <= 0:
        raise CeleryError("%s: %r must be more than 0" % (what, value))
    return seconds


# --- Flower ---------------------------------------------------------------------------------------------

class Flower:
    """GETs against Flower's API, with basic auth when a user is set."""

    def __init__(self, url, user=None, password=None, timeout=10, validate_certs=True):
        if urlsplit(url).scheme not in ("http", "https"):
            raise CeleryError("flower_url must start with http:// or https://, got %r" % url)
        self.base = url.rstrip("/")
        self.user = user
        self.password = password
        self.timeout = timeout
        self.validate_certs = validate_certs
        parts = urlsplit(url)
        # For messages: the URL without any user:password@ in it.
        self.where = urlunsplit((parts.scheme, parts.hostname + (":%s" % parts.port if parts.port else ""),
                                 parts.path, "", "")) if parts.hostname else url

    def scrub(self, text):
        return str(text).replace(self.password, "********") if self.password else str(text)

    def get(self, path, **query):
        url = "%s%s?%s" % (self.base, path, urlencode(query))
        try:
            response = open_url(url, timeout=self.timeout, validate_certs=self.validate_certs, url_username=self.user,
                                url_password=self.password, force_basic_auth=bool(self.user), use_netrc=False,
                                headers={"Accept": "application/json"})
            body = response.read()
        except HTTPError as exc:
            detail = self.scrub(exc.read()[:300].decode("utf-8", "replace").strip()) if exc.fp else ""
            if exc.code == 401:
                hint = ("the credentials were refused: check flower_user and flower_password (Flower's --basic-auth)"
                        if self.user else "it requires authentication: set flower_user and flower_password, or run "
                                          "Flower with FLOWER_UNAUTHENTICATED_API=true on a trusted network")
                raise CeleryError("Flower at %s answered 401 Unauthorized: %s%s" % (
                    self.where, hint, " (Flower said: %s)" % detail if detail else "")) from None
            raise CeleryError("Flower at %s answered HTTP %s to %s: %s" % (
                self.where, exc.code, path, detail or exc.reason)) from None
        except (URLError, OSError, UrlsConnectionError) as exc:
            reason = getattr(exc, "reason", exc)
            raise CeleryError("cannot reach Flower at %s: %s. Check flower_url, that Flower runs and listens there "
                              "(celery flower --address --port), and the firewall" % (
                                  self.where, self.scrub(reason))) from None
        try:
            return json.loads(body)
        except ValueError:
            raise CeleryError("Flower at %s did not answer JSON to %s (is flower_url Flower's address, with its "
                              "url_prefix?)" % (self.where, path)) from None


def read_workers(flower):
    """Workers Flower knows: online (heartbeats), active and processed tasks, pool size, queues consumed."""
    inspected = flower.get("/api/workers", refresh=1)  # stale entries stay for workers that did not answer
    alive = flower.get("/api/workers", status=1)
    started = flower.get("/api/tasks", state="STARTED", limit=FAILED_LIMIT)
    active = {}
    for task in started.values():
        active[task.get("worker")] = active.get(task.get("worker"), 0) + 1
    workers = []
    for name in sorted(set(inspected) | set(alive)):
        info = inspected.get(name) or {}
        stats = info.get("stats") or {}
        workers.append({
            "name": name,
            "online": bool(alive.get(name)),
            "active": active.get(name, 0),
            "processed": sum((stats.get("total") or {}).values()),
            "concurrency": (stats.get("pool") or {}).get("max-concurrency"),
            "queues": sorted(q.get("name") for q in info.get("active_queues") or [] if q.get("name")),
        })
    return workers


def read_failures(flower, since):
    """Failed tasks Flower holds (newest first), and those that failed after since (epoch)."""
    failed = flower.get("/api/tasks", state="FAILURE", sort_by="-received", limit=FAILED_LIMIT)
    recent = []
    for uuid, task in failed.items():
        when = task.get("failed") or task.get("timestamp") or 0
        if when > since:
            recent.append({"uuid": uuid, "name": task.get("name"), "worker": task.get("worker"), "failed": when,
                           "exception": (task.get("exception") or "")[:300]})
    recent.sort(key=lambda task: -task["failed"])
    return len(failed), recent


# --- broker -----------------------------------------------------------------------------------------------

def broker_params(url, password=None, timeout=10):
    """The _redis connection options from a Celery broker URL (redis:// or rediss://); password overrides the URL's."""
    parts = urlsplit(url)
    if parts.scheme not in ("redis", "rediss"):
        raise CeleryError("broker_url must be a Redis URL (redis://host:port/db or rediss://...), got scheme %r: "
                          "only Redis brokers are read" % parts.scheme)
    path = parts.path.strip("/")
    try:
        db = int(path) if path else 0
        port = parts.port or 6379
    except ValueError:
        raise CeleryError("broker_url: the port and the database number must be numbers") from None
    return dict(login_host=parts.hostname or "127.0.0.1", login_port=port, db=db,
                login_user=unquote(parts.username) if parts.username else None,
                login_password=password or (unquote(parts.password) if parts.password else None),
                tls=parts.scheme == "rediss", validate_certs=True, ca_cert=None,
                connect_timeout=timeout, socket_timeout=timeout)


def queue_lengths(client, queues):
    """Messages waiting per queue (all priority steps), in one round trip."""
    pipe = client.pipeline(transaction=False)
    for queue in queues:
        for suffix in PRIORITY_SUFFIXES:
            pipe.llen(queue + suffix)
    counts = pipe.execute()
    step = len(PRIORITY_SUFFIXES)
    return {queue: sum(counts[i * step:(i + 1) * step]) for i, queue in enumerate(queues)}


# --- beat task runs --------------------------------------------------------------------------------------

def last_runs(conn, sql, table, names):
    """Per task name, its latest run in the task-run table (name, started_at, finished_at, status) and its age
    in seconds by the database's clock."""
    query = sql.SQL(
        "SELECT DISTINCT ON (name) name, started_at, finished_at, status, "
        "EXTRACT(EPOCH FROM now() - started_at)::float8 FROM {} {} ORDER BY name, started_at DESC").format(
        sql.Identifier(*table.split(".", 1)), sql.SQL("WHERE name = ANY(%s)" if names else ""))
    with conn.cursor() as cur:
        cur.execute(query, (list(names),) if names else None)
        rows = cur.fetchall()
    return {name: {"last_started": started.isoformat() if started else None,
                   "last_finished": finished.isoformat() if finished else None,
                   "last_status": status, "age_seconds": round(age, 1)}
            for name, started, finished, status, age in rows}


# --- alerts -----------------------------------------------------------------------------------------------

def level_for(value, warn, crit):
    """crit, warn or None for a value against thresholds where 0 means off."""
    if crit and value >= crit:
        return CRIT
    if warn and value >= warn:
        return WARN
    return None


def celery_alerts(figures, limits, previous_queues):
    """Alerts for too few workers, long or growing queues, failed tasks, and beat tasks that did not run."""
    alerts = []
    online = [w["name"] for w in figures["workers"] if w["online"]]
    if limits["min_workers"] and len(online) < limits["min_workers"]:
        known = len(figures["workers"])
        message = ("no Celery worker online" if not online else
                   "%d Celery worker(s) online, fewer than %d" % (len(online), limits["min_workers"]))
        alerts.append(alert("celery_workers", CRIT, len(online), limits["min_workers"], "%s (Flower knows %d worker(s)%s)" % (
            message, known, ", offline: %s" % ", ".join(w["name"] for w in figures["workers"] if not w["online"])
            if known > len(online) else "")))
    for queue, length in (figures["queues"] or {}).items():
        level = level_for(length, limits["queue_warn"], limits["queue_crit"])
        if level:
            threshold = limits["queue_crit"] if level == CRIT else limits["queue_warn"]
            alerts.append(alert("celery_queue", level, length, threshold, "queue %s holds %d message(s) (%s threshold %d)" % (
                queue, length, level, threshold)))
        before = previous_queues.get(queue)
        if limits["queue_growth"] and before is not None and length - before >= limits["queue_growth"]:
            alerts.append(alert("celery_queue_growth", WARN, length - before, limits["queue_growth"],
                                "queue %s grew by %d message(s) since the last run (%d -> %d): workers do not keep up" % (
                                    queue, length - before, before, length)))
    failed = figures["failed_tasks"]
    level = level_for(failed["count"], limits["failed_warn"], limits["failed_crit"])
    if level:
        threshold = limits["failed_crit"] if level == CRIT else limits["failed_warn"]
        names = sorted({task["name"] or "?" for task in failed["recent"]})
        alerts.append(alert("celery_failed_tasks", level, failed["count"], threshold,
                            "%d Celery task(s) failed since %s (%s threshold %d): %s" % (
                                failed["count"], failed["since"], level, threshold, ", ".join(names))))
    for name, max_age in limits["beat_max_age"].items():
        run = (figures["beat_tasks"] or {}).get(name)
        if run is None:
            message = "beat task %s has no recorded run (expected at least every %ds)" % (name, max_age)
            alerts.append(alert("celery_beat", WARN, None, max_age, message))
        elif run["age_seconds"] > max_age:
            alerts.append(alert("celery_beat", WARN, run["age_seconds"], max_age,
                                "beat task %s last ran %.1f h ago (%s), limit %.1f h: is celery_beat running?" % (
                                    name, run["age_seconds"] / 3600, run["last_status"], max_age / 3600)))
    return alerts


def iso_utc(epoch):
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))
