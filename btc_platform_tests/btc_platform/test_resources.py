"""The Dagster resources' own checks: a Redis URL from run config obeys the settings' rules."""

from __future__ import annotations

import pytest

from btc_platform.defs.resources import RedisResource
from realtime.settings_checks import InsecureTransport, PasswordInUrl

REDIS_PASSWORD = "redis-password-that-must-never-be-printed"


pytestmark = pytest.mark.usefixtures("clean_environment")


@pytest.mark.parametrize(
    "url",
    [f"redis://:{REDIS_PASSWORD}@redis:6379/0", f"redis://redis:6379/0?password={REDIS_PASSWORD}"],
    ids=["userinfo", "query"],
)
def test_a_password_in_the_resources_redis_url_is_refused(url):
    with pytest.raises(PasswordInUrl, match=r"^BTC_REDIS_URL: .*BTC_REDIS_PASSWORD") as raised:
        RedisResource(url=url).connection()
    assert REDIS_PASSWORD not in str(raised.value)


def test_the_resources_url_replaces_the_settings_and_keeps_the_secret(monkeypatch):
    monkeypatch.setenv("BTC_REDIS_URL", "redis://elsewhere:6379/0")
    monkeypatch.setenv("BTC_REDIS_PASSWORD", REDIS_PASSWORD)
    connection = RedisResource(url="redis://redis:6380/1").connection()
    assert connection.url == "redis://redis:6380/1"
    assert connection.options()["password"] == REDIS_PASSWORD


def test_prod_refuses_the_resources_plain_redis_url(monkeypatch):
    monkeypatch.setenv("BTC_ENV", "prod")
    with pytest.raises(InsecureTransport, match=r"^BTC_REDIS_URL: redis to redis "):
        RedisResource(url="redis://redis:6379/0").connection()
