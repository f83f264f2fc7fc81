"""The sandbox's reference Django site (sandbox/app) against real PostgreSQL and Redis.

migrate builds the guide's tables with the columns bench/datagen.py loads; gunicorn serves /health/
(200, 503 when forced or when Redis is gone), the home page records visits, /slow/ and /error/ write
the `slow request` and `ERROR` lines the guide greps for; clear_cache removes the site's keys; a Celery
worker runs a task from the Redis broker and records it; Flower lists the worker. Every process the
tests start runs in a session of its own and is stopped by its PID (and its group) whatever happens.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg2
import pytest
import redis
from harness.base import free_port, group_members, wait_until
from psycopg2 import sql

pytest.importorskip("django", reason="sandbox/app/requirements.txt is not installed in this venv")
pytest.importorskip("celery", reason="sandbox/app/requirements.txt is not installed in this venv")
pytest.importorskip("flower", reason="sandbox/app/requirements.txt is not installed in this venv")

ROOT = Path(__file__).resolve().parents[2]
APP = ROOT / "sandbox" / "app"
BIN = Path(sys.executable).parent
sys.path.insert(0, str(ROOT / "bench"))

import datagen  # noqa: E402

# datagen's column types as information_schema spells them.
PG_TYPES = {"text": "text", "inet": "inet", "integer": "integer", "boolean": "boolean", "jsonb": "jsonb",
            "timestamptz": "timestamp with time zone", "varchar": "character varying"}


class Process:
    """A subprocess in a session of its own, output to a log file; stop() ends it and its group by PID."""

    def __init__(self, argv: list[str], env: dict[str, str], log_path: Path) -> None:
        self.argv = argv
        self.log_path = log_path
        with open(log_path, "ab") as log:
            self.popen = subprocess.Popen(argv, cwd=APP, env=env, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                          start_new_session=True)
        self.pid = self.popen.pid

    def alive(self) -> bool:
        return self.popen.poll() is None

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        if self.alive():
            os.kill(self.pid, signal.SIGTERM)
            try:
                self.popen.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.kill(self.pid, signal.SIGKILL)
                self.popen.wait()
        # Workers left in the group the process led (a group id is not reused while members remain).
        if group_members(self.pid):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.pid, signal.SIGKILL)
            wait_until(lambda: not group_members(self.pid), 10)


def http_get(url: str, timeout: float = 10) -> tuple[int, str]:
    """Status and body of a GET, also for 4xx/5xx answers."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 - loopback http URLs built here
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode(errors="replace")


def wait_for_text(path: Path, pattern: str, timeout: float = 10) -> str:
    """The first line of the file matching the regex, waiting for it to appear."""
    regex = re.compile(pattern)
    found: list[str] = []

    def look() -> bool:
        text = path.read_text(errors="replace") if path.exists() else ""
        found.extend(line for line in text.splitlines() if regex.search(line))
        return bool(found)

    assert wait_until(look, timeout, 0.2), f"no line matching {pattern!r} in {path}:\n{path.read_text(errors='replace')[-3000:]}"
    return found[0]


def manage(env: dict[str, str], *args: str, timeout: float = 120) -> str:
    result = subprocess.run([sys.executable, "manage.py", *args], cwd=APP, env=env, capture_output=True, text=True,
                            timeout=timeout, check=False)
    assert result.returncode == 0, f"manage.py {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}"
    return result.stdout


def start_gunicorn(env: dict[str, str], log_path: Path) -> tuple[Process, str]:
    port = free_port()
    proc = Process([str(BIN / "gunicorn"), "webstack_site.wsgi:application", "--bind", f"127.0.0.1:{port}", "--workers", "2",
                    "--access-logfile", "-"], env, log_path)
    base = f"http://127.0.0.1:{port}"

    def answers() -> bool:
        assert proc.alive(), f"gunicorn exited:\n{proc.log()}"
        try:
            http_get(base + "/health/", timeout=5)
        except OSError:
            return False
        return True

    try:
        assert wait_until(answers, 30, 0.2), f"gunicorn did not answer:\n{proc.log()}"
    except BaseException:
        proc.stop()
        raise
    return proc, base


