"""The checks both settings classes share, as plain functions."""

from __future__ import annotations

import pytest

from realtime.settings_checks import (
    InsecureTransport,
    InvalidSymbol,
    PasswordInUrl,
    UnsafeSetting,
    check_no_password,
    check_transport,
    checked_symbol,
)


def test_the_refusals_are_their_own_types_not_value_errors():
    # A ValueError raised in a validator would reach the caller folded into pydantic's
    # ValidationError, which quotes the whole settings object.
    for refusal in (InvalidSymbol, InsecureTransport, PasswordInUrl):
        assert issubclass(refusal, UnsafeSetting)
        assert not issubclass(refusal, ValueError)


def test_a_symbol_is_upper_cased_and_held_to_its_shape():
    assert checked_symbol("ethbtc") == "ETHBTC"
    with pytest.raises(InvalidSymbol, match=r"^BTC_OTHER: '\.\./x' is not a symbol"):
        checked_symbol("../x", setting="BTC_OTHER")


@pytest.mark.parametrize(
    "url",
    [
        "https://api.binance.com",
        "wss://stream-sbe.binance.com:9443",
        "rediss://redis:6379/0",
        "unix:///run/redis/redis.sock",
    ],
)
def test_encrypted_or_local_urls_pass_in_production(url):
    check_transport({"BTC_X": url}, production=True, allow_insecure=False)


@pytest.mark.parametrize(
    "url", ["http://h", "ws://h", "redis://h", "ftp://h", "h:1", "http://[::1"]
)
def test_anything_else_is_refused_in_production_only(url):
    with pytest.raises(InsecureTransport, match=r"^BTC_X: "):
        check_transport({"BTC_X": url}, production=True, allow_insecure=False)
    check_transport({"BTC_X": url}, production=False, allow_insecure=False)
    check_transport({"BTC_X": url}, production=True, allow_insecure=True)


def test_a_url_may_name_a_user_but_not_a_password():
    check_no_password("BTC_X", "rediss://reader@redis:6379/0", instead="BTC_Y")
    with pytest.raises(PasswordInUrl, match=r"^BTC_X: holds a password; give it in BTC_Y"):
        check_no_password("BTC_X", "rediss://reader:pw@redis:6379/0", instead="BTC_Y")
