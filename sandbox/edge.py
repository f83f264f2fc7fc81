"""The sandbox's edge: nginx in front of the web app with TLS from certbot against Pebble, and the S3 bucket.

    obtain_certificate()  certbot certonly --webroot against Pebble (real HTTP-01 through nginx), idempotent
    renew() / renew_dry_run()  certbot renew against Pebble (never Let's Encrypt), nginx reloaded by a deploy hook
    site_config()         the nginx `server` blocks: HTTP (ACME webroot, redirect) and HTTPS (proxy, /static/)
    configure_site()      the chicken and egg: HTTP block first, certificate, then the HTTPS block, `nginx -t` each time
    served_certificate()  what nginx actually serves for a name (serial, expiry)
    ensure_bucket()       the S3 bucket, created or already there

certbot and openssl run as subprocesses with argv lists; every exit code is checked and a failure raises
EdgeError with certbot's output and the tail of its log. Everything certbot writes stays under certbot_dir
(config/, work/, logs/), so it never touches /etc/letsencrypt.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import http.client
import os
import re
import secrets
import shlex
import shutil
import socket
import ssl
import subprocess
import tempfile
import time
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any, Protocol

CERTBOT_TIMEOUT = 180  # seconds for one certbot run
DOMAIN_RE = re.compile(r"^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$")
REGISTER = ["--agree-tos", "--register-unsafely-without-email"]  # a new account when the ACME server has none for us
UNSAFE_IN_NGINX = re.compile(r'[\s;"\'{}$\\#]')  # characters that would end or change an nginx directive


class EdgeError(RuntimeError):
    """certbot, openssl, nginx or S3 failed; the message says what, where, and shows the tool's output."""


class AcmeServer(Protocol):
    """What the functions here need of an ACME server: harness.PebbleServer has it."""

    directory_url: str
    ca_cert: Path  # the CA bundle that verifies the directory's HTTPS
    http_port: int  # where HTTP-01 validation connects
    management_url: str


class ReloadableNginx(Protocol):
    """What configure_site() needs of nginx: harness.NginxServer has it."""

    extra_servers: str
    prefix: Path
    conf_path: Path
    error_log: Path

    def write_config(self) -> None: ...

    def reload(self) -> None: ...

    def alive(self) -> bool: ...


# Certificates on disk and on the wire.


def _openssl_x509(data: bytes, inform: str = "PEM") -> dict[str, Any]:
    """Serial (upper-case hex, no leading zeros), notAfter (aware UTC datetime) and subject of one certificate."""
    argv = ["openssl", "x509", "-inform", inform, "-noout", "-serial", "-enddate", "-subject", "-nameopt", "RFC2253"]
    result = subprocess.run(argv, input=data, capture_output=True, check=False, timeout=30)
    if result.returncode != 0:
        raise EdgeError(f"openssl x509 could not read the certificate (exit {result.returncode}): {result.stderr.decode(errors='replace')}")
    fields = dict(line.split("=", 1) for line in result.stdout.decode().splitlines() if "=" in line)
    not_after = dt.datetime.strptime(fields["notAfter"], "%b %d %H:%M:%S %Y %Z").replace(tzinfo=dt.UTC)
    return {"serial": f"{int(fields['serial'], 16):X}", "not_after": not_after, "subject": fields.get("subject", "").strip()}


def certificate_info(path: str | Path) -> dict[str, Any]:
    """serial, not_after (datetime, UTC) and subject of the first certificate in a PEM file."""
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise EdgeError(f"cannot read certificate {path}: {exc}") from exc
    return _openssl_x509(data)


