"""Labels: the 10-second-ahead log return, never reading an incomplete second."""

from __future__ import annotations

import math

import numpy as np

from btc_platform_tests.realtime.features.streams import START_US, trades_table
from realtime.features.bars import bars_from_tables
from realtime.features.contract import CONTRACT_V1
from realtime.features.engine import batch_features
from realtime.features.labels import labels_v1, training_mask

E8 = 10**8
S = 1_000_000


def price_at(second: int) -> int:
    return (98_000 + second % 13) * E8


def bars_for(seconds: int, skip: frozenset[int] = frozenset()):
    rows = [
        (START_US + s * S + 10, price_at(s), 10**6, False) for s in range(seconds) if s not in skip
    ]
    return bars_from_tables(trades_table(rows))


def test_label_is_the_log_return_ten_seconds_ahead():
    labels = labels_v1(bars_for(30))
    assert labels[3] == math.log(price_at(13) / E8) - math.log(price_at(3) / E8)
    assert np.isnan(labels[20:]).all()  # t + 10 beyond the last complete second
    assert not np.isnan(labels[:20]).any()


def test_label_carries_the_price_through_empty_seconds():
    labels = labels_v1(bars_for(30, skip=frozenset({13, 14})))
    assert labels[3] == math.log(price_at(12) / E8) - math.log(price_at(3) / E8)


def test_an_open_second_is_never_read():
    bars = bars_for(30)
    labels = labels_v1(bars, last_complete_sec=bars.start_sec + 24)
    assert not np.isnan(labels[14])
    assert np.isnan(labels[15:]).all()


def test_training_rows_need_a_label_and_every_model_input():
    bars = bars_for(90)
    features = batch_features(bars)
    mask = training_mask(features, labels_v1(bars), CONTRACT_V1.model_input_indices)
    # The 60-second windows fill at row 59; the last 10 seconds have no label.
    assert np.flatnonzero(mask).tolist() == list(range(59, 80))
