"""Chaos bench: the service against the local exchange and a private Redis, one fault at a time.

Every part is real and its own process: ``btc-sim serve`` (live at speed 1 after a short
history), ``redis-server``, and ``btc-realtime run`` (all four roles) with its capture on a
tmpfs of its own and a model store of verified bundles. The faults come one after another,
each followed by a fixed market window:

* every stream fault the exchange has (drop, duplicate, reorder, truncate, stall,
  disconnect, serverShutdown; 429 and withheld ids while trades are being recovered), and
  the lying frames: times a year ahead or behind, a trade id 10^12 ahead, random bytes;
* Redis restarted (every key gone), and Redis paused (SIGSTOP) longer than the service's
  2 s socket timeout;
* a promoted bundle with a flipped byte, a pointer that is not JSON, and a bundle that
  passes every check but raises inside onnxruntime on live rows;
* the capture disk full (a filler file on the tmpfs) for the window;
* poison ``gaps:{SYM}`` entries, then one tick of the lake's gap-repair sensor.

Per fault it reports: whether the service stayed up (process alive, ``/healthz`` answering
at every poll), trades lost against the exchange's tape (per second, the larger of: ids
missing from the capture and from the gap events the service announced, and trades missing
from the published ``n_trades_1s``), mixed hot-state reads seen by a reader polling all run
long, predictions made (``pred:{SYM}`` and the predictions capture) and the fallback levels.
A service that is dead, not ready 30 s after the window, or still losing trades after it
(its features short of the tape in two checks 10 s apart) is restarted before the next
fault, so each fault is measured on its own; the trades a restart costs count against the
fault that made it necessary.
Target: up through all, 0 trades lost, 0 mixed reads.

    python bench/chaos.py [--smoke] [--window 12] [--only drop_trades,redis_pause] [--out F]

``--smoke`` runs the baseline, one dropped-trades and one garbage-frames fault with 4 s
windows (under a minute); it checks that the bench runs and measures nothing.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import random
import resource
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from _chaos_gaps import inject_and_evaluate
from _chaos_model import add_version, flip_a_byte, point_to, write_pointer_bytes
from _chaos_observe import (
    US,
    HotStateWatcher,
    Recorder,
    captured_trade_ids,
    now_us,
    tape_ids_by_second,
)
from _chaos_parts import (
    API_KEY,
    SYMBOL,
    CaptureDisk,
    ExchangeProcess,
    RedisProcess,
    ServiceProcess,
    free_port,
)
from _machine import machine
from _smoke import parse_arguments

from realtime.state.keys import Keys

ROOT = Path(__file__).resolve().parents[1]

KEYS = Keys(SYMBOL)
YEAR_S = 365 * 86_400
SERVICE_MEMORY_BYTES = 6 << 30
"""The service's address-space limit: a runaway allocation ends it, not the shared machine."""
POLL_S = 1.0
READY_TIMEOUT_S = 90.0


@dataclass
class Run:
    """The parts of one bench run and what was learnt so far."""

    redis: RedisProcess
    exchange: ExchangeProcess
    service: ServiceProcess
    disk: CaptureDisk
    models: Path
    good_version: str
    recorder: Recorder
    watcher: HotStateWatcher
    workdir: Path


@dataclass
class Fault:
    name: str
    inject: Callable[[Run], object]
    """Apply the fault; what it returns goes in the fault's notes."""
    undo: Callable[[Run], None] | None = None
    lift_after_s: float | None = None
    """Call ``undo`` this long after the injection instead of at the end of the window."""


@dataclass
class PhaseRecord:
    name: str
    market_start_us: int
    wall_start_us: int
    counts_start: Counter
    counters_start: dict[str, float] = field(default_factory=dict)
    polls: int = 0
    unanswered: int = 0
    not_ready: int = 0
    died: bool = False
    ready_at_end: bool = False
    notes: dict = field(default_factory=dict)
    market_end_us: int = 0
    wall_end_us: int = 0
    counts_end: Counter = field(default_factory=Counter)


# -- the faults --------------------------------------------------------------------------------


def stream(*faults: dict) -> Callable[[Run], object]:
    def inject(run: Run) -> object:
        run.exchange.post_faults(list(faults))
        return {"posted": list(faults)}

    return inject


def clear(run: Run) -> None:
    run.exchange.clear_faults()


