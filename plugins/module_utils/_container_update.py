# Copyright (c) webstack.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Containers moved to a new image or new environment values by recreating them, with rollback (private to the collection).

A container is recreated from its own inspect data (Config and HostConfig) through the engine's low-level API,
as `docker compose up` does for one service: the old container is renamed `<name>-previous` and stopped, the new
one created under the old name and started, then it must become healthy; if it does not, the new one goes and the
old one is renamed back and started again.

Fields the old container only had from its old image (environment entries, command, entrypoint, health check,
labels, ...) are left out of the new configuration, so that the new image's own values apply.

Environment values never leave this module: plans and results name the changed keys only.
"""

from __future__ import annotations

import re
import time
import urllib.error

from ansible.module_utils.urls import ConnectionError as UrlConnectionError
from ansible.module_utils.urls import open_url
from ansible_collections.webstack.ops.plugins.module_utils._docker import docker

ENV_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_.-]*$")
PREVIOUS_SUFFIX = "-previous"
COMPOSE_IMAGE_LABEL = "com.docker.compose.image"
# Config fields the daemon fills from the image when a container does not set them.
IMAGE_DEFAULT_FIELDS = ("User", "WorkingDir", "StopSignal", "Shell", "Healthcheck")
IMAGE_DEFAULT_MAPS = ("Labels", "ExposedPorts", "Volumes")


class UpdateError(Exception):
    """A container cannot be updated as asked; nothing was changed for it. The message says what to check."""


class UpdateFailed(Exception):
    """A recreated container failed; `entry` is its result (rolled back or not), the message says it all."""

    def __init__(self, message, entry):
        super().__init__(message)
        self.entry = entry


def short(image_id):
    """sha256:0123456789ab for an image ID (what `docker images` shows, with its algorithm)."""
    algorithm, _sep, digest = (image_id or "").partition(":")
    return "%s:%s" % (algorithm, digest[:12]) if digest else (image_id or "")[:12]


def read_env_file(path):
    """KEY=VALUE lines as `docker run --env-file` reads them (values literal, `#` comments, blank lines skipped).

    Errors name the line, never its value.
    """
    values = {}
    try:
        with open(path, encoding="utf-8") as handle:
            lines = handle.read().splitlines()
    except OSError as exc:
        raise UpdateError("cannot read the env_file %s: %s" % (path, exc.strerror or exc)) from None
    for number, line in enumerate(lines, 1):
        text = line.strip()
        if not text or text.startswith("#"):
            continue
        if text.startswith("export "):
            text = text[len("export "):].lstrip()
        key, sep, value = text.partition("=")
        if not sep or not ENV_KEY.match(key):
            raise UpdateError("env_file %s line %d is not KEY=VALUE (a name of letters, digits and _): fix that line"
                              % (path, number))
        values[key] = value
    return values


def env_map(entries):
    """Docker's ["KEY=VALUE", ...] as an ordered dict."""
    out = {}
    for entry in entries or []:
        key, _sep, value = entry.partition("=")
        out[key] = value
    return out


def changed_keys(current, overrides):
    """The keys whose value the overrides set or change."""
    return sorted(key for key, value in overrides.items() if current.get(key) != value)


def image_info(api, ref):
    """The engine's inspect data of a local image; UpdateError when the engine does not have it."""
    try:
        return api.inspect_image(ref)
    except docker.errors.ImageNotFound:
        raise UpdateError("image %s is not in the Docker engine: pull or build it first (community.docker.docker_image)"
                          % ref) from None


def container_info(api, name):
    """Inspect data of a container by name; UpdateError when there is none (with a hint after an interrupted update)."""
    try:
        return api.inspect_container(name)
    except docker.errors.NotFound:
        hint = ""
        try:
            api.inspect_container(name + PREVIOUS_SUFFIX)
            hint = ("; %s%s exists: an interrupted update? Put it back with docker rename %s%s %s && docker start %s"
                    % (name, PREVIOUS_SUFFIX, name, PREVIOUS_SUFFIX, name, name))
        except docker.errors.NotFound:
            pass
        raise UpdateError("container %s does not exist%s" % (name, hint)) from None


def without_image_defaults(config, old_image_config):
    """The container's Config without what it only had from its old image, so the new image's values apply."""
    image = old_image_config or {}
    out = dict(config)
    for field in IMAGE_DEFAULT_FIELDS:
        if out.get(field) and out.get(field) == image.get(field):
            out.pop(field)
    # The daemon takes Cmd from the image only when the container has no entrypoint of its own.
    if out.get("Entrypoint") == image.get("Entrypoint"):
        out.pop("Entrypoint", None)
        if out.get("Cmd") == image.get("Cmd"):
            out.pop("Cmd", None)
    for field in IMAGE_DEFAULT_MAPS:
        own = dict(out.get(field) or {})
        for key, value in (image.get(field) or {}).items():
            if key in own and own[key] == value:
                own.pop(key)
        out[field] = own or None
    inherited = set(image.get("Env") or [])
    out["Env"] = [entry for entry in out.get("Env") or [] if entry not in inherited]
    out.pop("OnBuild", None)
    return out


