"""The whole sandbox on one machine: the guide's containers, nginx with a certificate from Pebble, S3 with a backup bucket.

`stackctl up sandbox` calls up(); `stackctl down` calls down() before it stops the harness servers.
Everything the sandbox needs to be reached (ports, passwords, domain, certificate) is kept in
state.json under "sandbox", which inventories/sandbox reads.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
from typing import Any

import containers
import docker
import edge
from harness.base import free_port, port_free

DOMAIN = "sandbox.webstack.test"
BUCKET = "webstack-backups"
ADMIN_USER = "admin"  # the Django admin user the security-breach runbook keeps (created by it on the sandbox)


def docker_client(stack) -> docker.DockerClient:
    return docker.DockerClient(base_url=stack.server("dockerd").base_url, timeout=120)


def up(stack) -> dict[str, Any]:
    """Start (or keep) every part of the sandbox; idempotent."""
    entry = stack.state.get("sandbox") or {"domain": DOMAIN, "bucket": BUCKET,
                                           "ports": {"http": free_port(), "https": free_port()}}
    stack.ensure("dockerd")
    client = docker_client(stack)
    try:
        if "settings" not in entry:
            entry["settings"] = kept_settings(client, stack.dir / "stack")
        settings = entry["settings"]
        if complete_settings(settings, stack.dir / "stack"):  # settings from before the app's env file
            save_settings(stack.dir / "stack", settings)
        containers.ensure_env_file(settings)
        settings["allowed_hosts"] = "127.0.0.1,localhost,%s" % entry["domain"]  # the app is reached through nginx by name
        stack.ensure("s3")
        stack.ensure("pebble", http_port=entry["ports"]["http"])
        stack.ensure("nginx")
        started = containers.start_stack(client, settings)
    finally:
        client.close()

    s3 = stack.server("s3")
    edge.ensure_bucket(s3.endpoint_url, s3.access_key, s3.secret_key, entry["bucket"])

    nginx, pebble = stack.server("nginx"), stack.server("pebble")
    site = edge.configure_site(
        nginx, pebble, entry["domain"], http_port=entry["ports"]["http"], https_port=entry["ports"]["https"],
        upstream="127.0.0.1:%d" % settings["ports"]["web"], webroot=stack.dir / "acme-webroot",
        static_root=settings["dirs"]["static"], certbot_dir=stack.dir / "certbot")
    stack.state["nginx"] = nginx.state()  # its configuration now carries the site
    entry.update(
        containers=started["containers"],
        certificate={key: str(site[key]) for key in ("fullchain", "privkey", "serial", "not_after")},
        ca_root=str(stack.dir / "pebble-root.pem"),
        url="https://%s:%d/" % (entry["domain"], entry["ports"]["https"]),
        postgres={"host": "127.0.0.1", "port": settings["ports"]["postgres"], "user": settings["postgres_user"],
                  "password": settings["passwords"]["postgres"], "db": settings["postgres_db"]},
        redis={"host": "127.0.0.1", "port": settings["ports"]["redis"], "password": settings["passwords"]["redis"]},
        flower_url="http://127.0.0.1:%d/" % settings["ports"]["flower"],
        s3={"endpoint_url": s3.endpoint_url, "access_key": s3.access_key, "secret_key": s3.secret_key, "bucket": entry["bucket"]},
        env_file=settings["env_file"],
        admin={"user": ADMIN_USER, "password": settings["passwords"]["admin"],
               "login_url": "http://127.0.0.1:%d/admin/login/" % settings["ports"]["web"]},
    )
    (stack.dir / "pebble-root.pem").write_text(edge.pebble_root(pebble))
    stack.state["sandbox"] = entry
    stack.save()
    return entry


def kept_settings(client: docker.DockerClient, data_dir, project: str = containers.DEFAULT_PROJECT) -> dict[str, Any]:
    """The containers' settings, kept beside their data in data_dir/settings.json (mode 0600).

    Called when state.json has no sandbox entry (first up, after `stackctl down`, or after a killed run).
    Containers of the project still in the engine are leftovers (the engine restarts them by their policy):
    they are removed first, so they neither hold the ports nor write to the data. The database on disk was
    initialised with the kept passwords, so the next `up` uses them again; ports taken since are replaced.
    Data without its settings (left by an older version) cannot be logged into: it is removed, the stack starts
    fresh.
    """
    containers.stop_stack(client, project)
    path = data_dir / "settings.json"
    if path.exists():
        settings = json.loads(path.read_text())
        settings["ports"].update({name: free_port() for name, port in settings["ports"].items() if not port_free(port)})
    else:
        if data_dir.exists():
            print(f"sandbox: {data_dir} has data but no settings.json (its passwords are unknown): removed, starting fresh")
            shutil.rmtree(data_dir)
        settings = containers.default_settings(data_dir, project=project)
    complete_settings(settings, data_dir)
    save_settings(data_dir, settings)
    return settings


def complete_settings(settings: dict[str, Any], data_dir) -> bool:
    """Add what settings kept by an older version lack (the app's env file, the admin password); True if anything was."""
    missing = "env_file" not in settings or "admin" not in settings["passwords"]
    settings.setdefault("env_file", str(data_dir / "app.env"))
    settings["passwords"].setdefault("admin", secrets.token_urlsafe(18))
    return missing


def save_settings(data_dir, settings: dict[str, Any]) -> None:
    """data_dir/settings.json, mode 0600 (it holds the passwords)."""
    data_dir.mkdir(parents=True, exist_ok=True)
    fd = os.open(data_dir / "settings.json", os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        json.dump(settings, out, indent=2, sort_keys=True)


def down(stack) -> None:
    """Stop and remove the sandbox's containers (only its project's) while the engine still runs."""
    entry = stack.state.get("sandbox")
    if entry and "dockerd" in stack.state and stack.server("dockerd").running():
        client = docker_client(stack)
        try:
            containers.stop_stack(client, entry["settings"]["project"])
        finally:
            client.close()


def container_states(stack) -> dict[str, str]:
    """name: status of the sandbox's containers, for `stackctl status`."""
    entry = stack.state.get("sandbox")
    if not entry or "dockerd" not in stack.state or not stack.server("dockerd").running():
        return {}
    client = docker_client(stack)
    try:
        return {c.name: c.status for c in containers.project_containers(client, entry["settings"]["project"])}
    finally:
        client.close()
