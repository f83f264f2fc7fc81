"""Faults on demand for the sandbox, each with its undo, for tests of checks and runbooks.

Every fault records what it did (PIDs, mount points, container ids) in the JSON-able dict it
returns, which its undo takes back; an undo of an undone fault does nothing. Nothing outside
the sandbox is touched.

    fill_disk / undo_fill_disk                        tmpfs of size_mb filled to percent (df shows it)
    block_database / undo_block_database              a session holding ACCESS EXCLUSIVE on a table in pg_sleep
    near_expiry_certificate / undo_near_expiry_certificate   certbot lineage re-issued by a short-validity Pebble
    expired_certificate / undo_expired_certificate    nginx pointed at an expired self-signed pair
    expired_lineage / undo_expired_lineage            certbot's own lineage at an expired version, served (a renewal that never ran)
    error_burst                                       GETs of the app's /error/, or ERROR records appended to a log
    health_fail / undo_health_fail                    the app's HEALTH_FORCE_FAIL_FILE switch
    stop_container / kill_container / start_container docker stop; SIGKILL (host: restarts; docker kill: manual stop)
    oom_container / undo_oom_container                main process OOM-killed under a lowered limit (OOMKilled true)
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import re
import signal
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import edge
import psycopg2
from psycopg2 import sql

BLOCKER = "webstack-sandbox-fault"  # application_name of the blocking session


def fill_disk(mount_dir: Path, size_mb: int = 16, percent: int = 95) -> dict[str, Any]:
    """A small dedicated filesystem (tmpfs) at mount_dir, filled to `percent`."""
    mount_dir.mkdir(parents=True, exist_ok=True)
    if not os.path.ismount(mount_dir):
        subprocess.run(["mount", "-t", "tmpfs", "-o", "size=%dm,mode=0755" % size_mb, "webstack-sandbox-disk", str(mount_dir)],
                       check=True)
    filler = mount_dir / "filler.bin"
    filler.unlink(missing_ok=True)
    stat = os.statvfs(mount_dir)
    total = stat.f_blocks * stat.f_frsize
    subprocess.run(["fallocate", "-l", str(total * percent // 100), str(filler)], check=True)
    return {"fault": "disk_full", "mount": str(mount_dir), "percent": disk_used_percent(mount_dir)}


def disk_used_percent(path: Path) -> int:
    """Used space as `df` shows it (blocks used / blocks usable by users)."""
    stat = os.statvfs(path)
    used = stat.f_blocks - stat.f_bfree
    return round(100 * used / (used + stat.f_bavail)) if used + stat.f_bavail else 0


def undo_fill_disk(record: dict[str, Any]) -> None:
    mount = Path(record["mount"])
    if os.path.ismount(mount):
        subprocess.run(["umount", str(mount)], check=True)


def connect(login: dict[str, Any], dbname: str):
    conn = psycopg2.connect(host=login["host"], port=login["port"], user=login["user"], password=login["password"], dbname=dbname)
    conn.autocommit = True
    return conn


def block_database(login: dict[str, Any], dbname: str, table: str, seconds: int = 300) -> dict[str, Any]:
    """A session that holds an ACCESS EXCLUSIVE lock on `table` and sleeps: the guide's long-running query."""
    conn = connect(login, dbname)
    try:
        script = sql.SQL("BEGIN; LOCK TABLE {} IN ACCESS EXCLUSIVE MODE; SELECT pg_sleep({}); COMMIT;").format(
            sql.Identifier(table), sql.Literal(seconds)).as_string(conn)
    finally:
        conn.close()
    env = dict(os.environ, PGPASSWORD=login["password"], PGAPPNAME=BLOCKER)
    proc = subprocess.Popen(
        ["psql", "-X", "-q", "-h", login["host"], "-p", str(login["port"]), "-U", login["user"], "-d", dbname, "-c", script],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )
    deadline = time.monotonic() + 10
    while not lock_held(login, dbname, table):
        if proc.poll() is not None or time.monotonic() > deadline:
            undo_block_database(login, {"pid": proc.pid, "database": dbname})
            raise RuntimeError("could not lock %s in %s (psql exit %s): check the database and table" % (table, dbname, proc.poll()))
        time.sleep(0.1)
    return {"fault": "db_blocked", "pid": proc.pid, "table": table, "database": dbname}


