"""A Mexican household with rooftop PV, as numbers: the model behind the simulator.

Pure and vectorised (numpy): every function of time takes an array of Unix
seconds and returns an array, and any instant can be evaluated on its own
(randomness comes from a counter-based hash of ``(seed, stream, index)``, not
from a generator's history). The simulator samples it once a second; analytics
can ask :meth:`HouseholdModel.profile` for a year at 15-minute resolution in
well under a second.

Parts (all in the household's local time, ``Site.timezone``):

- **PV**: clear sky from pvlib (Ineichen with pvlib's Linke turbidity for the
  site, or Haurwitz with the Erbs split), plane-of-array irradiance (isotropic
  sky), SAPM cell temperature, PVWatts DC with ``losses`` and a PVWatts
  inverter; times a seeded cloud model: each day is clear or cloudy with a
  monthly probability for Morelia's dry (Nov-May) and rainy (Jun-Oct) seasons,
  cloudy days dim the sun by smooth random passages that grow in the afternoon.
- **Base load**: the BDEW H0 standard load profile (German household SLP,
  from demandlib's data file: three seasons x weekday/Saturday/Sunday x 96
  quarter-hours, times the BDEW dynamisation polynomial), with Mexican public
  holidays as Sundays. demandlib's own assembly is not called: under pandas 3
  it fails on deprecation warnings, so the same table and formula are applied
  here with numpy. Scaled so that a calendar year's total consumption (base
  plus appliances) is exactly ``annual_kwh``.
- **Appliances**: a fridge cycling (compressor ``on`` minutes of every
  ``period``), a water pump filling the roof tank (*tinaco*) twice a day, a
  top-loading cold-water washing machine (*lavadora*) with a fill / wash /
  drain / spin / rinse / spin power profile on seeded days, and standby loads.
- **Phases**: 127 V phase-to-neutral, 60 Hz; base load split 45/35/20 % over
  phases 1-3, fridge and standby on 1, washer on 2, pump on 3, the single-phase
  inverter on 1 (so phase 1 exports at noon while 2 and 3 import: per-phase
  and net-across-phases energy differ, as on a real meter).

Edges of every appliance profile fall on whole minutes and the H0 profile is
constant per quarter hour, so means over steps sampled at minute midpoints are
exact for everything but PV (sampled every 10 minutes and interpolated).
"""

from __future__ import annotations

import csv
import functools
import importlib.resources
import math
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Final
from zoneinfo import ZoneInfo

import holidays
import numpy as np
import numpy.typing as npt
import pandas as pd
from pvlib import atmosphere, clearsky, inverter, irradiance, pvsystem, spa, temperature

type Array = npt.NDArray[np.float64]

DAY: Final = 86400
QUARTER: Final = 900
WASHER: Final = "Lavadora"
FRIDGE: Final = "Refrigerador"
PUMP: Final = "Bomba de agua"
STANDBY: Final = "Standby"
APPLIANCES: Final = (WASHER, FRIDGE, PUMP, STANDBY)


@dataclass(frozen=True, slots=True)
class Site:
    """Where the house is."""

    latitude: float = 19.7060
    longitude: float = -101.1950
    altitude: float = 1920.0
    timezone: str = "America/Mexico_City"
    country: str = "MX"  # public holidays count as Sundays in the load profile


MORELIA: Final = Site()


@dataclass(frozen=True, slots=True)
class PvSystem:
    """A grid-tied PV system behind one single-phase inverter."""

    kwp: float = 3.0
    tilt: float = 20.0
    azimuth: float = 180.0  # degrees from north; 180 faces south
    losses: float = 0.14  # PVWatts' default system losses (soiling, wiring, mismatch, ...)
    gamma: float = -0.0037  # DC power temperature coefficient, 1/K
    inverter_efficiency: float = 0.96
    phase: int = 1
    clear_sky: str = "ineichen"  # or "haurwitz"


