"""Contract v2: book features by hand, live == batch bit for bit, leakage, mid-price labels."""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from btc_platform_tests.support.captures import CAPTURE_JSON as CAPTURE
from realtime.features.bars import NONE, Bar
from realtime.features.book_bars import BookBar, ReceivedSnapshot
from realtime.features.engine_v2 import BOOK_FEATURES, FEATURES_V2, LiveFeatureEngineV2
from realtime.features.labels import labels_v2
from realtime.features.replay_v2 import (
    batch_path,
    live_path,
    recorded_market,
    replay_parity_v2,
)
from realtime.market.events import BestBidAsk, DepthDiff, TradeBatch
from realtime.market.order_book import OrderBook
from realtime.sim.capture_replay import CaptureReplay
from realtime.sim.market_model import MarketModel, MarketParams

START_US = 1_767_225_600_000_000
US = 1_000_000


def column(vectors: np.ndarray, name: str) -> np.ndarray:
    return vectors[:, FEATURES_V2.index(name)]


def generated(seconds: int, seed: int = 3) -> tuple[list, object]:
    model = MarketModel(MarketParams(seed=seed, start_time_us=START_US))
    book = model.initial_book()
    events = [event for _ in range(seconds) for event in model.next_events()]
    return events, book


def bar(ts_sec: int, bid: int, bid_qty: int, ask: int, ask_qty: int) -> Bar:
    return Bar(ts_sec, 0, 0, 0, 0, NONE, NONE, 0, NONE, NONE, NONE, bid, ask, bid_qty, ask_qty)


def test_contract_v2_extends_v1_with_the_book_features() -> None:
    assert BOOK_FEATURES == (
        "spread_bp",
        "microprice_dev_bp",
        "mid_ret_1s",
        "mid_ret_5s",
        "book_imbalance_5",
    )
    assert len(FEATURES_V2) == 25


def test_book_features_by_hand() -> None:
    """Each value is the exact rational definition, correctly rounded (``float(Fraction)``)."""
    engine = LiveFeatureEngineV2()
    bid, ask = 98_000_00 * 10**6, 98_000_03 * 10**6  # 98000.00 / 98000.03
    bid_qty, ask_qty = 3 * 10**8, 10**8
    first = engine.on_bar(bar(100, bid, bid_qty, ask, ask_qty), BookBar(100, 7, 5 * 10**8, 10**8))
    book = dict(zip(FEATURES_V2, first, strict=True))
    mid = Fraction(bid + ask, 2)
    assert book["spread_bp"] == float(Fraction(ask - bid) * 10_000 / mid)
    microprice = Fraction(bid * ask_qty + ask * bid_qty, bid_qty + ask_qty)
    assert book["microprice_dev_bp"] == float((microprice - mid) * 10_000 / mid)
    assert book["microprice_dev_bp"] > 0  # more size on the bid: the microprice leans up
    assert book["book_imbalance_5"] == float(Fraction(4, 6))
    assert math.isnan(book["mid_ret_1s"])  # the stream's first second
    moved = bar(101, bid + 10**6, bid_qty, ask + 10**6, ask_qty)
    second = engine.on_bar(moved, BookBar(101, NONE, NONE, NONE))
    book = dict(zip(FEATURES_V2, second, strict=True))
    new_mid = (bid + ask + 2 * 10**6) / (2 * 10**8)
    assert book["mid_ret_1s"] == math.log(new_mid) - math.log((bid + ask) / (2 * 10**8))
    assert math.isnan(book["book_imbalance_5"])  # the depth book is invalid: null, not stale


