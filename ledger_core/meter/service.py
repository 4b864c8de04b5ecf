"""The meter role of a node: source -> accounting -> intervals -> signed reports -> ledger.

:class:`MeterService` reads its source every ``sample_period`` seconds of its
clock (or as fast as a self-paced source delivers), and for each reading, in
one SQLite transaction: updates the lifetime counters, spreads the net energy
over the open intervals, closes the intervals the data has passed (or that
ended ``report_delay`` seconds ago by the clock) and signs and stores their
reports (commitments to the readings, whose salts stay here). The outbox sends
them on its own task, and the readings to the concentrator. Service cut / reconnection and
unreachable-meter events come from :class:`~ledger_core.meter.supply.SupplyMonitor`.

For the API: :meth:`MeterService.latest`, :meth:`MeterService.snapshot` (the
JSON of ``GET /api/v1/local/meter``), :meth:`MeterService.subscribe` (live
readings) and :meth:`MeterService.subscribe_events`. :meth:`MeterService.stop`
returns within ``shutdown_timeout`` seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any, Final

from ledger_core.clock import SYSTEM_CLOCK, Clock, utc
from ledger_core.meter.accounting import Accountant
from ledger_core.meter.intervals import DEFAULT_TIMEZONE, IntervalClock, IntervalReport, Intervals
from ledger_core.meter.outbox import ChainNonce, Outbox, Share, Submit
from ledger_core.meter.reading import MeterError, MeterUnreachable, Reading
from ledger_core.meter.sources import MeterConfigError, MeterSource
from ledger_core.meter.store import MeterStore
from ledger_core.meter.supply import MeterEvent, Supply, SupplyMonitor
from ledger_core.types.crypto import SigningKey

LOG: Final = logging.getLogger(__name__)
STORE_FILE: Final = "meter.db"


@dataclass(frozen=True, slots=True)
class MeterConfig:
    """Settings of the meter role (times in seconds of the service's clock)."""

    sample_period: float = 1.0
    max_gap: float = 30.0
    interval_seconds: int = 900
    timezone: str = DEFAULT_TIMEZONE
    report_delay: float = 120.0
    cut_voltage: float = 50.0
    cut_samples: int = 3
    unreachable_after: int = 3
    max_power_w: float = 100_000.0
    submit_backoff: float = 1.0
    submit_backoff_max: float = 60.0
    confirm_after: float = 5.0
    shutdown_timeout: float = 5.0

    def __post_init__(self) -> None:
        checks = {
            "sample_period": self.sample_period > 0,
            "max_gap": self.max_gap > 0,
            "interval_seconds": self.interval_seconds > 0 and 86400 % self.interval_seconds == 0,
            "report_delay": self.report_delay >= 0,
            "cut_voltage": self.cut_voltage >= 0,
            "cut_samples": self.cut_samples >= 1,
            "unreachable_after": self.unreachable_after >= 1,
            "max_power_w": self.max_power_w > 0,
            "submit_backoff": self.submit_backoff > 0,
            "submit_backoff_max": self.submit_backoff_max >= self.submit_backoff,
            "confirm_after": self.confirm_after > 0,
            "shutdown_timeout": self.shutdown_timeout > 0,
        }
        for name, ok in checks.items():
            if not ok:
                raise MeterConfigError(f"meter.{name}", f"{getattr(self, name)!r} is out of range")
        try:
            IntervalClock(self.timezone, self.interval_seconds)
        except (KeyError, ValueError, OSError):
            raise MeterConfigError("meter.timezone", f"unknown zone {self.timezone!r}") from None

    @classmethod
    def from_json(cls, value: object) -> MeterConfig:
        """From a JSON object of any of the fields; errors name the field."""
        if not isinstance(value, dict):
            raise MeterConfigError("meter", "must be an object")
        known = {f.name: f for f in fields(cls)}
        for key, item in value.items():
            if key not in known:
                raise MeterConfigError(f"meter.{key}", "is not a meter setting")
            expected = str if key == "timezone" else (int if known[key].type == "int" else float)
            ok = (
                isinstance(item, str)
                if expected is str
                else (isinstance(item, int | float) and not isinstance(item, bool))
            )
            if expected is int and ok:
                ok = isinstance(item, int)
            if not ok:
                raise MeterConfigError(f"meter.{key}", f"must be {expected.__name__}")
        return cls(**value)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


class MeterService:
    """Runs one meter: its source, accounting, intervals, outbox and supply monitor."""

    def __init__(
        self,
        source: MeterSource,
        store_path: Path,
        key: SigningKey,
        chain_id: str,
        submit: Submit,
        *,
        config: MeterConfig | None = None,
        clock: Clock = SYSTEM_CLOCK,
        chain_nonce: ChainNonce | None = None,
        share: Share | None = None,
    ) -> None:
        """``share`` sends each reading to the concentrator (docs/privacy.md); without it
        the readings stay in ``meter.db`` and the ledger gets only their commitments."""
        self.source = source
        self.config = config or MeterConfig()
        self.clock = clock
        self.key = key
        self.store = MeterStore(store_path, key.address, chain_id)
        c = self.config
        self.accountant = Accountant(self.store, max_gap=c.max_gap, max_power_w=c.max_power_w)
        self.intervals = Intervals(self.store, IntervalClock(c.timezone, c.interval_seconds))
        self.outbox = Outbox(
            self.store,
            key,
            chain_id,
            submit,
            chain_nonce=chain_nonce,
            share=share,
            clock=clock,
            backoff=c.submit_backoff,
            backoff_max=c.submit_backoff_max,
            confirm_after=c.confirm_after,
        )
        self.supply = SupplyMonitor(c.cut_voltage, c.cut_samples, c.unreachable_after)
        self._latest: Reading | None = None
        self._readers: set[asyncio.Queue[Reading]] = set()
        self._listeners: set[asyncio.Queue[MeterEvent]] = set()
        self._stop = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._last_error: str | None = None
        self.closed = False

    @property
    def meter(self) -> str:
        """The meter key's address (what the ledger knows this meter as)."""
        return self.key.address

    # -- one step -------------------------------------------------------------------

    async def step(self) -> Reading | None:
        """Read the source once and account what it said; the reading, if there was one."""
        try:
            reading = await self.source.read()
        except MeterUnreachable as err:
            self._note_error(str(err))
            self._publish_events(self.supply.unreachable(utc(self.clock.now()), str(err)))
            self.tick()
            return None
        except MeterError as err:
            self._note_error(str(err))
            self.tick()
            return None
        self._last_error = None
        self.process(reading)
        return reading

    def process(self, reading: Reading) -> list[IntervalReport]:
        """Account one reading (one SQLite transaction); the reports it produced."""
        with self.store.transaction():
            for span in self.accountant.add(reading):
                self.intervals.add(span)
            reports = self._close(self.accountant.frontier)
        self._latest = reading
        events = self.supply.observe(reading)
        for queue in list(self._readers):
            _offer(queue, reading)
        self._after_close(reports, events)
        return reports

    def tick(self) -> list[IntervalReport]:
        """Close intervals whose time is up even without new data."""
        with self.store.transaction():
            reports = self._close(None)
        self._after_close(reports, [])
        return reports

    def _close(self, frontier: float | None) -> list[IntervalReport]:
        by_clock = self.clock.now() - self.config.report_delay
        reports = self.intervals.close_through(max(by_clock, frontier or -math.inf))
        for report in reports:
            self.outbox.add(report)
        return reports

    def _after_close(self, reports: list[IntervalReport], events: list[MeterEvent]) -> None:
        for report in reports:
            events.append(MeterEvent("interval_report", utc(self.clock.now()), report.body()))
        if reports:
            self.outbox.wake()
        self._publish_events(events)

    def _note_error(self, message: str) -> None:
        if message != self._last_error:  # log changes, not every failed sample
            LOG.warning("meter %s: %s", self.source.name, message)
            self._last_error = message

    def _publish_events(self, events: list[MeterEvent]) -> None:
        for event in events:
            if event.type != "interval_report":
                LOG.info("meter %s: %s", self.source.name, event.type)
            for queue in list(self._listeners):
                _offer(queue, event)

    # -- running ------------------------------------------------------------------------

    async def start(self) -> None:
        """Start reading and sending in the background."""
        if self._tasks:
            return
        self._stop.clear()
        self._tasks = [
            asyncio.create_task(self._run(), name="meter-readings"),
            asyncio.create_task(self.outbox.run(self._stop), name="meter-outbox"),
        ]

    async def _run(self) -> None:
        stopping = asyncio.ensure_future(self._stop.wait())
        try:
            while not self._stop.is_set():
                started = self.clock.now()
                # A read may wait long (a self-paced source, a slow meter): stopping
                # cancels it. Processing after the read has no await, so it is never cut.
                step = asyncio.ensure_future(self.step())
                await asyncio.wait({step, stopping}, return_when=asyncio.FIRST_COMPLETED)
                if not step.done():
                    step.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await step
                    break
                if step.exception() is not None:
                    LOG.error(
                        "meter %s: unexpected error", self.source.name, exc_info=step.exception()
                    )
                if self.source.self_paced:
                    continue
                pause = asyncio.ensure_future(
                    self.clock.sleep(started + self.config.sample_period - self.clock.now())
                )
                await asyncio.wait({pause, stopping}, return_when=asyncio.FIRST_COMPLETED)
                pause.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await pause
        finally:
            stopping.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await stopping

    async def stop(self) -> None:
        """Stop within ``shutdown_timeout`` seconds and close the source and the file."""
        if self.closed:
            return
        self._stop.set()
        if self._tasks:
            _, late = await asyncio.wait(self._tasks, timeout=self.config.shutdown_timeout)
            for task in late:  # a read or a submit that would not end
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)
            self._tasks = []
        try:
            await asyncio.wait_for(self.source.close(), self.config.shutdown_timeout)
        except TimeoutError:
            LOG.warning("meter %s: the source did not close in time", self.source.name)
        self.store.close()
        self.closed = True

    # -- for the API -------------------------------------------------------------------

    def latest(self) -> Reading | None:
        """The last reading, if any."""
        return self._latest

    @property
    def service(self) -> Supply:
        """``connected``, ``cut`` or ``unknown``."""
        return self.supply.state

    def snapshot(self) -> dict[str, Any] | None:
        """The JSON of ``GET /api/v1/local/meter``; None before the first reading."""
        reading = self._latest
        if reading is None:
            return None
        net = self.accountant.counters["net"]
        last = self.intervals.last_report
        return {
            "time": reading.time.isoformat().replace("+00:00", "Z"),
            "source": reading.source,
            "phases": [phase.to_json() for phase in reading.phases],
            "neutral_current": reading.neutral_current,
            "power": reading.power,
            "import_wh_total": net.import_wh,
            "export_wh_total": net.export_wh,
            "last_interval": None if last is None else last.body(),
            "service": str(self.service),
        }

    def subscribe(self, maxsize: int = 100) -> asyncio.Queue[Reading]:
        """A queue of every reading from now on (the oldest are dropped if it fills)."""
        queue: asyncio.Queue[Reading] = asyncio.Queue(maxsize)
        self._readers.add(queue)
        return queue

    def unsubscribe(self, queue: asyncio.Queue[Reading]) -> None:
        self._readers.discard(queue)

    def subscribe_events(self, maxsize: int = 1000) -> asyncio.Queue[MeterEvent]:
        """A queue of :class:`MeterEvent` from now on."""
        queue: asyncio.Queue[MeterEvent] = asyncio.Queue(maxsize)
        self._listeners.add(queue)
        return queue

    def unsubscribe_events(self, queue: asyncio.Queue[MeterEvent]) -> None:
        self._listeners.discard(queue)


def _offer[T](queue: asyncio.Queue[T], item: T) -> None:
    if queue.full():
        queue.get_nowait()
    queue.put_nowait(item)
