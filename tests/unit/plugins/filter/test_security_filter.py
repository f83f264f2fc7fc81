"""The monthly_security role's filters: apt's output, pip-audit's JSON report and the image loop's results."""

from __future__ import annotations

import json

import pytest
from ansible_collections.webstack.ops.plugins.filter.security import apt_upgrades, image_update_report, pip_audit_report

# apt-get -s upgrade --with-new-pkgs on Debian 12 (an upgrade, a security upgrade, a new dependency).
SIMULATED = """\
Reading package lists...
Building dependency tree...
Calculating upgrade...
The following packages will be upgraded:
  base-files libssl3
Inst base-files [12.4+deb12u11] (12.4+deb12u12 Debian:12.12/stable [amd64])
Inst libssl3 [3.0.16-1~deb12u1] (3.0.17-1~deb12u2 Debian-Security:12/stable-security [amd64])
Inst linux-image-6.1.0-40-amd64 (6.1.153-1 Debian-Security:12/stable-security [amd64])
Conf base-files (12.4+deb12u12 Debian:12.12/stable [amd64])
"""
# The same upgrade for real (dpkg's lines).
APPLIED = """\
Preparing to unpack .../base-files_12.4+deb12u12_amd64.deb ...
Unpacking base-files (12.4+deb12u12) over (12.4+deb12u11) ...
Unpacking libssl3:amd64 (3.0.17-1~deb12u2) over (3.0.16-1~deb12u1) ...
Setting up base-files (12.4+deb12u12) ...
"""

# pip-audit --format json, as its JsonFormat writes it (aliases and descriptions on).
AUDIT = {"dependencies": [
    {"name": "django", "version": "4.2.1", "vulns": [
        {"id": "PYSEC-0000-1", "fix_versions": ["4.2.2"], "aliases": ["CVE-0000-1", "GHSA-aaaa"], "description": "x"},
        {"id": "GHSA-0000-2", "fix_versions": [], "aliases": [], "description": "y"}]},
    {"name": "jinja2", "version": "3.1.2", "vulns": [
        {"id": "GHSA-0000-3", "fix_versions": ["3.1.3"], "aliases": ["CVE-0000-3"], "description": "z"}]},
    {"name": "requests", "version": "2.31.0", "vulns": []},
    {"name": "private-lib", "skip_reason": "Dependency not found on PyPI and could not be audited: private-lib (1.0)"}],
    "fixes": []}


def test_apt_upgrades_reads_a_simulation_and_a_real_run():
    assert apt_upgrades(SIMULATED) == [
        {"name": "base-files", "from": "12.4+deb12u11", "to": "12.4+deb12u12", "origin": "Debian:12.12/stable", "security": False},
        {"name": "libssl3", "from": "3.0.16-1~deb12u1", "to": "3.0.17-1~deb12u2", "origin": "Debian-Security:12/stable-security",
         "security": True},
        {"name": "linux-image-6.1.0-40-amd64", "from": None, "to": "6.1.153-1", "origin": "Debian-Security:12/stable-security",
         "security": True},
    ]
    assert [(p["name"], p["from"], p["to"]) for p in apt_upgrades(APPLIED)] == [
        ("base-files", "12.4+deb12u11", "12.4+deb12u12"), ("libssl3", "3.0.16-1~deb12u1", "3.0.17-1~deb12u2")]
    assert apt_upgrades("0 upgraded, 0 newly installed, 0 to remove and 0 not upgraded.") == []
    assert apt_upgrades(None) == []


def test_pip_audit_report_one_alert_per_vulnerable_package_at_the_fixable_level():
    report = pip_audit_report({"rc": 1, "stdout": json.dumps(AUDIT), "stderr": "Found 3 known vulnerabilities in 2 packages"},
                              "crit", "container website")
    assert report["available"] is True and report["scanned"] == 3 and report["error"] is None
    assert report["skipped"] == [{"name": "private-lib", "reason": AUDIT["dependencies"][3]["skip_reason"]}]
    assert [d["name"] for d in report["vulnerable"]] == ["django", "jinja2"]
    django, jinja2 = report["alerts"]
    assert django["check"] == "dependency_vulnerable" and django["value"] == 2
    assert django["level"] == "warn"  # one of its vulnerabilities has no fix: an upgrade does not close it
    assert django["message"] == ("django 4.2.1 has 2 known vulnerabilities (PYSEC-0000-1 / CVE-0000-1, GHSA-0000-2); "
                                 "no fixed release yet for some")
    assert jinja2["level"] == "crit" and jinja2["message"].endswith("(GHSA-0000-3 / CVE-0000-3); fixed in 3.1.3")
    assert pip_audit_report({"rc": 1, "stdout": json.dumps(AUDIT)})["alerts"][1]["level"] == "warn"  # the default


def test_pip_audit_report_without_json_is_an_unavailable_scan_never_a_pass():
    clean = pip_audit_report({"rc": 0, "stdout": json.dumps({"dependencies": [], "fixes": []}), "stderr": ""})
    assert clean["available"] is True and clean["alerts"] == []
    stderr = "ERROR:pip_audit._cli:Could not connect to PyPI's vulnerability feed\nTip: your network may be blocking this service."
    failed = pip_audit_report({"rc": 1, "stdout": "", "stderr": stderr}, source="x")
    assert failed["available"] is False and failed["error"].startswith("ERROR:pip_audit._cli:Could not connect")
    assert [(a["check"], a["level"]) for a in failed["alerts"]] == [("dependency_scan_unavailable", "warn")]
    assert pip_audit_report({"rc": 2, "stdout": "{not json"})["available"] is False
    missing = pip_audit_report({"failed": True, "msg": "[Errno 2] No such file or directory: b'pip-audit'"})
    assert missing["alerts"][0]["message"].endswith("No such file or directory: b'pip-audit'")
    with pytest.raises(ValueError, match="fixable_level"):
        pip_audit_report({}, "info")


def test_image_update_report_pairs_each_image_with_its_update():
    local = {"image": "web:latest", "source": "local", "containers": ["website"]}
    pulled = {"image": "worker:1", "source": "pull", "containers": ["celery_worker"]}
    broken = {"image": "flower:2", "source": "build", "build_path": "/srv/flower", "containers": ["flower"]}
    prepared = {"results": [{"item": local, "skipped": True}, {"item": pulled, "changed": True},
                            {"item": broken, "failed": True, "msg": "Error building flower:2 - no such file"}]}
    updated = {"results": [
        {"item": local, "changed": False, "containers": [{"name": "website", "action": "unchanged"}]},
        {"item": pulled, "failed": True, "changed": False, "rolled_back": True,
         "msg": "container celery_worker with image worker:1 (sha256:abc): its health check failed; rolled back",
         "containers": [{"name": "celery_worker", "action": "rolled_back"}]},
        {"item": broken, "skipped": True}]}
    report = image_update_report(prepared, updated)
    assert [(i["image"], i["prepared"], i["changed"], i["error"] is None) for i in report["images"]] == [
        ("web:latest", None, False, True), ("worker:1", True, False, False), ("flower:2", None, False, False)]
    assert [(a["check"], a["level"], a["value"]) for a in report["alerts"]] == [
        ("image_update_failed", "crit", "worker:1"), ("image_prepare_failed", "warn", "flower:2")]
    assert "could not build image flower:2" in report["alerts"][1]["message"]
