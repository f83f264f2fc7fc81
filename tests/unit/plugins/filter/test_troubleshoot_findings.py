"""Unit tests of the troubleshoot role's findings (plugins/filter/troubleshoot.py): each symptom's causes and remedies
from registered results shaped like the modules' (no servers)."""

from __future__ import annotations

import pytest
from ansible_collections.webstack.ops.plugins.filter.troubleshoot import (
    docker_usage,
    du_entries,
    loadavg,
    meminfo,
    troubleshoot_actions,
    troubleshoot_applied,
    troubleshoot_diagnose,
    troubleshoot_not_back,
    troubleshoot_report,
)

SETTINGS = dict(project="webstack", postgres_container="postgres_db", celery_containers=["celery_worker", "celery_beat"],
                broker_container="redis_cache", flower_container="flower", static_root="/srv/static", static_probe="admin/css/base.css",
                static_content_type="text/css", disk_top=5)


def container(name, running=True, **extra):
    return dict(dict(name=name, running=running, status="running" if running else "exited", exit_code=0 if running else 137,
                     oom_killed=False, restart_count=0, restart_policy="unless-stopped"), **extra)


def containers(*items, missing=()):
    return {"containers": list(items), "alerts": [{"check": "container_missing", "value": name} for name in missing]}


def diagnose(symptom, **gathered):
    return troubleshoot_diagnose(gathered, symptom, SETTINGS)


def causes(result):
    return [(f["level"], f["action"], f["target"]) for f in result["findings"]]


def test_an_unknown_symptom_is_refused_with_the_choices():
    with pytest.raises(ValueError, match="high_memory, high_cpu"):
        troubleshoot_diagnose({}, "slow", {})


def test_celery_a_stopped_worker_is_started_and_a_silent_running_one_restarted():
    status = {"workers_online": 0, "workers": [{"name": "worker@h", "online": False}], "queues": {"celery": 3}}
    down = diagnose("celery", containers=containers(container("celery_worker", running=False), container("celery_beat"),
                                                    container("redis_cache"), container("flower")), celery=status)
    assert causes(down) == [("crit", "start_container", "celery_worker")]  # no second "restart" for the same cause
    assert "celery_worker is exited (exit code 137)" in down["findings"][0]["cause"]
    silent = diagnose("celery", containers=containers(container("celery_worker"), container("celery_beat"), container("redis_cache")),
                      celery=status)
    assert causes(silent) == [("crit", "restart_container", "celery_worker")]
    assert "worker@h (offline)" in silent["findings"][0]["evidence"][0]
    healthy = diagnose("celery", containers=containers(container("celery_worker")), celery={"workers_online": 1, "queues": {"celery": 0}})
    assert healthy["findings"] == []


def test_celery_a_dead_broker_and_a_missing_container():
    result = diagnose("celery", containers=containers(container("redis_cache", running=False), missing=["celery_beat"]),
                      celery={"failed": True, "msg": "broker refused"})
    assert causes(result) == [("crit", None, None), ("crit", "start_container", "redis_cache")]
    assert "celery_beat does not exist" in result["findings"][0]["cause"]


def test_db_connections_from_warn_to_a_restart_and_long_sessions_are_advice_only():
    def connections(total):
        return {"connections": {"total": total, "max_connections": 100, "percent": float(total), "by_state": {"idle": total - 1, "active": 1},
                                "superuser_reserved": 3},
                "long_transactions": [{"pid": 42, "user": "postgres", "application_name": "psql", "state": "active",
                                       "transaction_seconds": 400, "query": "LOCK TABLE pages_pagevisit", "wait_event_type": "Timeout",
                                       "wait_event": "PgSleep"}]}
    ok = diagnose("db_connections", containers=containers(container("postgres_db")), postgres=connections(50))
    assert causes(ok) == [("warn", None, None)]  # the long transaction only
    assert "pg_terminate_backend(42)" in ok["findings"][0]["remedy"] and "LOCK TABLE" in ok["findings"][0]["evidence"][0]
    assert causes(diagnose("db_connections", postgres=connections(85)))[0] == ("warn", None, None)
    crit = diagnose("db_connections", postgres=connections(95))
    assert causes(crit)[0] == ("crit", "restart_container", "postgres_db")
    assert "95 of max_connections 100" in crit["findings"][0]["cause"] and "idle 94" in crit["findings"][0]["evidence"][0]


