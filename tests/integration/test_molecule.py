"""Every Molecule scenario, run as `molecule test -s NAME` from the checkout's root."""

from __future__ import annotations

import re
import subprocess

import pytest
from ansible_run import BIN, ROOT, ansible_env

SCENARIOS = sorted(p.parent.name for p in (ROOT / "molecule").glob("*/molecule.yml"))


def test_there_are_scenarios():
    assert "weekly_db" in SCENARIOS


@pytest.mark.molecule
@pytest.mark.parametrize("scenario", SCENARIOS)
def test_scenario(scenario):
    proc = subprocess.run([str(BIN / "molecule"), "test", "-s", scenario], cwd=ROOT, env=ansible_env(NO_COLOR="1"),
                          capture_output=True, text=True, timeout=900, check=False)
    output = re.sub(r"\x1b\[[0-9;]*m", "", proc.stdout + proc.stderr)  # colour codes
    assert proc.returncode == 0, output[-12000:]
    for step in ("check", "converge", "idempotence", "verify", "destroy"):
        assert re.search(r"%s\W+%s: Executed: Successful" % (scenario, step), output), "no successful %s step" % step
