"""Unit tests of s3_restore's pure logic: decoding, holding back, planning, checks (no server)."""

from __future__ import annotations

import datetime
import hashlib
import io
import os
import zlib

import pytest
import zstandard
from ansible_collections.webstack.ops.plugins.module_utils import _s3_restore as backend

DATA = os.urandom(300_000) + b"SELECT 1;\n" * 200_000  # random and very compressible parts


def zstd(data, frames=1):
    size = -(-len(data) // frames)
    return b"".join(zstandard.ZstdCompressor(write_checksum=True).compress(data[i:i + size]) for i in range(0, len(data), size))


def gzip_members(data, members=1):
    size = -(-len(data) // members)
    out = b""
    for i in range(0, len(data), size):
        obj = zlib.compressobj(6, zlib.DEFLATED, 31)
        out += obj.compress(data[i:i + size]) + obj.flush()
    return out


def decode(compression, blob, piece=65536):
    out = []
    decoder = backend.Decoder(compression, out.append)
    for i in range(0, len(blob), piece):
        decoder.feed(blob[i:i + piece])
    decoder.finish()
    assert decoder.size == sum(len(part) for part in out)
    return b"".join(out)


@pytest.mark.parametrize("frames", [1, 3])
def test_zstd_frames_in_a_row(frames):
    assert decode("zstd", zstd(DATA, frames)) == DATA


@pytest.mark.parametrize("members", [1, 4])
def test_gzip_members_in_a_row(members):
    assert decode("gzip", gzip_members(DATA, members)) == DATA


def test_none_passes_through():
    assert decode("none", DATA) == DATA


@pytest.mark.parametrize("compression", ["zstd", "gzip"])
def test_output_is_bounded_whatever_the_ratio(compression):
    """200 MB of zeros compress to a few kB: fed at once, it still comes out a megabyte at a time."""
    blob = zstd(b"\0" * (200 << 20)) if compression == "zstd" else gzip_members(b"\0" * (200 << 20))
    sizes = []
    decoder = backend.Decoder(compression, lambda data: sizes.append(len(data)))
    decoder.feed(blob)
    decoder.finish()
    assert sum(sizes) == 200 << 20 and max(sizes) <= backend.CHUNK


def test_truncated_gzip_fails_at_finish():
    blob = gzip_members(DATA)
    with pytest.raises(backend.DecodeError, match="truncated"):
        decode("gzip", blob[: len(blob) - 100])


def test_truncated_zstd_is_caught_by_the_checksum():
    blob = zstd(DATA)
    exc, _client, aborted = stream(blob[:-100], hashlib.sha256(blob).hexdigest(), "zstd")
    assert exc.stage == "checksum" and aborted


@pytest.mark.parametrize("compression", ["zstd", "gzip"])
def test_empty_object_fails(compression):
    with pytest.raises(backend.DecodeError, match="no %s data" % compression):
        decode(compression, b"")


@pytest.mark.parametrize("compression", ["zstd", "gzip"])
def test_corrupt_or_trailing_garbage_fails(compression):
    blob = zstd(DATA) if compression == "zstd" else gzip_members(DATA)
    with pytest.raises(backend.DecodeError):
        decode(compression, blob + b"garbage after the end")


def test_hold_back_keeps_the_tail_until_released():
    hold = backend.HoldBack(10)
    passed = hold.push(b"abc") + hold.push(b"defghijklmnop") + hold.push(b"") + hold.push(b"qrstuvwxyz0123")
    assert passed == b"abcdefghijklmnopqrst" and hold.held == b"uvwxyz0123"
    assert passed + hold.release() == b"abcdefghijklmnopqrstuvwxyz0123"
    assert hold.release() == b""


class RecordingClient:
    """Collects what a client would get; never exits on its own."""

    tool, where = "pg_restore", "here"

    def __init__(self, code=0):
        self.got, self.code, self.finished = [], code, False
        self.stderr = backend.StderrTail()

    def write(self, data):
        self.got.append(data)

    def finish(self):
        self.finished = True
        return self.code


def stream(blob, expected, compression="none", client=None):
    client = client or RecordingClient()
    aborted = []
    backup = dict(key="k", compression=compression, manifest=dict(sha256=expected) if expected else None)
    try:
        result = backend.stream_restore(io.BytesIO(blob), backup, client, lambda: aborted.append(True), {})
    except backend.RestoreError as exc:
        return exc, client, aborted
    return result, client, aborted


def test_stream_with_the_right_checksum_delivers_everything():
    blob = zstd(DATA)
    (digest, raw), client, aborted = stream(blob, hashlib.sha256(blob).hexdigest(), "zstd")
    assert digest == hashlib.sha256(blob).hexdigest() and raw == len(DATA)
    assert b"".join(client.got) == DATA and client.finished and not aborted


def test_stream_with_a_wrong_checksum_never_delivers_the_tail():
    exc, client, aborted = stream(DATA, "0" * 64)
    assert exc.stage == "checksum" and aborted == [True] and not client.finished
    assert b"".join(client.got) == DATA[: len(DATA) - backend.HOLD_BACK]


def test_stream_of_a_corrupt_object_reports_the_checksum_first():
    blob = bytearray(zstd(DATA))
    good = hashlib.sha256(blob).hexdigest()
    blob[len(blob) // 2] ^= 1
    exc, _client, aborted = stream(bytes(blob), good, "zstd")
    assert exc.stage == "checksum" and "decompress stage failed as well" in str(exc) and aborted


def test_stream_without_manifest_reports_decompression():
    exc, _client, aborted = stream(gzip_members(DATA)[:-50], None, "gzip")
    assert exc.stage == "decompress" and "truncated" in str(exc) and aborted


def test_client_exit_code_fails_the_restore():
    exc, _client, _aborted = stream(DATA, None, client=RecordingClient(code=1))
    assert exc.stage == "restore" and "exited with 1" in str(exc)


def info(comment=None):
    return dict(owner="postgres", encoding="UTF8", collate="C", ctype="C", comment=comment)


def test_plan_target():
    assert backend.plan_target(None, force=False) == "create"
    assert backend.plan_target(info(backend.SCRATCH_MARKER), force=False) == "recreate"
    assert backend.plan_target(info("production"), force=False) is None
    assert backend.plan_target(info(), force=True) == "swap"


def test_temporary_names_fit_postgres():
    name = backend.temporary_name("x" * 63, "restore")
    assert len(name.encode()) <= 63 and name.startswith("x") and "_restore_" in name
    assert len(backend.temporary_name("é" * 40, "old").encode()) <= 63
    assert backend.temporary_name("db", "old") != backend.temporary_name("db", "old")


def test_conninfo_quotes_the_name():
    assert backend.conninfo_dbname("a=b") == "dbname='a=b'"
    assert backend.conninfo_dbname("it's\\") == "dbname='it\\'s\\\\'"


def test_client_argv():
    assert backend.client_argv("custom", "db", no_owner=True)[:3] == ["pg_restore", "--single-transaction", "--exit-on-error"]
    assert "--no-owner" in backend.client_argv("custom", "db", no_owner=True)
    assert "--no-privileges" not in backend.client_argv("custom", "db", no_owner=True)
    plain = backend.client_argv("plain", "db")
    assert plain[0] == "psql" and "--single-transaction" in plain and "ON_ERROR_STOP=1" in plain and plain[-2:] == ["-f", "-"]


def test_client_env_carries_the_password_not_argv():
    params = dict(login_unix_socket="", login_host="db", login_port=5433, login_user="u", login_password="s3cret",
                  connect_timeout=5, ssl_mode="require", ca_cert=None)
    env = backend.client_env(params, "app")
    assert env["PGPASSWORD"] == "s3cret" and env["PGHOST"] == "db" and env["PGPORT"] == "5433" and "PGSSLROOTCERT" not in env


def test_stderr_tail_is_scrubbed_and_short():
    tail = backend.StderrTail()
    for i in range(5000):
        tail.add(b"line %d\n" % i)
    tail.add(b"password authentication failed: hunter2\n")
    text = tail.text(dict(login_password="hunter2"))
    assert "hunter2" not in text and "********" in text and "line 4999" in text and "line 10 " not in text


def test_check_expect():
    counts = {"public.blog_blogcomment": 3, "public.pages_pagevisit": 10, "audit.pages_pagevisit": 1}
    assert backend.check_expect(counts, {"blog_blogcomment": 3, "public.pages_pagevisit": 10}) == []
    problems = backend.check_expect(counts, {"blog_blogcomment": 4, "nope": 0, "pages_pagevisit": 1})
    assert problems == ["table public.blog_blogcomment has 3 rows, expected at least 4", "table nope is missing",
                        "table pages_pagevisit is ambiguous (public.pages_pagevisit, audit.pages_pagevisit): name its schema"]


def test_compare_counts():
    assert backend.compare_counts({"a.t": 1, "a.u": 2}, {"a.t": 1, "a.u": 3, "a.v": 0}) == [
        dict(table="a.u", restored=2, source=3), dict(table="a.v", restored=None, source=0)]


def backup(**extra):
    return dict(dict(key="p/db_20250101T000000Z.dump.zst", format="custom", compression="zstd", size=10,
                     started=datetime.datetime(2025, 1, 1, tzinfo=datetime.timezone.utc)), **extra)


def test_check_manifest():
    good = dict(key="p/db_20250101T000000Z.dump.zst", format="custom", compression="zstd", size=10, sha256="a" * 64)
    backend.check_manifest(backup(), good)
    for bad, stage, words in [(dict(good, size=11), "checksum", "truncated"), (dict(good, sha256="x"), "reading the manifest", "sha256"),
                              (dict(good, format="plain"), "reading the manifest", "format"),
                              (dict(good, key="p/other"), "reading the manifest", "describes")]:
        with pytest.raises(backend.RestoreError, match=words) as failure:
            backend.check_manifest(backup(), bad)
        assert failure.value.stage == stage
