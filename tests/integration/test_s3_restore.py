"""webstack.ops.s3_restore against the real PostgreSQL and SeaweedFS, run through ansible-playbook.

Backups are made here by hand (pg_dump, zstandard/zlib, boto3, the catalog's manifest), as s3_backup writes them,
and the guide's legacy files with `pg_dump | gzip`.
"""

from __future__ import annotations

import datetime
import hashlib
import io
import os
import subprocess
import sys
import time
import uuid
import zlib
from pathlib import Path

import psycopg2
import pytest
import zstandard
from ansible_run import run_module_full
from psycopg2 import sql

COLLECTIONS = Path(__file__).resolve().parents[2] / "collections"  # the checkout as ansible_collections.webstack.ops
if str(COLLECTIONS) not in sys.path:
    sys.path.insert(0, str(COLLECTIONS))

from ansible_collections.webstack.ops.plugins.module_utils import _backup_catalog as catalog  # noqa: E402
from ansible_collections.webstack.ops.plugins.module_utils import _s3_restore as backend  # noqa: E402

MODULE = "webstack.ops.s3_restore"
MARKER = "webstack.ops scratch restore"


# ---------------------------------------------------------------------------------------------------------
# Servers, databases, backups


def seed(db, comments=300, visits=2000):
    """The guide's tables, an index, a foreign key, a view and a second schema."""
    db.execute(
        "CREATE TABLE blog_blogcomment (id bigserial PRIMARY KEY, body text, created_at timestamptz DEFAULT now());"
        "CREATE TABLE pages_pagevisit (id bigserial PRIMARY KEY, path text, comment_id bigint REFERENCES blog_blogcomment,"
        " created_at timestamptz DEFAULT now());"
        "CREATE INDEX ON pages_pagevisit (path);"
        "CREATE VIEW recent_visits AS SELECT * FROM pages_pagevisit ORDER BY id DESC LIMIT 10;"
        "CREATE SCHEMA audit; CREATE TABLE audit.events (id int, what text);"
        "INSERT INTO audit.events SELECT g, 'event ' || g FROM generate_series(1, 7) g;")
    add_rows(db, comments, visits)


def add_rows(db, comments, visits):
    db.execute("INSERT INTO blog_blogcomment (body) SELECT 'comment ' || g || ' it''s \\ \"quoted\"' FROM generate_series(1, %s) g;"
               "INSERT INTO pages_pagevisit (path, comment_id) SELECT '/blog/post-' || g, "
               "(SELECT min(id) FROM blog_blogcomment) FROM generate_series(1, %s) g", (comments, visits))


@pytest.fixture
def source(pg_db):
    seed(pg_db)
    return pg_db


def counts_of(server, dbname):
    """{schema.table: rows} of a database, or None when it does not exist."""
    admin = psycopg2.connect(**server.conninfo())
    try:
        with admin.cursor() as cur:
            cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", (dbname,))
            if cur.fetchone() is None:
                return None
    finally:
        admin.close()
    conn = psycopg2.connect(**server.conninfo(dbname))
    try:
        return backend.count_rows(conn)
    finally:
        conn.close()


def databases(server):
    conn = psycopg2.connect(**server.conninfo())
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT datname, shobj_description(oid, 'pg_database') FROM pg_database")
            return dict(cur.fetchall())
    finally:
        conn.close()


@pytest.fixture
def target(pg_server):
    """A database name for the restore; it and anything named after it are dropped at the end."""
    name = "restored_%s" % uuid.uuid4().hex[:10]
    yield name
    conn = psycopg2.connect(**pg_server.conninfo())
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            for other in databases(pg_server):
                if other.startswith(name):
                    cur.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(other)))
    finally:
        conn.close()


def pg_dump(db, fmt):
    argv = ["pg_dump", "-h", db.server.host, "-p", str(db.server.port), "-U", db.server.user, "-d", db.name]
    argv += ["-Fc", "-Z0"] if fmt == "custom" else ["-Fp"]
    return subprocess.run(argv, env=dict(os.environ, PGPASSWORD=db.server.password), check=True, capture_output=True).stdout


