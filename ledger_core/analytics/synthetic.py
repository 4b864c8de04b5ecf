"""A synthetic household, minute by minute: for backtests, benchmarks and demos.

No package here ships real household load data, so backtests of the
consumption model run on this generator (and say so). It is vectorised numpy
and deterministic for a seed. What it puts together, per minute:

- **Behaviour** -- the BDEW H25 standard household profile (the 2025 revision
  of H0, data file shipped with ``demandlib``: 96 quarter-hours for each month
  and weekday / Saturday / Sunday-or-holiday) with its dynamisation polynomial;
  the month-to-month swing is halved, because Morelia's daylight varies less
  over the year than Germany's. Mexican public holidays (``holidays.Mexico``)
  behave like Sundays. The level wanders from day to day (log-normal AR(1),
  weather-like persistence) and within the day (AR(1) per quarter-hour).
- **Appliances with their own events** -- refrigerator (compressor cycling,
  duty rising with temperature), rooftop water pump (*bomba*, mornings and some
  evenings), washing machine (*lavadora*: heating, washing, spin; more on
  weekends), iron (*plancha*), microwave at meal times, fans above 25 °C, and a
  constant standby load.
- **Absences** -- the family is away around Easter (*Semana Santa*) and
  between Christmas and New Year: only the refrigerator and standby run.
- **Weather** -- air temperature with Morelia's monthly normals, a daily cycle
  and persistent anomalies; a daily clearness index with a dry season
  (November-May) and a rainy one (June-September, cloudier afternoons), with
  day-to-day persistence and intraday variation.
- **PV** -- ``pvlib`` clear-sky irradiance (Ineichen with climatological Linke
  turbidity) on the tilted array, scaled by the clearness index, the system
  size and a temperature derating.

Import and export are the per-minute difference of consumption and PV.
"""

from __future__ import annotations

import csv
import datetime as dt
import importlib.resources
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Final

import numpy as np
import numpy.typing as npt

from ledger_core.analytics.localtime import (
    SLOT,
    SLOTS_PER_DAY,
    FloatArray,
    IntArray,
    Site,
    day_types,
    midnight,
    whole,
)
from ledger_core.analytics.store import Interval, Minute

MINUTES_PER_DAY: Final = 1440
# Morelia's monthly mean air temperature (°C), January first.
MORELIA_TEMPERATURE: Final = (
    14.5, 16.0, 18.4, 20.4, 21.5, 20.6, 19.2, 19.2, 18.9, 17.8, 16.2, 15.0,
)  # fmt: skip
# Median daily clearness index by month: dry season clear, rainy season cloudier.
MORELIA_CLEARNESS: Final = (
    0.86, 0.87, 0.88, 0.85, 0.80, 0.62, 0.55, 0.56, 0.58, 0.72, 0.83, 0.85,
)  # fmt: skip
# The H25 file's day-type columns, in the order of localtime's day types.
_H25_DAYTYPES: Final = ("WT", "SA", "FT")


@dataclass(frozen=True, slots=True)
class HouseholdConfig:
    """The home being simulated (energies in kWh per year, powers in W)."""

    behaviour_kwh: float = 1500.0
    standby_w: float = 45.0
    fridge_w: float = 120.0
    pump_w: float = 550.0
    washer_runs_per_week: float = 3.0
    iron_runs_per_week: float = 1.5
    fan_w_per_degree: float = 40.0
    pv_kwp: float = 3.0
    away_at_easter: bool = True
    away_at_christmas: bool = True
    site: Site = field(default_factory=Site)


