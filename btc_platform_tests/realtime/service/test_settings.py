"""The service's settings: prod refuses unencrypted Binance URLs, local keeps the local
exchange. The symbol and Redis checks both settings share: ``../test_shared_settings.py``."""

from __future__ import annotations

import pytest

from realtime.service.settings import (
    BINANCE_REST_URL,
    BINANCE_STREAM_URL,
    LOCAL_HTTP_URL,
    LOCAL_STREAM_URL,
    RealtimeSettings,
)
from realtime.settings_checks import InsecureTransport

API_KEY = "k3y-that-must-never-be-printed"


pytestmark = pytest.mark.usefixtures("clean_environment")


def _refusal(setting: str, monkeypatch, **environment: str) -> str:
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(InsecureTransport) as raised:
        RealtimeSettings()
    assert raised.value.setting == setting
    return str(raised.value)


@pytest.mark.parametrize(
    ("setting", "url"),
    [
        ("BTC_BINANCE_REST_URL", "http://api.binance.com"),
        ("BTC_BINANCE_STREAM_URL", "ws://stream-sbe.binance.com:9443"),
        ("BTC_BINANCE_ARCHIVE_URL", "http://data.binance.vision"),
        ("BTC_BINANCE_REST_URL", "HTTP://api.binance.com"),
        ("BTC_BINANCE_STREAM_URL", "stream-sbe.binance.com:9443"),
    ],
    ids=["rest", "stream", "archive", "upper-case-scheme", "no-scheme"],
)
def test_prod_refuses_an_unencrypted_binance_url(monkeypatch, setting, url):
    message = _refusal(
        setting, monkeypatch, BTC_ENV="prod", BTC_BINANCE_API_KEY=API_KEY, **{setting: url}
    )
    assert message.startswith(f"{setting}: ")
    assert "BTC_ALLOW_INSECURE_TRANSPORT" in message
    assert API_KEY not in message


def test_the_refusal_names_the_host_but_never_credentials_in_the_url(monkeypatch):
    message = _refusal(
        "BTC_BINANCE_REST_URL",
        monkeypatch,
        BTC_ENV="prod",
        BTC_BINANCE_REST_URL="http://proxy-user:proxy-secret@egress.internal:3128/path?token=t0k",
    )
    assert "egress.internal" in message
    assert "use https://" in message
    for secret in ("proxy-user", "proxy-secret", "t0k"):
        assert secret not in message


def test_prod_defaults_and_encrypted_overrides_load(monkeypatch):
    monkeypatch.setenv("BTC_ENV", "prod")
    settings = RealtimeSettings()
    assert settings.rest_url == BINANCE_REST_URL
    assert settings.stream_url == BINANCE_STREAM_URL
    monkeypatch.setenv("BTC_BINANCE_STREAM_URL", "wss://stream-sbe.binance.com")
    assert RealtimeSettings().stream_url == "wss://stream-sbe.binance.com"


def test_local_keeps_the_local_exchange_plain_urls():
    settings = RealtimeSettings()
    assert settings.rest_url == LOCAL_HTTP_URL
    assert settings.stream_url == LOCAL_STREAM_URL
    assert settings.redis_connection().url == "redis://127.0.0.1:6379/0"


def test_the_named_exception_lets_prod_use_a_private_plain_network(monkeypatch):
    monkeypatch.setenv("BTC_ENV", "prod")
    monkeypatch.setenv("BTC_BINANCE_REST_URL", "http://exchange:8765")
    monkeypatch.setenv("BTC_REDIS_URL", "redis://redis:6379/0")
    monkeypatch.setenv("BTC_ALLOW_INSECURE_TRANSPORT", "1")
    settings = RealtimeSettings()
    assert settings.rest_url == "http://exchange:8765"
    assert settings.redis_connection().url == "redis://redis:6379/0"
