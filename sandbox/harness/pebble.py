"""Pebble, the test ACME server, with pebble-challtestsrv as its DNS (every name is 127.0.0.1)."""

from __future__ import annotations

import json
import os
import ssl
import urllib.request
from pathlib import Path
from typing import Any

from .base import HOST, Server, free_port, http_status, run


class ChallTestServer(Server):
    """pebble-challtestsrv: mock DNS on dns_port answering default_ipv4 for every A query, management API over HTTP.

    Its HTTP-01, HTTPS-01 and TLS-ALPN-01 responders are off: the ACME client under test answers challenges.
    """

    name = "challtestsrv"

    def __init__(self, state_dir: str | Path, *, dns_port: int | None = None, management_port: int | None = None,
                 default_ipv4: str = HOST) -> None:
        super().__init__(state_dir)
        self.host = HOST
        self.dns_port = dns_port or free_port()
        self.management_port = management_port or free_port()
        self.default_ipv4 = default_ipv4

    @property
    def management_url(self) -> str:
        return f"http://{self.host}:{self.management_port}"

    def settings(self) -> dict[str, Any]:
        return {"dns_port": self.dns_port, "management_port": self.management_port, "default_ipv4": self.default_ipv4}

    def details(self) -> dict[str, Any]:
        return {"dns_server": f"{self.host}:{self.dns_port}", "management_url": self.management_url}

    def ports(self) -> list[int]:
        return [self.management_port]  # the DNS port is UDP and TCP; this is the one ready() checks

    def command(self) -> list[str]:
        return ["pebble-challtestsrv", "-http01", "", "-https01", "", "-tlsalpn01", "",
                "-dns01", f"{self.host}:{self.dns_port}", "-management", f"{self.host}:{self.management_port}",
                "-defaultIPv4", self.default_ipv4, "-defaultIPv6", ""]

    def ready(self) -> bool:
        return http_status(self.host, self.management_port) is not None


class PebbleServer(Server):
    """Pebble ACME server on https://127.0.0.1:port/dir, resolving names through its own ChallTestServer.

    ca_cert is the self-signed certificate of Pebble's HTTPS endpoints (made with openssl):
    clients verify the directory with it. The issuing root of the certificates Pebble signs
    is at management_url + "/roots/0"; Pebble makes a new one at every start.
    Validation connects to http_port (HTTP-01) and tls_port (TLS-ALPN-01) of 127.0.0.1.
    validity_period (seconds) shortens the certificates it issues (default: 5 years).
    """

    name = "pebble"

    def __init__(self, state_dir: str | Path, *, port: int | None = None, management_port: int | None = None,
                 http_port: int = 5002, tls_port: int = 5001, validity_period: int | None = None,
                 challtestsrv: dict[str, Any] | None = None) -> None:
        super().__init__(state_dir)
        self.host = HOST
        self.port = port or free_port()
        self.management_port = management_port or free_port()
        self.http_port = http_port
        self.tls_port = tls_port
        self.validity_period = validity_period
        self.challtestsrv = ChallTestServer(self.state_dir, **(challtestsrv or {}))
        self.config_path = self.state_dir / "pebble-config.json"
        self.ca_cert = self.state_dir / "cert.pem"
        self.key_path = self.state_dir / "key.pem"

    @property
    def directory_url(self) -> str:
        return f"https://{self.host}:{self.port}/dir"

    @property
    def management_url(self) -> str:
        return f"https://{self.host}:{self.management_port}"

    def settings(self) -> dict[str, Any]:
        return {"port": self.port, "management_port": self.management_port, "http_port": self.http_port, "tls_port": self.tls_port,
                "validity_period": self.validity_period, "challtestsrv": self.challtestsrv.settings()}

    def details(self) -> dict[str, Any]:
        return {"directory_url": self.directory_url, "ca_cert": str(self.ca_cert), "management_url": self.management_url,
                "http_port": self.http_port, "tls_port": self.tls_port, "challtestsrv": self.challtestsrv.state()}

    def ports(self) -> list[int]:
        return [self.port, self.management_port, *self.challtestsrv.ports()]

    def prepare(self) -> None:
        """Start the DNS first, make the TLS certificate once, write the configuration."""
        self.challtestsrv.start()
        if not self.ca_cert.exists():
            run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "3650",
                 "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1",
                 "-keyout", str(self.key_path), "-out", str(self.ca_cert)], "openssl req")
        config: dict[str, Any] = {
            "listenAddress": f"{self.host}:{self.port}", "managementListenAddress": f"{self.host}:{self.management_port}",
            "certificate": str(self.ca_cert), "privateKey": str(self.key_path), "httpPort": self.http_port, "tlsPort": self.tls_port,
            "ocspResponderURL": "", "externalAccountBindingRequired": False}
        if self.validity_period:
            config["certificateValidityPeriod"] = self.validity_period
        self.config_path.write_text(json.dumps({"pebble": config}, indent=2))

    def command(self) -> list[str]:
        return ["pebble", "-config", str(self.config_path), "-dnsserver", f"{self.host}:{self.challtestsrv.dns_port}"]

    def env(self) -> dict[str, str]:
        return {**os.environ, "PEBBLE_VA_NOSLEEP": "1", "PEBBLE_WFE_NONCEREJECT": "0"}

    def ready(self) -> bool:
        """The directory answers over HTTPS verified with ca_cert."""
        context = ssl.create_default_context(cafile=str(self.ca_cert))
        try:
            with urllib.request.urlopen(self.directory_url, context=context, timeout=2) as response:  # noqa: S310 - our https URL
                return response.status == 200
        except OSError:
            return False

    def running(self) -> bool:
        return super().running() and self.challtestsrv.running()

    def restore(self, state: dict[str, Any]) -> None:
        super().restore(state)
        self.challtestsrv.restore(state["challtestsrv"])

    def stop(self) -> None:
        """Stop Pebble, then its DNS."""
        super().stop()
        self.challtestsrv.stop()
