"""Process handling shared by every server: free ports, start, readiness, stop by PID."""

from __future__ import annotations

import contextlib
import http.client
import os
import random
import signal
import socket
import subprocess
import time
from pathlib import Path
from typing import Any, Self

HOST = "127.0.0.1"
PORT_RANGE = (15000, 32768)  # below Linux's ephemeral range: outgoing connections never take these
UNIX_PATH_MAX = 107  # sun_path is 108 bytes with the final NUL


class ServerError(RuntimeError):
    """A server could not be prepared, started or stopped."""


_handed_out: set[int] = set()


def port_free(port: int) -> bool:
    """True if nothing listens on 127.0.0.1:port (binds it briefly, as a server would)."""
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((HOST, port))
        except OSError:
            return False
    return True


def free_port(companion_offset: int = 0) -> int:
    """A free loopback port not handed out before by this process.

    With companion_offset, port + companion_offset is free too (SeaweedFS puts gRPC there).
    """
    low, high = PORT_RANGE
    for _attempt in range(1000):
        port = random.randrange(low, high - companion_offset)
        wanted = [port, port + companion_offset] if companion_offset else [port]
        if not _handed_out.intersection(wanted) and all(port_free(p) for p in wanted):
            _handed_out.update(wanted)
            return port
    raise ServerError("no free loopback port found")


def unix_socket_path(path: Path) -> Path:
    """path, if it fits in a unix socket address; a clear error otherwise."""
    if len(str(path)) > UNIX_PATH_MAX:
        raise ServerError(f"unix socket path longer than {UNIX_PATH_MAX} characters: {path} (use a shorter state dir)")
    return path


def _proc_stat(pid: int) -> list[str] | None:
    """Fields of /proc/PID/stat from the state on (field 3), None if there is no such process."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return None
    return stat[stat.rindex(")") + 2:].split()


def proc_start_time(pid: int) -> int | None:
    """Start time (clock ticks since boot) of a live process, None if it is gone or a zombie."""
    fields = _proc_stat(pid)
    if fields is None or fields[0] in ("Z", "X"):
        return None
    return int(fields[19])


def group_members(pgid: int) -> list[int]:
    """Live processes of a process group."""
    members = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            fields = _proc_stat(int(entry.name))
            if fields is not None and fields[0] not in ("Z", "X") and int(fields[2]) == pgid:
                members.append(int(entry.name))
    return members


def wait_until(predicate, timeout: float, interval: float = 0.1) -> bool:
    """Poll predicate until it is true (True) or timeout seconds passed (False)."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval)
    return True


def http_status(host: str, port: int) -> int | None:
    """Status of a plain HTTP GET /, None if nothing answers."""
    conn = http.client.HTTPConnection(host, port, timeout=2)
    try:
        conn.request("GET", "/")
        return conn.getresponse().status
    except (OSError, http.client.HTTPException):
        return None
    finally:
        conn.close()


def run(argv: list[str], what: str) -> None:
    """Run a setup command; a ServerError with its output if it fails."""
    result = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, check=False)
    if result.returncode != 0:
        raise ServerError(f"{what} failed (exit {result.returncode}): {' '.join(argv)}\n{result.stdout}")


