"""The concentrator's clocks: those of :mod:`ledger_core.clock`, plus :func:`ScaledClock`.

The concentrator is not consensus code, so it may read a clock, but it reads
only the clock it is given: the wall clock in production, an accelerated one
for demonstrations (at 900x a 15-minute interval passes every second), a
:class:`ManualClock` in tests. A node built with the same clock stamps its
blocks with the same time, so the ledger's ``past_interval`` and
``future_interval`` rules agree with the concentrator.
"""

from __future__ import annotations

import time

from ledger_core.clock import MAX_NAP, AcceleratedClock, Clock, ManualClock, SystemClock

__all__ = ["MAX_NAP", "AcceleratedClock", "Clock", "ManualClock", "ScaledClock", "SystemClock"]


def ScaledClock(speed: float, start: float | None = None) -> AcceleratedClock:  # noqa: N802 - reads as a class
    """Time that starts at ``start`` (default: now) and runs ``speed`` times faster."""
    return AcceleratedClock(time.time() if start is None else start, speed)
