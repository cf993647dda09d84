"""The completeness proof of a window's aggregate trade ids, and the hours a repair reloads."""

from __future__ import annotations

from itertools import pairwise

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from btc_platform.lakehouse.completeness import (
    US_PER_HOUR,
    Edge,
    IdRange,
    hours_to_repair,
    prove_completeness,
)

FIRST_ID = 3_500_000_000
H0 = 1_767_308_400_000_000  # 2026-01-01T23:00:00Z, an hour's start
"""The window of the repair tests is the three hours ``[H0, H0 + 3 h)``."""
WINDOW = (H0, H0 + 3 * US_PER_HOUR)
MINUTE = 60_000_000


def ids_of(*ranges: tuple[int, int]) -> np.ndarray:
    """Ids of the inclusive ranges, concatenated."""
    return np.concatenate([np.arange(first, last + 1, dtype=np.int64) for first, last in ranges])


def expand(ranges: tuple[IdRange, ...]) -> list[int]:
    return [i for r in ranges for i in range(r.first, r.last + 1)]


# -- IdRange -------------------------------------------------------------------------------------


def test_id_range_prints_one_id_or_a_span_and_counts_inclusively():
    assert str(IdRange(7, 7)) == "7"
    assert str(IdRange(7, 9)) == "7-9"
    assert IdRange(7, 7).size == 1
    assert IdRange(7, 9).size == 3


# -- prove_completeness --------------------------------------------------------------------------


def test_a_complete_window_joined_on_both_sides_passes():
    ids = ids_of((FIRST_ID, FIRST_ID + 99))
    proof = prove_completeness(ids[::-1], FIRST_ID - 1, FIRST_ID + 100)  # any order
    assert proof.passed
    assert (proof.rows, proof.first_id, proof.last_id) == (100, FIRST_ID, FIRST_ID + 99)
    assert (proof.before, proof.after) == (Edge.JOINED, Edge.JOINED)
    assert proof.missing == ()
    assert proof.missing_ids == 0
    assert proof.duplicates == 0
    assert proof.describe() == f"100 aggregate trades, ids {FIRST_ID}-{FIRST_ID + 99}, complete"


def test_holes_inside_the_window_are_named_as_inclusive_ranges():
    a = FIRST_ID
    ids = ids_of((a, a + 9), (a + 12, a + 20), (a + 22, a + 30))
    proof = prove_completeness(ids, a - 1, a + 31)
    assert not proof.passed
    assert proof.missing_inside == (IdRange(a + 10, a + 11), IdRange(a + 21, a + 21))
    assert proof.missing == proof.missing_inside
    assert proof.missing_ids == 3
    assert (proof.before, proof.after) == (Edge.JOINED, Edge.JOINED)
    assert proof.describe() == f"3 ids missing: {a + 10}-{a + 11}, {a + 21}"


def test_duplicates_fail_the_proof_and_are_counted_beyond_the_first_row():
    a = FIRST_ID
    ids = np.concatenate([ids_of((a, a + 9)), [a + 3, a + 3, a + 7]])
    proof = prove_completeness(ids, a - 1, a + 10)
    assert not proof.passed
    assert proof.duplicates == 3
    assert proof.rows == 13
    assert proof.missing == ()
    assert proof.describe() == "3 duplicate rows"


def test_holes_and_duplicates_are_both_described():
    a = FIRST_ID
    ids = np.array([a, a, a + 2], dtype=np.int64)
    proof = prove_completeness(ids, a - 1, a + 3)
    assert proof.describe() == f"1 ids missing: {a + 1}; 1 duplicate rows"


@pytest.mark.parametrize(
    ("previous_last_id", "edge", "hole"),
    [
        (FIRST_ID - 1, Edge.JOINED, None),
        (FIRST_ID - 5, Edge.HOLE, IdRange(FIRST_ID - 4, FIRST_ID - 1)),
        (None, Edge.UNKNOWN, None),
    ],
)
def test_the_edge_before_the_window(previous_last_id, edge, hole):
    proof = prove_completeness(ids_of((FIRST_ID, FIRST_ID + 9)), previous_last_id, FIRST_ID + 10)
    assert proof.before is edge
    assert proof.missing_before == hole
    assert proof.after is Edge.JOINED
    assert proof.passed is (hole is None)
    assert proof.missing == ((hole,) if hole else ())


