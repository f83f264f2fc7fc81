"""The monthly_security role through ansible-playbook: the machine's real apt index, a real image build and rollback on
the test Docker engine, a real pip-audit, and pip list --outdated against a local package index.

pip-audit's vulnerability service is on the internet (https://pypi.org/pypi/<name>/<version>/json, a fixed URL) and
tests reach only loopback: the scan goes through pip-audit's own proxy support (HTTPS_PROXY, the role's
monthly_security_audit_environment) to a local proxy that ends the tunnel itself, with a certificate for pypi.org from
a CA made for the test (REQUESTS_CA_BUNDLE), and answers in PyPI's JSON shape with made-up advisories. That fake
service stands in for the real one only because the real one is out of reach; pip-audit, its requests and its JSON
report are real.
"""

from __future__ import annotations

import contextlib
import functools
import http.server
import importlib.metadata
import json
import socketserver
import ssl
import subprocess
import sys
import threading
import uuid
from pathlib import Path
from types import SimpleNamespace

import docker.errors
import faults
import pytest
from ansible_collections.webstack.ops.plugins.filter.security import pip_audit_report
from ansible_run import run_playbook

# As PID 1 the process must handle SIGTERM itself, or each docker stop waits 10 s for SIGKILL.
IDLE = ["python3", "-c", "import signal, sys, time\nsignal.signal(signal.SIGTERM, lambda *a: sys.exit(0))\ntime.sleep(600)"]
FIXED = "PYSEC-0000-TEST1"  # made-up advisory IDs: this is not real vulnerability data
UNFIXED = "GHSA-test-0000-0002"


class Tunnel(socketserver.StreamRequestHandler):
    """A CONNECT to pypi.org:443 is answered by this process itself over TLS: PyPI's JSON API with the test's advisories."""

    def handle(self):
        request = self.rfile.readline().decode("latin-1").split()
        while self.rfile.readline() not in (b"\r\n", b"\n", b""):
            pass
        if request[:2] != ["CONNECT", "pypi.org:443"]:  # anything else is refused: nothing leaves the machine
            self.connection.sendall(b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n")
            return
        self.connection.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
        with self.server.tls.wrap_socket(self.connection, server_side=True) as tls:
            stream = tls.makefile("rb")
            path = stream.readline().decode("latin-1").split()[1]
            while stream.readline() not in (b"\r\n", b"\n", b""):
                pass
            self.server.paths.append(path)
            parts = path.strip("/").split("/")  # pypi/<name>/<version>/json
            vulns = self.server.advisories.get((parts[1], parts[2]), []) if len(parts) == 4 else []
            body = json.dumps({"info": {"name": parts[1] if len(parts) > 1 else ""}, "vulnerabilities": vulns}).encode()
            tls.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nCache-Control: no-store\r\n"
                        b"Connection: close\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))


def advisory(vuln_id, cve, fixed_in):
    """One entry of PyPI's `vulnerabilities` (the JSON API's shape), made up."""
    return {"id": vuln_id, "aliases": [cve], "details": "A made-up advisory for the test.", "summary": None,
            "fixed_in": fixed_in, "link": "https://osv.dev/vulnerability/%s" % vuln_id, "source": "osv", "withdrawn": None}


@pytest.fixture
def vulnerability_service(tmp_path):
    """(proxy URL, CA bundle, server) of the fake PyPI vulnerability service, for pip-audit's environment."""
    cert, key = tmp_path / "pypi.pem", tmp_path / "pypi.key"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                    "-days", "1", "-subj", "/CN=pypi.org", "-addext", "subjectAltName=DNS:pypi.org",
                    "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True)
    server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), Tunnel)
    server.daemon_threads = True
    server.tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server.tls.load_cert_chain(cert, key)
    server.paths = []
    server.advisories = {
        ("django", importlib.metadata.version("django")): [advisory(FIXED, "CVE-0000-0001", ["99.0.1"])],
        ("pyyaml", importlib.metadata.version("pyyaml")): [advisory(UNFIXED, "CVE-0000-0002", [])],
    }
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield "http://127.0.0.1:%d" % server.server_address[1], str(cert), server
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def package_index(tmp_path):
    """A PEP 503 simple index on loopback (http.server's directory listings) offering Django 99.0.0 only."""
    root = tmp_path / "index"
    (root / "simple" / "django").mkdir(parents=True)
    (root / "simple" / "django" / "Django-99.0.0-py3-none-any.whl").write_bytes(b"")  # pip lists it by name only
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
    handler.log_message = lambda *args: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield "http://127.0.0.1:%d/simple/" % server.server_address[1]
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture
def app(docker_client, base_image, docker_engine):
    """A running container of the base image (no health check of its own) on the test engine, removed after the test."""
    name = "ms%s" % uuid.uuid4().hex[:8]
    container = docker_client.containers.run(base_image, IDLE, name=name, detach=True, network_mode="none")
    faults.wait_for(lambda: faults.container_state(container)["running"], 30, "the test container")
    yield SimpleNamespace(container=container, client=docker_client, base_image=base_image, docker_host=docker_engine.base_url)
    for leftover in (name, name + "-previous"):
        with contextlib.suppress(docker.errors.NotFound):
            docker_client.containers.get(leftover).remove(force=True)