def lock_held(login: dict[str, Any], dbname: str, table: str) -> bool:
    conn = connect(login, dbname)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT count(*) FROM pg_locks l JOIN pg_class c ON c.oid = l.relation "
                        "WHERE c.relname = %s AND l.mode = 'AccessExclusiveLock' AND l.granted", (table,))
            return cur.fetchone()[0] > 0
    finally:
        conn.close()


def undo_block_database(login: dict[str, Any], record: dict[str, Any]) -> None:
    """End the blocking session on the server (a sleeping backend does not notice its client going), then its psql."""
    conn = connect(login, record["database"])
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = %s", (BLOCKER,))
    finally:
        conn.close()
    with contextlib.suppress(ProcessLookupError):
        os.killpg(record["pid"], signal.SIGTERM)


# Certificates.


def _renew_before_expiry(renewal_conf: Path) -> str | None:
    """The lineage's own renew_before_expiry (certbot certonly may drop it when it rewrites the file)."""
    with contextlib.suppress(OSError):
        for line in renewal_conf.read_text().splitlines():
            match = re.match(r"\s*renew_before_expiry\s*=\s*(.+?)\s*$", line)
            if match:
                return match.group(1)
    return None


def _children(pid: int) -> set[int]:
    try:
        return {int(child) for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()}
    except (OSError, ValueError):
        return set()


def _reload_and_check(nginx: edge.ReloadableNginx, domain: str, https_port: int | None, serial: str, timeout: float = 15) -> None:
    """Reload nginx, wait until its old workers are gone, then until it serves `serial` (with https_port).

    After SIGHUP old and new workers accept connections side by side for a moment: one connection with the
    new certificate does not mean the next one gets it too, so the old workers' exit is waited for first.
    """
    master = getattr(nginx, "pid", None)
    old_workers = _children(master) if master else set()
    nginx.reload()
    if old_workers:
        wait_for(lambda: not (old_workers & _children(master)), timeout, "nginx's old workers to exit after the reload")
    if https_port is not None:
        edge.wait_until_served("127.0.0.1", https_port, domain, serial)


def near_expiry_certificate(pebble: edge.AcmeServer, nginx: edge.ReloadableNginx, domain: str, certbot_dir: str | Path, *,
                            webroot: str | Path, state_dir: str | Path, days: float = 7, https_port: int | None = None) -> dict[str, Any]:
    """nginx serves a certificate for domain that expires in `days` days.

    A Pebble of the fault's own (under state_dir, certificateValidityPeriod = days) issues it through the same
    HTTP-01 webroot into certbot's lineage (certbot --force-renewal), nginx reloads; that Pebble is stopped again
    before returning. The certificate therefore chains to that Pebble's root, not to the sandbox Pebble's.
    """
    from harness import PebbleServer  # noqa: PLC0415 - only this fault starts a server

    paths = edge.certbot_paths(certbot_dir, domain)
    before = edge.certificate_info(paths["cert"])["serial"] if paths["cert"].exists() else None
    window = _renew_before_expiry(paths["renewal_conf"])
    short = PebbleServer(Path(state_dir) / "pebble-near-expiry", http_port=pebble.http_port, validity_period=max(60, int(days * 86400)))
    short.start()
    try:
        issued = edge.obtain_certificate(short, domain, webroot, certbot_dir, pebble.http_port, force_renewal=True,
                                         renew_before_expiry=window)
    finally:
        short.stop()
    _reload_and_check(nginx, domain, https_port, issued["serial"])
    return {"fault": "certificate_near_expiry", "domain": domain, "certbot_dir": str(Path(certbot_dir).resolve()), "webroot": str(webroot),
            "serial": issued["serial"], "not_after": issued["not_after"], "previous_serial": before, "renew_before_expiry": window,
            "https_port": https_port}


