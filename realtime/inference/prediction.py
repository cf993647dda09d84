"""The prediction record (Avro ``Prediction1s``, extended as ARCHITECTURE §4 says)."""

from __future__ import annotations

from typing import NamedTuple

from realtime.market import avro

SAFE_MODE = 5


class Prediction(NamedTuple):
    """One tick's outcome. ``yhat_log_return_10s`` is ``None`` in safe mode (level 5)."""

    symbol: str
    ts_sec: int
    """The feature second the prediction was made from (the label's ``t``)."""
    yhat_log_return_10s: float | None
    latency_ms: float
    """Tick start to prediction published, wall clock."""
    model_version: str
    """Empty when no model is loaded."""
    fallback_level: int
    """1 fresh, 2 repaired from the short history, 3 imputed, 4 from the lake, 5 safe mode."""
    feature_age_ms: int
    """From the end of second ``ts_sec`` to the tick, by the exchange's clock."""
    reason: str
    tick_time_us: int
    """When the tick started, µs since the epoch (the ``ingest_ts_us`` of the record)."""

    def to_fields(self) -> dict[str, str]:
        """The fields of its ``pred:{SYM}`` entry (Redis stream values are strings)."""
        return {
            "symbol": self.symbol,
            "ts_sec": str(self.ts_sec),
            "yhat": "" if self.yhat_log_return_10s is None else repr(self.yhat_log_return_10s),
            "latency_ms": repr(self.latency_ms),
            "model_version": self.model_version,
            "fallback_level": str(self.fallback_level),
            "feature_age_ms": str(self.feature_age_ms),
            "reason": self.reason,
            "tick_time_us": str(self.tick_time_us),
        }

    @staticmethod
    def from_fields(fields: dict) -> Prediction:
        """The inverse of ``to_fields`` (keys and values may be bytes, as redis-py returns)."""
        text = {_text(key): _text(value) for key, value in fields.items()}
        return Prediction(
            symbol=text["symbol"],
            ts_sec=int(text["ts_sec"]),
            yhat_log_return_10s=float(text["yhat"]) if text["yhat"] else None,
            latency_ms=float(text["latency_ms"]),
            model_version=text["model_version"],
            fallback_level=int(text["fallback_level"]),
            feature_age_ms=int(text["feature_age_ms"]),
            reason=text["reason"],
            tick_time_us=int(text["tick_time_us"]),
        )

    def to_avro(self, *, source: str = "live") -> bytes:
        """The ``Prediction1s`` payload, envelope included."""
        record = self._asdict()
        record.pop("tick_time_us")
        record |= {"source": source, "ingest_ts_us": self.tick_time_us, "version": 1}
        return avro.encode_record("Prediction1s", record)


def _text(value: str | bytes) -> str:
    return value.decode() if isinstance(value, bytes) else value