def withhold_during_recovery(run: Run) -> object:
    last = int(run.exchange.status()["last_trade_id"])
    faults = [
        {"fault": "withhold", "ids": "trade", "first_id": last + 1, "last_id": last + 400},
        {"fault": "drop", "stream": "btcusdt@trade", "count": 3},
    ]
    run.exchange.post_faults(faults)
    return {"posted": faults, "lifted_after_s": 2.0}


def redis_restart(run: Run) -> object:
    run.redis.restart(down_s=3.0)
    return {"down_s": 3.0}


def redis_pause(run: Run) -> object:
    run.redis.pause()
    return {"paused_s": 5.0, "service_socket_timeout_s": 2.0}


def redis_resume(run: Run) -> None:
    run.redis.resume()


def corrupt_bundle(run: Run) -> object:
    version = add_version(run.models, day=1, bias=0.002)
    flip_a_byte(run.models, version)
    point_to(run.models, version, previous=(run.good_version,))
    return {"promoted": version, "damage": "one byte of model.onnx flipped after writing"}


def garbage_pointer(run: Run) -> object:
    content = b'\xff\xfe{"symbol": "BTCUSDT", "production": ' + random.Random(3).randbytes(64)
    write_pointer_bytes(run.models, content)
    return {"pointer": "not UTF-8, not JSON"}


def model_error_on_live_inputs(run: Run) -> object:
    version = add_version(run.models, day=2, bias=0.0, trap=True)
    point_to(run.models, version, previous=(run.good_version,))
    return {"promoted": version, "model": "passes its golden rows, raises on any live row"}


def repoint_good(run: Run) -> None:
    point_to(run.models, run.good_version)


def disk_full(run: Run) -> object:
    if not run.disk.kind.startswith("tmpfs"):
        return {"skipped": f"no size-limited capture disk: {run.disk.detail}"}
    written = run.disk.fill()
    return {"disk": run.disk.kind, "filler_bytes": written, "free_bytes": run.disk.free_bytes()}


def disk_free(run: Run) -> None:
    run.disk.free()


def poison_gaps(run: Run) -> object:
    return {"sensor": inject_and_evaluate(run.redis.url, KEYS.gaps, run.workdir / "lake", ROOT)}


TRADE, DEPTH, BBA = "btcusdt@trade", "btcusdt@depth", "btcusdt@bestBidAsk"

FAULTS = [
    Fault("none", lambda run: {"baseline": "no fault"}),
    Fault("drop_trades", stream({"fault": "drop", "stream": TRADE, "count": 5}), clear),
    Fault("drop_depth", stream({"fault": "drop", "stream": DEPTH, "count": 3}), clear),
    Fault("duplicate_trades", stream({"fault": "duplicate", "stream": TRADE, "count": 5}), clear),
    Fault("reorder_trades", stream({"fault": "reorder", "stream": TRADE, "count": 3}), clear),
    Fault("truncate_trades", stream({"fault": "truncate", "stream": TRADE, "count": 3}), clear),
    Fault("truncate_depth", stream({"fault": "truncate", "stream": DEPTH, "count": 2}), clear),
    Fault("stall_trades", stream({"fault": "stall", "stream": TRADE, "seconds": 5}), clear),
    Fault("disconnect", stream({"fault": "disconnect"}), clear),
    Fault("server_shutdown", stream({"fault": "server_shutdown"}), clear),
    Fault(
        "rest_429_during_recovery",
        stream(
            {"fault": "rest_status", "status": 429, "count": 3, "retry_after_s": 1},
            {"fault": "drop", "stream": TRADE, "count": 3},
        ),
        clear,
    ),
    Fault("withheld_ids_during_recovery", withhold_during_recovery, clear, lift_after_s=2.0),
    Fault(
        "far_future_trade",
        stream({"fault": "time_shift", "stream": TRADE, "count": 1, "shift_s": YEAR_S}),
        clear,
    ),
    Fault(
        "far_past_trade",
        stream({"fault": "time_shift", "stream": TRADE, "count": 1, "shift_s": -YEAR_S}),
        clear,
    ),
    Fault(
        "far_future_book",
        stream(
            {"fault": "time_shift", "stream": DEPTH, "count": 1, "shift_s": YEAR_S},
            {"fault": "time_shift", "stream": BBA, "count": 1, "shift_s": YEAR_S},
        ),
        clear,
    ),
    Fault(
        "huge_trade_id",
        stream({"fault": "id_jump", "stream": TRADE, "count": 1, "jump": 10**12}),
        clear,
    ),
    Fault(
        "garbage_frames",
        stream(
            {"fault": "garbage", "stream": TRADE, "count": 3},
            {"fault": "garbage", "stream": DEPTH, "count": 3},
            {"fault": "garbage", "stream": BBA, "count": 3},
        ),
        clear,
    ),
    Fault("redis_restart", redis_restart),
    Fault("redis_pause", redis_pause, redis_resume, lift_after_s=5.0),
    Fault("model_corrupt_bundle", corrupt_bundle, repoint_good),
    Fault("model_garbage_pointer", garbage_pointer, repoint_good),
    Fault("model_error_on_live_inputs", model_error_on_live_inputs, repoint_good),
    Fault("capture_disk_full", disk_full, disk_free),
    Fault("poison_gap_events", poison_gaps),
]
NOT_RUN = {
    "corrupt_archive": "the service never reads archive files (the lake's bronze does; "
    "btc_platform_tests cover it)",
}
SMOKE = ("none", "drop_trades", "garbage_frames")


