"""How a process reaches Redis: the URL, the password and the TLS trust, from its settings.

One place for both halves (the service's asyncio clients, the lake's synchronous one), so
neither can forget the password or the CA. The password is a ``SecretStr`` until the
moment it is handed to redis-py; nothing here prints it (redis-py's own reprs and errors
name the host and port only).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from pydantic import SecretStr

from realtime.settings_checks import InsecureTransport

TLS_SCHEME = "rediss"


@dataclass(frozen=True)
class RedisConnection:
    """``url`` (``redis://`` or ``rediss://`` for TLS, no password in it), the password
    (``BTC_REDIS_PASSWORD``), and the CA bundle that signs the server's certificate
    (``BTC_REDIS_CA_FILE``; default: the system's trust store)."""

    url: str
    password: SecretStr | None = None
    ca_file: Path | None = None

    def __post_init__(self) -> None:
        if self.ca_file is not None and not self.tls:
            raise InsecureTransport(
                "BTC_REDIS_CA_FILE",
                "is set but BTC_REDIS_URL does not use TLS: make it rediss://",
            )

    @property
    def tls(self) -> bool:
        return urlsplit(self.url).scheme.lower() == TLS_SCHEME

    def options(self) -> dict[str, Any]:
        """Keyword arguments for ``Redis.from_url`` (``redis.Redis`` or ``redis.asyncio``).

        TLS always verifies the certificate and the host name (redis-py's defaults, stated
        so a change of default cannot loosen them).
        """
        options: dict[str, Any] = {}
        if self.password is not None:
            options["password"] = self.password.get_secret_value()
        if self.tls:
            options |= {"ssl_cert_reqs": "required", "ssl_check_hostname": True}
            if self.ca_file is not None:
                options["ssl_ca_certs"] = str(self.ca_file)
        return options
