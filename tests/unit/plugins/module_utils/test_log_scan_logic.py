"""Unit tests of log_scan's pure logic: timestamps, since, grouping, block matching, thresholds (no files)."""

from __future__ import annotations

import calendar
import io
import time

import pytest
from ansible_collections.webstack.ops.plugins.module_utils._log_scan import (
    BLOCK,
    Counter,
    ScanError,
    Scanner,
    Tally,
    compile_patterns,
    docker_time_key,
    line_time,
    merge_thresholds,
    normalise,
    parse_since,
    pattern_alerts,
    required_prefix,
    scan_container,
)

NOON_UTC = calendar.timegm((2026, 11, 29, 12, 0, 0, 0, 0, 0))


def test_line_time_reads_nginx_django_and_iso_lines():
    nginx = '10.1.2.3 - bob [29/Nov/2026:13:00:00 +0100] "GET / HTTP/1.1" 200 5 "-" "curl"'
    assert line_time(nginx) == NOON_UTC
    assert line_time("2026-11-29T12:00:00.250Z GET /") == NOON_UTC + 0.25
    assert line_time("2026-11-29 14:00:00+02:00 x") == NOON_UTC
    local = "2026-11-29 12:00:00,123 ERROR django.request boom"  # Python logging: local time, milliseconds
    assert line_time(local) == pytest.approx(time.mktime((2026, 11, 29, 12, 0, 0, 0, 0, -1)) + 0.123)
    celery = "[2026-11-29 12:00:00,000: ERROR/MainProcess] Task utils.tasks.ping raised"
    nginx_error = "2026/11/29 12:00:00 [error] 7#7: *1 upstream timed out"
    assert line_time(celery) == line_time(nginx_error) == time.mktime((2026, 11, 29, 12, 0, 0, 0, 0, -1))
    assert line_time("Traceback (most recent call last):") is None
    assert line_time("[29/Foo/2026:13:00:00 +0100]") is None


def test_parse_since_takes_ages_and_timestamps_and_refuses_the_rest():
    assert parse_since("24h", now=NOON_UTC) == NOON_UTC - 86400
    assert parse_since("7d", now=NOON_UTC) == NOON_UTC - 7 * 86400
    assert parse_since("30m", now=NOON_UTC) == NOON_UTC - 1800
    assert parse_since("2026-11-29T12:00:00Z") == NOON_UTC
    assert parse_since(None) is None
    for bad in ("yesterday", "24 hours", "2026-11-29T12:00:00Z trailing"):
        with pytest.raises(ScanError, match="neither an ISO timestamp"):
            parse_since(bad)


def test_docker_timestamps_compare_to_the_nanosecond():
    assert docker_time_key("2026-11-29T12:00:00.000000001Z") > docker_time_key("2026-11-29T12:00:00Z")
    assert docker_time_key("2026-11-29T12:00:00.5Z") == (NOON_UTC, 500000000)


def test_normalise_groups_repeats_of_one_message():
    one = normalise('10.0.0.1 - - [29/Nov/2026:10:00:00 +0000] "GET /post/17?id=3f2a9c1b7e HTTP/1.1" 403 12 "-" "x"')
    two = normalise('192.168.7.20 - - [30/Nov/2026:11:12:13 +0000] "GET /post/18?id=00ab12cd99 HTTP/1.1" 403 99 "-" "x"')
    assert one == two == '<ip> - - [<time>] "GET /post/<n>?id=<hex> HTTP/<n>.<n>" <n> <n> "-" "x"'
    assert normalise("2026-11-29 10:00:00,123 ERROR task 1b4e28ba-2fa1-11d2-883f-0016d3cca427 failed") == \
        "<time> ERROR task <uuid> failed"


def test_required_prefix_only_when_every_match_starts_with_it():
    assert required_prefix(r"\bERROR\b") == "ERROR"
    assert required_prefix(r'"POST /admin') == '"POST /admin'
    assert required_prefix(r"slow request") == "slow request"
    assert required_prefix(r"^\[crit\] x") == "[crit] x"
    assert required_prefix(r"errors?") == "error"
    assert required_prefix(r"ERROR|CRITICAL") is None
    assert required_prefix(r"(?i)error") is None
    assert required_prefix(r'" (?:401|403) ') is None
    assert required_prefix(r"ab\d") is None


def scan(patterns, data, since=None, keep_partial=True):
    counters = compile_patterns(patterns)
    tally = Tally("src", "file")
    consumed = Scanner(counters, since).scan_stream(io.BytesIO(data), tally, keep_partial)
    return {c.name: c.count for c in counters}, tally, consumed


def test_each_line_counts_once_per_pattern_and_matches_do_not_run_across_lines():
    data = b"ERROR a ERROR b\nfine\nxERRORx\nend with quote \"\n401 ERROR\n"
    counts, tally, consumed = scan([{"name": "error", "regex": r"\bERROR\b"},
                                    {"name": "spans", "regex": r'" ?\n?401'},
                                    {"name": "unicode", "regex": "caf\u00e9|ERROR b"}], data)
    assert counts == {"error": 2, "spans": 0, "unicode": 1}
    assert (tally.lines_read, consumed) == (5, len(data))


def test_a_last_line_without_newline_waits_for_the_next_run_when_asked():
    data = b"ERROR one\nERROR half-writt"
    assert scan([{"name": "e", "regex": "ERROR"}], data)[0] == {"e": 2}
    counts, tally, consumed = scan([{"name": "e", "regex": "ERROR"}], data, keep_partial=False)
    assert counts == {"e": 1} and consumed == len(b"ERROR one\n") and tally.lines_read == 1


