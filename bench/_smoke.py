"""``--smoke``, the flag every bench script takes: tiny sizes, a run of seconds.

``make test`` starts every script in bench/ with it (btc_platform_tests/bench/) so a bench
that no longer starts, or no longer prints its JSON, fails the tests instead of the next
``make bench``. Smoke figures measure nothing; the result says ``"smoke": true``.
"""

from __future__ import annotations

import argparse


def parse_arguments(
    parser: argparse.ArgumentParser, smoke: dict[str, object]
) -> argparse.Namespace:
    """Add ``--smoke`` to ``parser`` and parse; with it, ``smoke`` replaces those arguments."""
    sizes = " ".join(f"--{name.replace('_', '-')} {value}" for name, value in smoke.items())
    parser.add_argument(
        "--smoke",
        action="store_true",
        help=f"tiny sizes, seconds: checks that the bench runs, measures nothing ({sizes})",
    )
    arguments = parser.parse_args()
    if arguments.smoke:
        for name, value in smoke.items():
            setattr(arguments, name, value)
    return arguments
