"""webstack.ops.certbot_status and the monthly_certs role against real servers, through ansible-playbook.

The session's Pebble and nginx (tests/conftest.py): certbot obtains a certificate for DOMAIN from Pebble by real
HTTP-01 through nginx (sandbox/edge.py, as the sandbox does), nginx serves it on a port of its own. The tests then
stage what the module must see: a renewal nginx was not reloaded for, a silent ACME server, a broken nginx
configuration, certificates near expiry. Each playbook run carries several tasks to keep the runs few.
"""

from __future__ import annotations

import json
import shutil
import sys
import urllib.parse
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import edge
import faults
import pytest
from ansible_run import PlaybookRun, run_playbook
from harness import free_port

DOMAIN = "certs.webstack.test"


@pytest.fixture(scope="module")
def site(pebble_server, nginx_server, tmp_path_factory) -> Iterator[SimpleNamespace]:
    """DOMAIN served by the session's nginx with a certificate certbot got from the session's Pebble; nginx put back after."""
    base = tmp_path_factory.mktemp("certbot-status")
    https_port = free_port()
    original = nginx_server.extra_servers
    try:
        edge.configure_site(nginx_server, pebble_server, DOMAIN, http_port=pebble_server.http_port, https_port=https_port,
                            upstream="127.0.0.1:9", webroot=base / "webroot", static_root=base / "static", certbot_dir=base / "certbot",
                            base_servers=original)
        root = base / "pebble-root.pem"
        root.write_text(edge.pebble_root(pebble_server))
        nginx = ["nginx", "-p", f"{nginx_server.prefix}/", "-c", str(nginx_server.conf_path), "-e", str(nginx_server.error_log)]
        yield SimpleNamespace(base=base, pebble=pebble_server, nginx=nginx_server, https_port=https_port, root=root,
                              certbot_dir=base / "certbot", paths=edge.certbot_paths(base / "certbot", DOMAIN),
                              nginx_test=[*nginx, "-t", "-q"], nginx_reload=[*nginx, "-s", "reload"])
    finally:
        nginx_server.extra_servers = original
        nginx_server.reload()


def module_args(site: SimpleNamespace, **extra) -> dict:
    """The options a user of the sandbox passes: certbot's dirs, Pebble, nginx under its prefix, 127.0.0.1 for DOMAIN."""
    paths = site.paths
    args = dict(config_dir=str(paths["config_dir"]), work_dir=str(paths["work_dir"]), logs_dir=str(paths["logs_dir"]),
                connect_to="127.0.0.1", serve_port=site.https_port, ca_path=str(site.root), acme_server=site.pebble.directory_url,
                acme_ca_path=str(site.pebble.ca_cert), nginx_test_command=site.nginx_test, nginx_reload_command=site.nginx_reload)
    return {**args, **extra}


def run_tasks(tmp_path: Path, *tasks: tuple[str, dict, dict]) -> PlaybookRun:
    """One ansible-playbook run of certbot_status tasks (name, module options, task keywords) on localhost."""
    playbook, variables = [], {}
    for number, (name, args, keywords) in enumerate(tasks):
        variables[f"args_{number}"] = args
        playbook.append({"name": name, "webstack.ops.certbot_status": f"{{{{ args_{number} }}}}", **keywords})
    play = {"name": "certbot_status", "hosts": "localhost", "gather_facts": False, "vars": {"ansible_python_interpreter": sys.executable},
            "tasks": playbook}
    (tmp_path / "play.yml").write_text(json.dumps([play]))
    (tmp_path / "vars.json").write_text(json.dumps(variables))
    return run_playbook(tmp_path / "play.yml", "-i", "localhost,", "-c", "local", "-e", f"@{tmp_path / 'vars.json'}")


