"""Replay a recorded Binance JSON combined-stream capture as a ``MarketSource``.

A capture is text, gzip or not, one message a line: ``<local receive time, us> <json>``,
the JSON being the combined-stream envelope ``{"stream": ..., "data": ...}`` of one of
``<symbol>@trade``, ``<symbol>@bookTicker`` and ``<symbol>@depth@100ms`` (or ``@depth``).
``CaptureReader`` turns the lines into typed records in file (receive) order;
``CaptureReplay`` turns those into the events the local exchange plays.

What the replay makes of each stream:

- ``@trade``: the JSON stream sends one message per trade, SBE one per taker match. Consecutive
  trade messages (other streams' lines in between do not matter) of the same taker order
  (the seller ``a`` if ``m``, the buyer being the maker, else the buyer ``b``), the same
  transact time ``T`` and consecutive ids form one ``TradeBatch``. Its event time is its first
  message's ``E`` and every trade in it carries that time, as a decoded SBE batch does;
  times are ``E``/``T`` ms x 1000. ``M`` becomes ``is_best_match``.
- ``@bookTicker``: spot bookTicker carries no exchange time, so ``event_time_us`` is the
  local receive time, the only clock the capture has (as in ``captures.book_ticker_csv``).
  It lags exchange time by the network latency (0.6 to 115 ms in the 2023-04-05
  capture).
- ``@depth``: one ``DepthDiff`` per message, ``E`` ms x 1000, ``U``/``u`` and the levels as
  recorded, quantities absolute.

Order and slices: the three streams are merged by event time, each stream kept in its
recorded order, ties broken by receive order. Receive order itself cannot be kept: the
bookTicker clock (receive time) lags the exchange clock, so in receive order event time
goes backwards (1,590 times in the 2023-04-05 capture), while the exchange paces by event
time and ``MarketSource`` promises it non-decreasing. Within each stream the recorded
event times are non-decreasing (checked on that capture), so the recorded per-stream order
is exactly kept. Should a stream's time ever go back, the event stays in its recorded place
(paced at the stream's latest time so far, carrying its own time) and is counted in
``event_time_regressions``. Slices are ``slice_us`` of that pacing time, aligned to
multiples of ``slice_us`` since the epoch.

The capture has no REST snapshot: ``initial_book()`` is empty, at the first diff's
``U - 1``, so the exchange's book is the union of the levels the diffs have touched so far
(deep levels never updated during the capture are missing, and the top may be thin at first).

Bad lines (not JSON, an unknown stream, a missing or mistyped field, a bad decimal, another
symbol than the capture's) are counted and skipped, the first few kept with their line
numbers; ``strict=True`` raises ``CaptureFormatError`` instead. A gzip file cut short (a
capture stopped mid-write) ends the replay at the last whole line, counted the same way.
"""

from __future__ import annotations

import gzip
import heapq
import json
import zlib
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import IO, Any, NamedTuple

from realtime.market.events import (
    BestBidAsk,
    DepthDiff,
    DepthSnapshot,
    PriceLevel,
    Trade,
    TradeBatch,
)
from realtime.market.fixed_point import INT64_MAX, parse_e8
from realtime.sim.source import SourceEvent

DEFAULT_FIRST_AGG_TRADE_ID = 2_000_000_000
"""Not Binance's: a capture of these streams holds no aggregate trade ids. A round number
below the trade ids of the 2023-04-05 capture (~3.07e9), so the two cannot be confused."""
DEFAULT_SLICE_US = 1_000_000
MAX_KEPT_LINE_ERRORS = 20
"""How many skipped lines keep their reason; all of them are counted."""

_GZIP_MAGIC = b"\x1f\x8b"
_US_PER_MS = 1_000
_MAX_MS = INT64_MAX // _US_PER_MS


