"""webstack.ops.disk_usage on real filesystems: small tmpfs mounts filled past the thresholds (sandbox/faults.py)."""

from __future__ import annotations

import os
import subprocess

import faults
import pytest
from ansible_run import run_module

MODULE = "webstack.ops.disk_usage"

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="mounting a tmpfs needs root")


@pytest.fixture
def full_disk(tmp_path):
    record = faults.fill_disk(tmp_path / "full", size_mb=16, percent=95)
    yield record
    faults.undo_fill_disk(record)


@pytest.fixture
def few_inodes(tmp_path):
    """A tmpfs with 64 inodes, 60 of them used by files."""
    mount = tmp_path / "inodes"
    mount.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m,nr_inodes=64", "webstack-test-inodes", str(mount)], check=True)
    try:
        for i in range(60):
            (mount / str(i)).touch()
        yield mount
    finally:
        subprocess.run(["umount", str(mount)], check=True)


def test_a_filesystem_past_90_percent_is_critical_and_one_past_80_a_warning(full_disk, tmp_path):
    result = run_module(MODULE, dict(paths=[full_disk["mount"], str(tmp_path)]))

    assert result["changed"] is False and result["level"] == "crit", result
    full = next(f for f in result["filesystems"] if f["mount"] == full_disk["mount"])
    assert full["fstype"] == "tmpfs" and full["paths"] == [full_disk["mount"]]
    assert 94 <= full["used_percent"] <= 96 and full["used_percent"] >= faults.disk_used_percent(full_disk["mount"]) - 0.5
    assert [(a["check"], a["level"], a["threshold"]) for a in result["alerts"]] == [("disk_space", "crit", 90)]
    assert full_disk["mount"] in result["alerts"][0]["message"]

    warned = run_module(MODULE, dict(paths=[full_disk["mount"]], warn_percent=80, crit_percent=99))
    assert [(a["check"], a["level"]) for a in warned["alerts"]] == [("disk_space", "warn")] and warned["level"] == "warn"


def test_inodes_running_out_raise_their_own_alert(few_inodes):
    result = run_module(MODULE, dict(paths=[str(few_inodes)]))
    fs = result["filesystems"][0]
    assert fs["inodes_used_percent"] >= 90 and fs["used_percent"] < 80
    assert [(a["check"], a["level"]) for a in result["alerts"]] == [("disk_inodes", "crit")]


def test_without_paths_every_data_filesystem_once_and_no_memory_or_kernel_ones(full_disk):
    result = run_module(MODULE, {}, check=True)
    mounts = [f["mount"] for f in result["filesystems"]]
    assert "/" in mounts and len(mounts) == len(set(mounts))
    assert full_disk["mount"] not in mounts and "/proc" not in mounts  # a tmpfs and the kernel's view are left out
    assert all(f["fstype"] not in ("tmpfs", "proc", "sysfs", "overlay") for f in result["filesystems"])


def test_bad_input_is_refused(tmp_path):
    missing = run_module(MODULE, dict(paths=[str(tmp_path / "nope")]))
    assert missing["failed"] and "no such path: %s" % (tmp_path / "nope") in missing["msg"]
    inverted = run_module(MODULE, dict(warn_percent=95, crit_percent=90))
    assert inverted["failed"] and "warn_percent" in inverted["msg"]