def test_a_line_longer_than_a_block_is_cut_not_kept_whole():
    data = b"ERROR " + b"x" * (3 * BLOCK) + b" tail\nnext ERROR\n"
    counts, tally, consumed = scan([{"name": "e", "regex": "ERROR"}, {"name": "tail", "regex": "tail"}], data)
    assert counts == {"e": 2, "tail": 0} and tally.lines_read == 2 and consumed == len(data)


def test_since_skips_until_the_first_line_in_the_window():
    old, new = "2026-11-29 09:00:00,000", "2026-11-29 11:00:00,000"
    data = ("%s ERROR old\nERROR traceback line of the old entry\n%s ERROR new\nERROR its traceback\n" % (old, new)).encode()
    since = time.mktime((2026, 11, 29, 10, 0, 0, 0, 0, -1))
    counts, tally, _consumed = scan([{"name": "e", "regex": "ERROR"}], data, since=since)
    assert counts == {"e": 2} and tally.lines_skipped == 2


def test_samples_keep_top_messages_with_a_real_example():
    counter = Counter("e", "ERROR")
    for line in [b"ERROR job 1 failed"] * 2 + [b"ERROR job 22 failed", b"ERROR disk full"]:
        counter.add("src", line)
    result = counter.result(sample_size=1, example_chars=12)
    assert result["samples"] == [{"message": "ERROR job <n", "count": 3, "example": "ERROR job 1 "}]
    assert result["distinct"] == 2 and result["sources"] == {"src": 4}


def test_bad_patterns_and_thresholds_are_refused_by_name():
    with pytest.raises(ScanError, match=r"pattern 'x': invalid regex '\(': missing \)"):
        compile_patterns([{"name": "x", "regex": "("}])
    with pytest.raises(ScanError, match="given twice"):
        compile_patterns([{"name": "x", "regex": "a"}, {"name": "x", "regex": "b"}])
    with pytest.raises(ScanError, match=r"patterns\[0\] needs a name and a regex"):
        compile_patterns([{"regex": "a"}])
    with pytest.raises(ScanError, match="unknown pattern"):
        merge_thresholds(["error"], {"eror": {"warn": 1}})
    with pytest.raises(ScanError, match="crit .2. is below warn .5."):
        merge_thresholds(["error"], {"error": {"warn": 5, "crit": 2}})


def test_thresholds_merge_over_defaults_and_raise_the_worst_level_only():
    limits = merge_thresholds(["error", "admin_post", "mine"], {"admin_post": {}, "mine": {"crit": 3}})
    assert limits == {"error": {"warn": 1, "crit": 50}, "admin_post": {}, "mine": {"crit": 3}}
    found = {name: {"count": count, "sources": {"a": count}, "samples": []}
             for name, count in (("error", 60), ("admin_post", 500), ("mine", 2))}
    alerts = pattern_alerts(found, limits, None)
    assert [(a["check"], a["level"], a["value"], a["threshold"]) for a in alerts] == [("log_error", "crit", 60, 50)]


class LogStub:
    """Stands in for a docker SDK container: logs() yields the given chunks and keeps the arguments it got."""

    def __init__(self, chunks):
        self.chunks = chunks
        self.kwargs = None

    def logs(self, **kwargs):
        self.kwargs = kwargs
        return iter(self.chunks)


def test_container_lines_are_split_across_chunks_and_cut_by_docker_timestamps():
    stub = LogStub([b"2026-11-29T12:00:00.100000000Z ERROR old\n2026-11-29T12:00:00.2",
                    b"00000000Z ERROR new\n2026-11-29T12:00:01Z slow request GET /x 200 1500 ms\n"])
    counters = compile_patterns([{"name": "error", "regex": r"\bERROR\b"}, {"name": "slow", "regex": "slow request"}])
    tally = Tally("website", "container")
    last = scan_container(Scanner(counters), tally, stub, docker_time_key("2026-11-29T12:00:00.1Z"))
    # follow=False: a running container's stream must end at its current last line.
    assert stub.kwargs == dict(stream=True, follow=False, timestamps=True, stdout=True, stderr=True, since=NOON_UTC)
    assert [c.count for c in counters] == [1, 1]
    assert counters[0].groups and list(counters[0].groups.values())[0][1] == "ERROR new"
    assert (tally.lines_read, tally.lines_skipped) == (3, 1)
    assert last == "2026-11-29T12:00:01Z"


def test_copytruncate_rotation_counts_each_line_once(tmp_path):
    """logrotate's copytruncate: the log is copied to .1 and emptied in place (same inode). Lines written after the
    last mark but before the copy are read from .1, the rest from the emptied file, none twice."""
    from ansible_collections.webstack.ops.plugins.module_utils._log_scan import run_scan  # noqa: PLC0415
    from ansible_collections.webstack.ops.plugins.module_utils._state_file import save_state  # noqa: PLC0415

    log = tmp_path / "app.log"
    options = {"paths": [str(log)], "state_file": str(tmp_path / "state.json"),
               "patterns": [{"name": "error", "regex": r"\bERROR\b"}], "sample_size": 5, "example_chars": 300}

    def scan_and_keep():
        result, new_state = run_scan(options)
        save_state(options["state_file"], new_state)
        return result["patterns"]["error"]["count"]

    log.write_text("ERROR one\nINFO fine\n")
    assert scan_and_keep() == 1
    with log.open("a") as out:
        out.write("ERROR two, before the copy\n")
    (tmp_path / "app.log.1").write_bytes(log.read_bytes())  # copy, then truncate in place: the inode stays
    inode = log.stat().st_ino
    with log.open("r+") as out:
        out.truncate(0)
    with log.open("a") as out:
        out.write("ERROR three, after the truncate\n")
    assert log.stat().st_ino == inode
    assert scan_and_keep() == 2
    assert scan_and_keep() == 0
