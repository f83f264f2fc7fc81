"""webstack.ops.log_scan on real logs: a real nginx's access log (401/403 answers, POST /admin), the Django app's
log format written by Python logging, rotation by logrotate (renamed, then gzipped), a state file across runs,
and a 200 MB log read with bounded memory. Container logs need the Docker engine (last test, run by the lead)."""

from __future__ import annotations

import calendar
import hashlib
import json
import logging
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from ansible_run import ROOT, run_module, run_module_full, run_playbook
from harness import NginxServer
from harness.base import free_port, wait_until

MODULE = "webstack.ops.log_scan"

# The Django app's log format (sandbox/app/webstack_site/settings.py LOGGING).
DJANGO_FORMAT = "%(asctime)s %(levelname)s %(name)s %(message)s"


class Site:
    """A real nginx writing its combined access log; a second server block answers 401 and 403."""

    def __init__(self, server: NginxServer, port: int) -> None:
        self.server = server
        self.port = port
        self.log = server.access_log

    def lines(self) -> int:
        return len(self.log.read_bytes().splitlines()) if self.log.exists() else 0

    def hit(self, *requests: tuple[str, str]) -> None:
        """Make the requests, then wait until nginx has logged every one of them (it logs after answering)."""
        before = self.lines()
        for method, path in requests:
            request = urllib.request.Request(f"http://127.0.0.1:{self.port}{path}", method=method,
                                             data=b"x=1" if method == "POST" else None)
            try:
                urllib.request.urlopen(request, timeout=5).close()  # noqa: S310 - loopback URL built here
            except urllib.error.HTTPError as exc:
                exc.close()
        assert wait_until(lambda: self.lines() == before + len(requests), 5, 0.02), self.log.read_text()

    def rotate(self, tmp: Path) -> None:
        """logrotate as production runs it (keep 5, gzip from the second rotation on), then nginx reopens its log."""
        conf = tmp / "logrotate.conf"
        conf.write_text(f"{self.log} {{\n  rotate 5\n  compress\n  delaycompress\n  missingok\n}}\n")
        subprocess.run(["logrotate", "-f", "-s", str(tmp / "logrotate.state"), str(conf)], check=True, timeout=30)
        self.server.reopen_logs()
        assert wait_until(self.log.exists, 5, 0.02), "nginx did not reopen its access log"


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Iterator[Site]:
    port = free_port()
    extra = f"""
    server {{
        listen 127.0.0.1:{port};
        location /admin/ {{ return 403; }}
        location /api/ {{ return 401; }}
        location / {{ return 200 "ok\\n"; }}
    }}
"""
    server = NginxServer(tmp_path_factory.mktemp("log_scan_nginx"), extra_servers=extra)
    server.start()
    try:
        yield Site(server, port)
    finally:
        server.stop()


@pytest.fixture
def fresh_log(site) -> Site:
    """The site with an empty access log (nginx reopens a new file), rotated copies removed."""
    for old in site.log.parent.glob("access.log*"):
        old.unlink()
    site.server.reopen_logs()
    assert wait_until(site.log.exists, 5, 0.02)
    return site


def django_log(path: Path, records: list[tuple[float, int, str, str]]) -> None:
    """Write records (epoch, level, logger, message) with Python logging and the app's formatter."""
    handler = logging.FileHandler(path)
    handler.setFormatter(logging.Formatter(DJANGO_FORMAT))
    try:
        for created, level, name, message in records:
            record = logging.LogRecord(name, level, __file__, 0, message, None, None)
            record.created, record.msecs = created, (created % 1) * 1000
            handler.handle(record)
    finally:
        handler.close()