def make_lineage(config_dir: Path, name: str, days_left: int) -> None:
    """A lineage certbot would list, its certificate self-signed and ending days_left days from now."""
    live = config_dir / "live" / name
    faults.make_expired_certificate(name, live / "cert.pem", live / "privkey.pem", days_ago=-days_left)
    (config_dir / "renewal").mkdir(parents=True, exist_ok=True)
    (config_dir / "renewal" / f"{name}.conf").write_text(f"cert = {live}/cert.pem\n[renewalparams]\nauthenticator = webroot\n")


def disk_serial(site: SimpleNamespace) -> str:
    return edge.certificate_info(site.paths["cert"])["serial"]


def served_serial(site: SimpleNamespace) -> str:
    return edge.served_certificate("127.0.0.1", site.https_port, DOMAIN)["serial"]


def snapshot(directory: Path) -> dict[str, bytes | str]:
    """Every file's bytes and every symlink's target under directory."""
    return {str(p.relative_to(directory)): ("-> " + str(p.readlink())) if p.is_symlink() else p.read_bytes()
            for p in sorted(directory.rglob("*")) if p.is_symlink() or p.is_file()}


def test_status_check_mode_unknown_names_thresholds_unreachable_untrusted_and_dry_run(site, tmp_path):
    """Read-only and dry-run tasks in one run: nothing under certbot's config dir changes."""
    thresholds = tmp_path / "letsencrypt"
    for name, days in (("expired.webstack.test", -3), ("crit.webstack.test", 5), ("warn.webstack.test", 20), ("fine.webstack.test", 60)):
        make_lineage(thresholds, name, days)
    before = snapshot(site.paths["config_dir"])
    serial = disk_serial(site)
    run = run_tasks(
        tmp_path,
        ("status", module_args(site), {}),
        ("unknown name", module_args(site, names=["nope.webstack.test"]), {"ignore_errors": True}),
        ("check mode", module_args(site, renew=True, force_renewal=True, dry_run=True, work_dir=str(tmp_path / "check-work"),
                                   logs_dir=str(tmp_path / "check-logs")), {"check_mode": True}),
        ("thresholds", dict(config_dir=str(thresholds), check_served=False), {}),
        ("nothing listening", module_args(site, serve_port=free_port()), {}),
        ("another CA", module_args(site, ca_path=str(site.pebble.ca_cert)), {}),  # Pebble's HTTPS certificate, not its root
        ("dry run", module_args(site, dry_run=True), {}),
    )
    assert run.rc == 0, run.output

    status = run.task_result("status")
    assert (status["changed"], status["level"], status["alerts"], status["renewed"], status["due"]) == (False, "ok", [], [], [])
    [cert] = status["certificates"]
    assert cert["name"] == DOMAIN and cert["domains"] == [DOMAIN]
    assert cert["serial"] == serial and "Pebble" in cert["issuer"]
    assert 1825 < cert["days_left"] <= 1826.01  # Pebble's 5 years
    assert (cert["key_type"], cert["key_curve"]) == ("ecdsa", "secp256r1")  # certbot 2's default key
    assert cert["due"] is False and cert["renew_window_days"] == 30
    renewal = cert["renewal"]
    assert (renewal["authenticator"], renewal["server"]) == ("webroot", site.pebble.directory_url)
    assert renewal["webroot_path"] == [str((site.base / "webroot").resolve())]
    served = cert["served"]
    assert (served["serial"], served["matches"], served["verified"], served["server_name"]) == (serial, True, True, DOMAIN)

    unknown = run.task_result("unknown name")
    assert unknown["failed"]
    assert "nope.webstack.test" in unknown["msg"] and f"the lineages there: {DOMAIN}" in unknown["msg"]

    check = run.task_result("check mode")
    assert (check["changed"], check["would_renew"], check["renewed"]) == (True, [DOMAIN], [])
    assert [(c["action"], c["rc"]) for c in check["commands"]] == [("renew", None), ("dry_run", None)]
    assert "--force-renewal" in check["commands"][0]["argv"] and "--dry-run" in check["commands"][1]["argv"]
    assert not (tmp_path / "check-logs").exists() and not (tmp_path / "check-work").exists()  # certbot never started

    levels = {a["message"].split()[1]: (a["check"], a["level"]) for a in run.task_result("thresholds")["alerts"]}
    assert levels == {"expired.webstack.test": ("cert_expiry", "crit"), "crit.webstack.test": ("cert_expiry", "crit"),
                      "warn.webstack.test": ("cert_expiry", "warn")}
    assert run.task_result("thresholds")["level"] == "crit"

    [down] = run.task_result("nothing listening")["alerts"]
    assert (down["check"], down["level"], down["value"]) == ("cert_unreachable", "crit", "connection refused")
    [untrusted] = run.task_result("another CA")["alerts"]
    assert (untrusted["check"], untrusted["level"]) == ("cert_untrusted", "crit")
    assert "unable to get local issuer certificate" in untrusted["message"]

    dry = run.task_result("dry run")
    assert (dry["changed"], dry["renewed"], dry["level"]) == (False, [], "ok")
    [command] = dry["commands"]
    assert command["rc"] == 0 and "--dry-run" in command["argv"]
    assert command["argv"][command["argv"].index("--server") + 1] == site.pebble.directory_url  # never Let's Encrypt's staging
    assert "simulated renewals succeeded" in command["output"]
    assert snapshot(site.paths["config_dir"]) == before
    assert disk_serial(site) == served_serial(site) == serial


