"""Unit tests of pg_retention's pure logic: batch-size adaptation, rule checks, name resolution (no database)."""

from __future__ import annotations

from ansible_collections.webstack.ops.plugins.module_utils._pg_retention import (
    Policy,
    batch_bounds,
    next_batch_size,
    pick,
    policy_problems,
)


def test_the_batch_size_moves_toward_the_time_budget():
    # 20,000 keys in 50 ms at a budget of 100 ms: twice as many next time; in 80 ms: a quarter more.
    assert next_batch_size(20000, 0.05, 0.1, 1000, 400000) == 40000
    assert next_batch_size(20000, 0.08, 0.1, 1000, 400000) == 25000
    # Over budget it shrinks in proportion.
    assert next_batch_size(20000, 0.125, 0.1, 1000, 400000) == 16000


def test_one_step_at_most_doubles_or_halves():
    assert next_batch_size(20000, 0.001, 0.1, 1000, 400000) == 40000
    assert next_batch_size(20000, 0.0, 0.1, 1000, 400000) == 40000  # too fast to time
    assert next_batch_size(20000, 5.0, 0.1, 1000, 400000) == 10000  # a checkpoint stall does not collapse it


def test_the_size_stays_within_bounds_and_a_zero_budget_keeps_it_fixed():
    assert next_batch_size(300000, 0.01, 0.1, 1000, 400000) == 400000
    assert next_batch_size(1500, 1.0, 0.1, 1000, 400000) == 1000
    assert next_batch_size(20000, 3.0, 0, 1000, 400000) == 20000
    assert batch_bounds(20000) == (1000, 400000)
    assert batch_bounds(5) == (1, 100)


def test_a_steady_rate_settles_on_the_budget():
    """At 1 M keys/s and a 0.1 s budget, sizes converge to 100,000 keys per batch."""
    size = 20000
    for _step in range(10):
        size = next_batch_size(size, size / 1_000_000, 0.1, 1000, 400000)
    assert size == 100000


def test_rule_problems_are_all_named():
    problems = policy_problems([
        Policy("pages_pagevisit", 180),
        Policy("pages_pagevisit", 0),
        Policy(" ", 30),
        Policy("utils_requestfingerprint", 90, column="", where={"is_suspicious": False, "tags": {"a": 1}}, max_rows=-5),
    ])
    assert problems == [
        "tables[1] (pages_pagevisit): days must be 1 or more, got 0 (an age of zero or less would delete current rows)",
        "tables[2]: empty table name",
        "tables[3] (utils_requestfingerprint): empty column name",
        "tables[3] (utils_requestfingerprint): max_rows must be 0 (no cap) or more, got -5",
        "tables[3] (utils_requestfingerprint): where.tags must be a string, number, boolean or null, got {'a': 1}",
    ]
    assert policy_problems([Policy("t", 1, where={"a": None, "b": 1, "c": "x", "d": 1.5, "e": True})]) == []


def test_names_resolve_to_exactly_one_table():
    # (oid, schema, name, relkind, visible on the search_path)
    found = [(1, "public", "visits", "r", True), (2, "archive", "visits", "r", False), (3, "public", "a.b", "r", True)]
    assert pick("visits", found) == (found[0], None)
    assert pick("archive.visits", found) == (found[1], None)
    assert pick("a.b", found) == (found[2], None)  # a dot in the name itself wins over schema.table
    row, problem = pick("visits", [found[0][:4] + (False,), found[1]])
    assert row is None and problem.startswith("ambiguous table visits (in schemas archive, public)")
    assert pick("nope", found)[1].startswith("unknown table nope")