def test_db_connections_a_stopped_database_and_a_refusing_one():
    stopped = diagnose("db_connections", containers=containers(container("postgres_db", running=False)),
                       postgres={"failed": True, "msg": "connection refused"})
    assert causes(stopped) == [("crit", "start_container", "postgres_db")]
    full = diagnose("db_connections", containers=containers(container("postgres_db")),
                    postgres={"failed": True, "msg": "FATAL: sorry, too many clients already"})
    assert causes(full) == [("crit", "restart_container", "postgres_db")]


def test_high_memory_container_near_its_limit_oom_and_redis_full():
    result = diagnose("high_memory",
                      containers={"containers": [container("website", memory_percent=95.0, memory_bytes=730 << 20, memory_limit=768 << 20),
                                                 container("celery_worker", running=False, oom_killed=True, memory_limit=768 << 20)],
                                  "kernel_oom": [{"process": "python3", "pid": 7, "time": "t", "message": "Killed process 7"}]},
                      meminfo="MemTotal: 1000 kB\nMemAvailable: 50 kB\n",
                      redis={"memory": {"used_percent": 93.0, "used": 120 << 20, "limit": 128 << 20, "limit_source": "maxmemory",
                                        "maxmemory_policy": "allkeys-lru"}, "stats": {"evicted_keys": 0}, "keyspace": {"db1": {"keys": 9}}})
    assert sorted(causes(result), key=repr) == sorted([("crit", "start_container", "celery_worker"), ("warn", "restart_container", "website"),
                                                       ("warn", None, None), ("warn", None, None), ("warn", "clear_cache", None)], key=repr)
    redis = next(f for f in result["findings"] if f["action"] == "clear_cache")
    assert "93.0% of its memory limit (120.0 MiB of 128.0 MiB maxmemory, policy allkeys-lru)" in redis["cause"]
    assert result["facts"]["host_memory"]["used_percent"] == 95.0


def test_high_cpu_hot_container_load_and_dead_tuples():
    result = diagnose("high_cpu", containers=containers(container("website", cpu_percent=180.0), container("flower", cpu_percent=1.0)),
                      loadavg="3.10 2.00 1.00 3/200 123\n", stat="cpu  1 2 3\ncpu0 1 2 3\ncpu1 1 2 3\nintr 5\n",
                      postgres={"dead_tuples": [{"name": "public.pages_pagevisit", "dead_tuples": 50000}]})
    assert causes(result) == [("warn", "restart_container", "website"), ("warn", None, None), ("warn", "vacuum_analyze", None)]
    assert result["facts"]["load"] == {"load1": 3.1, "load5": 2.0, "load15": 1.0, "cpus": 2, "load1_per_cpu": 1.55}


def static_find(entries, *names, missing=False):
    """A registered `find` of /srv/static for the probe file and the manifest."""
    return {"examined": entries, "files": [{"path": "/srv/static/" + name} for name in names],
            "skipped_paths": {"/srv/static": "'/srv/static' is not a directory"} if missing else {}}