# -- one phase ---------------------------------------------------------------------------------


def poll(run: Run, record: PhaseRecord, seconds: float) -> None:
    """Watch the service for ``seconds``: alive, and answering ``/healthz``."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        time.sleep(min(POLL_S, max(deadline - time.monotonic(), 0.0)))
        record.polls += 1
        if not run.service.alive():
            record.died = True
            continue
        health = run.service.health()
        if health is None:
            record.unanswered += 1
        elif not health.get("ready"):
            record.not_ready += 1


def run_phase(run: Run, fault: Fault, window_s: float, settle_s: float) -> PhaseRecord:
    record = PhaseRecord(
        fault.name,
        run.exchange.market_now_us(),
        now_us(),
        run.watcher.snapshot(),
        counters(run.service.metrics_text()),
    )
    try:
        record.notes["injected"] = fault.inject(run)
    except Exception as error:  # a fault the bench could not apply is reported, not fatal
        record.notes["inject_error"] = f"{type(error).__name__}: {error}"
    if fault.lift_after_s is not None and fault.undo is not None:
        poll(run, record, fault.lift_after_s)
        fault.undo(run)
        poll(run, record, max(window_s - fault.lift_after_s, 0.0))
    else:
        poll(run, record, window_s)
        if fault.undo is not None:
            fault.undo(run)
    poll(run, record, settle_s)
    collect(run)
    after = counters(run.service.metrics_text())
    record.notes["service_counters"] = {
        name: round(value - record.counters_start.get(name, 0.0), 3)
        for name, value in sorted(after.items())
        if value > record.counters_start.get(name, 0.0)
    }
    record.ready_at_end = bool((run.service.health() or {}).get("ready"))
    if record.died or not run.service.alive():
        record.died = True
        record.notes["exit_code"] = run.service.exit_code()
        record.notes["last_error"] = run.service.last_error()
    return record


def counters(metrics_text: str) -> dict[str, float]:
    """The service's own counters (``btc_*_total``) from its ``/metrics`` text."""
    values = {}
    for line in metrics_text.splitlines():
        name, _, value = line.rpartition(" ")
        if line.startswith("btc_") and "_total" in name:
            with contextlib.suppress(ValueError):
                values[name] = float(value)
    return values


