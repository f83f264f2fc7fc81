"""Real servers on loopback ports for tests and the local sandbox, started and stopped by PID.

Each server class takes the directory for its files (configuration, data, log) and optional
ports and secrets (free ports and random secrets by default). start() returns once the server
answers, stop() stops it by PID. `sandbox/stackctl` and tests/conftest.py use them.
"""

from __future__ import annotations

from .base import Server, ServerError, free_port, port_free, proc_start_time
from .dockerd import DockerEngine
from .moto import MotoServer
from .nginx import NginxServer
from .pebble import ChallTestServer, PebbleServer
from .postgres import PostgresServer
from .redis import RedisServer
from .seaweedfs import S3Server

# stackctl's service names
SERVICES: dict[str, type[Server]] = {
    "postgres": PostgresServer,
    "redis": RedisServer,
    "s3": S3Server,
    "nginx": NginxServer,
    "pebble": PebbleServer,
    "dockerd": DockerEngine,
}

__all__ = ["SERVICES", "ChallTestServer", "DockerEngine", "MotoServer", "NginxServer", "PebbleServer", "PostgresServer", "RedisServer",
           "S3Server", "Server", "ServerError", "free_port", "port_free", "proc_start_time"]
