"""webstack.ops.s3_backup against the real PostgreSQL and SeaweedFS: what lands in S3 restores; failures leave nothing."""

from __future__ import annotations

import datetime
import gzip
import hashlib
import json
import os
import stat
import subprocess
import sys
import uuid
from concurrent.futures import ThreadPoolExecutor

import boto3
import pytest
import zstandard
from ansible_collections.webstack.ops.plugins.module_utils import _backup_catalog as catalog
from ansible_collections.webstack.ops.plugins.module_utils import _s3_backup as backend
from ansible_run import run_module, run_module_full

ROWS = 20000
# ~30 MB of random text: a dump that takes several parts even uncompressed
RANDOM_ROWS = "CREATE TABLE blob AS SELECT g, repeat(md5(g::text || random()::text), 8) AS b FROM generate_series(1, 100000) g"


@pytest.fixture
def site_db(pg_db):
    """pg_db with two of the guide's tables and ROWS text-heavy rows."""
    pg_db.execute("CREATE TABLE pages_pagevisit (id bigserial PRIMARY KEY, path text, user_agent text, created_at timestamptz DEFAULT now());"
                  "CREATE TABLE blog_blogcomment (id bigserial PRIMARY KEY, body text);"
                  "INSERT INTO pages_pagevisit (path, user_agent) SELECT '/blog/post-' || g, md5(g::text) || repeat(' agent', 20) "
                  "FROM generate_series(1, %s) g;"
                  "INSERT INTO blog_blogcomment (body) SELECT 'comment ' || g FROM generate_series(1, 500) g", (ROWS,))
    return pg_db


def objects(client, bucket):
    return sorted(item["Key"] for item in client.list_objects_v2(Bucket=bucket).get("Contents", []))


def nothing_left(client, bucket):
    return objects(client, bucket) == [] and client.list_multipart_uploads(Bucket=bucket).get("Uploads", []) == []


def fetch(client, bucket, key):
    return client.get_object(Bucket=bucket, Key=key)["Body"].read()


def restore_by_hand(pg_server, data, fmt):
    """Restore a dump with the PostgreSQL tools into a new database; its row counts."""
    name = "restored_%s" % uuid.uuid4().hex[:8]
    env = dict(os.environ, PGPASSWORD=pg_server.password)
    conn = ["-h", pg_server.host, "-p", str(pg_server.port), "-U", pg_server.user]
    subprocess.run(["createdb", *conn, name], env=env, check=True)
    try:
        tool = ["pg_restore", "--no-owner", "-d", name] if fmt == "custom" else ["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", name]
        subprocess.run([tool[0], *conn, *tool[1:]], input=data, env=env, check=True, capture_output=True)
        out = subprocess.run(["psql", "-X", "-At", *conn, "-d", name, "-c",
                              "SELECT (SELECT count(*) FROM pages_pagevisit), (SELECT count(*) FROM blog_blogcomment)"],
                             env=env, check=True, capture_output=True, text=True).stdout
        return tuple(int(n) for n in out.strip().split("|"))
    finally:
        subprocess.run(["dropdb", *conn, name], env=env, check=True)


@pytest.mark.parametrize(("fmt", "compression"), [("custom", "zstd"), ("plain", "gzip"), ("custom", "none"), ("plain", "zstd")])
def test_backup_lands_in_s3_with_its_manifest_and_restores(site_db, s3, pg_server, fmt, compression):
    client, options = s3
    result = run_module("webstack.ops.s3_backup", site_db.module_args(format=fmt, compression=compression, **options))
    assert result["changed"] is True, result.get("msg") or result.get("module_stderr")
    key = result["key"]
    assert key.startswith("postgres/%s_" % site_db.name)
    assert objects(client, options["bucket"]) == [key, key + ".manifest.json"]

    data = fetch(client, options["bucket"], key)
    manifest = json.loads(fetch(client, options["bucket"], key + ".manifest.json"))
    assert manifest["sha256"] == hashlib.sha256(data).hexdigest() == result["sha256"]
    assert manifest["size"] == len(data) == result["size"]
    assert (manifest["database"], manifest["format"], manifest["compression"]) == (site_db.name, fmt, compression)
    assert manifest["server_version"].startswith("15")
    head = client.head_object(Bucket=options["bucket"], Key=key)
    assert head["Metadata"]["database"] == site_db.name

    raw = {"zstd": lambda b: zstandard.ZstdDecompressor().stream_reader(b).read(), "gzip": gzip.decompress, "none": lambda b: b}[compression](data)
    assert len(raw) == manifest["raw_size"]
    assert restore_by_hand(pg_server, raw, fmt) == (ROWS, 500)


