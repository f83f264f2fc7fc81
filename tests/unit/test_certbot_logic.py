"""certbot_status's logic without servers: certbot's renewal configuration, certificates made here, thresholds, argv."""

from __future__ import annotations

import datetime as dt
import subprocess
from pathlib import Path

import pytest
from ansible_collections.webstack.ops.plugins.module_utils import _certbot as cb
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

NOW = dt.datetime(2026, 11, 29, 12, 0, tzinfo=dt.UTC)

# What certbot 2.1 wrote for the sandbox's lineage after `certbot renew --deploy-hook ...`.
CERTBOT_CONF = """\
# renew_before_expiry = 30 days
version = 2.1.0
archive_dir = /srv/certbot/config/archive/sandbox.webstack.test
cert = /srv/certbot/config/live/sandbox.webstack.test/cert.pem
privkey = /srv/certbot/config/live/sandbox.webstack.test/privkey.pem
chain = /srv/certbot/config/live/sandbox.webstack.test/chain.pem
fullchain = /srv/certbot/config/live/sandbox.webstack.test/fullchain.pem

# Options used in the renewal process
[renewalparams]
account = 022ffd5b7f70835fd0102a59cd7c84ba
server = https://127.0.0.1:16005/dir
authenticator = webroot
webroot_path = /srv/webroot,
key_type = ecdsa
renew_hook = nginx -t -q && nginx -s reload
[[webroot_map]]
sandbox.webstack.test = /srv/webroot
"""


def make_cert(path: Path, names: list[str], days_left: float, *, key: str = "ec", now: dt.datetime = NOW) -> x509.Certificate:
    """A self-signed certificate for names that ends days_left days after now, written as PEM."""
    private = ec.generate_private_key(ec.SECP256R1()) if key == "ec" else rsa.generate_private_key(public_exponent=65537, key_size=2048)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])])
    issuer = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Test CA"), x509.NameAttribute(NameOID.ORGANIZATION_NAME, "webstack")])
    not_after = now + dt.timedelta(days=days_left)
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(issuer).public_key(private.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(not_after - dt.timedelta(days=90)).not_valid_after(not_after)
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(n) for n in names]), critical=False)
            .sign(private, hashes.SHA256()))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return cert


def make_lineage(config_dir: Path, name: str, days_left: float, conf_extra: str = "", **kwargs) -> x509.Certificate:
    cert = make_cert(config_dir / "live" / name / "cert.pem", [name, "www." + name], days_left, **kwargs)
    (config_dir / "renewal").mkdir(parents=True, exist_ok=True)
    (config_dir / "renewal" / f"{name}.conf").write_text(
        f"{conf_extra}cert = {config_dir}/live/{name}/cert.pem\n\n[renewalparams]\nauthenticator = webroot\nserver = https://acme.test/dir\n")
    return cert


def test_certbots_renewal_conf_is_read_section_by_section():
    sections = cb.parse_renewal_conf(CERTBOT_CONF)
    assert sections["top"]["cert"] == "/srv/certbot/config/live/sandbox.webstack.test/cert.pem"
    assert "renew_before_expiry" not in sections["top"]  # certbot's reminder of the default is a comment
    settings = cb.renewal_settings(sections)
    assert settings == {
        "authenticator": "webroot", "server": "https://127.0.0.1:16005/dir", "account": "022ffd5b7f70835fd0102a59cd7c84ba",
        "key_type": "ecdsa", "renew_before_expiry": None, "autorenew": True, "webroot_path": ["/srv/webroot"],
        "webroot_map": {"sandbox.webstack.test": "/srv/webroot"}, "pre_hook": None, "post_hook": None,
        "deploy_hook": "nginx -t -q && nginx -s reload"}


def test_quoted_values_lists_and_autorenew_off():
    sections = cb.parse_renewal_conf('renew_before_expiry = 10 days\nautorenew = False\n[renewalparams]\n'
                                     'webroot_path = /a, /b,\npre_hook = "echo a, b"\npost_hook = \'systemctl start x\'\n')
    settings = cb.renewal_settings(sections)
    assert settings["webroot_path"] == ["/a", "/b"]
    assert settings["pre_hook"] == "echo a, b"  # quoted: one string, commas kept
    assert settings["post_hook"] == "systemctl start x"
    assert settings["renew_before_expiry"] == "10 days"
    assert settings["autorenew"] is False