def served_certificate(host: str, port: int, server_name: str, cafile: str | Path | None = None, timeout: float = 5.0) -> dict[str, Any]:
    """The certificate a TLS server presents for server_name (SNI): serial, not_after, subject.

    With cafile the chain and the name are verified against it (ssl.SSLError if they do not hold);
    without, the certificate is only read.
    """
    if cafile is None:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    else:
        context = ssl.create_default_context(cafile=str(cafile))
    with socket.create_connection((host, port), timeout=timeout) as raw, context.wrap_socket(raw, server_hostname=server_name) as tls:
        der = tls.getpeercert(binary_form=True)
    if der is None:
        raise EdgeError(f"{host}:{port} presented no certificate for {server_name}")
    return _openssl_x509(der, "DER")


def wait_until_served(host: str, port: int, server_name: str, serial: str, timeout: float = 10.0) -> dict[str, Any]:
    """Wait until host:port serves the certificate with this serial for server_name (after a reload); its info."""
    deadline = time.monotonic() + timeout
    seen: dict[str, Any] | str = "nothing"
    while True:
        try:
            seen = served_certificate(host, port, server_name)
            if seen["serial"] == serial:
                return seen
        except (OSError, EdgeError) as exc:
            seen = f"error: {exc}"
        if time.monotonic() >= deadline:
            shown = seen["serial"] if isinstance(seen, dict) else seen
            raise EdgeError(f"{host}:{port} does not serve certificate {serial} for {server_name} after {timeout:.0f} s (serves {shown})")
        time.sleep(0.1)


def pebble_root(pebble: AcmeServer) -> str:
    """PEM of the root that signs Pebble's certificates (a new one at every Pebble start)."""
    context = ssl.create_default_context(cafile=str(pebble.ca_cert))
    url = pebble.management_url + "/roots/0"
    try:
        with urllib.request.urlopen(url, context=context, timeout=10) as response:  # noqa: S310 - the harness' https URL
            return response.read().decode()
    except OSError as exc:
        raise EdgeError(f"cannot fetch the issuing root of the ACME server from {url}: {exc}") from exc


# certbot.


def certbot_paths(certbot_dir: str | Path, domain: str) -> dict[str, Path]:
    """Where certbot keeps everything for domain under certbot_dir."""
    base = Path(certbot_dir).resolve()
    live = base / "config" / "live" / domain
    return {"config_dir": base / "config", "work_dir": base / "work", "logs_dir": base / "logs", "live_dir": live,
            "fullchain": live / "fullchain.pem", "privkey": live / "privkey.pem", "cert": live / "cert.pem", "chain": live / "chain.pem",
            "renewal_conf": base / "config" / "renewal" / f"{domain}.conf", "log": base / "logs" / "letsencrypt.log"}


def _check_domain(domain: str) -> str:
    if not DOMAIN_RE.match(domain):
        raise EdgeError(f"not a usable domain name: {domain!r} (lower-case DNS name with a dot, e.g. webstack.test)")
    return domain


def _log_tail(path: Path, lines: int = 25) -> str:
    try:
        text = path.read_text(errors="replace").splitlines()[-lines:]
    except OSError:
        return f"(no certbot log at {path})"
    return f"--- last lines of {path}:\n" + "\n".join(text)


def _acme_unreachable(pebble: AcmeServer) -> str | None:
    """Why the ACME directory does not answer over verified HTTPS, None if it does."""
    context = ssl.create_default_context(cafile=str(pebble.ca_cert))
    try:
        with urllib.request.urlopen(pebble.directory_url, context=context, timeout=5) as response:  # noqa: S310 - the harness' https URL
            response.read()
    except (OSError, ssl.SSLError) as exc:
        return str(getattr(exc, "reason", exc))
    return None


def _stale_accounts_dir(pebble: AcmeServer, paths: dict[str, Path]) -> Path:
    """certbot's accounts for this ACME server: config/accounts/HOST:PORT/PATH."""
    url = urllib.parse.urlsplit(pebble.directory_url)
    return paths["config_dir"] / "accounts" / url.netloc / url.path.strip("/")