def test_check_mode_uploads_nothing_and_names_the_key(site_db, s3):
    client, options = s3
    result = run_module("webstack.ops.s3_backup", site_db.module_args(**options), check=True)
    assert result["changed"] is True
    assert result["key"].endswith(".sql.zst")  # plain SQL through zstd by default
    assert nothing_left(client, options["bucket"])


def _old_backup(client, bucket, name, days_ago, manifest=True):
    started = catalog.utcnow() - datetime.timedelta(days=days_ago)
    key = catalog.backup_key("postgres/", name, "custom", "zstd", started)
    client.put_object(Bucket=bucket, Key=key, Body=b"old dump")
    if manifest:
        client.put_object(Bucket=bucket, Key=catalog.manifest_key(key), Body=catalog.manifest_body(key=key))
    return key


def test_prune_deletes_old_backups_but_keeps_the_minimum(site_db, s3):
    client, options = s3
    bucket = options["bucket"]
    old_good = [_old_backup(client, bucket, site_db.name, days) for days in (40, 50, 60)]
    old_broken = _old_backup(client, bucket, site_db.name, 45, manifest=False)
    recent = _old_backup(client, bucket, site_db.name, 2)
    other_series = _old_backup(client, bucket, "other", 90)
    args = site_db.module_args(prune=True, keep_days=30, keep_min=3, **options)

    planned = run_module("webstack.ops.s3_backup", args, check=True)
    # keep_min 3 good ones: the new backup, the recent one, and the newest old one (40 days)
    assert sorted(planned["pruned"]) == sorted([old_good[1], old_good[2], old_broken])
    assert len(objects(client, bucket)) == 11  # check mode deleted nothing

    result = run_module("webstack.ops.s3_backup", args)
    assert sorted(result["pruned"]) == sorted(planned["pruned"])
    left = objects(client, bucket)
    for key in (result["key"], recent, old_good[0], other_series):
        assert key in left and key + ".manifest.json" in left
    for key in planned["pruned"]:
        assert key not in left and key + ".manifest.json" not in left


BAD_OPTIONS = [
    ("keep_days", 0, "keep_days must be 1 or more"),
    ("keep_days", -5, "keep_days must be 1 or more"),
    ("keep_min", 0, "keep_min must be 1 or more"),
    ("compression_level", 30, "out of range"),
    ("part_size_mb", 1, "part_size_mb must be between"),
]


@pytest.mark.parametrize(("option", "value", "message"), BAD_OPTIONS)
def test_bad_options_are_refused_before_anything_runs(site_db, s3, option, value, message):
    client, options = s3
    old = _old_backup(client, options["bucket"], site_db.name, 400)
    result = run_module("webstack.ops.s3_backup", site_db.module_args(prune=True, **{option: value}, **options))
    assert result["failed"] and message in result["msg"]
    assert objects(client, options["bucket"]) == [old, old + ".manifest.json"]


def _killing_pg_dump(tmp_path, limit):
    """A pg_dump that passes `limit` bytes of a real dump through, then dies by SIGKILL (as if killed mid-dump)."""
    script = tmp_path / "pg_dump"
    script.write_text(f"""#!{sys.executable}
import os, signal, subprocess, sys
if "--version" in sys.argv:
    os.execvp("pg_dump", ["pg_dump", "--version"])
real = subprocess.Popen(["pg_dump", *sys.argv[1:]], stdout=subprocess.PIPE)
sent = 0
while sent < {limit}:
    data = real.stdout.read(65536)
    if not data:
        break
    sys.stdout.buffer.write(data)
    sys.stdout.buffer.flush()
    sent += len(data)
real.kill()
os.kill(os.getpid(), signal.SIGKILL)
""")
    script.chmod(script.stat().st_mode | stat.S_IEXEC)
    return script


