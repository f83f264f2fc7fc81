"""Pure logic of the backup catalog, the backup listing's alerts and the alert shape (no server)."""

from __future__ import annotations

import datetime

import pytest
from ansible_collections.webstack.ops.plugins.module_utils._alerts import alert, worst_level
from ansible_collections.webstack.ops.plugins.module_utils._backup_catalog import (
    backup_key,
    manifest_key,
    parse_key,
    retention_plan,
)
from ansible_collections.webstack.ops.plugins.module_utils._backup_info import pretty_size, size_trend, summarize

UTC = datetime.timezone.utc
NOW = datetime.datetime(2024, 6, 30, 9, 0, tzinfo=UTC)
WHERE = "s3://b/postgres/"


def backup(days_ago, *, name="webstack", size=1000, manifest=True, prefix="postgres/", hour=2):
    started = (NOW - datetime.timedelta(days=days_ago)).replace(hour=hour, minute=0, second=0)
    key = backup_key(prefix, name, "custom", "zstd", started)
    return dict(parse_key(key, prefix), key=key, size=size, last_modified=started, has_manifest=manifest)


def nightly(count, **kw):
    """count nightly backups, newest first: last night's, the night before, ..."""
    return [backup(day, **kw) for day in range(count)]


def info(backups, manifests=None, **kw):
    options = dict(max_age_hours=26, max_size_drop_percent=50, keep_days=30, keep_min=7, now=NOW)
    options.update(kw)
    return summarize(backups, manifests or {}, WHERE, **options)


def checks(result):
    return [(a["check"], a["level"]) for a in result["alerts"]]


# parse_key


def test_parse_key_reads_what_backup_key_writes():
    started = datetime.datetime(2024, 6, 1, 2, 0, 5, tzinfo=UTC)
    key = backup_key("postgres/", "web_stack", "plain", "gzip", started)
    assert key == "postgres/web_stack_20240601T020005Z.sql.gz"
    assert parse_key(key, "postgres/") == dict(name="web_stack", started=started, format="plain", compression="gzip",
                                               legacy=False)
    assert parse_key("postgres/db_20240601T020005Z.dump", "postgres/")["compression"] == "none"


def test_parse_key_knows_the_guides_legacy_files():
    parsed = parse_key("postgres/backup_20240601_020000.sql.gz", "postgres/")
    assert parsed["legacy"] and parsed["name"] == "backup" and parsed["format"] == "plain"
    assert parsed["started"] == datetime.datetime(2024, 6, 1, 2, 0, tzinfo=UTC)


@pytest.mark.parametrize("key", [
    "postgres/webstack_20240601T020000Z.dump.zst.manifest.json",  # a manifest
    "postgres/sub/webstack_20240601T020000Z.dump.zst",  # deeper than the prefix
    "other/webstack_20240601T020000Z.dump.zst",  # another prefix
    "postgres/webstack_2024-06-01.dump.zst",  # another naming
    "postgres/webstack_20240601T020000Z.tar",  # unknown format
    "postgres/notes.txt",
])
def test_parse_key_ignores_what_is_not_a_backup(key):
    assert parse_key(key, "postgres/") is None


# retention_plan


def test_retention_deletes_past_keep_days_only():
    backups = nightly(40)
    keep, delete = retention_plan(backups, keep_days=30, keep_min=7, now=NOW)
    assert len(keep) == 30 and len(delete) == 10
    assert all(b["started"] < NOW - datetime.timedelta(days=30) for b in delete)
    assert keep[0] is backups[0] and delete[0]["key"] > delete[-1]["key"]  # newest first


def test_retention_keeps_keep_min_good_backups_whatever_their_age():
    old = [backup(100 + day) for day in range(10)]
    keep, delete = retention_plan(old, keep_days=30, keep_min=7, now=NOW)
    assert [b["key"] for b in keep] == [b["key"] for b in old[:7]]
    assert len(delete) == 3


def test_retention_does_not_count_incomplete_backups_towards_keep_min():
    old = [backup(100, manifest=False), *[backup(101 + day) for day in range(3)]]
    keep, delete = retention_plan(old, keep_days=30, keep_min=2, now=NOW)
    assert [b["key"] for b in keep] == [old[1]["key"], old[2]["key"]]
    assert old[0] in delete


# alert shape


def test_alert_has_the_shared_shape():
    assert alert("backup_age", "crit", 30.5, 26, "too old") == dict(
        check="backup_age", level="crit", value=30.5, threshold=26, message="too old")


@pytest.mark.parametrize("level", ["critical", "info", "", None])
def test_alert_refuses_an_unknown_level(level):
    with pytest.raises(ValueError, match="warn, crit"):
        alert("x", level, 1, 0, "m")


def test_worst_level():
    assert worst_level([]) == "ok"
    assert worst_level([alert("a", "warn", 1, 0, "")]) == "warn"
    assert worst_level([alert("a", "warn", 1, 0, ""), alert("b", "crit", 1, 0, "")]) == "crit"


# the listing's alerts


def test_fresh_steady_backups_raise_nothing():
    result = info(nightly(10))
    assert result["alerts"] == []
    assert result["count"] == 10 and result["complete_count"] == 10 and result["total_size"] == 10000
    assert result["newest"]["key"] == result["backups"][0]["key"] and result["oldest"]["age_days"] > 9
    assert result["newest"]["age_hours"] == 7.0
    assert result["retention"] == dict(keep_days=30, keep_min=7, would_keep=10, would_delete=0,
                                       would_delete_keys=[], holds=True)


