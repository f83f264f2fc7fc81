"""daily.yml and weekly.yml over SSH across three hosts: web, db and cache, each a network namespace with its sshd.

PostgreSQL listens only on the db host's address, Redis only on the cache host's, nginx (serving /health/) only on
the web host's. The servers log where each connection came from, which shows that every check ran on the host of
its group (the modules connect from the host they run on), not on the controller.
"""

from __future__ import annotations

import contextlib
import json
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import psycopg2
import pytest
import redis
from ansible_run import run_playbook, task_title
from harness import NginxServer, PostgresServer, RedisServer
from harness.netns import HostNetwork, client_key, netns_unavailable

PREFIX = "shop"  # the Django cache's CACHE_KEY_PREFIX on the cache host


class Hosts:
    """The three hosts, their servers and the inventory that reaches them."""

    def __init__(self, tmp_path: Path, stack: contextlib.ExitStack) -> None:
        self.tmp_path = tmp_path
        key = client_key(tmp_path)
        self.network = stack.enter_context(HostNetwork().create())
        self.host = {}
        for name in ("web", "db", "cache"):
            self.host[name] = self.network.host(tmp_path / name, name, key.with_suffix(".pub").read_text()).start()
            stack.callback(self.host[name].stop)  # after its servers (ExitStack unwinds in reverse)
        web, db, cache = self.host["web"], self.host["db"], self.host["cache"]
        self.pg = stack.enter_context(PostgresServer(tmp_path / "pg", host=db.address, port=5432, fast=True, netns=db.netns).start())
        self.redis = stack.enter_context(RedisServer(tmp_path / "redis", host=cache.address, port=6379, netns=cache.netns).start())
        self.nginx = stack.enter_context(NginxServer(tmp_path / "nginx", host=web.address, port=80, netns=web.netns).start())
        (self.nginx.html_dir / "health").mkdir()
        (self.nginx.html_dir / "health" / "index.html").write_text("ok\n")
        self.control_dir = tmp_path / "cp"
        stack.callback(self.close_connections)  # first: before the hosts go away
        self.inventory = self.write_inventory(key)

    def close_connections(self) -> None:
        """Stop the ssh control masters Ansible left for the next run (ControlPersist): ours, by their sockets."""
        for socket_path in self.control_dir.glob("*"):
            subprocess.run(["ssh", "-o", f"ControlPath={socket_path}", "-O", "exit", "host"], capture_output=True, check=False)

    def write_inventory(self, key: Path) -> str:
        shared = {
            "ansible_connection": "ssh", "ansible_user": "root", "ansible_ssh_private_key_file": str(key),
            "ansible_ssh_common_args": "-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null",
            "ansible_control_path_dir": str(self.control_dir),
            "ansible_pipelining": True,  # as production inventories usually have it; the async checks still copy files
            "ansible_python_interpreter": sys.executable,  # the hosts share this filesystem, so this venv too
            "prerequisites_method": "none",
            # The shared connection variables the roles read: each server on its own host's address.
            "webstack_postgres_host": self.pg.host, "webstack_postgres_port": self.pg.port,
            "webstack_postgres_password": self.pg.password, "webstack_postgres_db": "shop",
            "webstack_redis_host": self.redis.host, "webstack_redis_port": self.redis.port,
            "webstack_redis_password": self.redis.password, "webstack_redis_db": 1, "webstack_cache_key_prefix": PREFIX,
        }
        web = {
            "webstack_health_url": f"http://{self.host['web'].address}/health/",
            "webstack_log_paths": [str(self.nginx.access_log)],
            # Not here: no Docker engine on this web host (the container checks, and the log scan of containers) and
            # no Celery (Flower is required by celery_status): switched off by their variables.
            "daily_checks_check_containers": False, "daily_checks_log_containers": [],
            # The weekly rotation of this host's nginx logs, with its configuration and state in the test's directory.
            "webstack_nginx_log_paths": [str(self.nginx.prefix / "logs" / "*.log")], "webstack_nginx_pid_file": str(self.nginx.pid_file),
            "weekly_logs_logrotate_conf": str(self.tmp_path / "logrotate" / "webstack-nginx"),
            "weekly_logs_state_file": str(self.tmp_path / "logrotate" / "status"), "weekly_logs_other_configs": [],
        }
        groups = {"web": ("web1", web), "db": ("db1", {}), "cache": ("cache1", {})}
        inventory = {"all": {"vars": shared, "children": {
            group: {"hosts": {name: {"ansible_host": self.host[group].address,
                                     "webstack_state_dir": str(self.tmp_path / "state" / name), **extra}}}
            for group, (name, extra) in groups.items()}}}
        path = self.tmp_path / "hosts.yml"
        path.write_text(json.dumps(inventory, indent=1))  # JSON is YAML
        return str(path)

    def sql(self, statement: str, dbname: str = "shop") -> list[tuple] | None:
        conn = psycopg2.connect(**self.pg.conninfo(dbname))
        conn.autocommit = True
        try:
            with conn.cursor() as cur:
                cur.execute(statement)
                rows = cur.fetchall() if cur.description else None
                cur.execute("SELECT pg_stat_force_next_flush()")
            return rows
        finally:
            conn.close()

    def cache(self) -> redis.Redis:
        return redis.Redis(host=self.redis.host, port=self.redis.port, password=self.redis.password, db=1)


