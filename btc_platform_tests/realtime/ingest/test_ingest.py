"""The ingest role against the local exchange, over real sockets: publish, dedup, gaps, faults.

The exchange plays its seeded market at 20x (about 130 trades and 900 frames a second), so
each test sees hundreds of trades in a second or two. Faults are applied in-process, as the
admin endpoint would; nothing sleeps to make time pass except waits for a condition.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import struct
import time
from collections.abc import AsyncIterator
from itertools import pairwise

import pytest

from btc_platform_tests.realtime.ingest.list_sink import ListSink
from btc_platform_tests.support.waiting import HANG_GUARD_S, eventually
from realtime.binance.rest import BinanceRestClient, RetryPolicy
from realtime.binance.sbe import decode, encode
from realtime.clock import Clock, SystemClock
from realtime.ingest.backoff import Backoff
from realtime.ingest.gaps import GapRecord
from realtime.ingest.ingest import IngestRole
from realtime.market.events import Trade, TradeBatch
from realtime.service.metrics import Metrics
from realtime.service.settings import RealtimeSettings
from realtime.sim.exchange import ExchangeConfig, LocalExchange
from realtime.sim.faults import parse_fault
from realtime.sim.market_model import MarketModel, MarketParams
from realtime.sim.streams import StreamRules

START_US = 1_767_225_600_000_000
API_KEY = "local-test-key"


def local_exchange(seed: int = 11, **rules: float) -> LocalExchange:
    config = ExchangeConfig(
        speed=20, history_s=1, weight_limit=None, stream_rules=StreamRules(**rules)
    )
    return LocalExchange(MarketModel(MarketParams(seed=seed, start_time_us=START_US)), config)


def ingest_role(
    exchange: LocalExchange,
    sink: ListSink,
    metrics: Metrics,
    *,
    backoff: Backoff | None = None,
    clock: Clock | None = None,
    rest: BinanceRestClient | None = None,
    **settings: object,
) -> IngestRole:
    values: dict[str, object] = {
        "binance_stream_url": exchange.stream_url,
        "binance_rest_url": exchange.rest_url,
        "binance_api_key": API_KEY,
        "symbol": exchange.symbol,
    }
    values.update(settings)
    return IngestRole(
        RealtimeSettings(**values),  # type: ignore[arg-type]
        sink,
        metrics,
        clock=clock,
        backoff=backoff or Backoff(base_s=0.02, max_s=0.2, rng=random.Random(3)),
        rest=rest,
    )


@contextlib.asynccontextmanager
async def running(role: IngestRole) -> AsyncIterator[asyncio.Task[None]]:
    task = asyncio.create_task(role.run())
    try:
        yield task
    finally:
        role.stop()
        await asyncio.wait_for(task, HANG_GUARD_S)


CLOSED_BY_THE_CLIENT = frozenset({"client closed", "send failed"})
"""How the exchange records a socket the role closed: ``send failed`` when it was sending a
frame as the close came in (at 20x it nearly always is; which one wins is the machine's
timing). Any other reason is a cut by the exchange."""


def closed_by_the_client(exchange: LocalExchange, count: int) -> bool:
    """Whether ``count`` sockets have ended on the exchange, every one closed by the role."""
    reasons = exchange.hub.closed_reasons
    return sum(reasons.values()) == count and set(reasons) <= CLOSED_BY_THE_CLIENT


class AheadClock(SystemClock):
    """The real clocks, with monotonic time that the test can move ahead (a long pause)."""

    def __init__(self) -> None:
        self.ahead_s = 0.0

    def monotonic(self) -> float:
        return time.monotonic() + self.ahead_s


def sample(metrics: Metrics, name: str, **labels: str) -> float:
    return metrics.registry.get_sample_value(name, labels) or 0.0


def reconnects(metrics: Metrics, reason: str) -> float:
    return sample(metrics, "btc_reconnects_total", reason=reason)


def all_reconnects(metrics: Metrics) -> float:
    reasons = ("error", "closed", "shutdown", "lifetime", "silence")
    return sum(reconnects(metrics, reason) for reason in reasons)


def assert_increasing(ids: list[int]) -> None:
    repeats = [(a, b) for a, b in pairwise(ids) if b <= a]
    assert not repeats, f"published twice or out of order: {repeats[:5]}"


def assert_trade_gaps_are_exactly_the_missing_ids(trades: list[Trade], gaps: list[GapRecord]):
    """Every id the sink never got is in a trade gap record, and nothing else is."""
    ids = [trade.trade_id for trade in trades]
    assert_increasing(ids)
    missing = set(range(ids[0], ids[-1] + 1)) - set(ids)
    recorded: set[int] = set()
    by_id = {trade.trade_id: trade for trade in trades}
    for record in gaps:
        assert record.first_id is not None
        assert record.last_id is not None
        recorded.update(range(record.first_id, record.last_id + 1))
        # The time range runs from the trade before the hole to the trade after it.
        assert record.first_time_us == by_id[record.first_id - 1].transact_time_us
        assert record.last_time_us == by_id[record.last_id + 1].transact_time_us
    assert recorded == missing


def tape_ids(exchange: LocalExchange) -> set[int]:
    return set(exchange.market.tape.trades().trade_id.tolist())


async def test_every_trade_is_published_once_in_id_order_with_the_book_streams() -> None:
    sink, metrics = ListSink(), Metrics()
    async with local_exchange() as ex:
        role = ingest_role(ex, sink, metrics)
        async with running(role):
            await sink.wait_until(lambda: len(sink.trades) >= 300 and len(sink.depth20) >= 20)
        tape = tape_ids(ex)
    ids = [trade.trade_id for trade in sink.trades]
    assert ids == list(range(ids[0], ids[0] + len(ids)))
    assert set(ids) <= tape
    assert sink.gaps == []
    diffs = sink.diffs
    assert all(b.first_update_id == a.last_update_id + 1 for a, b in pairwise(diffs))
    assert_increasing([snapshot.last_update_id for snapshot in sink.depth20])
    assert_increasing([quote.book_update_id for quote in sink.events("bba")])
    assert {kind for kind, _ in sink.published} == {"trade", "bba", "depth"}
    # One publish per frame: the sim sends one trade a frame.
    assert all(len(events) == 1 for _, events in sink.published)
    assert sample(metrics, "btc_events_total", stream="trade") == len(ids)
    assert sample(metrics, "btc_events_total", stream="depth") == len(diffs)
    assert sample(metrics, "btc_stream_last_message_timestamp_seconds", stream="trade") > 0
    assert all_reconnects(metrics) == 0
    assert role.connections_opened == 1


async def test_a_disconnect_reconnects_and_records_exactly_the_trade_ids_it_missed() -> None:
    sink, metrics = ListSink(), Metrics()
    async with local_exchange(seed=12) as ex:
        role = ingest_role(ex, sink, metrics)
        async with running(role):
            await sink.wait_until(lambda: len(sink.trades) >= 100)
            ex.apply_fault(parse_fault({"fault": "disconnect"}))
            before = len(sink.trades)
            await sink.wait_until(
                lambda: reconnects(metrics, "error") == 1 and len(sink.trades) >= before + 150
            )
            assert ex.hub.closed_reasons == {"disconnect fault": 1}
        tape = tape_ids(ex)
    trades = sink.trades
    assert_trade_gaps_are_exactly_the_missing_ids(trades, sink.gaps_of("trade"))
    ids = [trade.trade_id for trade in trades]
    # What went missing was really traded (not an artefact of the role).
    assert set(range(ids[0], ids[-1] + 1)) <= tape
    assert sample(metrics, "btc_gaps_total", kind="trade") == len(sink.gaps_of("trade"))
    assert role.connections_opened == 2


async def test_server_shutdown_hands_over_to_a_new_connection_without_loss_or_repeat() -> None:
    sink, metrics = ListSink(), Metrics()
    async with local_exchange(seed=13) as ex:
        role = ingest_role(ex, sink, metrics)
        async with running(role):
            await sink.wait_until(lambda: len(sink.trades) >= 100)
            ex.apply_fault(parse_fault({"fault": "server_shutdown"}))
            await eventually(lambda: closed_by_the_client(ex, 1), "the old one closed")
            before = len(sink.trades)
            await sink.wait_until(lambda: len(sink.trades) >= before + 100)
            assert len(ex.hub.connections) == 1
    ids = [trade.trade_id for trade in sink.trades]
    assert ids == list(range(ids[0], ids[0] + len(ids)))
    assert sink.gaps == []
    diffs = sink.diffs
    assert all(b.first_update_id == a.last_update_id + 1 for a, b in pairwise(diffs))
    assert reconnects(metrics, "shutdown") == 1
    assert all_reconnects(metrics) == 1
    assert role.connections_opened == ex.hub.connections_opened == 2
    # Whether the two connections' frames overlapped at the switch (and were dropped by id)
    # depends on which reader the loop ran first: the ids above show nothing was repeated
    # either way; test_handover and test_dedup cover the drop itself.


async def test_connections_are_replaced_at_their_maximum_age_without_loss_or_repeat() -> None:
    sink, metrics = ListSink(), Metrics()
    async with local_exchange(seed=14) as ex:
        role = ingest_role(ex, sink, metrics, max_connection_age_s=0.4)
        async with running(role):
            await sink.wait_until(lambda: reconnects(metrics, "lifetime") >= 3)
            before = len(sink.trades)
            await sink.wait_until(lambda: len(sink.trades) >= before + 50)
        # Every socket, the last one too once the role stopped, ended on the exchange.
        await eventually(
            lambda: sum(ex.hub.closed_reasons.values()) >= role.connections_opened, "every end"
        )
        closed = dict(ex.hub.closed_reasons)
    ids = [trade.trade_id for trade in sink.trades]
    assert ids == list(range(ids[0], ids[0] + len(ids)))
    assert sink.gaps == []
    assert all(b.first_update_id == a.last_update_id + 1 for a, b in pairwise(sink.diffs))
    assert all_reconnects(metrics) == reconnects(metrics, "lifetime")
    # Each old connection was closed by the role, never cut by the exchange.
    assert set(closed) <= CLOSED_BY_THE_CLIENT


SILENCE_S = 30.0
"""Only the role's clock, moved ahead, goes this long without a trade: no pause of a loaded
machine does, so the one silence is the one the test makes."""


async def test_a_silent_trade_stream_is_a_gap_and_gets_a_new_connection() -> None:
    sink, metrics, clock = ListSink(), Metrics(), AheadClock()
    async with local_exchange(seed=15) as ex:
        role = ingest_role(ex, sink, metrics, clock=clock, silence_s=SILENCE_S)
        async with running(role):
            await sink.wait_until(lambda: len(sink.trades) >= 100)
            last_before = sink.trades[-1]
            stream = ex.stream("trade")
            # Held until cleared: the trade stream goes quiet while the book streams go on.
            ex.apply_fault(parse_fault({"fault": "stall", "stream": stream, "seconds": 3600}))
            held = ex.hub.faults[stream].stalled
            await eventually(lambda: bool(held), "a trade held back by the stall")
            last_sent = decode(held[0]).trades[0].trade_id - 1
            await sink.wait_until(lambda: sink.trades[-1].trade_id == last_sent)
            clock.ahead_s += SILENCE_S  # no trade can arrive now: the role's clock runs on
            await sink.wait_until(lambda: reconnects(metrics, "silence") == 1)
            ex.apply_fault(parse_fault({"fault": "clear"}))
            await sink.wait_until(lambda: len(sink.trades) >= 300)
    silences = sink.gaps_of("silence")
    assert len(silences) == 1
    (silence,) = silences
    assert (silence.first_id, silence.last_id) == (None, None)
    # The stall began after the last trade seen then, or just after it.
    assert silence.first_time_us >= last_before.transact_time_us
    assert silence.last_time_us - silence.first_time_us >= SILENCE_S * 1_000_000
    assert sample(metrics, "btc_gaps_total", kind="silence") == 1
    # The stalled trades came later, all of them, once.
    ids = [trade.trade_id for trade in sink.trades]
    assert ids == list(range(ids[0], ids[0] + len(ids)))
    assert sink.gaps_of("trade") == []


async def test_truncated_frames_are_counted_and_skipped_and_their_trades_are_a_gap() -> None:
    sink, metrics = ListSink(), Metrics()
    async with local_exchange(seed=16) as ex:
        role = ingest_role(ex, sink, metrics)
        async with running(role):
            await sink.wait_until(lambda: len(sink.trades) >= 50)
            ex.apply_fault(
                parse_fault({"fault": "truncate", "stream": ex.stream("trade"), "count": 2})
            )
            await sink.wait_until(lambda: len(sink.trades) >= 200)
            assert role.connected
    assert sample(metrics, "btc_decode_errors_total", error="TruncatedFrame") == 2
    (gap,) = sink.gaps_of("trade")
    assert gap.last_id == gap.first_id + 1  # one trade a frame: two trades lost
    assert_trade_gaps_are_exactly_the_missing_ids(sink.trades, [gap])
    assert all_reconnects(metrics) == 0


def _patched(frame: bytes, offset: int, value: int) -> bytes:
    patched = bytearray(frame)
    struct.pack_into("<H", patched, offset, value)
    return bytes(patched)


async def test_frames_of_an_unknown_template_or_schema_are_counted_and_skipped() -> None:
    sink, metrics = ListSink(), Metrics()
    async with local_exchange(seed=17) as ex:
        role = ingest_role(ex, sink, metrics)
        async with running(role):
            await sink.wait_until(lambda: len(sink.trades) >= 50)
            last = sink.trades[-1]
            # A trade the exchange never made, so a skipped frame cannot hide a real trade.
            fake = TradeBatch(
                ex.symbol,
                last.event_time_us,
                last.transact_time_us,
                (last._replace(trade_id=last.trade_id + 10**9),),
            )
            frame = encode(fake)
            stream = ex.stream("trade")
            # Header: blockLength, templateId, schemaId, version (uint16 LE each).
            await ex.hub.publish(stream, _patched(frame, 2, 9999), backpressure=False)
            await ex.hub.publish(stream, _patched(frame, 4, 2), backpressure=False)
            await ex.hub.publish(stream, b"\x12\x00", backpressure=False)
            await ex.hub.publish(stream, '{"result":null,"id":1}', backpressure=False)  # type: ignore[arg-type]
            before = len(sink.trades)
            await sink.wait_until(lambda: len(sink.trades) >= before + 100)
            assert role.connected
    for error in ("UnknownTemplate", "SchemaMismatch", "TruncatedFrame"):
        assert sample(metrics, "btc_decode_errors_total", error=error) == 1, error
    ids = [trade.trade_id for trade in sink.trades]
    assert ids == list(range(ids[0], ids[0] + len(ids)))
    assert sink.gaps == []
    assert all_reconnects(metrics) == 0


async def test_dropped_depth_diffs_are_a_depth_gap_of_their_update_ids() -> None:
    sink, metrics = ListSink(), Metrics()
    async with local_exchange(seed=18) as ex:
        role = ingest_role(ex, sink, metrics)
        async with running(role):
            await sink.wait_until(lambda: len(sink.diffs) >= 30)
            ex.apply_fault(parse_fault({"fault": "drop", "stream": ex.stream("depth"), "count": 3}))
            await sink.wait_until(lambda: len(sink.diffs) >= 100)
    diffs = sink.diffs
    jumps = [(a, b) for a, b in pairwise(diffs) if b.first_update_id != a.last_update_id + 1]
    assert len(jumps) == 1
    before, after = jumps[0]
    (gap,) = sink.gaps_of("depth")
    assert gap == GapRecord(
        "depth",
        before.event_time_us,
        after.event_time_us,
        before.last_update_id + 1,
        after.first_update_id - 1,
        gap.detected_us,
    )
    assert gap.to_fields()["kind"] == "depth"
    assert sink.gaps_of("trade") == []
    assert sample(metrics, "btc_gaps_total", kind="depth") == 1


async def test_without_an_api_key_the_exchange_refuses_and_the_role_keeps_trying(
    caplog: pytest.LogCaptureFixture,
) -> None:
    sink, metrics = ListSink(), Metrics()
    backoff = Backoff(base_s=0.01, max_s=0.05, rng=random.Random(1))
    caplog.set_level(logging.WARNING, logger="realtime.ingest")
    async with local_exchange(seed=19) as ex:
        role = ingest_role(ex, sink, metrics, backoff=backoff, binance_api_key=None)
        async with running(role) as task:
            await eventually(lambda: backoff.attempts >= 3, "three refused attempts")
            assert not task.done()
        assert ex.hub.connections_opened == 0
    assert role.connections_opened == 0
    assert sink.published == []
    refusals = [r for r in caplog.records if r.getMessage() == "stream connection failed"]
    assert len(refusals) >= 3
    assert all(r.error == "HTTP 400 at the handshake" for r in refusals)  # type: ignore[attr-defined]


async def test_the_api_key_goes_in_the_header_and_never_into_the_logs(
    caplog: pytest.LogCaptureFixture,
) -> None:
    secret = "key-that-must-not-be-logged-4711"
    sink, metrics = ListSink(), Metrics()
    caplog.set_level(logging.DEBUG)
    async with local_exchange(seed=20) as ex:
        role = ingest_role(ex, sink, metrics, binance_api_key=secret)
        async with running(role):
            # The exchange refuses a handshake without the header: trades prove it was sent.
            await sink.wait_until(lambda: len(sink.trades) >= 20)
            ex.apply_fault(parse_fault({"fault": "disconnect"}))
            await sink.wait_until(lambda: role.connections_opened == 2 and len(sink.trades) >= 60)
    assert caplog.records
    for record in caplog.records:
        assert secret not in record.getMessage()
        assert secret not in repr(vars(record))


async def test_stop_closes_the_connection_and_returns() -> None:
    sink, metrics = ListSink(), Metrics()
    async with local_exchange(seed=21) as ex:
        role = ingest_role(ex, sink, metrics)
        async with running(role) as task:
            await sink.wait_until(lambda: len(sink.trades) >= 10)
            assert len(ex.hub.connections) == 1
        assert task.done()
        assert not role.connected
        await eventually(lambda: not ex.hub.connections, "the exchange's side closed")
        assert closed_by_the_client(ex, 1), ex.hub.closed_reasons


async def test_pings_are_answered_while_frames_pour_in() -> None:
    sink, metrics = ListSink(), Metrics()
    # Twenty pings a second. What is tested is that every ping is answered while frames
    # keep coming, not how fast: the pong timeout is generous, so a loaded machine cannot
    # fail it, and the exchange counts the pings it sent and the pongs it got.
    rules = {"ping_interval_s": 0.05, "pong_timeout_s": 30.0, "max_client_messages_per_s": 100}
    async with local_exchange(seed=22, **rules) as ex:
        role = ingest_role(ex, sink, metrics)
        async with running(role):
            await sink.wait_until(lambda: len(sink.trades) >= 200 and ex.hub.pings_sent >= 20)
            pings = ex.hub.pings_sent
            await sink.wait_until(lambda: ex.hub.pongs_received >= pings)
            assert ex.hub.closed_reasons == {}
    assert role.connections_opened == 1
    assert all_reconnects(metrics) == 0


async def test_a_connection_the_exchange_closes_is_reopened_and_the_hole_recorded() -> None:
    sink, metrics = ListSink(), Metrics()
    # The exchange's own lifetime cut, before ours would replace the connection.
    async with local_exchange(seed=23, max_lifetime_s=0.5) as ex:
        role = ingest_role(ex, sink, metrics)
        async with running(role):
            await sink.wait_until(lambda: reconnects(metrics, "closed") >= 2)
            before = len(sink.trades)
            await sink.wait_until(lambda: len(sink.trades) >= before + 20)
        assert ex.hub.closed_reasons["lifetime reached"] >= 2
    assert_trade_gaps_are_exactly_the_missing_ids(sink.trades, sink.gaps_of("trade"))
    assert all_reconnects(metrics) == reconnects(metrics, "closed")


def rejected(metrics: Metrics, kind: str) -> float:
    return sample(metrics, "btc_rejected_input_total", source="ingest", kind=kind)


FRAMES_AFTER_FAULT = 1500
"""About 200 trades at the test market's pace: the lie is long behind by then."""