def test_static_files_missing_or_empty_root_missing_probe_404_and_wrong_type():
    probe_404 = {"status": 404, "url": "https://127.0.0.1:8443/static/admin/css/base.css"}
    missing = diagnose("static_files", static_files=static_find(0, missing=True), probe=probe_404)
    assert causes(missing) == [("crit", "collectstatic", None)] and "does not exist" in missing["findings"][0]["cause"]
    empty = diagnose("static_files", static_files=static_find(0), probe=probe_404)
    assert causes(empty) == [("crit", "collectstatic", None)]
    assert "is empty" in empty["findings"][0]["cause"] and "nginx answers 404" in empty["findings"][0]["evidence"][0]
    partial = diagnose("static_files", static_files=static_find(40, "admin/js/core.js"), probe=probe_404)
    assert causes(partial) == [("crit", "collectstatic", None)] and "incomplete" in partial["findings"][0]["cause"]
    misrouted = diagnose("static_files", static_files=static_find(138, "admin/css/base.css"), probe=probe_404)
    assert causes(misrouted) == [("crit", None, None)] and "alias" in misrouted["findings"][0]["remedy"]
    typed = diagnose("static_files", static_files=static_find(138, "admin/css/base.css"),
                     probe={"status": 200, "content_type": "application/octet-stream"})
    assert causes(typed) == [("warn", None, None)] and "mime.types" in typed["findings"][0]["remedy"]
    fine = diagnose("static_files", static_files=static_find(138, "admin/css/base.css", "staticfiles.json"),
                    probe={"status": 200, "content_type": "text/css"})
    assert fine["findings"] == [] and fine["facts"]["entries"] == 138 and fine["facts"]["manifest"] is True
    s3 = troubleshoot_diagnose({"s3_objects": {"s3_keys": []}, "s3_probe": {"status": 403, "url": "https://b.s3/static/x"}},
                               "static_files", dict(SETTINGS, static_root=""))  # S3 storage: no STATIC_ROOT on the host
    assert causes(s3) == [("crit", "collectstatic", None), ("crit", None, None)]


def cert(days_left, *, serial="AA", served_days=None, served_serial=None, fingerprint="F1", **served):
    served_fingerprint = fingerprint if served_serial in (None, serial) else "F2"
    return {"name": "example.com", "serial": serial, "not_after": "x", "days_left": days_left, "fingerprint_sha256": fingerprint,
            "due": days_left < 30, "renewal": {"authenticator": "webroot", "server": "https://acme"},
            "served": dict({"serial": served_serial or serial, "days_left": served_days if served_days is not None else days_left,
                            "fingerprint_sha256": served_fingerprint, "not_after": "y", "issuer": "CN=R11"}, **served)}


def test_ssl_expired_renewal_reload_and_unreachable():
    expired = diagnose("ssl_expired", certs={"certificates": [cert(-3, verified=False, verify_error="certificate has expired")]})
    assert causes(expired) == [("crit", "renew_certificate", "example.com")]
    assert "certbot did not renew it" in expired["findings"][0]["cause"]
    assert "does not verify: certificate has expired" in expired["findings"][0]["evidence"]
    soon = diagnose("ssl_expired", certs={"certificates": [cert(5)]})
    assert causes(soon) == [("warn", "renew_certificate", "example.com")]
    stale = diagnose("ssl_expired", certs={"certificates": [cert(80, serial="BB", served_days=-2, served_serial="AA")]})
    assert causes(stale) == [("crit", "reload_nginx", "example.com")] and "not certbot's valid one" in stale["findings"][0]["cause"]
    down = diagnose("ssl_expired", certs={"certificates": [cert(80, error="connection refused")]})
    assert causes(down) == [("crit", None, None)]
    assert diagnose("ssl_expired", certs={"certificates": [cert(80, verified=True)]})["findings"] == []


def test_disk_full_names_the_largest_entry_and_docker_reclaimable_space():
    du = [{"item": "/mnt/disk", "stdout": "15000\t/mnt/disk/filler.bin\n4\t/mnt/disk/small\n15004\t/mnt/disk\n"}]
    docker_df = {"disk_usage": {
        "LayersSize": 10 << 20,
        "Images": [{"Id": "sha256:" + "a" * 64, "RepoTags": ["web:latest"], "Size": 5 << 20, "Containers": 2},
                   {"Id": "sha256:" + "b" * 64, "RepoTags": None, "Size": 1 << 20, "Containers": 0}],
        "Containers": [{"Names": ["/stray"], "State": "exited", "Labels": {}, "SizeRw": 4096},
                       {"Names": ["/celery_worker"], "State": "exited", "Labels": {"com.docker.compose.project": "webstack"}, "SizeRw": 8}],
        "BuildCache": [{"Size": 2048, "InUse": False}]}}
    result = diagnose("disk_full", disks={"filesystems": [{"mount": "/mnt/disk", "used_percent": 95.0, "available_bytes": 800 << 10}]},
                      du=du, docker=docker_df, logs={"files": [{"path": "/var/log/nginx/access.log", "size": 200 << 20}]})
    assert causes(result) == [("crit", None, None), ("warn", "prune_docker", None), ("warn", "rotate_logs", None)]
    full = result["findings"][0]["cause"]
    assert full == "filesystem /mnt/disk is 95% full (800.0 KiB free); the largest entry is /mnt/disk/filler.bin (14.6 MiB)"
    docker = result["findings"][1]["cause"]
    assert "1 dangling image(s)" in docker and "1 stopped container(s)" in docker and "(stray)" in docker and "celery_worker" not in docker


