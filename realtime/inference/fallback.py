"""The five-level fallback controller: per tick, which model-input vector to predict from.

Pure logic, no I/O: the infer loop reads ``feat:{SYM}`` and the per-second history
``features:{SYM}:{ts}`` from Redis (a background task keeps recent lake vectors in memory,
never awaited on the tick), hands what it got to ``FallbackController.decide`` and records
the decision's level and reason on the prediction. The only state is what earlier ticks
taught: an EMA per model input and the newest vector a tick predicted from.

Ages are ``now - end of the vector's second`` in exchange time (second ``t`` ends at
``t + 1``), so a vector published on time is a few hundred ms old. Hot vectors are
``feat:{SYM}`` and the history; when both hold the same second, ``feat`` is used.

1. **fresh**: the newest hot vector is at most ``fresh_ms`` old and every model input is
   finite. Predicted on as it is.
2. **repaired**: the newest hot vector is at most ``stale_ms`` old, and it is complete or
   its missing inputs were all filled from older hot seconds at most ``stale_ms`` old
   (newest first, input by input).
3. **imputed**: as 2, but some inputs are still missing; each takes its EMA carried forward
   from earlier ticks. An input never seen finite has no EMA: then safe mode (5).
4. **hot state lost**: no hot vector at most ``stale_ms`` old (Redis unreachable,
   ``feat:{SYM}`` and the history both missing, or the newest one older than ``stale_ms``).
   The candidates are the newest vector a level 1–4 tick predicted from ("last good"),
   the lake vectors and any older hot vector; the newest one at most ``lost_max_age_ms``
   old is used, its missing inputs filled from the older candidates in that age, then
   from the EMA. An input still missing: safe mode.
5. **safe mode**: no vector; the tick publishes no actionable prediction.

The EMA learns, once per second and only from seconds newer than any it learnt from, the
finite model inputs of the vector each tick is based on (filled or imputed values never
feed it back).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from enum import IntEnum
from typing import NamedTuple

import numpy as np

from realtime.features.contract import CONTRACT_V1, FeatureContract
from realtime.inference import prediction

US_PER_SECOND = 1_000_000
_NAMES_IN_REASON = 4


class FallbackLevel(IntEnum):
    FRESH = 1
    REPAIRED = 2
    IMPUTED = 3
    HOT_STATE_LOST = 4
    SAFE_MODE = prediction.SAFE_MODE


class FallbackSettings(NamedTuple):
    """Thresholds in ms of feature age; ``fresh_ms <= stale_ms <= lost_max_age_ms``."""

    fresh_ms: int = 2_500
    stale_ms: int = 10_000
    lost_max_age_ms: int = 60_000
    """Oldest vector level 4 predicts from (the last good one, or one from the lake)."""
    ema_alpha: float = 0.2
    """Weight of the newest second in each input's EMA, in (0, 1]."""


DEFAULT_SETTINGS = FallbackSettings()


class LatestVector(NamedTuple):
    """``feat:{SYM}`` as the infer loop decoded it."""

    ts_sec: int
    values: Sequence[float] | np.ndarray
    """The full contract vector (``contract.names`` order), float64; NaN where null."""
    book_valid: bool = True
    """The features role's flag; invalid-book features are already NaN, this names why."""


class TickInputs(NamedTuple):
    """Everything one tick could read; vectors are full contract vectors, NaN where null."""

    now_us: int
    """The tick's time, µs since the epoch, exchange time."""
    hot_reachable: bool
    """False when Redis did not answer at all (``latest`` and ``history`` are then empty);
    it names the cause in the reason, the vectors decide the level."""
    latest: LatestVector | None
    history: Mapping[int, Sequence[float] | np.ndarray]
    """``features:{SYM}:{ts}``: second → vector; empty if none could be read."""
    lake: Mapping[int, Sequence[float] | np.ndarray]
    """Recent vectors the background task loaded from the lake; empty if none yet."""


class FallbackDecision(NamedTuple):
    level: FallbackLevel
    model_input: np.ndarray | None
    """float32 ``[K]``, every value finite, in ``contract.model_inputs`` order; ``None`` at 5."""
    ts_sec: int | None
    """The second the vector is based on; at level 5 the newest one seen, if any."""
    feature_age_ms: int | None
    """Age of ``ts_sec`` at the tick; ``None`` with it."""
    reason: str


class _Seen(NamedTuple):
    ts_sec: int
    inputs: np.ndarray
    """float64 ``[K]`` model inputs, NaN where missing."""
    source: str
    age_ms: int

    def describe(self) -> str:
        return f"{self.source} vector of {self.ts_sec} is {self.age_ms} ms old"