def _certbot(action: str, args: list[str], pebble: AcmeServer, certbot_dir: str | Path, domain: str) -> str:
    """Run `certbot ACTION ARGS` against pebble with everything under certbot_dir; its output, or EdgeError.

    Pebble keeps no state across restarts: when it no longer knows the account certbot stored for it
    (accountDoesNotExist), that stored account is removed and certbot runs once more, registering anew.
    """
    paths = certbot_paths(certbot_dir, domain)
    for key in ("config_dir", "work_dir", "logs_dir"):
        paths[key].mkdir(parents=True, exist_ok=True, mode=0o700)
    argv = ["certbot", action, *args, "--server", pebble.directory_url, "--config-dir", str(paths["config_dir"]),
            "--work-dir", str(paths["work_dir"]), "--logs-dir", str(paths["logs_dir"]), "--non-interactive", "--max-log-backups", "20"]
    env = {**os.environ, "REQUESTS_CA_BUNDLE": str(pebble.ca_cert)}
    env.pop("PYTHONPATH", None)  # Debian's certbot runs on the system Python, not on a caller's venv
    what = f"certbot {action} for {domain} against ACME server {pebble.directory_url}"
    for attempt in (1, 2):
        try:
            result = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=CERTBOT_TIMEOUT, check=False)
        except FileNotFoundError as exc:
            raise EdgeError(f"{what}: certbot is not installed (apt-get install certbot)") from exc
        except subprocess.TimeoutExpired as exc:
            raise EdgeError(f"{what} did not finish in {CERTBOT_TIMEOUT} s\n{_log_tail(paths['log'])}") from exc
        output = (result.stdout + result.stderr).strip()
        if result.returncode == 0:
            break
        log = _log_tail(paths["log"], 400)
        stale = _stale_accounts_dir(pebble, paths)
        if attempt == 1 and "accountDoesNotExist" in log and stale.is_dir():
            # certbot 2.1 then dies with a misleading "AttributeError: can't set attribute"; the log has the cause
            shutil.rmtree(stale)
            continue
        unreachable = _acme_unreachable(pebble)
        cause = (f"the ACME server {pebble.directory_url} does not answer ({unreachable}): is Pebble running?" if unreachable else
                 f"is 127.0.0.1:{pebble.http_port} (where the ACME server validates HTTP-01) serving /.well-known/acme-challenge/ "
                 f"for {domain}?")
        raise EdgeError(f"{what} failed (exit {result.returncode}); {cause}\n$ {shlex.join(argv)}\n{output}\n{_log_tail(paths['log'])}")
    if re.search(r"Hook '[^']*' (reported|returned) error code", output):  # certbot exits 0 when a hook fails
        raise EdgeError(f"{what}: a hook failed (the certificate on disk may not be served)\n{output}\n{_log_tail(paths['log'])}")
    return output


def chains_to(cert: str | Path, chain: str | Path, root_pem: str) -> bool:
    """True if cert verifies (openssl verify, with chain as intermediates) against root_pem and is not expired."""
    with tempfile.NamedTemporaryFile("w", suffix=".pem") as root:
        root.write(root_pem)
        root.flush()
        result = subprocess.run(["openssl", "verify", "-CAfile", root.name, "-untrusted", str(chain), str(cert)],
                                capture_output=True, text=True, check=False, timeout=30)
    return result.returncode == 0


def _set_renew_before_expiry(renewal_conf: Path, interval: str) -> None:
    """Write the top-level renew_before_expiry of a lineage's renewal configuration (certbot keeps it across renewals)."""
    if not re.fullmatch(r"\d+ (minute|hour|day|week)s?( \d+ (minute|hour|day|week)s?)*", interval):
        raise EdgeError(f"renew_before_expiry must read like '10 minutes' or '30 days', not {interval!r}")
    lines = [line for line in renewal_conf.read_text().splitlines() if not re.match(r"\s*renew_before_expiry\s*=", line)]
    renewal_conf.write_text("\n".join([f"renew_before_expiry = {interval}", *lines]) + "\n")