def test_a_renewal_nginx_did_not_load_is_an_alert_until_the_module_renews_with_its_deploy_hook(site, tmp_path):
    old = served_serial(site)
    renewed_by_hand = edge.renew(site.pebble, DOMAIN, site.certbot_dir, force=True)["serial"]  # no hook: nginx not reloaded
    assert renewed_by_hand != old and served_serial(site) == old

    run = run_tasks(
        tmp_path,
        ("status", module_args(site), {}),
        ("renew", module_args(site, renew=True, force_renewal=True), {}),
        ("renew again", module_args(site, renew=True), {}),
    )
    assert run.rc == 0, run.output

    status = run.task_result("status")
    assert (status["changed"], status["level"]) == (False, "warn")
    [alert] = status["alerts"]
    assert (alert["check"], alert["value"], alert["threshold"]) == ("cert_not_served", old, renewed_by_hand)

    renew = run.task_result("renew")
    [cert] = renew["certificates"]
    assert (renew["changed"], renew["renewed"], renew["alerts"], renew["level"]) == (True, [DOMAIN], [], "ok")
    assert cert["previous_serial"] == renewed_by_hand and cert["serial"] not in (old, renewed_by_hand)
    assert cert["served"]["matches"] and cert["served"]["serial"] == cert["serial"]  # the deploy hook reloaded nginx
    assert "--no-random-sleep-on-renew" in renew["commands"][0]["argv"]
    assert edge.wait_until_served("127.0.0.1", site.https_port, DOMAIN, cert["serial"])["serial"] == disk_serial(site)
    assert "nginx" in site.paths["renewal_conf"].read_text()  # certbot kept the hook for its own timer

    again = run.task_result("renew again")
    assert (again["changed"], again["renewed"], again["commands"][0]["rc"]) == (False, [], 0)  # not due: certbot kept it
    assert "not yet due" in again["commands"][0]["output"]
    assert again["certificates"][0]["serial"] == cert["serial"]


