"""Price schedules per 15-minute interval, and the day-ahead publisher of price signals.

The schedule of an interval is the tariff's rate at its start (local clock,
season, weekday or holiday), optionally moved by an :data:`Adjustment`. The
built-in adjustment, :class:`ClearingPriceBand`, follows the market: once a
clearing price has been observed, the import price becomes that clearing price
clamped to ``[tariff - below, tariff + above]`` (the tariff's ``market_band``),
and never below zero; export price and network fee stay the tariff's.

:class:`PricePublisher` signs ``price_signal`` transactions (through a
:class:`~ledger_core.concentrator.ledger.Ledger`) for intervals that have no
price on chain yet: it reads ``GET /signals/prices?from=&to=`` first and
never re-sends a price that is already there, so running it twice, or after a
restart, changes nothing. Intervals that have already ended are skipped (the
ledger would refuse them as ``past_interval``). :meth:`PricePublisher.override`
is the one way to replace prices on chain: the operator's explicit choice.

Timing (driven by :class:`~ledger_core.concentrator.service.Concentrator`):
every day at ``publish_at`` local time (12:00 by default) the whole of the
next local day is published; on start, everything missing from the current
interval to the end of today, plus tomorrow if ``publish_at`` has passed.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Final

from ledger_core.clock import Clock
from ledger_core.concentrator.ledger import Body, Ledger, Outcome
from ledger_core.concentrator.tariff import MarketBand, Prices, Rate, Tariff
from ledger_core.types import codec
from ledger_core.types.tx import MAX_PRICE, TxType

INTERVAL: Final = 900
DEFAULT_PUBLISH_AT: Final = time(12, 0)
MAX_PUBLISH_INTERVALS: Final = 8 * 96

type Adjustment = Callable[[int, Rate], Prices]
"""``(interval_start, tariff rate) -> prices to publish``."""


def align_down(when: float, interval: int = INTERVAL) -> int:
    """The start of the interval holding ``when``."""
    return int(when // interval) * interval


def align_up(when: float, interval: int = INTERVAL) -> int:
    """The first interval start at or after ``when``."""
    return -int(-when // interval) * interval


class ClearingPriceBand:
    """Import price = the last clearing price, kept within the band around the tariff's."""

    def __init__(self, band: MarketBand) -> None:
        self.band = band
        self.last: int | None = None

    def observe(self, clearing_price: int) -> None:
        """A market result: a clearing price in 10^-4 MXN/kWh."""
        self.last = clearing_price

    def __call__(self, interval_start: int, rate: Rate) -> Prices:
        if self.last is None:
            return rate.prices
        base = rate.prices.import_price
        low = max(0, base - self.band.below)
        high = min(MAX_PRICE, base + self.band.above)
        return dataclasses.replace(rate.prices, import_price=min(max(self.last, low), high))


@dataclass(frozen=True, slots=True)
class IntervalPrice:
    """What the schedule says for one interval."""

    interval_start: int
    season: str
    period: str
    prices: Prices

    def body(self) -> Body:
        """The ``price_signal`` transaction body."""
        return {"interval_start": self.interval_start, **self.prices.to_json()}

    def to_json(self) -> dict[str, codec.Value]:
        return {"season": self.season, "period": self.period, **self.body()}


@dataclass(frozen=True, slots=True)
class PublishReport:
    """What one publication did, interval by interval."""

    published: tuple[int, ...] = ()
    already: tuple[int, ...] = ()
    past: tuple[int, ...] = ()
    failed: tuple[tuple[int, Outcome], ...] = ()

    def __add__(self, other: PublishReport) -> PublishReport:
        return PublishReport(
            self.published + other.published,
            self.already + other.already,
            self.past + other.past,
            self.failed + other.failed,
        )

    def to_json(self) -> dict[str, codec.Value]:
        return {
            "published": list(self.published),
            "already_on_chain": list(self.already),
            "past": list(self.past),
            "failed": [
                {"interval_start": start, "code": o.code, "message": o.message}
                for start, o in self.failed
            ],
        }