@pytest.fixture(scope="module")
def site_env(pg_server, redis_server, tmp_path_factory) -> Iterator[dict[str, str]]:
    """The site's environment on a fresh database (migrated); the database is dropped afterwards."""
    dbname = "sandbox_app_%s" % uuid.uuid4().hex[:10]
    admin = psycopg2.connect(**pg_server.conninfo("postgres"))
    admin.autocommit = True
    with admin.cursor() as cur:
        cur.execute('CREATE DATABASE "%s"' % dbname)
    redis_base = f"redis://:{redis_server.password}@{redis_server.host}:{redis_server.port}"
    work = tmp_path_factory.mktemp("sandbox_app")
    env = {
        "PATH": f"{BIN}:{os.environ.get('PATH', '/usr/bin:/bin')}",
        "LANG": "C.UTF-8",
        "PYTHONPATH": str(APP),
        "PYTHONDONTWRITEBYTECODE": "1",
        "DJANGO_SECRET_KEY": "test-" + uuid.uuid4().hex,
        "POSTGRES_HOST": pg_server.host,
        "POSTGRES_PORT": str(pg_server.port),
        "POSTGRES_DB": dbname,
        "POSTGRES_USER": pg_server.user,
        "POSTGRES_PASSWORD": pg_server.password,
        "REDIS_URL": f"{redis_base}/5",
        "CELERY_BROKER_URL": f"{redis_base}/6",
        "CACHE_KEY_PREFIX": "webstack",
        "SLOW_REQUEST_MS": "1000",
        "LOG_DIR": str(work / "logs"),
        "HEALTH_FORCE_FAIL_FILE": str(work / "health-force-fail"),
        "STATIC_ROOT": str(work / "static"),
        "FLOWER_UNAUTHENTICATED_API": "true",
    }
    try:
        manage(env, "migrate", "--noinput")
        yield env
    finally:
        with admin.cursor() as cur:
            cur.execute('DROP DATABASE IF EXISTS "%s" WITH (FORCE)' % dbname)
        admin.close()


@pytest.fixture(scope="module")
def db(site_env) -> Iterator[psycopg2.extensions.connection]:
    conn = psycopg2.connect(host=site_env["POSTGRES_HOST"], port=site_env["POSTGRES_PORT"], user=site_env["POSTGRES_USER"],
                            password=site_env["POSTGRES_PASSWORD"], dbname=site_env["POSTGRES_DB"])
    conn.autocommit = True
    yield conn
    conn.close()


def query(conn, statement: str | sql.Composable, params: tuple = ()) -> list[tuple]:
    with conn.cursor() as cur:
        cur.execute(statement, params)
        return cur.fetchall()


@pytest.fixture(scope="module")
def web(site_env, tmp_path_factory) -> Iterator[tuple[str, Path]]:
    """gunicorn on a free loopback port: its base URL and the log with its stdout and stderr."""
    log_path = tmp_path_factory.mktemp("gunicorn") / "gunicorn.log"
    proc, base = start_gunicorn(site_env, log_path)
    try:
        yield base, log_path
    finally:
        proc.stop()


def test_settings_refuse_to_start_without_secret_key(site_env):
    env = {key: value for key, value in site_env.items() if key != "DJANGO_SECRET_KEY"}
    # django.setup() as gunicorn's WSGI application runs it (manage.py's error path depends on what it imported first)
    result = subprocess.run([sys.executable, "-c", "import django; django.setup()"], cwd=APP,
                            env=dict(env, DJANGO_SETTINGS_MODULE="webstack_site.settings"), capture_output=True, text=True, check=False)
    assert result.returncode != 0
    assert "DJANGO_SECRET_KEY is not set" in result.stderr


def test_migrations_match_datagen(site_env, db):
    """The four tables have datagen's columns (name, type, nullability), an index on created_at, and take its COPY."""
    for table, columns in datagen.TABLES.items():
        rows = query(db, "SELECT column_name, data_type, character_maximum_length, is_nullable FROM information_schema.columns "
                         "WHERE table_schema = 'public' AND table_name = %s", (table,))
        actual = {name: (dtype, length, nullable == "YES") for name, dtype, length, nullable in rows}
        assert set(actual) == {"id", *(name for name, _type in columns)}, table
        assert actual["id"][0] == "bigint"
        for name, ctype in columns:
            kind = ctype.split()[0]
            length = int(kind[kind.index("(") + 1:-1]) if "(" in kind else None
            expected = (PG_TYPES[kind.split("(")[0]], length, "NOT NULL" not in ctype)
            assert actual[name] == expected, f"{table}.{name}: {actual[name]} != {expected} (datagen: {ctype})"
        indexed = query(db, "SELECT indexdef FROM pg_indexes WHERE tablename = %s AND indexdef LIKE %s", (table, "%(created_at)"))
        assert indexed, f"{table}: no index on created_at"
        datagen.fill(db, table, 50, seed=7)
        assert query(db, sql.SQL("SELECT count(*) FROM {}").format(sql.Identifier(table))) == [(50,)]
    taskrun = {row[0] for row in query(db, "SELECT column_name FROM information_schema.columns WHERE table_name = 'utils_taskrun'")}
    assert {"id", "name", "started_at", "finished_at", "status"} <= taskrun
    manage(site_env, "collectstatic", "--noinput")
    assert (Path(site_env["STATIC_ROOT"]) / "admin" / "css" / "base.css").is_file()


def test_health_ok_and_forced_failure(site_env, web):
    base, _log = web
    status, body = http_get(base + "/health/")
    assert (status, json.loads(body)) == (200, {"status": "ok", "database": "ok", "cache": "ok"})
    switch = Path(site_env["HEALTH_FORCE_FAIL_FILE"])
    switch.touch()
    try:
        status, body = http_get(base + "/health/")
    finally:
        switch.unlink()
    assert status == 503
    assert json.loads(body)["failed"] == ["forced"]
    assert http_get(base + "/health/")[0] == 200


