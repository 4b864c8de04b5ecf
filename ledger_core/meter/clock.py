"""Clocks for the meter role and the simulator: real time, or time run faster.

Everything on the meter side that needs the time (reading timestamps, the
sample period, interval closing, the simulator's household) asks a
:class:`Clock` instead of the system, so a demo can run a simulated day in two
minutes and tests can step time by hand. ``now()`` is Unix seconds (UTC);
``sleep(seconds)`` waits that many *clock* seconds.

Two processes agree on an :class:`AcceleratedClock` when they are built with
the same ``start``, ``speed`` and ``origin`` (the real Unix time at which the
simulated clock read ``start``).
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from typing import Protocol


class Clock(Protocol):
    """Unix time and a matching sleep."""

    def now(self) -> float:
        """Seconds since the Unix epoch, UTC."""
        ...

    async def sleep(self, seconds: float) -> None:
        """Wait ``seconds`` of this clock's time."""
        ...


class SystemClock:
    """The real time."""

    def now(self) -> float:
        return time.time()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds))


class AcceleratedClock:
    """Simulated time: ``start`` at real time ``origin``, running ``speed`` times faster."""

    def __init__(self, start: float, speed: float, origin: float | None = None) -> None:
        if not speed > 0:
            raise ValueError("speed must be positive")
        self.start = start
        self.speed = speed
        self.origin = time.time() if origin is None else origin

    def now(self) -> float:
        return self.start + (time.time() - self.origin) * self.speed

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds) / self.speed)


SYSTEM_CLOCK: Clock = SystemClock()


def utc(seconds: float) -> datetime:
    """An aware UTC datetime for Unix ``seconds``."""
    return datetime.fromtimestamp(seconds, tz=UTC)
