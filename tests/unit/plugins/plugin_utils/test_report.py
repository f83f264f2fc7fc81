"""Unit tests of the maintenance report's logic (plugins/plugin_utils/_report.py): no Ansible run."""

from __future__ import annotations

import datetime
import json

import pytest
from ansible_collections.webstack.ops.plugins.plugin_utils import _report as report

START = datetime.datetime(2026, 11, 29, 6, 0, tzinfo=datetime.timezone.utc)


def alert(check, level, message="m"):
    return dict(check=check, level=level, value=1, threshold=0, message=message)


@pytest.mark.parametrize(("module", "result", "expected"), [
    ("pg_health", {"database": "webstack", "database_size": 8437251, "connections": {"percent": 12.0},
                   "database_stats": {"cache_hit_ratio": None}},
     {"database_size:webstack": 8437251, "pg_connections_percent": 12.0}),
    ("pg_maintenance", {"database": "webstack", "size_before": 9000, "size_after": 8000}, {"database_size:webstack": 8000}),
    ("s3_backup_info", {"newest": {"name": "webstack", "age_hours": 7.25, "size": 73400320}},
     {"backup_age_hours:webstack": 7.25, "backup_size:webstack": 73400320}),
    ("s3_backup_info", {"newest": None, "alerts": [alert("backup_missing", "crit")]}, {}),
    ("s3_backup", {"key": "postgres/web_stack_20261129T020000Z.sql.zst", "size": 1234}, {"backup_size:web_stack": 1234}),
    ("redis_stats", {"stats": {"hit_rate": 0.95}, "memory": {"used": 1048576}}, {"redis_hit_rate": 0.95, "redis_memory_used": 1048576}),
    ("container_status", {"containers": [{"running": True, "restart_count": 2}, {"running": False, "restart_count": 1}]},
     {"containers_running": 1, "containers_total": 2, "container_restarts": 3}),
    ("disk_usage", {"filesystems": [{"mount": "/", "used_percent": 52.7}, {"mount": "/srv", "used_percent": 91.0}]},
     {"disk_used_percent:/": 52.7, "disk_used_percent:/srv": 91.0}),
    ("log_scan", {"patterns": {"error": {"count": 12}, "slow_request": {"count": 0}}}, {"log_count:error": 12, "log_count:slow_request": 0}),
    ("celery_status", {"workers": [{"name": "w1", "online": True}], "workers_online": 1, "queues": {"celery": 4},
                       "failed_tasks": {"count": 3, "since": "2026-11-28T10:00:00Z", "known": 9, "recent": []}},
     {"celery_workers_online": 1, "celery_failed_tasks": 3, "celery_queue:celery": 4}),
    ("celery_status", {"workers": [{"online": True}, {"online": False}], "queues": None}, {"celery_workers_online": 1}),
    ("http_check", {"ok": True, "status": 200, "seconds": 0.042}, {"http_seconds": 0.042}),
    ("certbot_status", {"certificates": [{"name": "example.com", "days_left": 12}]}, {"cert_days_left:example.com": 12}),
    ("certbot_status", {"msg": "an unexpected shape", "certificates": "not a list"}, {}),
    ("redis_cache", {"deleted": 40}, {}),  # not a figure for the trends
])
def test_figures_of_each_module(module, result, expected):
    found = report.figures_of("webstack.ops." + module, result)
    assert {key: figure["value"] for key, figure in found.items()} == expected


