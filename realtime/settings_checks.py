"""Checks both settings classes (the service's and the lake's) apply to what they load.

A symbol becomes a directory name, a Redis Cluster hash tag (``{BTCUSDT}``) and a part of
REST and stream URLs, so anything but a plain Binance-shaped symbol is refused before it
reaches any of them. In production every connection carries something worth protecting
(the API key, the Redis password, market data the models trust), so a URL without
encryption is refused unless the operator says, by name, that the network is private.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from urllib.parse import parse_qsl, urlsplit

SYMBOL_PATTERN = re.compile(r"[A-Z0-9]{2,20}")
"""Upper-case ASCII letters and digits, 2 to 20 of them (Binance's spot symbols)."""

ENCRYPTED_FORM = {
    "http": "https",
    "https": "https",
    "ws": "wss",
    "wss": "wss",
    "redis": "rediss",
    "rediss": "rediss",
    "unix": "unix",
}
"""Each scheme the settings take → its encrypted form. ``unix`` (a Redis socket on the same
host) never leaves the machine, so it counts as its own encrypted form."""

ALLOW_INSECURE_SETTING = "BTC_ALLOW_INSECURE_TRANSPORT"
SHOWN_CHARS = 40
"""At most this much of a refused value is quoted back (the value may be anything)."""


class UnsafeSetting(Exception):
    """A setting the process refuses to run with.

    Not a ``ValueError`` on purpose: pydantic would fold it into a ``ValidationError`` that
    quotes the whole settings object; raised as itself, the message is exactly ours. It
    names the environment variable and never holds a secret.
    """

    def __init__(self, setting: str, message: str) -> None:
        super().__init__(f"{setting}: {message}")
        self.setting = setting


class InvalidSymbol(UnsafeSetting):
    """A symbol that is not 2 to 20 upper-case letters or digits."""


class InsecureTransport(UnsafeSetting):
    """An unencrypted URL with ``BTC_ENV=prod``, or TLS options on a URL without TLS."""


class PasswordInUrl(UnsafeSetting):
    """A password written into a URL setting, which is not a secret (ConfigMaps, logs)."""


def checked_symbol(value: str, setting: str = "BTC_SYMBOL") -> str:
    """``value`` upper-cased, once it matches ``^[A-Z0-9]{2,20}$``; else ``InvalidSymbol``."""
    symbol = value.upper()
    if not SYMBOL_PATTERN.fullmatch(symbol):
        raise InvalidSymbol(
            setting,
            f"{value[:SHOWN_CHARS]!r} is not a symbol: 2 to 20 letters A-Z or digits, e.g. BTCUSDT",
        )
    return symbol


def check_transport(urls: Mapping[str, str], *, production: bool, allow_insecure: bool) -> None:
    """Refuse, in production, any of ``urls`` (setting name → URL) that is not encrypted.

    The message names the setting and the host, never the whole URL: a URL can carry
    credentials. ``allow_insecure`` is the operator's explicit exception for a private
    network (``BTC_ALLOW_INSECURE_TRANSPORT=1``).
    """
    if not production or allow_insecure:
        return
    for setting, url in urls.items():
        scheme, host = _scheme_and_host(setting, url)
        encrypted = ENCRYPTED_FORM.get(scheme)
        if encrypted == scheme:
            continue
        instead = f"use {encrypted}://" if encrypted else "use an encrypted URL"
        raise InsecureTransport(
            setting,
            f"{scheme or 'a URL without a scheme'} to {host} is not encrypted "
            f"and BTC_ENV=prod: {instead}, or set {ALLOW_INSECURE_SETTING}=1 if this network "
            "is private",
        )


def check_no_password(setting: str, url: str, instead: str) -> None:
    """Refuse a URL with a password in it: the password belongs in ``instead`` (a secret).

    Both places a client reads one from count: the userinfo (``user:pw@``) and, as redis-py
    takes it, a ``password=`` query parameter.
    """
    parts = urlsplit(url)
    in_userinfo = parts.password is not None
    in_query = any(
        name.lower() == "password" for name, _ in parse_qsl(parts.query, keep_blank_values=True)
    )
    if in_userinfo or in_query:
        raise PasswordInUrl(setting, f"holds a password; give it in {instead} instead")


def _scheme_and_host(setting: str, url: str) -> tuple[str, str]:
    try:
        parts = urlsplit(url)
        return parts.scheme.lower(), parts.hostname or "?"
    except ValueError:  # e.g. an unclosed IPv6 bracket
        raise InsecureTransport(setting, "is not a valid URL") from None
