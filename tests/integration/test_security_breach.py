"""playbooks/security_breach.yml (role emergency_security_breach) as an operator runs it.

On the whole sandbox: the SECRET_KEY, the Django admin password, the containers recreated and the audit, check mode
first. The AWS key rotation runs against moto's server mode: no real IAM can run here (no AWS account, no network
beyond 127.0.0.1). moto serves IAM and STS GetCallerIdentity as AWS does for these calls but accepts any signature,
so "the new key works" is STS naming the app's IAM user as the caller, which it does only for a key it knows.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import secrets
import subprocess
import sys
import urllib.request
from pathlib import Path

import boto3
import docker
import psycopg2
import requests
from ansible_run import ROOT, run_playbook
from harness import MotoServer

PLAYBOOK = ROOT / "playbooks" / "security_breach.yml"
APP_CONTAINERS = ("website", "celery_worker", "celery_beat")


def django_password(password: str) -> str:
    """The hash Django 4.2 stores for a password (PBKDF2-SHA256, its default iterations)."""
    salt, iterations = secrets.token_hex(11), 600_000
    digest = base64.b64encode(hashlib.pbkdf2_hmac("sha256", password.encode(), salt.encode(), iterations)).decode()
    return "pbkdf2_sha256$%d$%s$%s" % (iterations, salt, digest)


def set_staff_user(site: dict, name: str, password: str, *, superuser: bool) -> None:
    """A staff user of the app with that password, straight into its auth_user table."""
    pg = site["postgres"]
    with psycopg2.connect(host=pg["host"], port=pg["port"], user=pg["user"], password=pg["password"], dbname=pg["db"]) as conn, \
            conn.cursor() as cur:
        cur.execute("INSERT INTO auth_user (password, is_superuser, username, first_name, last_name, email, is_staff, is_active,"
                    " date_joined) VALUES (%s, %s, %s, '', '', '', true, true, now()) ON CONFLICT (username) DO UPDATE"
                    " SET password = EXCLUDED.password, is_superuser = EXCLUDED.is_superuser, is_staff = true, is_active = true",
                    (django_password(password), superuser, name))
    conn.close()


def vars_file(tmp_path: Path, name: str, values: dict) -> str:
    """Extra vars in a 0600 file: passwords never on ansible-playbook's command line."""
    path = tmp_path / name
    path.touch(mode=0o600)
    path.write_text(json.dumps(values))
    return "@%s" % path


def report_of(run) -> dict:
    """The incident record the run published (set_stats), with its report files."""
    return run.report["global_custom_stats"]["security_breach"]


def assert_nothing_leaked(run, report: dict, *secret_values: str) -> None:
    """No secret in the run's output nor in the report files, which are readable by their owner only."""
    texts = {"output": run.stdout + run.stderr}
    for suffix in (".json", ".md"):
        path = Path(report["report"][:-3] + suffix)
        assert oct(path.stat().st_mode & 0o777) == "0o600", path
        texts[path.name] = path.read_text()
    for value in secret_values:
        assert len(value) >= 12
        for where, text in texts.items():
            assert value not in text, "a secret is in %s" % where


# The sandbox: SECRET_KEY, admin password, restart, audit.


def admin_session(base: str, user: str, password: str) -> requests.Session | None:
    """A browser's session logged in to the admin, or None when the login is refused."""
    session = requests.Session()
    page = session.get(base + "admin/login/", timeout=20)
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text).group(1)
    answer = session.post(base + "admin/login/", data={"csrfmiddlewaretoken": token, "username": user, "password": password,
                                                       "next": "/admin/"}, allow_redirects=False, timeout=20)
    return session if answer.status_code == 302 else None


def signed_in(session: requests.Session, base: str) -> bool:
    """Whether the session's cookie still opens the admin (Django signs sessions with SECRET_KEY)."""
    return session.get(base + "admin/", allow_redirects=False, timeout=20).status_code == 200