def installed_versions(names):
    """{package: version} as dpkg has them installed (none asked, none listed: dpkg-query would list them all)."""
    if not names:
        return {}
    out = subprocess.run(["dpkg-query", "-W", "-f", "${Package} ${Version}\\n", *names], capture_output=True, text=True,
                         check=False).stdout
    return dict(line.split(" ", 1) for line in out.splitlines() if " " in line)


def test_monthly_security_reports_os_updates_rolls_back_a_bad_image_and_scans_dependencies(
        tmp_path, app, vulnerability_service, package_index):
    proxy, ca_bundle, service = vulnerability_service
    app_container, docker_client = app.container, app.client
    reboot = tmp_path / "reboot-required"
    reboot.write_text("*** System restart required ***\n")
    (tmp_path / "reboot-required.pkgs").write_text("linux-image-6.1.0-28-amd64\n")
    build = tmp_path / "build"
    build.mkdir()
    (build / "Dockerfile").write_text("FROM %s\nHEALTHCHECK --interval=1s --timeout=2s --retries=1 CMD [\"false\"]\n" % app.base_image)
    bad_image = "webstack-test/monthly:%s" % app_container.name
    old_image = app_container.image.id
    variables = {
        "ansible_python_interpreter": sys.executable,
        "monthly_security_os_update_cache": False,  # the machine's index as it is: no network
        "monthly_security_reboot_required_file": str(reboot),
        "monthly_security_docker_host": app.docker_host,
        "monthly_security_images": [{"image": bad_image, "source": "build", "build_path": str(build), "build_pull": False,
                                     "containers": [app_container.name]}],
        "monthly_security_health_timeout": 20,
        "monthly_security_audit_venv": str(Path(sys.executable).parents[1]),  # this checkout's .venv
        "monthly_security_audit_cache_dir": str(tmp_path / "pip-audit-cache"),  # the fake answers stay in the test's dir
        "monthly_security_audit_environment": {"HTTPS_PROXY": proxy, "https_proxy": proxy, "NO_PROXY": "", "no_proxy": "",
                                               "REQUESTS_CA_BUNDLE": ca_bundle},
        "monthly_security_pip_index_url": package_index,
        "monthly_security_pip_environment": {"PIP_CONFIG_FILE": "/dev/null"},  # only the test's index, not the machine's
        "monthly_security_outdated_warn": 0,
    }
    (tmp_path / "vars.json").write_text(json.dumps(variables))
    play = tmp_path / "play.yml"
    play.write_text(json.dumps([{"name": "Monthly security", "hosts": "localhost", "gather_facts": False,
                                 "roles": [{"role": "webstack.ops.monthly_security"}]}]))

    run = run_playbook(play, "-i", "localhost,", "-c", "local", "-e", "@%s" % (tmp_path / "vars.json"))

    # The rollback is critical: the run went on to the summary, then failed at the end.
    assert run.rc != 0, run.output
    failed = run.task_result("Fail on critical alerts")
    assert failed["failed"] is True and app_container.name in failed["msg"] and "rolled back" in failed["msg"], failed
    summary = run.report["global_custom_stats"]["monthly_security"]["localhost"]
    assert summary["level"] == "crit"
    checks = sorted((a["check"], a["level"]) for a in run.task_result("Hand the alerts to the maintenance report")["alerts"])

    # OS: the simulated upgrade lists real packages of this machine, each upgraded from the version installed now;
    # the reboot flag and its packages.
    os_report = summary["os"]
    assert os_report["mode"] == "report" and os_report["checked"] is True and isinstance(os_report["packages"], list)
    upgrades = {p["name"]: p for p in os_report["packages"] if p["from"]}
    assert installed_versions(sorted(upgrades)) == {name: p["from"] for name, p in upgrades.items()}
    assert all(p["to"] != p["from"] for p in upgrades.values())
    assert run.task_result("List the packages an upgrade would install (simulated, nothing installed)")["changed"] is False
    assert run.task_result("Refresh the package index").get("skipped") is True  # update_cache false: no network
    assert os_report["reboot_required"] is True and os_report["reboot_packages"] == ["linux-image-6.1.0-28-amd64"]
    assert ("reboot_required", "warn") in checks
    assert ("os_security_updates", "warn") in checks or not os_report["security_packages"]

    # Images: built, the container recreated on it, unhealthy, rolled back to its old image under its name.
    [image] = summary["images"]
    assert image["prepared"] is True and image["containers"][0]["action"] == "rolled_back", image
    assert "its health check failed" in image["error"] and bad_image in image["error"]
    container = docker_client.containers.get(app_container.name)
    assert container.id == app_container.id and container.image.id == old_image and container.status == "running"
    assert docker_client.images.get(bad_image).attrs["Config"]["Healthcheck"]["Test"] == ["CMD", "false"]
    with pytest.raises(docker.errors.NotFound):
        docker_client.containers.get(app_container.name + "-previous")
    assert ("image_update_failed", "crit") in checks

    # Dependencies: every pinned package of the venv went to the (fake) service; one alert per vulnerable package.
    deps = summary["dependencies"]
    assert deps["checked"] is True and deps["available"] is True and deps["scanned"] == deps["packages"] > 20
    assert "/pypi/django/%s/json" % importlib.metadata.version("django") in service.paths
    assert len(service.paths) == deps["packages"]
    assert sorted(d["name"] for d in deps["vulnerable"]) == ["django", "pyyaml"]
    messages = {a["message"].split(" ")[0]: a for a in summary["alerts"] if a["check"] == "dependency_vulnerable"}
    assert messages["django"]["level"] == "warn" and FIXED in messages["django"]["message"]
    assert "CVE-0000-0001" in messages["django"]["message"] and "fixed in 99.0.1" in messages["django"]["message"]
    assert messages["pyyaml"]["level"] == "warn" and "no fixed release yet" in messages["pyyaml"]["message"]

    # Outdated packages: the local index offers a newer Django only.
    assert summary["outdated"] == [{"name": "Django", "version": importlib.metadata.version("django"),
                                    "latest_version": "99.0.0", "latest_filetype": "wheel"}]
    assert ("dependencies_outdated", "warn") in checks