async def test_a_trade_id_far_ahead_is_rejected_and_later_trades_are_not_duplicates() -> None:
    """Issue 15, finding 7: a lying trade id made every later real trade a "duplicate"."""
    sink, metrics = ListSink(), Metrics()
    async with local_exchange(seed=15) as ex:
        role = ingest_role(ex, sink, metrics)
        async with running(role):
            await sink.wait_until(lambda: len(sink.trades) >= 100)
            fault = {"fault": "id_jump", "stream": "btcusdt@trade", "count": 1, "jump": 10**12}
            ex.apply_fault(parse_fault(fault))
            before, frames = len(sink.trades), len(sink.published)
            await sink.wait_until(lambda: len(sink.published) >= frames + FRAMES_AFTER_FAULT)
            trades = sink.trades
            assert {trade.trade_id for trade in trades} <= tape_ids(ex)  # the lie stayed out
            assert sample(metrics, "btc_duplicate_events_total", stream="trade") == 0
            assert len(trades) >= before + 100  # later real trades keep coming
            await eventually(lambda: rejected(metrics, "id_jump") == 1, "the lie counted")
    # The lying frame's one trade is a gap of one id, recovered downstream like any other.
    assert_trade_gaps_are_exactly_the_missing_ids(trades, sink.gaps_of("trade"))
    (gap,) = sink.gaps_of("trade")
    assert gap.first_id == gap.last_id


