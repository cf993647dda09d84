"""Replaying the recorded JSON combined-stream capture as a market source."""

from __future__ import annotations

import gzip
import itertools
import json
from pathlib import Path

import pyarrow as pa
import pytest

from realtime.binance.archive_csv import read_table
from realtime.binance.sbe import decode, encode
from realtime.market.events import BestBidAsk, DepthDiff, TradeBatch
from realtime.sim.capture_replay import (
    MAX_KEPT_LINE_ERRORS,
    CaptureFormatError,
    CaptureLineError,
    CaptureReader,
    CaptureReplay,
    TradeRecord,
)
from realtime.sim.captures import book_ticker_csv

CAPTURE_DIR = Path(__file__).parents[2] / "fixtures" / "binance_capture_2023-04-05"
CAPTURE = CAPTURE_DIR / "capture_json_stream.dat.gz"
FIRST_TRADE_ID = 3_071_245_454
LAST_TRADE_ID = 3_071_248_597


@pytest.fixture(scope="module")
def events():
    return list(CaptureReplay(CAPTURE).events())


def _of(events, kind):
    return [event for event in events if type(event) is kind]


def _columns_as_ints(table: pa.Table, name: str) -> list[int]:
    column = table.column(name)
    if pa.types.is_timestamp(column.type):
        column = column.cast(pa.int64())
    return column.to_pylist()


def test_trades_equal_the_trades_archive(events):
    trades = [trade for batch in _of(events, TradeBatch) for trade in batch.trades]
    assert len(trades) == 3_144
    assert [trade.trade_id for trade in trades] == list(range(FIRST_TRADE_ID, LAST_TRADE_ID + 1))

    archive = read_table(CAPTURE_DIR / "BTCUSDT-trades-2023-04-05.zip", "trades")
    assert archive.num_rows == 3_144
    assert [trade.trade_id for trade in trades] == archive.column("trade_id").to_pylist()
    assert [trade.price_e8 for trade in trades] == _columns_as_ints(archive, "price_e8")
    assert [trade.qty_e8 for trade in trades] == _columns_as_ints(archive, "qty_e8")
    assert [trade.is_buyer_maker for trade in trades] == archive.column(
        "is_buyer_maker"
    ).to_pylist()
    assert [trade.transact_time_us for trade in trades] == _columns_as_ints(
        archive, "transact_time"
    )
    assert [trade.is_best_match for trade in trades] == archive.column("is_best_match").to_pylist()
    assert {trade.symbol for trade in trades} == {"BTCUSDT"}


def test_trades_are_batched_by_taker_match(events):
    batches = _of(events, TradeBatch)
    assert len(batches) == 2_269
    assert max(len(batch.trades) for batch in batches) > 1
    for batch in batches:
        ids = [trade.trade_id for trade in batch.trades]
        assert ids == list(range(ids[0], ids[0] + len(ids)))
        assert {trade.is_buyer_maker for trade in batch.trades} == {batch.trades[0].is_buyer_maker}
        assert {(trade.transact_time_us, trade.event_time_us) for trade in batch.trades} == {
            (batch.transact_time_us, batch.event_time_us)
        }
    # The first message: E 1680652800000 ms, T 1680652799999 ms.
    assert (batches[0].event_time_us, batches[0].transact_time_us) == (
        1_680_652_800_000_000,
        1_680_652_799_999_000,
    )

    # Every batch is one taker order's run of trades at one time, and no run is split.
    records = [record for record in CaptureReader(CAPTURE) if type(record) is TradeRecord]
    taker_of = {record.trade.trade_id: record.taker_order_id for record in records}
    time_of = {record.trade.trade_id: record.trade.transact_time_us for record in records}
    for batch in batches:
        assert len({taker_of[trade.trade_id] for trade in batch.trades}) == 1
    for before, after in itertools.pairwise(batches):
        last, first = before.trades[-1].trade_id, after.trades[0].trade_id
        assert (taker_of[last], time_of[last]) != (taker_of[first], time_of[first])


def test_best_bid_asks_equal_the_book_ticker_csv(events):
    quotes = _of(events, BestBidAsk)
    assert len(quotes) == 8_015
    table = book_ticker_csv(CAPTURE_DIR / "bookTicker.csv")
    columns = [
        "event_time",
        "book_update_id",
        "bid_price_e8",
        "bid_qty_e8",
        "ask_price_e8",
        "ask_qty_e8",
    ]
    expected = list(zip(*(_columns_as_ints(table, name) for name in columns), strict=True))
    assert [tuple(quote[1:]) for quote in quotes] == expected
    assert {quote.symbol for quote in quotes} == {"BTCUSDT"}