def test_live_equals_batch_on_a_generated_market_with_a_book_gap_and_a_resync() -> None:
    """Ten minutes of the local exchange's market; one diff lost, a later snapshot re-anchors."""
    events, initial_book = generated(600)
    diffs = [i for i, e in enumerate(events) if isinstance(e, DepthDiff)]
    lost = diffs[len(diffs) // 3]
    resync_at = diffs[len(diffs) // 2]
    # The snapshot a service would fetch after the gap: the book as of the diff before resync_at.
    book = OrderBook.from_snapshot(initial_book)
    for event in events[:resync_at]:
        if isinstance(event, DepthDiff):
            book.apply(event)
    snapshot = ReceivedSnapshot(events[resync_at].event_time_us, book.snapshot(5000))
    recorded = events[:lost] + events[lost + 1 : resync_at] + [snapshot] + events[resync_at:]

    market = recorded_market("BTCUSDT", recorded, initial_book)
    report = replay_parity_v2(market)
    assert report.equal, report.first_mismatch
    assert report.seconds >= 600
    invalid = report.seconds - report.valid_book_seconds
    lost_sec, resync_sec = (events[i].event_time_us // US for i in (lost, resync_at))
    assert resync_sec - lost_sec - 1 <= invalid <= resync_sec - lost_sec + 1

    bars, _, vectors = batch_path(market)
    imbalance = column(vectors, "book_imbalance_5")
    seconds = bars.ts_sec
    assert np.isnan(imbalance[(seconds > lost_sec) & (seconds < resync_sec)]).all()
    assert not np.isnan(imbalance[seconds < lost_sec]).any()
    assert not np.isnan(imbalance[seconds > resync_sec]).any()
    assert not np.isnan(column(vectors, "spread_bp")).any()


def test_live_equals_batch_on_the_real_capture() -> None:
    """2023-04-05: trades, bookTicker and diffs, but no REST snapshot: the depth book never
    becomes valid, so its feature is null throughout while the top-of-book ones are set."""
    capture = CaptureReplay(CAPTURE)
    market = recorded_market(capture.symbol, capture.events())
    report = replay_parity_v2(market)
    assert report.equal, report.first_mismatch
    assert report.seconds == 416
    assert report.valid_book_seconds == 0
    _, vectors = live_path(market)
    assert np.isnan(column(vectors, "book_imbalance_5")).all()
    assert not np.isnan(column(vectors, "spread_bp")[1:]).any()
    assert not np.isnan(column(vectors, "mid_ret_5s")[6:]).any()


def test_mid_labels_read_the_mid_ten_seconds_ahead() -> None:
    events, initial_book = generated(120, seed=9)
    bars, _, _ = batch_path(recorded_market("BTCUSDT", events, initial_book))
    labels = labels_v2(bars)
    quoted = bars.bid_price_e8 != NONE
    last_bid = np.maximum.accumulate(np.where(quoted, np.arange(len(bars)), -1))
    mids = (bars.bid_price_e8[last_bid] + bars.ask_price_e8[last_bid]) / (2 * 10**8)
    i = 30
    assert labels[i] == math.log(mids[i + 10]) - math.log(mids[i])
    assert np.isnan(labels[-10:]).all()
    assert not np.isnan(labels[:-10]).any()
    cut = labels_v2(bars, last_complete_sec=bars.start_sec + 50)
    assert np.isnan(cut[41:]).all()
    assert (cut[:41] == labels[:41]).all()


@pytest.fixture(scope="module")
def five_minutes() -> tuple[list, object]:
    return generated(300, seed=12)


@settings(max_examples=25, deadline=None)
@given(st.data())
def test_changing_the_market_after_t_changes_no_feature_at_t(five_minutes, data) -> None:
    """Leakage: rewrite every event after second t (prices, sizes, book levels, or drop them);
    every vector up to t keeps its bits."""
    events, initial_book = five_minutes
    start_sec = START_US // US
    t = data.draw(st.integers(start_sec + 1, start_sec + 290), label="t")
    shift = data.draw(st.integers(-50, 50), label="ticks") * 10**6
    drop_book = data.draw(st.booleans(), label="drop later book events")
    end_us = (t + 1) * US

    def rewritten(event):
        time_us = event.transact_time_us if isinstance(event, TradeBatch) else event.event_time_us
        if time_us < end_us:
            return event
        if isinstance(event, TradeBatch):
            trades = tuple(
                tr._replace(price_e8=tr.price_e8 + shift, qty_e8=tr.qty_e8 * 3)
                for tr in event.trades
            )
            return event._replace(trades=trades)
        if isinstance(event, BestBidAsk):
            return event._replace(bid_price_e8=event.bid_price_e8 + shift, ask_qty_e8=1)
        if drop_book:
            return None
        first_bid_price = event.bids[0][0] if event.bids else event.asks[0][0] - 10**6
        return event._replace(bids=((first_bid_price, 7),))

    changed = [e for e in (rewritten(e) for e in events) if e is not None]
    _, _, original = batch_path(recorded_market("BTCUSDT", events, initial_book))
    _, _, after = batch_path(recorded_market("BTCUSDT", changed, initial_book))
    rows = t - start_sec + 1
    assert (original[:rows].view(np.uint64) == after[:rows].view(np.uint64)).all()