def test_a_scan_that_cannot_reach_the_service_is_a_warning_with_pip_audits_error(tmp_path, free_port):
    """pip-audit's real failure (its service unreachable: a proxy port nothing listens on) read as the role reads it."""
    requirements = tmp_path / "requirements.txt"
    requirements.write_text("django==%s\n" % importlib.metadata.version("django"))
    dead = "http://127.0.0.1:%d" % free_port
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "HTTPS_PROXY": dead, "https_proxy": dead, "NO_PROXY": "", "no_proxy": ""}
    proc = subprocess.run([sys.executable, "-m", "pip_audit", "-r", str(requirements), "--no-deps", "--disable-pip",
                           "--format", "json", "--progress-spinner", "off", "--timeout", "5",
                           "--cache-dir", str(tmp_path / "cache")], capture_output=True, text=True, env=env, timeout=60, check=False)

    report = pip_audit_report(dict(rc=proc.returncode, stdout=proc.stdout, stderr=proc.stderr), source="the venv /srv/app")

    assert proc.returncode != 0 and not proc.stdout.strip().startswith("{"), proc.stdout
    assert report["available"] is False and report["vulnerable"] == []
    [found] = report["alerts"]
    assert found["check"] == "dependency_scan_unavailable" and found["level"] == "warn"
    assert "the dependency vulnerability scan of the venv /srv/app could not run (pip-audit exit code 1)" in found["message"]
    assert "127.0.0.1" in found["message"] or "proxy" in found["message"].lower(), found["message"]
