"""Several hosts on one machine: a network namespace per host on a private bridge, each with its own sshd.

HostNetwork is a bridge in the root namespace with the first address of a 10.213.<n>.0/24 that nothing on this
machine uses (the controller's side); SshHost is one host on it: its own namespace joined to the bridge by a veth
pair, lo up, and sshd on the host's address that lets root in with one client key. Namespaces share the filesystem
and the users, so a host runs this machine's programs (and this checkout's venv) while Ansible reaches it over SSH
like a remote machine, and a server started with netns= (PostgresServer, RedisServer, NginxServer) listens only on
that host's address. Hosts on one bridge reach each other without routing (no ip_forward, no NAT).

Only names created here are ever removed: the bridge wso-br-<tag>, the veths wso-<tag>-<n>, the namespaces
wso-<host>-<tag> (<tag> is random). Needs root, iproute2 and openssh-server.
"""

from __future__ import annotations

import contextlib
import os
import random
import re
import secrets
import shutil
import signal
import socket
import subprocess
from pathlib import Path
from typing import Any, Self

from .base import Server, ServerError, run, wait_until

SSHD = "/usr/sbin/sshd"  # sshd re-executes itself: it must be started by its absolute path
PREFIX = "10.213"  # 10.213.<n>.0/24: a private range; create() takes an <n> no address or route here uses
PREFIX_LEN = 24

SSHD_CONFIG = """\
# Written by sandbox/harness/netns.py: root logs in with the key in authorized_keys, nothing else.
ListenAddress {address}:{port}
HostKey {state_dir}/ssh_host_ed25519_key
PidFile none
AuthorizedKeysFile {state_dir}/authorized_keys
PermitRootLogin prohibit-password
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
UseDNS no
PrintMotd no
Subsystem sftp internal-sftp
"""


def netns_unavailable() -> str | None:
    """Why hosts cannot be made here (not root, no iproute2, namespaces refused), None when they can."""
    if os.geteuid() != 0:
        return "network namespaces and sshd need root"
    if shutil.which("ip") is None:
        return "iproute2's `ip` is not installed"
    probe = f"wso-probe-{secrets.token_hex(3)}"
    result = subprocess.run(["ip", "netns", "add", probe], capture_output=True, text=True, check=False)
    if result.returncode != 0:
        return f"`ip netns add` is refused here: {result.stderr.strip()}"
    subprocess.run(["ip", "netns", "delete", probe], capture_output=True, check=False)
    return None


def used_subnets() -> set[int]:
    """The <n> of every 10.213.<n>.x address or route on this machine."""
    text = "".join(subprocess.run(["ip", "-4", "-o", *what], capture_output=True, text=True, check=True).stdout
                   for what in (["addr"], ["route", "show", "table", "all"]))
    return {int(n) for n in re.findall(r"\b10\.213\.(\d+)\.", text)}


def client_key(directory: str | Path) -> Path:
    """A new passphrase-less ed25519 key pair in directory (client_key, client_key.pub); returns the private key."""
    path = Path(directory) / "client_key"
    run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "webstack-ops-test", "-f", str(path)], "ssh-keygen (client key)")
    return path


def _link_exists(name: str) -> bool:
    return Path("/sys/class/net", name).exists()


def _netns_exists(name: str) -> bool:
    return Path("/run/netns", name).exists()


class HostNetwork:
    """A bridge wso-br-<tag> in the root namespace with 10.213.<subnet>.1/24: the controller's side of the hosts.

    create() picks a free subnet unless one is given; host() makes the SshHosts that join it; remove() deletes the
    bridge (stop the hosts first). A context manager: `with HostNetwork().create() as net:`.
    """

    def __init__(self, tag: str | None = None, subnet: int | None = None) -> None:
        self.tag = tag or secrets.token_hex(3)
        self.bridge = f"wso-br-{self.tag}"
        self.subnet = subnet
        self.hosts: list[SshHost] = []

    @property
    def gateway(self) -> str:
        """This machine's address on the bridge (where the hosts see the controller come from)."""
        return f"{PREFIX}.{self.subnet}.1"

    def create(self) -> Self:
        if self.subnet is None:
            free = sorted(set(range(1, 255)) - used_subnets())
            if not free:
                raise ServerError(f"no free /24 left in {PREFIX}.0.0/16")
            self.subnet = random.choice(free)
        run(["ip", "link", "add", "name", self.bridge, "type", "bridge"], "creating the bridge")
        try:
            run(["ip", "addr", "add", f"{self.gateway}/{PREFIX_LEN}", "dev", self.bridge], "addressing the bridge")
            run(["ip", "link", "set", self.bridge, "up"], "bringing the bridge up")
        except ServerError:
            self.remove()
            raise
        return self

    def host(self, state_dir: str | Path, name: str, authorized_key: str) -> SshHost:
        """An SshHost `name` on this network (not started), with the next address from .10 on."""
        index = len(self.hosts)
        host = SshHost(state_dir, name=name, bridge=self.bridge, netns=f"wso-{name}-{self.tag}", veth=f"wso-{self.tag}-{index}",
                       address=f"{PREFIX}.{self.subnet}.{10 + index}", authorized_key=authorized_key)
        self.hosts.append(host)
        return host

    def remove(self) -> None:
        """Delete the bridge, if it is there (its hosts' veths go with their namespaces)."""
        if _link_exists(self.bridge):
            run(["ip", "link", "delete", self.bridge], "deleting the bridge")

    def state(self) -> dict[str, Any]:
        return {"bridge": self.bridge, "subnet": f"{PREFIX}.{self.subnet}.0/{PREFIX_LEN}", "gateway": self.gateway,
                "hosts": {host.host_name: host.state() for host in self.hosts}}

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.remove()


