"""Fixtures for integration tests: a fresh database per test on the session's PostgreSQL."""

from __future__ import annotations

import json
import shutil
import socket
import sys
import tempfile
import uuid
from pathlib import Path

import boto3
import docker
import psycopg2
import pytest
import redis

sys.path.insert(0, str(Path(__file__).resolve().parent))  # ansible_run

from ansible_run import stackctl  # noqa: E402


class Database:
    """One scratch database on the test server, with the login options modules take."""

    def __init__(self, server, name):
        self.server = server
        self.name = name
        self.conninfo = dict(host=server.host, port=server.port, user=server.user, password=server.password, dbname=name)

    def module_args(self, **overrides):
        args = dict(login_host=self.server.host, login_port=self.server.port, login_user=self.server.user,
                    login_password=self.server.password, login_db=self.name)
        args.update(overrides)
        return args

    def execute(self, statement, params=None):
        """Run a statement in its own session and flush its statistics before returning.

        pg_stat_force_next_flush() makes the backend write its pending table
        statistics before it reports ready, so the next session sees them.
        """
        conn = psycopg2.connect(**self.conninfo)
        conn.autocommit = True
        try:
            with conn.cursor() as cur:
                cur.execute(statement, params)
                rows = cur.fetchall() if cur.description else None
                cur.execute("SELECT pg_stat_force_next_flush()")
            return rows
        finally:
            conn.close()

    def relation_size(self, table):
        return self.execute("SELECT pg_relation_size(%s)", (table,))[0][0]


@pytest.fixture
def pg_db(pg_server):
    """A new empty database, dropped after the test."""
    name = "test_%s" % uuid.uuid4().hex[:12]
    admin = Database(pg_server, "postgres")
    admin.execute('CREATE DATABASE "%s"' % name)
    yield Database(pg_server, name)
    admin.execute('DROP DATABASE "%s" WITH (FORCE)' % name)


@pytest.fixture
def s3(s3_server):
    """A new bucket per test on the session's SeaweedFS: (boto3 client, the S3 modules' options)."""
    client = boto3.client("s3", endpoint_url=s3_server.endpoint_url, aws_access_key_id=s3_server.access_key,
                          aws_secret_access_key=s3_server.secret_key, region_name="us-east-1")
    bucket = "test-%s" % uuid.uuid4().hex[:12]
    client.create_bucket(Bucket=bucket)
    options = dict(bucket=bucket, endpoint_url=s3_server.endpoint_url, access_key=s3_server.access_key, secret_key=s3_server.secret_key)
    return client, options


@pytest.fixture
def free_port():
    """A loopback port nothing listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class RedisDb:
    """One database number of the session's Redis, with a client on it and the options the Redis modules take."""

    def __init__(self, server, number):
        self.server = server
        self.number = number
        self.client = redis.Redis(host=server.host, port=server.port, password=server.password, db=number)

    def module_args(self, **overrides):
        args = dict(login_host=self.server.host, login_port=self.server.port, login_password=self.server.password,
                    db=self.number)
        args.update(overrides)
        return args


def empty_redis_db(server, avoid=()):
    """A database of the session's Redis that holds no key, from the top (tests of other services use 0 and 1)."""
    admin = redis.Redis(host=server.host, port=server.port, password=server.password)
    try:
        used = {int(name[2:]) for name in admin.info("keyspace")}
    finally:
        admin.close()
    number = next(n for n in range(15, 1, -1) if n not in used and n not in avoid)
    return RedisDb(server, number)


@pytest.fixture
def redis_db(redis_server):
    """An empty database on the session's Redis, flushed after the test (that database only)."""
    db = empty_redis_db(redis_server)
    yield db
    db.client.flushdb()
    db.client.close()


@pytest.fixture
def other_redis_db(redis_server, redis_db):
    """A second empty database, to show that work on redis_db leaves others alone."""
    db = empty_redis_db(redis_server, avoid=(redis_db.number,))
    yield db
    db.client.flushdb()
    db.client.close()


@pytest.fixture(scope="session")
def docker_client(docker_engine):
    """A Docker SDK client of the session's test engine."""
    client = docker.DockerClient(base_url=docker_engine.base_url, timeout=600)
    yield client
    client.close()


@pytest.fixture(scope="session")
def base_image(docker_client):
    """The sandbox's small Debian base image (built by debootstrap once, then cached), for test containers."""
    import containers  # noqa: PLC0415 - only the Docker tests need the image builder

    if shutil.which("debootstrap") is None and not any(containers.DEFAULT_CACHE_DIR.glob("base-bookworm-*.tar")):
        pytest.skip("no debootstrap and no cached base rootfs")
    return containers.ensure_base_image(docker_client, log=print)


@pytest.fixture(scope="session")
def sandbox():
    """The whole stack, once per session: (state dir, state.json). Outside /root and pytest's temp: postgres must enter it.

    Every test that stages a fault on it undoes the fault before it ends: the next test finds the stack healthy.
    """
    state_dir = Path(tempfile.mkdtemp(prefix="webstack-test-sandbox-", dir="/var/tmp"))
    state_dir.chmod(0o711)
    try:
        stackctl("up", "sandbox", state_dir=state_dir)
        yield state_dir, json.loads((state_dir / "state.json").read_text())
    finally:
        stackctl("down", state_dir=state_dir)
        shutil.rmtree(state_dir, ignore_errors=True)
