"""webstack.ops.celery_status against the sandbox app's real Celery worker and Flower (basic auth), run from the
project's venv on the session's Redis (broker) and PostgreSQL (utils_taskrun), as subprocesses stopped by PID.

The worker starts once for the module (it is slow); the test that stops it runs last.
"""

from __future__ import annotations

import base64
import hashlib
import json
import urllib.request
import uuid
from collections.abc import Iterator

import psycopg2
import pytest
import redis
from ansible_run import run_module, run_module_full
from harness.base import free_port, wait_until
from test_sandbox_app import BIN, Process, manage, wait_for_text

celery = pytest.importorskip("celery", reason="sandbox/app/requirements.txt is not installed in this venv")

MODULE = "webstack.ops.celery_status"
FLOWER_USER, FLOWER_PASSWORD = "ops", "flower-" + uuid.uuid4().hex[:8]


class Stack:
    def __init__(self, env: dict[str, str], flower_url: str, worker: Process, hostname: str, pg_args: dict) -> None:
        self.env = env
        self.flower_url = flower_url
        self.worker = worker
        self.hostname = hostname
        self.pg_args = pg_args
        self.app = celery.Celery("probe", broker=env["CELERY_BROKER_URL"])

    @property
    def conninfo(self) -> dict:
        args = self.pg_args
        return dict(host=args["login_host"], port=args["login_port"], user=args["login_user"],
                    password=args["login_password"], dbname=args["login_db"])

    def flower(self, path: str) -> dict:
        request = urllib.request.Request(self.flower_url + path)  # noqa: S310 - loopback URL built here
        token = base64.b64encode(f"{FLOWER_USER}:{FLOWER_PASSWORD}".encode()).decode()
        request.add_header("Authorization", "Basic " + token)
        with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 - loopback URL built here
            return json.loads(response.read())

    def args(self, **extra) -> dict:
        return dict(flower_url=self.flower_url, flower_user=FLOWER_USER, flower_password=FLOWER_PASSWORD, **extra)


@pytest.fixture(scope="module")
def stack(pg_server, redis_server, tmp_path_factory) -> Iterator[Stack]:
    dbname = "celery_status_%s" % uuid.uuid4().hex[:10]
    admin = psycopg2.connect(**pg_server.conninfo("postgres"))
    admin.autocommit = True
    with admin.cursor() as cur:
        cur.execute('CREATE DATABASE "%s"' % dbname)
    work = tmp_path_factory.mktemp("celery_status")
    env = {
        "PATH": f"{BIN}:/usr/bin:/bin", "LANG": "C.UTF-8", "PYTHONDONTWRITEBYTECODE": "1",
        "DJANGO_SECRET_KEY": "test-" + uuid.uuid4().hex,
        "POSTGRES_HOST": pg_server.host, "POSTGRES_PORT": str(pg_server.port), "POSTGRES_DB": dbname,
        "POSTGRES_USER": pg_server.user, "POSTGRES_PASSWORD": pg_server.password,
        "REDIS_URL": f"redis://:{redis_server.password}@{redis_server.host}:{redis_server.port}/8",
        "CELERY_BROKER_URL": f"redis://:{redis_server.password}@{redis_server.host}:{redis_server.port}/7",
        "FLOWER_BASIC_AUTH": f"{FLOWER_USER}:{FLOWER_PASSWORD}",
    }
    hostname = "statustest-%s@localhost" % uuid.uuid4().hex[:6]
    port = free_port()
    processes: list[Process] = []
    try:
        manage(env, "migrate", "--noinput")
        worker = Process([str(BIN / "celery"), "-A", "webstack_site", "worker", "--loglevel=INFO", "--concurrency=1",
                          "--hostname", hostname], env, work / "worker.log")
        processes.append(worker)
        processes.append(Process([str(BIN / "celery"), "-A", "webstack_site", "flower", "--address=127.0.0.1",
                                  f"--port={port}"], env, work / "flower.log"))
        wait_for_text(worker.log_path, r"ready\.", timeout=60)
        pg_args = dict(login_host=pg_server.host, login_port=pg_server.port, login_user=pg_server.user,
                       login_password=pg_server.password, login_db=dbname)
        found = Stack(env, f"http://127.0.0.1:{port}", worker, hostname, pg_args)

        def online() -> bool:
            try:
                return bool(found.flower("/api/workers?status=1").get(hostname))
            except OSError:
                return False

        assert wait_until(online, 30, 0.3), (work / "flower.log").read_text()[-3000:]
        yield found
    finally:
        for process in reversed(processes):
            process.stop()
        with admin.cursor() as cur:
            cur.execute('DROP DATABASE IF EXISTS "%s" WITH (FORCE)' % dbname)
        admin.close()


