"""webstack.ops.redis_stats against a real Redis 7, each alert raised by a condition staged for real."""

from __future__ import annotations

import contextlib
import json
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
import redis
from ansible_collections.webstack.ops.plugins.module_utils import _redis
from ansible_run import run_module, run_module_full, run_playbook
from harness import RedisServer
from redis.backoff import NoBackoff
from redis.retry import Retry

MODULE = "webstack.ops.redis_stats"


def checks(result):
    return sorted(a["check"] for a in result["alerts"])


def run_tasks(module, calls, check=()):
    """Several calls of a module in one ansible-playbook run (one run costs ~1.5 s): their results, in order.

    check: the indexes of the calls to run in check mode.
    """
    with tempfile.TemporaryDirectory() as tmp:
        playbook = Path(tmp) / "play.yml"
        playbook.write_text(json.dumps([{
            "name": "calls", "hosts": "localhost", "gather_facts": False,
            "vars": {"ansible_python_interpreter": sys.executable},
            "tasks": [{"name": "call %d" % i, module: "{{ calls[%d] }}" % i, "ignore_errors": True,
                       "check_mode": i in check} for i in range(len(calls))],
        }]))
        extra = Path(tmp) / "vars.json"
        extra.write_text(json.dumps({"calls": calls}))
        run = run_playbook(playbook, "-i", "localhost,", "-c", "local", "-e", "@%s" % extra)
    return [run.task_result("call %d" % i) for i in range(len(calls))], run


@contextlib.contextmanager
def config_changed(client, **settings):
    """CONFIG SET for the block; the old values back and the counters reset afterwards (the server is shared)."""
    old = {name: client.config_get(name)[name] for name in settings}
    try:
        for name, value in settings.items():
            client.config_set(name, value)
        yield
    finally:
        for name, value in old.items():
            client.config_set(name, value)
        client.config_resetstat()


@pytest.fixture
def fresh_counters(redis_db):
    """Hits, misses and evictions counted from zero for this test, and reset after it (the server is shared)."""
    redis_db.client.config_resetstat()
    yield
    redis_db.client.config_resetstat()


def test_a_healthy_redis_reports_its_figures_and_no_alert(redis_db, fresh_counters):
    client = redis_db.client
    for i in range(50):
        client.set("webstack:1:page-%d" % i, "x" * 100, ex=3600 if i < 10 else None)
    for i in range(20):
        client.get("webstack:1:page-%d" % i)

    result = run_module(MODULE, redis_db.module_args(), check=True)

    assert result["changed"] is False and "failed" not in result, result.get("msg")
    assert result["alerts"] == [] and result["level"] == "ok"
    assert result["version"].startswith("7.") and result["role"] == "master" and result["uptime_seconds"] >= 0
    assert result["keyspace"]["db%d" % redis_db.number] == {"keys": 50, "expires": 10, "avg_ttl_ms": pytest.approx(3600000, rel=0.01)}
    assert result["total_keys"] >= 50
    memory = result["memory"]
    # The session's Redis has no maxmemory: memory is measured against the host's.
    assert memory["maxmemory"] == 0 and memory["limit_source"] == "system" and memory["limit"] == memory["system_total"] > 0
    assert 0 < memory["used"] <= memory["peak"] and memory["used_percent"] < 1
    assert result["clients"]["connected"] >= 2 and result["clients"]["max"] == 10000  # the test's client and the module's
    assert result["stats"]["keyspace_hits"] == 20 and result["stats"]["hit_rate"] == 1.0
    assert result["persistence"]["rdb_last_save_status"] == "ok"