@pytest.mark.parametrize(
    ("next_first_id", "edge", "hole"),
    [
        (FIRST_ID + 10, Edge.JOINED, None),
        (FIRST_ID + 12, Edge.HOLE, IdRange(FIRST_ID + 10, FIRST_ID + 11)),
        (None, Edge.UNKNOWN, None),
    ],
)
def test_the_edge_after_the_window(next_first_id, edge, hole):
    proof = prove_completeness(ids_of((FIRST_ID, FIRST_ID + 9)), FIRST_ID - 1, next_first_id)
    assert proof.after is edge
    assert proof.missing_after == hole
    assert proof.before is Edge.JOINED
    assert proof.passed is (hole is None)
    assert proof.missing == ((hole,) if hole else ())


def test_missing_lists_the_edge_holes_around_the_inside_ones_in_id_order():
    a = FIRST_ID
    proof = prove_completeness(ids_of((a, a + 4), (a + 6, a + 9)), a - 3, a + 12)
    assert proof.missing == (IdRange(a - 2, a - 1), IdRange(a + 5, a + 5), IdRange(a + 10, a + 11))
    assert proof.missing_ids == 5


def test_an_empty_window_between_joined_neighbours_is_complete():
    proof = prove_completeness(np.array([], dtype=np.int64), FIRST_ID, FIRST_ID + 1)
    assert proof.passed
    assert (proof.rows, proof.first_id, proof.last_id) == (0, None, None)
    assert (proof.before, proof.after) == (Edge.JOINED, Edge.JOINED)


def test_an_empty_window_between_distant_neighbours_is_one_hole():
    proof = prove_completeness(np.array([], dtype=np.int64), FIRST_ID, FIRST_ID + 8)
    assert not proof.passed
    assert proof.missing == (IdRange(FIRST_ID + 1, FIRST_ID + 7),)
    assert proof.missing_ids == 7
    assert (proof.before, proof.after) == (Edge.HOLE, Edge.HOLE)


def test_an_empty_window_without_neighbours_proves_nothing():
    proof = prove_completeness(np.array([], dtype=np.int64), None, None)
    assert (proof.before, proof.after) == (Edge.UNKNOWN, Edge.UNKNOWN)
    assert proof.missing == ()


def test_an_empty_window_with_one_neighbour_leaves_both_edges_unproven():
    only_previous = prove_completeness(np.array([], dtype=np.int64), FIRST_ID, None)
    only_next = prove_completeness(np.array([], dtype=np.int64), None, FIRST_ID)
    assert (only_previous.before, only_previous.after) == (Edge.UNKNOWN, Edge.UNKNOWN)
    assert (only_next.before, only_next.after) == (Edge.UNKNOWN, Edge.UNKNOWN)


@st.composite
def windows_with_removals(draw):
    """A window whose neighbours end at ``prev`` and start at ``next``, with some of the ids
    in between removed and some of the rest duplicated; rows in any order."""
    previous_last_id = draw(st.integers(0, 2**40))
    n = draw(st.integers(1, 80))
    span = range(previous_last_id + 1, previous_last_id + 1 + n)
    removed = draw(st.sets(st.sampled_from(span), max_size=n))
    kept = [i for i in span if i not in removed]
    duplicated = draw(st.lists(st.sampled_from(kept), max_size=5)) if kept else []
    ids = draw(st.permutations(kept + duplicated))
    return np.array(ids, dtype=np.int64), previous_last_id, span.stop, removed, len(duplicated)


