"""moto's server mode: AWS APIs (IAM, STS, S3, ...) in memory on a loopback port, for tests of what no real AWS serves here."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path
from typing import Any

from .base import HOST, Server, ServerError, free_port, http_status


class MotoServer(Server):
    """moto_server on 127.0.0.1:port: one endpoint for every service. Any access key is accepted; state is in memory."""

    name = "moto"

    def __init__(self, state_dir: str | Path, *, port: int | None = None) -> None:
        super().__init__(state_dir)
        self.host = HOST
        self.port = port or free_port()

    @property
    def endpoint_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def settings(self) -> dict[str, Any]:
        return {"port": self.port}

    def details(self) -> dict[str, Any]:
        return {"endpoint_url": self.endpoint_url}

    def ports(self) -> list[int]:
        return [self.port]

    def command(self) -> list[str]:
        # The venv's own moto_server (beside its python), else one on PATH.
        binary = Path(sys.executable).parent / "moto_server"
        if not binary.exists():
            binary = shutil.which("moto_server")
            if binary is None:
                raise ServerError("moto_server not found: install moto[server] (requirements-dev.txt)")
        return [str(binary), "-H", self.host, "-p", str(self.port)]

    def ready(self) -> bool:
        return http_status(self.host, self.port) is not None