# A top-loading washer on cold water (Mexican homes rarely heat wash water):
# (minutes, watts) for fill, wash, drain, spin, fill, rinse, drain, final spin.
WASH_CYCLE: Final = (
    (5, 10.0),
    (22, 330.0),
    (3, 90.0),
    (6, 280.0),
    (5, 10.0),
    (12, 300.0),
    (3, 90.0),
    (8, 450.0),
)


@dataclass(frozen=True, slots=True)
class Household:
    """Everything that defines a simulated home; ``seed`` makes it reproducible."""

    seed: int = 1
    site: Site = MORELIA
    annual_kwh: float = 2500.0
    pv: PvSystem | None = field(default_factory=PvSystem)
    cloudiness: float = 1.0  # 0: every day clear; 1: Morelia's climate
    washes_per_week: float = 3.0
    wash_window: tuple[int, int] = (9, 19)  # local hours a scheduled wash may start
    fridge_watts: float = 120.0
    fridge_period_min: int = 48
    fridge_on_min: int = 17
    pump_watts: float = 450.0
    pump_starts: tuple[int, ...] = (7 * 60, 19 * 60)  # local minutes of day
    pump_minutes: int = 20
    standby_watts: float = 30.0
    base_split: tuple[float, float, float] = (0.45, 0.35, 0.20)
    nominal_voltage: float = 127.0
    frequency: float = 60.0

    def __post_init__(self) -> None:
        if self.annual_kwh <= 0:
            raise ValueError("annual_kwh must be positive")
        if not 0 <= self.cloudiness <= 1:
            raise ValueError("cloudiness is between 0 (clear) and 1")
        if not 0 <= self.washes_per_week <= 7:
            raise ValueError("washes_per_week is between 0 and 7")
        if not 0 < self.fridge_on_min < self.fridge_period_min:
            raise ValueError("the fridge runs part of its period")
        if abs(sum(self.base_split) - 1) > 1e-9:
            raise ValueError("base_split must add up to 1")


# Appliance phase and power factor (the PV inverter runs at unity power factor).
PHASE_OF: Final = {WASHER: 2, FRIDGE: 1, PUMP: 3, STANDBY: 1}
POWER_FACTOR: Final = {WASHER: 0.75, FRIDGE: 0.8, PUMP: 0.85, STANDBY: 0.6, "base": 0.95}

# Probability that a day is clear, January to December (Morelia: dry Nov-May,
# afternoon storms Jun-Oct).
CLEAR_DAY: Final = (0.75, 0.8, 0.85, 0.8, 0.65, 0.3, 0.15, 0.15, 0.2, 0.45, 0.65, 0.7)
_CLOUD_PERIODS_MIN: Final = (23.0, 41.0, 67.0, 113.0)

# Streams of the hash so that unrelated draws never share numbers.
_S_CLEAR, _S_CLOUD, _S_PHASE, _S_WASH, _S_WASH_AT, _S_FRIDGE = range(1, 7)
_GOLDEN: Final = np.uint64(0x9E3779B97F4A7C15)


def uniform(seed: int, stream: int, index: npt.ArrayLike) -> Array:
    """Uniform numbers in [0, 1), one per ``index`` (splitmix64 of seed, stream, index)."""
    key = np.uint64((seed * 0x100000001B3 + stream * 0xC2B2AE3D27D4EB4F) % 2**64)
    shape = np.shape(index)
    x = np.atleast_1d(np.asarray(index, dtype=np.int64)).astype(np.uint64) * _GOLDEN + key
    x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    x = x ^ (x >> np.uint64(31))
    result: Array = ((x >> np.uint64(11)).astype(np.float64) * 2.0**-53).reshape(shape)
    return result


# -- local calendar ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class LocalTime:
    """Calendar fields of many instants in one zone."""

    day: npt.NDArray[np.int64]  # local days since 1970-01-01
    second: Array  # seconds since local midnight
    year: npt.NDArray[np.int64]
    month: npt.NDArray[np.int64]  # 1-12
    dom: npt.NDArray[np.int64]  # day of month
    doy: npt.NDArray[np.int64]  # day of year, 1-366
    weekday: npt.NDArray[np.int64]  # Monday 0 ... Sunday 6