def _result(certbot_dir: str | Path, domain: str, before: str | None, output: str) -> dict[str, Any]:
    paths = certbot_paths(certbot_dir, domain)
    if not paths["fullchain"].exists():
        raise EdgeError(f"certbot reported success but left no certificate at {paths['fullchain']}\n{output}")
    info = certificate_info(paths["cert"])
    return {"domain": domain, "fullchain": str(paths["fullchain"]), "privkey": str(paths["privkey"]), "cert": str(paths["cert"]),
            "chain": str(paths["chain"]), "serial": info["serial"], "not_after": info["not_after"].isoformat(),
            "changed": info["serial"] != before, "output": output}


def _current_serial(certbot_dir: str | Path, domain: str) -> str | None:
    cert = certbot_paths(certbot_dir, domain)["cert"]
    return certificate_info(cert)["serial"] if cert.exists() else None


def _check_webroot_served(domain: str, webroot: Path, http_port: int) -> None:
    """Before asking the ACME server: a file in webroot/.well-known/acme-challenge/ is served for domain on http_port."""
    challenge_dir = webroot / ".well-known" / "acme-challenge"
    challenge_dir.mkdir(parents=True, exist_ok=True)
    token = "edge-probe-" + secrets.token_hex(8)
    probe = challenge_dir / token
    probe.write_text(token)
    conn = http.client.HTTPConnection("127.0.0.1", http_port, timeout=5)
    try:
        conn.request("GET", f"/.well-known/acme-challenge/{token}", headers={"Host": domain})
        response = conn.getresponse()
        body = response.read().decode(errors="replace")
        status = response.status
    except (OSError, http.client.HTTPException) as exc:
        raise EdgeError(f"nothing answers HTTP on 127.0.0.1:{http_port}, where the ACME server validates {domain}: {exc}") from exc
    finally:
        conn.close()
        probe.unlink(missing_ok=True)
    if status != 200 or body != token:
        raise EdgeError(f"127.0.0.1:{http_port} does not serve {challenge_dir} for {domain} (GET of a probe file: {status}); "
                        "the ACME server's HTTP-01 validation would fail")


def obtain_certificate(pebble: AcmeServer, domain: str, webroot: str | Path, certbot_dir: str | Path, http_port: int, *,
                       renew_before_expiry: str | None = None, force_renewal: bool = False) -> dict[str, Any]:
    """A certificate for domain from the ACME server by HTTP-01 through webroot (served on 127.0.0.1:http_port).

    Idempotent: a certificate that is not due for renewal is kept (`--keep-until-expiring`), unless it no
    longer chains to the ACME server's current root (Pebble makes a new root at every start). certbot's
    default is to renew within 30 days of expiry, so a short-lived certificate (Pebble's validity_period)
    would be renewed at every call: renew_before_expiry (e.g. "10 minutes") sets the lineage's own window.
    Returns fullchain, privkey, cert, chain (paths), serial, not_after (ISO 8601, UTC), changed (a new
    certificate was issued) and certbot's output.
    """
    _check_domain(domain)
    if http_port != pebble.http_port:
        raise EdgeError(f"the ACME server validates HTTP-01 on port {pebble.http_port}, but the webroot is served on {http_port}: "
                        "start Pebble with http_port equal to nginx's HTTP port")
    webroot = Path(webroot).resolve()
    _check_webroot_served(domain, webroot, http_port)
    before = _current_serial(certbot_dir, domain)
    paths = certbot_paths(certbot_dir, domain)
    if before is not None and not force_renewal and not chains_to(paths["cert"], paths["chain"], pebble_root(pebble)):
        force_renewal = True  # issued by an earlier Pebble (a new root at every start): nobody trusts it any more
    args = ["--webroot", "-w", str(webroot), "-d", domain, "--cert-name", domain, *REGISTER,
            "--force-renewal" if force_renewal else "--keep-until-expiring"]
    output = _certbot("certonly", args, pebble, certbot_dir, domain)
    if renew_before_expiry:
        _set_renew_before_expiry(certbot_paths(certbot_dir, domain)["renewal_conf"], renew_before_expiry)
    return _result(certbot_dir, domain, before, output)