def test_writing_past_maxmemory_raises_eviction_and_memory_alerts(redis_db):
    client = redis_db.client
    limit = client.info("memory")["used_memory"] + 4 * 1024 * 1024
    with config_changed(client, maxmemory=limit, **{"maxmemory-policy": "allkeys-lru"}):
        pipe = client.pipeline(transaction=False)
        for i in range(2000):  # 8 MB into 4 MB of room
            pipe.set("webstack:1:big-%d" % i, "v%d-" % i + "x" * 4096)
        pipe.execute()
        assert client.dbsize() < 2000  # keys really were evicted

        result = run_module(MODULE, redis_db.module_args())

    assert checks(result) == ["redis_evictions", "redis_memory"] and result["level"] == "warn"
    alerts = {a["check"]: a for a in result["alerts"]}
    assert alerts["redis_evictions"]["value"] == result["stats"]["evicted_keys"] > 0
    assert "counter only resets" in alerts["redis_evictions"]["message"]
    assert result["memory"]["limit_source"] == "maxmemory" and result["memory"]["maxmemory"] == limit
    assert alerts["redis_memory"]["value"] >= 90 and "of maxmemory" in alerts["redis_memory"]["message"]
    assert "allkeys-lru" in alerts["redis_memory"]["message"]
    assert client.config_get("maxmemory")["maxmemory"] == "0"  # restored for the other tests


def test_many_misses_lower_the_hit_rate_past_its_threshold(redis_db, fresh_counters):
    client = redis_db.client
    client.set("webstack:1:home", "page")
    pipe = client.pipeline(transaction=False)
    for i in range(1200):
        pipe.get("webstack:1:home" if i % 10 == 0 else "webstack:1:missing-%d" % i)  # 120 hits, 1080 misses
    pipe.execute()

    # The same counters, judged with the default minimum of lookups and with a minimum not reached yet.
    (judged, too_few), run = run_tasks(MODULE, [redis_db.module_args(), redis_db.module_args(min_lookups=5000)])

    assert judged["stats"]["lookups"] == 1200 and judged["stats"]["hit_rate"] == 0.1, run.output
    [hit_rate] = judged["alerts"]
    assert hit_rate["check"] == "redis_hit_rate" and hit_rate["level"] == "warn" and hit_rate["threshold"] == 0.9
    assert "hit rate 0.10 (120 hits, 1080 misses since the server started" in hit_rate["message"]
    assert too_few["alerts"] == [] and too_few["stats"]["hit_rate"] == 0.1


def test_clients_near_maxclients_raise_an_alert_with_the_rejected_connections(redis_db):
    server = redis_db.server
    extra = []
    with config_changed(redis_db.client, maxclients=20):
        try:
            for _attempt in range(40):  # connect until Redis refuses one
                conn = redis.Redis(host=server.host, port=server.port, password=server.password, retry=Retry(NoBackoff(), 0))
                try:
                    conn.ping()
                except redis.exceptions.RedisError:  # "max number of clients reached"
                    conn.close()
                    break
                extra.append(conn)
            extra.pop().close()  # room for the module's own connection
            time.sleep(0.2)  # the server notices the closed connection

            result = run_module(MODULE, redis_db.module_args())
        finally:
            for conn in extra:
                conn.close()

    assert len(result["alerts"]) == 1, result["alerts"]
    [clients] = result["alerts"]
    assert clients["check"] == "redis_clients" and clients["level"] == "warn"
    assert result["clients"]["max"] == 20 and result["clients"]["connected"] >= 18
    assert result["clients"]["rejected_connections"] >= 1
    assert "connection(s) rejected" in clients["message"]


def test_a_failed_rdb_save_is_critical(tmp_path):
    """A Redis of its own whose data directory vanished: BGSAVE cannot write its snapshot."""
    server = RedisServer(tmp_path / "redis").start()
    try:
        client = redis.Redis(host=server.host, port=server.port, password=server.password)
        shutil.rmtree(server.data_dir)
        client.bgsave()
        deadline = time.monotonic() + 10
        while client.info("persistence")["rdb_bgsave_in_progress"] and time.monotonic() < deadline:
            time.sleep(0.05)
        assert client.info("persistence")["rdb_last_bgsave_status"] == "err"
        client.close()

        result = run_module(MODULE, dict(login_port=server.port, login_password=server.password))
    finally:
        server.stop()

    assert result["level"] == "crit" and result["persistence"]["rdb_last_save_status"] == "err"
    [save] = result["alerts"]
    assert save["check"] == "redis_rdb_save" and save["level"] == "crit" and "BGSAVE" in save["message"]


