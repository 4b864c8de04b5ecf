"""Clocks for the concentrator: the wall clock, an accelerated one, and a hand-driven one.

The concentrator is not consensus code, so it may read a clock, but it reads
only the clock it is given: the wall clock in production, a
:class:`ScaledClock` for demonstrations (at 900x a 15-minute interval passes
every second), a :class:`ManualClock` in tests. A node built with the same
clock's :meth:`now` stamps its blocks with the same time, so the ledger's
``past_interval`` and ``future_interval`` rules agree with the concentrator.
"""

from __future__ import annotations

import asyncio
import time
from typing import Final, Protocol

MAX_NAP: Final = 30.0  # real seconds between checks of the wall clock, which may jump


class Clock(Protocol):
    """Unix time, and a way to wait for a moment of it."""

    def now(self) -> float:
        """Seconds since the Unix epoch, on this clock."""

    async def sleep_until(self, when: float) -> None:
        """Return once :meth:`now` has reached ``when``."""


class SystemClock:
    """The machine's wall clock."""

    def now(self) -> float:
        return time.time()

    async def sleep_until(self, when: float) -> None:
        while True:  # in naps: the wall clock may be set forward or back meanwhile
            left = when - time.time()
            if left <= 0:
                return
            await asyncio.sleep(min(left, MAX_NAP))


class ScaledClock:
    """Time that starts at ``start`` (default: now) and runs ``speed`` times faster."""

    def __init__(self, speed: float, start: float | None = None) -> None:
        if not speed > 0:
            raise ValueError("speed must be positive")
        self.speed = speed
        self._origin = time.time() if start is None else start
        self._base = time.monotonic()

    def now(self) -> float:
        return self._origin + (time.monotonic() - self._base) * self.speed

    async def sleep_until(self, when: float) -> None:
        while True:
            left = when - self.now()
            if left <= 0:
                return
            await asyncio.sleep(min(left / self.speed, MAX_NAP))


class ManualClock:
    """Time that moves only when told to (tests, simulations)."""

    def __init__(self, start: float) -> None:
        self._now = start
        self._moved = asyncio.Event()

    def now(self) -> float:
        return self._now

    def set(self, when: float) -> None:
        """Move to ``when`` (never backwards) and wake every sleeper."""
        if when < self._now:
            raise ValueError("a clock does not run backwards")
        self._now = when
        moved, self._moved = self._moved, asyncio.Event()
        moved.set()

    def advance(self, seconds: float) -> None:
        """Move forward by ``seconds``."""
        self.set(self._now + seconds)

    async def sleep_until(self, when: float) -> None:
        while self._now < when:
            await self._moved.wait()