def compress(data, compression):
    if compression == "zstd":
        return zstandard.ZstdCompressor(level=3, write_checksum=True).compress(data)
    if compression == "gzip":
        obj = zlib.compressobj(6, zlib.DEFLATED, 31)
        return obj.compress(data) + obj.flush()
    return data


def make_backup(client, bucket, db, *, fmt="custom", compression="zstd", name=None, started=None, prefix="postgres/", manifest=True):
    """A backup as s3_backup writes it: the object, then its manifest. Returns the key."""
    started = started or datetime.datetime.now(datetime.timezone.utc)
    raw = pg_dump(db, fmt)
    body = compress(raw, compression)
    key = catalog.backup_key(prefix, name or db.name, fmt, compression, started)
    client.put_object(Bucket=bucket, Key=key, Body=body)
    if manifest:
        client.put_object(Bucket=bucket, Key=catalog.manifest_key(key), Body=catalog.manifest_body(
            database=db.name, name=name or db.name, key=key, server_version="15", pg_dump_version="15", format=fmt,
            compression=compression, compression_level=None if compression == "none" else 3, size=len(body), raw_size=len(raw),
            sha256=hashlib.sha256(body).hexdigest(), duration_s=0.1, started_at=started.isoformat(),
            finished_at=started.isoformat(), tool="test"))
    return key


def make_legacy_backup(client, bucket, db, started, prefix="postgres/"):
    """The guide's `pg_dump | gzip > backup_YYYYmmdd_HHMMSS.sql.gz`, uploaded. Returns the key."""
    env = dict(os.environ, PGPASSWORD=db.server.password)
    dump = subprocess.Popen(["pg_dump", "-h", db.server.host, "-p", str(db.server.port), "-U", db.server.user, db.name],
                            stdout=subprocess.PIPE, env=env)
    gz = subprocess.run(["gzip"], stdin=dump.stdout, capture_output=True, check=True)
    dump.stdout.close()
    assert dump.wait() == 0
    key = "%sbackup_%s.sql.gz" % (prefix, started.strftime("%Y%m%d_%H%M%S"))
    client.put_object(Bucket=bucket, Key=key, Body=gz.stdout)
    return key


def ago(**delta):
    return datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0) - datetime.timedelta(**delta)


def restore(db, options, target, check=False, **args):
    """Run the module (login_db postgres); (result, run). No secret may appear anywhere in what ansible printed."""
    module_args = db.module_args(login_db="postgres", target_db=target, **options)
    module_args.update(args)
    result, run = run_module_full(MODULE, module_args, check=check)
    for secret in (db.server.password, options.get("secret_key")):
        if secret:
            assert secret not in run.output
            assert secret not in repr(result)
    return result, run


def user_counts(db):
    return counts_of(db.server, db.name)


# ---------------------------------------------------------------------------------------------------------
# Restores that work


def test_latest_backup_is_restored_with_equal_counts(source, s3, target):
    client, options = s3
    make_backup(client, options["bucket"], source, started=ago(days=1))
    add_rows(source, 5, 50)
    newest = make_backup(client, options["bucket"], source, started=ago(hours=1))
    expected = user_counts(source)

    result, _run = restore(source, options, target, count_rows=True)

    assert result["changed"] is True, result
    assert result["key"] == newest and result["format"] == "custom" and result["compression"] == "zstd"
    assert result["checksum_verified"] is True
    manifest = catalog.read_manifest(client, options["bucket"], newest)
    assert result["sha256"] == manifest["sha256"] and result["size"] == manifest["size"]
    assert result["created"] is True and result["replaced"] is False and result["dropped"] is False
    assert result["row_counts"] == expected == counts_of(source.server, target)
    assert expected["public.pages_pagevisit"] == 2050 and expected["audit.events"] == 7
    assert result["duration_s"] >= 0 and result["raw_size"] > result["size"]
    assert databases(source.server)[target] is None  # not a scratch database


