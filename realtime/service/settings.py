"""The realtime service's settings: typed, local defaults, read from ``BTC_*`` variables.

The names are the batch side's where they mean the same thing (``BTC_SYMBOL``,
``BTC_REDIS_URL``, ``BTC_MODEL_STORE``, ``BTC_DATA_DIR``, ``BTC_BINANCE_API_KEY``), so one
environment configures both halves. Locally everything points at ``btc-sim serve --port
8765`` and a Redis on 6379; ``BTC_ENV=prod`` points at Binance unless told otherwise.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr, model_validator

from realtime.settings_checks import check_transport
from realtime.shared_settings import Environment, SharedSettings

__all__ = ["Environment", "RealtimeSettings"]

BINANCE_REST_URL = "https://api.binance.com"
BINANCE_STREAM_URL = "wss://stream-sbe.binance.com:9443"
BINANCE_ARCHIVE_URL = "https://data.binance.vision"
LOCAL_HTTP_URL = "http://127.0.0.1:8765"
LOCAL_STREAM_URL = "ws://127.0.0.1:8765"


class RealtimeSettings(SharedSettings):
    """Everything the service needs to know; every field has a working local default."""

    binance_rest_url: str | None = None
    binance_stream_url: str | None = None
    binance_archive_url: str | None = None
    binance_api_key: SecretStr | None = Field(default=None)
    """Sent as ``X-MBX-APIKEY`` on the stream upgrade and on REST; never logged."""
    data_dir: Path = Path("data")
    model_store: str | None = None
    """Bundles and the pointer (``<store>/<SYMBOL>/current.json``); default ``data_dir/models``."""

    cadence_ms: int = Field(default=1000, ge=1000, le=2000)
    """One prediction per cadence (the design's 1–2 s)."""
    deadline_ms: int = Field(default=100, gt=0)
    """A tick that has not finished by then is skipped and counted."""
    fresh_ms: int = 2500
    """Features at most this old (end of their second to the tick) are fresh: level 1."""
    stale_ms: int = 10_000
    """Older than ``fresh_ms`` but at most this old: level 2 (repaired from the history)."""
    lost_max_age_ms: int = 60_000
    """With the hot state lost (level 4), the oldest remembered vector still predicted from."""
    model_poll_s: float = 5.0
    """How often the pointer is re-read for a new production version."""
    model_failures_before_fallback: int = Field(default=3, ge=1)
    """Model errors in a row (raised, wrong shape, not finite) before the previous version
    serves again and the failing one is quarantined; each error is a safe-mode tick."""
    close_grace_ms: int = 250
    """A second closes once every stream has moved this far past its end (late trades)."""
    warmup_s: int = Field(default=70, ge=0)
    """Seconds of aggregate trades fetched over REST at start, so the windows start full."""
    silence_s: float = 5.0
    """A stream with no message for this long is a gap (``kind=silence``)."""
    max_clock_skew_ms: int = Field(default=5000, gt=0)
    """An event this far ahead of the market's newest time plus the wall time since is
    doubted until the exchange's server time confirms it (``market.plausibility``)."""
    max_clock_lag_ms: int = Field(default=60_000, gt=0)
    """An event this far behind its own stream's newest time is doubted likewise."""
    max_id_jump: int = Field(default=1_000_000, gt=0)
    """A trade or book update id this far past its stream's last is doubted until the
    exchange's latest id has reached it."""
    max_connection_age_s: float = 23.5 * 3600
    """Open the replacement connection this long after connecting (Binance cuts at 24 h)."""
    reconnect_max_s: float = 30.0
    metrics_host: str = "127.0.0.1"
    metrics_port: int = 9108
    segment_max_s: float = 300.0
    """Capture segments rotate after this long..."""
    segment_max_bytes: int = 64 * 1024 * 1024
    """...or this many bytes, whichever comes first."""

    @model_validator(mode="after")
    def _encrypted_in_prod(self) -> RealtimeSettings:
        check_transport(
            {
                "BTC_BINANCE_REST_URL": self.rest_url,
                "BTC_BINANCE_STREAM_URL": self.stream_url,
                "BTC_BINANCE_ARCHIVE_URL": self.archive_url,
            },
            production=self.env is Environment.PROD,
            allow_insecure=self.allow_insecure_transport,
        )
        return self

    @property
    def rest_url(self) -> str:
        if self.binance_rest_url:
            return self.binance_rest_url
        return BINANCE_REST_URL if self.env is Environment.PROD else LOCAL_HTTP_URL

    @property
    def stream_url(self) -> str:
        if self.binance_stream_url:
            return self.binance_stream_url
        return BINANCE_STREAM_URL if self.env is Environment.PROD else LOCAL_STREAM_URL

    @property
    def archive_url(self) -> str:
        if self.binance_archive_url:
            return self.binance_archive_url
        return BINANCE_ARCHIVE_URL if self.env is Environment.PROD else LOCAL_HTTP_URL

    @property
    def api_key(self) -> str | None:
        return self.binance_api_key.get_secret_value() if self.binance_api_key else None

    @property
    def model_store_location(self) -> str:
        return self.model_store or str(self.data_dir / "models")

    @property
    def capture_dir(self) -> Path:
        """Where the capture segments land (the lake's live bronze reads them)."""
        return self.data_dir / "capture"