@functools.cache
def _zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


def utc_offsets(zone: str, t: Array) -> Array:
    """The zone's UTC offset (seconds) at each instant.

    Offsets are looked up once per half hour of UTC, the granularity of every
    transition in the tz database since 1970.
    """
    info = _zone(zone)
    slots = np.floor(np.asarray(t, dtype=np.float64) / 1800).astype(np.int64)
    if slots.size == 0:
        return np.zeros(np.shape(t))
    low, high = int(slots.min()), int(slots.max())
    if high - low < 4 * slots.size + 1000:
        # Dense (a profile): every half hour of the range, indexed without sorting.
        unique: npt.NDArray[np.int64] = np.arange(low, high + 1, dtype=np.int64)
        inverse = slots - low
    else:
        unique, inverse = np.unique(slots, return_inverse=True)
    offsets = np.array(
        [
            datetime.fromtimestamp(int(s) * 1800, tz=info).utcoffset().total_seconds()  # type: ignore[union-attr]
            for s in unique
        ],
        dtype=np.float64,
    )
    result: Array = offsets[inverse].reshape(np.shape(t))
    return result


def local_time(zone: str, t: Array) -> LocalTime:
    """Local calendar fields of ``t`` (Unix seconds) in ``zone``."""
    local = np.asarray(t, dtype=np.float64) + utc_offsets(zone, t)
    day = np.floor(local / DAY).astype(np.int64)
    dates = day.astype("datetime64[D]")
    years = dates.astype("datetime64[Y]")
    months = dates.astype("datetime64[M]")
    return LocalTime(
        day=day,
        second=local - day * DAY,
        year=years.astype(np.int64) + 1970,
        month=months.astype(np.int64) % 12 + 1,
        dom=(dates - months).astype(np.int64) + 1,
        doy=(dates - years).astype(np.int64) + 1,
        weekday=(day + 3) % 7,
    )


def year_bounds(zone: str, year: int) -> tuple[int, int]:
    """Unix seconds of local midnight on 1 January of ``year`` and of ``year + 1``."""
    info = _zone(zone)
    start = datetime(year, 1, 1, tzinfo=info)
    end = datetime(year + 1, 1, 1, tzinfo=info)
    return int(start.timestamp()), int(end.timestamp())


# -- BDEW H0 -----------------------------------------------------------------------------

_SEASONS: Final = {"winter": 0, "transition": 1, "summer": 2}