class SshHost(Server):
    """One host: namespace `netns` joined to `bridge` by the veth pair `veth` (eth0 inside), and sshd on address:port.

    Root logs in with the key authorized_key (a public key line); the host key is made at the first start. At stop,
    sshd is stopped by its PID, then whatever still runs in the namespace (the sessions sshd forked, modules left in
    the background) is killed by PID, and the namespace and the veth pair are deleted.
    """

    name = "sshd"

    def __init__(self, state_dir: str | Path, *, name: str, bridge: str, netns: str, veth: str, address: str, authorized_key: str,
                 port: int = 22) -> None:
        super().__init__(state_dir, netns=netns)
        self.host_name = name
        self.bridge = bridge
        self.veth = veth
        self.address = address
        self.authorized_key = authorized_key.strip()
        self.port = port
        self.config_path = self.state_dir / "sshd_config"
        self.host_key = self.state_dir / "ssh_host_ed25519_key"

    def settings(self) -> dict[str, Any]:
        return {"name": self.host_name, "bridge": self.bridge, "netns": self.netns, "veth": self.veth, "address": self.address,
                "authorized_key": self.authorized_key, "port": self.port}

    def details(self) -> dict[str, Any]:
        return {"host": self.host_name, "address": self.address, "port": self.port, "netns": self.netns, "veth": self.veth,
                "bridge": self.bridge, "sshd_config": str(self.config_path)}

    def ports(self) -> list[int]:
        return [self.port]

    def prepare(self) -> None:
        Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)  # sshd's privilege separation directory (Debian: made by its unit)
        if not self.host_key.exists():
            run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", f"{self.host_name} host key", "-f", str(self.host_key)],
                "ssh-keygen (host key)")
        (self.state_dir / "authorized_keys").write_text(self.authorized_key + "\n")
        self.config_path.write_text(SSHD_CONFIG.format(address=self.address, port=self.port, state_dir=self.state_dir))
        run([SSHD, "-t", "-f", str(self.config_path)], "sshd -t")
        if not _netns_exists(self.netns):
            run(["ip", "netns", "add", self.netns], "creating the namespace")
        if not _link_exists(self.veth):
            run(["ip", "link", "add", self.veth, "type", "veth", "peer", "name", "eth0", "netns", self.netns], "creating the veth pair")
        run(["ip", "link", "set", self.veth, "master", self.bridge, "up"], "joining the veth to the bridge")
        run(["ip", "-n", self.netns, "addr", "replace", f"{self.address}/{PREFIX_LEN}", "dev", "eth0"], "addressing the host")
        run(["ip", "-n", self.netns, "link", "set", "eth0", "up"], "bringing eth0 up")
        run(["ip", "-n", self.netns, "link", "set", "lo", "up"], "bringing lo up")

    def command(self) -> list[str]:
        return [SSHD, "-D", "-e", "-f", str(self.config_path)]

    def ready(self) -> bool:
        """sshd sends its banner on address:port."""
        try:
            with socket.create_connection((self.address, self.port), timeout=1) as sock:
                return sock.recv(64).startswith(b"SSH-")
        except OSError:
            return False

    def pids(self) -> list[int]:
        """Processes running in the namespace."""
        if not _netns_exists(self.netns):
            return []
        result = subprocess.run(["ip", "netns", "pids", self.netns], capture_output=True, text=True, check=False)
        return [int(pid) for pid in result.stdout.split()]

    def cleanup(self) -> None:
        for pid in self.pids():  # only what runs in our namespace: our sshd's sessions and what they started
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
        # Gone before the link goes, so that their connections' resets reach the clients (ssh's control masters).
        if not wait_until(lambda: not self.pids(), 10):
            raise ServerError(f"processes in {self.netns} survived SIGKILL: {self.pids()}")
        if _link_exists(self.veth):
            run(["ip", "link", "delete", self.veth], "deleting the veth pair")
        if _netns_exists(self.netns):
            run(["ip", "netns", "delete", self.netns], "deleting the namespace")
