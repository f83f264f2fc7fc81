"""The collection as AWX runs it, without an AWX server (none runs here, and none is faked): jobs through
ansible-runner, AWX's own runner, with extra vars only; a required variable that is missing fails the job at once,
naming it; the execution environment's build context from ansible-builder (no image is built: no registry).
The cadence playbooks on the whole sandbox go through ansible-runner too (ansible_run.sandbox_playbook)."""

from __future__ import annotations

import json
import shutil
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import yaml
from ansible_run import BIN, ROOT, ansible_env, run_playbook, runner_run

# Playbook, extra vars, the variable the failed task's message must name. Every play reaches a host of its group (web,
# db or cache) of a local inventory without any service: a missing variable must stop the job before anything else.
REQUIRED = [
    ("playbooks/restore.yml", {}, "restore_force"),
    ("playbooks/restore.yml", {"restore_force": "maybe"}, "argument 'restore_force'"),  # the role's argument_specs
    ("playbooks/emergency_db_restore.yml", {}, "emergency_db_restore_confirm"),
    ("playbooks/security_breach.yml", {}, "security_breach_confirm"),
    ("playbooks/troubleshoot.yml", {}, "troubleshoot_symptom"),
    ("playbooks/backup.yml", {}, "webstack_s3_bucket"),
    ("playbooks/monthly.yml", {}, "webstack_s3_bucket"),
    ("playbooks/quarterly.yml", {}, "webstack_s3_bucket"),
    ("awx/setup.yml", {}, "CONTROLLER_HOST"),
]


def _local_inventory(tmp_path: Path) -> Path:
    host = dict(ansible_connection="local", ansible_python_interpreter=str(BIN / "python"), prerequisites_method="none")
    path = tmp_path / "inventory.json"
    path.write_text(json.dumps({group: {"hosts": {"target": host}} for group in ("web", "db", "cache")}))
    return path


def test_jobs_missing_a_required_variable_fail_at_once_naming_it(tmp_path):
    """Each as an AWX job would run: ansible-runner, extra vars from env/extravars, no terminal to ask on."""
    inventory = _local_inventory(tmp_path)
    with ThreadPoolExecutor(max_workers=3) as pool:
        runs = list(pool.map(lambda case: runner_run(case[0], inventory=inventory, extravars=case[1],
                                                     env={"CONTROLLER_HOST": ""}, timeout=120), REQUIRED))
    for (playbook, extravars, message), run in zip(REQUIRED, runs, strict=True):
        where = "%s %s: %s\n%s" % (playbook, extravars, run.status, run.stdout[-3000:])
        assert run.status == "failed" and run.rc == 2, where
        [failed] = run.failed_tasks()
        assert message in failed["event_data"]["res"]["msg"], where
        assert not [e for e in run.events if e["event_data"].get("res", {}).get("changed")], where  # nothing changed


def test_ansible_runner_runs_a_job_with_the_checkouts_settings_and_keeps_its_artifacts(tmp_path):
    """What runner_run checks on every sandbox run, here on a playbook of this test: the collection found through the
    checkout's ansible.cfg, extra vars read, an ignored failure allowed, the run statistics kept as AWX's job artifacts."""
    playbook = tmp_path / "job.yml"
    playbook.write_text(yaml.safe_dump([{
        "name": "job", "hosts": "db", "gather_facts": False,
        "tasks": [
            {"name": "A module of the collection", "webstack.ops.disk_usage": {"paths": [str(tmp_path)]}, "register": "disk"},
            {"name": "A failure the job ignores", "ansible.builtin.fail": {"msg": "ignored"}, "ignore_errors": True},
            {"name": "Keep what was seen",
             "ansible.builtin.set_stats": {"data": {"job": {"marker": "{{ marker }}", "level": "{{ disk.level }}"}}}},
        ]}]))
    run = runner_run(str(playbook), "--diff", inventory=_local_inventory(tmp_path), extravars={"marker": "from AWX"})
    assert run.status == "successful" and run.rc == 0, run.stdout[-3000:]
    assert [e["event_data"]["task"] for e in run.events if e["event"] == "runner_on_failed"] == ["A failure the job ignores"]
    assert run.failed_tasks() == []
    assert run.stats["artifact_data"] == {"job": {"marker": "from AWX", "level": "ok"}}
    assert "A module of the collection" in run.stdout and "ok=3" in run.stdout


def test_every_playbook_and_the_awx_setup_pass_syntax_check():
    playbooks = sorted(str(p.relative_to(ROOT)) for p in (ROOT / "playbooks").glob("*.yml")) + ["awx/setup.yml"]
    run = run_playbook(playbooks[0], *playbooks[1:], "-i", "inventories/sandbox", "--syntax-check", json_output=False)
    assert run.rc == 0, run.output


def test_ansible_builder_creates_the_execution_environments_build_context(tmp_path):
    """`ansible-builder create` on execution-environment.yml and the files it names, with the collection's tarball where
    `make build` leaves it; the context is what `ansible-builder build` would build the image from."""
    definition = yaml.safe_load((ROOT / "execution-environment.yml").read_text())
    source = tmp_path / "source"
    for name in ["execution-environment.yml"] + [definition["dependencies"][k] for k in ("python", "system", "galaxy")]:
        (source / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(ROOT / name, source / name)
    context = tmp_path / "context"
    for argv in (["ansible-galaxy", "collection", "build", "--output-path", str(source / "build"), "."],
                 ["ansible-builder", "create", "--file", str(source / "execution-environment.yml"), "--context", str(context),
                  "--output-filename", "Containerfile"]):
        proc = subprocess.run([str(BIN / argv[0]), *argv[1:]], cwd=ROOT, env=ansible_env(), capture_output=True, text=True,
                              timeout=120, check=False)
        assert proc.returncode == 0, proc.stdout + proc.stderr

    containerfile = (context / "Containerfile").read_text()
    assert 'ARG EE_BASE_IMAGE="quay.io/ansible/awx-ee:' in containerfile  # a default, changed with --build-arg
    assert 'ARG PYCMD="/usr/bin/python3.11"' in containerfile
    assert "ansible-galaxy collection install $ANSIBLE_GALAXY_CLI_COLLECTION_OPTS -r requirements.yml" in containerfile
    build = context / "_build"
    python = (build / "requirements.txt").read_text()
    for library in ("psycopg2-binary", "boto3", "redis", "docker", "cryptography", "zstandard", "Jinja2"):
        assert "\n%s>=" % library in "\n" + python, library
    bindep = (build / "bindep.txt").read_text()
    assert "postgresql-client [platform:dpkg]" in bindep and "postgresql [platform:rpm]" in bindep
    collections = yaml.safe_load((build / "requirements.yml").read_text())["collections"]
    [own] = [c for c in collections if c.get("type") == "file"]
    version = yaml.safe_load((ROOT / "galaxy.yml").read_text())["version"]
    assert own["name"] == "collections/webstack-ops-%s.tar.gz" % version  # in step with galaxy.yml
    assert (build / own["name"]).is_file()  # ansible-galaxy runs in /build, where _build/ is copied
    assert {"community.docker", "community.postgresql"} <= {c["name"] for c in collections}
