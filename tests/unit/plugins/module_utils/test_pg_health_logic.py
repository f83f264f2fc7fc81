"""Unit tests of pg_health's threshold logic (no database)."""

from __future__ import annotations

import dataclasses

import pytest
from ansible_collections.webstack.ops.plugins.module_utils._pg_health import (
    Limits,
    activity,
    bad_limits,
    cache_hit_ratio,
    connection_alerts,
    database_stats_alerts,
    has_many_dead_tuples,
    is_seq_scan_heavy,
    wraparound_alerts,
)

LIMITS = Limits()


def levels(alerts):
    return [(a["check"], a["level"], a["value"], a["threshold"]) for a in alerts]


@pytest.mark.parametrize(("total", "expected"), [
    (79, []),
    (80, [("connections", "warn", 80.0, 80)]),
    (89, [("connections", "warn", 89.0, 80)]),
    (90, [("connections", "crit", 90.0, 90)]),
])
def test_connections_warn_at_80_and_crit_at_90_percent_of_max_connections(total, expected):
    assert levels(connection_alerts(total, 100, LIMITS)) == expected


def session(pid, state, query=None, transaction=None, state_age=None):
    return dict(pid=pid, database="webstack", user="web", state=state, query_seconds=query,
                transaction_seconds=transaction, state_seconds=state_age, query="SELECT %d" % pid)


def test_activity_sorts_sessions_into_long_queries_transactions_and_idle_in_transaction():
    sessions = [
        session(1, "active", query=400, transaction=400, state_age=400),
        session(2, "active", query=900, transaction=950, state_age=900),
        session(3, "active", query=10, transaction=10, state_age=10),
        session(4, "idle", query=4000, state_age=4000),  # its last query ended long ago: not running
        session(5, "idle in transaction", query=100, transaction=500, state_age=90),
        session(6, "idle in transaction (aborted)", query=30, transaction=40, state_age=30),
    ]
    long_queries, long_transactions, idle, alerts = activity(sessions, LIMITS)

    assert [s["pid"] for s in long_queries] == [2, 1]
    assert [s["pid"] for s in long_transactions] == [2, 5, 1]
    assert [s["pid"] for s in idle] == [5]
    assert levels(alerts) == [("long_queries", "warn", 900, 300), ("long_transactions", "warn", 950, 300),
                              ("idle_in_transaction", "warn", 90, 60)]
    assert alerts[0]["message"].startswith("2 queries running longer than 300 s; longest 900 s (pid 2, database webstack")
    assert activity([session(6, "idle in transaction (aborted)", state_age=61)], LIMITS)[2][0]["pid"] == 6


def stats(**overrides):
    row = dict(database="webstack", deadlocks=0, conflicts=0, blks_hit=99000, blks_read=1000, stats_reset=None)
    row.update(overrides)
    row["cache_hit_ratio"] = cache_hit_ratio(row["blks_hit"], row["blks_read"])
    return row


def test_any_deadlock_warns_by_default_and_the_message_says_since_when():
    assert database_stats_alerts(stats(), LIMITS) == []
    [deadlock] = database_stats_alerts(stats(deadlocks=2, stats_reset="2024-06-01T00:00:00Z"), LIMITS)
    assert (deadlock["check"], deadlock["level"], deadlock["value"], deadlock["threshold"]) == ("deadlocks", "warn", 2, 0)
    assert "since the statistics reset at 2024-06-01T00:00:00Z" in deadlock["message"]
    assert database_stats_alerts(stats(deadlocks=2), dataclasses.replace(LIMITS, deadlocks_max=2)) == []
    assert levels(database_stats_alerts(stats(conflicts=1), LIMITS)) == [("conflicts", "warn", 1, 0)]


@pytest.mark.parametrize(("hit", "read", "expected"), [
    (99000, 1000, []),  # 0.99
    (94000, 6000, [("cache_hit_ratio", "warn", 0.94, 0.95)]),
    (89000, 11000, [("cache_hit_ratio", "crit", 0.89, 0.9)]),
    (5000, 4000, []),  # 9000 blocks: too few to judge
    (0, 0, []),
])
def test_cache_hit_ratio_warns_below_095_and_is_critical_below_090_once_enough_blocks_were_read(hit, read, expected):
    assert levels(database_stats_alerts(stats(blks_hit=hit, blks_read=read), LIMITS)) == expected


def test_cache_hit_ratio_of_no_reads_is_unknown():
    assert cache_hit_ratio(0, 0) is None and cache_hit_ratio(3, 1) == 0.75


@pytest.mark.parametrize(("dead", "live", "expected"), [
    (10001, 20000, True),
    (10000, 20000, False),  # not over the minimum
    (15000, 200000, False),  # under 10% of the live rows
    (20001, 200000, True),
    (10001, 0, True),
])
def test_many_dead_tuples_needs_both_the_count_and_the_share_of_live_rows(dead, live, expected):
    assert has_many_dead_tuples(dead, live, LIMITS) is expected


@pytest.mark.parametrize(("seq", "idx", "live", "expected"), [
    (500, None, 50000, True),  # no index at all
    (500, 49, 50000, True),
    (500, 50, 50000, False),  # not more than 10 times the index scans
    (99, 0, 50000, False),  # too few sequential scans
    (500, 0, 9999, False),  # too small: a sequential scan is fine
])
def test_seq_scan_candidates(seq, idx, live, expected):
    assert is_seq_scan_heavy(seq, idx, live, LIMITS) is expected


def test_wraparound_names_the_oldest_database_at_the_worst_level():
    databases = [dict(database="webstack", age=1600000000, percent=74.5), dict(database="postgres", age=1100000000, percent=51.2),
                 dict(database="template0", age=500, percent=0.0)]
    [crit] = wraparound_alerts(databases, LIMITS)
    assert levels([crit]) == [("wraparound", "crit", 1600000000, 1500000000)]
    assert "1 database(s)" in crit["message"] and "webstack 1600000000 (74.5%)" in crit["message"]
    [warn] = wraparound_alerts(databases[1:], LIMITS)
    assert levels([warn]) == [("wraparound", "warn", 1100000000, 1000000000)]
    assert wraparound_alerts(databases[2:], LIMITS) == []


@pytest.mark.parametrize(("changes", "message"), [
    (dict(connections_warn_percent=95), "connections_warn_percent and connections_crit_percent"),
    (dict(cache_hit_ratio_warn=0.8), "cache_hit_ratio_warn and cache_hit_ratio_crit"),
    (dict(wraparound_crit=2 ** 31), "wraparound_warn and wraparound_crit"),
    (dict(long_query_seconds=0), "long_query_seconds must be more than 0"),
    (dict(deadlocks_max=-1), "deadlocks_max must be 0 or more"),
])
def test_bad_limits_are_named(changes, message):
    assert message in bad_limits(dataclasses.replace(LIMITS, **changes))
    assert bad_limits(LIMITS) is None