def test_depth_diffs_chain_from_the_initial_book(events):
    diffs = _of(events, DepthDiff)
    assert len(diffs) == 3_929
    book = CaptureReplay(CAPTURE).initial_book()
    assert (book.symbol, book.bids, book.asks) == ("BTCUSDT", (), ())
    assert book.last_update_id == diffs[0].first_update_id - 1 == 36_090_299_858
    previous = book.last_update_id
    for diff in diffs:
        assert diff.first_update_id == previous + 1
        assert diff.first_update_id <= diff.last_update_id
        previous = diff.last_update_id
    assert all(qty >= 0 for diff in diffs for _, qty in diff.bids + diff.asks)
    assert max(len(diff.bids) + len(diff.asks) for diff in diffs) > 100


def test_events_are_in_event_time_order_and_streams_in_recorded_order(events):
    times = [event.event_time_us for event in events]
    assert times == sorted(times)
    assert len(events) == 2_269 + 8_015 + 3_929
    update_ids = [quote.book_update_id for quote in _of(events, BestBidAsk)]
    assert update_ids == sorted(update_ids)
    # Receive order is not event-time order: a bookTicker (receive time) recorded before a
    # trade is replayed after it when the trade's exchange time is earlier.
    assert type(events[0]) is TradeBatch
    replay = CaptureReplay(CAPTURE)
    assert replay.symbol == "BTCUSDT"
    list(iter(replay.next_events, None))
    assert (replay.skipped_lines, replay.event_time_regressions) == (0, 0)


def test_every_event_round_trips_through_sbe(events):
    for event in events:
        decoded = decode(encode(event))
        assert type(decoded) is type(event)
        if type(event) is TradeBatch:
            assert decoded[:3] == event[:3]
            assert len(decoded.trades) == len(event.trades)
            for got, sent in zip(decoded.trades, event.trades, strict=True):
                assert got == sent
        else:
            assert decoded == event


def test_slices_cover_the_capture_deterministically(events):
    def slices(slice_us: int) -> list[list]:
        replay = CaptureReplay(CAPTURE, slice_us=slice_us)
        out = list(iter(replay.next_events, None))
        assert replay.next_events() is None
        return out

    seconds = slices(1_000_000)
    assert seconds == slices(1_000_000)
    assert len(seconds) == 415  # 00:00:00 -> 00:06:54 UTC
    assert [event for chunk in seconds for event in chunk] == events
    start = events[0].event_time_us - events[0].event_time_us % 1_000_000
    for k, chunk in enumerate(seconds):
        assert all(
            start + k * 1_000_000 <= event.event_time_us < start + (k + 1) * 1_000_000
            for event in chunk
        )
    quarter_seconds = slices(250_000)
    assert len(quarter_seconds) > 4 * 400
    assert [] in quarter_seconds  # quiet stretches are empty slices, not skipped
    assert [event for chunk in quarter_seconds for event in chunk] == events


def _head_lines(count: int) -> list[str]:
    with gzip.open(CAPTURE, "rt") as file:
        return [next(file).rstrip("\n") for _ in range(count)]


def _write(path: Path, lines: list[str]) -> Path:
    with gzip.open(path, "wt") as file:
        file.write("".join(line + "\n" for line in lines))
    return path


def _trade_line(**changes) -> str:
    data = {
        "e": "trade",
        "E": 1680652800000,
        "s": "BTCUSDT",
        "t": 1,
        "p": "28165.47000000",
        "q": "0.00056000",
        "b": 20,
        "a": 30,
        "T": 1680652799999,
        "m": True,
        "M": True,
    }
    data.update(changes)
    return f"1680652800004107 {json.dumps({'stream': 'btcusdt@trade', 'data': data})}"


BAD_LINES = [
    "1680652800004107 {not json",
    '1680652800004107 {"stream":"btcusdt@kline_1m","data":{"s":"BTCUSDT"}}',
    _trade_line(q=None).replace(', "q": null', ""),  # missing field
    _trade_line(p="28165.470000001"),  # nine decimals
    _trade_line(p=28165.47),  # a JSON number, already rounded
    _trade_line(s="ETHUSDT").replace("btcusdt@trade", "ethusdt@trade"),  # another symbol
    "soon " + _trade_line()[17:],
    "",
]


def test_bad_lines_are_counted_and_skipped(tmp_path):
    good = _head_lines(40)
    lines = [good[0], *BAD_LINES[:4], *good[1:20], *BAD_LINES[4:], *good[20:]]
    path = _write(tmp_path / "capture.dat.gz", lines)

    replay = CaptureReplay(path)
    replayed = [event for chunk in iter(replay.next_events, None) for event in chunk]
    assert replayed == list(CaptureReplay(_write(tmp_path / "good.dat.gz", good)).events())
    assert replay.skipped_lines == len(BAD_LINES)
    assert [error.line_number for error in replay.line_errors] == [2, 3, 4, 5, 25, 26, 27, 28]
    assert all(isinstance(error, CaptureLineError) for error in replay.line_errors)
    reasons = [error.reason for error in replay.line_errors]
    assert "not JSON" in reasons[0]
    assert "unknown stream 'btcusdt@kline_1m'" in reasons[1]
    assert "missing field 'q'" in reasons[2]
    assert "more than 8 decimal places" in reasons[3]
    assert "'p' = 28165.47 is not a string" in reasons[4]
    assert "symbol ETHUSDT, the capture is of BTCUSDT" in reasons[5]
    assert "receive time 'soon'" in reasons[6]


