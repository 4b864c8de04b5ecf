"""The meter side's clocks: those of :mod:`ledger_core.clock` (kept as this module's names)."""

from __future__ import annotations

from ledger_core.clock import SYSTEM_CLOCK, AcceleratedClock, Clock, SystemClock, utc

__all__ = ["SYSTEM_CLOCK", "AcceleratedClock", "Clock", "SystemClock", "utc"]
