"""Run modules, roles and playbooks of this checkout with ansible-playbook, as a user would."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


@dataclass
class PlaybookRun:
    rc: int
    stdout: str
    stderr: str
    report: dict

    def task_result(self, task_name: str, host: str = "localhost") -> dict:
        """The result of the last task of that name (the json callback's per-host dict)."""
        found = None
        for play in self.report.get("plays", []):
            for task in play["tasks"]:
                if task_title(task) == task_name and host in task["hosts"]:
                    found = task["hosts"][host]
        if found is None:
            raise AssertionError("task %r did not run on %s:\n%s\n%s" % (task_name, host, self.stdout, self.stderr))
        return found

    @property
    def output(self) -> str:
        return self.stdout + self.stderr


def task_title(task: dict) -> str:
    """A task's name without the "role : " prefix Ansible adds to role tasks."""
    return task["task"]["name"].split(" : ", 1)[-1]


def ansible_env(**extra: str) -> dict:
    env = dict(os.environ)
    env.update(
        ANSIBLE_CONFIG=str(ROOT / "ansible.cfg"),
        ANSIBLE_NOCOLOR="1",
        ANSIBLE_FORCE_COLOR="0",
        ANSIBLE_SHOW_CUSTOM_STATS="1",
        PATH="%s:%s" % (BIN, env.get("PATH", "")),
    )
    env.update(extra)
    return env


def run_playbook(
    playbook: str | Path, *args: str, json_output: bool = True, timeout: int = 300, env: dict | None = None
) -> PlaybookRun:
    """ansible-playbook from the checkout's root; with json_output the result is parsed; env adds variables."""
    extra = dict(env or {})
    if json_output:
        extra.setdefault("ANSIBLE_STDOUT_CALLBACK", "ansible.posix.json")
    proc = subprocess.run(
        [str(BIN / "ansible-playbook"), str(playbook), *args],
        cwd=ROOT, env=ansible_env(**extra), capture_output=True, text=True, timeout=timeout, check=False,
    )
    report = json.loads(proc.stdout) if json_output and proc.stdout.strip().startswith("{") else {}
    return PlaybookRun(proc.returncode, proc.stdout, proc.stderr, report)


def run_module(module: str, args: dict, **options) -> dict:
    """The task result of one module call on localhost (see run_module_full)."""
    return run_module_full(module, args, **options)[0]


def run_module_full(
    module: str, args: dict, check: bool = False, diff: bool = False, interpreter: str = sys.executable
) -> tuple[dict, PlaybookRun]:
    """One task on localhost (by default with the venv's Python); returns (task result, the run)."""
    with tempfile.TemporaryDirectory() as tmp:
        playbook = Path(tmp) / "play.yml"
        playbook.write_text(json.dumps([{
            "name": "module under test",
            "hosts": "localhost",
            "gather_facts": False,
            "vars": {"ansible_python_interpreter": interpreter},
            "tasks": [{"name": "under test", module: "{{ module_args }}"}],
        }]))
        extra = Path(tmp) / "vars.json"
        extra.write_text(json.dumps({"module_args": args}))
        flags = ["-i", "localhost,", "-c", "local", "-e", "@%s" % extra]
        if check:
            flags.append("--check")
        if diff:
            flags.append("--diff")
        run = run_playbook(playbook, *flags)
    return run.task_result("under test"), run


def sandbox_playbook(name: str, state_dir: str | Path, *args: str, **env: str) -> str:
    """playbooks/<name> on the sandbox inventory of the stack in state_dir; asserts success, returns the output."""
    proc = subprocess.run([str(BIN / "ansible-playbook"), str(ROOT / "playbooks" / name), *args], cwd=ROOT,
                          env=ansible_env(WEBSTACK_SANDBOX_STATE=str(state_dir), **env), capture_output=True, text=True,
                          timeout=900, check=False)
    assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr[-3000:]
    return proc.stdout


def stackctl(*args: str, state_dir: str | Path) -> str:
    """sandbox/stackctl as `make sandbox-up` runs it, on a state dir of the test's own."""
    proc = subprocess.run([sys.executable, str(ROOT / "sandbox/stackctl"), *args, "--state-dir", str(state_dir)],
                          capture_output=True, text=True, timeout=900, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout


def local_inventory(tmp_path: Path, group: str, host: str, **host_vars) -> str:
    """A one-host inventory (this machine, the test's Python) in group; returns its path."""
    values = dict(ansible_connection="local", ansible_python_interpreter=sys.executable, prerequisites_method="none")
    values.update(host_vars)
    path = tmp_path / "inventory.json"
    path.write_text(json.dumps({group: {"hosts": {host: values}}}))
    return str(path)
