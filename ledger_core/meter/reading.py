"""One reading of a meter, and the errors a meter source raises.

Sign convention everywhere on the meter side: active power is **positive when
the home imports** (consumes from the grid) and **negative when it exports**.
Phases are numbered 1 to 3; the SmartPi's "phase 4" is the neutral conductor
and only its current is kept (:attr:`Reading.neutral_current`).

Floats are fine here (this is off the consensus path); the energy that leaves
the meter role for the ledger is integer Wh (see ``intervals.py``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

MAX_ABS_POWER_W: Final = 1_000_000.0
MAX_ABS_CURRENT_A: Final = 10_000.0
MAX_VOLTAGE_V: Final = 2_000.0
MAX_FREQUENCY_HZ: Final = 1_000.0
MAX_ENERGY_WH: Final = 1e15


class MeterError(Exception):
    """A meter could not be read, or answered something unusable.

    ``where`` names the place (a URL, a JSON path, a topic) when there is one.
    """

    def __init__(self, message: str, where: str | None = None) -> None:
        self.message = message
        self.where = where
        super().__init__(f"{where}: {message}" if where else message)


class MeterUnreachable(MeterError):  # noqa: N818 - a condition, like TimeoutError
    """No answer: connection refused, timeout, server error, nothing pushed lately.

    Distinct from a service cut: an unreachable meter says nothing about the grid.
    """


class MeterDataError(MeterError):
    """An answer that is not a meter reading: wrong page, malformed or implausible data."""


@dataclass(frozen=True, slots=True)
class PhaseReading:
    """One phase's values; ``None`` where the source does not give that value."""

    phase: int
    voltage: float | None = None
    current: float | None = None
    power: float | None = None
    power_factor: float | None = None
    frequency: float | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "phase": self.phase,
            "voltage": self.voltage,
            "current": self.current,
            "power": self.power,
            "power_factor": self.power_factor,
            "frequency": self.frequency,
        }


@dataclass(frozen=True, slots=True)
class Reading:
    """What a meter said at ``time``.

    ``power`` is the net active power over the phases (their sum), ``None`` only
    when the source gave no power at all (e.g. a voltage-only push).
    ``import_wh_total`` / ``export_wh_total`` are the source's own lifetime
    counters (net across phases, Wh) when it has them (SmartPi over MQTT,
    Home Assistant energy sensors); accounting prefers their differences to
    integrating power.
    """

    time: datetime
    phases: tuple[PhaseReading, ...]
    power: float | None
    source: str
    neutral_current: float | None = None
    import_wh_total: float | None = None
    export_wh_total: float | None = None

    def __post_init__(self) -> None:
        if self.time.tzinfo is None:
            raise ValueError("Reading.time must be timezone-aware")

    @property
    def timestamp(self) -> float:
        """Unix seconds."""
        return self.time.timestamp()

    def phase(self, number: int) -> PhaseReading | None:
        """The reading of phase ``number`` (1-3), if the source gave it."""
        for item in self.phases:
            if item.phase == number:
                return item
        return None

    def voltages(self) -> list[float]:
        """The phase voltages the source gave."""
        return [p.voltage for p in self.phases if p.voltage is not None]


def check_number(value: object, where: str, low: float, high: float) -> float:
    """``value`` as a finite float within ``[low, high]``, or MeterDataError naming ``where``."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise MeterDataError("must be a number", where)
    try:
        number = float(value)
    except OverflowError:
        raise MeterDataError("is too large", where) from None
    if not math.isfinite(number):
        raise MeterDataError("must be a finite number", where)
    if not low <= number <= high:
        raise MeterDataError(f"{number:g} is outside {low:g} to {high:g}", where)
    return number