def run_module_file(args: dict, tmp: Path, *prefix: str) -> tuple[dict, subprocess.CompletedProcess]:
    """The module file run directly by Python (no ansible-playbook around it, so its own process can be measured
    or run with fewer privileges): its result, and the process, whose stderr ends with its peak RSS (VmHWM)."""
    args_file = tmp / "args.json"
    args_file.write_text(json.dumps({"ANSIBLE_MODULE_ARGS": args}))
    wrapper = ("import atexit, runpy, sys\n"
               "atexit.register(lambda: sys.stderr.write([l for l in open('/proc/self/status') if l.startswith('VmHWM')][0]))\n"
               "sys.argv = [sys.argv[1], sys.argv[2]]\n"
               "runpy.run_path(sys.argv[0], run_name='__main__')\n")
    proc = subprocess.run([*prefix, sys.executable, "-c", wrapper, str(ROOT / "plugins/modules/log_scan.py"), str(args_file)],
                          capture_output=True, text=True, timeout=120, check=False,
                          env=dict(os.environ, PYTHONPATH=str(ROOT / "collections")))
    return json.loads(proc.stdout), proc


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_counts_and_samples_of_a_real_access_log_and_the_apps_log(fresh_log, tmp_path):
    fresh_log.hit(("GET", "/"), ("GET", "/api/orders/17"), ("GET", "/api/orders/18"), ("GET", "/api/orders/19"),
                  ("POST", "/admin/login/"), ("POST", "/admin/login/"), ("GET", "/"), ("GET", "/missing"))
    app_log = tmp_path / "django.log"
    now = time.time()
    django_log(app_log, [
        (now - 5, logging.INFO, "webstack.requests", "GET /health/ 200 4 ms"),
        (now - 4, logging.ERROR, "django.request", "Internal Server Error: /error/1"),
        (now - 3, logging.ERROR, "django.request", "Internal Server Error: /error/2"),
        (now - 2, logging.WARNING, "webstack.requests", "slow request GET /slow/?ms=1500 200 1503 ms"),
        (now - 1, logging.ERROR, "django.request", "Internal Server Error: /error/3"),
        (now, logging.ERROR, "webstack.requests", "could not record the fingerprint of /wp-login.php"),
    ])

    result = run_module(MODULE, {"paths": [str(fresh_log.log), str(app_log)]})

    assert result["changed"] is False and result["state_updated"] is False
    patterns = result["patterns"]
    assert patterns["auth_failure"]["count"] == 5  # 3 x 401, 2 x 403
    assert patterns["auth_failure"]["sources"] == {str(fresh_log.log): 5}
    assert patterns["admin_post"]["count"] == 2
    assert patterns["slow_request"]["count"] == 1
    error = patterns["error"]
    assert error["count"] == 4 and error["sources"] == {str(app_log): 4}
    # The three /error/N lines group into one message; the other one stays apart.
    assert [s["count"] for s in error["samples"]] == [3, 1]
    top = error["samples"][0]
    assert top["message"] == "<time> ERROR django.request Internal Server Error: /error/<n>"
    assert top["example"].endswith("ERROR django.request Internal Server Error: /error/1")
    auth = patterns["auth_failure"]["samples"]
    assert [s["count"] for s in auth] == [3, 2]
    assert '"GET /api/orders/<n> HTTP/<n>.<n>" <n>' in auth[0]["message"] and auth[0]["message"].startswith("<ip> - - [<time>]")
    assert result["bytes_read"] == fresh_log.log.stat().st_size + app_log.stat().st_size
    assert result["lines_read"] == 8 + 6 and result["lines_skipped"] == 0
    # error: 4 >= warn 1; auth_failure 5 < 50; slow_request 1 < 10; admin_post 2 < 100.
    assert [(a["check"], a["level"], a["value"], a["threshold"]) for a in result["alerts"]] == [("log_error", "warn", 4, 1)]
    assert result["level"] == "warn"


def test_since_leaves_out_older_lines_of_both_formats(tmp_path):
    now = time.time()
    app_log = tmp_path / "django.log"
    django_log(app_log, [
        (now - 3 * 3600, logging.ERROR, "django.request", "Internal Server Error: /old/"),
        (now - 600, logging.ERROR, "django.request", "Internal Server Error: /new/"),
        (now - 300, logging.WARNING, "webstack.requests", "slow request GET /slow/?ms=1500 200 1503 ms"),
    ])
    # A traceback line without a timestamp after the old entry belongs to it.
    text = app_log.read_text().splitlines(keepends=True)
    app_log.write_text(text[0] + "RuntimeError: ERROR in the old traceback\n" + "".join(text[1:]))
    access = tmp_path / "access.log"

    def nginx_line(epoch: float, status: int) -> str:
        stamp = time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(epoch))
        return f'127.0.0.1 - - [{stamp}] "GET /api/x HTTP/1.1" {status} 0 "-" "curl/7.88.1"\n'

    access.write_text(nginx_line(now - 7200, 401) + nginx_line(now - 7000, 403) + nginx_line(now - 60, 401))

    result = run_module(MODULE, {"paths": [str(app_log), str(access)], "since": "1h"})

    assert result["patterns"]["error"]["count"] == 1
    assert "/new/" in result["patterns"]["error"]["samples"][0]["example"]
    assert result["patterns"]["slow_request"]["count"] == 1
    assert result["patterns"]["auth_failure"]["count"] == 1
    assert result["lines_skipped"] == 2 + 2 and result["lines_read"] == 4 + 3
    since = calendar.timegm(time.strptime(result["since"], "%Y-%m-%dT%H:%M:%SZ"))
    assert abs(since - (now - 3600)) < 60