def nginx_deploy_hook(nginx: ReloadableNginx, hook_dir: str | Path) -> Path:
    """A script for certbot's --deploy-hook: `nginx -t` on nginx's configuration, then reload (only if the test passed)."""
    base = ["nginx", "-p", f"{nginx.prefix}/", "-c", str(nginx.conf_path), "-e", str(nginx.error_log)]
    script = Path(hook_dir).resolve() / "deploy-nginx-reload.sh"
    script.parent.mkdir(parents=True, exist_ok=True)
    script.write_text("#!/bin/sh\n# certbot deploy hook written by sandbox/edge.py: validate, then reload nginx\nset -e\n"
                      f"{shlex.join([*base, '-t', '-q'])}\n{shlex.join([*base, '-s', 'reload'])}\n")
    script.chmod(0o700)
    return script


def renew(pebble: AcmeServer, domain: str, certbot_dir: str | Path, *, nginx: ReloadableNginx | None = None,
          force: bool = False, https_port: int | None = None) -> dict[str, Any]:
    """`certbot renew` of domain's lineage against the ACME server; with nginx, a deploy hook validates and reloads it.

    Without force, certbot renews only when the certificate is due. With https_port, a renewed certificate
    must then be served on 127.0.0.1:https_port (EdgeError if nginx still serves the old one).
    Returns what obtain_certificate() returns.
    """
    _check_domain(domain)
    paths = certbot_paths(certbot_dir, domain)
    if not paths["renewal_conf"].exists():
        raise EdgeError(f"no certificate lineage for {domain} under {paths['config_dir']}: obtain one first")
    before = _current_serial(certbot_dir, domain)
    args = ["--cert-name", domain, "--no-random-sleep-on-renew", *REGISTER]
    if force:
        args.append("--force-renewal")
    if nginx is not None:
        args += ["--deploy-hook", shlex.quote(str(nginx_deploy_hook(nginx, Path(certbot_dir) / "hooks")))]
    output = _certbot("renew", args, pebble, certbot_dir, domain)
    result = _result(certbot_dir, domain, before, output)
    if https_port is not None and result["changed"]:
        wait_until_served("127.0.0.1", https_port, domain, result["serial"])
    return result


def renew_dry_run(pebble: AcmeServer, domain: str, certbot_dir: str | Path) -> str:
    """`certbot renew --dry-run` against the ACME server (--server given, so never Let's Encrypt staging); certbot's output.

    A dry run obtains a test certificate and discards it: nothing under live/, archive/ or renewal/ changes.
    """
    _check_domain(domain)
    if not certbot_paths(certbot_dir, domain)["renewal_conf"].exists():
        raise EdgeError(f"no certificate lineage for {domain} under {certbot_dir}: obtain one first")
    return _certbot("renew", ["--cert-name", domain, "--dry-run", "--no-random-sleep-on-renew", *REGISTER], pebble, certbot_dir, domain)


# nginx.


def _nginx_value(value: str | Path, what: str) -> str:
    text = str(value)
    if not text or UNSAFE_IN_NGINX.search(text):
        raise EdgeError(f"{what} cannot go into an nginx configuration as is: {text!r}")
    return text


def _upstream(upstream: str) -> str:
    """host:port of the upstream, from 'host:port' or 'http://host:port'."""
    address = upstream.removeprefix("http://").rstrip("/")
    if not re.fullmatch(r"[A-Za-z0-9.-]+:\d{1,5}|\[[0-9a-fA-F:]+\]:\d{1,5}", address):
        raise EdgeError(f"upstream must be host:port (e.g. 127.0.0.1:8000), not {upstream!r}")
    return address


