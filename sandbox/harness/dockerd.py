"""A Docker engine of our own: dockerd without bridge, NAT or iptables, on a private unix socket."""

from __future__ import annotations

import http.client
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path
from typing import Any

from .base import Server, kill_and_wait, proc_start_time, unix_socket_path, wait_until


class UnixHTTPConnection(http.client.HTTPConnection):
    """HTTP over a unix socket (the Docker API)."""

    def __init__(self, path: str, timeout: float = 2) -> None:
        super().__init__("localhost", timeout=timeout)
        self.socket_path = path

    def connect(self) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(self.timeout)
        self.sock.connect(self.socket_path)


class DockerEngine(Server):
    """dockerd with its data root in state_dir/data and the API on state_dir/docker.sock.

    Never touches the host network: --bridge=none, no iptables, no ip_forward, no masquerading,
    no userland proxy; containers use `--network host` or `none`. It reads no /etc/docker/daemon.json
    (it gets an empty one of its own). dockerd starts its own containerd, whose sockets live in
    exec_root: a short directory /tmp/wsops-XXXX (unix socket paths are limited to 108 bytes),
    removed at stop. Stop: SIGTERM, SIGKILL after stop_grace, then containerd is waited for
    (dockerd stops it, and it gets SIGKILL when dockerd dies) or SIGKILLed.
    """

    name = "dockerd"
    stop_grace = 20.0

    def __init__(self, state_dir: str | Path, *, exec_root: str | None = None) -> None:
        super().__init__(state_dir)
        self.data_root = self.state_dir / "data"
        self.exec_root = Path(exec_root) if exec_root else None
        self.socket_path = unix_socket_path(self.state_dir / "docker.sock")
        self.pid_file = self.state_dir / "docker.pid"
        self.config_file = self.state_dir / "daemon.json"

    @property
    def base_url(self) -> str:
        """For docker.DockerClient(base_url=...) and DOCKER_HOST."""
        return f"unix://{self.socket_path}"

    def settings(self) -> dict[str, Any]:
        return {"exec_root": str(self.exec_root) if self.exec_root else None}

    def details(self) -> dict[str, Any]:
        return {"base_url": self.base_url, "socket": str(self.socket_path), "data_root": str(self.data_root),
                "exec_root": str(self.exec_root) if self.exec_root else None}

    def ports(self) -> list[int]:
        return []

    def prepare(self) -> None:
        self.data_root.mkdir(exist_ok=True)
        self.config_file.write_text("{}\n")
        if self.exec_root is None:
            self.exec_root = Path(tempfile.mkdtemp(prefix="wsops-", dir="/tmp"))

    def command(self) -> list[str]:
        return ["dockerd", "--config-file", str(self.config_file), "--data-root", str(self.data_root), "--exec-root", str(self.exec_root),
                "--pidfile", str(self.pid_file), "-H", self.base_url, "--bridge=none", "--iptables=false", "--ip6tables=false",
                "--ip-forward=false", "--ip-masq=false", "--userland-proxy=false"]

    def ready(self) -> bool:
        """GET /_ping answers OK."""
        conn = UnixHTTPConnection(str(self.socket_path))
        try:
            conn.request("GET", "/_ping")
            response = conn.getresponse()
            return response.status == 200 and response.read() == b"OK"
        except (OSError, http.client.HTTPException):
            return False
        finally:
            conn.close()

    def cleanup(self) -> None:
        """Make sure dockerd's containerd is gone too (it runs in a session of its own), then remove exec_root."""
        if self.exec_root is None:
            return
        containerd = _pid_from_file(self.exec_root / "containerd" / "containerd.pid")
        ours = containerd is not None and str(self.exec_root) in _cmdline(containerd)
        if ours and not wait_until(lambda: proc_start_time(containerd) is None, 10):
            kill_and_wait(containerd)
        # dockerd leaves its default network namespace bind-mounted there (an nsfs mount)
        for mount in _mounts_under(self.exec_root):
            subprocess.run(["umount", "-l", mount], check=False)
        shutil.rmtree(self.exec_root, ignore_errors=True)
        self.exec_root = None


def _mounts_under(path: Path) -> list[str]:
    """Mount points at or below path, deepest first (from /proc/self/mounts)."""
    with open("/proc/self/mounts", encoding="utf-8") as mounts:
        points = [line.split()[1] for line in mounts]
    prefix = str(path).rstrip("/") + "/"
    return sorted((p for p in points if p == str(path) or p.startswith(prefix)), key=len, reverse=True)


def _pid_from_file(path: Path) -> int | None:
    try:
        return int(path.read_text().strip())
    except (FileNotFoundError, ValueError):
        return None


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except (FileNotFoundError, ProcessLookupError):
        return ""