def test_du_entries_and_docker_usage_and_proc_parsers():
    assert du_entries([{"item": "/", "stdout": "8\t/\n"}], 3) == [{"path": "/", "size": 8192, "size_human": "8.0 KiB"}]
    assert docker_usage({}, "webstack")["reclaimable"] == 0
    assert meminfo("MemTotal: 2048 kB\nMemAvailable: 512 kB\nSwapTotal: 0 kB\n")["used_percent"] == 75.0
    assert loadavg("", "")["load1_per_cpu"] is None


def test_actions_applied_and_report():
    findings = [{"level": "crit", "cause": "c", "evidence": ["e"], "remedy": "start it", "action": "start_container", "target": "w"},
                {"level": "warn", "cause": "d", "evidence": [], "remedy": "look", "action": None, "target": None},
                {"level": "crit", "cause": "f", "evidence": [], "remedy": "start", "action": "start_container", "target": "w"}]
    assert troubleshoot_actions(findings, "start_container") == ["w"]
    applied = troubleshoot_applied({"start_container": {"results": [{"item": "w", "changed": True}]},
                                    "clear_cache": {"skipped": True},
                                    "vacuum_analyze": {"changed": True, "database": "webstack",
                                                       "tables": [{"name": "public.pages_pagevisit", "action": "vacuum_analyze"}]},
                                    "collectstatic": {"changed": True, "stdout": "125 static files copied to '/srv/static'.\n"}})
    assert applied == [{"action": "start_container", "target": "w", "changed": True, "detail": None},
                       {"action": "vacuum_analyze", "target": None, "changed": True,
                        "detail": "VACUUM ANALYZE of webstack: public.pages_pagevisit"},
                       {"action": "collectstatic", "target": None, "changed": True, "detail": "125 static files copied to '/srv/static'."}]
    diagnosis_only = troubleshoot_report(findings[:2], [], "celery", False)
    assert diagnosis_only[0] == "celery: 2 finding(s)" and "-e troubleshoot_apply=true" in diagnosis_only[3]
    assert "-e troubleshoot_apply" not in diagnosis_only[5]  # advice only: nothing to apply
    assert troubleshoot_report(findings, applied, "celery", True)[-1] == "applied collectstatic: 125 static files copied to '/srv/static'."
    assert troubleshoot_report([], [], "disk_full", True) == ["disk_full: nothing found: the guide's checks for it all pass",
                                                              "applied: nothing (no finding calls for a remedy this runbook applies)"]


def test_the_report_under_check_mode_says_what_would_be_applied():
    findings = [{"level": "crit", "cause": "c", "evidence": [], "remedy": "r", "action": "collectstatic", "target": None},
                {"level": "crit", "cause": "d", "evidence": [], "remedy": "r", "action": "collectstatic", "target": None}]
    assert troubleshoot_report(findings, [], "static_files", True, True)[-1] == "would apply collectstatic (check mode: nothing changed)"


def test_containers_not_back_are_named_with_their_state():
    def info(name, status, running, health=None, exists=True):
        state = {"Status": status, "Running": running, **({"Health": {"Status": health}} if health else {})}
        return {"item": name, "exists": exists, "container": {"State": state, "Config": {"Env": ["PASSWORD=secret"]}}}
    results = [info("celery_worker", "running", True), info("website", "running", True, "healthy"),
               info("postgres_db", "running", True, "starting"), info("flower", "exited", False),
               {"item": "gone", "exists": False, "container": None}, {"item": "x", "skipped": True}]
    assert troubleshoot_not_back(results) == ["postgres_db (running, health starting)", "flower (exited)", "gone (missing)"]
