"""The collection as Ansible sees it: ansible-doc from the checkout, a built tarball that installs and works."""

from __future__ import annotations

import json
import subprocess
import tarfile
from pathlib import Path

from ansible_run import BIN, ROOT, ansible_env, run_playbook

EXAMPLE_VAULT_PASSWORD = "webstack-example"  # documented in the README: the example inventory's vault


def ansible(tool, *args, env=None, cwd=ROOT):
    return subprocess.run([str(BIN / tool), *args], cwd=cwd, env=env or ansible_env(), capture_output=True,
                          text=True, check=True, timeout=300)


def test_ansible_doc_renders_the_module_from_the_checkout():
    out = ansible("ansible-doc", "webstack.ops.pg_maintenance").stdout
    assert "VACUUM" in out and "login_password" in out and "only_if_needed" in out
    assert "check_mode" in out


def test_role_argument_specs_are_documented():
    out = ansible("ansible-doc", "-t", "role", "webstack.ops.weekly_db").stdout
    assert "weekly_db_databases" in out and "weekly_db_only_if_needed" in out


def test_built_tarball_installs_and_its_module_runs(tmp_path, pg_db):
    ansible("ansible-galaxy", "collection", "build", "--output-path", str(tmp_path), ".")
    [tarball] = tmp_path.glob("webstack-ops-*.tar.gz")
    with tarfile.open(tarball) as tar:
        names = tar.getnames()
    assert "plugins/modules/pg_maintenance.py" in names and "roles/weekly_db/tasks/main.yml" in names
    assert not [n for n in names if n.split("/")[0] in ("bench", "sandbox", "collections", ".venv", "molecule")]

    installed = tmp_path / "installed"
    ansible("ansible-galaxy", "collection", "install", "--force", "-p", str(installed), str(tarball))
    assert (installed / "ansible_collections/webstack/ops/MANIFEST.json").is_file()

    # Run it from a directory without this checkout's ansible.cfg, so only the installed copy is found.
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = ansible_env(ANSIBLE_CONFIG="", ANSIBLE_COLLECTIONS_PATH=str(installed))
    doc = ansible("ansible-doc", "--json", "webstack.ops.pg_maintenance", env=env, cwd=elsewhere).stdout
    assert str(installed) in json.loads(doc)["webstack.ops.pg_maintenance"]["doc"]["filename"]

    result = ansible("ansible", "localhost", "-m", "webstack.ops.pg_maintenance", "--check", "-a",
                     json.dumps(pg_db.module_args()), "-e", "ansible_python_interpreter=%s" % (BIN / "python"),
                     env=env, cwd=elsewhere).stdout
    assert "SUCCESS" in result and '"size_before"' in result


def test_example_inventory_parses_with_its_vault(tmp_path):
    password_file = tmp_path / "vault-pass"
    password_file.write_text(EXAMPLE_VAULT_PASSWORD + "\n")
    out = ansible("ansible-inventory", "-i", "inventories/example", "--vault-password-file", str(password_file),
                  "--host", "web1.example.com").stdout
    host = json.loads(out)
    assert host["vault_webstack_postgres_password"] == "CHANGE-ME"
    assert Path(ROOT / "inventories/example/group_vars/all/vault.yml").read_text().startswith("$ANSIBLE_VAULT;")


def test_weekly_playbook_passes_syntax_check_on_both_inventories():
    for inventory in ("inventories/example", "inventories/sandbox"):
        run = run_playbook("playbooks/weekly.yml", "-i", inventory, "--syntax-check", json_output=False)
        assert run.rc == 0, run.output
