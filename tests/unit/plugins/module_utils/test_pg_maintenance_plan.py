"""Unit tests of pg_maintenance's pure planning logic (no database)."""

from __future__ import annotations

import pytest
from ansible_collections.webstack.ops.plugins.module_utils._pg_maintenance import (
    MaintenanceError,
    TableStats,
    Thresholds,
    analyze_reason,
    reason_for,
    resolve_tables,
    vacuum_reason,
)

LIMITS = Thresholds()


def table(name="t", schema="public", *, live=1000, dead=0, changed=0, analyzed=True, reltuples=1000.0):
    return TableStats(schema, name, live, dead, changed, analyzed, reltuples)


def test_dead_tuples_over_threshold_plus_scale_need_vacuum():
    # 50 + 0.1 * 1000 = 150
    assert vacuum_reason(table(dead=151), LIMITS) == "151 dead tuples > 150"
    assert vacuum_reason(table(dead=150), LIMITS) is None


def test_changed_rows_over_threshold_plus_scale_need_analyze():
    # 50 + 0.05 * 1000 = 100
    assert analyze_reason(table(changed=101), LIMITS) == "101 rows changed since last analyze > 100"
    assert analyze_reason(table(changed=100), LIMITS) is None


def test_never_analyzed_table_with_rows_needs_analyze_but_empty_one_does_not():
    assert analyze_reason(table(analyzed=False, reltuples=-1, live=10), LIMITS) == "never analyzed"
    assert analyze_reason(table(analyzed=False, reltuples=-1, live=0), LIMITS) is None


def test_unknown_reltuples_falls_back_to_live_tuples():
    # reltuples -1 (never vacuumed/analyzed): 50 + 0.1 * 10000 live = 1050
    assert vacuum_reason(table(reltuples=-1, live=10000, dead=1000), LIMITS) is None
    assert vacuum_reason(table(reltuples=-1, live=10000, dead=1051), LIMITS) is not None


@pytest.mark.parametrize(
    ("action", "dead", "changed", "needed"),
    [
        ("analyze", 10000, 0, False),
        ("analyze", 0, 10000, True),
        ("vacuum", 0, 10000, False),
        ("vacuum", 10000, 0, True),
        ("vacuum_full", 10000, 0, True),
        ("vacuum_analyze", 10000, 0, True),
        ("vacuum_analyze", 0, 10000, True),
        ("vacuum_analyze", 0, 0, False),
    ],
)
def test_each_action_looks_at_its_own_figures(action, dead, changed, needed):
    assert (reason_for(action, table(dead=dead, changed=changed), LIMITS) is not None) is needed


def test_thresholds_are_options():
    strict = Thresholds(vacuum_threshold=0, vacuum_scale_factor=0.0)
    assert vacuum_reason(table(dead=1), strict) == "1 dead tuples > 0"


KNOWN = [table("pages_pagevisit"), table("a.b"), table("dup"), table("dup", schema="audit"), table("x", schema="audit")]


def test_names_resolve_plain_and_schema_qualified():
    resolved = resolve_tables(["pages_pagevisit", "audit.x", "audit.dup"], KNOWN)
    assert [t.qualified for t in resolved] == ["public.pages_pagevisit", "audit.x", "audit.dup"]


def test_an_exact_name_with_a_dot_wins_over_a_schema_split():
    assert [t.qualified for t in resolve_tables(["a.b"], KNOWN)] == ["public.a.b"]


def test_duplicates_are_dropped():
    assert len(resolve_tables(["pages_pagevisit", "public.pages_pagevisit"], KNOWN)) == 1


def test_unknown_and_ambiguous_names_fail_before_anything_and_are_all_named():
    with pytest.raises(MaintenanceError) as err:
        resolve_tables(["nope", "dup", "pages_pagevisit", 'x"; DROP TABLE y; --'], KNOWN)
    message = str(err.value)
    assert "unknown table(s): nope, x\"; DROP TABLE y; --" in message
    assert "dup (in schemas public, audit)" in message
    assert message.endswith("Nothing was run.")