def test_named_backup_by_key_and_by_name(source, s3, target):
    client, options = s3
    older = make_backup(client, options["bucket"], source, started=ago(days=2))
    older_counts = user_counts(source)
    add_rows(source, 1, 1)
    make_backup(client, options["bucket"], source, name="other", started=ago(hours=1))

    result, _run = restore(source, options, target, key=older)
    assert result["key"] == older
    assert counts_of(source.server, target) == older_counts
    assert result["row_counts"] == {} and "count rows of every table" not in result["actions"]  # counting is opt-in

    result, _run = restore(source, options, target + "_b", name=source.name)
    assert result["key"] == older  # the newest of that name, not the newer "other"


@pytest.mark.parametrize("fmt", ["custom", "plain"])
@pytest.mark.parametrize("compression", ["zstd", "gzip", "none"])
def test_every_format_and_compression(source, s3, target, fmt, compression):
    client, options = s3
    key = make_backup(client, options["bucket"], source, fmt=fmt, compression=compression)

    result, _run = restore(source, options, target)

    assert result["key"] == key and result["format"] == fmt and result["compression"] == compression
    assert result["tool"] == ("pg_restore" if fmt == "custom" else "psql")
    assert result["checksum_verified"] is True
    assert counts_of(source.server, target) == user_counts(source)


def test_legacy_gzip_file_of_the_guide(source, s3, target):
    client, options = s3
    key = make_legacy_backup(client, options["bucket"], source, ago(hours=3))

    result, _run = restore(source, options, target, name="backup")

    assert result["key"] == key and result["legacy"] is True
    assert result["format"] == "plain" and result["compression"] == "gzip"
    assert result["checksum_verified"] is False and "no SHA-256" in result["checksum_note"]
    assert counts_of(source.server, target) == user_counts(source)


def test_newest_backup_without_manifest_is_skipped(source, s3, target):
    client, options = s3
    good = make_backup(client, options["bucket"], source, started=ago(days=1))
    incomplete = make_backup(client, options["bucket"], source, started=ago(hours=1), manifest=False)

    result, _run = restore(source, options, target)
    assert result["key"] == good and result["skipped_incomplete"] == [incomplete]

    result, _run = restore(source, options, target + "_b", key=incomplete)
    assert result["failed"] and result["stage"] == "choosing the backup" and "no manifest" in result["msg"]

    result, _run = restore(source, options, target + "_b", key="postgres/notes.txt")
    assert result["failed"] and "not a backup key" in result["msg"]
    result, _run = restore(source, options, target + "_b", key=catalog.backup_key("postgres/", "gone", "custom", "zstd", ago(days=9)))
    assert result["failed"] and result["stage"] == "choosing the backup" and "404" in result["msg"]


def test_scratch_is_created_marked_and_dropped_after(source, s3, target):
    client, options = s3
    make_backup(client, options["bucket"], source)

    result, _run = restore(source, options, target, scratch=True, drop_after=True,
                           expect={"blog_blogcomment": 300, "public.pages_pagevisit": 2000})

    assert result["changed"] is True and result["created"] is True and result["dropped"] is True
    assert result["row_counts"]["public.pages_pagevisit"] == 2000
    assert target not in databases(source.server)


def test_scratch_database_of_ours_is_recreated(source, s3, target):
    client, options = s3
    make_backup(client, options["bucket"], source)
    result, _run = restore(source, options, target, scratch=True)
    assert databases(source.server)[target] == MARKER
    conn = psycopg2.connect(**source.server.conninfo(target))
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute("CREATE TABLE leftover (id int)")
    conn.close()

    result, _run = restore(source, options, target, scratch=True)

    assert result["created"] is True and result["replaced"] is True
    assert "public.leftover" not in counts_of(source.server, target)
    assert databases(source.server)[target] == MARKER


def test_drop_after_needs_scratch(source, s3, target):
    _client, options = s3
    result, _run = restore(source, options, target, drop_after=True)
    assert result["failed"] and "scratch" in result["msg"]