@pytest.fixture
def hosts():
    """The hosts' files live outside pytest's base temp, which another pytest session may close to the postgres user."""
    reason = netns_unavailable()
    if reason:
        pytest.skip(f"three hosts as network namespaces: {reason}")
    state_dir = Path(tempfile.mkdtemp(prefix="webstack-test-hosts-", dir="/var/tmp"))
    state_dir.chmod(0o711)
    try:
        with contextlib.ExitStack() as stack:
            yield Hosts(state_dir, stack)
    finally:
        shutil.rmtree(state_dir, ignore_errors=True)


def ran_on(run, name: str) -> set[str]:
    """Hosts on which the task of that name ran (not skipped)."""
    return {host for play in run.report["plays"] for task in play["tasks"] if task_title(task) == name
            for host, result in task["hosts"].items() if not result.get("skipped")}


def new_lines(path: Path, offset: int) -> str:
    with open(path, "rb") as log:
        log.seek(offset)
        return log.read().decode(errors="replace")


def test_daily_and_weekly_run_each_task_on_the_host_of_its_group(hosts):
    web, db, cache = hosts.host["web"], hosts.host["db"], hosts.host["cache"]
    assert len({web.address, db.address, cache.address}) == 3
    hosts.sql("CREATE DATABASE shop", dbname="postgres")
    hosts.sql("ALTER SYSTEM SET log_connections = on", dbname="postgres")
    hosts.sql("SELECT pg_reload_conf()", dbname="postgres")
    hosts.sql("CREATE TABLE orders (id serial PRIMARY KEY, total int) WITH (autovacuum_enabled = false)")
    hosts.sql("INSERT INTO orders (total) SELECT g FROM generate_series(1, 2000) g")
    hosts.sql("DELETE FROM orders WHERE id % 4 = 0")
    client = hosts.cache()
    client.config_set("loglevel", "verbose")  # Redis then logs the address of every client it accepts
    client.mset({f"{PREFIX}:1:page:{n}": "x" for n in range(30)} | {"othersite:1:page": "kept"})
    marks = {path: path.stat().st_size for path in (hosts.pg.log_path, hosts.redis.log_path, hosts.nginx.access_log)}

    daily = run_playbook("playbooks/daily.yml", "-i", hosts.inventory, timeout=180)
    assert daily.rc == 0, daily.output[-6000:]
    assert ran_on(daily, "Check PostgreSQL (connections, long queries, deadlocks, wraparound, size)") == {"db1"}
    assert ran_on(daily, "Check Redis (memory, clients, hit rate, evictions, last save)") == {"cache1"}
    assert ran_on(daily, "Check /health/ (an alert after consecutive failures only)") == {"web1"}
    assert ran_on(daily, "Scan the logs for errors, slow requests, 401/403 and admin posts since the last run") == {"web1"}
    assert ran_on(daily, "Check disk space per filesystem") == {"web1", "db1", "cache1"}
    assert ran_on(daily, "Check the containers (state, health, restarts, OOM kills, CPU and memory)") == set()
    # What each host's background checks returned (none of them failed, or rc would not be 0).
    finished = {host: {r["item"]["key"]: r for r in daily.task_result("Wait for the checks started in the background", host)["results"]}
                for host in ("web1", "db1", "cache1")}
    assert set(finished["web1"]) == {"health", "logs", "disk"}
    assert set(finished["db1"]) == {"database", "disk"}
    assert set(finished["cache1"]) == {"redis", "disk"}
    assert finished["web1"]["health"]["status"] == 200
    assert finished["db1"]["database"]["database_size"] > 0
    assert finished["cache1"]["redis"]["keyspace"]["db1"]["keys"] == 31
    health_clients = {line.split()[0] for line in new_lines(hosts.nginx.access_log, marks[hosts.nginx.access_log]).splitlines()
                      if "/health/" in line}
    assert health_clients == {web.address}  # the /health/ check ran on the web host

    weekly = run_playbook("playbooks/weekly.yml", "-i", hosts.inventory, timeout=180)
    assert weekly.rc == 0, weekly.output[-6000:]
    # Every connection of both runs came from the host the check belongs to: PostgreSQL's from the db host's
    # address, Redis's from the cache host's (the test's own connections come from the bridge's address).
    pg_clients = set(re.findall(r"connection received: host=([\d.]+)", new_lines(hosts.pg.log_path, marks[hosts.pg.log_path])))
    redis_clients = set(re.findall(r"Accepted ([\d.]+):\d+", new_lines(hosts.redis.log_path, marks[hosts.redis.log_path])))
    assert pg_clients == {db.address}
    assert redis_clients == {cache.address}
    assert ran_on(weekly, "Run VACUUM ANALYZE where needed and measure the database size") == {"db1"}
    assert ran_on(weekly, "Clear the cache keys under the Django prefix (SCAN + UNLINK)") == {"cache1"}
    [logs_play] = [play for play in weekly.report["plays"] if play["play"]["name"] == "Weekly maintenance - logs"]
    assert {host for task in logs_play["tasks"] for host in task["hosts"]} == {"web1"}
    assert weekly.task_result("Clear the cache keys under the Django prefix (SCAN + UNLINK)", "cache1")["deleted"] == 30
    # The weekly care really happened on the db host's PostgreSQL and the cache host's Redis.
    [(vacuumed, analyzed)] = hosts.sql("SELECT last_vacuum IS NOT NULL, last_analyze IS NOT NULL FROM pg_stat_user_tables"
                                       " WHERE relname = 'orders'")
    assert vacuumed and analyzed
    assert sorted(client.keys("*")) == [b"othersite:1:page"]
    client.close()
    assert "/health/" in Path(f"{hosts.nginx.access_log}.1").read_text()  # the web host's nginx logs were rotated
