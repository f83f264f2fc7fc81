"""The harness's servers start, really answer, and stop by PID without leftovers; stackctl round-trips."""

from __future__ import annotations

import json
import os
import signal
import socket
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import boto3
import docker
import psycopg2
import pytest
import redis
from botocore.config import Config
from botocore.exceptions import ClientError
from harness import (
    DockerEngine,
    NginxServer,
    PebbleServer,
    PostgresServer,
    RedisServer,
    S3Server,
    ServerError,
    free_port,
    port_free,
    proc_start_time,
)
from redis.backoff import NoBackoff
from redis.retry import Retry

STACKCTL = Path(__file__).resolve().parents[2] / "sandbox" / "stackctl"


def fetch(url: str, context: ssl.SSLContext | None = None, data: bytes | None = None) -> tuple[int, bytes]:
    """Status and body of a GET, or of a POST of data."""
    request = urllib.request.Request(url, data=data)  # noqa: S310 - loopback test URLs
    with urllib.request.urlopen(request, context=context, timeout=10) as response:  # noqa: S310
        return response.status, response.read()


def eventually(check, timeout: float = 10.0):
    """check()'s first truthy value, retrying while it is falsy or raises OSError, for up to timeout seconds."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            value = check()
        except OSError:
            if time.monotonic() >= deadline:
                raise
        else:
            if value:
                return value
            if time.monotonic() >= deadline:
                raise AssertionError(f"{check} never became true")
        time.sleep(0.1)


def process_tree(pid: int) -> set[int]:
    """pid and all its live descendants."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (FileNotFoundError, ProcessLookupError):
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    tree, todo = set(), [pid]
    while todo:
        current = todo.pop()
        tree.add(current)
        todo.extend(children.get(current, []))
    return {p for p in tree if proc_start_time(p) is not None}


# PostgreSQL


def test_postgres_answers_the_superuser_over_tcp_with_its_password(pg_server):
    with psycopg2.connect(**pg_server.conninfo()) as conn, conn.cursor() as cur:
        cur.execute("SELECT 1")
        assert cur.fetchone() == (1,)
        cur.execute("SHOW shared_preload_libraries")
        assert cur.fetchone() == ("pg_stat_statements",)
    conn.close()

    wrong = {**pg_server.conninfo(), "password": "wrong"}
    with pytest.raises(psycopg2.OperationalError, match="password authentication failed"):
        psycopg2.connect(**wrong)


def test_postgres_has_pg_stat_statements_preloaded(pg_server):
    admin = psycopg2.connect(**pg_server.conninfo())
    admin.autocommit = True
    try:
        admin.cursor().execute("CREATE DATABASE harness_check")
        with psycopg2.connect(**pg_server.conninfo("harness_check")) as conn, conn.cursor() as cur:
            cur.execute("CREATE EXTENSION pg_stat_statements")
            cur.execute("SELECT count(*) FROM pg_stat_statements")
            assert cur.fetchone()[0] > 0
        conn.close()
    finally:
        admin.cursor().execute("DROP DATABASE IF EXISTS harness_check WITH (FORCE)")
        admin.close()


# Redis


def test_redis_answers_with_its_password(redis_server):
    client = redis.Redis(host=redis_server.host, port=redis_server.port, password=redis_server.password)
    assert client.ping() is True
    client.set("harness:key", "value")
    assert client.get("harness:key") == b"value"
    client.close()

    anonymous = redis.Redis(host=redis_server.host, port=redis_server.port, retry=Retry(NoBackoff(), 0))  # no retries with backoff
    with pytest.raises(redis.exceptions.AuthenticationError):
        anonymous.ping()
    anonymous.close()


# S3 (SeaweedFS)


def s3_client(server: S3Server, secret_key: str | None = None):
    return boto3.client("s3", endpoint_url=server.endpoint_url, region_name=server.region, aws_access_key_id=server.access_key,
                        aws_secret_access_key=secret_key or server.secret_key, config=Config(s3={"addressing_style": "path"}))


