"""webstack.ops.container_update against the test Docker engine: real images, real health checks, real rollback."""

from __future__ import annotations

import contextlib
import io
import json
import uuid
from collections.abc import Iterator
from types import SimpleNamespace

import docker.errors
import faults
import pytest
from ansible_run import run_module, run_module_full

MODULE = "webstack.ops.container_update"
# The base image has python3-minimal only (no http.server): a few lines of socket answer every request with 200.
# As PID 1 it must handle SIGTERM itself, or every docker stop waits its 10 s for SIGKILL.
SERVER = ["python3", "-c", """import os, signal, socket, sys
signal.signal(signal.SIGTERM, lambda signum, frame: sys.exit(0))
server = socket.socket()
server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
server.bind(("127.0.0.1", int(os.environ["PORT"])))
server.listen()
while True:
    conn, peer = server.accept()
    conn.recv(4096)
    conn.sendall(b"HTTP/1.0 200 OK\\r\\nContent-Length: 3\\r\\n\\r\\nok\\n")
    conn.close()
"""]


def build(client, base, version, health):
    """A tiny image FROM the base (metadata only: builds in well under a second)."""
    dockerfile = "\n".join([
        "FROM %s" % base,
        "ENV APP_VERSION=%s" % version,
        "LABEL org.webstack-ops.test-version=%s" % version,
        "VOLUME /data",
        'HEALTHCHECK --interval=1s --timeout=2s --retries=1 CMD ["%s"]' % health,
    ])
    tag = "webstack-test/update:%s" % version
    image, _logs = client.images.build(fileobj=io.BytesIO(dockerfile.encode()), tag=tag, rm=True)
    return SimpleNamespace(tag=tag, id=image.id)


@pytest.fixture(scope="module")
def images(docker_client, base_image) -> SimpleNamespace:
    """v1 and v2 (both healthy, different ENV and LABEL), bad (its health check always fails)."""
    return SimpleNamespace(v1=build(docker_client, base_image, "1", "true"), v2=build(docker_client, base_image, "2", "true"),
                           bad=build(docker_client, base_image, "bad", "false"))


@pytest.fixture
def app(docker_client, images, docker_engine, tmp_path, free_port) -> Iterator[SimpleNamespace]:
    """A compose-labelled container on the host network serving HTTP on a free port, from v1, healthy."""
    name = "cu%s" % uuid.uuid4().hex[:8]
    (tmp_path / "index.html").write_text("ok\n")  # only a bind mount to keep
    container = docker_client.containers.run(
        images.v1.tag, SERVER, name=name, detach=True, network_mode="host",
        environment={"PORT": str(free_port), "SITE_SECRET": "old-secret-value"},
        labels={"com.docker.compose.project": name, "com.docker.compose.service": "web"},
        volumes={str(tmp_path): {"bind": "/srv", "mode": "ro"}}, restart_policy={"Name": "unless-stopped"})
    faults.wait_for(lambda: health(container) == "healthy", 30, "the test container's health check")
    container.exec_run(["sh", "-c", "echo kept > /data/marker"])  # in the anonymous volume of the image's VOLUME
    try:
        yield SimpleNamespace(name=name, container=container, port=free_port, docker_host=docker_engine.base_url, srv=tmp_path)
    finally:
        for leftover in (name, name + "-previous"):
            with contextlib.suppress(docker.errors.NotFound):
                docker_client.containers.get(leftover).remove(force=True, v=True)


def health(container):
    container.reload()
    return (container.attrs["State"].get("Health") or {}).get("Status")


def current(client, name):
    container = client.containers.get(name)
    return container, dict(entry.split("=", 1) for entry in container.attrs["Config"]["Env"])


def absent(client, name):
    try:
        client.containers.get(name)
    except docker.errors.NotFound:
        return True
    return False