class CaptureFormatError(ValueError):
    """A capture line that is not a well-formed message of a known stream (``strict`` mode)."""

    def __init__(self, reason: str, *, line_number: int | None, path: Path | None = None) -> None:
        self.reason = reason
        self.line_number = line_number
        """1-based line of the file; ``None`` when the problem is the whole file."""
        self.path = path
        where = ":".join(str(part) for part in (path, line_number) if part is not None)
        super().__init__(f"{where}: {reason}" if where else reason)


class CaptureLineError(NamedTuple):
    """A skipped line and why (kept for the first ``MAX_KEPT_LINE_ERRORS``)."""

    line_number: int
    reason: str


class TradeRecord(NamedTuple):
    """One ``@trade`` message; ``trade.event_time_us`` is this message's own ``E``."""

    line_number: int
    received_us: int
    trade: Trade
    buyer_order_id: int
    seller_order_id: int

    @property
    def taker_order_id(self) -> int:
        """The order that took liquidity: the seller when the buyer is the maker."""
        return self.seller_order_id if self.trade.is_buyer_maker else self.buyer_order_id


class BookTickerRecord(NamedTuple):
    """One ``@bookTicker`` message; its event time is ``received_us``."""

    line_number: int
    received_us: int
    best_bid_ask: BestBidAsk


class DepthRecord(NamedTuple):
    """One ``@depth`` / ``@depth@100ms`` message."""

    line_number: int
    received_us: int
    diff: DepthDiff


CaptureRecord = TradeRecord | BookTickerRecord | DepthRecord


def parse_capture_line(line: str | bytes, line_number: int) -> CaptureRecord:
    """Parse one ``<receive time us> <json>`` line; raise ``CaptureFormatError`` if malformed."""
    try:
        text = line.decode("utf-8") if isinstance(line, bytes) else line
        received, separator, message = text.strip().partition(" ")
        if not separator:
            raise ValueError("expected '<receive time us> <json message>'")
        if not received.isdigit() or int(received) > INT64_MAX:
            raise ValueError(f"receive time {received[:40]!r} is not an epoch in us")
        received_us = int(received)
        try:
            envelope = json.loads(message)
        except json.JSONDecodeError as error:
            raise ValueError(f"not JSON: {error}") from None
        if not isinstance(envelope, dict):
            raise ValueError("the message is not a JSON object")
        stream, data = envelope.get("stream"), envelope.get("data")
        if not isinstance(stream, str):
            raise ValueError("no 'stream' name")
        stream_symbol, _, channel = stream.partition("@")
        parse = _CHANNELS.get(channel)
        if parse is None:
            raise ValueError(f"unknown stream {stream[:60]!r}")
        if not isinstance(data, dict):
            raise ValueError(f"{stream}: 'data' is not a JSON object")
        symbol = _text(data, "s")
        if symbol != stream_symbol.upper():
            raise ValueError(f"{stream}: symbol {symbol!r} does not match the stream")
        return parse(data, line_number, received_us, symbol)
    except ValueError as error:  # UnicodeDecodeError and FixedPointError are ValueErrors too
        raise CaptureFormatError(str(error), line_number=line_number) from error


def _parse_trade(
    data: dict[str, Any], line_number: int, received_us: int, symbol: str
) -> TradeRecord:
    if _text(data, "e") != "trade":
        raise ValueError(f"trade: event type {data['e']!r}, expected 'trade'")
    trade = Trade(
        symbol,
        _int(data, "t"),
        _decimal(data, "p"),
        _decimal(data, "q"),
        _bool(data, "m"),
        _int(data, "T", _MAX_MS) * _US_PER_MS,
        _int(data, "E", _MAX_MS) * _US_PER_MS,
        _bool(data, "M"),
    )
    return TradeRecord(line_number, received_us, trade, _int(data, "b"), _int(data, "a"))


def _parse_book_ticker(
    data: dict[str, Any], line_number: int, received_us: int, symbol: str
) -> BookTickerRecord:
    best_bid_ask = BestBidAsk(
        symbol,
        received_us,
        _int(data, "u"),
        _decimal(data, "b"),
        _decimal(data, "B"),
        _decimal(data, "a"),
        _decimal(data, "A"),
    )
    return BookTickerRecord(line_number, received_us, best_bid_ask)


