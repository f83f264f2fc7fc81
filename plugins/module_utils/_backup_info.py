# Copyright (c) webstack.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What s3_backup_info reports: the backups listed, their manifests read, alerts and the retention outlook.

summarize() is pure (backups as _backup_catalog.list_backups returns them, plus the manifests read), so the
alert rules are unit-tested without a server; read_manifests() is the only part that talks to S3 besides
the listing itself.

A backup is *complete* when its manifest exists (written last by s3_backup) or when it is one of the
guide's legacy ``backup_YYYYmmdd_HHMMSS.sql.gz`` files, which never had one. Freshness and size trend
look at complete backups only; an incomplete backup is an alert of its own.
"""

from __future__ import annotations

import datetime
from concurrent.futures import ThreadPoolExecutor

from ansible_collections.webstack.ops.plugins.module_utils._alerts import CRIT, WARN, alert
from ansible_collections.webstack.ops.plugins.module_utils._backup_catalog import read_manifest, retention_plan, utcnow

SHOWN_KEYS = 5  # keys named in an alert message before "and N more"


def iso(moment):
    return moment.astimezone(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ") if moment else None


def pretty_size(size):
    """1536 -> '1.5 KiB'."""
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if abs(value) < 1024 or unit == "TiB":
            return ("%d %s" % (value, unit)) if unit == "B" else ("%.1f %s" % (value, unit))
        value /= 1024
    return str(size)  # not reached


def some_keys(keys):
    shown = ", ".join(keys[:SHOWN_KEYS])
    return shown + (" and %d more" % (len(keys) - SHOWN_KEYS) if len(keys) > SHOWN_KEYS else "")


def complete(backup):
    return backup["has_manifest"] or backup["legacy"]


def read_manifests(client, bucket, backups, limit, workers=8):
    """The manifests of the newest `limit` backups that have one: {key: manifest dict or error text}.

    Read in parallel; a manifest that cannot be read or parsed is an error text, not an exception,
    so one bad manifest does not hide the others.
    """
    keys = [b["key"] for b in backups if b["has_manifest"]][:max(limit, 0)]

    def one(key):
        try:
            manifest = read_manifest(client, bucket, key)
        except Exception as exc:  # pylint: disable=broad-except  # reported per backup, never raised
            return key, "%s: %s" % (type(exc).__name__, exc)
        if not isinstance(manifest, dict):
            return key, "not a JSON object"
        return key, manifest

    if not keys:
        return {}
    with ThreadPoolExecutor(max_workers=min(workers, len(keys))) as pool:
        return dict(pool.map(one, keys))


def entry(backup, now, manifest=None):
    """The returned description of one backup."""
    age = (now - backup["started"]).total_seconds()
    item = dict(
        key=backup["key"], name=backup["name"], started=iso(backup["started"]),
        last_modified=iso(backup.get("last_modified")),
        age_hours=round(age / 3600, 2), age_days=round(age / 86400, 2),
        size=backup["size"], size_pretty=pretty_size(backup["size"]),
        format=backup["format"], compression=backup["compression"], legacy=backup["legacy"],
        has_manifest=backup["has_manifest"], complete=complete(backup),
        sha256=None, raw_size=None, manifest_error=None,
    )
    if isinstance(manifest, dict):
        item["sha256"] = manifest.get("sha256")
        item["raw_size"] = manifest.get("raw_size")
    elif manifest is not None:
        item["manifest_error"] = manifest
    return item


def size_trend(items):
    """Newest complete backup against the one before it and the oldest one (items newest first, one name).

    Sizes are the objects' sizes. The change against the previous backup compares raw (uncompressed) sizes
    when both manifests give them, so a change of compression does not look like a change of data
    (`measure` says which).
    """
    good = [i for i in items if i["complete"]]
    trend = dict(name=items[0]["name"], count=len(items), complete=len(good), newest_size=None,
                 previous_size=None, oldest_size=None, change_percent=None, growth_percent=None, measure=None)
    if not good:
        return trend
    trend.update(newest_size=good[0]["size"], oldest_size=good[-1]["size"])
    if len(good) > 1:
        newest, previous = good[0], good[1]
        measure = "raw_size" if newest["raw_size"] and previous["raw_size"] else "size"
        trend.update(previous_size=previous["size"], measure=measure)
        if previous[measure]:
            trend["change_percent"] = round((newest[measure] - previous[measure]) * 100.0 / previous[measure], 1)
        if good[-1]["size"]:
            trend["growth_percent"] = round((newest["size"] - good[-1]["size"]) * 100.0 / good[-1]["size"], 1)
    return trend


def summarize(backups, manifests, where, *, max_age_hours, max_size_drop_percent, keep_days, keep_min, name=None, now=None):
    """The module's result (without `changed`) from backups (newest first) and manifests {key: dict or error}.

    where: what to call the place in messages, e.g. "s3://bucket/postgres/".
    """
    now = now or utcnow()
    items = [entry(b, now, manifests.get(b["key"])) for b in backups]
    alerts = []

    if not items:
        what = "of %s " % name if name else ""
        alerts.append(alert("backup_missing", CRIT, 0, 1, "no backup %sunder %s" % (what, where)))

    names = sorted({i["name"] for i in items})
    trends = []
    for each in names:
        mine = [i for i in items if i["name"] == each]
        trend = size_trend(mine)
        trends.append(trend)
        good = [i for i in mine if i["complete"]]
        if not good:
            alerts.append(alert("backup_missing", CRIT, 0, 1,
                                "%d backup(s) of %s under %s but none is complete (no manifest): %s"
                                % (len(mine), each, where, some_keys([i["key"] for i in mine]))))
            continue
        newest = good[0]
        if newest["age_hours"] > max_age_hours:
            alerts.append(alert("backup_age", CRIT, newest["age_hours"], max_age_hours,
                                "newest complete backup of %s is %.1f h old (limit %s h): %s"
                                % (each, newest["age_hours"], max_age_hours, newest["key"])))
        drop = 0.0 - (trend["change_percent"] or 0.0)  # percent smaller than the previous one
        if drop > max_size_drop_percent:
            alerts.append(alert("backup_size_drop", WARN, drop, max_size_drop_percent,
                                "backup of %s shrank by %.1f%% against the previous complete one (limit %s%%, %s "
                                "compared; stored %s -> %s): %s"
                                % (each, drop, max_size_drop_percent, trend["measure"],
                                   pretty_size(trend["previous_size"]), pretty_size(trend["newest_size"]),
                                   newest["key"])))

    incomplete = [i["key"] for i in items if not i["complete"]]
    if incomplete:
        alerts.append(alert("backup_manifest_missing", WARN, len(incomplete), 0,
                            "%d backup(s) under %s have no manifest (interrupted or not made by s3_backup): %s"
                            % (len(incomplete), where, some_keys(incomplete))))
    unreadable = [i["key"] for i in items if i["manifest_error"]]
    if unreadable:
        alerts.append(alert("backup_manifest_unreadable", WARN, len(unreadable), 0,
                            "%d manifest(s) under %s could not be read: %s"
                            % (len(unreadable), where, some_keys(unreadable))))

    keep, delete = retention_plan(backups, keep_days, keep_min, now=now)
    delete_keys = [b["key"] for b in delete]
    return dict(
        backups=items,
        count=len(items),
        complete_count=sum(1 for i in items if i["complete"]),
        total_size=sum(i["size"] for i in items),
        total_size_pretty=pretty_size(sum(i["size"] for i in items)),
        newest=items[0] if items else None,
        oldest=items[-1] if items else None,
        names=names,
        trend=trends,
        retention=dict(keep_days=keep_days, keep_min=keep_min, would_keep=len(keep), would_delete=len(delete_keys),
                       would_delete_keys=delete_keys, holds=not delete_keys),
        alerts=alerts,
        checked_at=iso(now),
    )
