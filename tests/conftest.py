"""Session-wide real servers for the tests, from sandbox/harness: each in a tmp dir, stopped by PID at the end."""

from __future__ import annotations

import shutil
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import TypeVar

import pytest

SANDBOX = Path(__file__).resolve().parent.parent / "sandbox"
sys.path.insert(0, str(SANDBOX))
COLLECTIONS = SANDBOX.parent / "collections"  # the checkout as ansible_collections.webstack.ops (bootstrap links it)
if str(COLLECTIONS) not in sys.path:
    sys.path.insert(0, str(COLLECTIONS))

from harness import (  # noqa: E402
    DockerEngine,
    NginxServer,
    PebbleServer,
    PostgresServer,
    RedisServer,
    S3Server,
    Server,
)


def allow_postgres_in(path: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Let the postgres user enter path: pytest makes its tmp dirs 0700, so add o+x up to pytest-of-<user>.

    pytest resets pytest-of-<user> to 0700 at the start of every session.
    """
    top = tmp_path_factory.getbasetemp().parent
    for directory in [path, *path.parents]:
        directory.chmod(directory.stat().st_mode | 0o001)
        if directory == top:
            break
    return path


@pytest.fixture
def postgres_tmp_path(tmp_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """tmp_path, which the postgres user may enter (for a PostgreSQL of a test's own)."""
    return allow_postgres_in(tmp_path, tmp_path_factory)


ServerT = TypeVar("ServerT", bound=Server)


def serve(server: ServerT) -> Iterator[ServerT]:
    """Start server, hand it to the session, stop it at the end whatever happened."""
    try:
        yield server.start()
    finally:
        server.stop()


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PostgresServer]:
    """PostgreSQL 15 with pg_stat_statements preloaded; fsync off (fast=True).

    Its data lives outside pytest's base temp: another pytest session resets that to 0700
    (and prunes old ones), which would cut the postgres user off from a running cluster.
    """
    state_dir = Path(tempfile.mkdtemp(prefix="webstack-test-pg-", dir="/var/tmp"))
    state_dir.chmod(0o711)
    try:
        yield from serve(PostgresServer(state_dir, fast=True))
    finally:
        shutil.rmtree(state_dir, ignore_errors=True)


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    yield from serve(RedisServer(tmp_path_factory.mktemp("redis")))


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[S3Server]:
    """SeaweedFS S3: endpoint_url, access_key, secret_key, region."""
    yield from serve(S3Server(tmp_path_factory.mktemp("s3")))


@pytest.fixture(scope="session")
def nginx_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NginxServer]:
    yield from serve(NginxServer(tmp_path_factory.mktemp("nginx")))


@pytest.fixture(scope="session")
def pebble_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PebbleServer]:
    """Pebble ACME (directory_url, ca_cert) with pebble-challtestsrv as its DNS."""
    yield from serve(PebbleServer(tmp_path_factory.mktemp("pebble")))


@pytest.fixture(scope="session")
def docker_engine(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DockerEngine]:
    """dockerd without networking side effects; connect with docker.DockerClient(base_url=docker_engine.base_url)."""
    yield from serve(DockerEngine(tmp_path_factory.mktemp("dockerd")))
