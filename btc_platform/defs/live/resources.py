"""Where the live service's capture segments are, as the service itself computes it."""

from __future__ import annotations

from pathlib import Path

import dagster as dg

from realtime.service.settings import RealtimeSettings


class CaptureResource(dg.ConfigurableResource):
    """The capture directory: ``directory`` if set, else the live service's own setting
    (``BTC_DATA_DIR``/capture), read when the resource is used. Only closed segments are
    read; nothing here writes to it."""

    directory: str | None = None

    def path(self) -> Path:
        return Path(self.directory) if self.directory else RealtimeSettings().capture_dir
