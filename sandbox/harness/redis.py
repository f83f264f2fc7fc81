"""Redis: redis-server in the foreground, password protected, no persistence."""

from __future__ import annotations

import secrets
import socket
from pathlib import Path
from typing import Any

from .base import HOST, Server, free_port


class RedisServer(Server):
    """redis-server on host:port (127.0.0.1) with requirepass; its working directory is state_dir/data.

    With netns (and host an address there) it runs in that network namespace: another host (netns.py).
    """

    name = "redis"

    def __init__(self, state_dir: str | Path, *, port: int | None = None, password: str | None = None, host: str = HOST,
                 netns: str | None = None) -> None:
        super().__init__(state_dir, netns=netns)
        self.host = host
        self.port = port or free_port()
        self.password = password or secrets.token_hex(16)
        self.data_dir = self.state_dir / "data"

    @property
    def url(self) -> str:
        """redis:// URL with the password, database 0."""
        return f"redis://:{self.password}@{self.host}:{self.port}/0"

    def settings(self) -> dict[str, Any]:
        return {"port": self.port, "password": self.password, "host": self.host, "netns": self.netns}

    def details(self) -> dict[str, Any]:
        return {"host": self.host, "port": self.port, "password": self.password, "url": self.url}

    def ports(self) -> list[int]:
        return [self.port]

    def prepare(self) -> None:
        self.data_dir.mkdir(exist_ok=True)

    def command(self) -> list[str]:
        return ["redis-server", "--port", str(self.port), "--bind", self.host, "--save", "", "--appendonly", "no",
                "--requirepass", self.password, "--dir", str(self.data_dir), "--daemonize", "no"]

    def ready(self) -> bool:
        """AUTH and PING answer +OK and +PONG."""
        try:
            with socket.create_connection((self.host, self.port), timeout=2) as sock:
                sock.sendall(f"AUTH {self.password}\r\nPING\r\n".encode())
                reply = b""
                while reply.count(b"\r\n") < 2:
                    chunk = sock.recv(1024)
                    if not chunk:
                        break
                    reply += chunk
        except OSError:
            return False
        return reply == b"+OK\r\n+PONG\r\n"
