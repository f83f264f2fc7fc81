# Copyright (c) webstack.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The last lines of containers' logs and of log files, packed into one tar.gz (private to the collection).

What an outage leaves behind, read before anything is restarted: `docker logs --tail N` of every container
(stopped ones too), the tail of host log files (nginx's error log), and each container's state. A container's
environment is never read: it holds the stack's passwords. Strings given as secrets are masked in whatever is
written, in their plain and URL-quoted forms.
"""

from __future__ import annotations

import datetime as dt
import io
import json
import os
import tarfile
import tempfile
from urllib.parse import quote

from ansible_collections.webstack.ops.plugins.module_utils._container_status import describe, select
from ansible_collections.webstack.ops.plugins.module_utils._docker import DockerError, connect, docker
from ansible_collections.webstack.ops.plugins.module_utils._log_scan import MAX_LINE, ScanError, read_error

MASK = b"********"
BLOCK = 64 * 1024
HEALTH_LOG_ENTRIES = 3  # the last health check outputs kept per container


class BundleError(Exception):
    """The bundle could not be written; the message says where and what to check."""


def cut_lines(data, count):
    """The last `count` lines of data (bytes), each cut to MAX_LINE bytes."""
    lines = data.splitlines(keepends=True)[-count:] if count > 0 else []
    return b"".join(line if len(line) <= MAX_LINE else line[:MAX_LINE] + b"...[cut]\n" for line in lines)


def tail_file(path, count):
    """The last `count` lines of a file, read backwards in blocks: a large log costs only its end."""
    try:
        with open(path, "rb") as stream:
            position = stream.seek(0, os.SEEK_END)
            data = b""
            while position > 0 and data.count(b"\n") <= count and len(data) < count * MAX_LINE:
                step = min(BLOCK, position)
                position -= step
                stream.seek(position)
                data = stream.read(step) + data
    except OSError as exc:
        raise read_error(path, exc) from exc
    return cut_lines(data, count)


def secret_forms(secrets):
    """Each secret as bytes, plain and URL-quoted (as it appears in a redis:// or postgres:// URL), longest first."""
    forms = set()
    for secret in secrets or []:
        if secret:
            forms.update({secret.encode(), quote(secret, safe="").encode()})
    return sorted(forms, key=len, reverse=True)


def mask(data, forms):
    for form in forms:
        data = data.replace(form, MASK)
    return data


def container_entry(container, now):
    """The container's state for the bundle (never its environment), with its last health check outputs."""
    entry = describe(container, now)
    health = (container.attrs["State"].get("Health") or {}).get("Log") or []
    entry["health_log"] = [dict(start=h.get("Start"), exit_code=h.get("ExitCode"), output=(h.get("Output") or "")[-500:])
                           for h in health[-HEALTH_LOG_ENTRIES:]]
    return entry


def member_name(prefix, name, taken):
    """A unique member name under prefix: two files called error.log become error.log and error.log.2."""
    base = "%s/%s" % (prefix, name.replace("/", "_"))
    candidate, number = base, 1
    while candidate in taken:
        number += 1
        candidate = "%s.%d" % (base, number)
    taken.add(candidate)
    return candidate


def collect(params, now=None):
    """Read every source: ({member name: bytes}, sources, errors). A source that cannot be read is an error entry,
    not a failure: in an outage a partial bundle is worth more than none."""
    now = now or dt.datetime.now(dt.timezone.utc)
    forms = secret_forms(params.get("secrets"))
    members, sources, errors, taken = {}, [], [], set()
    lines = params["lines"]

    def add(kind, source, member, data):
        data = mask(data, forms)
        members[member] = data
        sources.append(dict(kind=kind, source=source, member=member, lines=data.count(b"\n"), bytes=len(data)))

    if params.get("names") or params.get("project"):
        states = []
        try:
            client = connect(params.get("docker_host"))
        except DockerError as exc:
            errors.append(dict(kind="engine", source=params.get("docker_host") or "default", error=str(exc)))
        else:
            try:
                found, missing = select(client, params.get("names"), params.get("project"))
                errors += [dict(kind="container", source=name, error="container %s does not exist" % name) for name in missing]
                for container in found:
                    states.append(container_entry(container, now))
                    try:
                        data = container.logs(stdout=True, stderr=True, timestamps=True, tail=lines)
                    except docker.errors.DockerException as exc:
                        errors.append(dict(kind="container", source=container.name, error="cannot read its logs: %s" % exc))
                        continue
                    add("container", container.name, member_name("containers", container.name + ".log", taken), cut_lines(data, lines))
            except docker.errors.DockerException as exc:
                errors.append(dict(kind="engine", source=params.get("docker_host") or "default", error="listing containers: %s" % exc))
            finally:
                client.close()
        members["containers.json"] = mask(json.dumps(states, indent=1).encode(), forms)

    for path in params.get("paths") or []:
        try:
            data = tail_file(path, lines)
        except ScanError as exc:  # the path and what to check
            errors.append(dict(kind="file", source=path, error=str(exc)))
            continue
        add("file", path, member_name("files", os.path.basename(path), taken), data)

    if params.get("info"):
        members["info.json"] = mask(json.dumps(params["info"], indent=1, default=str).encode(), forms)
    return members, sources, errors


def write_bundle(dest, members, mode=0o600, now=None):
    """members as a tar.gz at dest, written to a temporary file beside it and renamed: never half a bundle."""
    stamp = (now or dt.datetime.now(dt.timezone.utc)).timestamp()
    directory = os.path.dirname(os.path.abspath(dest))
    try:
        handle, tmp = tempfile.mkstemp(dir=directory, prefix=".bundle.", suffix=".tar.gz")
    except OSError as exc:
        raise BundleError("cannot write the bundle in %s: %s; check that the directory exists and is writable"
                          % (directory, exc.strerror or exc)) from None
    try:
        with os.fdopen(handle, "wb") as raw, tarfile.open(fileobj=raw, mode="w:gz") as tar:
            for name in sorted(members):
                info = tarfile.TarInfo(name)
                info.size, info.mtime, info.mode = len(members[name]), stamp, 0o600
                tar.addfile(info, io.BytesIO(members[name]))
        os.chmod(tmp, mode)
        os.replace(tmp, dest)
    except BaseException:
        os.unlink(tmp)
        raise
    return os.path.getsize(dest)
