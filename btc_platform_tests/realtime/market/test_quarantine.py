"""The quarantine of doubted events, with the exchange's REST unreachable (a refused port):
its own consensus settles them, and a failing step never costs the events it holds."""

from __future__ import annotations

import asyncio
import logging

from realtime.binance.rest import BinanceRestClient, RetryPolicy
from realtime.market.events import Trade
from realtime.market.plausibility import Plausibility, PlausibilityLimits, facts_of
from realtime.market.quarantine import CONSENSUS_MIN, Quarantine
from realtime.service.metrics import Metrics

START_US = 1_767_225_600_000_000
CLOSED_PORT_URL = "http://127.0.0.1:1"


def trades(count: int, first_id: int = 1_000) -> list[Trade]:
    return [
        Trade("BTCUSDT", first_id + n, 9_800_000_000_000, 100_000, False, t, t)
        for n, t in enumerate(range(START_US, START_US + count * 100_000, 100_000))
    ]


class Role:
    """The admission path a role gives the quarantine: judge again, hold or apply."""

    def __init__(
        self, metrics: Metrics, poison: set[int] | None = None, wall_us=lambda: START_US
    ) -> None:
        self.policy = Plausibility(PlausibilityLimits())
        self.rest = BinanceRestClient(CLOSED_PORT_URL, retry=RetryPolicy(max_attempts=1))
        self.quarantine: Quarantine[Trade] = Quarantine(
            self.policy, self.rest, "BTCUSDT", metrics, source="bus",
            readmit=self.readmit, wall_us=wall_us,
        )  # fmt: skip
        self.poison = poison or set()
        self.applied: list[int] = []

    def readmit(self, trade: Trade) -> None:
        if trade.trade_id in self.poison:
            raise RuntimeError(f"a bug on trade {trade.trade_id}")
        self.admit(trade)

    def admit(self, trade: Trade) -> None:
        facts = facts_of(trade)
        assert facts is not None
        doubt = self.policy.check(facts, START_US).doubt
        if doubt is not None:
            self.quarantine.hold(trade, facts, doubt)
        else:
            self.applied.append(trade.trade_id)


async def test_real_events_are_settled_by_their_consensus_when_rest_is_unreachable():
    role = Role(Metrics())
    fed = trades(CONSENSUS_MIN)
    for trade in fed:
        role.admit(trade)
    await asyncio.wait_for(role.quarantine.drained(), 30)
    assert role.applied == [trade.trade_id for trade in fed]
    assert role.quarantine.settled_by == {"consensus": 2}
    await role.quarantine.close()
    await role.rest.close()


async def test_a_failing_readmission_costs_that_event_alone_and_close_never_raises(caplog):
    """Issue 15 review: an error outside the expected ones killed the verifier silently, its
    held events were lost and ``close`` raised it (skipping the rest of a role's shutdown)."""
    metrics = Metrics()
    fed = trades(10)
    role = Role(metrics, poison={fed[3].trade_id})
    for trade in fed:
        role.admit(trade)
    with caplog.at_level(logging.ERROR, logger="realtime.market.quarantine"):
        await asyncio.wait_for(role.quarantine.drained(), 30)
    assert role.quarantine.errors >= 1
    assert role.quarantine.pending == 0
    # Every other event got through; the poisoned one is the only loss.
    assert fed[3].trade_id not in role.applied
    assert set(role.applied) == {trade.trade_id for trade in fed} - {fed[3].trade_id}
    assert any(record.exc_info for record in caplog.records)  # logged with its traceback
    await role.quarantine.close()
    await role.rest.close()


async def test_an_unexpected_error_while_judging_loses_no_held_event(caplog):
    """The step fails before anything leaves the quarantine; it is retried, not the end."""
    calls = []

    def wall_us() -> int:
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("a clock that failed once")
        return START_US

    fed = trades(CONSENSUS_MIN + 2)
    role = Role(Metrics(), wall_us=wall_us)
    for trade in fed:
        role.admit(trade)
    with caplog.at_level(logging.ERROR, logger="realtime.market.quarantine"):
        await asyncio.wait_for(role.quarantine.drained(), 30)
    assert role.quarantine.errors == 1
    assert role.applied == [trade.trade_id for trade in fed]
    assert any("quarantine step failed" in r.message and r.exc_info for r in caplog.records)
    await role.quarantine.close()
    await role.rest.close()