# ---------------------------------------------------------------------------------------------------------
# Existing targets


@pytest.fixture
def existing(pg_server, target):
    """target exists with data of its own (a table `precious`), owned by a role of its own."""
    conn = psycopg2.connect(**pg_server.conninfo())
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(target)))
        cur.execute(sql.SQL("COMMENT ON DATABASE {} IS 'production'").format(sql.Identifier(target)))
    conn.close()
    conn = psycopg2.connect(**pg_server.conninfo(target))
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute("CREATE TABLE precious (id int); INSERT INTO precious SELECT generate_series(1, 42)")
    conn.close()
    return target


@pytest.mark.parametrize("scratch", [False, True])
def test_existing_database_is_refused_without_force(source, s3, existing, scratch):
    client, options = s3
    make_backup(client, options["bucket"], source)

    result, _run = restore(source, options, existing, scratch=scratch)

    assert result["failed"] and result["stage"] == "target" and "force: true" in result["msg"]
    assert counts_of(source.server, existing) == {"public.precious": 42}
    result, _run = restore(source, options, existing, check=True, scratch=scratch)
    assert result["failed"] and "force: true" in result["msg"]


def test_force_replaces_the_database_and_the_old_data_is_gone(source, s3, existing):
    client, options = s3
    make_backup(client, options["bucket"], source)

    result, _run = restore(source, options, existing, force=True, expect={"pages_pagevisit": 1}, compare_with_source=True)

    assert result["changed"] is True and result["replaced"] is True and result["created"] is False, result
    assert result["restored_into"] != existing and result["differences"] == []
    assert counts_of(source.server, existing) == user_counts(source)
    left = databases(source.server)
    assert left[existing] == "production"  # the comment is kept
    assert [name for name in left if name.startswith(existing)] == [existing]  # no temporary or old database left


def test_force_over_a_database_with_open_sessions(source, s3, existing):
    client, options = s3
    make_backup(client, options["bucket"], source)
    idle = psycopg2.connect(**source.server.conninfo(existing))  # an app still connected

    try:
        result, _run = restore(source, options, existing, force=True)
    finally:
        idle.close()

    assert result.get("failed") is not True, result["msg"]
    assert counts_of(source.server, existing) == user_counts(source)


# ---------------------------------------------------------------------------------------------------------
# Corrupt backups roll back


def corrupt(client, bucket, key, where=0.5):
    """Flip one bit of the object (its manifest stays)."""
    data = bytearray(client.get_object(Bucket=bucket, Key=key)["Body"].read())
    data[int(len(data) * where)] ^= 0x01
    client.put_object(Bucket=bucket, Key=key, Body=bytes(data))


@pytest.mark.parametrize(("fmt", "compression"), [("custom", "zstd"), ("plain", "gzip"), ("plain", "none"), ("custom", "none")])
def test_corrupt_object_fails_on_checksum_and_restores_nothing(source, s3, target, fmt, compression):
    client, options = s3
    add_rows(source, 0, 30000)  # a dump well over the held-back megabyte
    key = make_backup(client, options["bucket"], source, fmt=fmt, compression=compression)
    corrupt(client, options["bucket"], key)

    result, _run = restore(source, options, target)

    assert result["failed"] and result["stage"] == "checksum", result["msg"]
    assert "SHA-256" in result["msg"] and "was dropped" in result["msg"]
    assert result["changed"] is False and result["created"] is False
    assert target not in databases(source.server)


def test_corrupt_object_leaves_a_forced_target_untouched(source, s3, existing):
    client, options = s3
    key = make_backup(client, options["bucket"], source, fmt="plain", compression="none")
    corrupt(client, options["bucket"], key, where=0.9)

    result, _run = restore(source, options, existing, force=True)

    assert result["failed"] and result["stage"] == "checksum"
    assert counts_of(source.server, existing) == {"public.precious": 42}
    assert [name for name in databases(source.server) if name.startswith(existing)] == [existing]


