"""Exact conversions between people's numbers and the ledger's integers (property tests)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from transactiva_client.units import (
    NotExactError,
    centavos,
    energy,
    money,
    price,
    price_units,
    scale_exact,
    watt_hours,
)

JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=6)
    ),
    max_leaves=20,
)


@given(st.integers(min_value=-(10**15), max_value=10**15), st.integers(min_value=0, max_value=6))
def test_exact_values_convert_to_the_same_integer(units: int, decimals: int) -> None:
    value = Decimal(units).scaleb(-decimals)
    assert scale_exact(value, decimals) == units
    assert scale_exact(str(value), decimals) == units
    assert scale_exact(format(value, "f"), decimals) == units


@given(st.integers(min_value=-(10**12), max_value=10**12))
def test_cents_as_floats_convert_exactly(amount: int) -> None:
    assert scale_exact(amount / 100, 2) == amount
    assert centavos(amount / 100) == amount
    assert money(amount) == Decimal(amount) / 100
    assert price(amount) == Decimal(amount) / 10000
    assert energy(amount) == Decimal(amount) / 1000


@given(st.integers(min_value=-(10**9), max_value=10**9))
def test_each_unit_round_trips(units: int) -> None:
    assert centavos(money(units)) == units
    assert watt_hours(energy(units)) == units
    assert price_units(price(units)) == units


def test_the_units_are_the_ledgers() -> None:
    assert price_units("2.5") == 25000  # docs/api.md: 2.5 MXN/kWh is 25000
    assert centavos("12.50") == 1250
    assert watt_hours(1.5) == 1500
    with pytest.raises(NotExactError, match="at most 2 decimals"):
        centavos("1.005")


@given(st.integers(min_value=1, max_value=10**9), st.integers(min_value=0, max_value=4))
def test_finer_values_are_refused_not_rounded(units: int, decimals: int) -> None:
    finer = Decimal(units * 10 + 1).scaleb(-(decimals + 1))
    with pytest.raises(NotExactError):
        scale_exact(finer, decimals)


@given(JSON | st.text())
def test_anything_converts_or_is_refused(value: Any) -> None:
    try:
        result = scale_exact(value, 2)
    except NotExactError:
        return
    assert isinstance(result, int)


@pytest.mark.parametrize("value", ["1e999999999", "-1e-999999999", "NaN", "inf", True, None])
def test_extreme_numbers_are_refused_quickly(value: object) -> None:
    with pytest.raises(NotExactError):
        scale_exact(value, 2)
