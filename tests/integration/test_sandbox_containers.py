"""The sandbox's images and containers on a Docker engine of the session's own (sandbox/containers.py).

The first session on a machine debootstraps the base rootfs and builds the images (a few minutes);
later sessions re-import the cached rootfs and `docker load` the saved images from ~/.cache/webstack-ops/images.
"""

from __future__ import annotations

import http.client
import json
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import containers
import docker
import docker.errors
import psycopg2
import pytest
import redis

OTHER_PROJECT = "not-webstack-sandbox-test"


@pytest.fixture(scope="module")
def client(docker_engine) -> Iterator[docker.DockerClient]:
    docker_client = docker.DockerClient(base_url=docker_engine.base_url, timeout=600)
    yield docker_client
    docker_client.close()


@pytest.fixture(scope="module")
def images(client) -> dict[str, str]:
    began = time.monotonic()
    built = containers.ensure_images(client)
    print(f"\nensure_images: {time.monotonic() - began:.1f} s -> {sorted(built)}")
    return built


@pytest.fixture(scope="module")
def settings(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return containers.default_settings(tmp_path_factory.mktemp("stack"))


@pytest.fixture(scope="module")
def stack(client, images, settings) -> Iterator[dict[str, Any]]:
    began = time.monotonic()
    try:
        info = containers.start_stack(client, settings, images=images)
        print(f"\nstart_stack: {time.monotonic() - began:.1f} s, {info['actions']}")
        yield info
    finally:
        containers.stop_stack(client, settings["project"])


def container(client, name: str):
    return client.containers.get(name)


def test_base_image_imports(client, images):
    base = client.images.get(containers.BASE_IMAGE)
    assert base.id == images["base"]
    assert base.labels[containers.LABEL_HASH] == containers.definition_hash(containers.base_definition())
    output = client.containers.run(containers.BASE_IMAGE, ["cat", "/etc/debian_version"], network_mode="none", remove=True)
    assert output.decode().startswith("12.")
    # A second call finds the image with the same definition hash: nothing is imported again.
    began = time.monotonic()
    assert containers.ensure_base_image(client) == images["base"]
    assert time.monotonic() - began < 5


def test_images_are_labelled_with_their_definition_hash(client, images):
    base_hash = client.images.get(containers.BASE_IMAGE).labels[containers.LABEL_HASH]
    for name in ("postgres", "redis"):
        image = client.images.get(containers.IMAGE_NAMES[name])
        assert image.id == images[name]
        files = containers.build_context(name)
        assert image.labels[containers.LABEL_HASH] == containers.context_hash(files, base_hash)
    began = time.monotonic()
    assert containers.ensure_images(client) == images  # all cached
    assert time.monotonic() - began < 10


def test_web_image_skipped_without_app(client, images, tmp_path: Path):
    messages = []
    built = containers.ensure_images(client, app_dir=tmp_path, log=messages.append)
    assert "web" not in built
    assert any("requirements.txt does not exist yet" in message for message in messages)
    with pytest.raises(containers.AppMissingError):
        containers.ensure_images(client, app_dir=tmp_path, require_web=True, log=messages.append)


def test_postgres_answers_with_password_and_has_pg_stat_statements(stack, settings):
    login = dict(host="127.0.0.1", port=settings["ports"]["postgres"], user=settings["postgres_user"], dbname=settings["postgres_db"])
    conn = psycopg2.connect(password=settings["passwords"]["postgres"], **login)
    try:
        with conn.cursor() as cur:
            cur.execute("SHOW shared_preload_libraries")
            assert "pg_stat_statements" in cur.fetchone()[0]
            cur.execute("SELECT count(*) FROM pg_stat_statements")
            assert cur.fetchone()[0] >= 0
            cur.execute("SHOW server_version_num")
            assert cur.fetchone()[0].startswith("15")
            cur.execute("SHOW listen_addresses")
            assert cur.fetchone()[0] == "127.0.0.1"
    finally:
        conn.close()
    with pytest.raises(psycopg2.OperationalError, match="password authentication failed"):
        psycopg2.connect(password="wrong", **login).close()


def test_docker_exec_pg_dump(client, stack, settings):
    result = container(client, "postgres_db").exec_run(["pg_dump", "-U", settings["postgres_user"], settings["postgres_db"]])
    assert result.exit_code == 0, result.output.decode(errors="replace")
    assert b"PostgreSQL database dump complete" in result.output


def test_redis_answers_ping_with_password(stack, settings):
    port, password = settings["ports"]["redis"], settings["passwords"]["redis"]
    cache = redis.Redis(host="127.0.0.1", port=port, password=password)
    try:
        assert cache.ping() is True
        assert cache.config_get("maxmemory-policy")["maxmemory-policy"] == "allkeys-lru"
        assert cache.config_get("save")["save"] == ""
    finally:
        cache.close()
    with socket.create_connection(("127.0.0.1", port), timeout=5) as anonymous:  # no client retries: one plain PING
        anonymous.sendall(b"PING\r\n")
        assert anonymous.recv(256).startswith(b"-NOAUTH")


def test_labels_restart_policy_and_limits(client, stack, settings):
    assert set(stack["containers"]) >= {"postgres_db", "redis_cache"}
    for name, container_id in stack["containers"].items():
        attrs = client.containers.get(container_id).attrs
        labels = attrs["Config"]["Labels"]
        assert attrs["Name"] == f"/{name}"
        assert labels[containers.LABEL_PROJECT] == settings["project"]
        assert labels[containers.LABEL_SERVICE] == name
        assert labels[containers.LABEL_ONEOFF] == "False"
        assert attrs["HostConfig"]["RestartPolicy"]["Name"] == "unless-stopped"
        assert attrs["HostConfig"]["NetworkMode"] == "host"
        assert attrs["HostConfig"]["Memory"] > 0
        if name in ("postgres_db", "redis_cache", "website", "flower"):
            assert attrs["State"]["Health"]["Status"] == "healthy"
        assert attrs["State"]["Status"] == "running"
    listed = containers.project_containers(client, settings["project"])
    assert {c.id for c in listed} == set(stack["containers"].values())


def test_second_start_keeps_the_same_containers(client, stack, settings, images):
    again = containers.start_stack(client, settings, images=images)
    assert again["containers"] == stack["containers"]
    assert set(again["actions"].values()) == {"kept"}


def test_changed_config_recreates_only_that_container(client, stack, settings, images):
    changed = {**settings, "redis_maxmemory": "64mb"}
    try:
        again = containers.start_stack(client, changed, images=images)
        assert again["actions"]["redis_cache"] == "created"
        assert again["containers"]["redis_cache"] != stack["containers"]["redis_cache"]
        assert {name: action for name, action in again["actions"].items() if name != "redis_cache"} == \
            {name: "kept" for name in again["actions"] if name != "redis_cache"}
        cache = redis.Redis(host="127.0.0.1", port=settings["ports"]["redis"], password=settings["passwords"]["redis"])
        assert cache.config_get("maxmemory")["maxmemory"] == str(64 * 1024 * 1024)
        cache.close()
    finally:
        restored = containers.start_stack(client, settings, images=images)
    stack["containers"].update(restored["containers"])


def _http_get(port: int, path: str) -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("GET", path, headers={"Host": "127.0.0.1"})
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def test_website_health_and_flower_lists_the_worker(stack, settings):
    if "website" not in stack["containers"]:
        pytest.skip("no web app yet: " + "; ".join(stack["skipped"]))
    status, body = _http_get(settings["ports"]["web"], "/health/")
    assert status == 200, body
    switch = Path(settings["dirs"]["faults"]) / "health-fail"  # the 503 fault, from the host
    switch.touch()
    try:
        assert _http_get(settings["ports"]["web"], "/health/")[0] == 503
    finally:
        switch.unlink()
    assert _http_get(settings["ports"]["web"], "/health/")[0] == 200
    deadline = time.monotonic() + 60
    workers: dict[str, Any] = {}
    while time.monotonic() < deadline:
        status, body = _http_get(settings["ports"]["flower"], "/api/workers?refresh=1")
        workers = json.loads(body) if status == 200 else {}
        if any(name.startswith("worker@") for name in workers):
            break
        time.sleep(1)
    assert any(name.startswith("worker@") for name in workers), (status, body[:500])


def test_memory_limit_gets_oom_killed_and_restart_count_rises(client, images):
    hog = client.containers.run(
        containers.BASE_IMAGE, ["python3", "-c", "x = b'x' * (256 << 20)"], name="webstack-test-oom", network_mode="none",
        mem_limit="32m", memswap_limit="32m", restart_policy={"Name": "on-failure", "MaximumRetryCount": 2}, detach=True,
        labels={containers.LABEL_PROJECT: OTHER_PROJECT},
    )
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            hog.reload()
            state = hog.attrs["State"]
            if hog.attrs["RestartCount"] >= 2 and state["Status"] == "exited":
                break
            time.sleep(0.2)
        assert hog.attrs["RestartCount"] == 2
        assert state["OOMKilled"] is True
        assert state["ExitCode"] == 137
    finally:
        hog.remove(force=True)


def test_stop_stack_removes_only_our_containers(client, stack, settings):
    foreign = client.containers.run(containers.BASE_IMAGE, ["sleep", "300"], name="webstack-test-foreign", network_mode="none",
                                    labels={containers.LABEL_PROJECT: OTHER_PROJECT, containers.LABEL_SERVICE: "website"}, detach=True)
    unlabelled = client.containers.run(containers.BASE_IMAGE, ["sleep", "300"], name="webstack-test-unlabelled", network_mode="none",
                                       detach=True)
    try:
        removed = containers.stop_stack(client, settings["project"])
        assert sorted(removed) == sorted(stack["containers"])
        assert containers.project_containers(client, settings["project"]) == []
        for survivor in (foreign, unlabelled):
            survivor.reload()
            assert survivor.status == "running"
        # A container of the same name that is not ours is never replaced.
        squatter = client.containers.run(containers.BASE_IMAGE, ["sleep", "300"], name="redis_cache", network_mode="none", detach=True)
        try:
            with pytest.raises(containers.ContainerError, match="not part of project"):
                containers.start_stack(client, settings, images={k: v for k, v in stack["images"].items() if k != "web"})
            squatter.reload()
            assert squatter.status == "running"
        finally:
            squatter.remove(force=True)
            containers.stop_stack(client, settings["project"])
    finally:
        foreign.remove(force=True)
        unlabelled.remove(force=True)
    with pytest.raises(docker.errors.NotFound):
        client.containers.get("webstack-test-foreign")
