"""webstack.ops.container_status against the test Docker engine, with faults staged for real (sandbox/faults.py)."""

from __future__ import annotations

import json
import os
import time
import uuid
from collections.abc import Iterator
from types import SimpleNamespace

import faults
import pytest
from ansible_run import run_module

MODULE = "webstack.ops.container_status"
SECOND = 1_000_000_000  # Docker's health check durations are in nanoseconds
LOOP = ["python3", "-c", "import time\nwhile True: time.sleep(1)"]


def health(test):
    return {"test": ["CMD", test], "interval": SECOND, "timeout": SECOND, "retries": 1, "start_period": 0}


@pytest.fixture
def project(docker_client, base_image, docker_engine) -> Iterator[SimpleNamespace]:
    """A compose-labelled project: web (healthy), worker (no health check), sick (its health check fails)."""
    name = "cs%s" % uuid.uuid4().hex[:8]
    made = {}
    try:
        for service, check in (("web", "true"), ("worker", None), ("sick", "false")):
            made[service] = docker_client.containers.run(
                base_image, LOOP, name="%s-%s" % (name, service), detach=True, network_mode="none",
                restart_policy={"Name": "unless-stopped"}, mem_limit="256m", memswap_limit="256m",
                healthcheck=health(check) if check else None,
                labels={"com.docker.compose.project": name, "com.docker.compose.service": service})
        faults.wait_for(lambda: all(faults.container_state(c)["running"] for c in made.values()), 30, "the test containers")
        faults.wait_for(lambda: inspect_health(made["web"]) == "healthy" and inspect_health(made["sick"]) == "unhealthy",
                        30, "the health checks")
        yield SimpleNamespace(name=name, containers=made, docker_host=docker_engine.base_url)
    finally:
        for container in made.values():
            container.remove(force=True)


def inspect_health(container):
    container.reload()
    return (container.attrs["State"].get("Health") or {}).get("Status")


def checks(result):
    """(check, level, container) of the container alerts; the kernel's OOM log is the whole machine's, tested apart."""
    return sorted((a["check"], a["level"], a["message"].split(" ")[1]) for a in result["alerts"] if a["check"] != "kernel_oom")


def by_name(result):
    return {c["name"]: c for c in result["containers"]}


def test_healthy_containers_report_state_and_one_stats_sample(project, tmp_path):
    state_file = tmp_path / "state.json"
    web, worker = "%s-web" % project.name, "%s-worker" % project.name

    result = run_module(MODULE, dict(names=[web, worker], docker_host=project.docker_host, state_file=str(state_file),
                                     kernel_log=False))  # other tests' OOM kills are in this machine's kernel log

    assert result["changed"] is False and result["level"] == "ok" and result["alerts"] == [], result
    found = by_name(result)
    assert sorted(found) == [web, worker]
    assert found[web]["health"] == "healthy" and found[worker]["health"] is None
    for figures in found.values():
        assert figures["running"] is True and figures["status"] == "running" and figures["restart_count"] == 0
        assert figures["oom_killed"] is False and figures["project"] == project.name and figures["uptime_s"] >= 0
        assert figures["memory_limit"] == 256 << 20 and 0 < figures["memory_bytes"] < 256 << 20
        assert figures["cpu_percent"] is not None and figures["cpu_percent"] >= 0
    assert result["state_updated"] is True
    saved = json.loads(state_file.read_text())
    assert saved["containers"][web] == {"restart_count": 0, "started_at": found[web]["started_at"]}


def test_staged_faults_raise_their_alerts_and_check_mode_keeps_the_state(docker_client, project, tmp_path):
    state_file = tmp_path / "state.json"
    args = dict(project=project.name, names=["%s-gone" % project.name], docker_host=project.docker_host,
                state_file=str(state_file), stats=False)
    first = run_module(MODULE, args)
    assert checks(first) == [("container_missing", "crit", "%s-gone" % project.name),
                             ("container_unhealthy", "crit", "%s-sick" % project.name)]
    assert first["level"] == "crit" and len(first["containers"]) == 3
    before = state_file.read_text()

    faults.stop_container(docker_client, "%s-worker" % project.name, timeout=1)
    oom = faults.oom_container(docker_client, "%s-web" % project.name, limit="24m")
    assert oom["after"]["oom_killed"] is True

    time.sleep(1.1)  # a later second: check mode must not move the state file's time
    checked = run_module(MODULE, args, check=True)
    web, worker = "%s-web" % project.name, "%s-worker" % project.name
    assert set(checks(checked)) >= {("container_down", "crit", worker), ("container_oom_killed", "crit", web),
                                    ("container_restarted", "warn", web)}, checked["alerts"]
    assert by_name(checked)[worker]["status"] == "exited" and by_name(checked)[web]["restart_count"] == 1
    assert checked["state_updated"] is False and state_file.read_text() == before
    if os.access("/dev/kmsg", os.R_OK):  # the kernel log names the process the OOM killer took
        assert any(o["process"] == "python3" for o in checked["kernel_oom"]), checked["kernel_oom"]
        assert "kernel_oom" in {a["check"] for a in checked["alerts"]}
    else:
        assert checked["kernel_oom"] is None and checked["notes"]

    recorded = run_module(MODULE, args)
    assert recorded["state_updated"] is True
    again = run_module(MODULE, args)  # the restart is now known: no second warning for it
    assert "container_restarted" not in {a["check"] for a in again["alerts"]}
    assert "kernel_oom" not in {a["check"] for a in again["alerts"]}
    assert {"container_down", "container_oom_killed"} <= {a["check"] for a in again["alerts"]}


def test_an_engine_that_does_not_answer_fails_with_its_address(free_port):
    url = "tcp://127.0.0.1:%d" % free_port
    result = run_module(MODULE, dict(docker_host=url))
    assert result["failed"] is True
    assert "the Docker engine %s did not answer" % url in result["msg"] and "docker_host" in result["msg"]