def undo_near_expiry_certificate(pebble: edge.AcmeServer, nginx: edge.ReloadableNginx, record: dict[str, Any]) -> dict[str, Any] | None:
    """A normal certificate from the sandbox Pebble again (certbot --force-renewal), nginx reloaded; None if already undone.

    Already undone means the lineage no longer holds the near-expiry certificate the record names.
    """
    domain, certbot_dir = record["domain"], record["certbot_dir"]
    paths = edge.certbot_paths(certbot_dir, domain)
    if not paths["cert"].exists() or edge.certificate_info(paths["cert"])["serial"] != record["serial"]:
        return None
    issued = edge.obtain_certificate(pebble, domain, record["webroot"], certbot_dir, pebble.http_port, force_renewal=True,
                                     renew_before_expiry=record.get("renew_before_expiry"))
    _reload_and_check(nginx, domain, record.get("https_port"), issued["serial"])
    return issued


def make_expired_certificate(domain: str, cert_path: Path, key_path: Path, *, days_ago: int = 3, lifetime_days: int = 90) -> dict[str, Any]:
    """A self-signed certificate for domain (EC P-256 key) that expired days_ago days ago; its serial and not_after."""
    from cryptography import x509  # noqa: PLC0415
    from cryptography.hazmat.primitives import hashes, serialization  # noqa: PLC0415
    from cryptography.hazmat.primitives.asymmetric import ec  # noqa: PLC0415
    from cryptography.x509.oid import NameOID  # noqa: PLC0415

    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    not_after = (now - dt.timedelta(days=days_ago)).replace(microsecond=0)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, domain)])
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(not_after - dt.timedelta(days=lifetime_days)).not_valid_after(not_after)
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(domain)]), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    cert_path.parent.mkdir(parents=True, exist_ok=True)
    key_path.touch(mode=0o600)
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return {"serial": f"{cert.serial_number:X}", "not_after": not_after.isoformat()}


def _site_directives(cert: str | Path, key: str | Path) -> tuple[str, str]:
    return f"ssl_certificate {cert};", f"ssl_certificate_key {key};"


def expired_certificate(nginx: edge.ReloadableNginx, domain: str, certbot_dir: str | Path, *, state_dir: str | Path,
                        https_port: int | None = None, days_ago: int = 3) -> dict[str, Any]:
    """nginx serves an already-expired self-signed certificate for domain.

    The site's `ssl_certificate`/`ssl_certificate_key` (certbot's live paths, as edge.site_config() writes them)
    are pointed at the expired pair under state_dir; the configuration is tested (`nginx -t`) before nginx
    reloads, and if nginx refuses it the previous configuration stays. certbot's lineage is not touched.
    """
    paths = edge.certbot_paths(certbot_dir, domain)
    fault_dir = Path(state_dir).resolve() / "expired-certificate"
    cert, key = fault_dir / f"{domain}.crt", fault_dir / f"{domain}.key"
    old_cert, old_key = _site_directives(paths["fullchain"], paths["privkey"])
    new_cert, new_key = _site_directives(cert, key)
    previous = nginx.extra_servers
    if old_cert not in previous or old_key not in previous:
        raise RuntimeError(f"nginx's configuration has no `{old_cert}` for {domain}: is the site configured (edge.configure_site)?")
    made = make_expired_certificate(domain, cert, key, days_ago=days_ago)
    nginx.extra_servers = previous.replace(old_cert, new_cert).replace(old_key, new_key)
    try:
        _reload_and_check(nginx, domain, https_port, made["serial"])
    except Exception:
        nginx.extra_servers = previous
        raise
    return {"fault": "certificate_expired", "domain": domain, "cert": str(cert), "key": str(key), "serial": made["serial"],
            "not_after": made["not_after"], "certbot_fullchain": str(paths["fullchain"]), "certbot_privkey": str(paths["privkey"]),
            "https_port": https_port}