@dataclass(frozen=True, slots=True)
class Household:
    """A simulated home: per-minute power (W) and per-interval temperature (°C)."""

    start: int  # Unix seconds, a local midnight
    consumption_w: FloatArray
    pv_w: FloatArray
    appliances: dict[str, FloatArray]
    temperature: FloatArray  # one value per 15-minute interval

    @property
    def minutes(self) -> int:
        return int(self.consumption_w.size)

    @property
    def import_w(self) -> FloatArray:
        result: FloatArray = np.maximum(self.consumption_w - self.pv_w, 0.0)
        return result

    @property
    def export_w(self) -> FloatArray:
        result: FloatArray = np.maximum(self.pv_w - self.consumption_w, 0.0)
        return result

    @property
    def interval_times(self) -> IntArray:
        n = self.minutes // 15
        result: IntArray = self.start + SLOT * np.arange(n, dtype=np.int64)
        return result

    def intervals_wh(self, watts: FloatArray) -> FloatArray:
        """Per-minute watts summed into 15-minute watt-hours."""
        n = watts.size // 15
        result: FloatArray = watts[: n * 15].reshape(n, 15).sum(axis=1) / 60.0
        return result

    @property
    def consumption_wh(self) -> FloatArray:
        return self.intervals_wh(self.consumption_w)

    @property
    def pv_wh(self) -> FloatArray:
        return self.intervals_wh(self.pv_w)

    def minute_rows(self, first: int = 0, count: int | None = None) -> list[Minute]:
        """Minute readings as the store takes them (rounded to whole watts)."""
        end = self.minutes if count is None else min(self.minutes, first + count)
        imp = whole(self.import_w[first:end])
        exp = whole(self.export_w[first:end])
        pv = whole(self.pv_w[first:end])
        channels = {name: whole(watts[first:end]) for name, watts in self.appliances.items()}
        return [
            Minute(
                self.start + 60 * (first + i),
                imp[i],
                exp[i],
                pv[i],
                {name: values[i] for name, values in channels.items()},
            )
            for i in range(end - first)
        ]

    def interval_rows(self) -> list[Interval]:
        """15-minute rows as the store takes them (Wh from per-minute netting)."""
        imp = whole(self.intervals_wh(self.import_w))
        exp = whole(self.intervals_wh(self.export_w))
        pv = whole(self.pv_wh)
        channels = {name: whole(self.intervals_wh(w)) for name, w in self.appliances.items()}
        return [
            Interval(t, imp[i], exp[i], pv[i], {name: v[i] for name, v in channels.items()})
            for i, t in enumerate(whole(self.interval_times))
        ]


@lru_cache(maxsize=1)
def h25_profile() -> FloatArray:
    """BDEW H25 as an array [month, day type, quarter-hour] normalised to 1 kWh per year."""
    path = importlib.resources.files("demandlib.bdew") / "bdew_data" / "h25.csv"
    with path.open(encoding="utf-8") as handle:
        rows = list(csv.reader(handle))
    months = rows[0][1:]
    kinds = rows[1][1:]
    values = np.array([[float(v) for v in row[1:]] for row in rows[2:]])
    assert values.shape == (SLOTS_PER_DAY, 36)
    profile = np.zeros((12, 3, SLOTS_PER_DAY))
    month_names = list(dict.fromkeys(months))
    for column, (month, kind) in enumerate(zip(months, kinds, strict=True)):
        profile[month_names.index(month), _H25_DAYTYPES.index(kind)] = values[:, column]
    result: FloatArray = profile / (profile.mean() * SLOTS_PER_DAY * 365.0)
    return result


def _dynamisation(day_of_year: FloatArray) -> FloatArray:
    """The BDEW dynamisation polynomial of a dynamic household profile."""
    d = day_of_year
    result: FloatArray = -3.92e-10 * d**4 + 3.2e-7 * d**3 - 7.02e-5 * d**2 + 2.1e-3 * d + 1.24
    return result


def easter(year: int) -> dt.date:
    """Western Easter Sunday (the Gregorian computus)."""
    a, b, c = year % 19, year // 100, year % 100
    d, e = divmod(b, 4)
    g = (8 * b + 13) // 25
    h = (19 * a + b - d - g + 15) % 30
    i, k = divmod(c, 4)
    ell = (32 + 2 * e + 2 * i - h - k) % 7
    m = (a + 11 * h + 22 * ell) // 451
    month, day = divmod(h + ell - 7 * m + 114, 31)
    return dt.date(year, month, day + 1)


def _ar1(rng: np.random.Generator, n: int, rho: float, sigma: float) -> FloatArray:
    """A stationary AR(1) series with lag-one correlation ``rho`` and s.d. ``sigma``."""
    shocks = rng.normal(0.0, sigma * np.sqrt(1.0 - rho * rho), n)
    out = np.empty(n)
    value = rng.normal(0.0, sigma)
    for i in range(n):
        value = rho * value + shocks[i]
        out[i] = value
    return out


def _events(
    minutes: int, starts: IntArray, profile: FloatArray, out: FloatArray | None = None
) -> FloatArray:
    """Per-minute watts of runs of ``profile`` starting at the given minutes."""
    result = np.zeros(minutes) if out is None else out
    if starts.size:
        index = (starts[:, None] + np.arange(profile.size)[None, :]).ravel()
        values = np.tile(profile, starts.size)
        keep = index < minutes
        np.add.at(result, index[keep], values[keep])
    return result


