"""The demo's Dagster side: the asset graph materialised on a persistent instance.

Runs go through the same ``Definitions`` that ``dagster dev`` loads, on an instance under
the demo's ``DAGSTER_HOME``, so ``make ui`` shows every run, materialisation and check
the demo made. Steps run in the demo's process (the in-process executor): forking a
process per step would cost more than the steps on a 2-core laptop.

Each run executes on a worker thread. On the main thread Dagster takes SIGINT over for the
run and drops it when the run ends, so a Ctrl-C during the lake steps would be lost; off
the main thread it leaves the handler alone and the demo's Ctrl-C stays the demo's: the
main thread waits for the run in short joins, checking the demo's stop request.
"""

from __future__ import annotations

import datetime as dt
import os
import threading
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import dagster as dg

from btc_platform.defs.constants import (
    BRONZE_AGG_TRADES,
    BRONZE_LIVE_TRADES,
    GOLD_TRAINING_1S,
    MODEL_CANDIDATE,
    PRODUCTION_MODEL,
    SILVER_BARS_1S,
    SILVER_FEATURES_1S,
    SILVER_TRADES,
)
from realtime.stop_signals import StopRequest

US_PER_S = 1_000_000
LAKE_ASSETS = (SILVER_TRADES, SILVER_BARS_1S, SILVER_FEATURES_1S, GOLD_TRAINING_1S)
RUN_CONFIG = {
    "execution": {"config": {"in_process": {}}},
    # The demo prints its own table of what was built; Dagster's event log is in the UI.
    "loggers": {"console": {"config": {"log_level": "WARNING"}}},
}
INSTANCE_CONFIG = "telemetry:\n  enabled: false\n"


class LakeStepFailed(RuntimeError):
    """A Dagster run of the demo did not succeed (its run id is in the message)."""


@dataclass(frozen=True)
class Step:
    """One Dagster run: what it built (rows by asset), its checks, and how long it took."""

    run_id: str
    partitions: str
    rows: dict[str, int | None]
    """Rows each selected asset wrote (``None`` when it reports none), by asset path."""
    checks: dict[str, bool]
    seconds: float
    metadata: dict[str, dict[str, object]]
    """Each materialised asset's metadata values, by asset path (``ml/model_candidate``)."""


def prepare_instance(dagster_home: Path) -> dg.DagsterInstance:
    """The persistent instance ``make ui`` opens too (telemetry off)."""
    dagster_home.mkdir(parents=True, exist_ok=True)
    config = dagster_home / "dagster.yaml"
    if not config.exists():
        config.write_text(INSTANCE_CONFIG)
    os.environ["DAGSTER_HOME"] = str(dagster_home.resolve())
    return dg.DagsterInstance.get()