def anonymous_volumes(info):
    """Mounts of anonymous volumes (image VOLUMEs, `-v /path`), so the new container gets the same data."""
    host = info.get("HostConfig") or {}
    declared = {bind.split(":")[1] for bind in host.get("Binds") or [] if ":" in bind}
    declared |= {mount.get("Target") for mount in host.get("Mounts") or []}
    return [dict(Type="volume", Source=m["Name"], Target=m["Destination"], ReadOnly=not m.get("RW", True))
            for m in info.get("Mounts") or [] if m.get("Type") == "volume" and m.get("Destination") not in declared]


def networking(info):
    """(EndpointsConfig for the create call, [(network, endpoint)] to connect after it) of a user-defined network setup."""
    mode = (info.get("HostConfig") or {}).get("NetworkMode") or ""
    if mode in ("host", "none", "") or mode.startswith("container:"):
        return None, []
    own_id = info["Id"][:12]
    endpoints = {}
    for name, settings in ((info.get("NetworkSettings") or {}).get("Networks") or {}).items():
        endpoints[name] = dict(Aliases=[a for a in settings.get("Aliases") or [] if a != own_id] or None,
                               IPAMConfig=settings.get("IPAMConfig"), Links=settings.get("Links"),
                               DriverOpts=settings.get("DriverOpts"))
    primary = mode if mode in endpoints else next(iter(endpoints), None)
    if primary is None:
        return None, []
    return {primary: endpoints.pop(primary)}, sorted(endpoints.items())


def new_config(info, old_image, image_ref, new_image_id, env):
    """The create-call body of the new container: the old one's configuration with the new image and environment."""
    config = without_image_defaults(info["Config"], old_image.get("Config") if old_image else None)
    mode = (info.get("HostConfig") or {}).get("NetworkMode") or ""
    if config.get("Hostname") == info["Id"][:12] or mode == "host" or mode.startswith("container:"):
        config.pop("Hostname", None)
        config.pop("Domainname", None)
    config.pop("MacAddress", None)
    config["Image"] = image_ref
    current = env_map(config["Env"])
    current.update(env)
    config["Env"] = ["%s=%s" % item for item in current.items()]
    if config.get("Labels") and COMPOSE_IMAGE_LABEL in config["Labels"]:
        config["Labels"][COMPOSE_IMAGE_LABEL] = new_image_id
    host = dict(info["HostConfig"])
    extra = anonymous_volumes(info)
    if extra:
        host["Mounts"] = list(host.get("Mounts") or []) + extra
    config["HostConfig"] = host
    endpoints, _later = networking(info)
    if endpoints:
        config["NetworkingConfig"] = {"EndpointsConfig": endpoints}
    return config


def plan(api, name, image_ref, env):
    """What updating one container means: its inspect data, the image to use and why it must be recreated.

    image_ref None keeps the container's image (its reference when that still names the same image, else its ID).
    """
    info = container_info(api, name)
    name = info["Name"].lstrip("/")
    try:
        api.inspect_container(name + PREVIOUS_SUFFIX)
        raise UpdateError("container %s%s exists (kept by an earlier update, or left by an interrupted one): remove it "
                          "(docker rm %s%s) or rename it before updating %s" % (name, PREVIOUS_SUFFIX, name, PREVIOUS_SUFFIX, name))
    except docker.errors.NotFound:
        pass
    old_id = info["Image"]
    try:
        old_image = api.inspect_image(old_id)
    except docker.errors.ImageNotFound:
        old_image = None
    if image_ref:
        new_id = image_info(api, image_ref)["Id"]
        ref = image_ref
    else:
        new_id = old_id
        ref = info["Config"].get("Image") or old_id
        try:
            if api.inspect_image(ref)["Id"] != old_id:  # the tag moved on: an env-only update keeps the image it runs
                ref = old_id
        except docker.errors.ImageNotFound:
            ref = old_id
    reasons = []
    if new_id != old_id:
        reasons.append("image %s differs from the running %s" % (short(new_id), short(old_id)))
    keys = changed_keys(env_map(info["Config"].get("Env")), env)
    if keys:
        reasons.append("environment keys differ: %s" % ", ".join(keys))
    return dict(name=name, info=info, old_image=old_image, image=ref, image_id_before=old_id, image_id_after=new_id,
                env=env, env_keys=keys, reasons=reasons)


def health_of(info):
    """(status, last probe output) of a container's own health check; (None, None) without one."""
    health = (info.get("State") or {}).get("Health")
    if not health:
        return None, None
    log = health.get("Log") or []
    output = None
    if log:
        output = "exit code %s: %s" % (log[-1].get("ExitCode"), (log[-1].get("Output") or "").strip()[-500:])
    return health.get("Status"), output


def fetch(url, timeout):
    """None when the URL answers 2xx, else what went wrong."""
    try:
        with open_url(url, timeout=timeout, follow_redirects="safe") as response:
            status = response.getcode()
    except urllib.error.HTTPError as exc:
        status = exc.code
    except (urllib.error.URLError, UrlConnectionError, OSError) as exc:
        return "%s did not answer: %s" % (url, getattr(exc, "reason", exc))
    return None if 200 <= status < 300 else "%s answered HTTP %d" % (url, status)


