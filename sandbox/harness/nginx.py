"""nginx serving a static page, with every path it writes under its own prefix."""

from __future__ import annotations

import os
import signal
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
    """

    name = "nginx"

    def __init__(self, state_dir: str | Path, *, port: int | None = None, index_html: str = "<h1>webstack sandbox</h1>\n",
                 extra_servers: str = "") -> None:
        super().__init__(state_dir)
        self.host = HOST
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
        return {"port": self.port, "index_html": self.index_html, "extra_servers": self.extra_servers}

    def details(self) -> dict[str, Any]:
        return {"host": self.host, "port": self.port, "url": self.url, "conf": str(self.conf_path), "html_dir": str(self.html_dir),
                "access_log": str(self.access_log), "error_log": str(self.error_log)}

    def ports(self) -> list[int]:
        return [self.port]

    def write_config(self) -> None:
        """Write nginx.conf and index.html from the current attributes."""
        for directory in (self.html_dir, self.prefix / "logs", self.prefix / "temp"):
            directory.mkdir(exist_ok=True)
        (self.html_dir / "index.html").write_text(self.index_html)
        user = "user root;" if os.geteuid() == 0 else ""  # else workers would be nobody, who cannot read a 0700 tmp dir
        self.conf_path.write_text(CONF_TEMPLATE.format(user=user, prefix=self.prefix, host=self.host, port=self.port,
                                                       extra_servers=self.extra_servers))

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
        """Rewrite the configuration, check it with `nginx -t`, then SIGHUP the master."""
        self.write_config()
        run(self._nginx("-t"), "nginx -t")
        os.kill(self.pid, signal.SIGHUP)