class DemoLake:
    """Materialises the demo's partitions through the code location's definitions."""

    def __init__(self, instance: dg.DagsterInstance, stop: StopRequest) -> None:
        # Imported here: the definitions read BTC_HISTORY_START, which the demo sets first.
        from btc_platform.definitions import build_definitions

        self.instance = instance
        self.stop = stop
        self.running: threading.Thread | None = None
        """The worker of the run in progress, if any (``finish`` waits for it)."""
        warnings.filterwarnings("ignore", module="dagster")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            self.job = build_definitions().resolve_implicit_global_asset_job_def()

    def finish(self, timeout_s: float = 30.0) -> None:
        """After an interrupt: let the run in progress end (it fails fast once the exchange
        and Redis are gone), so the instance records how it ended."""
        if self.running is not None:
            self.running.join(timeout_s)

    def history(self, start_us: int, end_us: int) -> list[Step]:
        """Bronze hour by hour from REST, then silver and gold day by day."""
        return [self.bronze(start_us, end_us), *self.lake_days(start_us, end_us)]

    def bronze(self, start_us: int, end_us: int) -> Step:
        return self._hours(BRONZE_AGG_TRADES, start_us, end_us)

    def lake_days(self, start_us: int, end_us: int) -> list[Step]:
        return [
            self._run(list(LAKE_ASSETS), partition_key=day, partitions=day)
            for day in day_keys(start_us, end_us)
        ]

    def train_and_promote(self, max_epochs: int) -> Step:
        """The candidate (train, export, score, gate) and its promotion to production."""
        candidate_op = "__".join(MODEL_CANDIDATE.path)
        return self._run(
            [MODEL_CANDIDATE, PRODUCTION_MODEL],
            partitions="newest days of gold",
            ops={candidate_op: {"config": {"max_epochs": max_epochs}}},
        )

    def live_trades(self, start_us: int, end_us: int) -> Step:
        """The service's closed trade capture into ``bronze.live_trades``."""
        return self._hours(BRONZE_LIVE_TRADES, start_us, end_us)

    def _hours(self, asset: dg.AssetKey, start_us: int, end_us: int) -> Step:
        """One run of an hourly asset over the hours touching ``[start_us, end_us)``."""
        first, last = hour_keys(start_us, end_us)
        return self._run(
            [asset],
            tags={
                "dagster/asset_partition_range_start": first,
                "dagster/asset_partition_range_end": last,
            },
            partitions=first if first == last else f"{first} … {last}",
        )

    def _run(
        self,
        selection: list[dg.AssetKey],
        *,
        partitions: str,
        partition_key: str | None = None,
        tags: dict[str, str] | None = None,
        ops: dict[str, object] | None = None,
    ) -> Step:
        self.stop.check()
        started = time.monotonic()
        outcome: dict[str, object] = {}

        def execute() -> None:
            try:
                outcome["result"] = self.job.execute_in_process(
                    instance=self.instance,
                    asset_selection=selection,
                    partition_key=partition_key,
                    tags=tags,
                    run_config=RUN_CONFIG | ({"ops": ops} if ops else {}),
                    raise_on_error=False,
                )
            except BaseException as error:  # handed to the main thread below
                outcome["error"] = error

        worker = threading.Thread(target=execute, name="dagster-run", daemon=True)
        self.running = worker
        worker.start()
        self.stop.join(worker)  # ``Interrupted`` leaves ``running`` set for ``finish``
        self.running = None
        seconds = time.monotonic() - started
        if "error" in outcome:
            raise outcome["error"]  # type: ignore[misc]
        result = outcome["result"]
        assert isinstance(result, dg.ExecuteInProcessResult)
        checks = {e.check_name: e.passed for e in result.get_asset_check_evaluations()}
        if not result.success:
            failed = sorted(name for name, passed in checks.items() if not passed)
            raise LakeStepFailed(
                f"Dagster run {result.run_id} of {[k.to_user_string() for k in selection]} "
                f"failed{f' (checks failed: {failed})' if failed else ''}; "
                "`make ui` shows its event log"
            )
        metadata: dict[str, dict[str, object]] = {}
        rows: dict[str, int] = {}
        for event in result.get_asset_materialization_events():
            path = event.asset_key.to_user_string()
            values = {k: v.value for k, v in event.materialization.metadata.items()}
            metadata[path] = values
            # A ranged run reports its rows once per partition: the same figure each time.
            if isinstance(values.get("rows"), int):
                rows.setdefault(path, values["rows"])
        by_asset = {key.to_user_string(): rows.get(key.to_user_string()) for key in selection}
        return Step(result.run_id, partitions, by_asset, checks, seconds, metadata)


def hour_keys(start_us: int, end_us: int) -> tuple[str, str]:
    """The first and last hourly partition keys touching ``[start_us, end_us)``."""
    first = _utc(start_us).strftime("%Y-%m-%d-%H:00")
    last = _utc(end_us - 1).strftime("%Y-%m-%d-%H:00")
    return first, last


def day_keys(start_us: int, end_us: int) -> list[str]:
    """The daily partition keys touching ``[start_us, end_us)``, in order."""
    first, last = _utc(start_us).date(), _utc(end_us - 1).date()
    return [(first + dt.timedelta(days=n)).isoformat() for n in range((last - first).days + 1)]


def _utc(us: int) -> dt.datetime:
    return dt.datetime.fromtimestamp(us / US_PER_S, dt.UTC)