def wait_healthy(api, container_id, timeout, url=None, poll=0.5):
    """Wait until the container runs, its own health check (if any) says healthy and the URL (if any) answers 2xx.

    Returns (ok, health status, what was wrong last). Fails at once when the container exits, restarts or turns
    unhealthy.
    """
    deadline = time.monotonic() + timeout
    problem = "not checked yet"
    while True:
        info = api.inspect_container(container_id)
        state = info["State"]
        status, output = health_of(info)
        if not state.get("Running") or state.get("Restarting") or info.get("RestartCount", 0) > 0:
            return False, status, "the container stopped (status %s, exit code %s)%s" % (
                state.get("Status"), state.get("ExitCode"), "; last health probe " + output if output else "")
        if status == "unhealthy":
            return False, status, "its health check failed (%s)" % output
        if status in (None, "healthy"):
            problem = fetch(url, max(1.0, min(5.0, deadline - time.monotonic()))) if url else None
            if problem is None:
                return True, status, None
        else:
            problem = "health %s%s" % (status, "; last probe " + output if output else "")
        if time.monotonic() >= deadline:
            return False, status, "not healthy within %g s: %s" % (timeout, problem)
        time.sleep(poll)


def entry_of(planned, action):
    """The result entry of one container: names, image IDs, changed environment keys (never values)."""
    return dict(name=planned["name"], action=action, reasons=planned["reasons"], image=planned["image"],
                image_id_before=planned["image_id_before"], image_id_after=planned["image_id_after"],
                env_keys=planned["env_keys"], id_before=planned["info"]["Id"][:12], id_after=planned["info"]["Id"][:12],
                previous=None, health=health_of(planned["info"])[0], health_output=None, seconds=0.0, notes=[])


def rollback(api, name, old_id, new_id, *, renamed, stopped):
    """Remove the new container, give the old one its name back and start it again; the steps that failed."""
    failed = []
    if new_id:
        try:
            api.stop(new_id, timeout=10)
            api.remove_container(new_id, force=True)
        except docker.errors.APIError as exc:
            failed.append("removing the new container %s: %s" % (new_id[:12], exc))
    if renamed:
        try:
            api.rename(old_id, name)
        except docker.errors.APIError as exc:
            failed.append("renaming %s%s back to %s: %s" % (name, PREVIOUS_SUFFIX, name, exc))
    if stopped:
        try:
            api.start(old_id)
        except docker.errors.APIError as exc:
            failed.append("starting %s again: %s" % (name, exc))
    return failed


def recreate(api, planned, health_timeout, health_url=None, keep_previous=False):
    """Recreate one planned container and wait for its health; rolls back and raises UpdateFailed when it fails."""
    started = time.monotonic()
    name, info = planned["name"], planned["info"]
    old_id = info["Id"]
    was_running = bool(info["State"].get("Running"))
    entry = entry_of(planned, "recreated")
    new_id = None
    renamed = stopped = False
    health, problem = None, None
    try:
        api.rename(old_id, name + PREVIOUS_SUFFIX)
        renamed = True
        if was_running:
            stopped = True  # from here on a rollback starts it again, even if stop itself failed half-way
            api.stop(old_id)
        config = new_config(info, planned["old_image"], planned["image"], planned["image_id_after"], planned["env"])
        new_id = api.create_container_from_config(config, name=name)["Id"]
        for network, endpoint in networking(info)[1]:
            api.connect_container_to_network(new_id, network, aliases=endpoint["Aliases"], links=endpoint["Links"])
        if was_running:
            api.start(new_id)
            ok, health, problem = wait_healthy(api, new_id, health_timeout, health_url)
        else:
            ok = True
    except docker.errors.APIError as exc:
        ok, problem = False, "the Docker engine refused a step: %s" % exc
    entry.update(seconds=round(time.monotonic() - started, 1), health=health)
    if not ok:
        failed = rollback(api, name, old_id, new_id, renamed=renamed, stopped=stopped)
        rolled = not failed
        entry.update(action="rolled_back" if rolled else "failed", health_output=problem)
        message = "container %s with image %s (%s): %s; " % (name, planned["image"], short(planned["image_id_after"]), problem)
        if rolled:
            message += "rolled back: the previous container (image %s) %s under its name" % (
                short(planned["image_id_before"]), "runs again" if stopped else "is back")
        else:
            message += ("rolling back failed (%s): put the previous container back by hand (docker rm -f %s; docker rename "
                        "%s%s %s; docker start %s)" % ("; ".join(failed), name, name, PREVIOUS_SUFFIX, name, name))
        raise UpdateFailed(message, dict(entry, rolled_back=rolled))
    entry.update(id_after=new_id[:12], image_id_after=api.inspect_container(new_id)["Image"])
    if keep_previous:
        entry["previous"] = name + PREVIOUS_SUFFIX
    else:
        try:
            api.remove_container(old_id)
        except docker.errors.APIError as exc:
            entry["previous"] = name + PREVIOUS_SUFFIX
            entry["notes"] = ["the previous container could not be removed: %s" % exc]
    return entry