def test_check_mode_changes_nothing_then_secret_key_and_admin_password_are_rotated_and_the_logs_audited(sandbox, tmp_path):
    state_dir, state = sandbox
    site = state["sandbox"]
    base = "http://127.0.0.1:%d/" % site["settings"]["ports"]["web"]
    env_file = Path(site["env_file"])
    client = docker.DockerClient(base_url=state["dockerd"]["base_url"])
    old_password, new_password, editor_password = secrets.token_urlsafe(16), secrets.token_urlsafe(16), secrets.token_urlsafe(16)
    set_staff_user(site, site["admin"]["user"], old_password, superuser=True)
    set_staff_user(site, "breach-test-editor", editor_password, superuser=False)
    admin, editor = admin_session(base, site["admin"]["user"], old_password), admin_session(base, "breach-test-editor", editor_password)
    assert admin and editor and signed_in(admin, base) and signed_in(editor, base)
    # What the audit must find: a probe recorded as suspicious (from the address its proxy names), and a refused
    # admin post (403, no CSRF token) in nginx's access log.
    requests.get(base + "wp-login.php", headers={"X-Forwarded-For": "203.0.113.77"}, timeout=20)
    port = site["ports"]["https"]
    refused = subprocess.run(["curl", "-sS", "-o", "/dev/null", "-w", "%{http_code}", "-X", "POST", "--resolve",
                              "%s:%d:127.0.0.1" % (site["domain"], port), "--cacert", site["ca_root"],
                              "https://%s:%d/admin/login/" % (site["domain"], port)], capture_output=True, text=True, timeout=30,
                             check=False)
    assert refused.stdout == "403"
    env_before = env_file.read_bytes()
    ids_before = {name: client.containers.get(name).id for name in APP_CONTAINERS}
    # Only website is recreated: the celery containers take the same path in container_update (tested there) and
    # would double the time this test takes.
    extra = vars_file(tmp_path, "vars.json", {"emergency_security_breach_admin_password": new_password,
                                              "emergency_security_breach_restart_containers": ["website"]})
    env = {"WEBSTACK_SANDBOX_STATE": str(state_dir)}

    check = run_playbook(PLAYBOOK, "-i", "inventories/sandbox", "-e", extra, "--check", "--skip-tags", "audit", env=env)
    assert check.rc == 0, check.stdout[-4000:] + check.stderr[-2000:]
    planned = report_of(check)["sandbox"]
    assert planned["check_mode"] and planned["result"] == "planned"
    assert planned["steps"]["restart"]["containers"][0]["action"] == "would_recreate"
    assert planned["steps"]["admin_password"]["changed"] is True
    assert env_file.read_bytes() == env_before
    assert {name: client.containers.get(name).id for name in APP_CONTAINERS} == ids_before
    assert signed_in(admin, base) and signed_in(editor, base)

    run = run_playbook(PLAYBOOK, "-i", "inventories/sandbox", "-e", extra, "-e", "security_breach_confirm=true", env=env)
    assert run.rc == 0, run.stdout[-4000:] + run.stderr[-2000:]
    done = report_of(run)["sandbox"]
    assert done["result"] == "ok", done["steps"]
    # The new SECRET_KEY is what the app uses: the editor's session (its password untouched) is no longer valid.
    assert not signed_in(editor, base)
    assert admin_session(base, site["admin"]["user"], new_password) is not None
    assert admin_session(base, site["admin"]["user"], old_password) is None
    with urllib.request.urlopen(base + "health/", timeout=20) as health:  # noqa: S310 - loopback
        assert json.loads(health.read())["status"] == "ok"
    assert client.containers.get("website").id != ids_before["website"]
    env_after = env_file.read_bytes()
    assert env_after != env_before and oct(env_file.stat().st_mode & 0o777) == "0o600"
    backup = Path(done["steps"]["secret_key"]["backup"])
    assert backup.read_bytes() == env_before and oct(backup.stat().st_mode & 0o777) == "0o600"
    audit = done["steps"]["audit"]
    assert audit["logs"]["auth_failure"]["count"] >= 1 and audit["logs"]["admin_post"]["count"] >= 1
    assert "203.0.113.77" in done["suspicious_ips"]
    assert audit["fingerprints"]["recent"][0]["path"] == "/wp-login.php"
    secret_key = dict(line.split("=", 1) for line in env_after.decode().splitlines() if "=" in line)["DJANGO_SECRET_KEY"]
    old_key = dict(line.split("=", 1) for line in env_before.decode().splitlines() if "=" in line)["DJANGO_SECRET_KEY"]
    assert_nothing_leaked(run, done, secret_key, old_key, new_password, old_password)
    assert_nothing_leaked(check, planned, old_key, new_password, old_password)
    client.close()


# AWS access keys, against moto: one run over two web hosts, one whose new key works and one whose does not.


def aws_host(tmp_path: Path, iam, name: str, **host_vars) -> dict:
    """An IAM user with the key its app uses now, the app's env file holding it, and the host's variables."""
    iam.create_user(UserName=name)
    old = iam.create_access_key(UserName=name)["AccessKey"]
    env_file = tmp_path / name / "app.env"
    env_file.parent.mkdir()
    env_file.touch(mode=0o600)
    env_file.write_text("DJANGO_SECRET_KEY=unchanged\nAWS_ACCESS_KEY_ID=%s\nAWS_SECRET_ACCESS_KEY=%s\n"
                        % (old["AccessKeyId"], old["SecretAccessKey"]))
    return {"old": old, "env_file": env_file, "before": env_file.read_bytes(), "vars": {
        "ansible_connection": "local", "ansible_python_interpreter": sys.executable, "prerequisites_method": "none",
        "emergency_security_breach_env_file": str(env_file), "emergency_security_breach_aws_user_name": name, **host_vars}}


