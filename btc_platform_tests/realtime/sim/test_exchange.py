"""Playing the market: history, pacing by the speed factor, scripted faults, the end of a source."""

from __future__ import annotations

from itertools import pairwise

import pytest

from btc_platform_tests.support.captures import CAPTURE_JSON as CAPTURE
from btc_platform_tests.support.stream_client import read_messages, stream_socket, trades_of
from realtime.clock import VirtualClock
from realtime.sim.capture_replay import CaptureReplay
from realtime.sim.exchange import ExchangeConfig, LocalExchange
from realtime.sim.faults import parse_fault
from realtime.sim.market_model import MarketModel, MarketParams

START_US = 1_767_225_600_000_000
US = 1_000_000


async def test_history_is_on_the_tape_before_the_first_live_frame() -> None:
    config = ExchangeConfig(speed=0, history_s=30)
    async with (
        LocalExchange(MarketModel(MarketParams(seed=2, start_time_us=START_US)), config) as ex,
        stream_socket(ex.stream_url, [ex.stream("trade")]) as ws,
    ):
        assert ex.history_end_us == START_US + 30 * US
        trades = ex.market.tape.trades()
        assert len(trades.trade_id) > 100
        assert trades.time_us.max() < ex.history_end_us
        assert ex.now_us() == ex.history_end_us
        await ex.advance_to(ex.history_end_us + 5 * US)
        live = trades_of(await read_messages(ws, lambda ms: len(ms) >= 10))
    assert live[0].trade_id == trades.trade_id[-1] + 1
    assert live[0].transact_time_us >= START_US + 30 * US


async def test_speed_ten_plays_ten_market_seconds_per_clock_second() -> None:
    clock = VirtualClock(start=START_US / US)
    config = ExchangeConfig(speed=10, history_s=5)
    source = MarketModel(MarketParams(seed=4, start_time_us=START_US))
    async with (
        LocalExchange(source, config, clock=clock) as ex,
        stream_socket(ex.stream_url, [ex.stream("trade")]) as ws,
    ):
        until = START_US + 25 * US
        messages = await read_messages(ws, lambda ms: ms[-1].transact_time_us >= until)
        market_s = (messages[-1].transact_time_us - ex.history_end_us) / US
        # The pump's waits are the only thing moving the virtual clock.
        assert market_s >= 19
        assert clock.slept == pytest.approx(market_s / 10, abs=0.05)
        assert ex.now_us() >= messages[-1].transact_time_us


async def test_a_scripted_fault_fires_at_its_market_second() -> None:
    drop = parse_fault({"fault": "drop", "stream": "btcusdt@trade", "count": 2, "at_s": 3})
    config = ExchangeConfig(speed=0, history_s=10, faults=(drop,))
    async with (
        LocalExchange(MarketModel(MarketParams(seed=8, start_time_us=START_US)), config) as ex,
        stream_socket(ex.stream_url, [ex.stream("trade")]) as ws,
    ):
        await ex.advance_to(ex.history_end_us + 8 * US)
        last = int(ex.market.tape.trades().trade_id[-1])
        trades = trades_of(await read_messages(ws, lambda ms: ms[-1].trades[-1].trade_id == last))
    fires_at = ex.history_end_us + 3 * US
    jumps = [(a, b) for a, b in pairwise(trades) if b.trade_id != a.trade_id + 1]
    assert len(jumps) == 1
    before, after = jumps[0]
    assert after.trade_id - before.trade_id - 1 == 2
    assert before.transact_time_us < fires_at
    assert after.transact_time_us >= fires_at


async def test_advance_to_is_for_a_paused_exchange_only() -> None:
    async with LocalExchange(CaptureReplay(CAPTURE), ExchangeConfig(speed=1)) as ex:
        with pytest.raises(RuntimeError, match="paused"):
            await ex.advance_to(ex.now_us() + US)


async def test_a_source_that_ends_leaves_rest_serving_its_whole_history() -> None:
    async with LocalExchange(CaptureReplay(CAPTURE), ExchangeConfig(speed=0)) as ex:
        await ex.advance_to(ex.now_us() + 3600 * US)
        status = ex.status()
    assert status["exhausted"] is True
    assert status["trades"] == 3144
    assert status["last_trade_id"] == 3_071_248_597


def test_a_negative_speed_is_refused() -> None:
    with pytest.raises(ValueError, match="speed"):
        LocalExchange(CaptureReplay(CAPTURE), ExchangeConfig(speed=-1))