@given(windows_with_removals())
def test_missing_is_exactly_the_removed_ids(case):
    ids, previous_last_id, next_first_id, removed, duplicates = case
    proof = prove_completeness(ids, previous_last_id, next_first_id)
    assert expand(proof.missing) == sorted(removed)
    assert proof.missing_ids == len(removed)
    # Maximal ranges: none touches the next, none is empty.
    assert all(r.first <= r.last for r in proof.missing)
    assert all(b.first > a.last + 1 for a, b in pairwise(proof.missing))
    assert proof.duplicates == duplicates
    assert proof.rows == len(ids)
    assert proof.passed is (not removed and duplicates == 0)


# -- hours_to_repair -----------------------------------------------------------------------------


def repair(ids: np.ndarray, times_us: list[int], previous_last_id, next_first_id) -> list[int]:
    proof = prove_completeness(ids, previous_last_id, next_first_id)
    return hours_to_repair(proof, ids, np.array(times_us, dtype=np.int64), WINDOW)


def test_a_complete_window_needs_no_repair():
    ids = ids_of((FIRST_ID, FIRST_ID + 2))
    times = [H0 + MINUTE, H0 + US_PER_HOUR, H0 + 2 * US_PER_HOUR + MINUTE]
    assert repair(ids, times, FIRST_ID - 1, FIRST_ID + 3) == []


def test_a_hole_inside_one_hour_repairs_that_hour():
    a = FIRST_ID
    ids = ids_of((a, a + 1), (a + 4, a + 5))
    h1 = H0 + US_PER_HOUR
    times = [H0 + MINUTE, h1 + 10 * MINUTE, h1 + 20 * MINUTE, H0 + 2 * US_PER_HOUR + MINUTE]
    assert repair(ids, times, a - 1, a + 6) == [h1]


def test_a_hole_across_an_hour_boundary_repairs_both_hours():
    a = FIRST_ID
    ids = ids_of((a, a + 1), (a + 4, a + 5))
    h1, h2 = H0 + US_PER_HOUR, H0 + 2 * US_PER_HOUR
    times = [H0 + MINUTE, h1 + 59 * MINUTE, h2 + MINUTE, h2 + 2 * MINUTE]
    assert repair(ids, times, a - 1, a + 6) == [h1, h2]


def test_the_hours_come_from_the_trades_however_the_rows_are_ordered():
    a = FIRST_ID
    ids = ids_of((a, a + 1), (a + 4, a + 5))
    h1, h2 = H0 + US_PER_HOUR, H0 + 2 * US_PER_HOUR
    times = [H0 + MINUTE, h1 + 59 * MINUTE, h2 + MINUTE, h2 + 2 * MINUTE]
    order = [3, 0, 2, 1]
    proof = prove_completeness(ids, a - 1, a + 6)
    hours = hours_to_repair(proof, ids[order], np.array(times)[order], WINDOW)
    assert hours == [h1, h2]


def test_a_hole_at_the_window_start_repairs_the_previous_and_the_first_hour():
    a = FIRST_ID
    ids = ids_of((a, a + 2))
    times = [H0 + 5 * MINUTE, H0 + 6 * MINUTE, H0 + 2 * US_PER_HOUR]
    assert repair(ids, times, a - 4, a + 3) == [H0 - US_PER_HOUR, H0]


def test_a_hole_at_the_window_end_repairs_the_last_and_the_next_hour():
    a = FIRST_ID
    ids = ids_of((a, a + 2))
    last_hour = H0 + 2 * US_PER_HOUR
    times = [H0 + MINUTE, last_hour + MINUTE, last_hour + 50 * MINUTE]
    assert repair(ids, times, a - 1, a + 9) == [last_hour, WINDOW[1]]


def test_an_empty_window_between_distant_neighbours_repairs_all_its_hours_and_both_edges():
    proof = prove_completeness(np.array([], dtype=np.int64), FIRST_ID, FIRST_ID + 5)
    hours = hours_to_repair(proof, np.array([], np.int64), np.array([], np.int64), WINDOW)
    assert hours == [H0 + k * US_PER_HOUR for k in range(-1, 4)]