def test_board_columns_levels_and_failures():
    run = report.Run(started=START)
    run.add_result("db1", "Database health", "webstack.ops.pg_health", {"level": "ok", "alerts": []})
    run.add_result("db1", "Disk", "webstack.ops.disk_usage", {"results": [  # a loop: each item counts
        {"level": "warn", "alerts": [alert("disk_space", "warn", "space on /srv")]},
        {"skipped": True}]})
    run.add_result("db1", "Hidden", "webstack.ops.redis_stats", {"censored": "hidden", "changed": False})
    run.add_result("web1", "Third-party check", "acme.tools.probe", {"alerts": [alert("probe_latency", "critical"), "junk"]})
    run.add_result("web1", "Plain task", "ansible.builtin.command", {"rc": 0, "stdout": "x"})
    run.add_result("web1", "Backup", "webstack.ops.s3_backup", {"msg": "upload failed"}, failed=True)
    run.add_result("web1", "Probe", "ansible.builtin.uri", {"msg": "Status code was 503"}, failed=True, ignored=True)
    run.add_unreachable("cache1", "Gathering", {"msg": "ssh: connect to host timed out"})
    data = run.report("Daily", check_mode=True, finished=START + datetime.timedelta(seconds=30))

    levels = {name: {c: v["level"] for c, v in host["checks"].items()} for name, host in data["hosts"].items()}
    assert levels == {
        "cache1": {"connection": "crit"},
        "db1": {"pg_health": "ok", "disk_usage": "warn", "redis_stats": "unknown"},
        "web1": {"probe_latency": "crit", "s3_backup": "crit", "tasks": "warn"},
    }
    assert [h["level"] for h in data["hosts"].values()] == ["crit", "warn", "crit"]
    assert data["counts"] == {"crit": 3, "warn": 2} and data["check_mode"] is True and data["duration_s"] == 30.0
    web1 = data["hosts"]["web1"]
    assert [a["level"] for a in web1["alerts"]] == ["crit", "crit", "warn"]
    assert web1["alerts"][1]["message"] == "task Backup failed: upload failed"
    assert web1["alerts"][2]["message"] == "task Probe failed (errors ignored): Status code was 503"

    columns, rows = report.board(data)
    assert columns == ["connection", "pg_health", "disk_usage", "redis_stats", "probe_latency", "s3_backup", "tasks"]
    assert rows[1]["cells"][3]["detail"] == "the result is hidden by no_log (Hidden)" and rows[0]["cells"][1] is None


def test_alerts_a_role_keeps_as_a_fact_reach_the_board_once():
    """Roles whose alerts come from filters (weekly_logs' log sizes, monthly_security's packages) keep them in a
    <role>_alerts fact; daily_checks gathers its modules' alerts the same way: those are not counted again."""
    run = report.Run(started=START)
    disk = alert("disk_space", "warn", "space on /srv")
    run.add_result("web1", "Disk", "webstack.ops.disk_usage", {"level": "warn", "alerts": [disk]})
    run.add_result("web1", "Keep the alerts", "ansible.builtin.set_fact", {"ansible_facts": {
        "daily_checks_alerts": [dict(disk, source="disk")],
        "weekly_logs_alerts": [alert("log_size", "warn", "access.log is 900 MB")],
        "weekly_logs_summary": {"alerts": [alert("ignored", "crit")]}}})
    run.add_result("web1", "Other facts", "ansible.builtin.set_fact", {"ansible_facts": {"x_alerts": "not a list"}})
    host = run.report("Weekly", check_mode=False, finished=START)["hosts"]["web1"]
    assert [(a["check"], a["group"]) for a in host["alerts"]] == [("disk_space", "disk_usage"), ("log_size", "log_size")]
    assert host["checks"]["log_size"]["level"] == "warn" and host["level"] == "warn"


def test_checks_run_in_the_background_count_as_their_modules():
    """daily_checks starts its checks with async/poll 0 and waits with async_status: the report follows each job."""
    run = report.Run(started=START)
    run.add_result("box", "Check Redis", "webstack.ops.redis_stats", {"ansible_job_id": "j1.1", "started": 1, "finished": 0})
    run.add_result("box", "Check disk", "webstack.ops.disk_usage", {"ansible_job_id": "j2.1", "started": 1, "finished": 0})
    run.add_result("box", "Check PostgreSQL", "webstack.ops.pg_health", {"ansible_job_id": "j3.1", "started": 1, "finished": 0})
    run.add_result("box", "Wait for the checks", "ansible.builtin.async_status", {"results": [
        {"ansible_job_id": "j1.1", "finished": 1, "level": "warn", "stats": {"hit_rate": 0.5}, "memory": {"used": 10},
         "alerts": [alert("redis_hit_rate", "warn", "hit rate 0.5")]},
        {"ansible_job_id": "j2.1", "finished": 1, "level": "ok", "alerts": [], "filesystems": [{"mount": "/", "used_percent": 40.0}]},
        {"ansible_job_id": "j3.1", "finished": 1, "failed": True, "msg": "password authentication failed"},
    ]}, failed=True, ignored=True)
    run.add_result("box", "Remove the job files", "ansible.builtin.async_status", {"results": [{"ansible_job_id": "j1.1", "erased": "x"}]})
    data = run.report("Daily", check_mode=False)

    host = data["hosts"]["box"]
    assert {c: v["level"] for c, v in host["checks"].items()} == {"redis_stats": "warn", "disk_usage": "ok", "pg_health": "crit"}
    assert host["figures"]["redis_hit_rate"]["value"] == 0.5 and host["figures"]["disk_used_percent:/"]["value"] == 40.0
    assert [a["message"] for a in host["alerts"]] == ["task Check PostgreSQL failed: password authentication failed", "hit rate 0.5"]