def test_pg_dump_killed_mid_dump_leaves_nothing_and_prunes_nothing(pg_db, s3, tmp_path):
    client, options = s3
    # incompressible rows, so that parts are uploaded before the kill
    pg_db.execute(RANDOM_ROWS)
    old = _old_backup(client, options["bucket"], pg_db.name, 400)
    args = pg_db.module_args(pg_dump_path=str(_killing_pg_dump(tmp_path, 14 << 20)), compression="none", format="plain",
                             part_size_mb=5, prune=True, keep_min=1, keep_days=1, **options)
    result = run_module("webstack.ops.s3_backup", args)
    assert result["failed"]
    assert "pg_dump failed (exit status -9)" in result["msg"] and "nothing was left in S3" in result["msg"]
    assert objects(client, options["bucket"]) == [old, old + ".manifest.json"]  # no new object, and nothing pruned
    assert client.list_multipart_uploads(Bucket=options["bucket"]).get("Uploads", []) == []


class FailingCompressor:
    """A compressor that breaks after `after` calls, like a compressor running out of memory."""

    def __init__(self, after):
        self.calls, self.after = 0, after

    def compress(self, data):
        self.calls += 1
        if self.calls > self.after:
            raise MemoryError("compressor out of memory (injected)")
        return data

    def flush(self):
        return b""


def test_a_failing_compressor_aborts_the_upload_and_stops_pg_dump(site_db, s3, pg_server):
    client, options = s3
    env = {"PGPASSWORD": pg_server.password}
    argv = ["pg_dump", "--format=plain", "-h", pg_server.host, "-p", str(pg_server.port), "-U", pg_server.user, "-d", site_db.name]
    source = backend.Runner(env).start(argv)
    key = "postgres/broken.sql"
    with pytest.raises(backend.BackupError, match="compression failed after"):
        backend.run_backup(client, options, bucket=options["bucket"], key=key, source=source,
                           compress=FailingCompressor(after=2), part_size=5 << 20, concurrency=2, extra_args={})
    assert source.proc.poll() is not None  # pg_dump was stopped, not left writing into a closed pipe
    assert nothing_left(client, options["bucket"])


def test_unreachable_s3_wrong_credentials_and_missing_bucket_fail_before_the_dump(site_db, s3, free_port):
    client, options = s3
    cases = [
        (dict(options, endpoint_url="http://127.0.0.1:%d" % free_port), "the S3 server is unreachable"),
        (dict(options, secret_key="wrong-" + options["secret_key"]), "check the credentials"),
        (dict(options, bucket="no-such-bucket-%s" % uuid.uuid4().hex[:8]), "check the bucket name"),
    ]
    for s3_options, message in cases:
        result, run = run_module_full("webstack.ops.s3_backup", site_db.module_args(**s3_options))
        assert result["failed"] and message in result["msg"], result["msg"]
        assert "checking the bucket" in result["msg"]
        assert options["secret_key"] not in run.stdout + run.stderr
    assert nothing_left(client, options["bucket"])


def test_wrong_database_password_names_the_database_and_leaks_nothing(site_db, s3):
    client, options = s3
    result, run = run_module_full("webstack.ops.s3_backup", site_db.module_args(login_password="not-the-password-123", **options))
    assert result["failed"]
    assert "Could not reach PostgreSQL" in result["msg"] and "password authentication failed" in result["msg"]
    assert "not-the-password-123" not in run.stdout + run.stderr
    assert options["secret_key"] not in run.stdout + run.stderr
    assert nothing_left(client, options["bucket"])