@functools.cache
def h0_table() -> npt.NDArray[np.float64]:
    """BDEW H0 from demandlib's data: ``[season, daytype, quarter hour]``.

    Seasons: winter, transition, summer; day types: weekday, Saturday, Sunday.
    """
    table = np.full((3, 3, 96), np.nan)
    resource = importlib.resources.files("demandlib.bdew").joinpath("bdew_data/selp_series.csv")
    with resource.open("r", encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            clock = row[""].split(" ")[1]
            quarter = int(clock[:2]) * 4 + int(clock[3:5]) // 15
            weekday = int(row["weekday"])
            daytype = 0 if weekday <= 5 else weekday - 5
            table[_SEASONS[row["period"]], daytype, quarter] = float(row["h0"])
    assert not np.isnan(table).any(), "demandlib's H0 table is incomplete"
    return table


def bdew_dynamisation(doy: npt.ArrayLike) -> Array:
    """The BDEW polynomial that smooths H0 over the year (``doy`` 1-366)."""
    d = np.asarray(doy, dtype=np.float64)
    result: Array = -3.92e-10 * d**4 + 3.2e-7 * d**3 - 7.02e-5 * d**2 + 2.1e-3 * d + 1.24
    return result


@functools.cache
def _holiday_days(country: str, year: int) -> frozenset[int]:
    epoch = date(1970, 1, 1)
    return frozenset((d - epoch).days for d in holidays.country_holidays(country, years=year))


def h0_weight(site: Site, t: Array, lt: LocalTime | None = None) -> Array:
    """Relative H0 power at each instant (arbitrary units, constant per quarter hour)."""
    lt = lt or local_time(site.timezone, t)
    md = lt.month * 100 + lt.dom
    season = np.where((md >= 1101) | (md <= 320), 0, np.where((md >= 515) & (md <= 914), 2, 1))
    holiday = np.zeros(lt.day.shape, dtype=bool)
    for year in np.unique(lt.year):
        days = np.fromiter(_holiday_days(site.country, int(year)), dtype=np.int64)
        holiday |= np.isin(lt.day, days)
    daytype = np.where((lt.weekday == 6) | holiday, 2, np.where(lt.weekday == 5, 1, 0))
    quarter = np.minimum((lt.second // QUARTER).astype(np.int64), 95)
    weights: Array = h0_table()[season, daytype, quarter] * bdew_dynamisation(lt.doy)
    return weights


# -- the model ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Profile:
    """Mean powers (W) per step from ``start[i]`` to ``start[i] + step``."""

    start: npt.NDArray[np.int64]
    step: int
    pv_w: Array
    load_w: Array
    appliance_w: Mapping[str, Array]
    base_w: Array
    phase_w: Array  # shape (3, n): net per phase, + import
    import_w: Array  # mean of the positive part of the net (balanced) power
    export_w: Array  # mean of the negative part, as a positive number

    @property
    def net_w(self) -> Array:
        """Mean net power (+ import) over each step."""
        result: Array = self.load_w - self.pv_w
        return result

    def energy_wh(self, power_w: Array) -> Array:
        """Wh per step of a mean-power array."""
        result: Array = power_w * (self.step / 3600.0)
        return result


class HouseholdModel:
    """Powers of one :class:`Household` as functions of time."""

    def __init__(self, household: Household | None = None) -> None:
        self.household = household or Household()
        self.zone = self.household.site.timezone
        self.tz = _zone(self.zone)
        cycle = np.array([m for m, _ in WASH_CYCLE], dtype=np.float64) * 60
        self._wash_edges = np.concatenate([[0.0], np.cumsum(cycle)])
        self._wash_watts = np.array([w for _, w in WASH_CYCLE], dtype=np.float64)
        self._base_scale: dict[int, float] = {}

    @property
    def wash_seconds(self) -> float:
        """How long a wash cycle runs."""
        return float(self._wash_edges[-1])

    # -- appliances ---------------------------------------------------------------

    def wash_cycle_power(self, elapsed: Array) -> Array:
        """Washer power ``elapsed`` seconds into a cycle (0 outside the cycle)."""
        x = np.asarray(elapsed, dtype=np.float64)
        index = np.searchsorted(self._wash_edges, x, side="right") - 1
        inside = (x >= 0) & (x < self._wash_edges[-1])
        result: Array = np.where(
            inside, self._wash_watts[np.clip(index, 0, len(self._wash_watts) - 1)], 0.0
        )
        return result

    def wash_start(self, day: npt.NDArray[np.int64]) -> Array:
        """Local second of day at which a scheduled wash starts on each local day, or NaN."""
        h = self.household
        washes = uniform(h.seed, _S_WASH, day) < h.washes_per_week / 7
        low, high = h.wash_window
        minute = np.floor(uniform(h.seed, _S_WASH_AT, day) * (high - low) * 60) + low * 60
        result: Array = np.where(washes, minute * 60, np.nan)
        return result

    def appliance_power(self, name: str, t: Array, lt: LocalTime | None = None) -> Array:
        """The automatic (scheduled) power of one appliance at each instant."""
        h = self.household
        t = np.asarray(t, dtype=np.float64)
        if name == STANDBY:
            return np.full(t.shape, h.standby_watts)
        if name == FRIDGE:
            period = h.fridge_period_min * 60
            phase = float(uniform(h.seed, _S_FRIDGE, [0])[0]) * period
            on = np.mod(np.floor(t) + phase, period) < h.fridge_on_min * 60
            return np.where(on, h.fridge_watts, 0.0)
        lt = lt or local_time(self.zone, t)
        if name == PUMP:
            running = np.zeros(t.shape, dtype=bool)
            for minute in h.pump_starts:
                since = lt.second - minute * 60
                running |= (since >= 0) & (since < h.pump_minutes * 60)
            return np.where(running, h.pump_watts, 0.0)
        if name == WASHER:
            start = self.wash_start(lt.day)
            elapsed = np.where(np.isnan(start), -1.0, lt.second - np.nan_to_num(start))
            return self.wash_cycle_power(elapsed)
        raise KeyError(name)

    # -- base load ------------------------------------------------------------------

    def base_scale(self, year: int) -> float:
        """W per unit of H0 weight so that ``year``'s total is ``annual_kwh``."""
        if year not in self._base_scale:
            start, end = year_bounds(self.zone, year)
            quarters = np.arange(start, end, QUARTER, dtype=np.float64) + QUARTER / 2
            weight_wh = float(h0_weight(self.household.site, quarters).sum()) * QUARTER / 3600
            minutes = np.arange(start, end, 60, dtype=np.float64) + 30
            lt = local_time(self.zone, minutes)
            appliance_wh = sum(
                float(self.appliance_power(name, minutes, lt).sum()) / 60 for name in APPLIANCES
            )
            base_wh = self.household.annual_kwh * 1000 - appliance_wh
            if base_wh <= 0:
                raise ValueError(
                    f"the appliances alone use {appliance_wh / 1000:.0f} kWh in {year}, "
                    f"more than annual_kwh = {self.household.annual_kwh:g}"
                )
            self._base_scale[year] = base_wh / weight_wh
        return self._base_scale[year]

    def base_power(self, t: Array, lt: LocalTime | None = None) -> Array:
        """The H0 base load (W) at each instant."""
        t = np.asarray(t, dtype=np.float64)
        lt = lt or local_time(self.zone, t)
        scale = np.zeros(t.shape)
        for year in np.unique(lt.year):
            scale[lt.year == year] = self.base_scale(int(year))
        result: Array = h0_weight(self.household.site, t, lt) * scale
        return result

    # -- PV -------------------------------------------------------------------------------

    def clear_sky_power(self, t: Array) -> Array:
        """PV AC power (W) under a clear sky at each instant."""
        pv = self.household.pv
        if pv is None:
            return np.zeros(np.shape(t))
        site = self.household.site
        t = np.asarray(t, dtype=np.float64)
        utc_fields = local_time("UTC", t)
        doy = utc_fields.doy + utc_fields.second / DAY
        pressure = float(atmosphere.alt2pres(site.altitude))
        with np.errstate(all="ignore"):
            app_zenith, zenith, _, _, azimuth, _ = spa.solar_position_numpy(
                t, site.latitude, site.longitude, site.altitude, pressure / 100, 18.0, 69.0,
                0.5667, None,
            )  # fmt: skip
            dni_extra = np.asarray(irradiance.get_extra_radiation(doy), dtype=np.float64)
            if pv.clear_sky == "haurwitz":
                sky = clearsky.haurwitz(pd.Series(app_zenith))  # wants a Series
                ghi = np.asarray(sky["ghi"], dtype=np.float64)
                split = irradiance.erbs(ghi, zenith, doy)
                dni = np.asarray(split["dni"], dtype=np.float64)
                dhi = np.asarray(split["dhi"], dtype=np.float64)
            else:
                relative = atmosphere.get_relative_airmass(app_zenith)
                absolute = atmosphere.get_absolute_airmass(relative, pressure)
                linke = np.interp(doy, *_linke_by_day(site.latitude, site.longitude))
                sky = clearsky.ineichen(app_zenith, absolute, linke, site.altitude, dni_extra)
                ghi, dni, dhi = (
                    np.asarray(sky[k], dtype=np.float64) for k in ("ghi", "dni", "dhi")
                )
            poa = irradiance.get_total_irradiance(
                pv.tilt, pv.azimuth, zenith, azimuth, dni, ghi, dhi, dni_extra=dni_extra
            )
            poa_global = np.nan_to_num(np.asarray(poa["poa_global"], dtype=np.float64))
            cell = temperature.sapm_cell(
                poa_global, self.air_temperature(t), 1.0, -2.98, -0.0471, 1.0
            )
            dc = pvsystem.pvwatts_dc(poa_global, cell, pv.kwp * 1000, pv.gamma) * (1 - pv.losses)
            ac = inverter.pvwatts(
                dc, pv.kwp * 1000 / pv.inverter_efficiency, pv.inverter_efficiency
            )
        result: Array = np.clip(np.nan_to_num(np.asarray(ac, dtype=np.float64)), 0.0, None)
        return result

    def air_temperature(self, t: Array) -> Array:
        """Air temperature (deg C): Morelia's mean, warmest in May and at 15:00."""
        lt = local_time(self.zone, t)
        seasonal = 3.0 * np.cos(2 * np.pi * (lt.doy - 135) / 365.25)
        daily = 6.0 * np.cos(2 * np.pi * (lt.second / 3600 - 15) / 24)
        result: Array = 18.0 + seasonal + daily
        return result

    def cloud_factor(self, t: Array, lt: LocalTime | None = None) -> Array:
        """Fraction of the clear-sky PV power that gets through the clouds (0.1-1)."""
        h = self.household
        t = np.asarray(t, dtype=np.float64)
        if h.cloudiness == 0:
            return np.ones(t.shape)
        lt = lt or local_time(self.zone, t)
        clear = uniform(h.seed, _S_CLEAR, lt.day) < np.take(CLEAR_DAY, lt.month - 1)
        depth = np.where(clear, 0.0, 0.4 + 0.5 * uniform(h.seed, _S_CLOUD, lt.day))
        passing = np.zeros(t.shape)
        for k, period in enumerate(_CLOUD_PERIODS_MIN):
            phase = 2 * np.pi * uniform(h.seed, _S_PHASE * 16 + k, lt.day)
            passing += np.sin(2 * np.pi * t / (period * 60) + phase) / (k + 1)
        norm = sum(1 / (k + 1) for k in range(len(_CLOUD_PERIODS_MIN)))
        shade = np.clip(0.5 + 0.5 * passing / norm * 1.6, 0.0, 1.0)
        afternoon = 0.6 + 0.4 / (1 + np.exp(-(lt.second / 3600 - 14.0)))
        result: Array = 1 - h.cloudiness * depth * (0.35 + 0.65 * shade) * afternoon
        return result

    def pv_power(self, t: Array, lt: LocalTime | None = None) -> Array:
        """PV AC power (W) with clouds."""
        result: Array = self.clear_sky_power(t) * self.cloud_factor(t, lt)
        return result

    # -- whole house ------------------------------------------------------------------

    def powers(self, t: Array) -> tuple[Array, Array, dict[str, Array]]:
        """``(pv, base, appliances)`` powers in W at each instant (PV computed exactly)."""
        t = np.asarray(t, dtype=np.float64)
        lt = local_time(self.zone, t)
        appliances = {name: self.appliance_power(name, t, lt) for name in APPLIANCES}
        return self.pv_power(t, lt), self.base_power(t, lt), appliances

    def phase_powers(self, pv: Array, base: Array, appliances: Mapping[str, Array]) -> Array:
        """Net active power per phase (shape ``(3, ...)``), + import."""
        h = self.household
        phases = np.stack([base * share for share in h.base_split])
        for name, power in appliances.items():
            phases[PHASE_OF[name] - 1] += power
        if h.pv is not None:
            phases[h.pv.phase - 1] -= pv
        return phases

    def profile(self, start: float, end: float, step: int = QUARTER) -> Profile:
        """Mean powers per ``step`` seconds from ``start`` to ``end``.

        Loads are sampled at the middle of every minute (exact: their edges fall
        on minutes), PV every 10 minutes and interpolated. A year at 15-minute
        steps takes a fraction of a second.
        """
        if step < 60 or step % 60:
            raise ValueError("step is a whole number of minutes")
        first = int(start)
        count = int((end - first) // step)
        if count <= 0:
            raise ValueError("end must be at least one step after start")
        per_step = step // 60
        minutes = first + 30.0 + 60.0 * np.arange(count * per_step, dtype=np.float64)
        lt = local_time(self.zone, minutes)
        coarse = np.arange(first, first + count * step + 600, 600, dtype=np.float64)
        pv = np.interp(minutes, coarse, self.pv_power(coarse))
        base = self.base_power(minutes, lt)
        appliances = {name: self.appliance_power(name, minutes, lt) for name in APPLIANCES}
        phases = self.phase_powers(pv, base, appliances)
        net = phases.sum(axis=0)

        def mean(values: Array) -> Array:
            result: Array = values.reshape(*values.shape[:-1], count, per_step).mean(axis=-1)
            return result

        load = base + sum(appliances.values(), np.zeros_like(base))
        return Profile(
            start=first + step * np.arange(count, dtype=np.int64),
            step=step,
            pv_w=mean(pv),
            load_w=mean(load),
            appliance_w={name: mean(power) for name, power in appliances.items()},
            base_w=mean(base),
            phase_w=mean(phases),
            import_w=mean(np.maximum(net, 0.0)),
            export_w=mean(np.maximum(-net, 0.0)),
        )

    def solar_noon(self, day: date) -> float:
        """Unix seconds of solar noon on a local ``day`` (highest sun)."""
        midnight = datetime(day.year, day.month, day.day, tzinfo=self.tz).timestamp()
        t = midnight + np.arange(0, DAY, 60, dtype=np.float64)
        site = self.household.site
        _, zenith, _, _, _, _ = spa.solar_position_numpy(
            t, site.latitude, site.longitude, site.altitude, 1013.25, 18.0, 69.0, 0.5667, None
        )
        return float(t[int(np.argmin(zenith))])


@functools.cache
def _linke_by_day(latitude: float, longitude: float) -> tuple[Array, Array]:
    """pvlib's monthly Linke turbidity at the site, as (day of year, value) for interpolation."""
    months = pd.DatetimeIndex([datetime(2001, m, 15, tzinfo=UTC) for m in range(1, 13)])
    with warnings.catch_warnings():
        # pvlib 0.16 calls pandas APIs that pandas 3 deprecates.
        warnings.simplefilter("ignore", DeprecationWarning)
        monthly = np.asarray(
            clearsky.lookup_linke_turbidity(months, latitude, longitude, interp_turbidity=False),
            dtype=np.float64,
        )
    days = np.array([15 + 30.4375 * m for m in range(12)])
    # Wrap December and January around the year's ends.
    return (
        np.concatenate([[days[-1] - 365.25], days, [days[0] + 365.25]]),
        np.concatenate([[monthly[-1]], monthly, [monthly[0]]]),
    )


def phase_reactive(
    base: Array | float, appliances: Mapping[str, Array | float], split: tuple[float, ...]
) -> Array:
    """Reactive power per phase (var) of the loads (PV runs at unity power factor)."""
    base_arr = np.asarray(base, dtype=np.float64)
    tan_base = math.tan(math.acos(POWER_FACTOR["base"]))
    q = np.stack([base_arr * share * tan_base for share in split])
    for name, power in appliances.items():
        q[PHASE_OF[name] - 1] += np.asarray(power) * math.tan(math.acos(POWER_FACTOR[name]))
    return q
