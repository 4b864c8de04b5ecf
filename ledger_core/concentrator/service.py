"""The concentrator service: price publication, the event stream, DR rules, on one clock.

:class:`Concentrator` runs two tasks until :meth:`Concentrator.stop`:

* the *follower* reads the node's event stream (``price_signal``,
  ``dr_event`` and clearing events) into the price cache and the
  :class:`~ledger_core.concentrator.dr.DrManager`; it remembers the last
  sequence number and resumes after it when the stream breaks;
* the *scheduler* wakes at the earliest of: the next day-ahead publication
  (``publish_at`` local, for the next day), the next interval boundary (to
  make sure the current and next intervals have prices), and the next rule
  evaluation (``report_delay`` seconds after an interval ends, so that meters'
  reports are committed). On start it publishes everything missing from the
  current interval to the end of today, and tomorrow if ``publish_at`` has
  passed. With :class:`~ledger_core.concentrator.metering.MeterData`, at every
  interval boundary it also submits the deliveries and bills that are due.

The meters' readings reach the concentrator privately, never through the chain
(docs/privacy.md): :class:`MeterData` keeps them, and the :class:`Neighbourhood`
load view -- what the demand-response rules watch -- is built from them.

All waiting goes through the injected clock, so the same service runs on the
wall clock, accelerated for the demonstration (a :class:`ScaledClock` at 900x
makes an interval pass each second), or by hand in tests. Failures to reach
the node are logged and retried at the next wake-up; :meth:`stop` returns
within its timeout whatever the node does.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Iterable, Mapping
from dataclasses import dataclass
from datetime import date, time, timedelta
from typing import Any, Final

from ledger_core.clock import Clock, SystemClock
from ledger_core.concentrator.dr import DrError, DrManager
from ledger_core.concentrator.ledger import Ledger
from ledger_core.concentrator.metering import MeterData
from ledger_core.concentrator.prices import (
    DEFAULT_PUBLISH_AT,
    INTERVAL,
    Adjustment,
    ClearingPriceBand,
    PricePublisher,
    PriceSchedule,
    align_down,
)
from ledger_core.concentrator.rules import Decision, LoadRule, RuleEngine, interval_load_w
from ledger_core.concentrator.tariff import Prices, Tariff
from ledger_core.types.metering import Opening

LOG: Final = logging.getLogger(__name__)
DEFAULT_REPORT_DELAY: Final = 120
KEEP_INTERVALS: Final = 2 * 96
RECENT_INTERVALS: Final = 8
RECONNECT_SECONDS: Final = 1.0


@dataclass(slots=True)
class _Totals:
    meters: int = 0
    import_wh: int = 0
    export_wh: int = 0


class Neighbourhood:
    """The meters' readings, summed per interval; the last ``keep`` intervals are kept."""

    def __init__(self, interval: int = INTERVAL, keep: int = KEEP_INTERVALS) -> None:
        self.interval = interval
        self.keep = keep
        self._seen: dict[int, set[str]] = {}
        self._totals: dict[int, _Totals] = {}
        self.meters: dict[str, dict[str, int]] = {}

    def add_report(self, meter: str, interval_start: int, import_wh: int, export_wh: int) -> None:
        """One meter's reading (a repeat of the same meter and interval is ignored)."""
        newest = max(self._totals, default=interval_start)
        if interval_start <= newest - self.keep * self.interval:
            return
        seen = self._seen.setdefault(interval_start, set())
        if meter in seen:
            return
        seen.add(meter)
        totals = self._totals.setdefault(interval_start, _Totals())
        totals.meters += 1
        totals.import_wh += import_wh
        totals.export_wh += export_wh
        latest = self.meters.get(meter)
        if latest is None or latest["interval_start"] < interval_start:
            self.meters[meter] = {
                "interval_start": interval_start,
                "import_wh": import_wh,
                "export_wh": export_wh,
            }
        for old in [t for t in self._totals if t <= interval_start - self.keep * self.interval]:
            del self._totals[old]
            del self._seen[old]

    def load_w(self, interval_start: int) -> int | None:
        """The interval's average net import in W, or None without reports."""
        totals = self._totals.get(interval_start)
        if totals is None:
            return None
        return interval_load_w(totals.import_wh, totals.export_wh, self.interval)

    def latest_interval(self) -> int | None:
        """The newest interval with any report."""
        return max(self._totals, default=None)

    def interval_json(self, interval_start: int) -> dict[str, Any]:
        """Totals of one interval."""
        totals = self._totals.get(interval_start, _Totals())
        return {
            "interval_start": interval_start,
            "meters": totals.meters,
            "import_wh": totals.import_wh,
            "export_wh": totals.export_wh,
            "net_import_w": self.load_w(interval_start),
        }

    def to_json(self, recent: int = RECENT_INTERVALS) -> dict[str, Any]:
        """The latest interval, the recent ones (newest first), and each meter's latest report."""
        latest = self.latest_interval()
        if latest is None:
            return {"latest": None, "recent": [], "meters": {}}
        starts = range(latest, latest - recent * self.interval, -self.interval)
        return {
            "latest": self.interval_json(latest),
            "recent": [self.interval_json(t) for t in starts],
            "meters": dict(sorted(self.meters.items())),
        }