def _parse_depth(
    data: dict[str, Any], line_number: int, received_us: int, symbol: str
) -> DepthRecord:
    if _text(data, "e") != "depthUpdate":
        raise ValueError(f"depth: event type {data['e']!r}, expected 'depthUpdate'")
    first_update_id, last_update_id = _int(data, "U"), _int(data, "u")
    if first_update_id > last_update_id:
        raise ValueError(f"depth: U {first_update_id} > u {last_update_id}")
    diff = DepthDiff(
        symbol,
        _int(data, "E", _MAX_MS) * _US_PER_MS,
        first_update_id,
        last_update_id,
        _levels(data, "b"),
        _levels(data, "a"),
    )
    return DepthRecord(line_number, received_us, diff)


_CHANNELS: dict[str, Callable[[dict[str, Any], int, int, str], CaptureRecord]] = {
    "trade": _parse_trade,
    "bookTicker": _parse_book_ticker,
    "depth@100ms": _parse_depth,
    "depth": _parse_depth,
}


def _field(data: dict[str, Any], key: str) -> Any:
    if key not in data:
        raise ValueError(f"missing field {key!r}")
    return data[key]


def _int(data: dict[str, Any], key: str, maximum: int = INT64_MAX) -> int:
    value = _field(data, key)
    # bool is an int subclass: true/false where a number belongs is a bad field, not 1/0.
    if type(value) is not int or not 0 <= value <= maximum:
        raise ValueError(f"field {key!r} = {value!r} is not a valid id or time")
    return value


def _bool(data: dict[str, Any], key: str) -> bool:
    value = _field(data, key)
    if type(value) is not bool:
        raise ValueError(f"field {key!r} = {value!r} is not a boolean")
    return value


def _text(data: dict[str, Any], key: str) -> str:
    value = _field(data, key)
    if not isinstance(value, str):
        raise ValueError(f"field {key!r} = {value!r} is not a string")
    return value


def _decimal(data: dict[str, Any], key: str) -> int:
    # Binance sends decimals as strings; a JSON number would already have been rounded.
    value = _text(data, key)
    try:
        return parse_e8(value)
    except ValueError as error:
        raise ValueError(f"field {key!r}: {error}") from None


def _levels(data: dict[str, Any], key: str) -> tuple[PriceLevel, ...]:
    levels = _field(data, key)
    if not isinstance(levels, list):
        raise ValueError(f"field {key!r} is not a list of levels")
    parsed = []
    for level in levels:
        if not (isinstance(level, list) and len(level) == 2):
            raise ValueError(f"field {key!r}: level {level!r} is not [price, qty]")
        price, qty = level
        if not (isinstance(price, str) and isinstance(qty, str)):
            raise ValueError(f"field {key!r}: level {level!r} is not two decimal strings")
        parsed.append((parse_e8(price), parse_e8(qty)))
    return tuple(parsed)


class CaptureReader:
    """The messages of a capture file as typed records, in file (receive) order; one pass.

    Gzip or plain text, detected by the gzip magic. The capture's symbol is its first good
    message's; messages of another symbol are bad lines. Bad lines are counted in
    ``skipped_lines`` (the first ``MAX_KEPT_LINE_ERRORS`` kept in ``line_errors``) and
    skipped; with ``strict=True`` the first one raises ``CaptureFormatError``.
    """

    def __init__(self, path: str | Path, *, strict: bool = False) -> None:
        self.path = Path(path)
        self.strict = strict
        self.symbol: str | None = None
        self.lines_read = 0
        self.skipped_lines = 0
        self.line_errors: list[CaptureLineError] = []

    def __iter__(self) -> Iterator[CaptureRecord]:
        with _open_capture(self.path) as file:
            lines = iter(file)
            while True:
                try:
                    line = next(lines, None)
                except (EOFError, gzip.BadGzipFile, zlib.error) as error:
                    self._skip(self.lines_read + 1, f"the file ends or breaks here: {error}")
                    return
                if line is None:
                    return
                self.lines_read += 1
                try:
                    record = parse_capture_line(line, self.lines_read)
                except CaptureFormatError as error:
                    self._skip(self.lines_read, error.reason)
                    continue
                event_symbol = _event(record).symbol
                if self.symbol is None:
                    self.symbol = event_symbol
                elif event_symbol != self.symbol:
                    self._skip(
                        self.lines_read, f"symbol {event_symbol}, the capture is of {self.symbol}"
                    )
                    continue
                yield record

    def _skip(self, line_number: int, reason: str) -> None:
        if self.strict:
            raise CaptureFormatError(reason, line_number=line_number, path=self.path)
        self.skipped_lines += 1
        if len(self.line_errors) < MAX_KEPT_LINE_ERRORS:
            self.line_errors.append(CaptureLineError(line_number, reason))


