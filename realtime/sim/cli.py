"""``btc-sim``: run the local Binance-compatible exchange, or compare its market with a capture.

``btc-sim serve --seed 7 --speed 1 --history 6h --port 9001`` prints its base URLs as JSON
and serves until interrupted. ``--capture FILE`` replays a recorded JSON combined-stream
capture instead of the generator. ``btc-sim calibrate --capture FILE`` prints the
generator-versus-capture table of docs/local_exchange_calibration.md.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import re
import sys
import time
from collections.abc import Sequence
from datetime import datetime
from pathlib import Path

from realtime.sim.exchange import ExchangeConfig, LocalExchange, faults_from_json
from realtime.sim.faults import FaultSpecError
from realtime.sim.source import MarketSource
from realtime.stop_signals import end_at_once, set_on_stop_signals

_DURATION = re.compile(r"^(?P<value>\d+(?:\.\d+)?)(?P<unit>[smhd]?)$")
_UNIT_S = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


def duration_s(text: str) -> float:
    """``90``, ``30s``, ``15m``, ``6h``, ``2d`` as seconds."""
    match = _DURATION.match(text.strip())
    if match is None:
        raise argparse.ArgumentTypeError(f"not a duration: {text!r} (use e.g. 30s, 15m, 6h)")
    return float(match["value"]) * _UNIT_S[match["unit"]]


def speed(text: str) -> float:
    """A speed factor: ``1`` real time, ``10`` ten times faster, ``max`` unlimited, ``0`` paused."""
    if text.lower() in ("max", "unlimited", "inf"):
        return math.inf
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a speed: {text!r} (a factor, or 'max')") from None
    if value < 0:
        raise argparse.ArgumentTypeError("speed must be >= 0")
    return value


def start_time_us(text: str) -> int:
    """An ISO-8601 UTC time (``2026-01-01T00:00:00Z``) as epoch microseconds."""
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an ISO-8601 time: {text!r}") from None
    if moment.tzinfo is None:
        raise argparse.ArgumentTypeError("give the start time in UTC, e.g. 2026-01-01T00:00:00Z")
    return int(moment.timestamp()) * 1_000_000 + moment.microsecond


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``btc-sim`` console script; returns the exit status."""
    arguments = _parser().parse_args(argv)
    return arguments.command(arguments)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="btc-sim", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(title="commands", required=True)

    serve = commands.add_parser("serve", help="serve REST, SBE streams and archive files")
    serve.add_argument("--seed", type=int, default=7, help="generator seed (default 7)")
    serve.add_argument("--speed", type=speed, default=1.0, help="1, N, or max (default 1)")
    serve.add_argument(
        "--history", type=duration_s, default=3600.0, help="past served at start (default 1h)"
    )
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=9001, help="0 = any free port")
    serve.add_argument(
        "--start",
        type=start_time_us,
        help="UTC start of the generated history (default: now minus the history, so that "
        "at speed 1 market time follows the wall clock)",
    )
    serve.add_argument("--signal", type=float, default=0.0, help="planted signal strength")
    serve.add_argument("--capture", type=Path, help="replay this JSON capture instead")
    serve.add_argument("--faults", type=Path, help="a JSON list of scripted faults")
    serve.add_argument(
        "--weight-limit",
        default="6000",
        help="request weight per minute, or 'off' (default 6000)",
    )
    serve.set_defaults(command=_serve)

    calibrate = commands.add_parser(
        "calibrate", help="print the generator-versus-capture statistics table"
    )
    calibrate.add_argument("--capture", type=Path, required=True)
    calibrate.add_argument("--seed", type=int, default=7)
    calibrate.add_argument("--minutes", type=float, default=30.0, help="generated minutes")
    calibrate.set_defaults(command=_calibrate)
    return parser


def _source(arguments: argparse.Namespace) -> MarketSource:
    if arguments.capture is not None:
        from realtime.sim.capture_replay import CaptureReplay

        return CaptureReplay(arguments.capture)
    from realtime.sim.market_model import MarketModel, MarketParams

    start = arguments.start
    if start is None:
        start = (int(time.time() - arguments.history) // 60 * 60) * 1_000_000
    return MarketModel(
        MarketParams(seed=arguments.seed, start_time_us=start, signal_strength=arguments.signal)
    )


def _serve(arguments: argparse.Namespace) -> int:
    try:
        faults = faults_from_json(arguments.faults.read_text()) if arguments.faults else ()
    except (OSError, ValueError, FaultSpecError) as error:
        print(f"btc-sim: bad fault script {arguments.faults}: {error}", file=sys.stderr)
        return 2
    weight = arguments.weight_limit
    config = ExchangeConfig(
        host=arguments.host,
        port=arguments.port,
        speed=arguments.speed,
        history_s=arguments.history,
        weight_limit=None if weight == "off" else int(weight),
        faults=faults,
    )
    # Generating the history can take a while: until it is served, Ctrl-C and SIGTERM end
    # the process at once; from then on they end the server cleanly (``_run``).
    end_at_once()
    asyncio.run(_run(_source(arguments), config))
    return 0


async def _run(source: MarketSource, config: ExchangeConfig) -> None:
    async with LocalExchange(source, config) as exchange:
        # Ctrl-C and SIGTERM (docker stop, a supervisor) end the server cleanly from the
        # moment it announces itself.
        stop = asyncio.Event()
        set_on_stop_signals(stop)
        print(
            json.dumps(
                {
                    "rest": exchange.rest_url,
                    "streams": exchange.stream_url,
                    "archive": exchange.archive_url,
                    "admin": exchange.admin_url,
                    "symbol": exchange.symbol,
                    "history_end_us": exchange.history_end_us,
                    "trades_in_history": len(exchange.market.tape),
                }
            ),
            flush=True,
        )
        await stop.wait()


def _calibrate(arguments: argparse.Namespace) -> int:
    from realtime.sim.calibration import calibration_table

    print(calibration_table(arguments.capture, seed=arguments.seed, minutes=arguments.minutes))
    return 0


if __name__ == "__main__":
    sys.exit(main())
