"""What both settings classes check alike: the symbol, and how Redis is reached.

Each case runs against the service's and the lake's settings: they share ``SharedSettings``,
and an environment that one refuses the other must refuse too.
"""

from __future__ import annotations

import pytest
from pydantic import SecretStr

from btc_platform.settings import LakehouseSettings
from realtime.service.settings import RealtimeSettings
from realtime.settings_checks import InsecureTransport, InvalidSymbol, PasswordInUrl

REDIS_PASSWORD = "redis-password-that-must-never-be-printed"
BOTH = pytest.mark.parametrize(
    "settings_class", [RealtimeSettings, LakehouseSettings], ids=["service", "lake"]
)


pytestmark = pytest.mark.usefixtures("clean_environment")


@BOTH
@pytest.mark.parametrize("given", ["btcusdt", "BtcUsdt", "BTCUSDT", "1000satsusdt", "BT"])
def test_a_symbol_is_upper_cased(monkeypatch, settings_class, given):
    monkeypatch.setenv("BTC_SYMBOL", given)
    assert settings_class().symbol == given.upper()


@BOTH
@pytest.mark.parametrize(
    "given",
    [
        "../etc",
        "BTC/USDT",
        "{BTC}",
        "BTC}USDT",
        "BTC USDT",
        "BTCUSDT\n",
        "B",
        "",
        "A" * 21,
        "BTC-USDT",
        "ＢＴＣＵＳＤＴ",  # full-width letters: not ASCII
        "BTC\x00",
    ],
)
def test_a_symbol_that_is_not_letters_and_digits_is_refused(settings_class, given):
    with pytest.raises(InvalidSymbol, match=r"^BTC_SYMBOL: ") as raised:
        settings_class(symbol=given)
    assert raised.value.setting == "BTC_SYMBOL"


@BOTH
def test_a_huge_symbol_is_quoted_back_only_in_part(settings_class):
    with pytest.raises(InvalidSymbol) as raised:
        settings_class(symbol="X" * 100_000)
    assert len(str(raised.value)) < 200


@BOTH
@pytest.mark.parametrize(
    "url",
    [
        f"redis://:{REDIS_PASSWORD}@redis:6379/0",
        f"redis://default:{REDIS_PASSWORD}@redis:6379/0",
        f"redis://redis:6379/0?password={REDIS_PASSWORD}",
        f"rediss://redis:6379/0?socket_timeout=5&PASSWORD={REDIS_PASSWORD}",
        "redis://redis:6379/0?password=",
    ],
    ids=["userinfo", "user-and-password", "query", "query-upper-case", "query-empty"],
)
def test_a_password_in_the_redis_url_is_refused_at_load(monkeypatch, settings_class, url):
    monkeypatch.setenv("BTC_REDIS_URL", url)
    with pytest.raises(PasswordInUrl, match=r"^BTC_REDIS_URL: .*BTC_REDIS_PASSWORD") as raised:
        settings_class()
    assert REDIS_PASSWORD not in str(raised.value)


@BOTH
def test_a_redis_url_with_a_user_or_other_options_but_no_password_loads(
    monkeypatch, settings_class
):
    url = "rediss://reader@redis:6379/0?username=reader&socket_timeout=5"
    monkeypatch.setenv("BTC_REDIS_URL", url)
    assert settings_class().redis_url == url


@BOTH
def test_prod_refuses_a_redis_client_without_tls(monkeypatch, settings_class):
    monkeypatch.setenv("BTC_ENV", "prod")
    monkeypatch.setenv("BTC_REDIS_URL", "redis://redis:6379/0")
    monkeypatch.setenv("BTC_REDIS_PASSWORD", REDIS_PASSWORD)
    settings = settings_class()  # loading is fine: only a client needs the connection
    with pytest.raises(InsecureTransport, match=r"^BTC_REDIS_URL: redis to redis ") as raised:
        settings.redis_connection()
    assert "use rediss://" in str(raised.value)
    assert REDIS_PASSWORD not in str(raised.value)


@BOTH
def test_prod_redis_over_tls_gets_the_password_and_the_ca(monkeypatch, tmp_path, settings_class):
    monkeypatch.setenv("BTC_ENV", "prod")
    monkeypatch.setenv("BTC_REDIS_URL", "rediss://redis:6379/0")
    monkeypatch.setenv("BTC_REDIS_PASSWORD", REDIS_PASSWORD)
    monkeypatch.setenv("BTC_REDIS_CA_FILE", str(tmp_path / "ca.crt"))
    connection = settings_class().redis_connection()
    assert connection.tls
    assert connection.options() == {
        "password": REDIS_PASSWORD,
        "ssl_cert_reqs": "required",
        "ssl_check_hostname": True,
        "ssl_ca_certs": str(tmp_path / "ca.crt"),
    }


@BOTH
def test_prod_on_a_named_private_network_may_use_plain_redis(monkeypatch, settings_class):
    monkeypatch.setenv("BTC_ENV", "prod")
    monkeypatch.setenv("BTC_REDIS_URL", "redis://redis:6379/0")
    monkeypatch.setenv("BTC_ALLOW_INSECURE_TRANSPORT", "1")
    assert settings_class().redis_connection().url == "redis://redis:6379/0"


@BOTH
def test_a_ca_file_without_tls_is_refused(monkeypatch, tmp_path, settings_class):
    monkeypatch.setenv("BTC_REDIS_CA_FILE", str(tmp_path / "ca.crt"))
    with pytest.raises(InsecureTransport, match=r"^BTC_REDIS_CA_FILE: .*rediss://"):
        settings_class().redis_connection()


@BOTH
def test_the_redis_password_never_shows(monkeypatch, settings_class):
    monkeypatch.setenv("BTC_REDIS_PASSWORD", REDIS_PASSWORD)
    settings = settings_class()
    assert isinstance(settings.redis_password, SecretStr)
    connection = settings.redis_connection()
    for shown in (repr(settings), str(settings), settings.model_dump_json(), repr(connection)):
        assert REDIS_PASSWORD not in shown