def _open_capture(path: Path) -> IO[bytes]:
    with path.open("rb") as probe:
        is_gzip = probe.read(2) == _GZIP_MAGIC
    return gzip.open(path, "rb") if is_gzip else path.open("rb")


def _event(record: CaptureRecord) -> Trade | BestBidAsk | DepthDiff:
    if type(record) is TradeRecord:
        return record.trade
    if type(record) is BookTickerRecord:
        return record.best_bid_ask
    return record.diff


def trade_batches(records: Iterable[TradeRecord]) -> Iterator[tuple[int, TradeBatch]]:
    """Group trade records into taker matches; yield ``(first line number, batch)``.

    A run of consecutive records with the same taker order, the same side, the same transact
    time and consecutive trade ids is one batch, at its first message's event time.
    """
    run: list[TradeRecord] = []
    for record in records:
        if run and not _same_match(run[-1], record):
            yield run[0].line_number, _batch(run)
            run = []
        run.append(record)
    if run:
        yield run[0].line_number, _batch(run)


def _same_match(previous: TradeRecord, record: TradeRecord) -> bool:
    before, trade = previous.trade, record.trade
    return (
        trade.trade_id == before.trade_id + 1
        and trade.transact_time_us == before.transact_time_us
        and trade.is_buyer_maker == before.is_buyer_maker
        and record.taker_order_id == previous.taker_order_id
    )


def _batch(run: list[TradeRecord]) -> TradeBatch:
    first = run[0].trade
    event_time_us = first.event_time_us
    trades = tuple(
        record.trade
        if record.trade.event_time_us == event_time_us
        else record.trade._replace(event_time_us=event_time_us)
        for record in run
    )
    return TradeBatch(first.symbol, event_time_us, first.transact_time_us, trades)


class _Paced(NamedTuple):
    """An event with the time it is merged and sliced by; line numbers break ties."""

    pace_us: int
    line_number: int
    event: SourceEvent


class _StreamMerge:
    """One pass over a reader: the three streams merged by event time, each in file order.

    One shared read feeds a queue per stream; a stream's queue fills while another stream
    is asked for its next event, so memory is bounded by the longest silence of a stream.
    """

    def __init__(self, reader: CaptureReader) -> None:
        self._lines = iter(reader)
        self._queues: dict[type, deque[CaptureRecord]] = {
            TradeRecord: deque(),
            BookTickerRecord: deque(),
            DepthRecord: deque(),
        }
        self.event_time_regressions = 0

    def __iter__(self) -> Iterator[_Paced]:
        trades = trade_batches(self._stream(TradeRecord))  # type: ignore[arg-type]
        book_tickers = (
            (record.line_number, record.best_bid_ask) for record in self._stream(BookTickerRecord)
        )
        diffs = ((record.line_number, record.diff) for record in self._stream(DepthRecord))
        return heapq.merge(self._paced(trades), self._paced(book_tickers), self._paced(diffs))

    def _stream(self, kind: type) -> Iterator[CaptureRecord]:
        queue = self._queues[kind]
        while True:
            while not queue:
                record = next(self._lines, None)
                if record is None:
                    return
                self._queues[type(record)].append(record)
            yield queue.popleft()

    def _paced(self, events: Iterator[tuple[int, SourceEvent]]) -> Iterator[_Paced]:
        pace_us = -1
        for line_number, event in events:
            if event.event_time_us >= pace_us:
                pace_us = event.event_time_us
            else:
                self.event_time_regressions += 1
            yield _Paced(pace_us, line_number, event)