class Server:
    """One server process started in its own session, with its files under state_dir.

    Subclasses set `name`, implement command(), ready(), settings(), details() and ports(),
    and may override env(), prepare(), launch(), request_stop() and cleanup().
    """

    name = ""
    stop_grace = 10.0  # seconds between the stop request and SIGKILL

    def __init__(self, state_dir: str | Path, *, netns: str | None = None) -> None:
        self.state_dir = Path(state_dir).resolve()
        self.netns = netns  # network namespace to run in (another host, see netns.py); None: this machine's own
        self.log_path = self.state_dir / f"{self.name}.log"
        self.pid: int | None = None
        self.proc_start: int | None = None  # with pid, tells our process from a later one with the same PID
        self.startup_seconds: float | None = None
        self._popen: subprocess.Popen | None = None

    # What subclasses provide.

    def command(self) -> list[str]:
        """The server's argv."""
        raise NotImplementedError

    def env(self) -> dict[str, str] | None:
        """The server's environment; None inherits ours."""
        return None

    def ready(self) -> bool:
        """True once the server answers requests."""
        raise NotImplementedError

    def settings(self) -> dict[str, Any]:
        """Constructor arguments that rebuild this server from the state file (ports, secrets)."""
        raise NotImplementedError

    def details(self) -> dict[str, Any]:
        """How clients connect: written to the state file."""
        raise NotImplementedError

    def ports(self) -> list[int]:
        """Every TCP port the server listens on."""
        raise NotImplementedError

    def prepare(self) -> None:
        """Write configuration and data directories before the first launch."""

    def in_netns(self, argv: list[str]) -> list[str]:
        """argv run in the server's network namespace, if it has one (`ip netns exec` execs it: the PID stays)."""
        return ["ip", "netns", "exec", self.netns, *argv] if self.netns else argv

    def cleanup(self) -> None:
        """Remove what the server leaves outside state_dir once it is stopped."""

    # Start.

    def launch(self) -> None:
        """Start the process, set pid."""
        with open(self.log_path, "ab") as log:
            self._popen = subprocess.Popen(self.in_netns(self.command()), stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                           cwd=self.state_dir, env=self.env(), start_new_session=True)
        self.pid = self._popen.pid

    def start(self, timeout: float = 60.0) -> Self:
        """Start the server and wait until it answers; stop it again if it does not. Returns self."""
        self.state_dir.mkdir(parents=True, exist_ok=True)
        began = time.monotonic()
        try:
            self.prepare()
            self.launch()
            self.proc_start = proc_start_time(self.pid)
            self._wait_ready(began + timeout)
        except BaseException:
            self.stop()
            raise
        self.startup_seconds = round(time.monotonic() - began, 2)
        return self

    def _wait_ready(self, deadline: float) -> None:
        while not self.ready():
            if not self.alive():
                raise ServerError(f"{self.name} exited during startup\n{self.log_tail()}")
            if time.monotonic() >= deadline:
                raise ServerError(f"{self.name} did not answer in time (pid {self.pid})\n{self.log_tail()}")
            time.sleep(0.1)

    def log_tail(self, lines: int = 30) -> str:
        """The last lines of the server's log, to explain a failure."""
        try:
            text = self.log_path.read_text(errors="replace").splitlines()[-lines:]
        except FileNotFoundError:
            return f"(no log at {self.log_path})"
        return f"--- last lines of {self.log_path}:\n" + "\n".join(text)

    # State.

    def alive(self) -> bool:
        """True if the recorded process still runs (the same process, not a reused PID)."""
        if self.pid is None:
            return False
        started = proc_start_time(self.pid)
        return started is not None and (self.proc_start is None or started == self.proc_start)

    def running(self) -> bool:
        """Alive and answering."""
        return self.alive() and self.ready()

    def state(self) -> dict[str, Any]:
        """The state file entry: connection details, PID, log and the settings to rebuild it."""
        return {**self.details(), "pid": self.pid, "proc_start": self.proc_start, "log": str(self.log_path),
                "startup_seconds": self.startup_seconds, "settings": self.settings()}

    @classmethod
    def from_state(cls, state_dir: str | Path, state: dict[str, Any]) -> Self:
        """Rebuild a server recorded by state(), to check or stop it."""
        server = cls(state_dir, **state["settings"])
        server.restore(state)
        return server

    def restore(self, state: dict[str, Any]) -> None:
        """Take over the process recorded in a state() entry."""
        self.pid, self.proc_start = state["pid"], state["proc_start"]
        self.startup_seconds = state.get("startup_seconds")

    # Stop.

    def request_stop(self) -> None:
        """Ask the server to shut down."""
        os.kill(self.pid, signal.SIGTERM)

    def stop(self) -> None:
        """Stop by PID: request_stop(), SIGKILL after stop_grace, then kill what is left of its process group."""
        if self.alive():
            pid = self.pid
            with contextlib.suppress(ProcessLookupError):
                self.request_stop()
            if not wait_until(lambda: proc_start_time(pid) is None, self.stop_grace):
                kill_and_wait(pid)
            # Every server starts as the leader of a new session. A PID is not reused while a group
            # of that number exists, so group `pid` is the one our server created.
            _kill_group(pid)
        if self._popen is not None:
            self._popen.wait()
            self._popen = None
        self.pid = self.proc_start = None
        self.cleanup()

    # Context manager: `with Server(dir).start() as server:` stops it on the way out.

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


def kill_and_wait(pid: int) -> None:
    """SIGKILL a process and wait until it is gone."""
    try:
        os.kill(pid, signal.SIGKILL)
    except ProcessLookupError:
        return
    if not wait_until(lambda: proc_start_time(pid) is None, 10):
        raise ServerError(f"pid {pid} survived SIGKILL")


def _kill_group(pgid: int) -> None:
    """SIGKILL the processes left in a group we created, and wait until they are gone."""
    if group_members(pgid):
        try:
            os.killpg(pgid, signal.SIGKILL)
        except ProcessLookupError:
            return
        if not wait_until(lambda: not group_members(pgid), 10):
            raise ServerError(f"process group {pgid} survived SIGKILL: {group_members(pgid)}")