def site_config(domain: str, http_port: int, https_port: int, upstream: str, cert: str | Path | None, key: str | Path | None,  # noqa: PLR0917
                webroot: str | Path, static_root: str | Path, *, log_dir: str | Path = "logs", host: str = "127.0.0.1") -> str:
    """nginx `server` blocks for domain, for NginxServer(extra_servers=...).

    HTTP on host:http_port answers ACME HTTP-01 challenges from webroot and redirects everything else to HTTPS.
    With cert and key, HTTPS on host:https_port proxies to upstream (host:port) with the usual proxy headers and
    serves /static/ from static_root. Without them (before the first certificate) only the HTTP block.
    Logs: log_dir/DOMAIN.access.log in nginx's `combined` format (the guide greps status codes and
    `POST /admin` in it) and log_dir/DOMAIN.error.log; a relative log_dir is under nginx's prefix.
    """
    _check_domain(domain)
    address = _upstream(upstream)
    webroot_text = _nginx_value(Path(webroot).resolve(), "webroot")
    access_log = _nginx_value(Path(log_dir) / f"{domain}.access.log", "log_dir")
    error_log = _nginx_value(Path(log_dir) / f"{domain}.error.log", "log_dir")
    https_url = f"https://$host{'' if https_port == 443 else f':{https_port}'}$request_uri"
    blocks = [f"""\
    # {domain}: ACME HTTP-01 challenges, everything else to HTTPS (written by sandbox/edge.py)
    server {{
        listen {host}:{http_port};
        server_name {domain};
        access_log {access_log} combined;
        error_log {error_log};

        location ^~ /.well-known/acme-challenge/ {{
            root {webroot_text};
            default_type text/plain;
            try_files $uri =404;
        }}

        location / {{
            return 301 {https_url};
        }}
    }}
"""]
    if cert is not None and key is not None:
        static_text = _nginx_value(Path(static_root).resolve(), "static_root")
        blocks.append(f"""\
    # {domain}: TLS in front of the web application
    server {{
        listen {host}:{https_port} ssl;
        server_name {domain};
        ssl_certificate {_nginx_value(cert, "cert")};
        ssl_certificate_key {_nginx_value(key, "key")};
        ssl_protocols TLSv1.2 TLSv1.3;
        ssl_prefer_server_ciphers off;
        access_log {access_log} combined;
        error_log {error_log};
        client_max_body_size 20m;

        location /static/ {{
            alias {static_text}/;
            expires 30d;
        }}

        location / {{
            proxy_pass http://{address};
            proxy_set_header Host $host;
            proxy_set_header X-Real-IP $remote_addr;
            proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
            proxy_set_header X-Forwarded-Proto $scheme;
            proxy_set_header X-Forwarded-Host $host;
            proxy_redirect off;
            proxy_connect_timeout 10s;
            proxy_read_timeout 60s;
        }}
    }}
""")
    return "\n".join(blocks)


def _wait_http(port: int, domain: str, timeout: float = 10.0) -> None:
    """Wait until a reload took effect: host:port answers HTTP for domain."""
    deadline = time.monotonic() + timeout
    while True:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
        try:
            conn.request("GET", "/.well-known/acme-challenge/", headers={"Host": domain})
            conn.getresponse().read()
            return
        except (OSError, http.client.HTTPException) as exc:
            if time.monotonic() >= deadline:
                raise EdgeError(f"nginx does not answer on 127.0.0.1:{port} after the reload: {exc}") from exc
        finally:
            conn.close()
        time.sleep(0.1)