@pytest.mark.parametrize("fmt", ["plain", "custom"])
def test_a_checksum_mismatch_rolls_the_client_back(source, pg_server, fmt, target):
    """The backend on its own: the client got all but the held-back tail, then the checksum fails; nothing is committed."""
    add_rows(source, 0, 40000)
    data = pg_dump(source, fmt)
    assert len(data) > 2 * backend.HOLD_BACK
    conn = psycopg2.connect(**pg_server.conninfo())
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(target)))
    params = source.module_args(login_db="postgres", login_unix_socket="", connect_timeout=10, ssl_mode="prefer", ca_cert=None)
    app_name = "s3_restore test %s" % uuid.uuid4().hex[:6]
    argv = backend.client_argv(fmt, target)
    client = backend.LocalClient(argv, dict(os.environ, **backend.client_env(params, app_name)))
    backup = dict(key="x", compression="none", manifest=dict(sha256="0" * 64))
    aborted = []

    def abort():
        # The client has worked through what it got, inside its open transaction: it holds locks on the tables it made.
        deadline = time.monotonic() + 30
        while True:
            with conn.cursor() as cur:
                cur.execute("SELECT count(*) FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "
                            "WHERE a.application_name = %s AND a.xact_start IS NOT NULL AND l.relation IS NOT NULL "
                            "AND l.mode = 'AccessExclusiveLock'", (app_name,))
                locks = cur.fetchone()[0]
            if locks >= 5 or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        aborted.append(locks)
        client.kill()
        backend.terminate_sessions(conn, "application_name", app_name)
        client.close()

    with pytest.raises(backend.RestoreError) as failure:
        backend.stream_restore(io.BytesIO(data), backup, client, abort, params)
    assert failure.value.stage == "checksum" and len(aborted) == 1 and aborted[0] >= 5
    restored = psycopg2.connect(**pg_server.conninfo(target))
    try:
        assert backend.count_rows(restored) == {}
    finally:
        restored.close()
        conn.close()


