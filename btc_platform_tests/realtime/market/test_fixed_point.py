"""Fixed point: exact decimal parsing, rescaling between exponents, timestamp units."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from realtime.market.fixed_point import (
    INT64_MAX,
    FixedPointError,
    e8_to_float,
    epoch_to_us,
    format_e8,
    parse_e8,
    rescale_from_e8,
    rescale_to_e8,
)

E8_VALUES = st.integers(min_value=-(2**63), max_value=2**63 - 1)


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("28165.47000000", 2816547000000),
        ("0.00056000", 56000),
        ("0.00000001", 1),
        ("1", 100000000),
        ("1.", 100000000),
        (".5", 50000000),
        ("-0.1", -10000000),
        ("+3.25", 325000000),
        ("92233720368.54775807", INT64_MAX),
        ("0.100000000000", 10000000),  # trailing zeros beyond 8 places are exact
    ],
)
def test_parse_e8_exact(text, value):
    assert parse_e8(text) == value


@pytest.mark.parametrize(
    "text", ["", ".", "-", "abc", "1.2.3", "1e5", "0.000000001", "92233720368.54775808", " 1 2"]
)
def test_parse_e8_refuses_what_it_cannot_hold_exactly(text):
    with pytest.raises(FixedPointError):
        parse_e8(text)


@given(E8_VALUES)
def test_format_then_parse_is_the_identity(value):
    assert parse_e8(format_e8(value)) == value


@given(E8_VALUES)
def test_parse_agrees_with_decimal(value):
    text = format_e8(value)
    assert Decimal(text) * 10**8 == value


@given(st.integers(min_value=-(10**12), max_value=10**12), st.integers(min_value=-16, max_value=6))
def test_rescale_to_e8_equals_the_decimal_value(mantissa, exponent):
    exact = Decimal(mantissa).scaleb(exponent) * 10**8
    if exact != exact.to_integral_value() or abs(exact) > INT64_MAX:
        with pytest.raises(FixedPointError):
            rescale_to_e8(mantissa, exponent)
    else:
        assert rescale_to_e8(mantissa, exponent) == int(exact)


@given(E8_VALUES, st.integers(min_value=-12, max_value=2))
def test_rescale_from_e8_inverts_rescale_to_e8_when_representable(value, exponent):
    try:
        mantissa = rescale_from_e8(value, exponent)
    except FixedPointError:
        return
    assert rescale_to_e8(mantissa, exponent) == value


def test_e8_to_float_is_the_correctly_rounded_value():
    assert e8_to_float(2816547000000) == 28165.47
    assert e8_to_float(1) == 1e-8


@pytest.mark.parametrize(
    ("timestamp", "us"),
    [
        (1680652800004, 1680652800004000),  # ms (2023 archive)
        (1735689600010866, 1735689600010866),  # us (2025+ archive)
        (0, 0),
    ],
)
def test_epoch_to_us_detects_the_unit(timestamp, us):
    assert epoch_to_us(timestamp) == us
