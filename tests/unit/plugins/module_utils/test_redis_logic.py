"""The rules of redis_stats' alerts and redis_cache's key selection, on INFO replies and options made up here."""

from __future__ import annotations

import pytest
from ansible_collections.webstack.ops.plugins.module_utils._redis_cache import glob_escape, prefix_pattern
from ansible_collections.webstack.ops.plugins.module_utils._redis_stats import MB, Thresholds, digest
from ansible_collections.webstack.ops.plugins.modules.redis_cache import bad_option

LIMITS = Thresholds()
GB = 1024 * MB


def info(**fields):
    """An INFO reply of a quiet Redis 7, with fields replaced."""
    base = dict(redis_version="7.0.15", role="master", uptime_in_seconds=86400, used_memory=10 * MB,
                used_memory_peak=12 * MB, used_memory_rss=12 * MB, maxmemory=128 * MB, maxmemory_policy="allkeys-lru",
                total_system_memory=16 * GB, mem_fragmentation_ratio=1.2, connected_clients=5, blocked_clients=1,
                maxclients=10000, rejected_connections=0, keyspace_hits=0, keyspace_misses=0, evicted_keys=0,
                expired_keys=0, instantaneous_ops_per_sec=3, rdb_last_bgsave_status="ok", rdb_last_save_time=1000,
                server_time_usec=4600 * 10**6, aof_enabled=0, aof_last_write_status="ok")
    base.update(fields)
    return base


def checks(result):
    return [(a["check"], a["level"]) for a in result["alerts"]]


def test_a_quiet_redis_has_no_alert():
    result = digest(info(), LIMITS)
    assert result["alerts"] == [] and result["level"] == "ok"
    assert result["memory"]["used_percent"] == 7.8 and result["memory"]["limit_source"] == "maxmemory"
    assert result["persistence"]["rdb_last_save_age_seconds"] == 3600  # on the server's clock
    assert result["stats"]["hit_rate"] is None


@pytest.mark.parametrize(("fields", "expected"), [
    (dict(used_memory=116 * MB), [("redis_memory", "warn")]),
    (dict(used_memory=128 * MB, maxmemory_policy="noeviction"), [("redis_memory", "crit")]),  # writes fail now
    (dict(used_memory=128 * MB), [("redis_memory", "warn")]),  # an LRU cache at its limit evicts, it does not fail
    (dict(used_memory=100 * MB), []),
])
def test_memory_against_maxmemory(fields, expected):
    assert checks(digest(info(**fields), LIMITS)) == expected


def test_without_maxmemory_memory_is_judged_against_the_host_and_the_alert_says_so():
    result = digest(info(maxmemory=0, used_memory=15 * GB), LIMITS)
    assert result["memory"]["limit_source"] == "system" and result["memory"]["limit"] == 16 * GB
    [memory] = result["alerts"]
    assert "of the host's memory 16.00G (maxmemory is 0, no limit set)" in memory["message"]
    assert digest(info(maxmemory=0, total_system_memory=0), LIMITS)["memory"]["used_percent"] is None


def test_maxmemory_from_config_get_when_info_lacks_it():
    reply = info(used_memory=95 * MB)
    del reply["maxmemory"]
    assert digest(reply, LIMITS, maxmemory=100 * MB)["memory"]["limit"] == 100 * MB
    assert digest(reply, LIMITS)["memory"]["limit_source"] == "system"  # CONFIG refused too: the host's memory


def test_the_hit_rate_is_judged_only_after_enough_lookups():
    assert checks(digest(info(keyspace_hits=0, keyspace_misses=999), LIMITS)) == []
    assert checks(digest(info(keyspace_hits=0, keyspace_misses=1000), LIMITS)) == [("redis_hit_rate", "warn")]
    assert checks(digest(info(keyspace_hits=900, keyspace_misses=100), LIMITS)) == []  # exactly 0.9 is fine


def test_fragmentation_counts_only_on_a_dataset_large_enough():
    assert checks(digest(info(used_memory=10 * MB, mem_fragmentation_ratio=8.0), LIMITS)) == []
    assert checks(digest(info(used_memory=100 * MB, mem_fragmentation_ratio=1.5), LIMITS)) == []
    assert checks(digest(info(used_memory=100 * MB, mem_fragmentation_ratio=1.6), LIMITS)) == [("redis_fragmentation", "warn")]


def test_evictions_count_since_the_start_and_allow_a_tolerance():
    [evictions] = digest(info(evicted_keys=1), LIMITS)["alerts"]
    assert "since the server started 1.0 days ago" in evictions["message"] and "counter only resets" in evictions["message"]
    assert digest(info(evicted_keys=100), Thresholds(max_evictions=100))["alerts"] == []


def test_a_failed_save_or_aof_write_is_critical():
    result = digest(info(rdb_last_bgsave_status="err", aof_enabled=1, aof_last_write_status="err"), LIMITS)
    assert checks(result) == [("redis_rdb_save", "crit"), ("redis_aof_write", "crit")] and result["level"] == "crit"


def test_clients_against_maxclients():
    assert checks(digest(info(connected_clients=9000), LIMITS)) == [("redis_clients", "warn")]
    assert checks(digest(info(connected_clients=8999), LIMITS)) == []


def test_keyspace_in_database_order():
    reply = info(db10={"keys": 1, "expires": 0, "avg_ttl": 0}, db2={"keys": 4, "expires": 4, "avg_ttl": 500})
    result = digest(reply, LIMITS)
    assert list(result["keyspace"]) == ["db2", "db10"] and result["total_keys"] == 5
    assert result["keyspace"]["db2"] == {"keys": 4, "expires": 4, "avg_ttl_ms": 500}


@pytest.mark.parametrize(("prefix", "pattern"), [
    ("webstack:", "webstack:*"),
    ("cache[v2]*?:", "cache\\[v2]\\*\\?:*"),
    ("a\\b:", "a\\\\b:*"),
])
def test_a_prefix_becomes_a_literal_glob(prefix, pattern):
    assert prefix_pattern(prefix) == pattern
    assert glob_escape("plain-text_1:2") == "plain-text_1:2"


def options(**params):
    base = dict(prefix=None, pattern=None, flush_db=False, count=1000, min_idle_seconds=None, only_without_ttl=False, db=1)
    base.update(params)
    return base


@pytest.mark.parametrize(("params", "problem"), [
    (dict(), "say which keys to clear"),
    (dict(pattern=""), "pattern is empty, which would match every key of database 1"),
    (dict(prefix=""), "prefix is empty"),
    (dict(prefix="a", pattern="b*"), "mutually exclusive"),
    (dict(flush_db=True, pattern="*"), "omit pattern"),
    (dict(flush_db=True, only_without_ttl=True), "do not apply"),
    (dict(prefix="a", count=0), "count must be between 1 and 100000"),
    (dict(prefix="a", min_idle_seconds=-1), "min_idle_seconds must be 0 or more"),
])
def test_redis_cache_refuses_unclear_selections(params, problem):
    assert problem in bad_option(options(**params))


def test_redis_cache_accepts_clear_selections():
    assert bad_option(options(prefix="webstack:")) is None
    assert bad_option(options(pattern="*")) is None  # every key, but asked for with a pattern
    assert bad_option(options(flush_db=True)) is None