def undo_expired_certificate(nginx: edge.ReloadableNginx, record: dict[str, Any]) -> bool:
    """certbot's certificate in the site's configuration again, `nginx -t`, reload; False if it was already there."""
    new_cert, new_key = _site_directives(record["cert"], record["key"])
    old_cert, old_key = _site_directives(record["certbot_fullchain"], record["certbot_privkey"])
    current = nginx.extra_servers
    if new_cert not in current and new_key not in current:
        return False
    nginx.extra_servers = current.replace(new_cert, old_cert).replace(new_key, old_key)
    try:
        _reload_and_check(nginx, record["domain"], record.get("https_port"),
                          edge.certificate_info(record["certbot_fullchain"])["serial"])
    except Exception:
        nginx.extra_servers = current
        raise
    return True


LINEAGE_KINDS = ("cert", "chain", "fullchain", "privkey")


def _lineage_version(link: Path) -> int:
    return int(re.search(r"(\d+)\.pem$", os.readlink(link)).group(1))


def _point_lineage_at(paths: dict[str, Path], archive: Path, version: int) -> None:
    """live/DOMAIN/KIND.pem -> ../../archive/DOMAIN/KIND<version>.pem for every kind, relative as certbot links them."""
    for kind in LINEAGE_KINDS:
        link = paths["live_dir"] / f"{kind}.pem"
        tmp = link.with_name(f".{kind}.pem.new")
        tmp.unlink(missing_ok=True)
        tmp.symlink_to(os.path.relpath(archive / f"{kind}{version}.pem", link.parent))
        tmp.replace(link)


def expired_lineage(nginx: edge.ReloadableNginx, domain: str, certbot_dir: str | Path, *, https_port: int | None = None,
                    days_ago: int = 3) -> dict[str, Any]:
    """certbot's lineage for domain holds an expired certificate, and nginx serves it: the renewal never ran.

    An expired self-signed pair becomes the lineage's next version in archive/DOMAIN/ (cert, chain and fullchain the
    certificate, privkey its key) and live/DOMAIN/ is linked to it as certbot does; nginx's configuration is not touched,
    it reloads. `certbot renew` then finds the lineage expired and renews it.
    """
    paths = edge.certbot_paths(certbot_dir, domain)
    archive = paths["cert"].resolve().parent
    previous = _lineage_version(paths["cert"])
    version = max(int(m.group(1)) for m in (re.match(r"cert(\d+)\.pem$", f.name) for f in archive.iterdir()) if m) + 1
    made = make_expired_certificate(domain, archive / f"cert{version}.pem", archive / f"privkey{version}.pem", days_ago=days_ago)
    for kind in ("chain", "fullchain"):
        (archive / f"{kind}{version}.pem").write_bytes((archive / f"cert{version}.pem").read_bytes())
    _point_lineage_at(paths, archive, version)
    _reload_and_check(nginx, domain, https_port, made["serial"])
    return {"fault": "certificate_lineage_expired", "domain": domain, "certbot_dir": str(Path(certbot_dir).resolve()),
            "archive": str(archive), "version": version, "previous_version": previous, "serial": made["serial"],
            "not_after": made["not_after"], "https_port": https_port}


def undo_expired_lineage(nginx: edge.ReloadableNginx, record: dict[str, Any]) -> bool:
    """The lineage back at the version before the fault, nginx reloaded: the later versions (the expired one, and what
    a renewal made since) are removed, so the site serves the very certificate it served before. False if already so."""
    paths = edge.certbot_paths(record["certbot_dir"], record["domain"])
    archive = Path(record["archive"])
    later = [f for f in archive.iterdir() if (m := re.match(r"(?:cert|chain|fullchain|privkey)(\d+)\.pem$", f.name))
             and int(m.group(1)) > record["previous_version"]]
    if _lineage_version(paths["cert"]) == record["previous_version"] and not later:
        return False
    _point_lineage_at(paths, archive, record["previous_version"])
    for path in later:
        path.unlink()
    _reload_and_check(nginx, record["domain"], record.get("https_port"), edge.certificate_info(paths["cert"])["serial"])
    return True


# Logs and health.

LOG_FORMAT_TIME = "%Y-%m-%d %H:%M:%S"


