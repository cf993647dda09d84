"""``python -m btc_platform.demo`` (``make demo``): the whole platform on one machine, once.

1. The local exchange generates a market with the planted signal: a few hours of history,
   then live trading at real speed, on REST and SBE WebSocket like Binance.
2. A private ``redis-server``.
3. Dagster materialises the history: bronze (REST, hour by hour) → silver → gold.
4. Dagster trains a model on gold, exports it to ONNX, gates it and promotes it.
5. ``btc-realtime run`` serves the promoted model against the live stream for a minute;
   the demo prints each prediction as it lands in Redis.
6. Dagster lands the live minute (its hours of bronze and gold, and the service's trade
   capture) and the demo scores the predictions against the realised returns.

Everything lands under ``--data-dir`` (default ``data/demo``, emptied first); ``make ui``
opens Dagster on it. Ctrl-C stops every process the demo started, newest first.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import time
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from btc_platform.demo import processes
from btc_platform.demo.processes import ChildFailed, Children
from realtime.stop_signals import Interrupted, StopRequest

if TYPE_CHECKING:
    from btc_platform.demo.lake import DemoLake, Step
    from realtime.inference.prediction import Prediction

US_PER_S = 1_000_000
MARKET_START = "2026-01-01T00:00:00Z"
"""The generated market's first second: the partitions' first day (``BTC_HISTORY_START``)."""
SYMBOL = "BTCUSDT"
"""The local exchange's one symbol, and the settings' default."""
API_KEY = "demo-local-key"
"""The local exchange wants the header, not a real key."""


def main(argv: Sequence[str] | None = None) -> int:
    arguments = _parser().parse_args(argv)
    # Ctrl-C and `kill` only record a stop request; each long step of the demo checks it and
    # raises ``Interrupted`` from the demo's own code (see realtime/stop_signals.py for why
    # a raising handler would lose it).
    stop = StopRequest().install()
    children = Children(arguments.data_dir / "logs")
    demo = Demo(arguments, children, stop)
    try:
        return demo.run()
    except Interrupted as interrupted:
        _say("\nInterrupted: stopping everything the demo started …")
        return interrupted.exit_status
    except ChildFailed as error:
        _say(f"\ndemo failed: {error}")
        return 1
    finally:
        # Nothing raises in here on a further Ctrl-C: it is only counted, so every child
        # is stopped (SIGKILL after its timeout) and none is orphaned.
        stopped = children.stop_all()
        if demo.lake is not None:
            demo.lake.finish()
        if stopped:
            _say(f"stopped: {', '.join(f'{name} (exit {code})' for name, code in stopped.items())}")


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="btc-demo", description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, default=Path("data/demo"))
    parser.add_argument("--history-hours", type=float, default=6.0)
    parser.add_argument("--live-seconds", type=float, default=60.0)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--signal", type=float, default=1.0, help="planted signal strength")
    parser.add_argument("--max-epochs", type=int, default=200)
    return parser


def _say(text: str = "") -> None:
    print(text, flush=True)


class Demo:
    def __init__(
        self, arguments: argparse.Namespace, children: Children, stop: StopRequest
    ) -> None:
        self.arguments = arguments
        self.children = children
        self.stop = stop
        self.data_dir: Path = arguments.data_dir
        self.env: dict[str, str] = {}
        """The ``BTC_*`` settings of this process and its children (set once URLs are known)."""
        self.lake: DemoLake | None = None
        self.facts: dict[str, object] = {}
        """What the demo did, written to ``summary.json`` for scripts and tests."""

    def run(self) -> int:
        started = time.monotonic()
        arguments = self.arguments
        if self.data_dir.exists():
            shutil.rmtree(self.data_dir)
        self.data_dir.mkdir(parents=True)
        history_s = arguments.history_hours * 3600
        _say(f"btc-platform demo: everything local, under {self.data_dir}/\n")

        _say(
            f"[1/6] Local exchange: seed {arguments.seed}, planted signal "
            f"{arguments.signal:g}, {arguments.history_hours:g} h of history from "
            f"{MARKET_START}, then live at real speed"
        )
        clock = time.monotonic()
        exchange = processes.start_exchange(
            self.children,
            self.stop,
            seed=arguments.seed,
            signal_strength=arguments.signal,
            start=MARKET_START,
            history_s=history_s,
        )
        _say(
            f"      {exchange.trades_in_history:,} trades generated in "
            f"{time.monotonic() - clock:.1f} s; REST {exchange.rest_url}, "
            f"streams {exchange.stream_url}"
        )

        _say("[2/6] Redis: a private redis-server")
        _, redis_url = processes.start_redis(self.children, self.stop, self.data_dir / "redis")
        _say(f"      {redis_url}")
        self._settle_environment(exchange, redis_url)

        # Dagster is imported only now: the environment above is what its resources read.
        from btc_platform.demo import lake as lake_module

        _say(f"[3/6] Lakehouse through Dagster (instance in {self.data_dir / 'dagster'})")
        self.stop.check()  # importing Dagster took a few seconds
        lake = lake_module.DemoLake(
            lake_module.prepare_instance(self.data_dir / "dagster"), self.stop
        )
        self.lake = lake
        market_start_us = exchange.history_end_us - int(history_s * US_PER_S)
        for step in lake.history(market_start_us, exchange.history_end_us):
            self._show_step(step)

        _say("[4/6] Model: train on gold, export to ONNX, gate, promote")
        trained = lake.train_and_promote(arguments.max_epochs)
        self._show_step(trained)
        version = self._show_model(trained)

        _say(
            f"[5/6] Realtime service (btc-realtime run) for {arguments.live_seconds:g} s "
            "against the live stream"
        )
        predictions, skipped = self._serve_live(redis_url)

        _say("[6/6] The live minute into the lake, and the predictions scored")
        live_end_us = self._exchange_time_us(exchange.rest_url)
        for step in lake.history(exchange.history_end_us, live_end_us):
            self._show_step(step)
        self._show_step(lake.live_trades(exchange.history_end_us, live_end_us))
        labels, lake_forecasts = self._from_the_lake(predictions, version)

        from btc_platform.demo import report

        summary = report.summarise_live(predictions, skipped, labels, lake_forecasts)
        _say("\nSummary")
        lines = report.live_lines(
            summary, cadence_ms=1000, deadline_ms=100, test_hit_rate=self.facts["test_hit_rate"]
        )
        for line in lines:
            _say(f"  {line}")
        for line in self._where(version):
            _say(f"  {line}")
        elapsed = time.monotonic() - started
        _say(f"  took            {elapsed:.0f} s\n\nSee it in Dagster: make ui")
        self.facts |= {
            "predictions": summary.predictions,
            "skipped_ticks": summary.skipped_ticks,
            "latency_p50_ms": summary.latency_p50_ms,
            "latency_p99_ms": summary.latency_p99_ms,
            "fallback_levels": summary.levels,
            "model_version": version,
            "model_versions_served": summary.model_versions,
            "scored": summary.scored,
            "parity_checked": summary.parity_checked,
            "parity_equal": summary.parity_equal,
            "hit_rate": summary.hit_rate,
            "elapsed_s": elapsed,
            "pids": self.children.pids,
        }
        (self.data_dir / "summary.json").write_text(json.dumps(self.facts, indent=2) + "\n")
        return 0

    def _settle_environment(self, exchange: processes.Exchange, redis_url: str) -> None:
        """Only the demo's own ``BTC_*`` settings, for this process and its children."""
        for name in [name for name in os.environ if name.startswith("BTC_")]:
            del os.environ[name]
        self.env = {
            "BTC_ENV": "local",
            "BTC_SYMBOL": SYMBOL,
            "BTC_DATA_DIR": str(self.data_dir.resolve()),
            "BTC_BINANCE_REST_URL": exchange.rest_url,
            "BTC_BINANCE_ARCHIVE_URL": exchange.rest_url,
            "BTC_BINANCE_STREAM_URL": exchange.stream_url,
            "BTC_BINANCE_API_KEY": API_KEY,
            "BTC_REDIS_URL": redis_url,
            "BTC_HISTORY_START": MARKET_START[:10],
        }
        os.environ.update(self.env)

    def _show_step(self, step: Step) -> None:
        for asset, rows in step.rows.items():
            count = "" if rows is None else f"{rows:>10,} rows"
            _say(f"      {asset:<22} {step.partitions:<34} {count:>15}")
        failed = sorted(name for name, passed in step.checks.items() if not passed)
        checks = f", checks {len(step.checks) - len(failed)}/{len(step.checks)} passed"
        _say(
            f"        one Dagster run, {step.seconds:.1f} s{checks if step.checks else ''}"
            f"{f' (failed: {failed})' if failed else ''}"
        )

    def _show_model(self, step: Step) -> str:
        from btc_platform.lakehouse.catalog import open_catalog
        from btc_platform.ml import registry
        from btc_platform.settings import LakehouseSettings

        candidate = step.metadata["ml/model_candidate"]
        version = str(candidate["model_version"])
        entry = registry.entry(open_catalog(LakehouseSettings()), SYMBOL, version)
        assert entry is not None, version
        production = step.metadata["ml/production_model"]
        hit = "n/a" if entry.test_hit_rate is None else f"{entry.test_hit_rate:.1%}"
        _say(
            f"      {version}: on test, MAE {entry.test_mae * 1e4:.3f} bp (zero forecast "
            f"{entry.zero_mae * 1e4:.3f} bp), hit rate {hit}"
        )
        _say(f"      {production['outcome']}")
        self.facts |= {
            "test_mae": entry.test_mae,
            "zero_mae": entry.zero_mae,
            "test_hit_rate": entry.test_hit_rate,
        }
        if production.get("production") != version:
            raise ChildFailed(f"the demo's model was not promoted: {production['outcome']}")
        return version

    def _serve_live(self, redis_url: str) -> tuple[list[Prediction], int]:
        import redis

        from btc_platform.demo import report
        from realtime.inference.prediction import Prediction
        from realtime.state.keys import Keys

        metrics_port = processes.free_port()
        service = processes.start_realtime(self.children, self.env, metrics_port)
        client = redis.Redis.from_url(redis_url)
        stream = Keys(SYMBOL).predictions
        predictions: list[Prediction] = []
        last_id = "0-0"
        skipped = 0
        deadline = time.monotonic() + self.arguments.live_seconds
        _say(f"      (its logs: {service.log_path})\n\n  {report.TABLE_HEADER}")
        while time.monotonic() < deadline:
            self.stop.check()
            if not service.running():
                raise ChildFailed(f"the realtime service exited:\n{service.log_tail()}")
            wait_ms = max(1, int(min(1.0, deadline - time.monotonic()) * 1000))
            for _, entries in client.xread({stream: last_id}, block=wait_ms) or []:
                for entry_id, fields in entries:
                    last_id = entry_id
                    prediction = Prediction.from_fields(fields)
                    predictions.append(prediction)
                    _say(f"  {report.prediction_row(prediction)}")
            skipped = self._skipped_ticks(metrics_port, skipped)
        client.close()
        status = self.children.stop(service)
        _say(f"\n      service stopped (exit {status}); {len(predictions)} predictions")
        if status != 0:
            raise ChildFailed(f"the realtime service exited with {status}:\n{service.log_tail()}")
        return predictions, skipped

    @staticmethod
    def _skipped_ticks(port: int, last: int) -> int:
        """The service's ``btc_ticks_skipped_total`` (the last value read if unreachable)."""
        from prometheus_client.parser import text_string_to_metric_families

        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=1) as reply:
                text = reply.read().decode()
        except OSError:
            return last
        for family in text_string_to_metric_families(text):
            if family.name == "btc_ticks_skipped":  # every reason: late, deadline, missed
                return int(
                    sum(s.value for s in family.samples if s.name == "btc_ticks_skipped_total")
                )
        return last

    @staticmethod
    def _exchange_time_us(rest_url: str) -> int:
        with urllib.request.urlopen(f"{rest_url}/api/v3/time", timeout=5) as reply:
            return int(json.loads(reply.read())["serverTime"]) * 1000

    def _from_the_lake(
        self, predictions: list[Prediction], version: str
    ) -> tuple[dict[int, float], dict[int, float]]:
        """For the predicted seconds, from gold.training_1s: the realised 10 s log return,
        and the served model's forecast from the lake's features (what training saw)."""
        from btc_platform.lakehouse import tables
        from btc_platform.lakehouse.catalog import open_catalog
        from btc_platform.ml.store import ModelStore
        from btc_platform.settings import LakehouseSettings
        from realtime.features.contract import CONTRACT_V1
        from realtime.inference.bundle import load_bundle

        if not predictions:
            return {}, {}
        settings = LakehouseSettings()
        seconds = [p.ts_sec for p in predictions]
        rows = tables.scan_window(
            open_catalog(settings),
            tables.GOLD_TRAINING_1S,
            min(seconds) * US_PER_S,
            (max(seconds) + 1) * US_PER_S,
            symbol=SYMBOL,
        )
        ts = rows["ts_sec"].to_pylist()
        realised = rows[CONTRACT_V1.label].to_pylist()
        labels = {t: y for t, y in zip(ts, realised, strict=True) if y is not None}
        bundle = ModelStore.open(settings.model_store_location).fetch_bundle(
            settings.symbol, version, self.data_dir / "model-cache" / "demo"
        )
        model = load_bundle(bundle)
        inputs = np.column_stack(
            [rows[name].to_numpy(zero_copy_only=False) for name in model.manifest.input_names]
        ).astype(np.float64)
        complete = ~np.isnan(inputs).any(axis=1)
        forecasts = model.predict(inputs[complete]) if complete.any() else np.empty(0)
        lake = dict(zip(np.asarray(ts)[complete].tolist(), forecasts.tolist(), strict=True))
        return labels, lake

    def _where(self, version: str) -> list[str]:
        data = self.data_dir
        return [
            f"model           {data / 'models' / SYMBOL} (bundle {version}, pointer current.json)",
            f"Iceberg         catalog {data / 'catalog.sqlite'}, tables in {data / 'warehouse'}",
            "                bronze.agg_trades, silver.trades, silver.bars_1s, "
            "silver.features_1s, gold.training_1s, bronze.live_trades, ml.model_registry",
            f"capture         {data / 'capture'} (the service's Parquet segments)",
            f"Dagster         {data / 'dagster'} (every run and check above)",
            f"logs            {data / 'logs'}",
        ]
