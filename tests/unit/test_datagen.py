"""bench/datagen.py without a database: determinism, the three-year window, well-formed values, COPY text."""

from __future__ import annotations

import datetime as dt
import ipaddress
import json
import re
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))

import datagen  # noqa: E402 - found through the path above

NOW = dt.datetime(2025, 6, 1, 12, 0, tzinfo=dt.timezone.utc)
TABLES = list(datagen.TABLES)
SMALL = {"pages_pagevisit": 3000, "utils_requestfingerprint": 1500, "utils_lighthouseresult": 60, "blog_blogcomment": 600}


def text(table, rows, seed=7, now=NOW, **kwargs):
    return "".join(datagen.copy_text(table, rows, seed, now, **kwargs))


@pytest.fixture(scope="module")
def sample():
    """Rows of every table, as Python values."""
    return {table: list(datagen.iter_rows(table, rows, seed=11, now=NOW)) for table, rows in SMALL.items()}


@pytest.mark.parametrize("table", TABLES)
def test_same_seed_same_rows(table):
    assert text(table, 200, seed=3) == text(table, 200, seed=3)


@pytest.mark.parametrize("table", TABLES)
def test_other_seed_other_rows(table):
    assert text(table, 200, seed=3) != text(table, 200, seed=4)


def test_tables_get_different_rows_from_the_same_seed():
    paths_a = [r["path"] for r in datagen.iter_rows("pages_pagevisit", 100, 5, NOW)]
    paths_b = [r["path"] for r in datagen.iter_rows("utils_requestfingerprint", 100, 5, NOW)]
    assert paths_a != paths_b


@pytest.mark.parametrize("table", TABLES)
def test_chunking_does_not_change_the_rows(table):
    assert text(table, 150, chunk_rows=7) == text(table, 150, chunk_rows=1000)


def test_row_stream_reads_are_the_copy_text_in_any_read_size():
    expected = text("pages_pagevisit", 500).encode()
    for size in (1, 100, 4096, 1 << 20):
        stream = datagen.RowStream("pages_pagevisit", 500, 7, NOW, chunk_rows=64)
        parts = []
        while chunk := stream.read(size):
            assert len(chunk) <= size
            parts.append(chunk)
        assert b"".join(parts) == expected
        assert stream.bytes_read == len(expected)
    assert datagen.RowStream("pages_pagevisit", 500, 7, NOW).read() == expected


def test_row_stream_keeps_memory_bounded():
    stream = datagen.RowStream("pages_pagevisit", 100_000, 7, NOW, chunk_rows=500)
    stream.read(1000)
    assert len(stream._buf) < 500 * 1000  # one chunk of ~230-byte rows, not 100,000 rows