def test_a_wrong_password_fails_naming_the_server_and_never_the_secret(redis_server):
    wrong = "wrong-%s" % secrets.token_hex(8)
    result, run = run_module_full(MODULE, dict(login_port=redis_server.port, login_password=wrong))

    assert result["failed"]
    assert "127.0.0.1:%d" % redis_server.port in result["msg"] and "WRONGPASS" in result["msg"]
    assert "check login_password and login_user" in result["msg"]
    assert wrong not in run.output and redis_server.password not in run.output


class Failed(Exception):
    pass


class FailingModule:
    """Stands in for AnsibleModule: connect() reports through fail_json."""

    def __init__(self, **params):
        self.params = dict(login_host="127.0.0.1", login_port=6379, login_user=None, login_password=None, db=0,
                           tls=False, ca_cert=None, validate_certs=True, connect_timeout=5, socket_timeout=5)
        self.params.update(params)

    def fail_json(self, msg, **_kwargs):
        raise Failed(msg)


def connect_error(**params):
    with pytest.raises(Failed) as failure:
        _redis.connect(FailingModule(**params))
    return str(failure.value)


def test_connection_errors_say_what_to_check(redis_server, free_port):
    no_password = connect_error(login_port=redis_server.port)
    assert "requires a password (NOAUTH): set login_password" in no_password
    assert "127.0.0.1:%d" % redis_server.port in no_password

    unknown_user = connect_error(login_port=redis_server.port, login_user="reporter", login_password="s3cret-x")
    assert "refused the credentials" in unknown_user and "user reporter" in unknown_user and "s3cret-x" not in unknown_user

    unreachable = connect_error(login_port=free_port)
    assert unreachable.startswith("Could not connect to Redis at 127.0.0.1:%d (database 0)" % free_port)
    assert "Connection refused" in unreachable and "tls" in unreachable


class TlsRedisServer(RedisServer):
    """redis-server on a TLS-only port, with a self-signed certificate for 127.0.0.1."""

    def prepare(self):
        super().prepare()
        self.cert, self.key = self.state_dir / "cert.pem", self.state_dir / "key.pem"
        subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                        "-days", "1", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1",
                        "-keyout", str(self.key), "-out", str(self.cert)], check=True, capture_output=True)

    def command(self):
        argv = super().command()
        argv[argv.index("--port") + 1] = "0"  # no plain port
        return argv + ["--tls-port", str(self.port), "--tls-cert-file", str(self.cert), "--tls-key-file", str(self.key),
                       "--tls-ca-cert-file", str(self.cert), "--tls-auth-clients", "no"]

    def ready(self):
        client = redis.Redis(host=self.host, port=self.port, password=self.password, ssl=True,
                             ssl_ca_certs=str(self.cert), retry=Retry(NoBackoff(), 0))
        try:
            return client.ping()
        except (redis.exceptions.RedisError, OSError):
            return False
        finally:
            client.close()


def test_tls_with_a_ca_certificate_and_certificate_checks(tmp_path):
    server = TlsRedisServer(tmp_path / "redis").start()
    try:
        base = dict(login_port=server.port, login_password=server.password, connect_timeout=3, socket_timeout=3)
        (verified, unknown_ca, unverified, plain), run = run_tasks(MODULE, [
            dict(base, tls=True, ca_cert=str(server.cert)),
            dict(base, tls=True),
            dict(base, tls=True, validate_certs=False),
            base,
        ])
    finally:
        server.stop()

    assert "failed" not in verified and verified["level"] == "ok", run.output
    assert unknown_ca["failed"] and "certificate verify failed" in unknown_ca["msg"]
    assert "127.0.0.1:%d (database 0, TLS)" % server.port in unknown_ca["msg"] and "ca_cert" in unknown_ca["msg"]
    assert "failed" not in unverified and unverified["version"].startswith("7.")
    assert plain["failed"] and "a TLS-only port needs tls: true" in plain["msg"]