def test_state_file_counts_new_lines_once_across_rotations(fresh_log, tmp_path):
    state = tmp_path / "state" / "log_scan.json"
    args = {"paths": [str(fresh_log.log)], "state_file": str(state), "patterns": [
        {"name": "auth_failure", "regex": r'" (?:401|403) (?:\d+|-) "'}]}

    def count(check: bool = False) -> dict:
        result = run_module(MODULE, args, check=check)
        assert result["changed"] is False
        return result

    fresh_log.hit(("GET", "/api/a"), ("GET", "/"))
    first = count()
    assert first["patterns"]["auth_failure"]["count"] == 1 and first["state_updated"] is True
    mark = json.loads(state.read_text())["files"][str(fresh_log.log)]
    assert mark["offset"] == fresh_log.log.stat().st_size and mark["inode"] == fresh_log.log.stat().st_ino
    assert state.stat().st_mode & 0o777 == 0o600

    # Check mode counts the new lines but leaves the mark where it was: the next real run counts them again.
    fresh_log.hit(("GET", "/api/b"), ("POST", "/admin/"))
    before = digest(state)
    checked = count(check=True)
    assert checked["patterns"]["auth_failure"]["count"] == 2
    assert (checked["state_updated"], checked["state_would_update"]) == (False, True)
    assert digest(state) == before

    # Lines written before the rotation are read from access.log.1 past the old mark, the rest from the new file.
    fresh_log.hit(("GET", "/api/c"))
    fresh_log.rotate(tmp_path)
    fresh_log.hit(("GET", "/api/d"), ("GET", "/"))
    rotated = count()
    assert rotated["patterns"]["auth_failure"]["count"] == 2 + 1 + 1
    [source] = rotated["sources"]
    assert [f["path"] for f in source["files"]] == [str(fresh_log.log) + ".1", str(fresh_log.log)]
    assert source["files"][0]["from"] == mark["offset"]
    assert "rotated since the last run" in source["notes"][0]

    # A second rotation gzips access.log.1 to .2.gz: lines before and after it are still counted exactly once.
    fresh_log.hit(("GET", "/api/e"))
    fresh_log.rotate(tmp_path)
    assert Path(str(fresh_log.log) + ".2.gz").exists()
    fresh_log.hit(("GET", "/api/f"), ("GET", "/api/g"))
    assert count()["patterns"]["auth_failure"]["count"] == 3
    assert count()["patterns"]["auth_failure"]["count"] == 0  # nothing new

    # Without a state file, every rotated copy is read, oldest first, gzip included: each line once.
    everything = run_module(MODULE, {"paths": [str(fresh_log.log)]})
    [source] = everything["sources"]
    assert [f["path"] for f in source["files"]] == [str(fresh_log.log) + s for s in (".2.gz", ".1", "")]
    assert everything["patterns"]["auth_failure"]["count"] == 8
    assert everything["patterns"]["admin_post"]["count"] == 1
    assert everything["lines_read"] == 10


def test_a_200_mb_log_is_read_with_bounded_memory(tmp_path):
    """The module itself in a subprocess: its peak RSS (VmHWM) stays far below the file's size."""
    block_lines = [f'10.0.{i % 250}.{i % 200} - - [29/Nov/2026:10:{i % 60:02d}:00 +0000] "GET /blog/post-{i}/ HTTP/1.1" '
                   f'200 5123 "https://example.com/" "Mozilla/5.0 (X11; Linux x86_64) Chrome/120.0"\n' for i in range(1000)]
    block_lines[500] = "2026-11-29 10:00:00,123 ERROR django.request Internal Server Error: /error/\n"
    block = "".join(block_lines).encode()
    big = tmp_path / "big.log"
    repeats = 200 * 1024 * 1024 // len(block) + 1
    with big.open("wb") as out:
        for _i in range(repeats):
            out.write(block)
    began = time.monotonic()
    try:
        result, proc = run_module_file({"paths": [str(big)]}, tmp_path)
        size = big.stat().st_size
    finally:
        big.unlink()  # pytest keeps the tmp dirs of the last sessions
    elapsed = time.monotonic() - began
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert result["bytes_read"] == size > 200 * 1024 * 1024
    assert result["lines_read"] == repeats * 1000
    assert result["patterns"]["error"]["count"] == repeats
    peak_kb = int(proc.stderr.split("VmHWM:")[1].split()[0])
    print(f"\n200 MB log: {elapsed:.1f} s, peak RSS {peak_kb / 1024:.0f} MB")
    assert peak_kb < 100 * 1024