@pytest.mark.parametrize(
    ("shift_s", "kind"), [(86_400, "time_ahead"), (-365 * 86_400, "time_behind")]
)
async def test_a_trade_stamped_far_from_the_exchanges_clock_is_rejected(shift_s, kind) -> None:
    """Issue 15, finding 1: one trade a day ahead was published as "exchange now"."""
    sink, metrics = ListSink(), Metrics()
    async with local_exchange(seed=16) as ex:
        role = ingest_role(ex, sink, metrics)
        async with running(role):
            await sink.wait_until(lambda: len(sink.trades) >= 100)
            fault = {"fault": "time_shift", "stream": "btcusdt@trade", "count": 1}
            ex.apply_fault(parse_fault(fault | {"shift_s": shift_s}))
            before, frames = len(sink.trades), len(sink.published)
            await sink.wait_until(lambda: len(sink.published) >= frames + FRAMES_AFTER_FAULT)
            tape = ex.market.tape.trades()
            tape_times = dict(zip(tape.trade_id.tolist(), tape.time_us.tolist(), strict=True))
            trades = sink.trades
            assert all(trade.transact_time_us == tape_times[trade.trade_id] for trade in trades)
            assert len(trades) >= before + 100
            await eventually(lambda: rejected(metrics, kind) == 1, "the lie counted")
    assert_trade_gaps_are_exactly_the_missing_ids(trades, sink.gaps_of("trade"))
    (gap,) = sink.gaps_of("trade")
    assert gap.last_time_us - gap.first_time_us < 60_000_000  # not a day-long (or year) range