def test_the_page_escapes_what_modules_return():
    run = report.Run(started=START)
    run.add_result('db"1', "<b>task</b>", "acme.x.y", {"alerts": [alert("<img>", "warn", "<script>alert(1)</script> & more")]})
    page = report.render_html(run.report("<Title>", False), [], keep=90)
    assert "<script" not in page and "<b>" not in page and "<img>" not in page and "<Title>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt; &amp; more" in page and "db&#34;1" in page


def saved_run(directory, moment, value, keep):
    run = report.Run(started=moment)
    run.add_result("db1", "Size", "webstack.ops.pg_maintenance", {"database": "app", "size_after": value})
    data = run.report("t", False, finished=moment)
    return data, report.save_history(str(directory), data, keep)


def test_history_keeps_the_last_runs_and_the_trend_spans_them(tmp_path):
    (tmp_path / "notes.txt").write_text("not a run")
    (tmp_path / "run-20000101T000000Z-00.json").write_text("{broken")
    saved, removed = [], []
    for day in range(5):
        data, gone = saved_run(tmp_path, START + datetime.timedelta(days=day), 1000 * (day + 1), keep=3)
        saved.append("run-%s.json" % data["run_id"])
        removed += gone
    assert removed == ["run-20000101T000000Z-00.json", *saved[:2]]  # the oldest first, the unreadable one too
    assert report.history_names(str(tmp_path)) == saved[2:] and (tmp_path / "notes.txt").exists()
    runs, notes = report.load_history(str(tmp_path))
    assert [r["hosts"]["db1"]["figures"]["database_size:app"]["value"] for r in runs] == [3000, 4000, 5000] and notes == []

    (series,) = report.trends(runs[:-1], data, keep=3)[0]["charts"]
    assert [p[1] for p in series["points"]] == [3000, 4000, 5000]
    dots = series["chart"]["dots"]
    # Rising values on an axis from 0: the oldest at the left, 3/5 of the way up; the newest at the top right.
    height = report.CHART_H - 2 * report.CHART_PAD
    assert (dots[0]["x"], dots[0]["y"]) == (report.CHART_PAD, round(report.CHART_PAD + height * 2 / 5, 1))
    assert (dots[-1]["x"], dots[-1]["y"]) == (report.CHART_W - report.CHART_PAD, report.CHART_PAD)
    assert series["chart"]["last"] == "4.9 KiB" and len(series["chart"]["points"].split()) == 3


def test_chart_axes_start_at_zero_and_end_at_100_percent_or_1():
    height = report.CHART_H - 2 * report.CHART_PAD
    disk = report.chart([(0, 35.9, "a"), (60, 36.1, "b")], "percent")
    assert [d["y"] for d in disk["dots"]] == [round(report.CHART_PAD + height * (1 - v / 100), 1) for v in (35.9, 36.1)]
    assert report.chart([(0, 0.9, "a")], "ratio")["dots"][0]["y"] == round(report.CHART_PAD + height * 0.1, 1)
    zeros = report.chart([(0, 0, "a"), (60, 0, "b")], "count")
    assert {d["y"] for d in zeros["dots"]} == {report.CHART_H / 2}
    single = report.chart([(0, 7.5, "a")], "percent")
    assert single["dots"][0]["x"] == report.CHART_W / 2 and single["last"] == "7.5%"


def test_webhook_message_carries_the_alerts_at_or_above_the_level():
    run = report.Run(started=START)
    run.add_result("web1", "Disk", "webstack.ops.disk_usage", {"level": "warn", "alerts": [alert("disk_space", "warn", "space <80%> & co")]})
    data = run.report("Daily", check_mode=True)
    assert report.webhook_message(data, "crit") is None
    message = report.webhook_message(data, "warn")
    assert message["text"] == "Daily: 0 critical, 1 warning on 1 host(s), playbook (check mode)\n\u2022 *WARN* web1 / disk_space: space &lt;80%&gt; &amp; co"
    assert [b["type"] for b in message["blocks"]] == ["header", "section", "context"]
    json.dumps(message)


def test_the_webhook_refuses_urls_that_are_not_http():
    with pytest.raises(ValueError, match="http"):
        report.post_webhook("file:///etc/passwd", {"text": "x"})
