"""Run modules, roles and playbooks of this checkout with ansible-playbook, as a user would."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

import ansible_runner

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
    """playbooks/<name> on the sandbox inventory of the stack in state_dir, through ansible-runner as AWX runs it;
    asserts success, returns the output (stdout and stderr, task results as JSON as AWX shows them: runner's
    callback ignores result_format)."""
    return runner_playbook(name, state_dir, *args, **env)


@dataclass
class RunnerRun:
    status: str
    rc: int
    stdout: str
    events: list[dict]

    def failed_tasks(self) -> list[dict]:
        """The runner_on_failed events of tasks that did not ignore their errors."""
        return [e for e in self.events if e["event"] == "runner_on_failed" and not e["event_data"].get("ignore_errors")]

    @property
    def stats(self) -> dict:
        """The playbook_on_stats event's data: counts per host, and the run statistics (set_stats) as artifact_data,
        which AWX keeps as the job's artifacts."""
        [stats] = [e["event_data"] for e in self.events if e["event"] == "playbook_on_stats"]
        return stats


def runner_run(playbook: str, *args: str, inventory: str | Path, extravars: dict | None = None, env: dict | None = None,
               timeout: int = 900) -> RunnerRun:
    """playbook (a path from the checkout's root, as AWX names a project's playbook) through ansible_runner.run, as
    AWX runs a job: extra vars from env/extravars, this checkout as the project, the settings of ansible_env().
    Checks what every run leaves in its artifacts: status and rc as reported, stdout, one JSON file per event, one
    playbook_on_stats event."""
    with tempfile.TemporaryDirectory(prefix="webstack-runner-") as tmp:
        if extravars:
            (Path(tmp) / "env").mkdir()
            (Path(tmp) / "env" / "extravars").write_text(json.dumps(extravars))
        wanted = ansible_env(**(env or {}))
        run = ansible_runner.run(
            private_data_dir=tmp, project_dir=str(ROOT), playbook=str(playbook), inventory=str(inventory),
            envvars={k: v for k, v in wanted.items() if os.environ.get(k) != v}, cmdline=shlex.join(args) or None,
            quiet=True, suppress_env_files=True, timeout=timeout)
        artifacts = Path(run.config.artifact_dir)
        stdout = (artifacts / "stdout").read_text()
        events = list(run.events)
        where = "%s (%s, rc %s):\n%s" % (playbook, run.status, run.rc, stdout[-6000:])
        assert (artifacts / "status").read_text() == run.status and (artifacts / "rc").read_text() == str(run.rc), where
        assert len(list((artifacts / "job_events").glob("*.json"))) == len(events), where
        assert [e["event"] for e in events].count("playbook_on_stats") == 1, where
    return RunnerRun(run.status, run.rc, stdout, events)


def runner_playbook(name: str, state_dir: str | Path, *args: str, extravars: dict | None = None, **env: str) -> str:
    """playbooks/<name> on the sandbox inventory of the stack in state_dir through ansible-runner (runner_run); asserts
    that the job succeeded (status, rc, no failed task but ignored ones), returns its output."""
    run = runner_run("playbooks/" + name, *args, inventory=ROOT / "inventories/sandbox", extravars=extravars,
                     env=dict(env, WEBSTACK_SANDBOX_STATE=str(state_dir)))
    assert run.status == "successful" and run.rc == 0, "%s: %s, rc %s\n%s" % (name, run.status, run.rc, run.stdout[-6000:])
    assert not run.failed_tasks(), run.stdout[-6000:]
    return run.stdout


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