def test_health_names_the_cache_when_redis_is_gone(site_env, tmp_path):
    env = dict(site_env, REDIS_URL=f"redis://127.0.0.1:{free_port()}/0")
    del env["LOG_DIR"]
    proc, base = start_gunicorn(env, tmp_path / "gunicorn.log")
    try:
        started = time.monotonic()
        status, body = http_get(base + "/health/")
        elapsed = time.monotonic() - started
    finally:
        proc.stop()
    answer = json.loads(body)
    assert status == 503, body
    assert answer["failed"] == ["cache"]
    assert answer["database"] == "ok"
    assert answer["cache"].startswith("error: ConnectionError"), answer
    assert elapsed < 5


def test_slow_request_and_error_lines(site_env, web):
    base, log_path = web
    assert http_get(base + "/slow/?ms=1200")[0] == 200
    line = wait_for_text(log_path, r"slow request GET /slow/\?ms=1200 ")
    assert re.search(r" WARNING webstack\.requests slow request GET /slow/\?ms=1200 200 1[2-9]\d\d ms$", line), line
    assert http_get(base + "/slow/?ms=10")[0] == 200
    fast = wait_for_text(log_path, r"webstack\.requests GET /slow/\?ms=10 ")
    assert " INFO " in fast
    assert "slow request" not in fast

    assert http_get(base + "/error/")[0] == 500
    line = wait_for_text(log_path, r"ERROR django\.request Internal Server Error: /error/")
    assert re.match(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} ERROR ", line), line
    wait_for_text(log_path, r"RuntimeError: deliberate error from /error/")
    # The same lines in LOG_DIR/django.log.
    django_log = Path(site_env["LOG_DIR"]) / "django.log"
    wait_for_text(django_log, r"ERROR django\.request Internal Server Error: /error/")
    wait_for_text(django_log, r"WARNING webstack\.requests slow request GET /slow/\?ms=1200 ")


def test_home_records_visits_and_suspicious_fingerprints(web, db):
    base, _log = web
    visits = query(db, "SELECT count(*) FROM pages_pagevisit")[0][0]
    status, body = http_get(base + "/")
    assert status == 200
    assert "webstack sandbox" in body
    assert query(db, "SELECT count(*) FROM pages_pagevisit")[0][0] == visits + 1
    path, ip_address = query(db, "SELECT path, host(ip_address) FROM pages_pagevisit ORDER BY id DESC LIMIT 1")[0]
    assert (path, ip_address) == ("/", "127.0.0.1")

    assert http_get(base + "/wp-login.php")[0] == 404
    rows = query(db, "SELECT is_suspicious, method, headers FROM utils_requestfingerprint WHERE path = '/wp-login.php'")
    assert len(rows) == 1
    assert rows[0][0] is True
    assert rows[0][1] == "GET"
    assert "User-Agent" in rows[0][2]


def test_clear_cache_removes_the_sites_keys(site_env):
    manage(site_env, "shell", "-c", "from django.core.cache import cache; cache.set('probe', 'x', 600)")
    client = redis.Redis.from_url(site_env["REDIS_URL"])
    try:
        assert client.exists("webstack:1:probe")
        client.set("other-app:key", "stays")
        out = manage(site_env, "clear_cache")
        assert "cache cleared" in out
        assert re.search(r"[1-9]\d* keys removed", out), out
        assert not client.exists("webstack:1:probe")
        assert client.get("other-app:key") == b"stays"
    finally:
        client.delete("other-app:key")
        client.close()


def test_celery_worker_runs_ping_and_flower_lists_it(site_env, db, tmp_path):
    hostname = "sandboxtest-%s@localhost" % uuid.uuid4().hex[:6]
    flower_port = free_port()
    worker = Process([str(BIN / "celery"), "-A", "webstack_site", "worker", "--loglevel=INFO", "--concurrency=2", "--hostname", hostname],
                     site_env, tmp_path / "worker.log")
    flower = None
    try:
        flower = Process([str(BIN / "celery"), "-A", "webstack_site", "flower", "--address=127.0.0.1", f"--port={flower_port}"],
                         site_env, tmp_path / "flower.log")
        wait_for_text(worker.log_path, r"ready\.", timeout=30)
        result = subprocess.run([str(BIN / "celery"), "-A", "webstack_site", "call", "utils.tasks.ping"], cwd=APP, env=site_env,
                                capture_output=True, text=True, timeout=60, check=False)
        assert result.returncode == 0, result.stderr

        def pinged() -> bool:
            return bool(query(db, "SELECT 1 FROM utils_taskrun WHERE name = 'utils.tasks.ping' AND status = 'success' "
                                  "AND finished_at IS NOT NULL"))

        assert wait_until(pinged, 20, 0.2), f"no successful ping TaskRun:\n{worker.log()[-3000:]}"

        def listed() -> bool:
            assert flower.alive(), f"flower exited:\n{flower.log()}"
            try:
                status, body = http_get(f"http://127.0.0.1:{flower_port}/api/workers?refresh=1", timeout=10)
            except OSError:
                return False
            return status == 200 and hostname in json.loads(body)

        assert wait_until(listed, 30, 0.5), f"flower does not list {hostname}:\n{flower.log()[-3000:]}"
    finally:
        if flower is not None:
            flower.stop()
        worker.stop()