class CaptureReplay:
    """A recorded JSON combined-stream capture as a ``MarketSource`` (see the module doc).

    Reads the file lazily, a slice at a time; deterministic for its file and arguments.
    ``skipped_lines``, ``line_errors`` and ``event_time_regressions`` count the
    ``next_events`` pass so far.
    """

    def __init__(
        self,
        path: str | Path,
        *,
        first_agg_trade_id: int = DEFAULT_FIRST_AGG_TRADE_ID,
        slice_us: int = DEFAULT_SLICE_US,
        strict: bool = False,
    ) -> None:
        if slice_us <= 0:
            raise ValueError(f"slice_us must be positive, not {slice_us}")
        self.path = Path(path)
        self.slice_us = slice_us
        self.strict = strict
        self._first_agg_trade_id = first_agg_trade_id
        self._symbol, first_update_id = self._scan_start()
        self._initial_book = DepthSnapshot(self._symbol, None, max(first_update_id - 1, 0), (), ())
        self._reader = CaptureReader(self.path, strict=strict)
        self._merge = _StreamMerge(self._reader)
        self._paced = iter(self._merge)
        self._head: _Paced | None = None
        self._slice_start_us: int | None = None

    def _scan_start(self) -> tuple[str, int]:
        """The capture's symbol and its first diff's ``U`` (0 without diffs): a short read."""
        reader = CaptureReader(self.path, strict=self.strict)
        for record in reader:
            if type(record) is DepthRecord:
                return record.diff.symbol, record.diff.first_update_id
        if reader.symbol is None:
            raise CaptureFormatError("no well-formed message", line_number=None, path=self.path)
        return reader.symbol, 0

    @property
    def symbol(self) -> str:
        """Upper-case symbol of the capture's messages, e.g. ``BTCUSDT``."""
        return self._symbol

    @property
    def first_agg_trade_id(self) -> int:
        """The aggregate trade id the exchange gives the capture's first aggregate trade."""
        return self._first_agg_trade_id

    def initial_book(self) -> DepthSnapshot:
        """An empty book at the first diff's ``U - 1`` (0 if the capture has no diff)."""
        return self._initial_book

    def next_events(self) -> list[SourceEvent] | None:
        """The events of the next ``slice_us`` of event time, or ``None`` once exhausted.

        Slices are ``[k * slice_us, (k + 1) * slice_us)`` from the first event's on; a
        quiet stretch gives empty slices.
        """
        if self._slice_start_us is None:
            self._head = next(self._paced, None)
            if self._head is None:
                return None
            self._slice_start_us = self._head.pace_us - self._head.pace_us % self.slice_us
        if self._head is None:
            return None
        slice_end_us = self._slice_start_us + self.slice_us
        events: list[SourceEvent] = []
        while self._head is not None and self._head.pace_us < slice_end_us:
            events.append(self._head.event)
            self._head = next(self._paced, None)
        self._slice_start_us = slice_end_us
        return events

    def events(self) -> Iterator[SourceEvent]:
        """Every event of the capture in replay order: a fresh pass, apart from ``next_events``."""
        return (paced.event for paced in _StreamMerge(CaptureReader(self.path, strict=self.strict)))

    @property
    def skipped_lines(self) -> int:
        """Bad lines skipped by the ``next_events`` pass so far."""
        return self._reader.skipped_lines

    @property
    def line_errors(self) -> list[CaptureLineError]:
        """The first ``MAX_KEPT_LINE_ERRORS`` of those, with their line numbers and reasons."""
        return self._reader.line_errors

    @property
    def event_time_regressions(self) -> int:
        """Events so far whose time was before their stream's previous event (kept in place)."""
        return self._merge.event_time_regressions