def _starts(
    rng: np.random.Generator, days: IntArray, rate: FloatArray, windows: list[tuple[float, float]]
) -> IntArray:
    """Event start minutes: Poisson counts per day, each in one of ``windows`` (hours)."""
    counts = rng.poisson(rate)
    day_index = np.repeat(np.arange(days.size), counts)
    choice = rng.integers(0, len(windows), day_index.size)
    low = np.array([w[0] for w in windows])[choice]
    high = np.array([w[1] for w in windows])[choice]
    hour = rng.uniform(low, high)
    result: IntArray = day_index * MINUTES_PER_DAY + (hour * 60).astype(np.int64)
    return result


@dataclass(frozen=True, slots=True)
class _Days:
    """What the generator needs to know about each simulated day."""

    numbers: IntArray  # days since 1970-01-01
    month: IntArray  # 0-11
    day_of_year: FloatArray
    kinds: IntArray  # day types
    away: npt.NDArray[np.bool_]

    @property
    def count(self) -> int:
        return int(self.numbers.size)

    @property
    def slot_hour(self) -> FloatArray:
        """Hour of day at the middle of each quarter-hour of the whole run."""
        slots = np.arange(self.count * SLOTS_PER_DAY) % SLOTS_PER_DAY
        return np.asarray((slots + 0.5) / 4.0, dtype=np.float64)


def simulate(
    first_day: dt.date, days: int, seed: int = 0, config: HouseholdConfig | None = None
) -> Household:
    """``days`` days of one home from local midnight of ``first_day``."""
    config = config or HouseholdConfig()
    site = config.site
    rng = np.random.default_rng(seed)
    dates = [first_day + dt.timedelta(days=i) for i in range(days)]
    numbers = (first_day - dt.date(1970, 1, 1)).days + np.arange(days, dtype=np.int64)
    calendar = _Days(
        numbers,
        np.array([d.month - 1 for d in dates], dtype=np.int64),
        np.array([d.timetuple().tm_yday for d in dates], dtype=float),
        day_types(numbers, site),
        _away_days(dates, config),
    )
    temperature, clearness = _weather(rng, calendar)
    behaviour = _behaviour(rng, calendar, config)
    appliances, other = _appliances(rng, calendar, config, temperature)
    consumption = behaviour + other + config.standby_w
    for watts in appliances.values():
        consumption = consumption + watts
    start = midnight(first_day, site.timezone)
    pv = _pv_watts(start, site, config.pv_kwp, clearness=clearness, temperature=temperature)
    return Household(start, consumption, pv, appliances, temperature)


def _weather(rng: np.random.Generator, days: _Days) -> tuple[FloatArray, FloatArray]:
    """Air temperature and clearness index per quarter-hour."""
    n_slot = days.count * SLOTS_PER_DAY
    slot_hour = days.slot_hour
    normals = np.array(MORELIA_TEMPERATURE)[days.month]
    anomaly = _ar1(rng, days.count, 0.7, 1.5)
    daily_cycle = 7.0 * np.cos(2 * np.pi * (slot_hour - 15.0) / 24.0)
    temperature = np.repeat(normals + anomaly, SLOTS_PER_DAY) + daily_cycle
    temperature += _ar1(rng, n_slot, 0.95, 0.6)

    daily_k = np.array(MORELIA_CLEARNESS)[days.month] + _ar1(rng, days.count, 0.5, 0.12)
    rainy = np.isin(days.month, (5, 6, 7, 8))
    afternoon = (slot_hour >= 13.0) & (slot_hour < 19.0)
    storm = np.repeat(rainy & (rng.random(days.count) < 0.6), SLOTS_PER_DAY) & afternoon
    k = np.repeat(daily_k, SLOTS_PER_DAY) + _ar1(rng, n_slot, 0.8, 0.12)
    k = np.where(storm, k * rng.uniform(0.2, 0.7, n_slot), k)
    return temperature, np.clip(k, 0.05, 1.05)


def _behaviour(rng: np.random.Generator, days: _Days, config: HouseholdConfig) -> FloatArray:
    """Per-minute watts of everyday use: H25 with halved seasonal swing, wandering level."""
    profile = h25_profile()
    seasonal = 0.5 * profile + 0.5 * profile.mean(axis=0, keepdims=True)
    per_slot = seasonal[days.month, days.kinds].ravel()  # kWh per slot for 1 kWh/year
    level = np.exp(_ar1(rng, days.count, 0.6, 0.15)) * _dynamisation(days.day_of_year)
    level = np.where(days.away, 0.0, level)
    wobble = np.exp(_ar1(rng, days.count * SLOTS_PER_DAY, 0.8, 0.25))
    slot_w = per_slot * np.repeat(level, SLOTS_PER_DAY) * wobble
    slot_w *= config.behaviour_kwh * 1000.0 * 4.0  # kWh per slot -> W
    result: FloatArray = np.repeat(slot_w, 15) * rng.lognormal(0.0, 0.1, slot_w.size * 15)
    return result