def test_workers_failures_queues_and_beat_runs(stack, tmp_path):
    stack.app.send_task("utils.tasks.ping")
    stack.app.send_task("utils.tasks.ping", args=[1])  # ping takes no argument: TypeError in the worker
    for _i in range(3):
        stack.app.send_task("utils.tasks.ping", queue="reports")  # no worker consumes this queue
    assert wait_until(lambda: len(stack.flower("/api/tasks?state=FAILURE")) == 1, 20, 0.3), stack.worker.log()[-3000:]
    with psycopg2.connect(**stack.conninfo) as conn, conn.cursor() as cur:
        cur.execute("SELECT count(*) FROM utils_taskrun WHERE name = 'utils.tasks.ping' AND status = 'success'")
        assert cur.fetchone() == (1,)

    state = tmp_path / "celery.json"
    args = stack.args(broker_url=stack.env["CELERY_BROKER_URL"], queues=["celery", "reports"], queue_warn=3,
                      state_file=str(state), taskrun_table="utils_taskrun",
                      beat_max_age={"utils.tasks.ping": "1h", "utils.tasks.collect_lighthouse_scores": "26h"},
                      **stack.pg_args)
    result = run_module(MODULE, args)

    assert result["changed"] is False and result["state_updated"] is True
    [worker] = [w for w in result["workers"] if w["name"] == stack.hostname]
    assert worker["online"] is True and worker["processed"] >= 2 and worker["concurrency"] == 1
    assert worker["queues"] == ["celery"]
    assert result["workers_online"] == 1
    assert result["queues"] == {"celery": 0, "reports": 3}
    assert result["failed_tasks"]["count"] == 1
    [task] = result["failed_tasks"]["recent"]
    assert task["name"] == "utils.tasks.ping" and task["worker"] == stack.hostname and "TypeError" in task["exception"]
    ping = result["beat_tasks"]["utils.tasks.ping"]
    assert ping["last_status"] == "success" and 0 <= ping["age_seconds"] < 300
    assert "utils.tasks.collect_lighthouse_scores" not in result["beat_tasks"]
    assert sorted((a["check"], a["level"], a["value"]) for a in result["alerts"]) == [
        ("celery_beat", "warn", None), ("celery_failed_tasks", "warn", 1), ("celery_queue", "warn", 3)]
    assert "utils.tasks.collect_lighthouse_scores has no recorded run" in \
        [a for a in result["alerts"] if a["check"] == "celery_beat"][0]["message"]
    assert result["level"] == "warn"

    # Next run, in check mode: the old failure is not counted again; the queue grew by 10 since the last run.
    for _i in range(10):
        stack.app.send_task("utils.tasks.ping", queue="reports")
    before = hashlib.sha256(state.read_bytes()).hexdigest()
    again = run_module(MODULE, args, check=True)
    assert again["failed_tasks"]["count"] == 0
    assert again["queues"]["reports"] == 13
    assert sorted((a["check"], a["level"], a["value"]) for a in again["alerts"]) == [
        ("celery_beat", "warn", None), ("celery_queue", "warn", 13), ("celery_queue_growth", "warn", 10)]
    assert (again["state_updated"], again["state_would_update"]) == (False, True)
    assert hashlib.sha256(state.read_bytes()).hexdigest() == before
    redis.Redis.from_url(stack.env["CELERY_BROKER_URL"]).delete("reports")


def test_a_wrong_flower_password_fails_clearly_without_showing_it(stack):
    wrong = "wrong-" + uuid.uuid4().hex[:10]
    result, run = run_module_full(MODULE, dict(stack.args(), flower_password=wrong))
    assert result["failed"] is True
    assert "answered 401 Unauthorized: the credentials were refused: check flower_user and flower_password" in result["msg"]
    assert stack.flower_url.split("//")[1] in result["msg"]
    assert wrong not in run.output and wrong not in json.dumps(run.report)


def test_a_stopped_worker_is_a_critical_alert(stack):
    stack.worker.stop()
    assert wait_until(lambda: not stack.flower("/api/workers?status=1").get(stack.hostname), 30, 0.3)

    result = run_module(MODULE, stack.args(failed_window="1s"))

    assert result["workers_online"] == 0
    assert [w["online"] for w in result["workers"] if w["name"] == stack.hostname] == [False]
    assert result["queues"] is None and result["beat_tasks"] is None
    [crit] = [a for a in result["alerts"] if a["level"] == "crit"]
    assert crit["check"] == "celery_workers" and crit["value"] == 0 and crit["threshold"] == 1
    assert crit["message"].startswith("no Celery worker online") and stack.hostname in crit["message"]
    assert result["level"] == "crit"
