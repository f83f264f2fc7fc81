"""The weekly playbook's log play (role weekly_logs): a real nginx of the test's own, real logrotate, ansible-playbook.

One story in three runs: --check (what would rotate, nothing written), the real run (config installed, logs rotated
and gzipped, two archives kept, nginx reopened its log), then the same run again (nothing changed) beside a second
host whose configuration logrotate refuses (not installed, its old one stays, nothing rotated).
"""

from __future__ import annotations

import gzip
import json
import urllib.error
import urllib.request

import pytest
from ansible_run import run_playbook, task_title
from harness import NginxServer
from harness.base import wait_until

CONFIG_TASK = "Install the logrotate configuration for the nginx logs (validated by logrotate first)"
ROTATE_TASK = "Rotate the nginx logs and have nginx reopen them"
REPORT_TASK = "Report the rotation and the log sizes"


@pytest.fixture
def nginx(tmp_path):
    """nginx with its logs in tmp_path/nginx/logs (the session's nginx keeps its logs for other tests)."""
    with NginxServer(tmp_path / "nginx").start() as server:
        yield server


def get(url):
    try:
        with urllib.request.urlopen(url, timeout=5) as response:  # noqa: S310 - the test's loopback nginx
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code


def snapshot(directory):
    """name: (size, inode) of every file in the log directory."""
    return {p.name: (p.stat().st_size, p.stat().st_ino) for p in directory.iterdir()}


def host_vars(tmp_path, nginx, name="logrotate", **role_vars):
    """A web host on this machine whose logrotate configuration and state file are in tmp_path/name.

    The role needs only ansible.builtin modules: the system's Python runs them, as on a web host (and faster than the venv's).
    """
    values = dict(ansible_connection="local", ansible_python_interpreter="/usr/bin/python3", prerequisites_method="none",
                  webstack_nginx_log_paths=[str(nginx.access_log.parent / "*.log")],
                  webstack_nginx_pid_file=str(nginx.pid_file),
                  weekly_logs_logrotate_conf=str(tmp_path / name / "webstack-nginx.conf"),
                  weekly_logs_state_file=str(tmp_path / name / "webstack-nginx.status"),
                  weekly_logs_keep=2, weekly_logs_size_warn_mb=0.001, weekly_logs_other_configs=[])
    values.update(role_vars)
    return values


def inventory(tmp_path, **hosts):
    path = tmp_path / "inventory.json"
    path.write_text(json.dumps({"web": {"hosts": hosts}}))
    return str(path)


def summary(run):
    return run.report["global_custom_stats"]["weekly_logs"]["webhost"]


def changed_tasks(run):
    return [task_title(t) for play in run.report["plays"] for t in play["tasks"] if t["hosts"].get("webhost", {}).get("changed")]