class PriceSchedule:
    """The price of every interval: the tariff's rate, then the adjustment if any."""

    def __init__(
        self,
        tariff: Tariff,
        *,
        adjustment: Adjustment | None = None,
        publish_at: time = DEFAULT_PUBLISH_AT,
        interval: int = INTERVAL,
    ) -> None:
        self.tariff = tariff
        self.adjustment = adjustment
        self.publish_at = publish_at
        self.interval = interval

    def price(self, interval_start: int) -> IntervalPrice:
        """The scheduled (and adjusted) price of one interval."""
        rate = self.tariff.rate_at(interval_start)
        prices = self.adjustment(interval_start, rate) if self.adjustment else rate.prices
        return IntervalPrice(interval_start, rate.season, rate.period, prices)

    def intervals(self, start: int, end: int) -> list[int]:
        """Interval starts from ``start`` (rounded up to a boundary) up to ``end``, excluded."""
        return list(range(align_up(start, self.interval), end, self.interval))

    def day_intervals(self, day: date) -> list[int]:
        """Every interval of a local day (92 or 100 on days when the clock changes)."""
        return self.intervals(*self.tariff.day_bounds(day))

    def between(self, start: int, end: int) -> list[IntervalPrice]:
        """The scheduled price of every interval in ``[start, end)``."""
        return [self.price(t) for t in self.intervals(start, end)]

    def local_day(self, when: float) -> date:
        """The local date at Unix time ``when``."""
        return self.tariff.local(int(when)).date()

    def publication_time(self, day: date) -> float:
        """When the prices of the day after ``day`` are published: ``publish_at`` on ``day``."""
        return datetime.combine(day, self.publish_at, tzinfo=self.tariff.zone).timestamp()

    def next_publication(self, after: float) -> float:
        """The first day-ahead publication time strictly after ``after``."""
        day = self.local_day(after)
        moment = self.publication_time(day)
        return moment if moment > after else self.publication_time(day + timedelta(days=1))


class PricePublisher:
    """Turns a schedule into price signals on chain, once per interval."""

    def __init__(self, schedule: PriceSchedule, ledger: Ledger, clock: Clock) -> None:
        self.schedule = schedule
        self.tariff = schedule.tariff
        self.interval = schedule.interval
        self.ledger = ledger
        self.clock = clock

    # -- publication -----------------------------------------------------------------

    async def publish(self, start: int, end: int) -> PublishReport:
        """Publish every interval in ``[start, end)`` that has no price on chain yet."""
        starts = self.schedule.intervals(start, end)
        if len(starts) > MAX_PUBLISH_INTERVALS:
            raise ValueError(f"at most {MAX_PUBLISH_INTERVALS} intervals at a time")
        if not starts:
            return PublishReport()
        now = self.clock.now()
        past = tuple(t for t in starts if t + self.interval <= now)
        upcoming = [t for t in starts if t + self.interval > now]
        on_chain = await self.ledger.prices(upcoming[0], upcoming[-1] + 1) if upcoming else {}
        missing = [self.schedule.price(t) for t in upcoming if t not in on_chain]
        report = await self._send(missing)
        return dataclasses.replace(
            report, already=tuple(t for t in upcoming if t in on_chain), past=past
        )

    async def publish_day(self, day: date) -> PublishReport:
        """Publish the missing intervals of a local day."""
        return await self.publish(*self.tariff.day_bounds(day))

    async def catch_up(self) -> PublishReport:
        """On start: from the current interval to the end of today, and tomorrow if due."""
        now = self.clock.now()
        today = self.schedule.local_day(now)
        _, end_of_today = self.tariff.day_bounds(today)
        report = await self.publish(align_down(now, self.interval), end_of_today)
        if now >= self.schedule.publication_time(today):
            report += await self.publish_day(today + timedelta(days=1))
        return report

    async def override(
        self,
        start: int,
        end: int,
        *,
        import_price: int | None = None,
        export_price: int | None = None,
        network_fee: int | None = None,
    ) -> PublishReport:
        """Publish ``[start, end)`` even where prices exist; unset fields come from the schedule."""
        starts = self.schedule.intervals(start, end)
        if len(starts) > MAX_PUBLISH_INTERVALS:
            raise ValueError(f"at most {MAX_PUBLISH_INTERVALS} intervals at a time")
        now = self.clock.now()
        chosen: list[IntervalPrice] = []
        for t in starts:
            if t + self.interval <= now:
                continue
            scheduled = self.schedule.price(t)
            prices = Prices(
                scheduled.prices.import_price if import_price is None else import_price,
                scheduled.prices.export_price if export_price is None else export_price,
                scheduled.prices.network_fee if network_fee is None else network_fee,
            )
            chosen.append(dataclasses.replace(scheduled, period="override", prices=prices))
        report = await self._send(chosen)
        past = tuple(t for t in starts if t + self.interval <= now)
        return dataclasses.replace(report, past=past)

    async def _send(self, prices: Sequence[IntervalPrice]) -> PublishReport:
        if not prices:
            return PublishReport()
        outcomes = await self.ledger.submit([(TxType.PRICE_SIGNAL, p.body()) for p in prices])
        published = tuple(p.interval_start for p, o in zip(prices, outcomes, strict=True) if o.ok)
        failed = tuple(
            (p.interval_start, o) for p, o in zip(prices, outcomes, strict=True) if not o.ok
        )
        return PublishReport(published=published, failed=failed)
