"""Unit tests of container_logs' file side: tails of large logs, masking, the bundle written whole (no Docker)."""

from __future__ import annotations

import os
import tarfile

import pytest
from ansible_collections.webstack.ops.plugins.module_utils import _container_logs as logs
from ansible_collections.webstack.ops.plugins.module_utils._log_scan import MAX_LINE


def test_tail_reads_only_the_end_of_a_large_log(tmp_path):
    log = tmp_path / "error.log"
    with open(log, "w") as out:
        out.writelines("line %d\n" % n for n in range(200_000))
    assert logs.tail_file(str(log), 3) == b"line 199997\nline 199998\nline 199999\n"
    assert logs.tail_file(str(log), 1) == b"line 199999\n"
    (tmp_path / "short.log").write_bytes(b"one\ntwo")  # fewer lines than asked, the last without its newline
    assert logs.tail_file(str(tmp_path / "short.log"), 200) == b"one\ntwo"
    (tmp_path / "empty.log").write_bytes(b"")
    assert logs.tail_file(str(tmp_path / "empty.log"), 5) == b""


def test_a_huge_line_is_cut_and_a_missing_file_is_named(tmp_path):
    log = tmp_path / "huge.log"
    log.write_bytes(b"x" * (3 * MAX_LINE) + b"\nlast\n")
    tail = logs.tail_file(str(log), 2)
    assert tail.endswith(b"...[cut]\nlast\n") and len(tail) < MAX_LINE + 100
    with pytest.raises(logs.ScanError, match="missing.log: No such file"):
        logs.tail_file(str(tmp_path / "missing.log"), 5)


def test_secrets_are_masked_plain_and_url_quoted():
    forms = logs.secret_forms(["p@ss/word", "", "tok"])
    text = b"redis://:p%40ss%2Fword@127.0.0.1:6379/0 password=p@ss/word token tok"
    assert logs.mask(text, forms) == b"redis://:********@127.0.0.1:6379/0 password=******** ********en ********"


def test_bundle_members_are_unique_and_the_bundle_is_written_whole(tmp_path):
    taken = set()
    names = [logs.member_name("files", "error.log", taken), logs.member_name("files", "error.log", taken),
             logs.member_name("files", "error.log", taken)]
    assert names == ["files/error.log", "files/error.log.2", "files/error.log.3"]
    dest = tmp_path / "bundle.tar.gz"
    size = logs.write_bundle(str(dest), {"files/error.log": b"boom\n", "info.json": b"{}"})
    assert size == dest.stat().st_size and oct(dest.stat().st_mode & 0o777) == "0o600"
    with tarfile.open(dest) as tar:
        assert {m.name: tar.extractfile(m).read() for m in tar.getmembers()} == {"files/error.log": b"boom\n", "info.json": b"{}"}
    assert [p.name for p in tmp_path.iterdir()] == ["bundle.tar.gz"]  # no temporary file left beside it
    with pytest.raises(logs.BundleError, match="no/such/dir"):
        logs.write_bundle(str(tmp_path / "no/such/dir/bundle.tar.gz"), {})


def test_collect_keeps_going_past_a_missing_file_and_masks_info(tmp_path):
    (tmp_path / "error.log").write_bytes(b"a\nsecret-value here\n")
    members, sources, errors = logs.collect(dict(lines=10, paths=[str(tmp_path / "error.log"), str(tmp_path / "gone.log")],
                                                 info={"note": "secret-value"}, secrets=["secret-value"]))
    assert members["files/error.log"] == b"a\n******** here\n" and b"secret-value" not in members["info.json"]
    assert sources == [dict(kind="file", source=str(tmp_path / "error.log"), member="files/error.log", lines=2, bytes=16)]
    assert [e["source"] for e in errors] == [str(tmp_path / "gone.log")] and os.path.exists(tmp_path / "error.log")
