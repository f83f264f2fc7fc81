# Copyright (c) webstack.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The maintenance report's logic, private to the collection (controller side, used by the callback
webstack.ops.maintenance_report): collecting the checks of a run, the history of earlier runs, the SVG trend
charts, the JSON and HTML outputs and the webhook message.

Plain data in, plain data out, so that it is tested without running Ansible; the callback stays thin.
"""

from __future__ import annotations

import datetime
import http.client
import json
import math
import os
import re
import tempfile
import urllib.parse
import uuid

from ansible.module_utils.urls import ConnectionError as UrlConnectionError
from ansible.module_utils.urls import open_url
from ansible_collections.webstack.ops.plugins.module_utils._alerts import CRIT, WARN
from jinja2 import Environment, StrictUndefined

FORMAT = 1
OK = "ok"
UNKNOWN = "unknown"  # a check whose result was hidden by no_log
RANK = {UNKNOWN: -1, OK: 0, WARN: 1, CRIT: 2}
COLLECTION = "webstack.ops."
TASKS = "tasks"  # the board column of failed tasks of other collections' modules
UNREACHABLE = "connection"
MESSAGE_CHARS = 2000
HISTORY_NAME = re.compile(r"^run-\d{8}T\d{6}Z-[0-9a-f]+\.json$")

# The check modules: each one is a column of the status board, even when all is well.
CHECK_MODULES = ("pg_health", "redis_stats", "container_status", "disk_usage", "log_scan", "celery_status",
                 "certbot_status", "s3_backup_info", "http_check")


def worst(levels):
    """The worst of levels (ok < warn < crit; unknown only when there is nothing else)."""
    return max(levels, key=lambda level: RANK.get(level, 0), default=OK)


def short_name(action):
    return (action or "").rsplit(".", 1)[-1]


def utc_now():
    return datetime.datetime.now(datetime.timezone.utc)


def iso(moment):
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_iso(text):
    """Seconds since the epoch of an ISO time written by iso(), or None."""
    try:
        return datetime.datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=datetime.timezone.utc).timestamp()
    except (TypeError, ValueError):
        return None


def is_number(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def clip(text, limit=MESSAGE_CHARS):
    text = str(text)
    return text if len(text) <= limit else text[:limit - 1] + "\u2026"


# --- figures for the trend charts: action -> (key, label, value, unit) ------------------------------------------
# Keys are stable across modules where they measure the same thing (pg_health and pg_maintenance both give the
# database size), so that every playbook feeds the same chart.

def _dig(data, *path):
    for step in path:
        if not isinstance(data, dict):
            return None
        data = data.get(step)
    return data


def _pg_health(r):
    db = r.get("database") or ""
    yield "database_size:" + db, "database size " + db, r.get("database_size"), "bytes"
    yield "pg_connections_percent", "PostgreSQL connections used", _dig(r, "connections", "percent"), "percent"
    yield "cache_hit_ratio:" + db, "cache hit ratio " + db, _dig(r, "database_stats", "cache_hit_ratio"), "ratio"


def _pg_maintenance(r):
    db = r.get("database") or ""
    size = r.get("size_after") if is_number(r.get("size_after")) else r.get("size_before")
    yield "database_size:" + db, "database size " + db, size, "bytes"


def _s3_backup_info(r):
    newest = r.get("newest") or {}
    name = newest.get("name") or ""
    yield "backup_age_hours:" + name, "newest backup age " + name, newest.get("age_hours"), "hours"
    yield "backup_size:" + name, "backup size " + name, newest.get("size"), "bytes"


def _s3_backup(r):
    match = re.search(r"([^/]+)_\d{8}T\d{6}Z[^/]*$", r.get("key") or "")
    name = match.group(1) if match else ""
    yield "backup_size:" + name, "backup size " + name, r.get("size"), "bytes"


def _redis_stats(r):
    yield "redis_hit_rate", "Redis hit rate", _dig(r, "stats", "hit_rate"), "ratio"
    yield "redis_memory_used", "Redis memory used", _dig(r, "memory", "used"), "bytes"


def _container_status(r):
    containers = [c for c in r.get("containers") or [] if isinstance(c, dict)]
    if containers:
        yield "containers_running", "containers running", sum(1 for c in containers if c.get("running")), "count"
        yield "containers_total", "containers", len(containers), "count"
        restarts = [c.get("restart_count") for c in containers if is_number(c.get("restart_count"))]
        yield "container_restarts", "container restarts", sum(restarts) if restarts else None, "count"


def _disk_usage(r):
    used = {}
    for fs in r.get("filesystems") or []:
        if isinstance(fs, dict) and is_number(fs.get("used_percent")):
            mount = str(fs.get("mount"))
            used[mount] = max(used.get(mount, 0), fs["used_percent"])
    for mount, percent in used.items():
        yield "disk_used_percent:" + mount, "disk used " + mount, percent, "percent"


def _log_scan(r):
    for name, found in (r.get("patterns") or {}).items():
        yield "log_count:" + name, "log lines " + name, _dig(found, "count"), "count"


def _celery_status(r):
    online = r.get("workers_online")
    if online is None and isinstance(r.get("workers"), list):
        online = sum(1 for w in r["workers"] if isinstance(w, dict) and w.get("online"))
    yield "celery_workers_online", "Celery workers online", online, "count"
    yield "celery_failed_tasks", "Celery failed tasks", _dig(r, "failed_tasks", "count"), "count"
    for queue, waiting in (r.get("queues") or {}).items():
        yield "celery_queue:" + queue, "Celery queue " + queue, waiting, "count"


def _http_check(r):
    yield "http_seconds", "HTTP response time", r.get("seconds"), "seconds"


def _certbot_status(r):
    for cert in r.get("certificates") or []:
        if isinstance(cert, dict):
            name = cert.get("name") or ",".join(cert.get("domains") or [])
            yield "cert_days_left:" + name, "certificate days left " + name, cert.get("days_left"), "days"


FIGURES = {COLLECTION + name: extract for name, extract in (
    ("pg_health", _pg_health), ("pg_maintenance", _pg_maintenance), ("s3_backup_info", _s3_backup_info),
    ("s3_backup", _s3_backup), ("redis_stats", _redis_stats), ("container_status", _container_status),
    ("disk_usage", _disk_usage), ("log_scan", _log_scan), ("celery_status", _celery_status),
    ("certbot_status", _certbot_status), ("http_check", _http_check),
)}


def figures_of(action, result):
    """{key: {label, value, unit}} of one result; a result of an unexpected shape gives what it can."""
    extract = FIGURES.get(action)
    found = {}
    if extract is None:
        return found
    try:
        for key, label, value, unit in extract(result):
            if is_number(value):
                found[key] = dict(label=label.strip(), value=value, unit=unit)
    except (AttributeError, TypeError, ValueError):
        pass
    return found


# --- collecting a run ---------------------------------------------------------------------------------------------

def is_hidden(result):
    """Whether Ansible censored the result (no_log): then nothing of it but the fact that it ran may be reported."""
    return bool(result.get("censored") or result.get("_ansible_no_log") is True)


def normal_alert(raw):
    """An alert of the shared shape from what a module returned, or None when it is not one."""
    if not isinstance(raw, dict) or not raw.get("check"):
        return None
    level = CRIT if str(raw.get("level")).lower() in (CRIT, "critical", "error") else WARN
    return dict(check=clip(raw["check"], 100), level=level, value=raw.get("value"), threshold=raw.get("threshold"),
                message=clip(raw.get("message") or raw["check"]))


ASYNC_STATUS = ("ansible.builtin.async_status", "ansible.legacy.async_status", "async_status")
SET_FACT = ("ansible.builtin.set_fact", "ansible.legacy.set_fact", "set_fact")
ROLE_ALERTS = "_alerts"  # a role's facts named <role>_alerts: the alerts its filters and tasks worked out


class Run:
    """What the report knows of one ansible-playbook run, filled by the callback as results arrive."""

    def __init__(self, started=None):
        self.started = started or utc_now()
        self.run_id = "%s-%s" % (self.started.strftime("%Y%m%dT%H%M%SZ"), uuid.uuid4().hex[:8])
        self.playbooks = []
        self.hosts = {}
        self.jobs = {}  # (host, async job id) -> (the module it runs, its task)

    def host(self, name):
        return self.hosts.setdefault(name, dict(level=OK, checks={}, alerts=[], figures={}, failed_tasks=[], stats={}))

    def _mark(self, host, column, level, task):
        check = host["checks"].setdefault(column, dict(level=level, alerts=0, tasks=[]))
        check["level"] = worst([check["level"], level])
        if task not in check["tasks"]:
            check["tasks"].append(task)
        return check

    def _alert(self, host, column, alert, task):
        self._mark(host, column, alert["level"], task)["alerts"] += 1
        host["alerts"].append(dict(alert, group=column, task=task))

    def _role_alerts(self, host, task, facts):
        """Alerts a role keeps in a <role>_alerts fact (log sizes, vulnerable packages: no check module raised them),
        each under its check's column; one already on the board (a module's, gathered again by its role) is not
        counted twice."""
        seen = {(a["check"], a["level"], a["message"]) for a in host["alerts"]}
        for name, value in facts.items():
            if not name.endswith(ROLE_ALERTS) or not isinstance(value, list):
                continue
            for found in filter(None, map(normal_alert, value)):
                if (found["check"], found["level"], found["message"]) not in seen:
                    seen.add((found["check"], found["level"], found["message"]))
                    self._alert(host, found["check"], found, task)

    def add_result(self, host_name, task, action, result, *, failed=False, ignored=False):
        """One task result (the callback's dict); failed=True for a failed task, ignored when its errors are ignored."""
        if self._async(host_name, task, action, result):
            return
        host = self.host(host_name)
        action = action or ""
        column = short_name(action)
        known = action in (COLLECTION + name for name in CHECK_MODULES)
        hidden = is_hidden(result)
        if action in SET_FACT and not hidden:
            self._role_alerts(host, task, result.get("ansible_facts") or {})
            return
        if hidden:
            if known:
                self._mark(host, column, UNKNOWN, task)
        else:
            items = [result] + [item for item in result.get("results") or [] if isinstance(item, dict)]
            for item in items:
                self._add_item(host, item, task=task, action=action, column=column, known=known)
        if failed:
            self._add_failure(host, result, task=task, action=action, column=column, hidden=hidden, ignored=ignored)

    def _async(self, host_name, task, action, result):
        """Checks started in the background (async, poll 0) report through async_status: each job's module is
        remembered when it starts, and its result read as that module's when async_status returns it finished.
        True when the result was such a start or such a wait."""
        if action in ASYNC_STATUS:
            for item in [result] + [i for i in result.get("results") or [] if isinstance(i, dict)]:
                job = self.jobs.get((host_name, item.get("ansible_job_id")))
                if job and item.get("finished"):
                    # A check that could not run is critical, whatever the wait's ignore_errors says.
                    self.add_result(host_name, job[1], job[0], item, failed=bool(item.get("failed")))
            return True
        if result.get("ansible_job_id") and result.get("started") and not result.get("finished"):
            self.jobs[(host_name, result["ansible_job_id"])] = (action, task)
            return True
        return False

    def _add_item(self, host, item, *, task, action, column, known):
        if item.get("skipped"):
            return
        host["figures"].update(figures_of(action, item))
        raw_alerts = item.get("alerts")
        if not known and not isinstance(raw_alerts, list):
            return
        alerts = [a for a in map(normal_alert, raw_alerts if isinstance(raw_alerts, list) else []) if a]
        if known:
            # A loop's own result only wraps its items' results: the items are marked, not the wrapper.
            if raw_alerts is not None or "level" in item or not isinstance(item.get("results"), list):
                self._mark(host, column, item.get("level") if item.get("level") in RANK else OK, task)
            for found in alerts:
                self._alert(host, column, found, task)
        else:
            # A module this report does not know: its alerts' check names are its columns.
            for found in alerts:
                self._alert(host, found["check"], found, task)
            if not alerts:
                self._mark(host, column, item.get("level") if item.get("level") in RANK else OK, task)

    def _add_failure(self, host, result, *, task, action, column, hidden, ignored):
        if not action.startswith(COLLECTION):
            column = TASKS
        reason = "its output is hidden by no_log" if hidden else clip(result.get("msg") or result.get("reason") or "no message", 500)
        message = "task %s failed%s: %s" % (task, " (errors ignored)" if ignored else "", reason)
        level = WARN if ignored else CRIT
        host["failed_tasks"].append(dict(task=task, module=action, message=message, ignored=bool(ignored)))
        self._alert(host, column, dict(check="task_failed", level=level, value=None, threshold=None, message=message), task)

    def add_unreachable(self, host_name, task, result):
        host = self.host(host_name)
        reason = "its output is hidden by no_log" if is_hidden(result) else clip(result.get("msg") or "no message", 500)
        message = "host unreachable in task %s: %s" % (task, reason)
        host["failed_tasks"].append(dict(task=task, module=None, message=message, ignored=False))
        self._alert(host, UNREACHABLE, dict(check="unreachable", level=CRIT, value=None, threshold=None, message=message), task)

    def set_stats(self, host_name, summary):
        self.host(host_name)["stats"] = dict(summary)

    def report(self, title, check_mode, finished=None):
        """The machine-readable report (what report.json holds)."""
        finished = finished or utc_now()
        hosts = {}
        for name in sorted(self.hosts):
            host = dict(self.hosts[name])
            host["alerts"] = sorted(host["alerts"], key=lambda a: -RANK[a["level"]])
            host["level"] = worst([c["level"] for c in host["checks"].values()])
            hosts[name] = host
        every = [a for h in hosts.values() for a in h["alerts"]]
        return dict(
            format=FORMAT, run_id=self.run_id, title=title, playbook=", ".join(self.playbooks),
            started=iso(self.started), finished=iso(finished),
            duration_s=round((finished - self.started).total_seconds(), 1), check_mode=bool(check_mode),
            level=worst([h["level"] for h in hosts.values()]),
            counts={CRIT: sum(1 for a in every if a["level"] == CRIT), WARN: sum(1 for a in every if a["level"] == WARN)},
            hosts=hosts,
        )


# --- history -----------------------------------------------------------------------------------------------------

def history_file(directory, report):
    return os.path.join(directory, "run-%s.json" % report["run_id"])


def history_names(directory):
    """The run files of a history directory, oldest first (their names start with the run's UTC time)."""
    try:
        return sorted(name for name in os.listdir(directory) if HISTORY_NAME.match(name))
    except FileNotFoundError:
        return []


def load_history(directory):
    """(earlier reports oldest first, notes about files that could not be read)."""
    runs, notes = [], []
    for name in history_names(directory):
        try:
            with open(os.path.join(directory, name), encoding="utf-8") as stream:
                data = json.load(stream)
            if not isinstance(data, dict) or not isinstance(data.get("hosts"), dict):
                raise ValueError("not a report")
        except (OSError, ValueError) as exc:
            notes.append("history file %s left out: %s" % (name, exc))
            continue
        runs.append(data)
    return runs, notes


def save_history(directory, report, keep):
    """Write this run into the history and remove the oldest runs beyond keep; returns the names removed."""
    os.makedirs(directory, exist_ok=True)
    write_atomic(history_file(directory, report), dumps(report))
    names = history_names(directory)
    removed = names[:max(len(names) - keep, 0)]
    for name in removed:
        os.unlink(os.path.join(directory, name))
    return removed


# --- outputs -----------------------------------------------------------------------------------------------------

def dumps(data):
    return json.dumps(data, indent=2, sort_keys=False, default=str) + "\n"


def write_atomic(path, text):
    """Write text to path through a temporary file in the same directory and a rename: readers never see half a file."""
    directory = os.path.dirname(os.path.abspath(path))
    mask = os.umask(0)
    os.umask(mask)
    fd, tmp = tempfile.mkstemp(prefix=".%s." % os.path.basename(path), suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as stream:
            stream.write(text)
            stream.flush()
            os.fsync(stream.fileno())
        os.chmod(tmp, 0o666 & ~mask)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def trends(runs, report, keep):
    """Per host of this run, its figures' series across the last keep runs (history and this run), oldest first.

    Figures this run did not measure but earlier runs did (another playbook's) follow this run's own.
    """
    runs = [r for r in runs if r.get("run_id") != report["run_id"]][-(keep - 1):] if keep > 1 else []
    runs.append(report)
    found = []
    for name, host in report["hosts"].items():
        series = {}
        for run in runs:
            moment = parse_iso(run.get("started"))
            figures = (run.get("hosts", {}).get(name) or {}).get("figures") or {}
            if moment is None or not isinstance(figures, dict):
                continue
            for key, figure in figures.items():
                if isinstance(figure, dict) and is_number(figure.get("value")):
                    entry = series.setdefault(key, dict(key=key, label=figure.get("label", key), unit=figure.get("unit"), points=[], stale=False))
                    entry.update(label=figure.get("label", key), unit=figure.get("unit"))
                    entry["points"].append((moment, figure["value"], run.get("run_id")))
        own = [series.pop(key) for key in host["figures"] if key in series]
        others = sorted(series.values(), key=lambda s: s["label"])
        for entry in others:
            entry["stale"] = True
        charts = [dict(entry, chart=chart(entry["points"], entry["unit"])) for entry in own + others]
        if charts:
            found.append(dict(host=name, charts=charts))
    return found


CHART_W, CHART_H, CHART_PAD = 240, 64, 6


# The top of the y axis for bounded units, so that 35.9% to 36.1% does not look like a swing.
AXIS_TOP = {"percent": 100, "ratio": 1}


def chart(points, unit):
    """Geometry of a small line chart: x by time; y from 0 (or the lowest value, if negative) to the highest value
    (to 100% for percentages, 1 for ratios). A single run sits in the middle, all zeros on the middle line."""
    times = [p[0] for p in points]
    values = [p[1] for p in points]
    t0, t1 = min(times), max(times)
    bottom, top = min([0, *values]), max([AXIS_TOP.get(unit, 0), *values])
    width, height = CHART_W - 2 * CHART_PAD, CHART_H - 2 * CHART_PAD

    def x(moment):
        return CHART_PAD + width * ((moment - t0) / (t1 - t0) if t1 > t0 else 0.5)

    def y(value):
        return CHART_PAD + height * (1 - ((value - bottom) / (top - bottom) if top > bottom else 0.5))

    dots = [dict(x=round(x(t), 1), y=round(y(v), 1),
                 title="%s: %s" % (iso(datetime.datetime.fromtimestamp(t, datetime.timezone.utc)), fmt(v, unit)))
            for t, v, _run in points]
    return dict(width=CHART_W, height=CHART_H, dots=dots, points=" ".join("%s,%s" % (d["x"], d["y"]) for d in dots),
                last=fmt(values[-1], unit), low=fmt(min(values), unit), high=fmt(max(values), unit), count=len(points))


UNIT_FORMATS = {"percent": "%.1f%%", "ratio": "%.3f", "hours": "%.1f h", "days": "%.0f d", "seconds": "%.3f s"}


def fmt(value, unit=None):
    """A figure for people."""
    if not is_number(value):
        return "\u2014" if value is None else clip(value, 200)
    if unit == "bytes":
        return human_bytes(value)
    if unit in UNIT_FORMATS:
        return UNIT_FORMATS[unit] % value
    return "%d" % value if float(value).is_integer() else "%.4g" % value


BYTE_UNITS = ("B", "KiB", "MiB", "GiB", "TiB")


def human_bytes(value):
    exponent = 0
    while abs(value) >= 1024 ** (exponent + 1) and exponent < len(BYTE_UNITS) - 1:
        exponent += 1
    return "%d B" % value if exponent == 0 else "%.1f %s" % (value / 1024 ** exponent, BYTE_UNITS[exponent])


def board(report):
    """The status board: its columns (checks in order of appearance) and one row of cells per host."""
    columns = []
    for host in report["hosts"].values():
        columns.extend(c for c in host["checks"] if c not in columns)
    rows = []
    for name, host in report["hosts"].items():
        cells = []
        for column in columns:
            check = host["checks"].get(column)
            if check is None:
                cells.append(None)
                continue
            messages = [a["message"] for a in host["alerts"] if a["group"] == column]
            if check["level"] == UNKNOWN:
                messages = ["the result is hidden by no_log (%s)" % ", ".join(check["tasks"])]
            cells.append(dict(level=check["level"], alerts=check["alerts"],
                              detail="\n".join(messages) or "all clear (%s)" % ", ".join(check["tasks"])))
        rows.append(dict(host=name, level=host["level"], cells=cells))
    return columns, rows


def render_html(report, runs, keep, notes=()):
    """The self-contained HTML page: inline CSS and SVG, nothing fetched, everything escaped."""
    columns, rows = board(report)
    alerts = [dict(a, host=name) for name, host in report["hosts"].items() for a in host["alerts"]]
    alerts.sort(key=lambda a: -RANK[a["level"]])
    env = Environment(autoescape=True, undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    env.filters["fmt"] = fmt
    return env.from_string(TEMPLATE).render(
        report=report, columns=columns, rows=rows, alerts=alerts, trends=trends(runs, report, keep),
        runs=min(len(runs) + 1, keep), notes=list(notes),
    )


# --- webhook -----------------------------------------------------------------------------------------------------

def _mrkdwn(text):
    return str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def webhook_message(report, min_level, lines=20):
    """Slack-compatible JSON ({"text", "blocks"}) for the alerts at or above min_level, or None when there is none."""
    chosen = [(name, a) for name, host in report["hosts"].items() for a in host["alerts"] if RANK[a["level"]] >= RANK[min_level]]
    if not chosen:
        return None
    chosen.sort(key=lambda pair: -RANK[pair[1]["level"]])
    counts = report["counts"]
    head = "%s: %d critical, %d warning on %d host(s), %s%s" % (
        report["title"], counts[CRIT], counts[WARN], len(report["hosts"]), report["playbook"] or "playbook",
        " (check mode)" if report["check_mode"] else "")
    body = ["\u2022 *%s* %s / %s: %s" % (a["level"].upper(), _mrkdwn(name), _mrkdwn(a["check"]), _mrkdwn(clip(a["message"], 300)))
            for name, a in chosen[:lines]]
    if len(chosen) > lines:
        body.append("\u2026 and %d more in the report" % (len(chosen) - lines))
    text = clip(_mrkdwn(head) + "\n" + "\n".join(body), 2900)
    return dict(text=text, blocks=[
        dict(type="header", text=dict(type="plain_text", text=clip(head, 150))),
        dict(type="section", text=dict(type="mrkdwn", text=clip("\n".join(body), 2900))),
        dict(type="context", elements=[dict(type="mrkdwn", text="run %s, %s to %s" % (report["run_id"], report["started"], report["finished"]))]),
    ])


# What a failed post raises: urllib's errors are OSErrors, open_url adds its own.
WEBHOOK_ERRORS = (OSError, ValueError, http.client.HTTPException, UrlConnectionError)


def post_webhook(url, message, timeout=10):
    """POST the message as JSON; raises one of WEBHOOK_ERRORS on failure (an HTTP error status included)."""
    if urllib.parse.urlsplit(url).scheme not in ("http", "https"):
        raise ValueError("the webhook URL must start with http:// or https://")
    response = open_url(url, data=json.dumps(message).encode("utf-8"), method="POST", timeout=timeout,
                        headers={"Content-Type": "application/json"}, http_agent="webstack.ops maintenance_report")
    try:
        response.read(4096)
    finally:
        response.close()


# --- the page ----------------------------------------------------------------------------------------------------

COLOURS = {OK: "#1e8e3e", WARN: "#f29900", CRIT: "#d93025", UNKNOWN: "#80868b"}

TEMPLATE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{{ report.title }}: {{ report.playbook }} {{ report.started }}</title>
<style>
body { margin: 0; font: 14px/1.4 system-ui, -apple-system, "Segoe UI", sans-serif; color: #202124; background: #f8f9fa; }
main { max-width: 1200px; margin: 0 auto; padding: 16px 24px 32px; }
h1 { font-size: 22px; margin: 8px 0 4px; }
h2 { font-size: 17px; margin: 24px 0 8px; }
h3 { font-size: 15px; margin: 16px 0 6px; }
.meta { color: #5f6368; }
.pill { display: inline-block; padding: 1px 8px; border-radius: 10px; font-weight: 600; font-size: 12px; }
.ok { background: """ + COLOURS[OK] + """; color: #fff; }
.warn { background: """ + COLOURS[WARN] + """; color: #202124; }
.crit { background: """ + COLOURS[CRIT] + """; color: #fff; }
.unknown { background: """ + COLOURS[UNKNOWN] + """; color: #fff; }
.check-mode { background: #1a73e8; color: #fff; }
table { border-collapse: collapse; background: #fff; }
th, td { border: 1px solid #dadce0; padding: 6px 10px; text-align: left; vertical-align: top; }
th { background: #f1f3f4; font-weight: 600; }
table.board td.cell { text-align: center; font-weight: 600; min-width: 90px; }
table.board td.none { background: #fff; color: #9aa0a6; }
table.alerts td.message { max-width: 640px; overflow-wrap: anywhere; }
.charts { display: flex; flex-wrap: wrap; gap: 12px; }
.chart { background: #fff; border: 1px solid #dadce0; border-radius: 6px; padding: 8px 10px; width: 240px; }
.chart .label { font-weight: 600; font-size: 13px; }
.chart .value { font-size: 18px; }
.chart .range { color: #5f6368; font-size: 12px; }
.chart.stale { opacity: 0.6; }
svg.trend { display: block; margin: 4px 0; }
footer { color: #5f6368; font-size: 12px; margin-top: 24px; }
</style>
</head>
<body>
<main>
<h1>{{ report.title }}</h1>
<div class="meta">
  <span class="pill {{ report.level }}">{{ report.level | upper }}</span>
  {% if report.check_mode %}<span class="pill check-mode">CHECK MODE</span>{% endif %}
  {{ report.playbook or "playbook" }} &middot; {{ report.started }} to {{ report.finished }} ({{ report.duration_s }} s)
  &middot; {{ report.hosts | length }} host(s) &middot; {{ report.counts.crit }} critical, {{ report.counts.warn }} warning
</div>

<h2>Status board</h2>
{% if rows %}
<table class="board">
<tr><th>host</th>{% for column in columns %}<th>{{ column }}</th>{% endfor %}</tr>
{% for row in rows %}
<tr><th><span class="pill {{ row.level }}">{{ row.level }}</span> {{ row.host }}</th>
{% for cell in row.cells %}
{% if cell %}<td class="cell {{ cell.level }}" title="{{ cell.detail }}">{{ cell.level }}{% if cell.alerts %} ({{ cell.alerts }}){% endif %}</td>
{% else %}<td class="cell none">&ndash;</td>{% endif %}
{% endfor %}
</tr>
{% endfor %}
</table>
{% else %}
<p>No host ran in this run.</p>
{% endif %}

<h2>Alerts ({{ alerts | length }})</h2>
{% if alerts %}
<table class="alerts">
<tr><th>level</th><th>host</th><th>check</th><th>message</th><th>value</th><th>threshold</th><th>task</th></tr>
{% for a in alerts %}
<tr><td><span class="pill {{ a.level }}">{{ a.level }}</span></td><td>{{ a.host }}</td><td>{{ a.group }} / {{ a.check }}</td>
<td class="message">{{ a.message }}</td><td>{{ a.value | fmt }}</td><td>{{ a.threshold | fmt }}</td><td>{{ a.task }}</td></tr>
{% endfor %}
</table>
{% else %}
<p>No alert: every check is within its thresholds.</p>
{% endif %}

<h2>Trends (the last {{ runs }} run(s))</h2>
{% for host in trends %}
<h3>{{ host.host }}</h3>
<div class="charts">
{% for c in host.charts %}
<div class="chart{% if c.stale %} stale{% endif %}">
<div class="label">{{ c.label }}</div>
<div class="value">{{ c.chart.last }}</div>
<svg class="trend" data-figure="{{ c.key }}" width="{{ c.chart.width }}" height="{{ c.chart.height }}"
 viewBox="0 0 {{ c.chart.width }} {{ c.chart.height }}" role="img" aria-label="{{ c.label }}">
<rect x="0" y="0" width="{{ c.chart.width }}" height="{{ c.chart.height }}" fill="#f8f9fa"/>
{% if c.chart.dots | length > 1 %}<polyline points="{{ c.chart.points }}" fill="none" stroke="#1a73e8" stroke-width="2"/>{% endif %}
{% for d in c.chart.dots %}<circle cx="{{ d.x }}" cy="{{ d.y }}" r="3" fill="#1a73e8"><title>{{ d.title }}</title></circle>{% endfor %}
</svg>
<div class="range">{{ c.chart.low }} to {{ c.chart.high }} over {{ c.chart.count }} run(s){% if c.stale %}, not measured in this run{% endif %}</div>
</div>
{% endfor %}
</div>
{% else %}
<p>No figure to chart in this run.</p>
{% endfor %}

<footer>
run {{ report.run_id }} &middot; written by webstack.ops.maintenance_report
{% for note in notes %}<br>{{ note }}{% endfor %}
</footer>
</main>
</body>
</html>
"""