def test_aws_key_rotation_keeps_a_new_key_that_works_and_rolls_back_one_that_does_not(tmp_path):
    with MotoServer(tmp_path / "moto").start() as moto, MotoServer(tmp_path / "other-moto").start() as elsewhere:
        iam = boto3.client("iam", endpoint_url=moto.endpoint_url, region_name="us-east-1", aws_access_key_id="operator",
                           aws_secret_access_key="operator-secret")
        good = aws_host(tmp_path, iam, "webstack-app")
        # STS at another moto does not know this host's new key: it names its default caller, not the user.
        bad = aws_host(tmp_path, iam, "webstack-app-elsewhere", emergency_security_breach_aws_sts_endpoint_url=elsewhere.endpoint_url,
                       emergency_security_breach_aws_verify_retries=0)
        inventory = tmp_path / "inventory.json"
        inventory.write_text(json.dumps({"web": {"hosts": {"good": good["vars"], "bad": bad["vars"]}, "vars": {
            "emergency_security_breach_aws_endpoint_url": moto.endpoint_url, "emergency_security_breach_aws_access_key": "operator",
            "emergency_security_breach_restart_containers": [],
            "emergency_security_breach_report_dir": str(tmp_path / "incidents")}}}))
        operator = vars_file(tmp_path, "operator.json", {"emergency_security_breach_aws_secret_key": "operator-secret"})

        def keys(host):
            return [k["AccessKeyId"] for k in iam.list_access_keys(UserName=host["vars"]["emergency_security_breach_aws_user_name"])
                    ["AccessKeyMetadata"]]

        refused = run_playbook(PLAYBOOK, "-i", str(inventory), "-e", operator, "--tags", "aws_keys,report", json_output=False)
        assert refused.rc != 0 and "Nothing was changed. Confirm with -e security_breach_confirm=true" in refused.stdout
        for host in (good, bad):
            assert keys(host) == [host["old"]["AccessKeyId"]] and host["env_file"].read_bytes() == host["before"]

        run = run_playbook(PLAYBOOK, "-i", str(inventory), "-e", operator, "-e", "security_breach_confirm=true",
                           "--tags", "aws_keys,report")
        assert run.rc != 0  # the bad host failed

        # good: the new key is in the env file, works, and is the user's only key.
        values = dict(line.split("=", 1) for line in good["env_file"].read_text().splitlines())
        assert keys(good) == [values["AWS_ACCESS_KEY_ID"]] != [good["old"]["AccessKeyId"]]
        assert values["DJANGO_SECRET_KEY"] == "unchanged" and oct(good["env_file"].stat().st_mode & 0o777) == "0o600"
        sts = boto3.client("sts", endpoint_url=moto.endpoint_url, region_name="us-east-1",
                           aws_access_key_id=values["AWS_ACCESS_KEY_ID"], aws_secret_access_key=values["AWS_SECRET_ACCESS_KEY"])
        assert sts.get_caller_identity()["Arn"].endswith(":user/webstack-app")
        record = report_of(run)["good"]
        assert record["result"] == "ok" and record["aws_key_ids"] == {"old": good["old"]["AccessKeyId"], "new": keys(good)[0]}
        assert record["steps"]["aws_keys"]["old_key"] == "deleted"
        assert record["steps"]["secret_key"]["status"] == "skipped" and record["steps"]["audit"]["status"] == "skipped"
        assert_nothing_leaked(run, record, good["old"]["SecretAccessKey"], values["AWS_SECRET_ACCESS_KEY"], "operator-secret")

        # bad: the new key was deleted, the old one is kept, the env file is as it was.
        assert keys(bad) == [bad["old"]["AccessKeyId"]] and bad["env_file"].read_bytes() == bad["before"]
        error = " ".join(report_of(run)["bad"]["steps"]["aws_keys"]["error"].split())
        assert "did not work: STS named the caller arn:aws:sts::123456789012:user/moto" in error
        assert "It was deleted; the old key %s is kept and %s was restored from" % (bad["old"]["AccessKeyId"], bad["env_file"]) in error
        assert_nothing_leaked(run, report_of(run)["bad"], bad["old"]["SecretAccessKey"])