def test_s3_server_stopped_during_the_upload(site_db, tmp_path_factory, pg_server):
    """The S3 server dies after the first parts: the task fails naming the upload, and no backup object exists."""
    from harness import S3Server  # noqa: PLC0415 - sandbox/harness is put on sys.path by tests/conftest.py

    site_db.execute(RANDOM_ROWS)
    server = S3Server(tmp_path_factory.mktemp("s3-dying")).start()
    try:
        client = boto3.client("s3", endpoint_url=server.endpoint_url, aws_access_key_id=server.access_key,
                              aws_secret_access_key=server.secret_key, region_name="us-east-1")
        client.create_bucket(Bucket="dying")
        options = dict(bucket="dying", endpoint_url=server.endpoint_url, access_key=server.access_key, secret_key=server.secret_key)

        class StopsServer(backend._NoCompression):
            seen = 0

            def compress(self, data):
                self.seen += len(data)
                if self.seen > (12 << 20) and server.running():
                    server.stop()
                return data

        argv = ["pg_dump", "--format=plain", "-h", pg_server.host, "-p", str(pg_server.port), "-U", pg_server.user, "-d", site_db.name]
        source = backend.Runner({"PGPASSWORD": pg_server.password}).start(argv)
        with pytest.raises(backend.S3Error, match=r"uploading part \d+ of postgres/dying.sql failed") as failure:
            backend.run_backup(client, options, bucket="dying", key="postgres/dying.sql", source=source,
                               compress=StopsServer(), part_size=5 << 20, concurrency=2, extra_args={})
        # the server cannot be asked to drop the parts it got: the message says so and how
        assert "could not be aborted" in str(failure.value)
        assert source.proc.poll() is not None
        server.start()
        assert objects(client, "dying") == []  # no backup object: it only exists once completed
    finally:
        server.stop()


def test_stale_incomplete_uploads_of_the_series_are_aborted(site_db, s3):
    client, options = s3
    bucket = options["bucket"]
    stale_key = "postgres/%s_20260101T000000Z.dump.zst" % site_db.name
    upload_id = client.create_multipart_upload(Bucket=bucket, Key=stale_key)["UploadId"]
    other = client.create_multipart_upload(Bucket=bucket, Key="elsewhere/x.dump")["UploadId"]

    recent_only = run_module("webstack.ops.s3_backup", site_db.module_args(**options), check=True)
    assert recent_only["aborted_uploads"] == []  # started seconds ago: may be a backup running right now

    planned = run_module("webstack.ops.s3_backup", site_db.module_args(abort_stale_uploads_hours=0, **options), check=True)
    assert planned["aborted_uploads"] == [stale_key]
    assert len(client.list_multipart_uploads(Bucket=bucket)["Uploads"]) == 2  # check mode aborted nothing

    result = run_module("webstack.ops.s3_backup", site_db.module_args(abort_stale_uploads_hours=0, **options))
    assert result["aborted_uploads"] == [stale_key]
    left = [(u["Key"], u["UploadId"]) for u in client.list_multipart_uploads(Bucket=bucket).get("Uploads", [])]
    assert left == [("elsewhere/x.dump", other)] and upload_id not in dict(left).values()


def test_prune_over_2500_backups_deletes_in_batches_and_keeps_the_minimum(site_db, s3):
    """Retention past S3's 1,000-object pages and 1,000-key delete batches: every old backup goes, the newest stay."""
    client, options = s3
    bucket = options["bucket"]
    with ThreadPoolExecutor(max_workers=24) as pool:
        old = list(pool.map(lambda hours: _old_backup(client, bucket, site_db.name, 40 + hours / 24), range(2500)))
    result = run_module("webstack.ops.s3_backup", site_db.module_args(prune=True, keep_days=30, keep_min=7, **options))
    assert result["changed"] is True, result.get("msg")
    # the new backup and the six newest old ones are the seven kept; 2,494 backups (4,988 objects) deleted
    assert len(result["pruned"]) == 2494 and result["kept"] == 7
    left = objects(client, bucket)
    assert sorted(left) == sorted([result["key"], result["key"] + ".manifest.json"]
                                  + [k for key in old[:6] for k in (key, key + ".manifest.json")])
