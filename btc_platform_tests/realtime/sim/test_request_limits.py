"""The server-side request-weight limit: calendar minutes, 429, then a 418 ban (virtual clock)."""

from __future__ import annotations

from realtime.clock import VirtualClock
from realtime.sim.request_limits import Admission, RequestLimiter

MINUTE_START = 1_767_225_600.0  # 2026-01-01T00:00:00Z, a calendar minute's first second
IP = "10.0.0.1"


def limiter_at(seconds_into_minute: float, **options) -> tuple[VirtualClock, RequestLimiter]:
    clock = VirtualClock(MINUTE_START + seconds_into_minute)
    return clock, RequestLimiter(clock, **options)


def test_weights_add_up_per_ip_within_a_minute() -> None:
    clock, limiter = limiter_at(5.0, weight_limit=6000)
    assert limiter.admit(IP, 4) == Admission(200, 4)
    assert limiter.admit(IP, 25) == Admission(200, 29)
    clock.advance(50.0)  # still the same calendar minute (55 s into it)
    assert limiter.admit(IP, 2) == Admission(200, 31)
    assert limiter.admit("10.0.0.2", 20) == Admission(200, 20)
    assert limiter.used_weight(IP) == 31
    assert limiter.used_weight("10.0.0.3") == 0


def test_a_new_minute_resets_the_count() -> None:
    clock, limiter = limiter_at(59.5, weight_limit=100)
    assert limiter.admit(IP, 100).status == 200
    assert limiter.admit(IP, 1).status == 429
    clock.advance(0.5)  # exactly the next minute's first instant
    assert limiter.used_weight(IP) == 0
    assert limiter.admit(IP, 7) == Admission(200, 7)


def test_over_the_limit_is_429_until_the_next_minute_and_adds_nothing() -> None:
    clock, limiter = limiter_at(20.5, weight_limit=100)
    assert limiter.admit(IP, 96) == Admission(200, 96)
    refused = limiter.admit(IP, 5)
    assert refused == Admission(429, 96, 40)  # 39.5 s to the next minute, rounded up
    assert limiter.used_weight(IP) == 96
    # What still fits is served: the refused weight was not counted.
    assert limiter.admit(IP, 4) == Admission(200, 100)
    clock.advance(30.0)
    assert limiter.admit(IP, 1) == Admission(429, 100, 10)
    clock.advance(9.4)  # 0.1 s before the minute: at least one second
    assert limiter.admit(IP, 1) == Admission(429, 100, 1)


def test_more_than_ban_after_refusals_in_a_minute_is_a_418_ban_until_it_ends() -> None:
    clock, limiter = limiter_at(10.0, weight_limit=50, ban_after=2, ban_s=120.0)
    assert limiter.admit(IP, 50).status == 200
    assert limiter.admit(IP, 1).status == 429
    assert limiter.admit(IP, 1).status == 429
    assert limiter.admit(IP, 1) == Admission(418, 50, 120)
    # Every request during the ban is refused, even the smallest and across minutes,
    # with Retry-After = the ban's remaining seconds.
    clock.advance(30.5)
    assert limiter.admit(IP, 1) == Admission(418, 50, 90)
    clock.advance(60.0)  # a new minute (100.5 s after the minute start): the count resets
    assert limiter.admit(IP, 1) == Admission(418, 0, 30)
    assert limiter.admit("10.0.0.2", 1).status == 200  # only the offending IP is banned
    clock.advance(29.5)  # the ban ends at exactly 130 s
    assert limiter.admit(IP, 1) == Admission(200, 1)


def test_ban_after_counts_refusals_of_one_minute_only() -> None:
    clock, limiter = limiter_at(50.0, weight_limit=10, ban_after=2)
    assert limiter.admit(IP, 10).status == 200
    assert [limiter.admit(IP, 1).status for _ in range(2)] == [429, 429]
    clock.advance(10.0)  # next minute: count and refusals reset
    assert limiter.admit(IP, 10).status == 200
    assert [limiter.admit(IP, 1).status for _ in range(3)] == [429, 429, 418]


def test_no_limit_never_refuses_but_still_counts() -> None:
    clock, limiter = limiter_at(0.0, weight_limit=None)
    statuses = {limiter.admit(IP, 250).status for _ in range(1_000)}
    assert statuses == {200}
    assert limiter.used_weight(IP) == 250_000
    clock.advance(60.0)
    assert limiter.admit(IP, 25) == Admission(200, 25)