async def test_with_rest_unreachable_the_stream_is_published_all_the_same() -> None:
    """Issue 15 review: with REST down (an outage, an IP ban) every first event was doubted
    and held, then everything after it: ingest published nothing while the stream worked.
    The stream's own held events now settle the first doubts by their consensus."""
    sink, metrics = ListSink(), Metrics()
    unreachable = BinanceRestClient("http://127.0.0.1:1", retry=RetryPolicy(max_attempts=1))
    async with local_exchange(seed=17) as ex, unreachable:
        role = ingest_role(ex, sink, metrics, rest=unreachable)
        async with running(role):
            await sink.wait_until(lambda: len(sink.trades) >= 100)
        trades = sink.trades
    assert {trade.trade_id for trade in trades} <= tape_ids(ex)
    assert_increasing([trade.trade_id for trade in trades])
    assert role.quarantine.settled_by["consensus"] >= 2  # the first time, the first trade id
    assert role.quarantine.settled_by["rest"] == 0
    assert role.quarantine.rejected == 0


async def test_a_rest_client_passed_in_is_left_open() -> None:
    """Issue 15 review: ingest closed the REST client its caller owns (and still uses)."""
    sink, metrics = ListSink(), Metrics()
    async with local_exchange(seed=18) as ex, BinanceRestClient(ex.rest_url) as rest:
        await rest.server_time_us()
        session = rest._session  # the caller's connection pool
        role = ingest_role(ex, sink, metrics, rest=rest)
        async with running(role):
            await sink.wait_until(lambda: len(sink.trades) >= 10)
        assert session is not None
        assert rest._session is session
        assert not session.closed
