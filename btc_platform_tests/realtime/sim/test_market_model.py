"""The seeded market: deterministic, consistent ids and diffs, a book that replays cleanly."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from realtime.market.events import BestBidAsk, DepthDiff, TradeBatch
from realtime.sim.market_model import InvalidMarketParams, MarketModel, MarketParams
from realtime.sim.synthetic_trades import MIN_QTY_E8, TICK_E8

SECONDS = 180


def _slices(model: MarketModel, count: int) -> list[list]:
    return [list(model.next_events()) for _ in range(count)]


def _of(events, kind):
    return [event for event in events if type(event) is kind]


@pytest.fixture(scope="module")
def model_and_slices():
    model = MarketModel(MarketParams(seed=11))
    return model, _slices(model, SECONDS)


@pytest.fixture(scope="module")
def events(model_and_slices):
    return list(itertools.chain.from_iterable(model_and_slices[1]))


def test_same_params_same_market_and_another_seed_another():
    first = MarketModel(MarketParams(seed=3))
    second = MarketModel(MarketParams(seed=3))
    assert first.initial_book() == second.initial_book()
    assert _slices(first, 20) == _slices(second, 20)
    other = MarketModel(MarketParams(seed=4))
    assert other.initial_book() != first.initial_book()
    assert _slices(other, 5) != _slices(first, 5)


def test_slicing_does_not_change_the_market():
    by_second = MarketModel(MarketParams(seed=5, slice_us=1_000_000))
    by_five = MarketModel(MarketParams(seed=5, slice_us=5_000_000))
    assert list(itertools.chain.from_iterable(_slices(by_second, 30))) == list(
        itertools.chain.from_iterable(_slices(by_five, 6))
    )


def test_invalid_params_are_refused():
    with pytest.raises(InvalidMarketParams):
        MarketParams(slice_us=150_000)  # not whole diff intervals
    with pytest.raises(InvalidMarketParams):
        MarketParams(start_time_us=1_767_225_600_000_001)
    with pytest.raises(InvalidMarketParams):
        MarketParams(start_price_e8=98_000 * 10**8 + 1)
    with pytest.raises(InvalidMarketParams):
        MarketParams(buy_share=1.0)


def test_slices_cover_fixed_spans_in_time_order(model_and_slices):
    model, slices = model_and_slices
    start = model.params.start_time_us
    previous = start
    for index, events in enumerate(slices):
        assert events, "a default market is never silent for a whole second"
        times = [event.event_time_us for event in events]
        assert times == sorted(times)
        assert times[0] >= max(previous, start + index * 1_000_000)
        assert times[-1] < start + (index + 1) * 1_000_000
        previous = times[-1]


def test_initial_book_is_a_deep_uncrossed_book_before_the_first_diff(model_and_slices, events):
    model, _ = model_and_slices
    book = model.initial_book()
    assert book.symbol == "BTCUSDT"
    assert book.last_update_id == model.params.first_book_update_id - 1
    assert book.last_update_id == _of(events, DepthDiff)[0].first_update_id - 1
    bids = [price for price, _ in book.bids]
    asks = [price for price, _ in book.asks]
    assert bids == sorted(bids, reverse=True)
    assert asks == sorted(asks)
    assert bids[0] < asks[0]
    for levels in (book.bids, book.asks):
        assert 200 <= len(levels) <= 400
        assert all(qty > 0 and qty % MIN_QTY_E8 == 0 for _, qty in levels)
    # Roughly +-1 % of the price, sparse near the top (not every tick is a level).
    assert 0.008 < (bids[0] - bids[-1]) / bids[0] < 0.02
    assert 0.008 < (asks[-1] - asks[0]) / asks[0] < 0.02
    assert (bids[0] - bids[9]) // TICK_E8 > 20


def test_trade_ids_are_consecutive_and_batches_are_taker_orders(model_and_slices, events):
    model, _ = model_and_slices
    batches = _of(events, TradeBatch)
    trades = [trade for batch in batches for trade in batch.trades]
    assert [trade.trade_id for trade in trades] == list(
        range(model.params.first_trade_id, model.params.first_trade_id + len(trades))
    )
    multi_price = 0
    for batch in batches:
        assert batch.event_time_us == batch.transact_time_us
        assert {trade.transact_time_us for trade in batch.trades} == {batch.transact_time_us}
        assert len({trade.is_buyer_maker for trade in batch.trades}) == 1
        prices = [trade.price_e8 for trade in batch.trades]
        # A taker walks away from the best: buys up the asks, sells down the bids, so equal
        # prices are adjacent and each run is one aggregate trade.
        walk = sorted(prices, reverse=batch.trades[0].is_buyer_maker)
        assert prices == walk
        multi_price += len(set(prices)) > 1
    assert multi_price > 0  # some orders sweep several levels
    assert len(trades) > len(batches)  # some levels fill against several maker orders


def test_diffs_chain_and_cover_every_update_id(events):
    diffs = _of(events, DepthDiff)
    assert all(
        later.first_update_id == earlier.last_update_id + 1
        for earlier, later in itertools.pairwise(diffs)
    )
    interval_ends = [diff.event_time_us + 1 for diff in diffs]
    assert all(end % 100_000 == 0 for end in interval_ends)
    assert len(set(interval_ends)) == len(diffs)  # at most one diff per interval
    # Quiet intervals send no diff, yet ids never skip: fewer diffs than intervals.
    assert len(diffs) < SECONDS * 10
    for diff in diffs:
        assert diff.first_update_id <= diff.last_update_id
        assert [price for price, _ in diff.bids] == sorted(
            (price for price, _ in diff.bids), reverse=True
        )
        assert [price for price, _ in diff.asks] == sorted(price for price, _ in diff.asks)
    tops = _of(events, BestBidAsk)
    ids = [top.book_update_id for top in tops]
    assert ids == sorted(set(ids))
    assert diffs[0].first_update_id <= ids[0]
    assert ids[-1] <= diffs[-1].last_update_id


def test_replayed_diffs_give_the_published_tops_and_takers_trade_at_the_top(
    model_and_slices, events
):
    model, _ = model_and_slices
    initial = model.initial_book()
    bids, asks = dict(initial.bids), dict(initial.asks)
    top = (max(bids), bids[max(bids)], min(asks), asks[min(asks)])
    checked_boundaries = checked_trades = 0
    for event in events:
        if isinstance(event, BestBidAsk):
            top = (event.bid_price_e8, event.bid_qty_e8, event.ask_price_e8, event.ask_qty_e8)
            assert top[0] < top[2]
        elif isinstance(event, TradeBatch):
            for trade in event.trades:
                if trade.is_buyer_maker:  # the taker sold: at or below the best bid
                    assert trade.price_e8 <= top[0]
                else:
                    assert trade.price_e8 >= top[2]
                checked_trades += 1
        elif isinstance(event, DepthDiff):
            for levels, side in ((event.bids, bids), (event.asks, asks)):
                for price, qty in levels:
                    if qty:
                        side[price] = qty
                    else:
                        side.pop(price, None)
            best_bid, best_ask = max(bids), min(asks)
            assert best_bid < best_ask, "the replayed book is crossed"
            assert (best_bid, bids[best_bid], best_ask, asks[best_ask]) == top
            checked_boundaries += 1
    assert checked_boundaries > 1_000
    assert checked_trades > 500


def test_prices_on_the_tick_and_quantities_on_the_lot(events):
    for event in events:
        if isinstance(event, TradeBatch):
            for trade in event.trades:
                assert trade.price_e8 % TICK_E8 == 0
                assert trade.qty_e8 >= MIN_QTY_E8
                assert trade.qty_e8 % MIN_QTY_E8 == 0
        elif isinstance(event, BestBidAsk):
            assert event.bid_price_e8 % TICK_E8 == 0
            assert event.ask_price_e8 % TICK_E8 == 0
            assert event.bid_qty_e8 > 0
            assert event.bid_qty_e8 % MIN_QTY_E8 == 0
            assert event.ask_qty_e8 > 0
            assert event.ask_qty_e8 % MIN_QTY_E8 == 0
        else:
            for price, qty in event.bids + event.asks:
                assert price % TICK_E8 == 0
                assert qty % MIN_QTY_E8 == 0


def test_spread_is_one_tick_most_of_the_time_and_widenings_refill(events):
    spreads = np.array(
        [(top.ask_price_e8 - top.bid_price_e8) // TICK_E8 for top in _of(events, BestBidAsk)]
    )
    assert 0.85 < np.mean(spreads == 1) < 0.99
    assert spreads.max() > 10  # occasional wide gaps, closed within a few updates
    wide = spreads > 1
    longest_wide_run = max(len(list(run)) for is_wide, run in itertools.groupby(wide) if is_wide)
    assert longest_wide_run < 30


def _imbalance_return_correlation(strength: float) -> float:
    """Corr. of the 5 s taker volume imbalance at second t with the mid return t..t+10 s."""
    seconds = 3_600
    model = MarketModel(MarketParams(seed=7, signal_strength=strength))
    buys, sells, mids = np.zeros(seconds), np.zeros(seconds), np.zeros(seconds)
    mid = 0.0
    for second in range(seconds):
        for event in model.next_events():
            if type(event) is TradeBatch:
                volume = sum(trade.qty_e8 for trade in event.trades)
                if event.trades[0].is_buyer_maker:
                    sells[second] += volume
                else:
                    buys[second] += volume
            elif type(event) is BestBidAsk:
                mid = (event.bid_price_e8 + event.ask_price_e8) / 2
        mids[second] = mid
    window = np.ones(5)
    bought = np.convolve(buys, window)[:seconds]
    sold = np.convolve(sells, window)[:seconds]
    imbalance = (bought - sold) / np.maximum(bought + sold, 1)
    log_mid = np.log(mids)
    forward = log_mid[10:] - log_mid[:-10]
    return float(np.corrcoef(imbalance[5:-10], forward[5:])[0, 1])


def test_no_planted_signal_by_default_and_a_clear_one_at_strength_one():
    assert abs(_imbalance_return_correlation(0.0)) < 0.08
    assert _imbalance_return_correlation(1.0) > 0.2
