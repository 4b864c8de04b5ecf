"""Clocks: the wall clock, one that runs faster, and one moved by hand.

Consensus code reads no clock. Everything around it that needs the time --
block timestamps proposed by the node, the meter's samples and intervals, the
simulator's households, the concentrator's publication schedule, the home
agent -- asks a :class:`Clock` it was given:

- :class:`SystemClock` in production;
- :class:`AcceleratedClock` for the demo and tests: it reads ``start`` at real
  Unix time ``origin`` and runs ``speed`` times faster, so processes built with
  the same three numbers agree on the time (``clock_epoch``, ``clock_start``,
  ``clock_speed`` in a node's ``config.json``);
- :class:`ManualClock` in tests: time moves only when told, waking sleepers.

``now()`` is Unix seconds (UTC); ``sleep(seconds)`` waits that many seconds of
the clock's time; ``sleep_until(when)`` returns once ``now()`` reached ``when``
(in naps of at most :data:`MAX_NAP` real seconds, since wall clocks jump).
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from typing import Final, Protocol

MAX_NAP: Final = 30.0


class Clock(Protocol):
    """Unix time and matching waits."""

    def now(self) -> float:
        """Seconds since the Unix epoch, UTC, on this clock."""
        ...

    async def sleep(self, seconds: float) -> None:
        """Wait ``seconds`` of this clock's time."""
        ...

    async def sleep_until(self, when: float) -> None:
        """Return once :meth:`now` has reached ``when``."""
        ...


class SystemClock:
    """The machine's wall clock."""

    def now(self) -> float:
        return time.time()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds))

    async def sleep_until(self, when: float) -> None:
        while True:  # in naps: the wall clock may be set forward or back meanwhile
            left = when - time.time()
            if left <= 0:
                return
            await asyncio.sleep(min(left, MAX_NAP))


class AcceleratedClock:
    """Simulated time: ``start`` at real time ``origin`` (default: now), ``speed`` x faster."""

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

    async def sleep(self, seconds: float) -> None:
        await self.sleep_until(self._now + max(0.0, seconds))

    async def sleep_until(self, when: float) -> None:
        while self._now < when:
            await self._moved.wait()


SYSTEM_CLOCK: Final[Clock] = SystemClock()


def clock_from(epoch: float | None, start: float | None, speed: float = 1.0) -> Clock:
    """The wall clock, or the accelerated one that reads ``start`` at real time ``epoch``."""
    if epoch is None or start is None:
        return SYSTEM_CLOCK
    return AcceleratedClock(start, speed, epoch)


def utc(seconds: float) -> datetime:
    """An aware UTC datetime for Unix ``seconds``."""
    return datetime.fromtimestamp(seconds, tz=UTC)


def ScaledClock(speed: float, start: float | None = None) -> AcceleratedClock:  # noqa: N802 - reads as a class
    """Time that starts at ``start`` (default: now) and runs ``speed`` times faster."""
    return AcceleratedClock(time.time() if start is None else start, speed)
