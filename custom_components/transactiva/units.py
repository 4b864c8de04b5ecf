"""Exact conversions between what people type and the ledger's integers.

The ledger holds money in centavos, energy in Wh and prices in 10^-4 MXN/kWh,
all integers. People (and actions) use MXN, kWh and MXN/kWh with decimals.
A value converts only when it is exact at the ledger's resolution: 1.005 MXN
is refused, never rounded, so what is signed is what was asked for.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Final

PRICE_DECIMALS: Final = 4  # 10^-4 MXN/kWh
MONEY_DECIMALS: Final = 2  # centavos
ENERGY_DECIMALS: Final = 3  # Wh in kWh
MAX_DIGITS: Final = 30  # far above any ledger bound; keeps 10**n small


class NotExactError(ValueError):
    """A number that is not one, or has more decimals than the ledger keeps."""

    def __init__(self, value: object, decimals: int) -> None:
        self.value = value
        self.decimals = decimals
        super().__init__(f"{value!r} is not a number with at most {decimals} decimals")


def to_decimal(value: object) -> Decimal:
    """A finite Decimal from an int, float (by its shortest repr) or numeric string."""
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
    """``value * 10**decimals`` as an int, or NotExactError if that is not whole.

    Works on the decimal digits themselves, so no context precision can round.
    """
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
    """An integer in ledger units as a Decimal in people's units (exact)."""
    return Decimal(units).scaleb(-decimals)


def price(units: int) -> Decimal:
    """10^-4 MXN/kWh to MXN/kWh."""
    return unscale(units, PRICE_DECIMALS)


def money(centavos: int) -> Decimal:
    """Centavos to MXN."""
    return unscale(centavos, MONEY_DECIMALS)
