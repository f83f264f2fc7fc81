"""webstack.ops.s3_backup_info against the real SeaweedFS: complete listings past 1,000 objects, alerts, clear errors."""

from __future__ import annotations

import datetime
import hashlib
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import boto3
import botocore.config
import pytest
from ansible_collections.webstack.ops.plugins.module_utils import _backup_catalog as catalog
from ansible_run import run_module, run_module_full

MODULE = "webstack.ops.s3_backup_info"
UTC = datetime.timezone.utc


@pytest.fixture(scope="module")
def bucket(s3_server):
    """One bucket for the module (every bucket costs SeaweedFS a volume); each test works under a prefix of its own."""
    client = boto3.client("s3", endpoint_url=s3_server.endpoint_url, aws_access_key_id=s3_server.access_key,
                          aws_secret_access_key=s3_server.secret_key, region_name="us-east-1",
                          config=botocore.config.Config(max_pool_connections=32))
    name = "test-info-%s" % uuid.uuid4().hex[:8]
    client.create_bucket(Bucket=name)
    return client, name


@pytest.fixture
def s3(s3_server, bucket):
    """(boto3 client, module options with a prefix of this test's own)."""
    client, name = bucket
    options = dict(bucket=name, endpoint_url=s3_server.endpoint_url, access_key=s3_server.access_key,
                   secret_key=s3_server.secret_key, prefix="t%s/postgres/" % uuid.uuid4().hex[:8])
    return client, options


def put_backup(client, options, name, started, *, size=100, manifest=True, manifest_text=None):
    """A small backup object (and its manifest, as s3_backup writes it); its key."""
    bucket, key = options["bucket"], catalog.backup_key(options["prefix"], name, "custom", "zstd", started)
    body = (name.encode() * size)[:size]
    client.put_object(Bucket=bucket, Key=key, Body=body)
    if manifest:
        text = manifest_text if manifest_text is not None else catalog.manifest_body(
            key=key, name=name, size=size, raw_size=size * 4, sha256=hashlib.sha256(body).hexdigest(),
            started_at=started.isoformat())
        client.put_object(Bucket=bucket, Key=catalog.manifest_key(key), Body=text)
    return key


def hours_ago(hours):
    return (datetime.datetime.now(UTC) - datetime.timedelta(hours=hours)).replace(microsecond=0)


def put_many(client, options, backups):
    """put_backup for each (name, started, kwargs) in parallel; the keys in the order given."""
    with ThreadPoolExecutor(max_workers=24) as pool:
        return list(pool.map(lambda b: put_backup(client, options, b[0], b[1], **b[2]), backups))


def test_2500_backups_are_listed_completely_newest_first(s3):
    client, options = s3
    begin = time.monotonic()
    # One backup an hour for 2,500 hours (5,000 objects with the manifests): five listing pages.
    keys = put_many(client, options, [("webstack", hours_ago(1 + i), {"size": 100 + i % 7}) for i in range(2500)])
    # Another database's backups beside them, and objects that are no backups.
    others = put_many(client, options, [("analytics", hours_ago(3 + 24 * i), {}) for i in range(3)])
    client.put_object(Bucket=options["bucket"], Key=options["prefix"] + "README.txt", Body=b"not a backup")
    client.put_object(Bucket=options["bucket"], Key=options["prefix"] + "old/webstack_20240101T000000Z.dump.zst", Body=b"x")
    client.put_object(Bucket=options["bucket"], Key="webstack_20240101T000000Z.dump.zst", Body=b"x")
    assert time.monotonic() - begin < 60

    result, run = run_module_full(MODULE, dict(options, name="webstack"))
    assert result["changed"] is False and result["alerts"] == [], result.get("alerts")
    assert result["count"] == 2500
    assert [b["key"] for b in result["backups"]] == keys  # all of them, newest first
    assert result["newest"]["key"] == keys[0] and result["oldest"]["key"] == keys[-1]
    assert 0.9 < result["newest"]["age_hours"] < 1.5 and result["oldest"]["age_days"] > 104
    assert result["total_size"] == sum(100 + i % 7 for i in range(2500))

    # Checksums from the manifests of the newest 50 only.
    with_sum = [b for b in result["backups"] if b["sha256"]]
    assert [b["key"] for b in with_sum] == keys[:50]
    body = client.get_object(Bucket=options["bucket"], Key=keys[0])["Body"].read()
    assert with_sum[0]["sha256"] == hashlib.sha256(body).hexdigest() and with_sum[0]["raw_size"] == 4 * len(body)

    # Retention outlook: 30 days of hourly backups stay (ages 1..719 h), the rest would go.
    retention = result["retention"]
    assert retention["would_keep"] == 719 and retention["would_delete"] == 2500 - 719 and retention["holds"] is False
    assert retention["would_delete_keys"] == keys[719:]
    assert len(client.list_objects_v2(Bucket=options["bucket"], Prefix=options["prefix"] + "webstack_")["Contents"]) == 1000  # nothing deleted

    # Without a name: both databases, each with its own trend; check mode reads just the same.
    every = run_module_full(MODULE, dict(options, manifest_limit=3000), check=True)[0]
    assert every["count"] == 2503 and every["names"] == ["analytics", "webstack"] and every["changed"] is False
    assert [b["key"] for b in every["backups"] if b["name"] == "analytics"] == others
    assert all(b["sha256"] for b in every["backups"])
    assert {t["name"]: t["count"] for t in every["trend"]} == {"analytics": 3, "webstack": 2500}
    assert options["secret_key"] not in run.output


