"""A bronze reload merged with what the lake already holds, so a reload never loses a row.

REST may return less than the lake has: ids withheld for a while, a page lost on the way.
Aggregate trade ids are the exchange's primary key and a trade never changes once printed,
so a window's rows after a reload are the union of the stored and the fetched rows, keyed by
``agg_trade_id``. Where both hold an id, the fetched row is written: it is what the exchange
says now (REST, or an archive file re-verified against its published checksum), and it
carries this run's envelope. A stored row that disagrees with it on a trade field is a data
conflict: the fetched row still wins, and the conflict is counted and its ids named, for a
person to look at; it is never silently averaged away.

The merge cannot drop a bogus stored id (one the exchange never had): it keeps failing the
completeness proof, which names it, until someone deletes it on purpose.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from realtime.market.arrow_schemas import AGG_TRADES

ID_COLUMN = "agg_trade_id"
TRADE_FIELDS = tuple(name for name in AGG_TRADES.names if name != ID_COLUMN)
"""What a conflict compares: the trade itself, not the envelope (source, ingest time)."""
CONFLICT_SAMPLE = 20
"""Conflicting ids named in a report; the count is always exact."""


@dataclass(frozen=True)
class BronzeMerge:
    """One window's rows after a reload, and what the reload changed."""

    rows: pa.Table
    """Stored and fetched rows, one per ``agg_trade_id``, ordered by it."""
    rows_before: int
    """Rows the lake held for the window (after dropping repeated ids, if any)."""
    rows_fetched: int
    kept_from_lake: int
    """Stored rows whose id the fetch did not return."""
    conflicts: int
    """Ids both hold with different trade fields (the fetched row was written)."""
    conflict_sample: tuple[int, ...]

    @property
    def rows_added(self) -> int:
        return self.rows.num_rows - self.rows_before


def merge_reload(stored: pa.Table, fetched: pa.Table) -> BronzeMerge:
    """The union of ``stored`` and ``fetched`` by ``agg_trade_id``; fetched wins a shared id.

    Both tables have the same schema. A repeated id inside either keeps its first row, so
    the result never holds an id twice.
    """
    stored, stored_ids = _first_per_id(stored)
    fetched, fetched_ids = _first_per_id(fetched)
    _, in_stored, in_fetched = np.intersect1d(
        stored_ids, fetched_ids, assume_unique=True, return_indices=True
    )
    differs = np.zeros(len(in_stored), dtype=bool)
    for name in TRADE_FIELDS:
        equal = pc.equal(stored[name].take(in_stored), fetched[name].take(in_fetched))
        differs |= ~pc.fill_null(equal, False).to_numpy(zero_copy_only=False)
    conflicting = stored_ids[in_stored[differs]]
    kept = np.ones(len(stored_ids), dtype=bool)
    kept[in_stored] = False
    merged = pa.concat_tables([fetched, stored.filter(pa.array(kept))]).sort_by(ID_COLUMN)
    return BronzeMerge(
        rows=merged,
        rows_before=stored.num_rows,
        rows_fetched=fetched.num_rows,
        kept_from_lake=int(kept.sum()),
        conflicts=len(conflicting),
        conflict_sample=tuple(int(i) for i in conflicting[:CONFLICT_SAMPLE]),
    )


def _first_per_id(rows: pa.Table) -> tuple[pa.Table, np.ndarray]:
    """``rows`` ordered by id with the first row of each id only, and the ids."""
    ids = rows[ID_COLUMN].to_numpy()
    unique_ids, first = np.unique(ids, return_index=True)
    return rows.take(pa.array(first)), unique_ids