def collect(run: Run) -> None:
    run.recorder.collect(run.exchange.market_now_us() // US + 1)


def recover(run: Run, record: PhaseRecord, settle_s: float) -> None:
    """Before the next fault: a service that is dead, not ready or losing trades is restarted."""
    reason = None
    if not run.service.alive():
        reason = "dead"
    elif not run.service.wait_ready(30.0):
        reason = "not ready 30 s after the window"
    else:
        market_now = run.exchange.market_now_us()
        # Seconds old enough that a lagging (not broken) service has published them; a loss
        # that is still there 10 s later is a poisoned state, not the fault's own seconds.
        lost = recent_features_lost(run, market_now - 16 * US, market_now - 6 * US)
        if lost:
            time.sleep(10.0)
            market_now = run.exchange.market_now_us()
            again = recent_features_lost(run, market_now - 16 * US, market_now - 6 * US)
            if again:
                reason = f"still losing trades 10 s later ({lost}, then {again}): state poisoned"
    if reason is None:
        return
    record.notes["restarted_after"] = reason
    run.service.stop()
    run.service.start()
    if not run.service.wait_ready(READY_TIMEOUT_S):
        record.notes["restart_not_ready"] = run.service.last_error() or "not ready"


def recent_features_lost(run: Run, start_us: int, end_us: int) -> int:
    first_us = (run.recorder.first_second or 0) * US  # nothing is read before the first fault
    start_us, end_us = max(int(start_us) // US * US, first_us), int(end_us) // US * US
    if end_us <= start_us:
        return 0
    collect(run)
    tape = tape_ids_by_second(run.exchange.url, SYMBOL, start_us, end_us)
    return sum(
        max(0, len(tape.get(second, ())) - run.recorder.n_trades.get(second, 0))
        for second in range(start_us // US, end_us // US)
    )


# -- the verdict -------------------------------------------------------------------------------


def evaluate(run: Run, records: list[PhaseRecord]) -> list[dict]:
    first_us, last_us = records[0].market_start_us, records[-1].market_end_us
    tape = tape_ids_by_second(run.exchange.url, SYMBOL, first_us // US * US, last_us // US * US)
    hour = 3600 * US
    captured = captured_trade_ids(run.service.capture_dir, first_us - hour, last_us + hour)
    results = []
    for record in records:
        seconds = range(record.market_start_us // US, record.market_end_us // US)
        lost = features_lost = record_lost = doubled = no_vector = 0
        unrecorded: list[int] = []
        for second in seconds:
            ids = tape.get(second, [])
            published = run.recorder.n_trades.get(second)
            if published is None:
                no_vector += 1
            missing_features = max(0, len(ids) - (published or 0))
            doubled += max(0, (published or 0) - len(ids))
            missing = [i for i in ids if i not in captured and not run.recorder.announced(i)]
            missing_record = len(missing)
            unrecorded += missing[: 10 - len(unrecorded)]
            features_lost += missing_features
            record_lost += missing_record
            lost += max(missing_features, missing_record)
        predictions = [
            p
            for tick_us, p in run.recorder.predictions.items()
            if record.wall_start_us <= tick_us < record.wall_end_us
        ]
        levels = Counter(str(p.fallback_level) for p in predictions)
        reasons = Counter(p.reason.split(";")[0] for p in predictions if p.fallback_level > 1)
        counts = record.counts_end - record.counts_start
        results.append(
            {
                "fault": record.name,
                "stayed_up": not record.died and record.unanswered == 0,
                "trades_lost": lost,
                "mixed_reads": counts["mixed"],
                "predictions": len(predictions),
                "fallback_levels": dict(sorted(levels.items())),
                "notes": {
                    "market_seconds": len(seconds),
                    "wall_s": round((record.wall_end_us - record.wall_start_us) / US, 1),
                    "tape_trades": sum(len(tape.get(s, [])) for s in seconds),
                    "trades_missing_from_features": features_lost,
                    "trades_missing_from_capture_and_gap_events": record_lost,
                    "unrecorded_trade_ids_sample": unrecorded,
                    "trades_counted_twice": doubled,
                    "seconds_without_vector": no_vector,
                    "healthz_polls": record.polls,
                    "healthz_unanswered": record.unanswered,
                    "healthz_not_ready": record.not_ready,
                    "ready_at_end": record.ready_at_end,
                    "hot_state_reads": counts["reads"],
                    "hot_state_absent_reads": counts["absent"],
                    "hot_state_read_errors": counts["errors"],
                    "model_versions": dict(Counter(p.model_version[-8:] for p in predictions)),
                    "degraded_reasons": dict(reasons.most_common(3)),
                    **record.notes,
                },
            }
        )
    return results


# -- the run -----------------------------------------------------------------------------------


def limit_service_memory() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (SERVICE_MEMORY_BYTES, SERVICE_MEMORY_BYTES))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--window", type=float, default=12.0, help="seconds after each fault")
    parser.add_argument("--settle", type=float, default=3.0, help="seconds before measuring")
    parser.add_argument("--only", help="comma-separated fault names (the baseline runs first)")
    parser.add_argument("--out", type=Path, help="also write the JSON here")
    parser.add_argument("--keep", action="store_true", help="keep the run's folder (logs)")
    arguments = parse_arguments(parser, {"window": 4.0, "settle": 2.0, "only": ",".join(SMOKE)})
    names = [fault.name for fault in FAULTS]
    chosen = names
    if arguments.only:
        wanted = set(arguments.only.split(","))
        unknown = wanted - set(names)
        if unknown:
            parser.error(f"unknown faults {sorted(unknown)}; choose from {names}")
        chosen = ["none", *[name for name in names if name in wanted and name != "none"]]
    started = time.perf_counter()
    workdir = Path(tempfile.mkdtemp(prefix="btc-chaos-"))
    result = run_bench(
        workdir, [f for f in FAULTS if f.name in chosen], arguments.window, arguments.settle
    )
    result |= {"smoke": arguments.smoke, "wall_s": round(time.perf_counter() - started, 1)}
    if not arguments.keep:
        import shutil

        shutil.rmtree(workdir, ignore_errors=True)
    else:
        result["workdir"] = str(workdir)
    text = json.dumps(result, indent=2)
    print(text)
    if arguments.out:
        arguments.out.write_text(text + "\n")


def run_bench(workdir: Path, faults: list[Fault], window_s: float, settle_s: float) -> dict:
    data_dir = workdir / "data"
    models = workdir / "models"
    good = add_version(models, day=0, bias=0.0)
    point_to(models, good)
    disk = CaptureDisk(data_dir / "capture", size_mb=256)
    disk.mount()
    redis_server = RedisProcess(workdir / "redis")
    exchange = ExchangeProcess(workdir / "exchange.log", history_s=120, seed=7)
    redis_server.start()
    exchange.start()
    environment = {
        "BTC_SYMBOL": SYMBOL,
        "BTC_BINANCE_REST_URL": exchange.url,
        "BTC_BINANCE_STREAM_URL": exchange.stream_url,
        "BTC_BINANCE_API_KEY": API_KEY,
        "BTC_REDIS_URL": redis_server.url,
        "BTC_DATA_DIR": str(data_dir),
        "BTC_MODEL_STORE": str(models),
        "BTC_MODEL_POLL_S": "1",
        "BTC_SEGMENT_MAX_S": "2",
    }
    service = ServiceProcess(environment, workdir, free_port(), preexec=limit_service_memory)
    watcher = HotStateWatcher(redis_server.url, KEYS)
    run = Run(
        redis_server,
        exchange,
        service,
        disk,
        models,
        good,
        Recorder(redis_server.url, KEYS),
        watcher,
        workdir,
    )
    records: list[PhaseRecord] = []
    try:
        service.start()
        if not service.wait_ready(READY_TIMEOUT_S):
            raise RuntimeError(f"the service never got ready: {service.last_error()}")
        watcher.start()
        run.recorder.first_second = exchange.market_now_us() // US - 1
        for fault in faults:
            record = run_phase(run, fault, window_s, settle_s)
            recover(run, record, settle_s)
            if records:
                records[-1].market_end_us = record.market_start_us
                records[-1].wall_end_us = record.wall_start_us
                records[-1].counts_end = record.counts_start
            records.append(record)
            sys.stderr.write(f"chaos: {fault.name} done\n")
        time.sleep(settle_s)
        collect(run)
        last = records[-1]
        last.market_end_us = run.exchange.market_now_us() - int(settle_s * US)
        last.wall_end_us = now_us()
        last.counts_end = watcher.snapshot()
        service.stop()
        watcher.stop()
        hour = 3600 * US
        captured_predictions = run.recorder.add_captured_predictions(
            data_dir / "capture", records[0].wall_start_us - hour, last.wall_end_us + hour
        )
        results = evaluate(run, records)
    finally:
        with contextlib.suppress(Exception):
            watcher.stop()
        service.stop()
        exchange.stop()
        redis_server.stop()
        disk.unmount()
    summary = {
        "faults": len(results),
        "stayed_up_through_all": all(r["stayed_up"] for r in results),
        "trades_lost": sum(r["trades_lost"] for r in results),
        "mixed_reads": sum(r["mixed_reads"] for r in results),
        "predictions": sum(r["predictions"] for r in results),
        "failing": [
            r["fault"]
            for r in results
            if not r["stayed_up"] or r["trades_lost"] or r["mixed_reads"]
        ],
    }
    return {
        "benchmark": "chaos",
        "machine": machine(),
        "window_s": window_s,
        "settle_s": settle_s,
        "capture_disk": disk.kind if disk.kind != "none" else disk.detail,
        "service_starts": service.starts,
        "predictions_only_in_capture": captured_predictions,
        "target": {"stayed_up_through_all": True, "trades_lost": 0, "mixed_reads": 0},
        "summary": summary,
        "results": results,
        "not_run": NOT_RUN,
    }


if __name__ == "__main__":
    main()