def test_truncated_object_fails_on_decompression_or_checksum(source, s3, target):
    client, options = s3
    key = make_backup(client, options["bucket"], source, fmt="plain", compression="gzip", manifest=False, prefix="")
    legacy = "backup_%s.sql.gz" % ago(hours=1).strftime("%Y%m%d_%H%M%S")
    data = client.get_object(Bucket=options["bucket"], Key=key)["Body"].read()
    client.put_object(Bucket=options["bucket"], Key=legacy, Body=data[: len(data) // 2])

    result, _run = restore(source, options, target, key=legacy)

    assert result["failed"] and result["stage"] == "decompress" and "truncated" in result["msg"], result["msg"]
    assert target not in databases(source.server)


# ---------------------------------------------------------------------------------------------------------
# Failures named clearly


def test_wrong_s3_credentials(source, s3, target):
    _client, options = s3
    result, run = restore(source, dict(options, secret_key="not-the-secret-" + uuid.uuid4().hex), target)
    assert result["failed"] and "credentials were refused" in result["msg"] and result["stage"] == "listing backups"
    assert "not-the-secret" not in run.output


def test_missing_bucket(source, s3, target):
    _client, options = s3
    result, _run = restore(source, dict(options, bucket="no-such-bucket-" + uuid.uuid4().hex[:8]), target)
    assert result["failed"] and "bucket does not exist" in result["msg"]


def test_unreachable_s3_server(source, s3, target, free_port):
    _client, options = s3
    result, _run = restore(source, dict(options, endpoint_url="http://127.0.0.1:%d" % free_port), target)
    assert result["failed"] and "unreachable" in result["msg"] and str(free_port) in result["msg"]


def test_empty_bucket_says_no_backup(source, s3, target):
    _client, options = s3
    result, _run = restore(source, options, target)
    assert result["failed"] and "no complete backup" in result["msg"]


def test_wrong_postgres_password(source, s3, target):
    client, options = s3
    make_backup(client, options["bucket"], source)
    module_args = source.module_args(login_db="postgres", target_db=target, login_password="wrong-" + uuid.uuid4().hex, **options)
    result, run = run_module_full(MODULE, module_args)
    assert result["failed"] and "Could not connect" in result["msg"] and "password" in result["msg"]
    assert module_args["login_password"] not in run.output and options["secret_key"] not in run.output
    assert target not in databases(source.server)


def test_expect_names_the_short_or_missing_table(source, s3, target):
    client, options = s3
    make_backup(client, options["bucket"], source)

    result, _run = restore(source, options, target, expect={"blog_blogcomment": 301, "utils_lighthouseresult": 1, "pages_pagevisit": 2000})

    assert result["failed"] and result["stage"] == "expect"
    assert "public.blog_blogcomment has 300 rows, expected at least 301" in result["msg"]
    assert "utils_lighthouseresult is missing" in result["msg"] and "pages_pagevisit has" not in result["msg"]
    assert result["row_counts"]["public.blog_blogcomment"] == 300
    assert target not in databases(source.server)


def test_compare_with_source(source, s3, target):
    client, options = s3
    make_backup(client, options["bucket"], source)

    result, _run = restore(source, options, target, compare_with_source=True, scratch=True, drop_after=True)
    assert result.get("failed") is not True, result.get("msg")
    assert result["differences"] == [] and result["source_db"] == source.name

    add_rows(source, 0, 3)
    source.execute("CREATE TABLE added_later (id int)")
    result, _run = restore(source, options, target, compare_with_source=True)
    assert result["failed"] and result["stage"] == "compare"
    assert result["differences"] == [
        dict(table="public.added_later", restored=None, source=0),
        dict(table="public.pages_pagevisit", restored=2000, source=2003),
    ]
    assert "public.pages_pagevisit: restored 2000, source 2003" in result["msg"]


def test_compare_with_source_of_a_legacy_file_needs_source_db(source, s3, target):
    client, options = s3
    make_legacy_backup(client, options["bucket"], source, ago(hours=1))
    result, _run = restore(source, options, target, compare_with_source=True)
    assert result["failed"] and "source_db" in result["msg"]
    result, _run = restore(source, options, target, compare_with_source=True, source_db=source.name)
    assert result.get("failed") is not True and result["differences"] == []


# ---------------------------------------------------------------------------------------------------------
# Check mode


def test_check_mode_reports_and_changes_nothing(source, s3, target):
    client, options = s3
    key = make_backup(client, options["bucket"], source)

    result, _run = restore(source, options, target, check=True, scratch=True, drop_after=True, compare_with_source=True)

    assert result["changed"] is True and result["key"] == key and result["created"] is True
    assert result["row_counts"] == {} and result["checksum_verified"] is False
    assert any("restore %s" % key in action for action in result["actions"])
    assert target not in databases(source.server)


def test_check_mode_over_an_existing_database_with_force(source, s3, existing):
    client, options = s3
    make_backup(client, options["bucket"], source)

    result, _run = restore(source, options, existing, check=True, force=True)

    assert result["changed"] is True and result["replaced"] is True
    assert any(action.startswith("swap") for action in result["actions"])
    assert counts_of(source.server, existing) == {"public.precious": 42}
    assert [name for name in databases(source.server) if name.startswith(existing)] == [existing]


def test_check_mode_still_fails_on_a_wrong_s3_setup(source, s3, target):
    _client, options = s3
    result, _run = restore(source, dict(options, bucket="no-such-bucket-" + uuid.uuid4().hex[:8]), target, check=True)
    assert result["failed"] and "bucket does not exist" in result["msg"]


# ---------------------------------------------------------------------------------------------------------
# The client inside the sandbox's postgres_db container (Docker engine of the session's own, as the sandbox tests use)


class StackPostgres:
    """The sandbox's containerised PostgreSQL (host networking), shaped like the pg_server fixture."""

    def __init__(self, settings):
        self.host, self.port = "127.0.0.1", settings["ports"]["postgres"]
        self.user, self.password = settings["postgres_user"], settings["passwords"]["postgres"]

    def conninfo(self, dbname="postgres"):
        return dict(host=self.host, port=self.port, user=self.user, password=self.password, dbname=dbname)


class StackDatabase:
    """A database on StackPostgres with what the helpers above use of pg_db."""

    def __init__(self, server, name):
        self.server, self.name = server, name

    def module_args(self, **overrides):
        return dict(dict(login_host=self.server.host, login_port=self.server.port, login_user=self.server.user,
                         login_password=self.server.password, login_db=self.name), **overrides)

    def execute(self, statement, params=None):
        conn = psycopg2.connect(**self.server.conninfo(self.name))
        conn.autocommit = True
        try:
            with conn.cursor() as cur:
                cur.execute(statement, params)
        finally:
            conn.close()


@pytest.fixture(scope="module")
def stack_pg(docker_engine, tmp_path_factory):
    """postgres_db (and redis_cache) of the sandbox on the session's Docker engine: (docker_host, StackPostgres)."""
    import containers  # noqa: PLC0415 - sandbox/, on sys.path through tests/conftest.py
    import docker  # noqa: PLC0415 - only these tests need the SDK

    client = docker.DockerClient(base_url=docker_engine.base_url, timeout=600)
    settings = containers.default_settings(tmp_path_factory.mktemp("restore-stack"))
    try:
        images = {name: image for name, image in containers.ensure_images(client).items() if name in ("base", "postgres", "redis")}
        containers.start_stack(client, settings, images=images)
        yield docker_engine.base_url, StackPostgres(settings)
    finally:
        containers.stop_stack(client, settings["project"])
        client.close()


@pytest.fixture
def stack_source(stack_pg):
    _docker_host, server = stack_pg
    name = "src_%s" % uuid.uuid4().hex[:10]
    StackDatabase(server, "postgres").execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    db = StackDatabase(server, name)
    seed(db)
    yield db
    StackDatabase(server, "postgres").execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))


