"""``btc-realtime``: the realtime service's command line.

``sbe-decode`` is the first tool to reach for when a live frame looks wrong: it prints one
JSON object per frame with the header, the wire exponents and the decoded fields, or a
JSON error object naming what is wrong with it.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TextIO

from realtime.binance.sbe import SbeDecodeError
from realtime.binance.sbe.describe import describe_frame
from realtime.binance.sbe.frame_file import FrameFileError, read_frames


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``btc-realtime`` console script; returns the exit status."""
    parser = _parser()
    arguments = parser.parse_args(argv)
    return arguments.command(arguments)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="btc-realtime", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(title="commands", required=True)
    decode = commands.add_parser(
        "sbe-decode",
        help="decode SBE stream frames to JSON lines",
        description="Decode Binance SBE stream frames; one JSON object per frame on stdout. "
        "Exit status 1 if any frame failed to decode.",
    )
    source = decode.add_mutually_exclusive_group(required=True)
    source.add_argument(
        "--hex",
        action="append",
        metavar="HEX",
        help="a frame in hex (spaces allowed); repeat for more",
    )
    source.add_argument(
        "--file",
        type=Path,
        metavar="PATH",
        help="a file of frames, each prefixed by its uint32 LE length ('-' = stdin)",
    )
    decode.set_defaults(command=_sbe_decode)

    replay = commands.add_parser(
        "replay-parity",
        help="replay stored trades through the live feature path and compare with the batch path",
        description="Feed a stored stream through the live path (bars, then features one second "
        "at a time) and compare every feature vector with the batch path bit for bit. "
        "Exit status 1 on any difference.",
    )
    stored = replay.add_mutually_exclusive_group(required=True)
    stored.add_argument(
        "--trades",
        type=Path,
        metavar="ZIP",
        help="contract v1: a data.binance.vision spot trades zip",
    )
    stored.add_argument(
        "--capture",
        type=Path,
        metavar="FILE",
        help="contract v2: a recorded JSON combined-stream capture (trades, bookTicker, depth)",
    )
    replay.add_argument(
        "--quotes", type=Path, metavar="CSV", help="with --trades: a recorded bookTicker CSV"
    )
    replay.set_defaults(command=_replay_parity)

    for role in ("run", "ingest", "features", "infer", "archive"):
        service = commands.add_parser(
            role,
            help="run every role of the service" if role == "run" else f"run the {role} role alone",
            description="Settings come from BTC_* environment variables (see docs/realtime.md); "
            "SIGINT or SIGTERM stops cleanly.",
        )
        service.add_argument(
            "--duration", type=float, metavar="S", help="stop after S seconds (default: run on)"
        )
        service.add_argument("--metrics-port", type=int, help="port of /metrics and /healthz")
        service.add_argument("--log-level", default="INFO")
        service.set_defaults(command=_serve, roles=None if role == "run" else (role,))
    return parser


def _serve(arguments: argparse.Namespace) -> int:
    import asyncio

    from realtime.stop_signals import end_at_once, set_on_stop_signals

    # Until the service runs, Ctrl-C and SIGTERM end the process at once (nothing to stop
    # cleanly yet); then they set ``stop`` and the service shuts its roles down in order.
    end_at_once()
    from realtime.service import logs
    from realtime.service.runner import ROLES, Service
    from realtime.service.settings import RealtimeSettings

    logs.configure(arguments.log_level)
    settings = RealtimeSettings()
    if arguments.metrics_port is not None:
        settings = settings.model_copy(update={"metrics_port": arguments.metrics_port})

    async def serve() -> None:
        stop = asyncio.Event()
        set_on_stop_signals(stop)
        await Service(settings, arguments.roles or ROLES).run(stop, arguments.duration)

    asyncio.run(serve())
    return 0


def _replay_parity(arguments: argparse.Namespace) -> int:
    if arguments.capture is not None:
        return _replay_parity_v2(arguments.capture)
    # Imported here: the codec commands should not pay for the feature engine's imports.
    from realtime.binance.archive import read_table
    from realtime.features.replay import replay_parity
    from realtime.sim.captures import book_ticker_csv

    trades = read_table(arguments.trades, "trades")
    quotes = book_ticker_csv(arguments.quotes) if arguments.quotes else None
    report = replay_parity(trades, quotes)
    summary = {"equal": report.equal, "seconds": report.seconds, "features": report.features}
    summary |= {
        "trades": report.trades,
        "quotes": report.quotes,
        "mismatched_values": report.mismatched_values,
    }
    if report.first_mismatch is not None:
        summary["first_mismatch"] = vars(report.first_mismatch)
    sys.stdout.write(json.dumps(summary) + "\n")
    sys.stderr.write(report.summary() + "\n")
    return 0 if report.equal else 1


def _replay_parity_v2(capture: Path) -> int:
    from realtime.features.engine_v2 import FEATURES_V2
    from realtime.features.replay_v2 import recorded_market, replay_parity_v2
    from realtime.sim.capture_replay import CaptureReplay

    # No initial book: a capture holds no REST snapshot, so the depth book stays invalid.
    replay = CaptureReplay(capture)
    events = [event for part in iter(replay.next_events, None) for event in part]
    report = replay_parity_v2(recorded_market(replay.symbol, events))
    summary = {
        "contract": 2,
        "equal": report.equal,
        "seconds": report.seconds,
        "features": len(FEATURES_V2),
        "valid_book_seconds": report.valid_book_seconds,
        "mismatched_values": report.mismatched_values,
        "skipped_lines": replay.skipped_lines,
    }
    if report.first_mismatch is not None:
        summary["first_mismatch"] = vars(report.first_mismatch)
    sys.stdout.write(json.dumps(summary) + "\n")
    return 0 if report.equal else 1


def _sbe_decode(arguments: argparse.Namespace) -> int:
    out: TextIO = sys.stdout
    failures = 0
    try:
        for index, frame in enumerate(_frames(arguments)):
            try:
                described = {"frame": index, **describe_frame(frame)}
            except SbeDecodeError as error:
                failures += 1
                described = {
                    "frame": index,
                    "error": type(error).__name__,
                    "detail": str(error),
                    "hex": frame.hex(),
                }
            out.write(json.dumps(described) + "\n")
    except (FrameFileError, ValueError) as error:
        # An unreadable input (bad hex, broken frame file): what was decoded so far stands.
        failures += 1
        out.write(json.dumps({"error": type(error).__name__, "detail": str(error)}) + "\n")
    return 1 if failures else 0


def _frames(arguments: argparse.Namespace) -> Iterator[bytes]:
    if arguments.hex:
        for text in arguments.hex:
            yield bytes.fromhex(text)
        return
    if str(arguments.file) == "-":
        yield from read_frames(sys.stdin.buffer)
        return
    with arguments.file.open("rb") as file:
        yield from read_frames(file)


if __name__ == "__main__":
    sys.exit(main())
