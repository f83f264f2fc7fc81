"""Unit tests of nginx_status's reading of the pid file and the process it names (a fake /proc)."""

from __future__ import annotations

from ansible_collections.webstack.ops.plugins.module_utils import _nginx_status as nginx


def fake_proc(tmp_path, pid, name):
    (tmp_path / "proc" / str(pid)).mkdir(parents=True)
    (tmp_path / "proc" / str(pid) / "comm").write_text(name + "\n")
    return str(tmp_path / "proc")


def test_a_pid_file_naming_an_nginx_process_is_a_running_nginx(tmp_path):
    proc = fake_proc(tmp_path, 4242, "nginx")
    (tmp_path / "nginx.pid").write_text("4242\n")
    state = nginx.master(str(tmp_path / "nginx.pid"), proc=proc)
    assert state == dict(pid=4242, running=True, reason=None)
    assert nginx.alerts(True, ["syntax is ok"], state) == []


def test_missing_empty_and_stale_pid_files_are_an_nginx_that_does_not_run(tmp_path):
    proc = fake_proc(tmp_path, 7, "python3")
    cases = {"absent.pid": None, "empty.pid": "", "other.pid": "7", "gone.pid": "99999"}
    reasons = {}
    for name, text in cases.items():
        if text is not None:
            (tmp_path / name).write_text(text)
        state = nginx.master(str(tmp_path / name), proc=proc)
        assert not state["running"]
        reasons[name] = state["reason"]
    assert "No such file" in reasons["absent.pid"] and "no process ID" in reasons["empty.pid"]
    assert "is python3, not nginx" in reasons["other.pid"] and "no process 99999" in reasons["gone.pid"]


def test_a_failed_test_and_a_stopped_nginx_are_two_critical_alerts():
    found = nginx.alerts(False, nginx.output_lines("nginx: [emerg] unknown directive \"bogus\"\n\n", ""),
                         dict(pid=None, running=False, reason="pid file /run/nginx.pid: No such file or directory"))
    assert [(a["check"], a["level"]) for a in found] == [("nginx_config", "crit"), ("nginx_down", "crit")]
    assert "unknown directive" in found[0]["message"] and "/run/nginx.pid" in found[1]["message"]
