"""Service cut and reconnection, told apart from a meter that does not answer.

The grid supply is *cut* when every phase voltage the meter reports is below
``threshold`` volts for ``samples`` consecutive readings, and *reconnected*
when, after a cut, some phase is back above it for ``samples`` consecutive
readings. A meter that cannot be read says nothing about the supply (the
SmartPi may simply have lost its network, or its own power): after
``unreachable_after`` failed reads in a row the supply state is *unknown* and a
``meter_unreachable`` event is emitted, never a cut. Readings without any
voltage (a power-only source) leave the state as it is.

Events (:class:`MeterEvent`) feed the contract runner: the paper's meters act
on service cut and reconnection as on price and interval events.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from ledger_core.meter.reading import Reading


class Supply(StrEnum):
    """What the meter knows about the grid supply."""

    CONNECTED = "connected"
    CUT = "cut"
    UNKNOWN = "unknown"


@dataclass(frozen=True, slots=True)
class MeterEvent:
    """Something the meter noticed: ``service_cut``, ``service_reconnected``,
    ``meter_unreachable``, ``meter_reachable`` or ``interval_report``."""

    type: str
    time: datetime
    detail: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"type": self.type, "time": self.time.isoformat(), **self.detail}


class SupplyMonitor:
    """Follows readings and failed reads; emits events on changes."""

    def __init__(
        self, threshold: float = 50.0, samples: int = 3, unreachable_after: int = 3
    ) -> None:
        if samples < 1 or unreachable_after < 1:
            raise ValueError("samples and unreachable_after are at least 1")
        self.threshold = threshold
        self.samples = samples
        self.unreachable_after = unreachable_after
        self.known = Supply.UNKNOWN  # the last state the readings showed
        self.reachable = True
        self.failures = 0
        self._low = 0
        self._high = 0

    @property
    def state(self) -> Supply:
        """The supply as far as the meter can tell now."""
        return self.known if self.reachable else Supply.UNKNOWN

    def observe(self, reading: Reading) -> list[MeterEvent]:
        """Account a reading; the events it causes."""
        events: list[MeterEvent] = []
        self.failures = 0
        if not self.reachable:
            self.reachable = True
            events.append(MeterEvent("meter_reachable", reading.time))
        voltages = reading.voltages()
        if not voltages:
            return events
        detail = {"voltages": [round(v, 1) for v in voltages]}
        if all(v < self.threshold for v in voltages):
            self._low += 1
            self._high = 0
            if self._low >= self.samples and self.known is not Supply.CUT:
                self.known = Supply.CUT
                events.append(MeterEvent("service_cut", reading.time, detail))
        else:
            self._high += 1
            self._low = 0
            if self.known is Supply.UNKNOWN:
                self.known = Supply.CONNECTED  # first sight of the supply: no event
            elif self.known is Supply.CUT and self._high >= self.samples:
                self.known = Supply.CONNECTED
                events.append(MeterEvent("service_reconnected", reading.time, detail))
        return events

    def unreachable(self, time: datetime, message: str) -> list[MeterEvent]:
        """Account a failed read; the events it causes."""
        self.failures += 1
        self._low = self._high = 0
        if self.reachable and self.failures >= self.unreachable_after:
            self.reachable = False
            return [MeterEvent("meter_unreachable", time, {"message": message})]
        return []
