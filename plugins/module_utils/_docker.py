# Copyright (c) webstack.ops contributors
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The Docker engine a module talks to, through the Docker SDK (private to the collection)."""

from __future__ import annotations

import traceback

try:
    import docker
    import docker.errors
except ImportError:
    docker = None
    DOCKER_IMPORT_ERROR = traceback.format_exc()
else:
    DOCKER_IMPORT_ERROR = None

DOCKER_HINT = "on Debian/Ubuntu install python3-docker, elsewhere pip install docker"


class DockerError(Exception):
    """The engine could not be reached or refused a request; the message says what to check."""


def engine_name(docker_host):
    return docker_host or "of the environment (DOCKER_HOST, else the local socket)"


def connect(docker_host, timeout=30):
    """A DockerClient for docker_host (else DOCKER_HOST, else the local socket), checked with a ping."""
    try:
        client = docker.DockerClient(base_url=docker_host, timeout=timeout) if docker_host else docker.from_env(timeout=timeout)
        client.ping()
    except docker.errors.DockerException as exc:
        raise DockerError("the Docker engine %s did not answer: %s; check that dockerd runs and docker_host"
                          % (engine_name(docker_host), exc)) from None
    return client
