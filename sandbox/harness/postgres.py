"""PostgreSQL 15: a cluster of its own, run as the postgres user, on a loopback port."""

from __future__ import annotations

import os
import pwd
import secrets
import subprocess
from pathlib import Path
from typing import Any

from .base import HOST, Server, ServerError, free_port, run

BIN = Path("/usr/lib/postgresql/15/bin")
OS_USER = "postgres"  # initdb and postgres refuse to run as root


def as_postgres(*argv: str) -> list[str]:
    """argv run as the postgres OS user."""
    return ["runuser", "-u", OS_USER, "--", *argv]


def check_traversable(path: Path) -> None:
    """A clear error naming the first directory on the way to path that the postgres user cannot enter."""
    if subprocess.run(as_postgres("test", "-x", str(path)), check=False).returncode == 0:
        return
    for directory in [*reversed(path.parents), path]:
        if subprocess.run(as_postgres("test", "-x", str(directory)), check=False).returncode != 0:
            raise ServerError(f"the {OS_USER} user cannot enter {directory} (on the way to {path}): "
                              f"allow it (chmod o+x {directory}) or use another state dir")


class PostgresServer(Server):
    """PostgreSQL 15 cluster in state_dir/data, superuser `postgres` with a password, TCP on host (127.0.0.1).

    The unix socket is in the data directory. initdb sets the password (default: generated) and
    keeps it in state_dir/password, where later starts of the same cluster read it back.
    fast=True turns off fsync, synchronous_commit and full_page_writes: for tests only, a crash
    loses data. Every state_dir parent must be enterable by the postgres OS user.
    With netns (and host an address there) it runs in that network namespace: another host (netns.py);
    clients on that host's network ("samenet") may then log in with the password.
    """

    name = "postgres"
    stop_grace = 30.0

    def __init__(self, state_dir: str | Path, *, port: int | None = None, password: str | None = None, fast: bool = False,
                 host: str = HOST, netns: str | None = None) -> None:
        super().__init__(state_dir, netns=netns)
        self.host = host
        self.port = port or free_port()
        self.user = "postgres"
        self.data_dir = self.state_dir / "data"
        self.socket_dir = self.data_dir
        self.password_file = self.state_dir / "password"
        if password is None:
            password = self.password_file.read_text().strip() if self.password_file.exists() else secrets.token_urlsafe(18)
        self.password = password
        self.fast = fast

    def conninfo(self, dbname: str = "postgres") -> dict[str, Any]:
        """Keyword arguments for psycopg2.connect() over TCP with the password."""
        return {"host": self.host, "port": self.port, "user": self.user, "password": self.password, "dbname": dbname}

    @property
    def dsn(self) -> str:
        """libpq connection string to the `postgres` database."""
        return " ".join(f"{key}={value}" for key, value in self.conninfo().items())

    def settings(self) -> dict[str, Any]:
        return {"port": self.port, "password": self.password, "fast": self.fast, "host": self.host, "netns": self.netns}

    def details(self) -> dict[str, Any]:
        return {"host": self.host, "port": self.port, "user": self.user, "password": self.password,
                "socket_dir": str(self.socket_dir), "data_dir": str(self.data_dir), "dsn": self.dsn}

    def ports(self) -> list[int]:
        return [self.port]

    def prepare(self) -> None:
        """initdb on first use, then (re)write the server settings the harness owns."""
        check_traversable(self.state_dir)
        owner = pwd.getpwnam(OS_USER)
        self.log_path.touch()
        os.chown(self.log_path, owner.pw_uid, owner.pw_gid)
        if not (self.data_dir / "PG_VERSION").exists():
            self._initdb(owner)
        if self.host != HOST:
            self._allow_samenet()
        lines = [f"listen_addresses = '{self.host}'", f"port = {self.port}", f"unix_socket_directories = '{self.socket_dir}'",
                 "shared_preload_libraries = 'pg_stat_statements'"]
        if self.fast:
            lines += ["fsync = off", "synchronous_commit = off", "full_page_writes = off"]
        harness_conf = self.data_dir / "harness.conf"
        harness_conf.write_text("# Written by sandbox/harness at every start.\n" + "\n".join(lines) + "\n")
        os.chown(harness_conf, owner.pw_uid, owner.pw_gid)

    def _initdb(self, owner: pwd.struct_passwd) -> None:
        self.data_dir.mkdir(mode=0o700, exist_ok=True)
        os.chown(self.data_dir, owner.pw_uid, owner.pw_gid)
        self.password_file.write_text(self.password + "\n")
        os.chmod(self.password_file, 0o600)
        os.chown(self.password_file, owner.pw_uid, owner.pw_gid)  # initdb reads it as postgres
        run(as_postgres(str(BIN / "initdb"), "-D", str(self.data_dir), "--username", self.user, f"--pwfile={self.password_file}",
                        "--auth-local=trust", "--auth-host=scram-sha-256", "--encoding=UTF8", "--locale=C"), "initdb")
        with open(self.data_dir / "postgresql.conf", "a") as conf:
            conf.write("\ninclude = 'harness.conf'\n")

    def _allow_samenet(self) -> None:
        """Password logins from the subnets of the server's host (initdb allows only 127.0.0.1 and ::1)."""
        hba = self.data_dir / "pg_hba.conf"
        line = "host all all samenet scram-sha-256"
        if line not in hba.read_text().splitlines():
            with open(hba, "a") as conf:
                conf.write("# Added by sandbox/harness: the server listens on a host address.\n" + line + "\n")

    def launch(self) -> None:
        """pg_ctl start -w (in the server's namespace), then take the postmaster's PID from postmaster.pid."""
        result = subprocess.run(self.in_netns(as_postgres(str(BIN / "pg_ctl"), "-D", str(self.data_dir), "-l", str(self.log_path), "-w", "-t", "60", "start")),
                                stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, check=False)
        if result.returncode != 0:
            raise ServerError(f"pg_ctl start failed (exit {result.returncode}): {result.stdout}\n{self.log_tail()}")
        self.pid = int((self.data_dir / "postmaster.pid").read_text().split()[0])

    def ready(self) -> bool:
        return subprocess.run([str(BIN / "pg_isready"), "-q", "-h", self.host, "-p", str(self.port), "-t", "1"], check=False).returncode == 0

    def request_stop(self) -> None:
        """pg_ctl stop -m fast; Server.stop() SIGKILLs the postmaster if that does not work."""
        subprocess.run(as_postgres(str(BIN / "pg_ctl"), "-D", str(self.data_dir), "-m", "fast", "-t", str(int(self.stop_grace)), "stop"),
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