def configure_site(nginx: ReloadableNginx, pebble: AcmeServer, domain: str, *, http_port: int, https_port: int, upstream: str,
                   webroot: str | Path, static_root: str | Path, certbot_dir: str | Path, renew_before_expiry: str | None = None,
                   base_servers: str = "") -> dict[str, Any]:
    """nginx serving domain over HTTPS with a certificate from the ACME server, from a running nginx.

    1. the HTTP block alone (answers the challenge) in nginx.extra_servers, `nginx -t`, reload;
    2. obtain_certificate() (kept if one is already valid);
    3. HTTP and HTTPS blocks, `nginx -t`, reload, and wait until nginx serves the certificate's serial.
    If a reload is refused, the previous extra_servers are put back and nginx keeps its running configuration.
    base_servers is kept in front of the site's blocks (other server blocks of the caller).
    Returns obtain_certificate()'s result plus http_port, https_port, the config text and reloads (how many
    reloads it made: none when the configuration and the certificate were already in place).
    """
    if not nginx.alive():
        raise EdgeError("nginx is not running: start it before configure_site()")
    Path(webroot).mkdir(parents=True, exist_ok=True)
    Path(static_root).mkdir(parents=True, exist_ok=True)
    reloads = 0

    def apply(text: str, force: bool = False) -> None:
        nonlocal reloads
        previous = nginx.extra_servers
        wanted = f"{base_servers}\n{text}" if base_servers else text
        if wanted == previous and not force:
            return
        nginx.extra_servers = wanted
        try:
            nginx.reload()
        except Exception as exc:
            nginx.extra_servers = previous
            with contextlib.suppress(Exception):
                nginx.write_config()  # the file on disk matches what runs again
            raise EdgeError(f"nginx refused the configuration for {domain}; it keeps serving the previous one\n{exc}") from exc
        reloads += 1
        _wait_http(http_port, domain)

    paths = certbot_paths(certbot_dir, domain)
    if not paths["fullchain"].exists():
        apply(site_config(domain, http_port, https_port, upstream, None, None, webroot, static_root))
    else:
        # a renewal goes through the HTTP block, which the full configuration has too
        apply(site_config(domain, http_port, https_port, upstream, paths["fullchain"], paths["privkey"], webroot, static_root))
    cert = obtain_certificate(pebble, domain, webroot, certbot_dir, http_port, renew_before_expiry=renew_before_expiry)
    text = site_config(domain, http_port, https_port, upstream, cert["fullchain"], cert["privkey"], webroot, static_root)
    apply(text, force=cert["changed"])  # same text, new files: nginx reads certificates only when it (re)loads
    wait_until_served("127.0.0.1", https_port, domain, cert["serial"])
    return {**cert, "https_port": https_port, "http_port": http_port, "config": text, "reloads": reloads}


# S3.


def ensure_bucket(endpoint_url: str, access_key: str, secret_key: str, bucket: str, region: str = "us-east-1") -> bool:
    """The bucket exists afterwards: True if this call created it, False if it was already there (ours)."""
    import boto3  # noqa: PLC0415 - only the S3 part needs boto3
    from botocore.config import Config  # noqa: PLC0415
    from botocore.exceptions import BotoCoreError, ClientError  # noqa: PLC0415

    client = boto3.client("s3", endpoint_url=endpoint_url, aws_access_key_id=access_key, aws_secret_access_key=secret_key,
                          region_name=region, config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 2},
                                                            connect_timeout=5, read_timeout=30))
    try:
        client.head_bucket(Bucket=bucket)
        return False
    except ClientError as exc:
        code = str(exc.response.get("Error", {}).get("Code", ""))
        if code not in ("404", "NoSuchBucket", "NotFound"):
            raise EdgeError(f"S3 at {endpoint_url}: cannot check bucket {bucket!r} ({code}): {exc}") from exc
    except BotoCoreError as exc:
        raise EdgeError(f"S3 at {endpoint_url} does not answer: {exc}") from exc
    try:
        client.create_bucket(Bucket=bucket)
    except ClientError as exc:
        code = str(exc.response.get("Error", {}).get("Code", ""))
        if code == "BucketAlreadyOwnedByYou":
            return False
        raise EdgeError(f"S3 at {endpoint_url}: cannot create bucket {bucket!r} ({code}): {exc}") from exc
    except BotoCoreError as exc:
        raise EdgeError(f"S3 at {endpoint_url} does not answer: {exc}") from exc
    return True