@pytest.mark.parametrize(("text", "seconds"), [
    ("30 days", 30 * 86400), ("10 minutes", 600), ("2 weeks 3 days", 17 * 86400), ("90", 90 * 86400), ("1 day", 86400),
    ("1 month", 30 * 86400), ("12 hrs", 12 * 3600), ("soon", None), ("", None), ("3 fortnights", None), ("5 days or so", None),
])
def test_renew_before_expiry_intervals(text, seconds):
    assert cb.parse_interval(text) == seconds


def test_certificate_facts_of_an_ecdsa_and_an_rsa_certificate(tmp_path):
    ec_cert = make_cert(tmp_path / "ec.pem", ["example.com", "www.example.com"], 12.5)
    facts = cb.certificate_facts(cb.load_pem_file(tmp_path / "ec.pem"), NOW)
    assert facts["domains"] == ["example.com", "www.example.com"]
    assert facts["serial"] == f"{ec_cert.serial_number:X}"
    assert (facts["key_type"], facts["key_size"], facts["key_curve"]) == ("ecdsa", 256, "secp256r1")
    assert facts["days_left"] == 12.5
    assert facts["not_after"] == "2026-12-12T00:00:00+00:00"
    assert facts["issuer"] == "O=webstack,CN=Test CA"
    # the fingerprint reads as openssl prints it
    openssl = subprocess.run(["openssl", "x509", "-in", str(tmp_path / "ec.pem"), "-noout", "-fingerprint", "-sha256"],
                             capture_output=True, text=True, check=True).stdout
    assert openssl.strip().split("=", 1)[1] == facts["fingerprint_sha256"]

    make_cert(tmp_path / "rsa.pem", ["old.example.com"], -3, key="rsa")
    facts = cb.certificate_facts(cb.load_pem_file(tmp_path / "rsa.pem"), NOW)
    assert (facts["key_type"], facts["key_size"], facts["key_curve"], facts["days_left"]) == ("rsa", 2048, None, -3.0)


def test_lineages_and_when_certbot_would_renew(tmp_path):
    config = tmp_path / "config"
    with pytest.raises(cb.CertError, match="does not exist"):
        cb.lineage_names(config)
    config.mkdir()
    assert cb.lineage_names(config) == []
    make_lineage(config, "b.example.com", 20)  # within certbot's default 30 days
    make_lineage(config, "a.example.com", 20, conf_extra="renew_before_expiry = 10 days\n")
    make_lineage(config, "c.example.com", 2, conf_extra="autorenew = False\n")
    make_lineage(config, "d.example.com", 2, conf_extra="renew_before_expiry = whenever\n")
    assert cb.lineage_names(config) == ["a.example.com", "b.example.com", "c.example.com", "d.example.com"]
    read = {name: cb.read_lineage(str(config), name, NOW) for name in cb.lineage_names(config)}
    assert (read["a.example.com"]["due"], read["a.example.com"]["renew_window_days"]) == (False, 10)
    assert (read["b.example.com"]["due"], read["b.example.com"]["renew_window_days"]) == (True, 30)
    assert read["c.example.com"]["due"] is False  # certbot renew skips a lineage with auto-renewal off
    assert read["d.example.com"]["due"] is False and "cannot be read" in read["d.example.com"]["notes"][0]
    assert read["b.example.com"]["renewal"]["authenticator"] == "webroot"

    (config / "live" / "b.example.com" / "cert.pem").write_text("not a certificate")
    with pytest.raises(cb.CertError, match="is not a PEM certificate"):
        cb.read_lineage(str(config), "b.example.com", NOW)
    (config / "live" / "b.example.com" / "cert.pem").unlink()
    with pytest.raises(cb.CertError, match="cannot read certificate .*cert.pem"):
        cb.read_lineage(str(config), "b.example.com", NOW)


def lineage(disk_days: float, **served) -> dict:
    found = {"name": "example.com", "days_left": disk_days, "not_after": "2026-12-01T00:00:00+00:00", "serial": "AB",
             "fingerprint_sha256": "11:22"}
    if served:
        found["served"] = {"address": "127.0.0.1", "port": 443, "server_name": "example.com", "verified": True, **served}
    return found