def test_weekly_logs_check_rotate_again_and_a_refused_config(tmp_path, nginx):
    logs = nginx.access_log.parent
    for path in ("/", "/missing-page") * 10:  # the 404s go to error.log too
        get(nginx.url.rstrip("/") + path)
    assert wait_until(lambda: nginx.access_log.read_text().count("Python-urllib") == 20, 5)
    (logs / "access.log.1").write_text("last week\n")
    (logs / "access.log.2.gz").write_bytes(gzip.compress(b"two weeks ago\n"))
    # Debian's nginx package names the same logs in a configuration of its own.
    (tmp_path / "package").mkdir()
    (tmp_path / "package" / "nginx").write_text("%s/*.log {\n    daily\n}\n" % logs)
    conf = tmp_path / "logrotate" / "webstack-nginx.conf"
    state_file = tmp_path / "logrotate" / "webstack-nginx.status"
    before = snapshot(logs)
    request_lines = nginx.access_log.read_bytes()

    # --check: which logs would rotate, and nothing written (logs, configuration, state file).
    check = run_playbook("playbooks/weekly.yml", "--check", "-i", inventory(tmp_path, webhost=host_vars(
        tmp_path, nginx, weekly_logs_other_configs=[str(tmp_path / "package" / "nginx")])))
    assert check.rc == 0, check.output
    assert snapshot(logs) == before
    assert not conf.parent.exists()  # neither the configuration nor the state file
    planned = summary(check)
    assert planned["check_mode"] and planned["config_changed"]
    assert planned["rotated"] == [str(logs / "access.log"), str(logs / "error.log")]
    assert planned["archives_before"] == 2 and planned["live_bytes_before"] == sum(before[n][0] for n in ("access.log", "error.log"))
    assert {(a["check"], a["level"]) for a in planned["alerts"]} == {("log_size", "warn"), ("logrotate_duplicate", "warn")}
    lines = check.task_result(REPORT_TASK, "webhost")["msg"]
    assert lines[1] == "would rotate 2 log(s): {0}/access.log, {0}/error.log".format(logs), lines

    # The real run: the configuration validated and installed, both logs rotated; keep 2: last week's copy
    # gzipped, the one from two weeks ago removed.
    run = run_playbook("playbooks/weekly.yml", "-i", inventory(tmp_path, webhost=host_vars(tmp_path, nginx)))
    assert run.rc == 0, run.output
    text = conf.read_text()
    assert "rotate 2\n" in text and "    compress\n    delaycompress\n" in text and "kill -USR1" in text
    assert state_file.exists()
    assert (logs / "access.log.1").read_bytes() == request_lines
    assert gzip.decompress((logs / "access.log.2.gz").read_bytes()) == b"last week\n"  # the guide's gzip archive
    assert sorted(p.name for p in logs.glob("access.log.*")) == ["access.log.1", "access.log.2.gz"]
    assert (logs / "error.log.1").stat().st_size == before["error.log"][0]
    assert changed_tasks(run) == ["Create the directories of the configuration and the state file", CONFIG_TASK, ROTATE_TASK]
    done = summary(run)
    assert done["rotated"] == [str(logs / "access.log"), str(logs / "error.log")] and not done["check_mode"]
    assert done["live_bytes_after"] == 0 and done["archives_after"] == 3  # access.log.1, .2.gz, error.log.1
    assert done["archive_bytes_after"] == sum(p.stat().st_size for p in logs.glob("*.log.*"))

    # The same run again changes nothing; in the same run, a host given an owner logrotate does not know
    # gets its configuration refused: its old one stays and nothing is rotated there.
    (tmp_path / "refused").mkdir()
    (tmp_path / "refused" / "webstack-nginx.conf").write_text("# the configuration in place\n")
    after = snapshot(logs)
    again = run_playbook("playbooks/weekly.yml", "-i", inventory(
        tmp_path, webhost=host_vars(tmp_path, nginx),
        refusedhost=host_vars(tmp_path, nginx, "refused", weekly_logs_create="0640 nosuchuser adm")))
    assert again.rc != 0 and changed_tasks(again) == [], again.output
    assert summary(again)["rotated"] == [] and not summary(again)["config_changed"]
    assert again.task_result(REPORT_TASK, "webhost")["msg"][1] == (
        "rotated 0 log(s); not rotated: {0}/access.log (log is empty), {0}/error.log (log is empty)".format(logs))
    refusal = again.task_result("Fail with logrotate's reasons (the installed configuration is kept)", "refusedhost")["msg"]
    assert "was not installed" in refusal and "unknown user 'nosuchuser'" in refusal, refusal
    assert (tmp_path / "refused" / "webstack-nginx.conf").read_text() == "# the configuration in place\n"
    assert snapshot(logs) == after

    # nginx got USR1 after the rotation: a new request goes to the fresh access.log, not to the rotated copy.
    get(nginx.url)
    assert wait_until(lambda: nginx.access_log.exists() and nginx.access_log.stat().st_size > 0, 5)
    assert (logs / "access.log.1").read_bytes() == request_lines