def error_lines(count: int, path: str = "/error/") -> list[str]:
    """`count` error records the way Django's logging writes them (`%(asctime)s %(levelname)s %(name)s %(message)s`)."""
    lines = []
    for number in range(count):
        now = dt.datetime.now()
        stamp = f"{now.strftime(LOG_FORMAT_TIME)},{now.microsecond // 1000:03d}"
        lines += [f"{stamp} ERROR django.request Internal Server Error: {path}",
                  "Traceback (most recent call last):",
                  f"RuntimeError: sandbox fault: error burst {number + 1}/{count}"]
    return lines


def error_burst(target: str | Path, count: int = 20, timeout: float = 5.0) -> dict[str, Any]:
    """A burst of ERROR log lines: GET target `count` times if it is an http(s) URL (the app's /error/), else append to the log file."""
    if count < 1:
        raise ValueError("count must be at least 1")
    text = str(target)
    if text.startswith(("http://", "https://")):
        statuses: dict[str, int] = {}
        for _number in range(count):
            try:
                with urllib.request.urlopen(text, timeout=timeout) as response:  # noqa: S310 - a URL of the sandbox
                    status = response.status
            except urllib.error.HTTPError as exc:
                status = exc.code
            except OSError as exc:
                raise RuntimeError(f"error burst: {text} does not answer: {exc}") from exc
            statuses[str(status)] = statuses.get(str(status), 0) + 1
        return {"fault": "error_burst", "url": text, "requests": count, "statuses": statuses}
    path = Path(target)
    lines = error_lines(count)
    with open(path, "a") as log:
        log.write("\n".join(lines) + "\n")
    return {"fault": "error_burst", "log": str(path), "error_lines": count, "lines": len(lines)}


def health_fail(switch_file: str | Path) -> dict[str, Any]:
    """Create the file HEALTH_FORCE_FAIL_FILE names: the app answers /health/ with 503 while it exists."""
    path = Path(switch_file)
    path.parent.mkdir(parents=True, exist_ok=True)
    created = not path.exists()
    path.write_text("forced by sandbox/faults.py\n")
    return {"fault": "health_fail", "switch_file": str(path), "created": created}


def undo_health_fail(record: dict[str, Any]) -> bool:
    """Remove the switch file; False if it was already gone."""
    path = Path(record["switch_file"])
    existed = path.exists()
    path.unlink(missing_ok=True)
    return existed


# Containers (Docker SDK, a docker.DockerClient passed in).


def container_state(container) -> dict[str, Any]:
    container.reload()
    state = container.attrs["State"]
    return {"status": state["Status"], "running": state["Running"], "exit_code": state["ExitCode"], "oom_killed": state["OOMKilled"],
            "restart_count": container.attrs["RestartCount"], "pid": state["Pid"], "started_at": state["StartedAt"]}


