# Copyright (c) webstack.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""How backups are named and described in S3, listed, and pruned (private to the collection).

A backup is one object and a JSON manifest beside it:

    <prefix><name>_<YYYYmmddTHHMMSSZ>.<dump|sql>[.zst|.gz]           the dump, compressed
    <prefix><name>_<YYYYmmddTHHMMSSZ>.<dump|sql>[.zst|.gz].manifest.json

The time stamp is the backup's start in UTC, so keys sort by age. The manifest is written last: a backup
without one is incomplete (or older than this collection) and never counts as a good backup.
The guide's own files, ``backup_YYYYmmdd_HHMMSS.sql.gz`` (plain SQL through gzip), are recognised too.
"""

from __future__ import annotations

import datetime
import json
import re

MANIFEST_SUFFIX = ".manifest.json"
MANIFEST_VERSION = 1
FORMAT_EXTENSIONS = {"custom": ".dump", "plain": ".sql"}
COMPRESSION_EXTENSIONS = {"zstd": ".zst", "gzip": ".gz", "none": ""}
STAMP_FORMAT = "%Y%m%dT%H%M%SZ"

_KEY = re.compile(r"^(?P<name>.+)_(?P<stamp>\d{8}T\d{6}Z)(?P<fmt>\.dump|\.sql)(?P<comp>\.zst|\.gz)?$")
_LEGACY_KEY = re.compile(r"^(?P<name>backup)_(?P<stamp>\d{8}_\d{6})\.sql\.gz$")


def utcnow():
    return datetime.datetime.now(datetime.timezone.utc)


def backup_key(prefix, name, fmt, compression, started):
    """The object key of a backup of `name` started at `started` (an aware datetime)."""
    stamp = started.astimezone(datetime.timezone.utc).strftime(STAMP_FORMAT)
    return "%s%s_%s%s%s" % (prefix, name, stamp, FORMAT_EXTENSIONS[fmt], COMPRESSION_EXTENSIONS[compression])


def manifest_key(key):
    return key + MANIFEST_SUFFIX


def parse_key(key, prefix=""):
    """What a key says about its backup: dict(name, started, format, compression, legacy), or None if not a backup."""
    if not key.startswith(prefix) or key.endswith(MANIFEST_SUFFIX):
        return None
    base = key[len(prefix):]
    if "/" in base:
        return None
    match = _KEY.match(base)
    if match:
        started = datetime.datetime.strptime(match["stamp"], STAMP_FORMAT).replace(tzinfo=datetime.timezone.utc)
        fmt = "custom" if match["fmt"] == ".dump" else "plain"
        compression = {".zst": "zstd", ".gz": "gzip", None: "none"}[match["comp"]]
        return dict(name=match["name"], started=started, format=fmt, compression=compression, legacy=False)
    match = _LEGACY_KEY.match(base)
    if match:
        started = datetime.datetime.strptime(match["stamp"], "%Y%m%d_%H%M%S").replace(tzinfo=datetime.timezone.utc)
        return dict(name=match["name"], started=started, format="plain", compression="gzip", legacy=True)
    return None


def list_backups(client, bucket, prefix, name=None):
    """Every backup under prefix (optionally only those of `name`), newest first, with its manifest's presence.

    Pages through ListObjectsV2, so any number of objects is seen. Returns dicts:
    key, name, started, format, compression, legacy, size, last_modified, has_manifest.
    """
    objects, manifests = {}, set()
    paginator = client.get_paginator("list_objects_v2")
    for page in paginator.paginate(Bucket=bucket, Prefix=prefix + (name + "_" if name else "")):
        for item in page.get("Contents", []):
            if item["Key"].endswith(MANIFEST_SUFFIX):
                manifests.add(item["Key"][: -len(MANIFEST_SUFFIX)])
                continue
            parsed = parse_key(item["Key"], prefix)
            if parsed and (name is None or parsed["name"] == name):
                objects[item["Key"]] = dict(parsed, key=item["Key"], size=item["Size"], last_modified=item["LastModified"])
    for key, backup in objects.items():
        backup["has_manifest"] = key in manifests
    return sorted(objects.values(), key=lambda b: (b["started"], b["key"]), reverse=True)


def orphan_manifests(client, bucket, prefix):
    """Manifest keys whose backup object is gone (left by an interrupted delete)."""
    keys = set()
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        keys.update(item["Key"] for item in page.get("Contents", []))
    return sorted(key for key in keys if key.endswith(MANIFEST_SUFFIX) and key[: -len(MANIFEST_SUFFIX)] not in keys)


def stale_uploads(client, bucket, prefix, older_than_hours, now=None):
    """Multipart uploads under prefix started more than older_than_hours ago: (key, upload id) of runs that died
    before they could abort (a killed host, an S3 outage). They are no backup, but S3 keeps and bills their parts."""
    cutoff = (now or utcnow()) - datetime.timedelta(hours=older_than_hours)
    stale = []
    for page in client.get_paginator("list_multipart_uploads").paginate(Bucket=bucket, Prefix=prefix):
        stale.extend((u["Key"], u["UploadId"]) for u in page.get("Uploads", []) if u["Initiated"] <= cutoff)
    return stale


def read_manifest(client, bucket, key):
    """The manifest of the backup at key, as a dict."""
    body = client.get_object(Bucket=bucket, Key=manifest_key(key))["Body"]
    try:
        return json.loads(body.read())
    finally:
        body.close()


def retention_plan(backups, keep_days, keep_min, now=None):
    """Which backups to delete: older than keep_days, but never one of the keep_min newest good ones.

    backups: as list_backups returns them (any order). Good means with a manifest. Returns (keep, delete),
    both newest first. keep_days must be positive and keep_min at least 1 (the caller validates).
    """
    now = now or utcnow()
    cutoff = now - datetime.timedelta(days=keep_days)
    ordered = sorted(backups, key=lambda b: (b["started"], b["key"]), reverse=True)
    protected = {b["key"] for b in [b for b in ordered if b["has_manifest"]][:keep_min]}
    keep = [b for b in ordered if b["key"] in protected or b["started"] >= cutoff]
    delete = [b for b in ordered if b["key"] not in protected and b["started"] < cutoff]
    return keep, delete


def delete_backups(client, bucket, backups):
    """Delete backups (object, then its manifest) in batches of 1,000; the keys deleted. Raises on any error."""
    keys = []
    for backup in backups:
        keys.extend([backup["key"], manifest_key(backup["key"])])
    deleted = []
    for start in range(0, len(keys), 1000):
        batch = keys[start:start + 1000]
        response = client.delete_objects(Bucket=bucket, Delete={"Objects": [{"Key": k} for k in batch], "Quiet": True})
        errors = response.get("Errors", [])
        if errors:
            first = errors[0]
            raise RuntimeError("deleting %d of %d objects failed, first %s: %s" % (len(errors), len(batch), first.get("Key"), first.get("Message")))
        deleted.extend(batch)
    return deleted


def manifest_body(**fields):
    """The manifest's JSON text: the fields given plus the format version."""
    data = dict(fields, manifest_version=MANIFEST_VERSION)
    return json.dumps(data, indent=2, sort_keys=True, default=str).encode()