@pytest.fixture
def stack_target(stack_pg):
    _docker_host, server = stack_pg
    name = "restored_%s" % uuid.uuid4().hex[:10]
    yield name
    for other in databases(server):
        if other.startswith(name):
            StackDatabase(server, "postgres").execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(other)))


@pytest.mark.parametrize("variant", ["custom/zstd", "plain/gzip"])
def test_container_restore(stack_pg, stack_source, s3, stack_target, variant):
    docker_host, server = stack_pg
    client, options = s3
    fmt, compression = variant.split("/")
    make_backup(client, options["bucket"], stack_source, fmt=fmt, compression=compression)

    result, _run = restore(stack_source, options, stack_target, container="postgres_db", docker_host=docker_host,
                           compare_with_source=True)

    assert result.get("failed") is not True, result.get("msg")
    assert result["container"] == "postgres_db" and result["checksum_verified"] is True
    assert counts_of(server, stack_target) == counts_of(server, stack_source.name) == result["row_counts"]


def test_container_corrupt_object_is_rolled_back(stack_pg, stack_source, s3, stack_target):
    _docker_host, server = stack_pg
    client, options = s3
    add_rows(stack_source, 0, 30000)
    key = make_backup(client, options["bucket"], stack_source, fmt="plain", compression="none")
    corrupt(client, options["bucket"], key, where=0.9)

    result, _run = restore(stack_source, options, stack_target, container="postgres_db", docker_host=stack_pg[0])

    assert result["failed"] and result["stage"] == "checksum", result["msg"]
    assert stack_target not in databases(server)


def test_container_failures_are_named(stack_pg, stack_source, s3, stack_target):
    docker_host, _server = stack_pg
    client, options = s3
    make_backup(client, options["bucket"], stack_source)

    result, _run = restore(stack_source, options, stack_target, check=True, container="no_such_container", docker_host=docker_host)
    assert result["failed"] and result["stage"] == "container" and "no container named no_such_container" in result["msg"]

    result, _run = restore(stack_source, options, stack_target, check=True, container="redis_cache", docker_host=docker_host)
    assert result["failed"] and "pg_restore is not installed in container redis_cache" in result["msg"]