@pytest.mark.parametrize("table", TABLES)
def test_copy_text_has_one_line_per_row_and_every_column(table):
    lines = text(table, SMALL[table] // 10).split("\n")
    assert lines[-1] == ""
    lines = lines[:-1]
    assert len(lines) == SMALL[table] // 10
    for line in lines:
        assert line.count("\t") == len(datagen.columns(table)) - 1
        assert "\r" not in line


@pytest.mark.parametrize("table", TABLES)
def test_timestamps_fill_the_three_years_before_now_in_order(table, sample):
    stamps = [row["created_at"] for row in sample[table]]
    start = NOW - datagen.WINDOW
    assert all(start <= s <= NOW for s in stamps)
    assert stamps == sorted(stamps)
    assert all(s.tzinfo is not None for s in stamps)
    if len(stamps) >= 600:
        assert stamps[0] - start < datagen.WINDOW / 100
        assert NOW - stamps[-1] < datagen.WINDOW / 100


def test_timestamps_are_uniform_over_the_window():
    stamps = [row["created_at"] for row in datagen.iter_rows("pages_pagevisit", 30_000, 1, NOW)]
    start = NOW - datagen.WINDOW
    thirds = [0, 0, 0]
    for s in stamps:
        thirds[min(2, int((s - start) / datagen.WINDOW * 3))] += 1
    for count in thirds:
        assert abs(count / len(stamps) - 1 / 3) < 0.01
    assert dt.timedelta(days=3 * 365) <= datagen.WINDOW


def test_now_defaults_to_the_current_time():
    before = dt.datetime.now(dt.timezone.utc)
    stamps = [row["created_at"] for row in datagen.iter_rows("pages_pagevisit", 50, 1)]
    after = dt.datetime.now(dt.timezone.utc)
    assert all(before - datagen.WINDOW <= s <= after for s in stamps)


def test_naive_now_and_unknown_tables_are_refused():
    with pytest.raises(ValueError, match="timezone"):
        list(datagen.iter_rows("pages_pagevisit", 1, 1, dt.datetime(2025, 1, 1)))  # noqa: DTZ001 - on purpose
    with pytest.raises(ValueError, match="unknown table"):
        list(datagen.copy_text("auth_user", 1))


def assert_public_ipv4(value):
    address = ipaddress.ip_address(value)
    assert address.version == 4
    assert address.is_global, value


@pytest.mark.parametrize("table", [t for t in TABLES if "ip_address" in datagen.columns(t)])
def test_ip_addresses_parse_and_are_public(table, sample):
    rows = sample[table]
    for row in rows:
        assert_public_ipv4(row["ip_address"])
    distinct = {row["ip_address"] for row in rows}
    assert 1 < len(distinct) < len(rows)  # returning visitors, not one address per row


def test_page_visits_look_like_traffic(sample):
    rows = sample["pages_pagevisit"]
    for row in rows:
        assert row["path"].startswith("/")
        assert row["path"] in datagen.PATHS
        assert row["user_agent"] in datagen.AGENT_MIX
        assert row["referer"] is None or re.match(r"^(https?|android-app)://", row["referer"])
        assert row["session_key"] is None or re.fullmatch(r"[0-9a-f]{32}", row["session_key"])
        assert 0 <= row["response_ms"] < 100_000
    assert any(row["referer"] is None for row in rows) and any(row["referer"] for row in rows)
    assert any("Googlebot" in row["user_agent"] for row in rows)
    # Popular pages get more traffic than the long tail.
    counts = {}
    for row in rows:
        counts[row["path"]] = counts.get(row["path"], 0) + 1
    assert max(counts.values()) > 5 * len(rows) / len(datagen.PATHS)
    median_ms = sorted(row["response_ms"] for row in rows)[len(rows) // 2]
    assert 30 < median_ms < 300


def test_request_fingerprints_are_well_formed(sample):
    rows = sample["utils_requestfingerprint"]
    for row in rows:
        assert re.fullmatch(r"[0-9a-f]{64}", row["fingerprint"])
        assert len(row["method"]) <= 8 and row["method"].isupper()
        assert isinstance(row["is_suspicious"], bool)
        assert isinstance(row["headers"], dict)
        assert row["headers"]["User-Agent"] == row["user_agent"]
        assert row["headers"]["X-Forwarded-For"] == row["ip_address"]
    suspicious = [row for row in rows if row["is_suspicious"]]
    assert 0.03 < len(suspicious) / len(rows) < 0.3
    assert any(row["path"] in datagen.SUSPICIOUS_PATHS for row in suspicious)
    # The same client gives the same fingerprint.
    by_fp = {}
    for row in rows:
        by_fp.setdefault(row["fingerprint"], set()).add((row["ip_address"], row["user_agent"]))
    assert all(len(clients) == 1 for clients in by_fp.values())


def test_lighthouse_results_carry_a_json_report_of_some_kb(sample):
    for row in sample["utils_lighthouseresult"]:
        raw = row["raw"]
        size = len(json.dumps(raw))
        assert 2_000 < size < 50_000
        assert raw["requestedUrl"] == row["url"]
        for column, category in (("performance_score", "performance"), ("accessibility_score", "accessibility"),
                                 ("best_practices_score", "best-practices"), ("seo_score", "seo")):
            assert 0 <= row[column] <= 100
            assert round(raw["categories"][category]["score"] * 100) == row[column]
        assert len(raw["audits"]) >= 20


def test_json_columns_parse_straight_from_the_copy_text():
    for table, column in (("utils_requestfingerprint", "headers"), ("utils_lighthouseresult", "raw")):
        position = datagen.columns(table).index(column)
        for line in text(table, 30).splitlines():
            field = line.split("\t")[position]
            assert isinstance(json.loads(datagen._unescape(field)), dict)


def test_blog_comments_are_paragraphs_by_people(sample):
    rows = sample["blog_blogcomment"]
    for row in rows:
        assert row["post_slug"] in datagen.BLOG_SLUGS
        assert re.fullmatch(r"[a-z0-9.]+@[a-z0-9.-]+\.[a-z]+", row["author_email"]), row["author_email"]
        assert " " in row["author_name"]
        assert len(row["content"]) > 20
    assert any("\n\n" in row["content"] for row in rows)
    assert any(not row["author_name"].isascii() for row in rows)
    approved = sum(row["is_approved"] for row in rows) / len(rows)
    assert 0.7 < approved < 0.95


def test_escaping_round_trips():
    tricky = "back\\slash\ttab\nnew line\rcr"
    assert datagen._unescape(datagen._escape(tricky)) == tricky
    assert "\n" not in datagen._escape(tricky) and "\t" not in datagen._escape(tricky)


# ---------------------------------------------------------------- SQL side, against a recording fake connection


class FakeCursor:
    def __init__(self, conn):
        self.conn = conn

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def execute(self, statement, params=None):
        self.conn.statements.append(statement)

    def copy_expert(self, statement, stream, size=8192):
        self.conn.statements.append(statement)
        data = []
        while chunk := stream.read(size):
            data.append(chunk)
        self.conn.copied.append(b"".join(data))


class FakeConn:
    def __init__(self, autocommit=True):
        self.autocommit = autocommit
        self.statements, self.copied, self.commits = [], [], 0

    def cursor(self):
        return FakeCursor(self)

    def commit(self):
        self.commits += 1


def test_create_tables_has_django_like_ddl():
    conn = FakeConn()
    datagen.create_tables(conn, schema="site", suffix="_x")
    ddl = "\n".join(conn.statements)
    assert 'CREATE SCHEMA IF NOT EXISTS "site"' in ddl
    for table in TABLES:
        assert 'CREATE TABLE IF NOT EXISTS "site"."%s_x"' % table in ddl
        assert 'CREATE INDEX IF NOT EXISTS "%s_x_created_at_idx" ON "site"."%s_x" (created_at)' % (table, table) in ddl
    assert ddl.count("id bigserial PRIMARY KEY") == 4
    assert ddl.count('"created_at" timestamptz NOT NULL') == 4
    assert '"ip_address" inet' in ddl and '"headers" jsonb NOT NULL' in ddl and '"session_key" varchar(40)' in ddl


def test_fill_copies_the_generated_text_and_commits_outside_autocommit():
    conn = FakeConn(autocommit=False)
    sent = datagen.fill(conn, "pages_pagevisit", 300, seed=7, now=NOW, name="bench_t001", read_size=1000)
    assert conn.statements == ['COPY "public"."bench_t001" ("path", "user_agent", "ip_address", "referer", "session_key", '
                               '"response_ms", "created_at") FROM STDIN']
    assert conn.copied == [text("pages_pagevisit", 300).encode()]
    assert sent == len(conn.copied[0])
    assert conn.commits == 1


def test_generate_creates_and_fills_every_table():
    conn = FakeConn()
    report = datagen.generate(conn, 20, seed=1, now=NOW)
    assert set(report) == set(TABLES)
    assert all(info["rows"] == 20 and info["bytes"] > 0 for info in report.values())
    assert len(conn.copied) == 4
    conn = FakeConn()
    report = datagen.generate(conn, {"blog_blogcomment": 5}, seed=1, now=NOW, suffix="_s")
    assert list(report) == ["blog_blogcomment"]
    assert conn.copied[0].count(b"\n") == 5
    with pytest.raises(ValueError, match="unknown table"):
        datagen.generate(FakeConn(), {"nope": 1}, seed=1, now=NOW)
