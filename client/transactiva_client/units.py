"""The ledger's units, and exact conversions between them and what people type.

The node holds and sends money in integer centavos, energy in integer Wh and prices in
integer 10^-4 MXN/kWh (2.5 MXN/kWh is ``25000``); times are Unix seconds. People (and
Home Assistant actions) use MXN, kWh and MXN/kWh with decimals. A value converts only
when it is exact at the ledger's resolution: 1.005 MXN is refused, never rounded, so what
is signed is what was asked for. Every conversion works on decimal digits, so no float
and no context precision can round.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Final

CURRENCY: Final = "MXN"
PRICE_UNIT: Final = "MXN/kWh"
ENERGY_UNIT: Final = "kWh"

MONEY_DECIMALS: Final = 2
"""Centavos: 10^-2 MXN."""
ENERGY_DECIMALS: Final = 3
"""Wh: 10^-3 kWh."""
PRICE_DECIMALS: Final = 4
"""The price unit: 10^-4 MXN/kWh."""
MAX_DIGITS: Final = 30  # far above any ledger bound; keeps 10**n small


class NotExactError(ValueError):
    """A number that is not one, or that has more decimals than the ledger keeps."""

    def __init__(self, value: object, decimals: int) -> None:
        self.value = value
        self.decimals = decimals
        super().__init__(f"{value!r} is not a number with at most {decimals} decimals")


def to_decimal(value: object) -> Decimal:
    """A finite Decimal from an int, a float (by its shortest repr) or a numeric string."""
    if isinstance(value, bool):
        raise NotExactError(value, 0)
    if isinstance(value, Decimal):
        number = value
    elif isinstance(value, int | float):
        number = Decimal(repr(value)) if isinstance(value, float) else Decimal(value)
    elif isinstance(value, str):
        try:
            number = Decimal(value.strip())
        except InvalidOperation:
            raise NotExactError(value, 0) from None
    else:
        raise NotExactError(value, 0)
    if not number.is_finite():
        raise NotExactError(value, 0)
    return number


def scale_exact(value: object, decimals: int) -> int:
    """``value * 10**decimals`` as an int, or NotExactError when that is not whole."""
    sign, digits, exponent = to_decimal(value).as_tuple()
    assert isinstance(exponent, int)  # finite, checked by to_decimal
    coefficient = int("".join(map(str, digits)) or "0")
    shift = exponent + decimals
    if coefficient == 0:
        return 0
    if shift >= 0:
        if len(digits) + shift > MAX_DIGITS:
            raise NotExactError(value, decimals)
        scaled = coefficient * int(10**shift)
    else:
        if -shift > len(digits):
            raise NotExactError(value, decimals)
        scaled, rest = divmod(coefficient, int(10**-shift))
        if rest:
            raise NotExactError(value, decimals)
    return -scaled if sign else scaled


def unscale(units: int, decimals: int) -> Decimal:
    """An integer in the ledger's units as a Decimal in people's units (exact)."""
    return Decimal(units).scaleb(-decimals)


def money(centavos: int) -> Decimal:
    """Centavos as MXN."""
    return unscale(centavos, MONEY_DECIMALS)


def energy(wh: int) -> Decimal:
    """Wh as kWh."""
    return unscale(wh, ENERGY_DECIMALS)


def price(units: int) -> Decimal:
    """10^-4 MXN/kWh as MXN/kWh."""
    return unscale(units, PRICE_DECIMALS)


def centavos(mxn: object) -> int:
    """MXN (a number or numeric string) as centavos, or NotExactError."""
    return scale_exact(mxn, MONEY_DECIMALS)


def watt_hours(kwh: object) -> int:
    """kWh as Wh, or NotExactError."""
    return scale_exact(kwh, ENERGY_DECIMALS)


def price_units(mxn_per_kwh: object) -> int:
    """MXN/kWh as 10^-4 MXN/kWh, or NotExactError."""
    return scale_exact(mxn_per_kwh, PRICE_DECIMALS)