class Concentrator:
    """The operator's service: day-ahead prices, DR events and rules, on one clock."""

    def __init__(
        self,
        tariff: Tariff,
        ledger: Ledger,
        clock: Clock | None = None,
        *,
        rules: Iterable[LoadRule] = (),
        publish_at: time = DEFAULT_PUBLISH_AT,
        adjustment: Adjustment | None = None,
        report_delay: int = DEFAULT_REPORT_DELAY,
        interval: int = INTERVAL,
        replay_after: int = 0,
        dr_id_prefix: str = "dr",
        meter_data: MeterData | None = None,
    ) -> None:
        """``adjustment`` defaults to a :class:`ClearingPriceBand` when the tariff has a band.

        ``replay_after`` is the event-stream sequence number to start after
        (0: replay the whole chain). ``meter_data`` holds the meters' readings
        (the neighbourhood view is built from them) and settles metered energy.
        """
        self.tariff = tariff
        self.ledger = ledger
        self.clock: Clock = clock if clock is not None else SystemClock()
        self.interval = interval
        self.report_delay = report_delay
        self.band: ClearingPriceBand | None = None
        if adjustment is None and tariff.market_band is not None:
            self.band = ClearingPriceBand(tariff.market_band)
            adjustment = self.band
        self.schedule = PriceSchedule(
            tariff, adjustment=adjustment, publish_at=publish_at, interval=interval
        )
        self.publisher = PricePublisher(self.schedule, ledger, self.clock)
        self.dr = DrManager(ledger, self.clock, id_prefix=dr_id_prefix)
        self.rules = RuleEngine(rules, interval)
        self.area = Neighbourhood(interval)
        self.meter_data = meter_data
        if meter_data is not None:
            meter_data.on_reading = self._on_reading
        self.prices: dict[int, Prices] = {}
        self.after = replay_after
        self.decisions: list[tuple[Decision, str]] = []
        self._stop = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._last_rule_interval: int | None = None
        self.started = asyncio.Event()

    # -- lifecycle ----------------------------------------------------------------

    async def start(self) -> None:
        """Start following the chain and scheduling; returns at once."""
        if self._tasks:
            raise RuntimeError("the concentrator is already running")
        if self.meter_data is not None:
            # The load view from the readings kept, newest last (the view keeps two days).
            since = int(self.clock.now()) - self.area.keep * self.interval
            for held in self.meter_data.store.between(since, 1 << 40):
                self._on_reading(held.opening)
        self._stop.clear()
        self._tasks = [
            asyncio.create_task(self._follow(), name="concentrator-follow"),
            asyncio.create_task(self._schedule(), name="concentrator-schedule"),
        ]

    async def stop(self, grace: float = 5.0) -> None:
        """Stop: the follower at once (it resumes by sequence number), the scheduler after
        its current step or ``grace`` seconds, whichever comes first (its work is idempotent).
        """
        self._stop.set()
        tasks, self._tasks = self._tasks, []
        if not tasks:
            return
        follower, scheduler = tasks
        follower.cancel()
        _, pending = await asyncio.wait([scheduler], timeout=grace)
        for task in pending:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    async def __aenter__(self) -> Concentrator:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    @property
    def running(self) -> bool:
        """Whether the tasks run."""
        return any(not t.done() for t in self._tasks)

    # -- inputs ----------------------------------------------------------------------

    def _on_reading(self, opening: Opening) -> None:
        """A meter's reading, kept by :class:`MeterData`: into the load view."""
        self.area.add_report(
            opening.meter, opening.interval_start, opening.import_wh, opening.export_wh
        )

    def ingest(self, event: Mapping[str, Any]) -> None:
        """One event from the chain's stream."""
        kind = event.get("type")
        if kind == "meter_bound" and self.meter_data is not None:
            self.meter_data.bound(str(event["meter"]), str(event["participant"]))
        elif kind == "price_signal":
            self.prices[int(event["interval_start"])] = Prices(
                int(event["import_price"]), int(event["export_price"]), int(event["network_fee"])
            )
            oldest = align_down(self.clock.now(), self.interval) - 86400
            for old in [t for t in self.prices if t < oldest]:
                del self.prices[old]
        elif kind == "dr_event":
            self.dr.observe(event)
        elif kind == "interval_cleared" and event.get("status") == "cleared":
            price = event.get("price")
            if isinstance(price, int) and not isinstance(price, bool):
                self.observe_clearing_price(price)

    def observe_clearing_price(self, price: int) -> None:
        """A market clearing price (10^-4 MXN/kWh) for the import-price band, if there is one."""
        if self.band is not None:
            self.band.observe(price)

    # -- views ---------------------------------------------------------------------

    def neighbourhood(self) -> dict[str, Any]:
        """The neighbourhood's load, prices and DR state, for the web UI and the operator."""
        now = self.clock.now()
        current = align_down(now, self.interval)
        on_chain = self.prices.get(current)
        scheduled = self.schedule.price(current)
        return {
            "now": int(now),
            "interval": self.interval,
            "load": self.area.to_json(),
            "price": {
                "interval_start": current,
                "on_chain": on_chain.to_json() if on_chain else None,
                "scheduled": scheduled.to_json(),
            },
            "dr_events": [e.to_json(now) for e in self.dr.events(now)],
            "rules": self.rules.to_json(),
        }

    # -- the two tasks ---------------------------------------------------------------

    async def _follow(self) -> None:
        while not self._stop.is_set():
            try:
                async for seq, _height, event in self.ledger.events(self.after):
                    self.ingest(event)
                    self.after = seq
            except Exception as err:  # noqa: BLE001 - the stream is retried whatever broke it
                LOG.warning("event stream interrupted after seq %d: %s", self.after, err)
            await self._pause(RECONNECT_SECONDS)

    async def _pause(self, seconds: float) -> None:
        """Wait ``seconds`` of real time, or less if stopped."""
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stop.wait(), seconds)

    async def _sleep_until(self, when: float) -> bool:
        """Wait for clock time ``when``; False if stopped first."""
        sleeper = asyncio.ensure_future(self.clock.sleep_until(when))
        stopper = asyncio.ensure_future(self._stop.wait())
        try:
            await asyncio.wait({sleeper, stopper}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for future in (sleeper, stopper):
                future.cancel()
            await asyncio.gather(sleeper, stopper, return_exceptions=True)
        return not self._stop.is_set()

    async def _guarded[T](self, what: str, work: Awaitable[T]) -> T | None:
        try:
            return await work
        except Exception:  # logged with its traceback; retried at the next wake-up
            LOG.exception("concentrator: %s failed; retrying later", what)
            return None

    async def _schedule(self) -> None:
        now = self.clock.now()
        report = await self._guarded("catching up on prices", self.publisher.catch_up())
        if report is not None:
            LOG.info(
                "prices on start: %d published, %d already on chain",
                len(report.published),
                len(report.already),
            )
        publication = self.schedule.next_publication(now)
        boundary = align_down(now, self.interval) + self.interval
        # Rules see the intervals that close after the start (evaluated report_delay later).
        self._last_rule_interval = align_down(now - self.report_delay, self.interval) - (
            self.interval
        )
        self.started.set()
        day_ahead: date | None = None  # a day-ahead publication still to complete
        while True:
            evaluation = self._last_rule_interval + 2 * self.interval + self.report_delay
            if not await self._sleep_until(min(publication, boundary, evaluation)):
                return
            now = self.clock.now()
            retry = now >= boundary
            if now >= publication:
                day_ahead = self.schedule.local_day(publication) + timedelta(days=1)
                publication = self.schedule.next_publication(now)
                retry = True
            if day_ahead is not None and retry:
                day_ahead = await self._publish_day_ahead(day_ahead)
            if now >= boundary:
                current = align_down(now, self.interval)
                await self._guarded(
                    "publishing the next intervals",
                    self.publisher.publish(current, current + 2 * self.interval),
                )
                boundary = current + self.interval
                if self.meter_data is not None:
                    await self._guarded("settling metered energy", self.meter_data.settle(now))
            await self._evaluate_rules(now)

    async def _publish_day_ahead(self, day: date) -> date | None:
        """Publish ``day``; it is returned (to retry at the next boundary) unless complete."""
        report = await self._guarded("day-ahead publication", self.publisher.publish_day(day))
        if report is None:
            return day
        if report.failed:
            _, first = report.failed[0]
            LOG.warning(
                "day-ahead prices for %s: %d intervals failed (%s: %s); retrying",
                day,
                len(report.failed),
                first.code,
                first.message,
            )
            return day
        LOG.info("day-ahead prices for %s: %d published", day, len(report.published))
        return None

    async def _evaluate_rules(self, now: float) -> None:
        assert self._last_rule_interval is not None
        latest_closed = align_down(now - self.report_delay, self.interval) - self.interval
        # After a long pause, evaluate at most the last day's intervals, in order.
        first = max(self._last_rule_interval + self.interval, latest_closed - 95 * self.interval)
        for start in range(first, latest_closed + 1, self.interval):
            for decision in self.rules.step(start, self.area.load_w(start), int(now)):
                await self._issue(decision)
            # Evaluated once its decisions are issued (or refused and noted).
            self._last_rule_interval = start

    async def _issue(self, decision: Decision) -> None:
        try:
            event = await self.dr.issue(
                decision.signal,
                decision.start,
                decision.duration,
                targets=decision.targets,
                ramp_up=decision.ramp_up,
                recovery=decision.recovery,
            )
        except DrError as err:
            LOG.warning("rule %s could not issue its event: %s", decision.rule, err)
            self.rules.failed(decision)
            return
        self.rules.issued(decision, event.event_id)
        self.decisions.append((decision, event.event_id))
        LOG.info(
            "rule %s: load %d W in interval %d -> event %s (%s)",
            decision.rule,
            decision.load_w,
            decision.interval_start,
            event.event_id,
            event.status(self.clock.now()),
        )
