"""The service's Prometheus metrics, one registry per service instance (tests run several).

Names follow Prometheus conventions (``_total`` counters, base units: seconds, bytes).
The alert rules in ``deploy/prometheus/alerts.yml`` read these names.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

TICK_BUCKETS_S = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0)
WAKE_LAG_BUCKETS_S = (0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0, 5.0)


class Metrics:
    """Every metric the roles update; ``registry`` is what ``/metrics`` exposes."""

    def __init__(self) -> None:
        self.registry = registry = CollectorRegistry()
        # ingest
        self.events = Counter(
            "btc_events_total", "Normalised events received, by stream", ["stream"],
            registry=registry,
        )  # fmt: skip
        self.decode_errors = Counter(
            "btc_decode_errors_total", "Frames that failed to decode, by error type", ["error"],
            registry=registry,
        )  # fmt: skip
        self.duplicates = Counter(
            "btc_duplicate_events_total", "Events dropped as already seen (connection overlap)",
            ["stream"], registry=registry,
        )  # fmt: skip
        self.reconnects = Counter(
            "btc_reconnects_total", "Stream connections opened after the first, by reason",
            ["reason"], registry=registry,
        )  # fmt: skip
        self.gaps = Counter("btc_gaps_total", "Gaps detected, by kind", ["kind"], registry=registry)
        self.last_message = Gauge(
            "btc_stream_last_message_timestamp_seconds",
            "Wall time of the last message, by stream", ["stream"], registry=registry,
        )  # fmt: skip
        self.bus_pending = Gauge(
            "btc_bus_pending_events", "Events waiting to be written to the bus", registry=registry
        )
        # bad input and bounded queues: every kind of rejected input and every queue that
        # can drop is counted here, so one alert rule watches them all
        self.rejected = Counter(
            "btc_rejected_input_total",
            "Inputs refused as implausible or malformed and skipped, by source and kind",
            ["source", "kind"], registry=registry,
        )  # fmt: skip
        self.queue_depth = Gauge(
            "btc_queue_depth", "Items waiting in a bounded queue, by queue", ["queue"],
            registry=registry,
        )  # fmt: skip
        self.queue_dropped = Counter(
            "btc_queue_dropped_total", "Items dropped because a bounded queue was full, by queue",
            ["queue"], registry=registry,
        )  # fmt: skip
        # features
        self.book_valid = Gauge(
            "btc_book_valid", "1 while the local order book is in sync", registry=registry
        )
        self.reanchors = Counter(
            "btc_reanchors_total", "Atomic re-anchors of the hot state", registry=registry
        )
        self.reanchor_seconds = Histogram(
            "btc_reanchor_duration_seconds", "Gap detected to new state swapped in",
            buckets=(0.1, 0.5, 1, 2, 5, 10, 30, 60, 120), registry=registry,
        )  # fmt: skip
        self.feature_age = Gauge(
            "btc_feature_age_seconds", "Age of the newest feature vector at the last tick",
            registry=registry,
        )  # fmt: skip
        self.seconds_closed = Counter(
            "btc_feature_seconds_total", "Per-second feature vectors published", registry=registry
        )
        self.late_events = Counter(
            "btc_late_events_total", "Events for a second already published (not applied)",
            registry=registry,
        )  # fmt: skip
        self.seconds_corrected = Counter(
            "btc_feature_seconds_corrected_total",
            "Per-second feature vectors recomputed after a late trade was folded into its second",
            registry=registry,
        )  # fmt: skip
        self.backfilled_trades = Counter(
            "btc_backfilled_trades_total", "Trades recovered by id over REST after a gap",
            registry=registry,
        )  # fmt: skip
        # infer
        self.tick_latency = Histogram(
            "btc_tick_latency_seconds",
            "Cadence boundary to prediction published (event-loop lag included)",
            buckets=TICK_BUCKETS_S, registry=registry,
        )  # fmt: skip
        self.ticks_skipped = Counter(
            "btc_ticks_skipped_total",
            "Ticks not published, by reason: late_start (woke past the deadline), deadline "
            "(passed it before publishing), missed (boundary passed while the loop was busy)",
            ["reason"], registry=registry,
        )  # fmt: skip
        self.tick_wake_lag = Histogram(
            "btc_tick_wake_lag_seconds", "Cadence boundary to the infer loop waking for it",
            buckets=WAKE_LAG_BUCKETS_S, registry=registry,
        )  # fmt: skip
        self.tick_errors = Counter(
            "btc_tick_errors_total", "Ticks that raised unexpectedly (the loop goes on), by error",
            ["error"], registry=registry,
        )  # fmt: skip
        self.fallback = Counter(
            "btc_fallback_level_total", "Predictions by fallback level", ["level"],
            registry=registry,
        )  # fmt: skip
        self.model_errors = Counter(
            "btc_model_errors_total", "Inference calls that raised or gave no number, by reason",
            ["reason"], registry=registry,
        )  # fmt: skip
        self.model_info = Gauge(
            "btc_model_info", "1 for the model version being served", ["version"],
            registry=registry,
        )  # fmt: skip
        self.model_load_failures = Counter(
            "btc_model_load_failures_total", "Bundles or pointers refused (last good kept)",
            ["reason"], registry=registry,
        )  # fmt: skip
        self.redis_errors = Counter(
            "btc_redis_errors_total", "Redis commands that failed, by role", ["role"],
            registry=registry,
        )  # fmt: skip
        # archive
        self.segments = Counter(
            "btc_capture_segments_total", "Capture segments closed, by kind", ["kind"],
            registry=registry,
        )  # fmt: skip
        self.capture_write_errors = Counter(
            "btc_capture_write_errors_total",
            "Capture writes the disk refused (rows held and retried), by kind and errno",
            ["kind", "errno"], registry=registry,
        )  # fmt: skip