@pytest.mark.parametrize(("days_left", "expected"), [
    (40, []), (30.01, []), (30, [("cert_expiry", "warn", 30)]), (8, [("cert_expiry", "warn", 30)]),
    (7, [("cert_expiry", "crit", 7)]), (0.04, [("cert_expiry", "crit", 7)]), (-3, [("cert_expiry", "crit", 7)]),
])
def test_expiry_thresholds(days_left, expected):
    alerts = cb.lineage_alerts(lineage(days_left), warn_days=30, crit_days=7)
    assert [(a["check"], a["level"], a["threshold"]) for a in alerts] == expected
    if days_left < 0:
        assert "expired 3.00 days ago" in alerts[0]["message"]


def test_served_certificate_alerts():
    same = lineage(60, serial="AB", fingerprint_sha256="11:22", days_left=60)
    assert cb.lineage_alerts(same, 30, 7) == []
    old = lineage(60, serial="CD", fingerprint_sha256="33:44", days_left=20, not_after="2026-12-19T00:00:00+00:00")
    [not_served] = cb.lineage_alerts(old, 30, 7)
    assert (not_served["check"], not_served["level"], not_served["value"], not_served["threshold"]) == ("cert_not_served", "warn", "CD", "AB")
    assert "reload" in not_served["message"]
    dying = lineage(60, serial="CD", fingerprint_sha256="33:44", days_left=2, not_after="2026-12-01T00:00:00+00:00")
    assert cb.lineage_alerts(dying, 30, 7)[0]["level"] == "crit"  # the old one served is about to expire
    [down] = cb.lineage_alerts(lineage(60, error="connection refused"), 30, 7)
    assert (down["check"], down["level"]) == ("cert_unreachable", "crit") and "127.0.0.1:443" in down["message"]
    untrusted = lineage(60, serial="AB", fingerprint_sha256="11:22", days_left=60, verified=False,
                        verify_error="unable to get local issuer certificate")
    assert [(a["check"], a["level"]) for a in cb.lineage_alerts(untrusted, 30, 7)] == [("cert_untrusted", "crit")]


def test_thresholds_are_checked():
    assert cb.bad_thresholds(30, 7) is None
    assert "must not be more than" in cb.bad_thresholds(7, 30)
    assert "0 or more" in cb.bad_thresholds(30, -1)


def test_certbot_argv_for_a_renewal_and_a_dry_run():
    common = dict(config_dir="/c", work_dir="/w", logs_dir="/l")
    renew = cb.certbot_argv("certbot", "renew", "example.com", acme_server="https://acme.test/dir", force=True,
                            deploy_hook="nginx -t && nginx -s reload", **common)
    assert renew == ["certbot", "renew", "--cert-name", "example.com", "--non-interactive", "--no-random-sleep-on-renew",
                     "--config-dir", "/c", "--work-dir", "/w", "--logs-dir", "/l", "--server", "https://acme.test/dir",
                     "--force-renewal", "--deploy-hook", "nginx -t && nginx -s reload"]
    dry = cb.certbot_argv("certbot", "renew", "example.com", force=True, dry_run=True, deploy_hook="x", **common)
    assert "--dry-run" in dry and "--force-renewal" not in dry and "--deploy-hook" not in dry and "--server" not in dry


def test_the_default_deploy_hook_reloads_only_after_a_good_test():
    hook = cb.nginx_deploy_hook(["nginx", "-p", "/srv/my nginx/", "-t"], "systemctl reload nginx")
    assert hook == "nginx -p '/srv/my nginx/' -t && systemctl reload nginx"
    ran = subprocess.run(cb.nginx_deploy_hook(["false"], ["echo", "reloaded"]), shell=True, capture_output=True, text=True, check=False)  # noqa: S602 - as certbot runs hooks
    assert ran.returncode != 0 and "reloaded" not in ran.stdout


def test_a_failed_hook_is_found_in_certbots_output():
    output = ("Congratulations, all renewals succeeded:\n  /c/live/example.com/fullchain.pem (success)\n"
              "Hook 'deploy-hook' reported error code 1\nHook 'deploy-hook' ran with error output:\n"
              " nginx: configuration file /srv/nginx.conf test failed\n")
    assert cb.hook_failure(output).startswith("Hook 'deploy-hook' reported error code 1")
    assert "test failed" in cb.hook_failure(output)
    assert cb.hook_failure("Congratulations, all renewals succeeded") is None


def test_the_name_asked_for():
    assert cb.server_name_for({"name": "example.com", "domains": ["www.example.com", "example.com"]}) == "example.com"
    assert cb.server_name_for({"name": "example.com-0001", "domains": ["example.com"]}) == "example.com"
    assert cb.server_name_for({"name": "example.com", "domains": ["example.com"]}, "www.example.com") == "www.example.com"