def test_s3_stores_and_returns_an_object(s3_server):
    s3 = s3_client(s3_server)
    s3.create_bucket(Bucket="harness-check")
    s3.put_object(Bucket="harness-check", Key="dumps/db.sql.zst", Body=b"payload")

    assert s3.get_object(Bucket="harness-check", Key="dumps/db.sql.zst")["Body"].read() == b"payload"
    assert "harness-check" in [bucket["Name"] for bucket in s3.list_buckets()["Buckets"]]


def test_s3_refuses_a_wrong_secret_key(s3_server):
    with pytest.raises(ClientError) as refused:
        s3_client(s3_server, secret_key="not-the-secret").list_buckets()
    assert refused.value.response["Error"]["Code"] == "SignatureDoesNotMatch"
    assert refused.value.response["ResponseMetadata"]["HTTPStatusCode"] == 403


# nginx


def test_nginx_serves_its_page(nginx_server):
    assert fetch(nginx_server.url) == (200, nginx_server.index_html.encode())


def test_nginx_reloads_extra_servers_and_reopens_its_logs(tmp_path):
    with NginxServer(tmp_path, index_html="first\n").start() as nginx:
        extra = free_port()
        nginx.extra_servers = f'server {{ listen 127.0.0.1:{extra}; return 200 "extra\\n"; }}'
        nginx.reload()
        assert eventually(lambda: fetch(f"http://127.0.0.1:{extra}/")) == (200, b"extra\n")

        nginx.access_log.rename(nginx.access_log.with_suffix(".log.1"))
        nginx.reopen_logs()
        eventually(nginx.access_log.exists)
        fetch(nginx.url)
        assert "GET / HTTP" in eventually(nginx.access_log.read_text)


# Pebble


def test_pebble_serves_its_directory_over_verified_https(pebble_server):
    verified = ssl.create_default_context(cafile=str(pebble_server.ca_cert))
    status, body = fetch(pebble_server.directory_url, verified)
    assert status == 200
    assert {"newAccount", "newNonce", "newOrder"} <= set(json.loads(body))

    status, root = fetch(pebble_server.management_url + "/roots/0", verified)
    assert status == 200 and root.startswith(b"-----BEGIN CERTIFICATE-----")

    with pytest.raises(urllib.error.URLError, match="CERTIFICATE_VERIFY_FAILED"):
        fetch(pebble_server.directory_url)  # the system's CAs do not know Pebble's certificate


def test_challtestsrv_answers_on_its_management_port(pebble_server):
    record = {"host": "shop.example.test.", "addresses": ["127.0.0.1"]}
    assert fetch(pebble_server.challtestsrv.management_url + "/add-a", data=json.dumps(record).encode())[0] == 200


# Docker engine


def test_docker_engine_answers_the_sdk(docker_engine):
    client = docker.DockerClient(base_url=docker_engine.base_url)
    try:
        assert client.ping() is True
        version = client.version()
        assert version["Version"] and version["ApiVersion"]
        assert "bridge" not in [network.name for network in client.networks.list()]  # --bridge=none
    finally:
        client.close()


# Every server stops by PID and leaves nothing behind.