@pytest.mark.parametrize("bad_line", BAD_LINES)
def test_strict_mode_raises_naming_the_line(tmp_path, bad_line):
    good = _head_lines(40)
    path = _write(tmp_path / "capture.dat.gz", [*good[:35], bad_line, *good[35:]])
    replay = CaptureReplay(path, strict=True)  # the bad line is after the first diff
    with pytest.raises(CaptureFormatError, match=r"capture\.dat\.gz:36: ") as raised:
        list(iter(replay.next_events, None))
    assert raised.value.line_number == 36
    assert raised.value.path == path


def test_only_the_first_reasons_are_kept(tmp_path):
    lines = [*_head_lines(40), *["1680652800004107 {not json"] * (MAX_KEPT_LINE_ERRORS + 5)]
    replay = CaptureReplay(_write(tmp_path / "capture.dat.gz", lines))
    list(iter(replay.next_events, None))
    assert replay.skipped_lines == MAX_KEPT_LINE_ERRORS + 5
    assert len(replay.line_errors) == MAX_KEPT_LINE_ERRORS


def test_a_capture_cut_mid_write_replays_up_to_the_cut(tmp_path):
    whole = _write(tmp_path / "whole.dat.gz", _head_lines(400)).read_bytes()
    cut = tmp_path / "cut.dat.gz"
    cut.write_bytes(whole[: len(whole) * 3 // 4])
    replay = CaptureReplay(cut)
    replayed = [event for chunk in iter(replay.next_events, None) for event in chunk]
    assert 0 < len(replayed) < len(list(CaptureReplay(tmp_path / "whole.dat.gz").events()))
    assert replay.skipped_lines >= 1
    assert "the file ends or breaks here" in replay.line_errors[-1].reason
    with pytest.raises(CaptureFormatError):
        list(CaptureReplay(cut, strict=True).events())


def test_trade_messages_group_into_taker_matches(tmp_path):
    book_ticker = (
        '1680652800004231 {"stream":"btcusdt@bookTicker","data":{"u":7,"s":"BTCUSDT",'
        '"b":"1.00000000","B":"1.00000000","a":"2.00000000","A":"1.00000000"}}'
    )
    lines = [
        _trade_line(t=1, a=30, b=20),
        book_ticker,  # another stream in between does not split a match
        _trade_line(t=2, a=30, b=21, p="28165.46000000"),
        _trade_line(t=3, a=30, b=22, T=1680652800000),  # same taker, later time
        _trade_line(t=4, a=31, b=22, T=1680652800000),  # another taker
        _trade_line(t=5, a=31, b=22, T=1680652800000, m=False),  # taker is now the buyer
        _trade_line(t=7, a=31, b=22, T=1680652800000, m=False),  # id gap
    ]
    replay = CaptureReplay(_write(tmp_path / "capture.dat.gz", lines))
    batches = [event for event in replay.events() if type(event) is TradeBatch]
    assert [[trade.trade_id for trade in batch.trades] for batch in batches] == [
        [1, 2],
        [3],
        [4],
        [5],
        [7],
    ]
    # No diff in the capture: the initial book cannot know an update id.
    assert replay.initial_book().last_update_id == 0


def test_a_stream_going_back_in_time_keeps_its_recorded_order(tmp_path):
    lines = [
        _trade_line(t=1, b=21, E=1680652800005, T=1680652800005),
        _trade_line(t=2, b=22, E=1680652800001, T=1680652800001),  # earlier than trade 1
        _trade_line(t=3, b=23, E=1680652800009, T=1680652800009),
    ]
    replay = CaptureReplay(_write(tmp_path / "capture.dat.gz", lines))
    replayed = [event for chunk in iter(replay.next_events, None) for event in chunk]
    assert [batch.trades[0].trade_id for batch in replayed] == [1, 2, 3]
    assert replayed[1].event_time_us == 1_680_652_800_001_000  # its own time, not changed
    assert replay.event_time_regressions == 1


def test_a_capture_without_messages_is_refused(tmp_path):
    path = _write(tmp_path / "empty.dat.gz", ["1680652800004107 {not json"])
    with pytest.raises(CaptureFormatError, match="no well-formed message"):
        CaptureReplay(path)


def test_plain_text_captures_replay_too(tmp_path, events):
    path = tmp_path / "capture.dat"
    path.write_text("\n".join(_head_lines(100)) + "\n")
    assert list(CaptureReplay(path).events()) == list(
        CaptureReplay(_write(tmp_path / "capture.dat.gz", _head_lines(100))).events()
    )


def test_slice_length_must_be_positive():
    with pytest.raises(ValueError, match="slice_us"):
        CaptureReplay(CAPTURE, slice_us=0)