def wait_for(predicate, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(0.2)


def stop_container(client, name: str, timeout: int = 10) -> dict[str, Any]:
    """docker stop (SIGTERM, SIGKILL after timeout): a stopped container stays down whatever its restart policy."""
    container = client.containers.get(name)
    before = container_state(container)
    container.stop(timeout=timeout)
    return {"fault": "container_stopped", "name": name, "id": container.id, "before": before, "after": container_state(container)}


def start_container(client, record: dict[str, Any], timeout: float = 30) -> bool:
    """Undo of stop/kill: start the container if it is not running (False if it already was)."""
    container = client.containers.get(record["id"])
    if container_state(container)["running"]:
        return False
    container.start()
    wait_for(lambda: container_state(container)["running"], timeout, f"container {record['name']} to run")
    return True


def kill_container(client, name: str, *, via_docker: bool = False, wait: float = 30) -> dict[str, Any]:
    """SIGKILL to the container's main process; the record has the state before and after.

    By default the signal is sent from the host to the main process's PID (what a crash or the kernel does):
    Docker sees an unexpected exit (137) and a restart policy (unless-stopped, always, on-failure) restarts
    the container, RestartCount + 1; this waits up to `wait` seconds for that. With via_docker=True it is
    `docker kill` (the API), which Docker treats as a manual stop: the container stays exited with 137 and
    RestartCount unchanged, whatever the restart policy.
    """
    container = client.containers.get(name)
    before = container_state(container)
    if not before["running"]:
        raise RuntimeError(f"container {name} is not running")
    policy = container.attrs["HostConfig"]["RestartPolicy"]["Name"] or "no"
    if via_docker:
        container.kill()
    else:
        os.kill(before["pid"], signal.SIGKILL)

    def settled() -> bool:
        now = container_state(container)
        if policy != "no" and not via_docker:
            return now["running"] and now["restart_count"] > before["restart_count"]
        return not now["running"]

    with contextlib.suppress(RuntimeError):
        wait_for(settled, wait, f"container {name} to settle after SIGKILL")
    return {"fault": "container_killed", "name": name, "id": container.id, "via": "docker kill" if via_docker else "host SIGKILL",
            "restart_policy": policy, "before": before, "after": container_state(container)}


HOG = "import sys\nheap = []\nwhile True:\n    heap.append(bytearray(4 << 20))\n"


def oom_container(client, name: str, limit: str = "24m", wait: float = 60) -> dict[str, Any]:
    """The container's main process killed by the kernel's OOM killer under a memory limit: State.OOMKilled true.

    1. the container's memory limit is lowered to `limit` (swap the same: none beyond it);
    2. the main process's oom_score_adj is raised to 1000 (from the host), so the OOM killer picks it rather than
       the helper: the main process is what Docker's OOMKilled and the restart policy are about;
    3. a python3 helper allocating 4 MiB at a time is `docker exec`'d in the container until the limit is hit.
    The record holds the original limits (undo_oom_container puts them back) and the state before and after.
    """
    container = client.containers.get(name)
    before = container_state(container)
    if not before["running"]:
        raise RuntimeError(f"container {name} is not running")
    host_config = container.attrs["HostConfig"]
    original = {"mem_limit": host_config["Memory"], "memswap_limit": host_config["MemorySwap"]}
    container.update(mem_limit=limit, memswap_limit=limit)
    Path(f"/proc/{before['pid']}/oom_score_adj").write_text("1000\n")
    exec_id = client.api.exec_create(container.id, ["python3", "-c", HOG])["Id"]
    client.api.exec_start(exec_id, detach=True)

    def oom_seen() -> bool:
        now = container_state(container)
        return now["oom_killed"] or now["restart_count"] > before["restart_count"] or now["pid"] != before["pid"]

    wait_for(oom_seen, wait, f"the OOM killer in container {name}")
    # with a restart policy the container comes back: give it the moment to do so before reporting
    policy = host_config["RestartPolicy"]["Name"] or "no"
    if policy != "no":
        with contextlib.suppress(RuntimeError):
            wait_for(lambda: container_state(container)["running"], 15, f"container {name} to restart")
    return {"fault": "container_oom", "name": name, "id": container.id, "limit": limit, "original": original, "restart_policy": policy,
            "before": before, "after": container_state(container), "exec_exit_code": client.api.exec_inspect(exec_id)["ExitCode"]}


def undo_oom_container(client, record: dict[str, Any], timeout: float = 30) -> bool:
    """The original memory limits back, and the container running; False if nothing needed doing."""
    container = client.containers.get(record["id"])
    host_config = container.attrs["HostConfig"]
    original = record["original"]
    changed = False
    if (host_config["Memory"], host_config["MemorySwap"]) != (original["mem_limit"], original["memswap_limit"]):
        # 0 means unlimited for Memory; Docker wants -1 for "unlimited swap" and refuses 0 when Memory is 0
        memswap = original["memswap_limit"] if original["memswap_limit"] else -1
        container.update(mem_limit=original["mem_limit"], memswap_limit=memswap)
        changed = True
    if not container_state(container)["running"]:
        container.start()
        wait_for(lambda: container_state(container)["running"], timeout, f"container {record['name']} to run")
        changed = True
    return changed