def test_no_backup_at_all_is_critical():
    result = info([], name="webstack")
    assert checks(result) == [("backup_missing", "crit")]
    assert "no backup of webstack under s3://b/postgres/" in result["alerts"][0]["message"]
    assert result["newest"] is None and result["oldest"] is None and result["count"] == 0


def test_only_incomplete_backups_is_critical_too():
    result = info([backup(0, manifest=False)])
    assert ("backup_missing", "crit") in checks(result)
    assert ("backup_manifest_missing", "warn") in checks(result)


def test_stale_newest_backup_is_critical_with_its_age():
    result = info(nightly(5)[2:])  # newest is two nights old: 55 h
    [stale] = result["alerts"]
    assert (stale["check"], stale["level"], stale["value"], stale["threshold"]) == ("backup_age", "crit", 55.0, 26)
    assert "55.0 h old (limit 26 h)" in stale["message"]
    assert info(nightly(5)[2:], max_age_hours=56)["alerts"] == []


def test_an_incomplete_newest_backup_does_not_count_as_fresh():
    backups = nightly(3)
    backups[0]["has_manifest"] = False
    # Last night's has no manifest: the newest complete one is the night before's, 31 h old.
    result = info(backups)
    assert checks(result) == [("backup_age", "crit"), ("backup_manifest_missing", "warn")]
    assert result["alerts"][0]["value"] == 31.0 and backups[1]["key"] in result["alerts"][0]["message"]
    assert checks(info(backups, max_age_hours=32)) == [("backup_manifest_missing", "warn")]


def test_size_drop_against_the_previous_complete_backup():
    backups = nightly(4, size=1000)
    backups[0]["size"] = 400
    [drop] = info(backups)["alerts"]
    assert (drop["check"], drop["level"], drop["value"], drop["threshold"]) == ("backup_size_drop", "warn", 60.0, 50)
    backups[0]["size"] = 500  # exactly 50 %: not more than the limit
    assert info(backups)["alerts"] == []
    backups[0]["size"] = 5000  # growth is no alert
    assert info(backups)["alerts"] == []


def test_size_drop_compares_raw_sizes_when_the_manifests_give_them():
    backups = nightly(2, size=1000)
    backups[0]["size"] = 300  # stronger compression, same data
    manifests = {backups[0]["key"]: {"sha256": "a" * 64, "raw_size": 9000},
                 backups[1]["key"]: {"sha256": "b" * 64, "raw_size": 9000}}
    result = info(backups, manifests)
    assert result["alerts"] == []
    assert result["trend"][0]["measure"] == "raw_size" and result["trend"][0]["change_percent"] == 0.0
    assert result["backups"][0]["sha256"] == "a" * 64 and result["backups"][1]["raw_size"] == 9000


def test_each_name_is_checked_on_its_own():
    backups = sorted(nightly(3, name="webstack") + nightly(5, name="analytics")[3:],
                     key=lambda b: b["started"], reverse=True)
    result = info(backups)
    assert result["names"] == ["analytics", "webstack"]
    [stale] = result["alerts"]
    assert stale["check"] == "backup_age" and "analytics" in stale["message"]


def test_unreadable_manifest_is_a_warning_and_keeps_the_checksum_empty():
    backups = nightly(2)
    result = info(backups, {backups[0]["key"]: "JSONDecodeError: Expecting value"})
    assert checks(result) == [("backup_manifest_unreadable", "warn")]
    assert result["backups"][0]["sha256"] is None and "JSONDecodeError" in result["backups"][0]["manifest_error"]


def test_legacy_backups_are_complete_without_a_manifest():
    legacy = dict(parse_key("postgres/backup_20240630_020000.sql.gz", "postgres/"),
                  key="postgres/backup_20240630_020000.sql.gz", size=10, last_modified=NOW, has_manifest=False)
    result = info([legacy])
    assert result["alerts"] == [] and result["backups"][0]["complete"] is True


def test_retention_outlook_names_what_would_go():
    backups = nightly(33)
    retention = info(backups)["retention"]
    assert retention["would_delete"] == 3 and retention["holds"] is False
    assert retention["would_delete_keys"] == [b["key"] for b in backups[30:]]


def test_many_manifestless_keys_are_shortened_in_the_message():
    backups = nightly(9, manifest=False)
    backups[0]["has_manifest"] = True
    [missing] = info(backups)["alerts"]
    assert missing["value"] == 8 and "and 3 more" in missing["message"]


def test_trend_and_pretty_size():
    backups = nightly(3, size=1000)
    backups[0]["size"] = 1100
    trend = size_trend(info(backups)["backups"])
    assert trend["change_percent"] == 10.0 and trend["growth_percent"] == 10.0 and trend["oldest_size"] == 1000
    assert pretty_size(512) == "512 B" and pretty_size(1536) == "1.5 KiB" and pretty_size(3 * 1024 ** 3) == "3.0 GiB"


def test_manifest_key_sits_beside_the_backup():
    assert manifest_key("postgres/x_20240601T020000Z.dump.zst") == "postgres/x_20240601T020000Z.dump.zst.manifest.json"