def feature_age_ms(ts_sec: int, now_us: int) -> int:
    """Milliseconds from the end of second ``ts_sec`` to ``now_us``; 0 if it ends later.

    A vector ahead of the tick's clock (exchange and local time disagree) counts as new.
    """
    return max(0, (now_us - (ts_sec + 1) * US_PER_SECOND) // 1000)


class FallbackController:
    """Decides every tick's level; keeps the EMA and the last good vector between ticks."""

    def __init__(
        self,
        settings: FallbackSettings = DEFAULT_SETTINGS,
        contract: FeatureContract = CONTRACT_V1,
    ) -> None:
        if not 0 <= settings.fresh_ms <= settings.stale_ms <= settings.lost_max_age_ms:
            raise ValueError(f"need 0 <= fresh_ms <= stale_ms <= lost_max_age_ms: {settings}")
        if not 0.0 < settings.ema_alpha <= 1.0:
            raise ValueError(f"ema_alpha must be in (0, 1], got {settings.ema_alpha}")
        self.settings = settings
        self.contract = contract
        self._indices = np.asarray(contract.model_input_indices, dtype=np.intp)
        self._ema = np.full(len(contract.model_inputs), np.nan)
        self._ema_ts: int | None = None
        self._last_good: _Seen | None = None

    @property
    def ema(self) -> np.ndarray:
        """A copy of the EMA per model input (NaN for an input never seen finite)."""
        return self._ema.copy()

    def decide(self, tick: TickInputs) -> FallbackDecision:
        """The level, vector and reason for one tick; learns from the vector it used."""
        hot = self._hot_vectors(tick)
        usable = [seen for seen in hot if seen.age_ms <= self.settings.stale_ms]
        if usable:
            decision, base = self._from_hot(usable, tick.latest), usable[0]
        else:
            decision, base = self._hot_state_lost(tick, hot)
        if base is not None:
            self._learn(base)
            if decision.level != FallbackLevel.SAFE_MODE and (
                self._last_good is None or base.ts_sec >= self._last_good.ts_sec
            ):
                self._last_good = base._replace(source="last good")
        return decision

    def _from_hot(self, usable: list[_Seen], latest: LatestVector | None) -> FallbackDecision:
        base, older = usable[0], usable[1:]
        inputs, filled = _filled(base.inputs, older)
        book_invalid = latest is not None and latest.ts_sec == base.ts_sec and not latest.book_valid
        detail = base.describe() + self._notes(filled, book_invalid=book_invalid)
        if np.isfinite(inputs).all():
            if base.age_ms <= self.settings.fresh_ms and not filled:
                return self._decision(FallbackLevel.FRESH, inputs, base, f"fresh: {detail}")
            if base.age_ms > self.settings.fresh_ms:
                detail = f"{detail}; older than fresh {self.settings.fresh_ms} ms"
            return self._decision(FallbackLevel.REPAIRED, inputs, base, f"repaired: {detail}")
        return self._imputed(FallbackLevel.IMPUTED, inputs, base, "imputed", detail)

    def _hot_state_lost(
        self, tick: TickInputs, hot: list[_Seen]
    ) -> tuple[FallbackDecision, _Seen | None]:
        if not tick.hot_reachable:
            cause = "Redis unreachable"
        elif not hot:
            cause = "no feat vector and no history"
        else:
            cause = f"newest hot {hot[0].describe()}, stale limit {self.settings.stale_ms} ms"
        head = f"hot state lost ({cause})"
        last_good = []
        if self._last_good is not None:
            age_ms = feature_age_ms(self._last_good.ts_sec, tick.now_us)
            last_good.append(self._last_good._replace(age_ms=age_ms))
        lake = self._vectors(tick.lake, "lake", tick.now_us)
        everything = _newest_first([*hot, *last_good, *lake])
        candidates = [seen for seen in everything if seen.age_ms <= self.settings.lost_max_age_ms]
        if not candidates:
            newest = f"; newest: {everything[0].describe()}" if everything else ""
            reason = (
                f"safe mode: {head}, no vector within {self.settings.lost_max_age_ms} ms{newest}"
            )
            return _safe_mode(everything[0] if everything else None, reason), None
        base = candidates[0]
        inputs, filled = _filled(base.inputs, candidates[1:])
        detail = base.describe() + self._notes(filled, book_invalid=False)
        return self._imputed(FallbackLevel.HOT_STATE_LOST, inputs, base, head, detail), base

    def _imputed(
        self, level: FallbackLevel, inputs: np.ndarray, base: _Seen, head: str, detail: str
    ) -> FallbackDecision:
        """Fill what is still missing from the EMA; safe mode if an input has none."""
        missing = ~np.isfinite(inputs)
        if not missing.any():
            return self._decision(level, inputs, base, f"{head}: {detail}")
        unseen = missing & ~np.isfinite(self._ema)
        if unseen.any():
            reason = f"safe mode: {head}: {detail}; never seen finite: {self._names(unseen)}"
            return _safe_mode(base, reason)
        inputs = np.where(missing, self._ema, inputs)
        return self._decision(
            level, inputs, base, f"{head}: {detail}; EMA for {self._names(missing)}"
        )

    def _decision(
        self, level: FallbackLevel, inputs: np.ndarray, base: _Seen, reason: str
    ) -> FallbackDecision:
        return FallbackDecision(level, inputs.astype(np.float32), base.ts_sec, base.age_ms, reason)

    def _learn(self, base: _Seen) -> None:
        if self._ema_ts is not None and base.ts_sec <= self._ema_ts:
            return
        self._ema_ts = base.ts_sec
        alpha = self.settings.ema_alpha
        finite = np.isfinite(base.inputs)
        first = finite & ~np.isfinite(self._ema)
        self._ema = np.where(first, base.inputs, self._ema)
        update = finite & ~first
        self._ema = np.where(update, alpha * base.inputs + (1.0 - alpha) * self._ema, self._ema)

    def _hot_vectors(self, tick: TickInputs) -> list[_Seen]:
        seen = self._vectors(tick.history, "history", tick.now_us)
        if tick.latest is not None:
            feat = self._seen(tick.latest.ts_sec, tick.latest.values, "feat", tick.now_us)
            # The same second in both: feat is the features role's latest word on it.
            seen = [feat, *(other for other in seen if other.ts_sec != feat.ts_sec)]
        return _newest_first(seen)

    def _vectors(
        self, vectors: Mapping[int, Sequence[float] | np.ndarray], source: str, now_us: int
    ) -> list[_Seen]:
        return [self._seen(ts, values, source, now_us) for ts, values in vectors.items()]

    def _seen(
        self, ts_sec: int, values: Sequence[float] | np.ndarray, source: str, now_us: int
    ) -> _Seen:
        vector = np.asarray(values, dtype=np.float64)
        if vector.shape != (len(self.contract.names),):
            raise ValueError(
                f"{source} vector of {ts_sec} has shape {vector.shape}, contract "
                f"v{self.contract.version} vectors have {len(self.contract.names)} values"
            )
        return _Seen(int(ts_sec), vector[self._indices], source, feature_age_ms(ts_sec, now_us))

    def _notes(self, filled: dict[int, np.ndarray], *, book_invalid: bool) -> str:
        notes = [f"{self._names(mask)} from {ts}" for ts, mask in filled.items()]
        if book_invalid:
            notes.append("book invalid")
        return "".join(f"; {note}" for note in notes)

    def _names(self, mask: np.ndarray) -> str:
        names = [self.contract.model_inputs[i] for i in np.flatnonzero(mask)]
        shown = ", ".join(names[:_NAMES_IN_REASON])
        more = len(names) - _NAMES_IN_REASON
        return f"{shown} (+{more} more)" if more > 0 else shown


def _filled(inputs: np.ndarray, older: Iterable[_Seen]) -> tuple[np.ndarray, dict[int, np.ndarray]]:
    """``inputs`` with missing values taken from ``older`` (newest first); second → mask."""
    inputs = inputs.copy()
    filled: dict[int, np.ndarray] = {}
    for seen in older:
        missing = ~np.isfinite(inputs)
        if not missing.any():
            break
        take = missing & np.isfinite(seen.inputs)
        if take.any():
            inputs[take] = seen.inputs[take]
            filled[seen.ts_sec] = take
    return inputs, filled


def _newest_first(seen: Iterable[_Seen]) -> list[_Seen]:
    # A stable sort: among equal seconds the earlier source (feat, then history) wins.
    return sorted(seen, key=lambda one: one.ts_sec, reverse=True)


def _safe_mode(newest: _Seen | None, reason: str) -> FallbackDecision:
    if newest is None:
        return FallbackDecision(FallbackLevel.SAFE_MODE, None, None, None, reason)
    return FallbackDecision(FallbackLevel.SAFE_MODE, None, newest.ts_sec, newest.age_ms, reason)
