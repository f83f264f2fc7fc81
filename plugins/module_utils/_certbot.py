# Copyright (c) webstack.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""certbot's certificates read from its config dir, what a TLS server serves for them, and certbot runs (private to the collection).

certbot keeps one lineage per certificate: ``renewal/NAME.conf`` (configobj: top-level paths, then
``[renewalparams]`` with the ACME server, authenticator, webroot and hooks) and ``live/NAME/{cert,chain,fullchain,
privkey}.pem``. Certificates are read with the ``cryptography`` library; certbot itself is only run for a
renewal or a dry run, with an argv list, and its output is checked for failed hooks (certbot exits 0 when a
deploy hook fails).
"""

from __future__ import annotations

import datetime
import os
import re
import shlex
import socket
import ssl
import subprocess
import time
import urllib.parse

from ansible_collections.webstack.ops.plugins.module_utils._alerts import CRIT, WARN, alert

try:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, rsa
    from cryptography.x509.oid import ExtensionOID, NameOID
except ImportError:  # the module says what to install
    x509 = None

UTC = datetime.timezone.utc
DEFAULT_RENEW_BEFORE = "30 days"  # certbot's default window
HOOK_FAILED = re.compile(r"Hook '[^']*' (?:reported|returned) error code \d+")
UNITS = {"second": 1, "minute": 60, "hour": 3600, "day": 86400, "week": 7 * 86400, "month": 30 * 86400, "year": 365 * 86400}
UNIT_ALIASES = {"sec": "second", "secs": "second", "min": "minute", "mins": "minute", "hr": "hour", "hrs": "hour"}


class CertError(Exception):
    """A lineage or a certificate that cannot be read; the message names the file."""


# certbot's renewal configuration.


def _unquote(text):
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "\"'":
        return text[1:-1]
    return text


def _value(raw):
    """A configobj value: a quoted string, a comma-separated list (``a, b,`` or ``a,``), or a plain string."""
    raw = raw.strip()
    if len(raw) >= 2 and raw[0] == raw[-1] and raw[0] in "\"'":
        return raw[1:-1]
    if "," in raw:
        return [_unquote(item.strip()) for item in raw.split(",") if item.strip()]
    return raw


def parse_renewal_conf(text):
    """A renewal configuration as {"top": {...}, "renewalparams": {...}, "webroot_map": {...}, other sections}.

    Comment lines (certbot writes ``# renew_before_expiry = 30 days`` as a reminder of the default) and blank lines
    are skipped; ``[[webroot_map]]`` is the subsection of ``[renewalparams]`` mapping each domain to its webroot.
    """
    sections = {"top": {}}
    current = sections["top"]
    for line in text.splitlines():
        stripped = line.strip()
        if not stripped or stripped.startswith("#"):
            continue
        match = re.match(r"^(\[+)\s*([^\]]+?)\s*\]+$", stripped)
        if match:
            current = sections.setdefault(match.group(2), {})
            continue
        if "=" in stripped:
            key, raw = stripped.split("=", 1)
            current[key.strip()] = _value(raw)
    return sections


def _as_list(value):
    if value is None or value == "":
        return []
    return value if isinstance(value, list) else [value]


def renewal_settings(sections):
    """What a lineage's renewal uses, from parse_renewal_conf()'s sections."""
    params = sections.get("renewalparams", {})
    top = sections.get("top", {})
    autorenew = str(top.get("autorenew", "True")).strip().lower() not in ("false", "no", "off", "0")
    return dict(
        authenticator=params.get("authenticator"),
        server=params.get("server"),
        account=params.get("account"),
        key_type=params.get("key_type"),
        renew_before_expiry=top.get("renew_before_expiry") or None,
        autorenew=autorenew,
        webroot_path=_as_list(params.get("webroot_path")),
        webroot_map=dict(sections.get("webroot_map", {})),
        pre_hook=params.get("pre_hook") or None,
        post_hook=params.get("post_hook") or None,
        deploy_hook=params.get("renew_hook") or None,  # certbot saves --deploy-hook as renew_hook
    )


def parse_interval(text):
    """Seconds in certbot's renew_before_expiry ("30 days", "2 weeks 3 days", "10 minutes"; a bare number is days).

    None when it cannot be read (certbot's parsedatetime then reads no window at all). Months count 30 days.
    """
    text = (text or "").strip().lower()
    if re.fullmatch(r"\d+", text):
        return int(text) * 86400
    pairs = re.findall(r"(\d+(?:\.\d+)?)\s*([a-z]+)", text)
    if not pairs or re.sub(r"(\d+(?:\.\d+)?)\s*([a-z]+)|[\s,]|and", "", text):
        return None
    seconds = 0.0
    for number, word in pairs:
        unit = UNIT_ALIASES.get(word, word)
        if unit not in UNITS and unit.endswith("s"):
            unit = unit[:-1]
        if unit not in UNITS:
            return None
        seconds += float(number) * UNITS[unit]
    return seconds


def lineage_names(config_dir):
    """Names of the lineages certbot manages under config_dir (renewal/NAME.conf), sorted."""
    renewal = os.path.join(config_dir, "renewal")
    if not os.path.isdir(config_dir):
        raise CertError("certbot's config dir %s does not exist: set config_dir to where certbot keeps its certificates" % config_dir)
    try:
        entries = os.listdir(renewal)
    except FileNotFoundError:
        return []
    except OSError as exc:
        raise CertError("cannot list %s: %s (certbot's files are root's: run the task with become)" % (renewal, exc.strerror)) from exc
    return sorted(entry[:-5] for entry in entries if entry.endswith(".conf") and not entry.startswith("."))


# Certificates.


def _not_after(cert):
    return cert.not_valid_after_utc if hasattr(cert, "not_valid_after_utc") else cert.not_valid_after.replace(tzinfo=UTC)


def _not_before(cert):
    return cert.not_valid_before_utc if hasattr(cert, "not_valid_before_utc") else cert.not_valid_before.replace(tzinfo=UTC)


def fingerprint(cert):
    """SHA-256 fingerprint as openssl prints it (AB:CD:...)."""
    return ":".join("%02X" % byte for byte in cert.fingerprint(hashes.SHA256()))


def serial_hex(cert):
    """Serial number in upper-case hex without leading zeros (openssl x509 -serial, less its padding)."""
    return "%X" % cert.serial_number


def key_description(public_key):
    """(key type as certbot names it, size in bits, curve or None)."""
    if isinstance(public_key, rsa.RSAPublicKey):
        return "rsa", public_key.key_size, None
    if isinstance(public_key, ec.EllipticCurvePublicKey):
        return "ecdsa", public_key.curve.key_size, public_key.curve.name
    if isinstance(public_key, ed25519.Ed25519PublicKey):
        return "ed25519", 256, None
    if isinstance(public_key, ed448.Ed448PublicKey):
        return "ed448", 456, None
    return type(public_key).__name__, None, None


def days_left(not_after, now):
    return round((not_after - now).total_seconds() / 86400, 2)


def certificate_facts(cert, now):
    """The facts of one certificate (cryptography's x509.Certificate)."""
    try:
        san = cert.extensions.get_extension_for_oid(ExtensionOID.SUBJECT_ALTERNATIVE_NAME).value
        domains = san.get_values_for_type(x509.DNSName)
    except x509.ExtensionNotFound:
        domains = []
    common_names = [attr.value for attr in cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)]
    key_type, key_size, curve = key_description(cert.public_key())
    not_after = _not_after(cert)
    return dict(
        domains=domains or common_names,
        subject=cert.subject.rfc4514_string(),
        issuer=cert.issuer.rfc4514_string(),
        serial=serial_hex(cert),
        fingerprint_sha256=fingerprint(cert),
        not_before=_not_before(cert).isoformat(),
        not_after=not_after.isoformat(),
        days_left=days_left(not_after, now),
        key_type=key_type,
        key_size=key_size,
        key_curve=curve,
    )


def load_pem_file(path):
    """The first certificate of a PEM file."""
    try:
        with open(path, "rb") as handle:
            data = handle.read()
    except OSError as exc:
        hint = " (certbot's files are root's: run the task with become)" if isinstance(exc, PermissionError) else ""
        raise CertError("cannot read certificate %s: %s%s" % (path, exc.strerror, hint)) from exc
    try:
        return x509.load_pem_x509_certificate(data)
    except ValueError as exc:
        raise CertError("%s is not a PEM certificate: %s" % (path, exc)) from exc


def read_lineage(config_dir, name, now):
    """One lineage: its renewal settings, its certificate's facts, and whether certbot would renew it now.

    The certificate is the renewal configuration's ``cert`` (live/NAME/cert.pem unless certbot was told otherwise).
    """
    conf_path = os.path.join(config_dir, "renewal", name + ".conf")
    try:
        with open(conf_path) as handle:
            sections = parse_renewal_conf(handle.read())
    except OSError as exc:
        raise CertError("cannot read %s: %s" % (conf_path, exc.strerror)) from exc
    renewal = renewal_settings(sections)
    live = os.path.join(config_dir, "live", name)
    cert_path = sections["top"].get("cert") or os.path.join(live, "cert.pem")
    facts = dict(name=name, cert_path=cert_path, fullchain_path=sections["top"].get("fullchain") or os.path.join(live, "fullchain.pem"),
                 renewal_conf=conf_path, renewal=renewal, notes=[])
    facts.update(certificate_facts(load_pem_file(cert_path), now))
    window = parse_interval(renewal["renew_before_expiry"] or DEFAULT_RENEW_BEFORE)
    if window is None:
        facts["notes"].append("renew_before_expiry %r of %s cannot be read: certbot then renews only once the certificate expired"
                              % (renewal["renew_before_expiry"], conf_path))
        window = 0
    facts["renew_window_days"] = round(window / 86400, 4)
    due_at = datetime.datetime.fromisoformat(facts["not_after"]) - datetime.timedelta(seconds=window)
    facts["due"] = renewal["autorenew"] and now >= due_at
    return facts


# What the server serves.


def served_certificate(address, port, server_name, *, ca_path=None, validate=True, timeout=10.0, now=None):
    """The certificate address:port presents for server_name (SNI), even one that does not verify.

    With validate, the chain and the name are checked against ca_path (or the system's CAs): ``verified`` and
    ``verify_error`` say how that went. ``error`` is set when no certificate could be fetched at all.
    """
    now = now or datetime.datetime.now(UTC)
    result = dict(address=address, port=port, server_name=server_name, verified=None, verify_error=None, error=None)
    der = None
    if validate:
        try:
            context = ssl.create_default_context(cafile=ca_path or None)
            der = _peer_certificate(context, address, port, server_name, timeout)
            result["verified"] = True
        except ssl.SSLCertVerificationError as exc:
            result.update(verified=False, verify_error=exc.verify_message or str(exc))
        except (OSError, ssl.SSLError) as exc:
            result["error"] = _describe(exc)
            return result
    if der is None:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        try:
            der = _peer_certificate(context, address, port, server_name, timeout)
        except (OSError, ssl.SSLError) as exc:
            result["error"] = _describe(exc)
            return result
    cert = x509.load_der_x509_certificate(der)
    not_after = _not_after(cert)
    result.update(serial=serial_hex(cert), fingerprint_sha256=fingerprint(cert), not_after=not_after.isoformat(),
                  days_left=days_left(not_after, now), issuer=cert.issuer.rfc4514_string())
    return result


def _peer_certificate(context, address, port, server_name, timeout):
    with socket.create_connection((address, port), timeout=timeout) as raw, context.wrap_socket(raw, server_hostname=server_name) as tls:
        der = tls.getpeercert(binary_form=True)
    if not der:
        raise ssl.SSLError("the server presented no certificate")
    return der


def _describe(exc):
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, socket.timeout):
        return "no answer within the timeout"
    if isinstance(exc, socket.gaierror):
        return "name not resolved (%s)" % exc.strerror
    return "%s: %s" % (type(exc).__name__, exc)


def server_name_for(lineage, serve_host=None):
    """The name to ask the server for: serve_host, else the lineage's name if the certificate covers it, else its first domain."""
    if serve_host:
        return serve_host
    if lineage["name"] in lineage["domains"] or not lineage["domains"]:
        return lineage["name"]
    return lineage["domains"][0]


# Alerts.


def lineage_alerts(lineage, warn_days, crit_days):
    """cert_expiry, cert_not_served, cert_unreachable and cert_untrusted alerts of one lineage (served may be absent)."""
    alerts = []
    name, left = lineage["name"], lineage["days_left"]
    if left <= warn_days:
        level, limit = (CRIT, crit_days) if left <= crit_days else (WARN, warn_days)
        when = "expired %.2f days ago" % -left if left < 0 else "expires in %.2f days" % left
        alerts.append(alert("cert_expiry", level, left, limit, "certificate %s %s (%s; %s from %s days)" % (
            name, when, lineage["not_after"], level, limit)))
    served = lineage.get("served")
    if not served:
        return alerts
    where = "%s:%s (%s)" % (served["address"], served["port"], served["server_name"])
    if served.get("error"):
        alerts.append(alert("cert_unreachable", CRIT, served["error"], None,
                            "cannot fetch the certificate served for %s at %s: %s" % (name, where, served["error"])))
        return alerts
    if served["fingerprint_sha256"] != lineage["fingerprint_sha256"]:
        level = CRIT if served["days_left"] <= crit_days else WARN
        alerts.append(alert("cert_not_served", level, served["serial"], lineage["serial"], (
            "%s serves certificate %s (until %s, %.2f days left), not %s on disk for %s: reload the web server "
            "(nginx -t, then nginx -s reload)") % (where, served["serial"], served["not_after"], served["days_left"],
                                                   lineage["serial"], name)))
    if served.get("verified") is False:
        alerts.append(alert("cert_untrusted", CRIT, served["verify_error"], None,
                            "the certificate %s serves for %s does not verify: %s" % (where, name, served["verify_error"])))
    return alerts


def bad_thresholds(warn_days, crit_days):
    if crit_days < 0 or warn_days < 0:
        return "warn_days and crit_days must be 0 or more"
    if crit_days > warn_days:
        return "crit_days (%s) must not be more than warn_days (%s)" % (crit_days, warn_days)
    return None


# certbot runs.


def command_text(command):
    """A hook command as certbot runs it (through the shell): a list is quoted word by word, a string is used as it is."""
    if isinstance(command, (list, tuple)):
        return shlex.join(str(word) for word in command)
    return str(command)


def nginx_deploy_hook(test_command, reload_command):
    """A deploy hook that reloads nginx only when its configuration tests good."""
    return "%s && %s" % (command_text(test_command), command_text(reload_command))


def certbot_argv(certbot, action, name, *, config_dir, work_dir, logs_dir, acme_server=None, force=False, dry_run=False,
                 deploy_hook=None):
    """argv of `certbot renew` (or its dry run) for one lineage."""
    argv = [certbot, action, "--cert-name", name, "--non-interactive", "--no-random-sleep-on-renew",
            "--config-dir", config_dir, "--work-dir", work_dir, "--logs-dir", logs_dir]
    if acme_server:
        argv += ["--server", acme_server]
    if dry_run:
        argv.append("--dry-run")
    elif force:
        argv.append("--force-renewal")
    if deploy_hook and not dry_run:
        argv += ["--deploy-hook", deploy_hook]
    return argv


def certbot_env(acme_ca_path=None):
    """The environment certbot runs in: ours, without a Python path of the caller (Debian's certbot runs on the system Python)."""
    env = {key: value for key, value in os.environ.items() if key not in ("PYTHONPATH", "PYTHONHOME")}
    if acme_ca_path:
        env["REQUESTS_CA_BUNDLE"] = acme_ca_path
    return env


def run_certbot(argv, env, timeout):
    """(exit code, stdout and stderr together); exit code None when it did not finish in time."""
    try:
        proc = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True, text=True, env=env, timeout=timeout, check=False)
    except subprocess.TimeoutExpired as exc:
        output = exc.stdout or ""
        output = output.decode(errors="replace") if isinstance(output, bytes) else output
        return None, output + "\n(certbot did not finish in %s s and was stopped)" % timeout
    return proc.returncode, (proc.stdout + proc.stderr).strip()


