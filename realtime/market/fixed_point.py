"""Fixed-point decimals and exchange timestamps: the one place numbers change representation.

Prices and quantities are int64 mantissas at exponent -8 (``price_e8``, ``qty_e8``), so
every aggregate up to the feature step is exact integer arithmetic. Binance decimals have at
most 8 fractional digits, so e8 loses nothing. Times are int microseconds since the epoch.
"""

from __future__ import annotations

import re

E8_EXPONENT = -8
E8_SCALE = 10**8
INT64_MIN = -(2**63)
INT64_MAX = 2**63 - 1

# Millisecond epoch values stay below 1e14 until the year 5138; microsecond values since
# 1973 are above it. Binance switched spot archives from ms to us on 2025-01-01 silently,
# so units are detected from the magnitude rather than assumed.
US_THRESHOLD = 10**14

_DECIMAL = re.compile(r"([+-]?)(\d*)(?:\.(\d*))?")


class FixedPointError(ValueError):
    """A decimal that cannot be held exactly as an int64 mantissa at exponent -8."""


def rescale_to_e8(mantissa: int, exponent: int) -> int:
    """Return ``mantissa * 10**exponent`` as an e8 mantissa; raise if not exact or out of int64."""
    shift = exponent - E8_EXPONENT
    if shift == 0:
        return mantissa
    if shift > 0:
        value = mantissa * 10**shift
    else:
        value, remainder = divmod(mantissa, 10**-shift)
        if remainder:
            raise FixedPointError(
                f"{mantissa}e{exponent} has more than 8 decimal places and cannot be held as e8"
            )
    if not INT64_MIN <= value <= INT64_MAX:
        raise FixedPointError(f"{mantissa}e{exponent} overflows an int64 e8 mantissa")
    return value


def rescale_from_e8(value_e8: int, exponent: int) -> int:
    """Return the mantissa at ``exponent`` worth ``value_e8 * 1e-8``; raise if inexact."""
    shift = E8_EXPONENT - exponent
    if shift == 0:
        return value_e8
    if shift > 0:
        mantissa = value_e8 * 10**shift
    else:
        mantissa, remainder = divmod(value_e8, 10**-shift)
        if remainder:
            raise FixedPointError(f"{value_e8}e-8 is not representable at exponent {exponent}")
    if not INT64_MIN <= mantissa <= INT64_MAX:
        raise FixedPointError(f"{value_e8}e-8 overflows an int64 mantissa at exponent {exponent}")
    return mantissa


def parse_e8(text: str) -> int:
    """Parse a decimal string such as ``"28165.47000000"`` into an exact e8 mantissa."""
    match = _DECIMAL.fullmatch(text.strip())
    if match is None or not (match[2] or match[3]):
        raise FixedPointError(f"not a decimal number: {text!r}")
    sign, whole, fraction = match[1], match[2], (match[3] or "").rstrip("0")
    if len(fraction) > 8:
        raise FixedPointError(f"{text!r} has more than 8 decimal places")
    value = int(whole or "0") * E8_SCALE + int(fraction.ljust(8, "0"))
    if sign == "-":
        value = -value
    if not INT64_MIN <= value <= INT64_MAX:
        raise FixedPointError(f"{text!r} overflows an int64 e8 mantissa")
    return value


def format_e8(value_e8: int) -> str:
    """Format an e8 mantissa as Binance writes decimals: always 8 fractional digits."""
    sign = "-" if value_e8 < 0 else ""
    whole, fraction = divmod(abs(value_e8), E8_SCALE)
    return f"{sign}{whole}.{fraction:08d}"


def e8_to_float(value_e8: int) -> float:
    """The single conversion from an e8 mantissa to float64 (correctly rounded division)."""
    return value_e8 / E8_SCALE


def epoch_to_us(timestamp: int) -> int:
    """Normalise an epoch timestamp in ms or us (detected by magnitude) to microseconds."""
    return timestamp if timestamp >= US_THRESHOLD else timestamp * 1000