def test_bad_input_fails_clearly_and_leaves_the_state_file_alone(tmp_path):
    log = tmp_path / "app.log"
    log.write_text("2026-11-29 10:00:00,000 ERROR x boom\n")
    other = tmp_path / "other"
    other.mkdir()
    (other / "web.log").write_text("ERROR\n")
    (other / "web.log.1.gz").write_bytes(b"not gzip at all\n")  # a broken rotation
    state = str(tmp_path / "state.json")
    cases = {
        "bad regex": {"paths": [str(log)], "state_file": state, "patterns": [{"name": "broken", "regex": "ERROR ("}]},
        "missing path": {"paths": [str(log), str(tmp_path / "nope.log")], "state_file": state},
        "broken gzip": {"paths": [str(log), str(other / "web.log")], "state_file": state},
    }
    play = tmp_path / "play.yml"
    play.write_text(json.dumps([{"hosts": "localhost", "gather_facts": False,
                                 "vars": {"ansible_python_interpreter": sys.executable},
                                 "tasks": [{"name": name, MODULE: args, "ignore_errors": True} for name, args in cases.items()]}]))

    run = run_playbook(play, "-i", "localhost,", "-c", "local")

    results = {name: run.task_result(name) for name in cases}
    assert all(result["failed"] is True for result in results.values())
    assert "pattern 'broken': invalid regex 'ERROR ('" in results["bad regex"]["msg"]
    assert "missing )" in results["bad regex"]["msg"]
    assert f"{tmp_path / 'nope.log'}: no such file" in results["missing path"]["msg"]
    assert "allow_missing" in results["missing path"]["msg"]
    assert f"cannot read {other / 'web.log.1.gz'}: Not a gzipped file" in results["broken gzip"]["msg"]
    assert not (tmp_path / "state.json").exists()


@pytest.mark.skipif(os.geteuid() != 0, reason="drops root's power to read any file: needs root")
def test_an_unreadable_log_fails_naming_it_and_what_to_do(tmp_path):
    """Run as root without CAP_DAC_OVERRIDE (setpriv), so that file permissions hold as for any other user."""
    log = tmp_path / "app.log"
    log.write_text("2026-11-29 10:00:00,000 ERROR x boom\n")
    log.chmod(0)
    private = tmp_path / "private"
    private.mkdir()
    (private / "django.log").write_text("ERROR\n")
    private.chmod(0)
    unprivileged = ("setpriv", "--bounding-set=-dac_override,-dac_read_search")
    try:
        for path, denied in ((log, log), (private / "django.log", private / "django.log"), (private / "*.log", private)):
            result, _proc = run_module_file({"paths": [str(path)]}, tmp_path, *unprivileged)
            assert result.get("failed") is True, result
            assert f"cannot read {denied}: Permission denied; run the task with become: true" in result["msg"]
    finally:
        private.chmod(0o700)


def test_container_logs_counted_once_with_the_state_file(docker_engine, docker_client, base_image, tmp_path):
    """Needs the session's Docker engine (sandbox base image)."""
    image = base_image
    script = ('echo "2026-11-29 10:00:00,000 ERROR django.request Internal Server Error: /error/"; '
              'echo "INFO fine"; echo "2026-11-29 10:00:01,000 WARNING webstack.requests slow request GET /slow/ 200 1500 ms" >&2')
    container = docker_client.containers.run(image, ["sh", "-c", script], name="log-scan-" + uuid.uuid4().hex[:8],
                                             network_mode="none", detach=True)
    try:
        container.wait(timeout=60)
        args = {"containers": [container.name], "docker_host": docker_engine.base_url,
                "state_file": str(tmp_path / "state.json")}
        first = run_module(MODULE, args)
        assert first["patterns"]["error"]["count"] == 1 and first["patterns"]["slow_request"]["count"] == 1
        assert first["patterns"]["error"]["sources"] == {container.name: 1}
        assert first["lines_read"] == 3 and first["state_updated"] is True

        assert run_module(MODULE, args)["patterns"]["error"]["count"] == 0

        container.start()  # the same command again: three new lines in the same log
        container.wait(timeout=60)
        again = run_module(MODULE, args)
        assert again["patterns"]["error"]["count"] == 1 and again["patterns"]["slow_request"]["count"] == 1

        missing, _run = run_module_full(MODULE, dict(args, containers=["no-such-container"]))
        assert missing["failed"] is True and "container no-such-container not found" in missing["msg"]
    finally:
        container.remove(force=True)