def test_alerts_on_a_real_bucket(s3):
    client, options = s3

    empty = run_module(MODULE, dict(options, name="webstack"))
    assert [(a["check"], a["level"]) for a in empty["alerts"]] == [("backup_missing", "crit")]
    assert empty["count"] == 0 and empty["newest"] is None

    # Three days of backups, none last night; the newest much smaller; one without a manifest; one manifest broken.
    put_backup(client, options, "webstack", hours_ago(100), size=2000)
    broken = put_backup(client, options, "webstack", hours_ago(76), size=2000, manifest_text=b"{not json")
    put_backup(client, options, "webstack", hours_ago(52), size=500)
    missing = put_backup(client, options, "webstack", hours_ago(28), size=2000, manifest=False)
    result = run_module(MODULE, dict(options, max_age_hours=26))
    alerts = {a["check"]: a for a in result["alerts"]}
    assert set(alerts) == {"backup_age", "backup_size_drop", "backup_manifest_missing", "backup_manifest_unreadable"}
    assert alerts["backup_age"]["level"] == "crit" and 51.9 < alerts["backup_age"]["value"] < 53
    assert alerts["backup_age"]["threshold"] == 26
    assert alerts["backup_size_drop"]["level"] == "warn" and alerts["backup_size_drop"]["value"] == 75.0
    assert alerts["backup_manifest_missing"]["value"] == 1 and missing in alerts["backup_manifest_missing"]["message"]
    assert broken in alerts["backup_manifest_unreadable"]["message"]
    assert set(alerts["backup_age"]) == {"check", "level", "value", "threshold", "message"}

    # A fresh, steady backup clears age and size; the manifest problems stay.
    put_backup(client, options, "webstack", hours_ago(2), size=510)
    later = run_module(MODULE, dict(options, max_age_hours=26))
    assert sorted(a["check"] for a in later["alerts"]) == ["backup_manifest_missing", "backup_manifest_unreadable"]
    assert later["newest"]["complete"] is True and later["backups"][1]["key"] == missing

    # The guide's legacy files are listed too, and count as complete.
    legacy_key = "%sbackup_%s.sql.gz" % (options["prefix"], hours_ago(1).strftime("%Y%m%d_%H%M%S"))
    client.put_object(Bucket=options["bucket"], Key=legacy_key, Body=b"x")
    legacy = run_module(MODULE, dict(options, name="backup"))
    assert legacy["count"] == 1 and legacy["backups"][0]["legacy"] is True and legacy["alerts"] == []


def test_keys_only_reads_no_manifest(s3):
    client, options = s3
    put_many(client, options, [("webstack", hours_ago(1 + 24 * i), {}) for i in range(3)])
    result = run_module(MODULE, dict(options, with_checksums=False))
    assert result["count"] == 3 and all(b["sha256"] is None and b["has_manifest"] for b in result["backups"])
    assert result["alerts"] == []


def test_missing_bucket_names_the_cause(s3):
    _client, options = s3
    result, run = run_module_full(MODULE, dict(options, bucket="no-such-bucket-%s" % uuid.uuid4().hex[:6]))
    assert result["failed"] and "the bucket does not exist" in result["msg"] and "no-such-bucket-" in result["msg"]
    assert options["secret_key"] not in run.output


def test_wrong_credentials_name_the_cause(s3):
    _client, options = s3
    wrong_secret = "Wrong" + uuid.uuid4().hex
    result, run = run_module_full(MODULE, dict(options, secret_key=wrong_secret))
    assert result["failed"] and "credentials were refused" in result["msg"], result["msg"]
    assert wrong_secret not in run.output and "Traceback" not in result["msg"]
    result = run_module(MODULE, dict(options, access_key="AKNOSUCHKEY0000"))
    assert result["failed"] and "credentials were refused" in result["msg"], result["msg"]


def test_unreachable_server_names_the_cause(s3, free_port):
    _client, options = s3
    result, run = run_module_full(MODULE, dict(options, endpoint_url="http://127.0.0.1:%d" % free_port))
    assert result["failed"] and "unreachable" in result["msg"] and str(free_port) in result["msg"]
    assert options["secret_key"] not in run.output


@pytest.mark.parametrize(("option", "value", "message"), [
    ("max_age_hours", 0, "max_age_hours must be more than 0"),
    ("max_size_drop_percent", 120, "max_size_drop_percent must be between 0 and 100"),
    ("keep_min", 0, "keep_min must be at least 1"),
    ("name", "", "name is empty"),
])
def test_bad_options_are_refused(s3, option, value, message):
    _client, options = s3
    result = run_module(MODULE, dict(options, **{option: value}))
    assert result["failed"] and message in result["msg"]
