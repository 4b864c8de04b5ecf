"""The analytics part of a home's node: readings in, forecasts and advice out.

:class:`AnalyticsService` owns the home's :class:`~ledger_core.analytics.store.ReadingStore`
and its fitted :class:`~ledger_core.analytics.forecast.HomeModel`. It is off the
consensus path: it reads no ledger state except through the callables it is
given (prices, contract rules) and nothing it computes goes on chain.

- Readings: :meth:`feed` takes live samples (net power, optional PV and
  appliance power), averages them per minute (:class:`MinuteAggregator`) and
  stores closed minutes; :meth:`record_intervals` stores the meter's signed
  15-minute energies, which take precedence.
- Schedule: :meth:`tick` refits the models when ``refit_seconds`` have passed
  since the last fit (daily by default) and applies the retention ladder once
  a day; :meth:`run` calls it every ``poll_seconds`` until stopped. All times
  come from the injected ``clock`` (Unix seconds), so tests and the
  accelerated demo can drive it.
- Answers: :meth:`forecast`, :meth:`history`, :meth:`advice`, :meth:`summary`
  and, for the market's day-ahead orders, :meth:`expected_energy`.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Final
from zoneinfo import ZoneInfo

import numpy as np

from ledger_core.analytics.advice import Advice, Inputs, PriceRule, Tariff, advise
from ledger_core.analytics.forecast import (
    HISTORY_DAYS_FOR_FORECAST,
    MAX_STEPS,
    Band,
    Forecast,
    HomeModel,
    NotEnoughData,
    fit_home,
)
from ledger_core.analytics.localtime import (
    DAY,
    SLOT,
    FloatArray,
    IntArray,
    Site,
    local_midnight,
)
from ledger_core.analytics.store import Interval, Minute, ReadingStore, Resolution

LOG: Final = logging.getLogger(__name__)
FIT_DAYS: Final = 365
DEFAULT_PRICES: Final = (11_000, 8_000)  # 1.10 MXN/kWh import, 0.80 export (10^-4 MXN/kWh)

type Clock = Callable[[], float]
type PriceSource = Callable[[int, int], Mapping[int, tuple[int, int]]]
type RuleSource = Callable[[], Sequence[PriceRule]]


class NotReady(Exception):  # noqa: N818 - a state, like TimeoutError
    """No model yet: too little history, or not fitted so far."""


@dataclass(slots=True)
class MinuteAggregator:
    """Averages live samples into minute readings (mean import, export, PV, appliances).

    A sample belongs to the minute it falls in; a minute is handed out when the
    first sample of a later minute arrives. Samples must come in time order;
    an older one is dropped.
    """

    _minute: int | None = None
    _count: int = 0
    _import: float = 0.0
    _export: float = 0.0
    _pv: float = 0.0
    _pv_count: int = 0
    _channels: dict[str, float] = field(default_factory=dict)

    def add(
        self,
        t: float,
        power_w: float,
        pv_w: float | None = None,
        channels: Mapping[str, float] | None = None,
    ) -> list[Minute]:
        """Add a sample (net power, + importing); the minutes it closes."""
        minute = int(t // 60) * 60
        closed: list[Minute] = []
        if self._minute is not None and minute < self._minute:
            return closed
        if self._minute is not None and minute > self._minute:
            closed.append(self._close())
        self._minute = minute
        self._count += 1
        self._import += max(power_w, 0.0)
        self._export += max(-power_w, 0.0)
        if pv_w is not None:
            self._pv += max(pv_w, 0.0)
            self._pv_count += 1
        for name, watts in (channels or {}).items():
            self._channels[name] = self._channels.get(name, 0.0) + max(watts, 0.0)
        return closed

    def _close(self) -> Minute:
        assert self._minute is not None
        n = self._count
        minute = Minute(
            self._minute,
            round(self._import / n),
            round(self._export / n),
            round(self._pv / self._pv_count) if self._pv_count else None,
            {name: round(total / n) for name, total in self._channels.items()},
        )
        self._count = self._pv_count = 0
        self._import = self._export = self._pv = 0.0
        self._channels = {}
        return minute


class AnalyticsService:
    """Readings, models and answers for one home (see the module docstring)."""

    def __init__(
        self,
        store: ReadingStore,
        site: Site | None = None,
        *,
        clock: Clock = time.time,
        prices: PriceSource | None = None,
        default_prices: tuple[int, int] = DEFAULT_PRICES,
        rules: RuleSource | None = None,
        refit_seconds: int = DAY,
        use_temperature: bool = True,
    ) -> None:
        self.store = store
        self.site = site or Site()
        self.clock = clock
        self.prices = prices
        self.default_prices = default_prices
        self.rules = rules
        self.refit_seconds = refit_seconds
        self.use_temperature = use_temperature
        self.model: HomeModel | None = None
        self.fitted_at: int | None = None
        self.last_error: str | None = None
        self.compacted_at: int | None = None
        self._aggregator = MinuteAggregator()
        self._cached: tuple[int, int | None, Forecast] | None = None

    def now(self) -> int:
        """The service's clock, whole seconds."""
        return int(self.clock())

    # -- readings ---------------------------------------------------------------------

    def feed(
        self,
        t: float,
        power_w: float,
        pv_w: float | None = None,
        channels: Mapping[str, float] | None = None,
    ) -> int:
        """A live sample; stores the minutes it closes and returns how many."""
        return self.store.add_minutes(self._aggregator.add(t, power_w, pv_w, channels))

    def record_intervals(self, rows: Sequence[Interval]) -> int:
        """The meter's 15-minute energies (authoritative over minute data)."""
        return self.store.add_intervals(rows)

    # -- schedule ---------------------------------------------------------------------

    def refit(self) -> HomeModel | None:
        """Fit both models on up to a year of history; None (and ``last_error``) if too little."""
        now = self.now()
        origin = now - now % SLOT
        history = self.store.series(origin - FIT_DAYS * DAY, origin)
        try:
            model = fit_home(history, self.site, self.use_temperature)
        except NotEnoughData as err:
            self.last_error = str(err)
            self.fitted_at = now
            return None
        self.model, self.fitted_at, self.last_error = model, now, None
        self._cached = None
        return model

    def tick(self) -> list[str]:
        """Do what is due: refit, compaction. Returns what was done (for logs and tests)."""
        now = self.now()
        done = []
        if self.fitted_at is None or now - self.fitted_at >= self.refit_seconds:
            self.refit()
            done.append("refit" if self.model is not None else "refit_skipped")
        if self.compacted_at is None or now - self.compacted_at >= DAY:
            self.store.compact(now, self.site.timezone)
            self.compacted_at = now
            done.append("compact")
        return done

    async def run(self, stop: asyncio.Event, poll_seconds: float = 60.0) -> None:
        """Call :meth:`tick` (in a worker thread) every ``poll_seconds`` until ``stop`` is set."""
        loop = asyncio.get_running_loop()
        while not stop.is_set():
            try:
                await loop.run_in_executor(None, self.tick)
            except Exception:
                LOG.exception("analytics: scheduled work failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), poll_seconds)

    # -- answers ----------------------------------------------------------------------

    def forecast(self, steps: int = MAX_STEPS) -> Forecast:
        """Forecast from the current 15-minute interval on; raises :class:`NotReady`."""
        if self.model is None:
            raise NotReady(self.last_error or "the models have not been fitted yet")
        if not 1 <= steps <= MAX_STEPS:
            raise ValueError(f"steps: must be between 1 and {MAX_STEPS}")
        now = self.now()
        origin = now - now % SLOT
        if self._cached is None or self._cached[:2] != (origin, self.fitted_at):
            history = self.store.series(origin - HISTORY_DAYS_FOR_FORECAST * DAY, origin)
            temperature = self._temperatures(origin, MAX_STEPS)
            full = self.model.forecast(history, origin, MAX_STEPS, temperature)
            self._cached = (origin, self.fitted_at, full)
        full = self._cached[2]
        return Forecast(
            full.start[:steps],
            _head(full.consumption, steps),
            _head(full.production, steps),
        )

    def _temperatures(self, origin: int, steps: int) -> FloatArray:
        stored = self.store.temperatures(origin, origin + steps * SLOT)
        values = np.full(steps, np.nan)
        for t, celsius in stored.items():
            values[(t - origin) // SLOT] = celsius
        return values

    def history(self, start: int, end: int, resolution: Resolution) -> list[dict[str, object]]:
        """Stored energy per 15 minutes, local hour or local day."""
        return self.store.history(start, end, resolution, self.site.timezone)

    def tariff(self, t: IntArray) -> Tariff:
        """Prices for the intervals starting at ``t`` (signals, else the defaults)."""
        if self.prices is None or t.size == 0:
            return Tariff.flat(t.size, *self.default_prices)
        signals = self.prices(int(t[0]) - DAY, int(t[-1]) + SLOT)
        return Tariff.from_signals(t, signals, self.default_prices)

    def advice(self) -> list[Advice]:
        """Ranked advice from the last year of readings (money from the last 30 days)."""
        now = self.now()
        end = now - now % SLOT
        start = end - FIT_DAYS * DAY
        first = self.store.first_interval()
        if first is not None:
            start = max(start, first - first % SLOT)
        series = self.store.series(start, end)
        appliances = {
            name: self.store.channel_series(name, start, end) for name in self.store.channels()
        }
        inputs = Inputs(
            series,
            self.tariff(series.t),
            self.site.timezone,
            appliances,
            tuple(self.rules()) if self.rules is not None else (),
        )
        return advise(inputs)

    def summary(self) -> dict[str, object]:
        """Today's totals (measured so far plus expected for the rest) and tomorrow's.

        Expected energy is the sum of the forecast means: medians do not add up. What was
        measured is never negative (:func:`~ledger_core.analytics.store.consumption_wh`).
        """
        now = self.now()
        zone = self.site.timezone
        today = local_midnight(now, zone)
        tomorrow = local_midnight(today + DAY + 3 * 3600, zone)
        after = local_midnight(tomorrow + DAY + 3 * 3600, zone)
        origin = now - now % SLOT
        measured = self.store.series(today, origin)
        used = round(float(np.nansum(measured.consumption)))
        produced = round(float(np.nansum(measured.production)))
        body: dict[str, object] = {
            "date": dt.datetime.fromtimestamp(now, ZoneInfo(zone)).date().isoformat(),
            "measured_consumption_wh": used,
            "measured_production_wh": produced,
            "fitted_at": self.fitted_at,
            "ready": self.model is not None,
            "message": self.last_error,
        }
        if self.model is None:
            return body
        forecast = self.forecast()
        c, p, start = forecast.consumption.mean, forecast.production.mean, forecast.start
        rest = (start >= origin) & (start < tomorrow)
        next_day = (start >= tomorrow) & (start < after)
        body |= {
            "consumption_today_wh": used + round(float(c[rest].sum())),
            "production_today_wh": produced + round(float(p[rest].sum())),
            "consumption_rest_of_today_wh": round(float(c[rest].sum())),
            "production_rest_of_today_wh": round(float(p[rest].sum())),
            "consumption_tomorrow_wh": round(float(c[next_day].sum())),
            "production_tomorrow_wh": round(float(p[next_day].sum())),
            "kwp": None if self.model.production is None else round(self.model.production.kwp, 2),
            "kwp_learned": self.model.production is not None and self.model.production.learned,
        }
        return body

    def expected_energy(self, start: int, end: int) -> dict[int, tuple[int, int]]:
        """Expected ``(consumption_wh, production_wh)`` per interval starting in ``[start, end)``.

        The contract executor's day-ahead orders read it (``EnergyForecast``).
        Medians, not means: a home that offers q Wh and exports less buys the
        shortfall at the backstop's import price, and one that exports more
        sells the rest at its export price; with the clearing price near the
        middle of that spread, the median is the quantity with the least
        expected cost. Only intervals within the forecast horizon are given;
        an empty answer while the models are not fitted.
        """
        try:
            forecast = self.forecast()
        except NotReady:
            return {}
        keep = (forecast.start >= start) & (forecast.start < end)
        return {
            int(t): (max(round(float(c)), 0), max(round(float(p)), 0))
            for t, c, p in zip(
                forecast.start[keep],
                forecast.consumption.p50[keep],
                forecast.production.p50[keep],
                strict=True,
            )
        }


def _head(band: Band, steps: int) -> Band:
    return Band(band.mean[:steps], band.p10[:steps], band.p50[:steps], band.p90[:steps])