def test_image_update_recreates_with_the_same_config_check_mode_first_then_idempotent(docker_client, images, app):
    args = dict(names=[app.name], image=images.v2.tag, docker_host=app.docker_host, health_timeout=30,
                health_url="http://127.0.0.1:%d/index.html" % app.port)

    checked = run_module(MODULE, args, check=True)
    assert checked["changed"] is True, checked
    [planned] = checked["containers"]
    assert planned["action"] == "would_recreate" and planned["image_id_after"] == images.v2.id
    assert "image %s" % images.v2.id[:19] in planned["reasons"][0], planned["reasons"]
    container, _env = current(docker_client, app.name)
    assert container.id == app.container.id and container.image.id == images.v1.id  # check mode touched nothing

    result = run_module(MODULE, args)
    assert result["changed"] is True and result["rolled_back"] is False, result
    [done] = result["containers"]
    assert done["action"] == "recreated" and done["health"] == "healthy" and done["previous"] is None
    container, env = current(docker_client, app.name)
    assert container.id != app.container.id and container.id.startswith(done["id_after"])
    assert container.image.id == images.v2.id == done["image_id_after"] and container.status == "running"
    assert env["APP_VERSION"] == "2"  # the old image's value gave way to the new image's
    assert env["PORT"] == str(app.port) and env["SITE_SECRET"] == "old-secret-value"  # the container's own stay
    labels = container.labels
    assert labels["com.docker.compose.project"] == app.name and labels["org.webstack-ops.test-version"] == "2"
    assert container.attrs["HostConfig"]["NetworkMode"] == "host"
    assert container.attrs["HostConfig"]["RestartPolicy"]["Name"] == "unless-stopped"
    mounts = {m["Destination"]: m for m in container.attrs["Mounts"]}
    assert mounts["/srv"]["Source"] == str(app.srv) and mounts["/srv"]["RW"] is False
    assert container.exec_run(["cat", "/data/marker"]).output == b"kept\n"  # same anonymous volume
    assert absent(docker_client, app.name + "-previous") and absent(docker_client, app.container.id)
    assert "old-secret-value" not in json.dumps(result)

    again = run_module(MODULE, args)
    assert again["changed"] is False and again["containers"][0]["action"] == "unchanged", again
    assert docker_client.containers.get(app.name).id == container.id


def test_env_file_update_reaches_the_process_and_no_value_is_printed(docker_client, app, tmp_path):
    env_file = tmp_path / "secret.env"
    env_file.write_text("# rotated\nSITE_SECRET=new-secret-value-4f1c\n\nPORT=%d\n" % app.port)

    result, run = run_module_full(MODULE, dict(names=[app.name], env_file=str(env_file), docker_host=app.docker_host,
                                               health_timeout=30))

    assert result["changed"] is True, result
    [done] = result["containers"]
    assert done["action"] == "recreated" and done["env_keys"] == ["SITE_SECRET"]  # PORT has that value already
    assert done["image_id_after"] == done["image_id_before"] == app.container.image.id  # env only: same image
    container = docker_client.containers.get(app.name)
    seen = container.exec_run(["sh", "-c", "tr '\\0' '\\n' < /proc/1/environ"]).output.decode()
    assert "SITE_SECRET=new-secret-value-4f1c" in seen.splitlines()
    assert "new-secret-value" not in run.output and "old-secret-value" not in run.output


def test_an_image_that_fails_its_health_check_is_rolled_back_and_stops_the_run(docker_client, images, app, docker_engine):
    other = docker_client.containers.run(images.v1.tag, ["sleep", "300"], name=app.name + "-other", detach=True,
                                         network_mode="none")
    try:
        result = run_module(MODULE, dict(names=[app.name, other.name], image=images.bad.tag, docker_host=app.docker_host,
                                         health_timeout=20))

        assert result["failed"] is True and result["rolled_back"] is True and result["changed"] is False, result
        message = result["msg"]
        assert app.name in message and images.bad.tag in message and "rolled back" in message, message
        assert "health check failed (exit code 1" in message, message
        assert [c["name"] for c in result["containers"]] == [app.name]  # the second one was not reached
        assert result["containers"][0]["action"] == "rolled_back"
        container = docker_client.containers.get(app.name)
        assert container.id == app.container.id and container.image.id == images.v1.id and container.status == "running"
        assert absent(docker_client, app.name + "-previous")
        assert len([c for c in docker_client.containers.list(all=True) if c.name.startswith(app.name)]) == 2
        assert docker_client.containers.get(other.name).image.id == images.v1.id
        faults.wait_for(lambda: health(container) == "healthy", 30, "the rolled-back container's health")
    finally:
        other.remove(force=True)