def _appliances(
    rng: np.random.Generator, days: _Days, config: HouseholdConfig, temperature: FloatArray
) -> tuple[dict[str, FloatArray], FloatArray]:
    """Appliances with their own sensor (by name) and other event loads, per minute."""
    n_min = days.count * MINUTES_PER_DAY
    home: FloatArray = (~days.away).astype(np.float64)
    appliances: dict[str, FloatArray] = {}

    # Refrigerator: 40-minute cycles, duty 25 % at 20 °C plus 1.5 % per degree.
    temp_min = np.repeat(temperature, 15)
    duty = np.clip(0.25 + 0.015 * (temp_min - 20.0), 0.15, 0.6)
    phase = (np.arange(n_min) + rng.integers(0, 40)) % 40
    appliances["Refrigerador"] = np.where(phase < duty * 40.0, config.fridge_w, 5.0)

    # Water pump: every morning, some evenings, 20-40 minutes.
    pump = np.zeros(n_min)
    for rate, window in ((home * 1.0, (6.0, 8.0)), (home * 0.4, (17.0, 20.0))):
        starts = _starts(rng, days.numbers, rate, [window])
        for length in (20, 30, 40):
            chosen = starts[rng.integers(0, 3, starts.size) == (length - 20) // 10]
            _events(n_min, chosen, np.full(length, config.pump_w), pump)
    appliances["Bomba"] = pump

    # Washing machine: 20 min heating, 50 min washing, 10 min spin (about 1 kWh a run),
    # mostly on weekend mornings.
    washer = np.concatenate([np.full(20, 2000.0), np.full(50, 300.0), np.full(10, 500.0)])
    weekly = config.washer_runs_per_week
    rate = np.where(days.kinds != 0, weekly * 0.25, weekly * 0.1) * home
    washer_starts = _starts(
        rng, days.numbers, rate, [(9.0, 13.0), (7.0, 9.0), (18.0, 21.0), (9.0, 13.0)]
    )
    appliances["Lavadora"] = _events(n_min, washer_starts, washer)

    # Iron: 40 minutes at 1 kW.
    iron_rate = np.full(days.count, config.iron_runs_per_week / 7.0) * home
    appliances["Plancha"] = _events(
        n_min, _starts(rng, days.numbers, iron_rate, [(10.0, 21.0)]), np.full(40, 1000.0)
    )

    # Microwave at breakfast, lunch (comida) and dinner; fans above 25 °C while home.
    micro = _events(
        n_min,
        _starts(rng, days.numbers, 2.0 * home, [(7.5, 9.0), (14.0, 15.5), (20.0, 21.5)]),
        np.full(4, 1200.0),
    )
    occupied = np.repeat(np.repeat(home > 0, SLOTS_PER_DAY) & (days.slot_hour >= 12.0), 15)
    fans = np.where(occupied, np.maximum(temp_min - 25.0, 0.0) * config.fan_w_per_degree, 0.0)
    return appliances, micro + fans


def _away_days(dates: list[dt.date], config: HouseholdConfig) -> npt.NDArray[np.bool_]:
    away = np.zeros(len(dates), dtype=bool)
    for i, day in enumerate(dates):
        sunday = easter(day.year)
        if config.away_at_easter and -4 <= (day - sunday).days <= 0:
            away[i] = True
        if config.away_at_christmas and day.month == 12 and 26 <= day.day <= 30:
            away[i] = True
    return away


def _pv_watts(
    start: int, site: Site, kwp: float, *, clearness: FloatArray, temperature: FloatArray
) -> FloatArray:
    """Per-minute PV power from per-slot clear-sky irradiance and clearness."""
    n_slot = clearness.size
    if kwp <= 0.0:
        return np.zeros(n_slot * 15)
    from ledger_core.analytics.solar import clear_sky_poa  # noqa: PLC0415 - pvlib is heavy

    # Plane-of-array clear-sky irradiance at each minute, by interpolating slot midpoints.
    times = start + SLOT * np.arange(n_slot, dtype=np.int64)
    poa = clear_sky_poa(times, site)
    minute_t = start + 60 * np.arange(n_slot * 15) + 30
    mid = times + SLOT // 2
    poa_min = np.interp(minute_t, mid, poa)
    k_min = np.repeat(clearness, 15)
    temp_min = np.repeat(temperature, 15)
    irradiance = poa_min * k_min
    cell = temp_min + irradiance * 0.03
    derate = 0.86 * (1.0 - 0.0037 * (cell - 25.0))
    result: FloatArray = np.maximum(irradiance / 1000.0 * kwp * 1000.0 * derate, 0.0)
    return result
