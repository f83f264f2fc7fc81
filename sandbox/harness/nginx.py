"""nginx serving a static page, with every path it writes under its own prefix."""

from __future__ import annotations

import os
import signal
import tempfile
from pathlib import Path
from typing import Any

from .base import HOST, Server, free_port, http_status, run

CONF_TEMPLATE = """\
# Written by sandbox/harness.
daemon off;
{user}
worker_processes 1;
pid {prefix}/nginx.pid;
error_log {prefix}/logs/error.log;

events {{
    worker_connections 256;
}}

http {{
    include /etc/nginx/mime.types;
    default_type application/octet-stream;
    access_log {prefix}/logs/access.log;
    client_body_temp_path {prefix}/temp/client_body;
    proxy_temp_path {prefix}/temp/proxy;
    fastcgi_temp_path {prefix}/temp/fastcgi;
    uwsgi_temp_path {prefix}/temp/uwsgi;
    scgi_temp_path {prefix}/temp/scgi;

    server {{
        listen {host}:{port};
        root {prefix}/html;
    }}

{extra_servers}
}}
"""


class NginxServer(Server):
    """nginx on 127.0.0.1:port serving state_dir/html/index.html (content index_html).

    extra_servers is configuration text inserted in the http block (more `server` blocks:
    reverse proxy, TLS). To change it on a running server: set the attribute, then reload().
    Workers run as the user that starts nginx, so they read what that user can.
    With netns (and host an address there) it runs in that network namespace: another host (netns.py).
    """

    name = "nginx"

    def __init__(self, state_dir: str | Path, *, port: int | None = None, index_html: str = "<h1>webstack sandbox</h1>\n",
                 extra_servers: str = "", host: str = HOST, netns: str | None = None) -> None:
        super().__init__(state_dir, netns=netns)
        self.host = host
        self.port = port or free_port()
        self.index_html = index_html
        self.extra_servers = extra_servers
        self.prefix = self.state_dir
        self.conf_path = self.prefix / "nginx.conf"
        self.html_dir = self.prefix / "html"
        self.access_log = self.prefix / "logs" / "access.log"
        self.error_log = self.prefix / "logs" / "error.log"
        self.pid_file = self.prefix / "nginx.pid"

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}/"

    def settings(self) -> dict[str, Any]:
        return {"port": self.port, "index_html": self.index_html, "extra_servers": self.extra_servers, "host": self.host,
                "netns": self.netns}

    def details(self) -> dict[str, Any]:
        return {"host": self.host, "port": self.port, "url": self.url, "conf": str(self.conf_path), "html_dir": str(self.html_dir),
                "access_log": str(self.access_log), "error_log": str(self.error_log)}

    def ports(self) -> list[int]:
        return [self.port]

    def config_text(self) -> str:
        """nginx.conf as the current attributes make it."""
        user = "user root;" if os.geteuid() == 0 else ""  # else workers would be nobody, who cannot read a 0700 tmp dir
        return CONF_TEMPLATE.format(user=user, prefix=self.prefix, host=self.host, port=self.port, extra_servers=self.extra_servers)

    def _write_dirs(self) -> None:
        for directory in (self.html_dir, self.prefix / "logs", self.prefix / "temp"):
            directory.mkdir(exist_ok=True)
        (self.html_dir / "index.html").write_text(self.index_html)

    def write_config(self) -> None:
        """Write nginx.conf and index.html from the current attributes."""
        self._write_dirs()
        self.conf_path.write_text(self.config_text())

    def prepare(self) -> None:
        self.write_config()

    def _nginx(self, *extra: str) -> list[str]:
        # -e: the error log nginx uses before it has read the configuration
        return ["nginx", "-p", f"{self.prefix}/", "-c", str(self.conf_path), "-e", str(self.error_log), *extra]

    def command(self) -> list[str]:
        return self._nginx()

    def ready(self) -> bool:
        return http_status(self.host, self.port) is not None

    def reopen_logs(self) -> None:
        """SIGUSR1: reopen the log files (after logrotate moved them)."""
        os.kill(self.pid, signal.SIGUSR1)

    def reload(self) -> None:
        """Check the configuration from the current attributes with `nginx -t`, install it, then SIGHUP the master.

        The new text goes to a temporary file next to nginx.conf and is tested from there (same prefix, so relative
        paths mean the same); only if the test passes does it replace nginx.conf (rename). On failure a ServerError
        is raised and nginx.conf and the running nginx are left as they were.
        """
        self._write_dirs()
        fd, name = tempfile.mkstemp(prefix=".nginx.conf.", suffix=".new", dir=self.conf_path.parent)
        candidate = Path(name)
        try:
            with os.fdopen(fd, "w") as out:
                out.write(self.config_text())
            run(["nginx", "-p", f"{self.prefix}/", "-c", str(candidate), "-e", str(self.error_log), "-t"], "nginx -t")
            candidate.chmod(0o644)
            candidate.replace(self.conf_path)
        finally:
            candidate.unlink(missing_ok=True)
        os.kill(self.pid, signal.SIGHUP)