def hook_failure(output):
    """certbot's lines about a failed hook, or None (certbot exits 0 when a hook fails)."""
    if not HOOK_FAILED.search(output):
        return None
    lines = output.splitlines()
    start = next(i for i, line in enumerate(lines) if HOOK_FAILED.search(line))
    return "\n".join(lines[start:start + 12])


def log_tail(logs_dir, lines=25):
    path = os.path.join(logs_dir, "letsencrypt.log")
    try:
        with open(path, errors="replace") as handle:
            text = handle.read().splitlines()[-lines:]
    except OSError:
        return "(no certbot log at %s)" % path
    return "--- last lines of %s:\n%s" % (path, "\n".join(text))


def tail(text, lines=40):
    return "\n".join(text.splitlines()[-lines:])


def acme_unreachable(directory_url, ca_path=None, timeout=5.0):
    """Why the ACME directory does not answer over HTTPS, None if it does (a TLS handshake is enough)."""
    parts = urllib.parse.urlsplit(directory_url or "")
    if parts.scheme != "https" or not parts.hostname:
        return None
    try:
        context = ssl.create_default_context(cafile=ca_path or None)
        with socket.create_connection((parts.hostname, parts.port or 443), timeout=timeout) as raw, \
                context.wrap_socket(raw, server_hostname=parts.hostname):
            return None
    except (OSError, ssl.SSLError) as exc:
        return _describe(exc)


def wait_until_served(lineage, fetch, timeout=10.0, interval=0.2):
    """Poll fetch() until it returns the lineage's certificate or timeout seconds passed; the last answer."""
    deadline = time.monotonic() + timeout
    while True:
        served = fetch()
        if served.get("fingerprint_sha256") == lineage["fingerprint_sha256"] or time.monotonic() >= deadline:
            return served
        time.sleep(interval)
