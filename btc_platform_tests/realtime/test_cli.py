"""``btc-realtime sbe-decode`` through the installed console script, as a user runs it."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

from realtime.binance.sbe import encode
from realtime.binance.sbe.frame_file import write_frames
from realtime.market.events import BestBidAsk, DepthSnapshot

CLI = str(Path(sys.executable).with_name("btc-realtime"))

# SPEC 1.9 worked examples.
DEPTH_DIFF_HEX = (
    "1a00132701000000 4022224648470600 01046bf414000000 03046bf414000000 fefb "
    "10000100 3fb4960000000000 f049020000000000 "
    "10000100 79b4960000000000 0000000000000000 0742544355534454"
)
TRADE_HEX = (
    "120010270100000020e127464847060038dd274648470600fefb1900010000007bbca0650100000046b4960000000000"
    "c409000000000000000742544355534454"
)


def run(*arguments: str, stdin: bytes | None = None) -> tuple[int, list[dict]]:
    result = subprocess.run(
        [CLI, *arguments], input=stdin, capture_output=True, timeout=60, check=False
    )
    lines = [json.loads(line) for line in result.stdout.decode().splitlines()]
    return result.returncode, lines


def test_worked_depth_diff_example_decodes_to_the_spec_values():
    status, (event,) = run("sbe-decode", "--hex", DEPTH_DIFF_HEX)
    assert status == 0
    assert event == {
        "frame": 0,
        "template_id": 10003,
        "message": "DepthDiffStreamEvent",
        "schema_id": 1,
        "version": 0,
        "block_length": 26,
        "frame_bytes": 82,
        "price_exponent": -2,
        "qty_exponent": -5,
        "symbol": "BTCUSDT",
        "event_time_us": 1767225600123456,
        "first_book_update_id": 90000000001,
        "last_book_update_id": 90000000003,
        "bids": [{"price_e8": 9876543000000, "qty_e8": 150000000}],  # 98765.43 x 1.50000
        "asks": [{"price_e8": 9876601000000, "qty_e8": 0}],  # 98766.01 removed
    }


def test_worked_trade_example_decodes_to_the_spec_values():
    status, (event,) = run("sbe-decode", "--hex", TRADE_HEX)
    assert status == 0
    assert event["template_id"] == 10000
    assert event["frame_bytes"] == 65
    assert event["symbol"] == "BTCUSDT"
    assert event["trades"] == [
        {
            "trade_id": 6000000123,
            "price_e8": 9876550000000,
            "qty_e8": 2500000,
            "is_buyer_maker": False,
            "is_best_match": True,
        }
    ]  # 98765.50 x 0.02500, isBuyerMaker false


def test_bad_frames_are_reported_and_counted_and_the_rest_still_decodes(tmp_path):
    good = encode(BestBidAsk("BTCUSDT", 1, 2, 3, 4, 5, 6))
    frames_file = tmp_path / "frames.bin"
    with frames_file.open("wb") as file:
        write_frames(file, [good, good[:-3], good + b"\x00", good])
    status, events = run("sbe-decode", "--file", str(frames_file))
    assert status == 1
    assert [event.get("error") for event in events] == [
        None,
        "TruncatedFrame",
        "TrailingBytes",
        None,
    ]
    assert events[3]["book_update_id"] == 2
    assert events[1]["hex"] == good[:-3].hex()


def test_frames_from_stdin():
    snapshot = DepthSnapshot("BTCUSDT", 5, 9, ((200, 1),), ((201, 2),))
    buffer = io.BytesIO()
    write_frames(buffer, [encode(snapshot)])
    status, (event,) = run("sbe-decode", "--file", "-", stdin=buffer.getvalue())
    assert status == 0
    assert (event["message"], event["book_update_id"], event["bids"]) == (
        "DepthSnapshotStreamEvent",
        9,
        [{"price_e8": 200, "qty_e8": 1}],
    )


def test_a_frame_file_cut_inside_a_frame_keeps_what_was_decoded(tmp_path):
    good = encode(BestBidAsk("BTCUSDT", 1, 2, 3, 4, 5, 6))
    frames_file = tmp_path / "cut.bin"
    with frames_file.open("wb") as file:
        write_frames(file, [good, good])
    frames_file.write_bytes(frames_file.read_bytes()[:-10])
    status, events = run("sbe-decode", "--file", str(frames_file))
    assert status == 1
    assert events[0]["template_id"] == 10001
    assert events[1] == {
        "error": "FrameFileError",
        "detail": "file ends inside frame 1 (56 of 66 bytes)",
    }


def test_invalid_hex_is_a_clear_error():
    status, (event,) = run("sbe-decode", "--hex", "zz")
    assert status == 1
    assert event["error"] == "ValueError"


CAPTURE = Path(__file__).parents[1] / "fixtures" / "binance_capture_2023-04-05"


def test_replay_parity_on_the_real_capture():
    result = subprocess.run(
        [
            CLI,
            "replay-parity",
            "--trades",
            str(CAPTURE / "BTCUSDT-trades-2023-04-05.zip"),
            "--quotes",
            str(CAPTURE / "bookTicker.csv"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report == {
        "equal": True,
        "seconds": 416,
        "features": 20,
        "trades": 3144,
        "quotes": 8015,
        "mismatched_values": 0,
    }
    assert "bit-for-bit equal" in result.stderr


def test_replay_parity_v2_on_the_real_capture():
    result = subprocess.run(
        [CLI, "replay-parity", "--capture", str(CAPTURE / "capture_json_stream.dat.gz")],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {
        "contract": 2,
        "equal": True,
        "seconds": 416,
        "features": 25,
        "valid_book_seconds": 0,  # the capture holds no REST snapshot to anchor a book
        "mismatched_values": 0,
        "skipped_lines": 0,
    }