@pytest.mark.parametrize("make", [
    pytest.param(lambda path: PostgresServer(path, fast=True), id="postgres"),
    pytest.param(RedisServer, id="redis"),
    pytest.param(S3Server, id="s3"),
    pytest.param(NginxServer, id="nginx"),
    pytest.param(PebbleServer, id="pebble"),
    pytest.param(DockerEngine, id="dockerd"),
])
def test_server_stops_cleanly(make, postgres_tmp_path):
    with make(postgres_tmp_path).start() as server:
        assert server.running() and server.startup_seconds is not None
        processes = process_tree(server.pid)
        if isinstance(server, PebbleServer):
            processes |= process_tree(server.challtestsrv.pid)
        if isinstance(server, DockerEngine):
            exec_root = server.exec_root
            assert any(Path(f"/proc/{pid}/comm").read_text().strip() == "containerd" for pid in processes)

        server.stop()

        assert server.pid is None and not server.running()
        assert [pid for pid in processes if proc_start_time(pid) is not None] == []
        assert [port for port in server.ports() if not port_free(port)] == []
        if isinstance(server, S3Server):
            assert list(Path("/tmp").glob(f"seaweedfs-*-grpc-{server.s3_port + 10000}.sock")) == []
        if isinstance(server, DockerEngine):
            assert not exec_root.exists()
    # leaving the with block stops it again: harmless


# stackctl


def stackctl(*args: str) -> str:
    result = subprocess.run([sys.executable, str(STACKCTL), *args], capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_stackctl_up_status_down_round_trip(postgres_tmp_path):
    state_dir = str(postgres_tmp_path / "stack")
    try:
        stackctl("up", "postgres", "redis", "--state-dir", state_dir)
        status = json.loads(stackctl("status", "--state-dir", state_dir))
        assert sorted(status) == ["postgres", "redis"]
        assert status["postgres"]["running"] and status["redis"]["running"]
        assert json.loads((Path(state_dir) / "state.json").read_text())["postgres"]["pid"] == status["postgres"]["pid"]

        assert status["postgres"]["password"] == "********" and "********" in status["postgres"]["dsn"]
        pg = json.loads(stackctl("status", "--show-secrets", "--state-dir", state_dir))["postgres"]
        with psycopg2.connect(host=pg["host"], port=pg["port"], user=pg["user"], password=pg["password"], dbname="postgres") as conn:
            assert conn.server_version >= 150000
        conn.close()
        assert redis.Redis.from_url(status["redis"]["url"]).ping() is True

        again = stackctl("up", "postgres", "redis", "--state-dir", state_dir)
        assert "postgres: already running" in again and "redis: already running" in again
        status_again = json.loads(stackctl("status", "--state-dir", state_dir))
        assert [status_again[name]["pid"] for name in status] == [status[name]["pid"] for name in status]
    finally:
        stackctl("down", "--state-dir", state_dir)

    assert json.loads(stackctl("status", "--state-dir", state_dir)) == {}
    for entry in status.values():
        assert proc_start_time(entry["pid"]) is None
        assert port_free(entry["port"])


def test_stackctl_restarts_a_server_of_a_half_started_stack(postgres_tmp_path):
    """A recorded server that died (a crash, a reboot) is started again; the others are kept."""
    state_dir = str(postgres_tmp_path / "half")
    try:
        stackctl("up", "postgres", "redis", "--state-dir", state_dir)
        before = json.loads(stackctl("status", "--state-dir", state_dir))
        os.kill(before["redis"]["pid"], signal.SIGKILL)
        assert wait_gone(before["redis"]["pid"])
        out = stackctl("up", "postgres", "redis", "--state-dir", state_dir)
        assert "postgres: already running" in out and "redis: started" in out
        after = json.loads(stackctl("status", "--state-dir", state_dir))
        assert after["postgres"]["pid"] == before["postgres"]["pid"] and after["redis"]["running"]
    finally:
        stackctl("down", "--state-dir", state_dir)


def wait_gone(pid: int, timeout: float = 10) -> bool:
    deadline = time.monotonic() + timeout
    while proc_start_time(pid) is not None:
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def test_a_port_already_taken_fails_with_the_port_and_the_servers_reason(tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        server = NginxServer(tmp_path / "nginx", port=port)
        with pytest.raises(ServerError) as error:
            server.start(timeout=10)
    assert "Address already in use" in str(error.value) and str(port) in str(error.value)
    assert server.pid is None or proc_start_time(server.pid) is None  # nothing left running