def test_a_silent_acme_server_and_a_broken_nginx_config_fail_clearly_and_nothing_is_reloaded(site, tmp_path):
    """Pebble itself keeps running for the other tests: the renewal goes to a port where nothing answers, with
    certbot's account for Pebble copied under that server's name so that certbot really tries to reach it."""
    serial = disk_serial(site)
    silent = f"https://127.0.0.1:{free_port()}/dir"
    accounts = site.paths["config_dir"] / "accounts"
    pebble_account = accounts / urllib.parse.urlsplit(site.pebble.directory_url).netloc / "dir"
    silent_account = accounts / urllib.parse.urlsplit(silent).netloc
    shutil.copytree(pebble_account, silent_account / "dir")
    good_conf = site.nginx.conf_path.read_text()
    site.nginx.conf_path.write_text(good_conf.replace("events {", "no_such_directive on;\nevents {", 1))  # nginx -t fails
    try:
        run = run_tasks(
            tmp_path,
            ("acme down", module_args(site, renew=True, force_renewal=True, acme_server=silent), {"ignore_errors": True}),
            ("nginx broken", module_args(site, renew=True, force_renewal=True), {"ignore_errors": True}),
        )
        down = run.task_result("acme down")
        assert down["failed"] and not down["changed"]
        assert f"certbot renew of {DOMAIN} (ACME server {silent}) failed (exit 1)" in down["msg"]
        assert f"the ACME server {silent} does not answer (connection refused)" in down["msg"]
        assert f"the certificate on disk is unchanged (serial {serial})" in down["msg"]
        assert "letsencrypt.log" in down["msg"]  # the tail of certbot's log

        broken = run.task_result("nginx broken")
        assert broken["failed"] and broken["changed"] and broken["renewed"] == [DOMAIN]
        assert "the deploy hook failed, so the web server was not reloaded" in broken["msg"]
        assert 'unknown directive "no_such_directive"' in broken["msg"]  # nginx -t's own words
        assert disk_serial(site) != serial and served_serial(site) == serial  # renewed on disk, the old one still served
    finally:
        shutil.rmtree(silent_account)
        site.nginx.conf_path.write_text(good_conf)
        site.nginx.reload()
    edge.wait_until_served("127.0.0.1", site.https_port, DOMAIN, disk_serial(site))


def test_monthly_certs_role_renews_what_is_due_runs_the_dry_run_and_reports(site, tmp_path):
    """The certificate made due by its own renew_before_expiry (longer than Pebble's 5 years), as certbot reads it."""
    conf = site.paths["renewal_conf"]
    original = conf.read_text()
    conf.write_text("renew_before_expiry = 2000 days\n" + original)
    serial = disk_serial(site)
    playbook = tmp_path / "monthly_certs.yml"
    playbook.write_text(json.dumps([{"name": "certificates", "hosts": "localhost", "gather_facts": False,
                                     "vars": {"ansible_python_interpreter": sys.executable},
                                     "roles": [{"role": "webstack.ops.monthly_certs"}]}]))
    args = module_args(site)
    extra = {"monthly_certs_" + key: value for key, value in args.items() if key not in ("nginx_test_command", "nginx_reload_command")}
    extra.update(monthly_certs_nginx_test_command=site.nginx_test, monthly_certs_nginx_reload_command=site.nginx_reload)
    (tmp_path / "vars.json").write_text(json.dumps(extra))
    try:
        run = run_playbook(playbook, "-i", "localhost,", "-c", "local", "-e", f"@{tmp_path / 'vars.json'}")
    finally:
        conf.write_text(original)
    assert run.rc == 0, run.output
    summary = run.report["global_custom_stats"]["monthly_certs"]["localhost"]
    assert (summary["level"], summary["due"], summary["renewed"], summary["dry_run_ok"]) == ("ok", [DOMAIN], [DOMAIN], [DOMAIN])
    [cert] = summary["certificates"]
    assert cert["serial"] == disk_serial(site) != serial
    assert edge.wait_until_served("127.0.0.1", site.https_port, DOMAIN, cert["serial"])
    result = run.task_result("Check the certificates, renew what is due and run certbot's dry run")
    assert result["changed"] and [c["action"] for c in result["commands"]] == ["renew", "dry_run"]
    report = run.task_result("Report the certificates")["msg"]
    assert any(line.startswith(f"{DOMAIN}: ") and f"renewed (was {serial})" in line and "served as on disk" in line
               and "dry run ok" in line for line in report), report
