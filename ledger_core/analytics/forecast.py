"""Forecasts of a home's consumption and PV production, 15 minutes apart, with bands.

Both models are fitted on the home's own 15-minute history (a dense grid with
NaN where nothing was measured) and forecast up to 48 hours (192 intervals)
from an origin, the first interval not yet measured. Every forecast interval
carries a mean, a median (the point forecast) and a 10 %-90 % band.

Consumption -- a ridge regression solved through its normal equations, which
are built from counts and per-group sums (``bincount``) without materialising
the design matrix:

- one-hot hour of day x day type (weekday, Saturday, Sunday or Mexican public
  holiday from ``holidays.Mexico``), 72 columns, and quarter-hour x day type,
  288 columns penalised harder;
- same-quarter-hour lags, raw and smoothed: ``d`` days before, a week before,
  the mean over days ``d`` to ``d + 6``, over the last four same weekdays, and
  the latest and mean of the last four days of the target's day type (a lag
  that falls on another day type is replaced by one of the right type, so a
  holiday is forecast from Sundays); the mean level of the seven days before
  day ``d`` and its weekly change. ``d`` is 1 for targets up to 24 h ahead and
  2 up to 48 h ahead, so only data known at the origin is used (two fits);
- when temperatures are given: degrees above 24 °C and below 16 °C.

Rows are weighted by recency (half-life 90 days) and the fit is made robust by
two Huber reweighting passes. The last hour's residual is carried forward with
a coefficient per step (1-192), estimated by regressing later residuals on it
over the history, so a busy evening raises the next few hours. The band comes
from empirical quantiles (10, 50, 90 %) of the residuals left after that
correction, per horizon bucket (0-1 h, 1-6 h, 6-24 h, 24-48 h) and hour of
day; the median residual moves the point forecast to the conditional median,
which is what minimises absolute error on spiky household load.

Production -- ``pvlib`` clear-sky irradiance on the array (``solar.py``)
times an effective size (kWp x 0.86 system losses), times a clearness index.
The size is configured or learned as the 90th percentile of daily ratios of
measured energy to clear-sky energy per kWp. The clearness index's quantiles
and mean per hour of day over the last 60 days give the forecast and its band,
shifted by the last hour's and last day's clearness anomaly as far as the
history shows such anomalies persist; at night the forecast is exactly zero.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final

import numpy as np

from ledger_core.analytics.localtime import (
    SLOT,
    SLOTS_PER_DAY,
    FloatArray,
    IntArray,
    Site,
    day_types,
    local_times,
    whole,
)
from ledger_core.analytics.solar import clear_sky_poa
from ledger_core.analytics.store import Series

MAX_STEPS: Final = 192  # 48 hours
MIN_DAYS: Final = 14
QUANTILES: Final = (0.1, 0.5, 0.9)
BUCKETS: Final = ((1, 4), (5, 24), (25, 96), (97, 192))
SYSTEM_DERATE: Final = 0.86
PV_WINDOW_DAYS: Final = 60
PV_PERSISTENCE_DAYS: Final = 60
PV_MIN_POA: Final = 50.0  # W/m2: below this the clearness ratio is noise
DEFAULT_CLEARNESS: Final = (0.7, 0.25, 0.8, 0.95)  # mean, p10, p50, p90 without history
COOLING_BASE: Final = 24.0
HEATING_BASE: Final = 16.0
RIDGE: Final = 1.0
CARRY_WINDOW: Final = 4  # intervals of residual carried forward


class NotEnoughData(ValueError):  # noqa: N818 - reads as a sentence at the raise site
    """The history is too short or too sparse to fit a model."""


@dataclass(frozen=True, slots=True)
class Band:
    """A forecast per interval (Wh): mean, median (the point) and a 10 %-90 % band."""

    mean: FloatArray
    p10: FloatArray
    p50: FloatArray
    p90: FloatArray

    @staticmethod
    def zeros(n: int) -> Band:
        zero = np.zeros(n)
        return Band(zero, zero, zero, zero)


@dataclass(frozen=True, slots=True)
class Forecast:
    """Consumption and production forecasts for intervals starting at ``start``."""

    start: IntArray
    consumption: Band
    production: Band

    def rows(self) -> list[dict[str, int]]:
        """One JSON-ready row per interval, whole Wh; ``*_wh`` is the median."""
        c, p = self.consumption, self.production
        columns = {
            "consumption_wh": c.p50,
            "consumption_p10": c.p10,
            "consumption_p90": c.p90,
            "consumption_mean": c.mean,
            "production_wh": p.p50,
            "production_p10": p.p10,
            "production_p90": p.p90,
            "production_mean": p.mean,
        }
        rounded = {k: whole(v) for k, v in columns.items()}
        starts = whole(self.start)
        return [{"start": t} | {k: v[i] for k, v in rounded.items()} for i, t in enumerate(starts)]


# -- helpers on the 15-minute grid -----------------------------------------------------


def _shift(values: FloatArray, k: int) -> FloatArray:
    """``out[i] = values[i - k]`` (NaN before the start)."""
    out = np.full(values.size, np.nan)
    if k < values.size:
        out[k:] = values[: values.size - k]
    return out


def _window_mean(values: FloatArray, before: int, after: int) -> FloatArray:
    """Mean of ``values[i - before : i + after + 1]``, NaN ignored (NaN if all are)."""
    n = values.size
    valid = ~np.isnan(values)
    sums = np.concatenate([[0.0], np.cumsum(np.where(valid, values, 0.0))])
    counts = np.concatenate([[0], np.cumsum(valid)])
    index = np.arange(n)
    low = np.clip(index - before, 0, n)
    high = np.clip(index + after + 1, 0, n)
    total, count = sums[high] - sums[low], counts[high] - counts[low]
    with np.errstate(invalid="ignore", divide="ignore"):
        result: FloatArray = np.where(count > 0, total / np.maximum(count, 1), np.nan)
    return result


def _fill(values: FloatArray, fallback: FloatArray) -> FloatArray:
    result: FloatArray = np.where(np.isnan(values), fallback, values)
    return result


def _nanmean(arrays: list[FloatArray]) -> FloatArray:
    """Element-wise mean ignoring NaN (NaN where every array is NaN), without warnings."""
    stack = np.stack(arrays)
    valid = ~np.isnan(stack)
    count = valid.sum(axis=0)
    total = np.where(valid, stack, 0.0).sum(axis=0)
    result: FloatArray = np.where(count > 0, total / np.maximum(count, 1), np.nan)
    return result


def _calendar(t: IntArray, site: Site) -> tuple[IntArray, IntArray]:
    """Local hour of day (0-23) and day type (0-2) of each interval."""
    local = local_times(t, site.timezone)
    hours: IntArray = (local % 86_400) // 3600
    return hours, day_types(local // 86_400, site)


def _lagged_kinds(kinds: IntArray, shift: int) -> IntArray:
    """``out[i] = kinds[i - shift]`` (-1 before the start)."""
    out = np.full(kinds.size, -1, dtype=np.int64)
    if shift < kinds.size:
        out[shift:] = kinds[: kinds.size - shift]
    return out


def _same_type(values: FloatArray, kinds: IntArray, lag_days: int, count: int) -> FloatArray:
    """Mean of ``values`` at the same quarter-hour on the ``count`` most recent earlier
    days of the target's day type, at least ``lag_days`` back (up to five weeks)."""
    total = np.zeros(values.size)
    found = np.zeros(values.size, dtype=np.int64)
    for days in range(lag_days, 36):
        shift = days * SLOTS_PER_DAY
        lagged = _shift(values, shift)
        use = (found < count) & (_lagged_kinds(kinds, shift) == kinds) & ~np.isnan(lagged)
        total[use] += lagged[use]
        found[use] += 1
    result: FloatArray = np.where(found > 0, total / np.maximum(found, 1), np.nan)
    return result


def _matching(values: FloatArray, kinds: IntArray, days: int, fallback: FloatArray) -> FloatArray:
    """``values`` ``days`` back where that day was of the same type, else ``fallback``."""
    shift = days * SLOTS_PER_DAY
    lagged = _shift(values, shift)
    same = _lagged_kinds(kinds, shift) == kinds
    result: FloatArray = np.where(same & ~np.isnan(lagged), lagged, fallback)
    return result


def _features(
    y: FloatArray, kinds: IntArray, lag_days: int, temperature: FloatArray | None
) -> FloatArray:
    """The continuous regressors for every index of ``y`` (NaN-filled where unknown).

    Same-quarter-hour lags come raw and slot-smoothed: raw ones carry a regular
    home's exact shape, smoothed ones are steadier for a spiky home; the
    regression weighs them. A lag taken from a day of another type (a holiday
    a week ago, a Monday before a holiday) is replaced by the most recent day
    of the target's own type, so a holiday is forecast from Sundays.
    """
    per_day = SLOTS_PER_DAY
    smooth1 = _window_mean(y, 1, 1)
    smooth2 = _window_mean(y, 2, 2)
    level = _shift(_window_mean(y, 7 * per_day - 1, 0), lag_days * per_day)
    days = range(lag_days, lag_days + 7)
    recent = _fill(_nanmean([_shift(smooth2, j * per_day) for j in days]), level)
    recent_raw = _fill(_nanmean([_shift(y, j * per_day) for j in days]), recent)
    type_mean = _fill(_same_type(smooth1, kinds, lag_days, 4), recent)
    type_mean_raw = _fill(_same_type(y, kinds, lag_days, 4), type_mean)
    type_last = _fill(_same_type(smooth1, kinds, lag_days, 1), type_mean)
    type_last_raw = _fill(_same_type(y, kinds, lag_days, 1), type_last)
    weekly = _nanmean(
        [_matching(smooth1, kinds, 7 * w, np.full(y.size, np.nan)) for w in range(1, 5)]
    )
    weekly = _fill(weekly, type_mean)
    weekly_raw = _nanmean(
        [_matching(y, kinds, 7 * w, np.full(y.size, np.nan)) for w in range(1, 5)]
    )
    weekly_raw = _fill(weekly_raw, weekly)
    columns = [
        _matching(smooth1, kinds, lag_days, type_last),
        _matching(y, kinds, lag_days, type_last_raw),
        _matching(smooth1, kinds, 7, weekly),
        _matching(y, kinds, 7, weekly_raw),
        recent,
        recent_raw,
        weekly,
        weekly_raw,
        type_mean,
        type_mean_raw,
        type_last,
        type_last_raw,
        level,
        level - _fill(_shift(level, 7 * per_day), level),
    ]
    if temperature is not None:
        columns.append(np.maximum(temperature - COOLING_BASE, 0.0))
        columns.append(np.maximum(HEATING_BASE - temperature, 0.0))
    return np.stack(columns, axis=1)


# -- consumption ------------------------------------------------------------------------

HOUR_GROUPS: Final = 24 * 3  # hour of day x day type
SLOT_GROUPS: Final = SLOTS_PER_DAY * 3  # quarter-hour x day type
SLOT_RIDGE: Final = 20.0  # a quarter-hour's own offset needs about this many days to count
HALF_LIFE_DAYS: Final = 90.0  # the weight of a training day halves every 90 days back
ROBUST_PASSES: Final = 2  # reweighting passes (Huber) after the least-squares fit


@dataclass(frozen=True, slots=True)
class _Groups:
    """Each interval's hour x day type and quarter-hour x day type."""

    hour: IntArray
    slot: IntArray

    @staticmethod
    def of(t: IntArray, site: Site) -> _Groups:
        local = local_times(t, site.timezone)
        kinds = day_types(local // 86_400, site)
        return _Groups(
            (local % 86_400) // 3600 + 24 * kinds,
            (local % 86_400) // SLOT + SLOTS_PER_DAY * kinds,
        )


@dataclass(frozen=True, slots=True)
class _Ridge:
    """One fitted regression (for one minimum lag in days)."""

    lag_days: int
    intercept: float
    hour_coef: FloatArray  # 72
    slot_coef: FloatArray  # 288, shrunk towards zero harder
    coef: FloatArray
    mean: FloatArray
    scale: FloatArray

    def predict(self, groups: _Groups, features: FloatArray) -> FloatArray:
        standard = (features - self.mean) / self.scale
        standard = np.where(np.isnan(standard), 0.0, standard)
        result: FloatArray = (
            self.intercept
            + self.hour_coef[groups.hour]
            + self.slot_coef[groups.slot]
            + standard @ self.coef
        )
        return result


def _fit_ridge(
    y: FloatArray,
    groups: _Groups,
    features: FloatArray,
    lag_days: int,
    robust: FloatArray | None = None,
) -> _Ridge:
    """Ridge regression on two nested one-hot codings and the features.

    The normal equations are assembled from counts and per-group sums
    (``bincount``), never from a dense design matrix.
    """
    rows = ~np.isnan(y) & ~np.isnan(features).any(axis=1)
    if rows.sum() < 7 * SLOTS_PER_DAY:
        raise NotEnoughData("fewer than 7 days of complete rows to fit the consumption model")
    yr, hr, sr, xr = y[rows], groups.hour[rows], groups.slot[rows], features[rows]
    age_days = (y.size - 1 - np.flatnonzero(rows)) / SLOTS_PER_DAY
    w = np.power(0.5, age_days / HALF_LIFE_DAYS)
    if robust is not None:
        w = w * robust[rows]
    mean = np.average(xr, axis=0, weights=w)
    scale = np.sqrt(np.average((xr - mean) ** 2, axis=0, weights=w))
    scale = np.where(scale > 1e-9, scale, 1.0)
    xs = (xr - mean) / scale
    xw = xs * w[:, None]
    h, g, m = HOUR_GROUPS, SLOT_GROUPS, xs.shape[1]
    size = h + g + m
    normal = np.zeros((size, size))
    target = np.zeros(size)
    hour_counts = np.bincount(hr, weights=w, minlength=h)
    slot_counts = np.bincount(sr, weights=w, minlength=g)
    normal[np.arange(h), np.arange(h)] = hour_counts + RIDGE
    normal[h + np.arange(g), h + np.arange(g)] = slot_counts + SLOT_RIDGE
    # Every quarter-hour group lies in exactly one hour group.
    slot_ids = np.arange(g)
    hour_of_slot = (slot_ids % SLOTS_PER_DAY) // 4 + 24 * (slot_ids // SLOTS_PER_DAY)
    normal[hour_of_slot, h + slot_ids] = slot_counts
    normal[h + slot_ids, hour_of_slot] = slot_counts
    for j in range(m):
        by_hour = np.bincount(hr, weights=xw[:, j], minlength=h)
        by_slot = np.bincount(sr, weights=xw[:, j], minlength=g)
        normal[:h, h + g + j] = normal[h + g + j, :h] = by_hour
        normal[h : h + g, h + g + j] = normal[h + g + j, h : h + g] = by_slot
    normal[h + g :, h + g :] = xw.T @ xs + RIDGE * np.eye(m)
    # The level is not penalised: the groups and features explain deviations from it.
    intercept = float(np.average(yr, weights=w))
    centred = yr - intercept
    target[:h] = np.bincount(hr, weights=centred * w, minlength=h)
    target[h : h + g] = np.bincount(sr, weights=centred * w, minlength=g)
    target[h + g :] = xw.T @ centred
    solution = np.linalg.solve(normal, target)
    return _Ridge(
        lag_days, intercept, solution[:h], solution[h : h + g], solution[h + g :], mean, scale
    )


@dataclass(frozen=True, slots=True)
class ConsumptionModel:
    """A fitted consumption model (see the module docstring)."""

    site: Site
    models: tuple[_Ridge, _Ridge]  # minimum lag 1 day, 2 days
    carry: FloatArray  # residual carry-forward coefficient per step 1..192
    quantiles: FloatArray  # [bucket, hour, q10/q50/q90]
    uses_temperature: bool
    temperature_by_slot: FloatArray  # mean temperature per local quarter-hour (fallback)
    fitted_days: float

    @staticmethod
    def fit(history: Series, site: Site, use_temperature: bool = True) -> ConsumptionModel:
        """Fit on a dense 15-minute history (``Series``); raises :class:`NotEnoughData`."""
        y = history.consumption
        days = float(np.sum(~np.isnan(y))) / SLOTS_PER_DAY
        if days < MIN_DAYS:
            raise NotEnoughData(
                f"{days:.1f} days of consumption data; the model needs at least {MIN_DAYS}"
            )
        groups = _Groups.of(history.t, site)
        hours = groups.hour % 24
        temperature = history.temperature
        with_temperature = use_temperature and bool(np.mean(~np.isnan(temperature)) >= 0.8)
        slot = (local_times(history.t, site.timezone) % 86_400) // SLOT
        by_slot = _slot_means(temperature, slot)
        temps = _fill(temperature, by_slot[slot]) if with_temperature else None
        floor = 0.01 * float(np.nanmean(np.abs(y)))
        models, residuals = [], []
        for d in (1, 2):
            features = _features(y, groups.hour // 24, d, temps)
            model = _fit_ridge(y, groups, features, d)
            for _ in range(ROBUST_PASSES):
                weights = _huber(y - model.predict(groups, features), floor)
                model = _fit_ridge(y, groups, features, d, weights)
            models.append(model)
            residuals.append(y - model.predict(groups, features))
        carry, quantiles = _residual_structure(residuals[0], residuals[1], hours)
        return ConsumptionModel(
            site, (models[0], models[1]), carry, quantiles, with_temperature, by_slot, days
        )

    def forecast(
        self,
        history: Series,
        origin: int,
        steps: int,
        temperature: FloatArray | None = None,
    ) -> Band:
        """``steps`` intervals from ``origin``; ``history`` ends at ``origin``.

        ``temperature`` (°C per forecast interval, NaN allowed) is used when the
        model was fitted with temperature; missing values fall back to the mean
        of the history's last seven days at that quarter-hour.
        """
        _check_origin(history, origin, steps)
        n = history.t.size
        t = np.concatenate([history.t, origin + SLOT * np.arange(steps, dtype=np.int64)])
        y = np.concatenate([history.consumption, np.full(steps, np.nan)])
        groups = _Groups.of(t, self.site)
        hours = groups.hour % 24
        temps = None
        if self.uses_temperature:
            slot = (local_times(t, self.site.timezone) % 86_400) // SLOT
            recent = history.temperature[-7 * SLOTS_PER_DAY :]
            recent_by_slot = _slot_means(recent, slot[max(0, n - recent.size) : n])
            fallback = _fill(recent_by_slot, self.temperature_by_slot)
            future = np.full(steps, np.nan) if temperature is None else temperature
            temps = _fill(np.concatenate([history.temperature, future]), fallback[slot])
        mean: FloatArray = np.empty(steps)
        recent_residual: FloatArray = np.full(CARRY_WINDOW, np.nan)
        for model in self.models:
            kinds = groups.hour // 24
            predicted = model.predict(groups, _features(y, kinds, model.lag_days, temps))
            first = (model.lag_days - 1) * SLOTS_PER_DAY
            last = min(steps, model.lag_days * SLOTS_PER_DAY)
            if first < last:
                mean[first:last] = predicted[n + first : n + last]
            if model.lag_days == 1:
                recent_residual = (history.consumption - predicted[:n])[-CARRY_WINDOW:]
        carried = float(np.nanmean(recent_residual)) if np.any(~np.isnan(recent_residual)) else 0.0
        mean = mean + self.carry[:steps] * carried
        return _band(mean, self.quantiles, hours[n:], steps)


def _huber(residuals: FloatArray, floor: float) -> FloatArray:
    """Huber weights: 1 within 1.345 robust standard deviations, falling off beyond.

    The spread is at least ``floor``, so an almost perfect fit does not turn
    every residual into an outlier.
    """
    ok = ~np.isnan(residuals)
    if not ok.any():
        return np.ones(residuals.size)
    center = float(np.median(residuals[ok]))
    spread = 1.4826 * float(np.median(np.abs(residuals[ok] - center)))
    limit = 1.345 * max(spread, floor, 1e-6)
    size = np.abs(np.where(ok, residuals - center, 0.0))
    result: FloatArray = np.where(size > limit, limit / np.maximum(size, 1e-12), 1.0)
    return result


def _slot_means(values: FloatArray, slot: IntArray) -> FloatArray:
    """Mean of ``values`` per quarter-hour of the day (96), overall mean where empty."""
    valid = ~np.isnan(values)
    sums = np.bincount(slot[valid], weights=values[valid], minlength=SLOTS_PER_DAY)
    counts = np.bincount(slot[valid], minlength=SLOTS_PER_DAY)
    overall = float(values[valid].mean()) if valid.any() else 20.0
    result: FloatArray = np.where(counts > 0, sums / np.maximum(counts, 1), overall)
    return result


def _residual_structure(
    first: FloatArray, second: FloatArray, hours: IntArray
) -> tuple[FloatArray, FloatArray]:
    """Carry-forward coefficients per step and residual quantiles per bucket and hour."""
    n = first.size
    recent = _shift(_window_mean(first, CARRY_WINDOW - 1, 0), 1)  # mean of e[i-4 : i]
    recent0 = np.where(np.isnan(recent), 0.0, recent)
    squares = recent0 * recent0
    filled = [np.where(np.isnan(e), 0.0, e) for e in (first, second)]
    valid = [(~np.isnan(e)).astype(np.float64) for e in (first, second)]
    carry = np.zeros(MAX_STEPS)
    for h in range(1, MAX_STEPS + 1):
        which = 0 if h <= SLOTS_PER_DAY else 1
        numerator = float(np.dot(filled[which][h - 1 :], recent0[: n - h + 1]))
        denominator = float(np.dot(valid[which][h - 1 :], squares[: n - h + 1]))
        if denominator > 0:
            carry[h - 1] = min(1.0, max(-1.0, numerator / denominator))
    quantiles = np.zeros((len(BUCKETS), 24, len(QUANTILES)))
    for b, (low, high) in enumerate(BUCKETS):
        samples, sample_hours = [], []
        for h in sorted({low, (low + high) // 2, high}):
            later = (first if h <= SLOTS_PER_DAY else second)[h - 1 :]
            left = later - carry[h - 1] * recent0[: n - h + 1]
            ok = ~np.isnan(left)
            samples.append(left[ok])
            sample_hours.append(hours[h - 1 :][ok])
        quantiles[b] = grouped_quantiles(np.concatenate(samples), np.concatenate(sample_hours), 24)
    return carry, quantiles


def grouped_quantiles(
    values: FloatArray, groups: IntArray, n_groups: int, minimum: int = 30
) -> FloatArray:
    """Quantiles (10, 50, 90 %) of ``values`` per group, with one sort.

    Groups with fewer than ``minimum`` values get the quantiles of all values.
    Linear interpolation between order statistics, as ``numpy.quantile``.
    """
    result = np.zeros((n_groups, len(QUANTILES)))
    if values.size == 0:
        return result
    by_value = np.argsort(values)
    order = by_value[np.argsort(groups[by_value], kind="stable")]
    ordered, ordered_groups = values[order], groups[order]
    counts = np.bincount(ordered_groups, minlength=n_groups)
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    pooled = np.quantile(values, QUANTILES)
    for j, q in enumerate(QUANTILES):
        position = starts + q * np.maximum(counts - 1, 0)
        below = np.floor(position).astype(np.int64)
        above = np.minimum(below + 1, starts + np.maximum(counts - 1, 0))
        fraction = position - below
        below_c = np.clip(below, 0, values.size - 1)
        above_c = np.clip(above, 0, values.size - 1)
        value = ordered[below_c] * (1.0 - fraction) + ordered[above_c] * fraction
        result[:, j] = np.where(counts >= minimum, value, pooled[j])
    return result


def _band(mean: FloatArray, quantiles: FloatArray, hours: IntArray, steps: int) -> Band:
    bucket = np.zeros(steps, dtype=np.int64)
    step = np.arange(1, steps + 1)
    for b, (low, _high) in enumerate(BUCKETS):
        bucket[step >= low] = b
    q = quantiles[bucket, hours]
    mean = np.maximum(mean, 0.0)
    p10 = np.maximum(mean + q[:, 0], 0.0)
    p50 = np.maximum(mean + q[:, 1], p10)
    p90 = np.maximum(mean + q[:, 2], p50)
    return Band(mean, p10, p50, p90)


def _check_origin(history: Series, origin: int, steps: int) -> None:
    if origin % SLOT:
        raise ValueError("origin: must be a multiple of 900 seconds")
    if not 1 <= steps <= MAX_STEPS:
        raise ValueError(f"steps: must be between 1 and {MAX_STEPS}")
    if history.t.size and int(history.t[-1]) + SLOT != origin:
        raise ValueError("history: must end just before the origin")


# -- production ---------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ProductionModel:
    """A fitted PV model: effective size, clearness quantiles, weather persistence."""

    site: Site
    kwp: float  # nameplate-equivalent (effective size / 0.86)
    learned: bool
    clearness: FloatArray  # [hour, mean/p10/p50/p90]
    carry: FloatArray  # [step, (last hour, last day)]: anomaly carried forward

    @staticmethod
    def fit(history: Series, site: Site) -> ProductionModel | None:
        """Learn the size (unless configured), the clearness distribution and persistence.

        None when the home has no measured PV and no configured size.
        """
        pv = history.pv_wh
        measured = ~np.isnan(pv)
        if not measured.any() and site.kwp is None:
            return None
        poa = clear_sky_poa(history.t + SLOT // 2, site)
        clear_wh = poa * 0.25  # Wh per kWp in the interval, lossless
        hours, _ = _calendar(history.t, site)
        kwp, learned = site.kwp, False
        if kwp is None:
            kwp = _learn_kwp(history.t, pv, clear_wh, site)
            learned = True
        effective = kwp * SYSTEM_DERATE
        sunny = measured & (poa >= PV_MIN_POA)
        with np.errstate(divide="ignore", invalid="ignore"):
            k = np.where(sunny, np.clip(pv / (effective * clear_wh), 0.0, 1.6), np.nan)
        window = history.t >= history.t[-1] - PV_WINDOW_DAYS * 86_400
        clearness = np.tile(np.array(DEFAULT_CLEARNESS), (24, 1))
        recent = sunny & window
        if recent.sum() >= 20:
            k_recent, k_hours = k[recent], hours[recent]
            clearness[:, 1:] = grouped_quantiles(k_recent, k_hours, 24, minimum=20)
            sums = np.bincount(k_hours, weights=k_recent, minlength=24)
            counts = np.bincount(k_hours, minlength=24)
            clearness[:, 0] = np.where(
                counts >= 20, sums / np.maximum(counts, 1), float(k_recent.mean())
            )
        anomaly = k - clearness[hours, 2]
        persistence_window = history.t >= history.t[-1] - PV_PERSISTENCE_DAYS * 86_400
        carry = _persistence(np.where(persistence_window, anomaly, np.nan))
        return ProductionModel(site, float(kwp), learned, clearness, carry)

    def forecast(self, origin: int, steps: int, history: Series | None = None) -> Band:
        """``steps`` intervals of PV energy (Wh) from ``origin``.

        With the recent ``history`` (ending at the origin), the clearness of the
        last hour and the last day shifts the forecast as it did in the past.
        """
        t = origin + SLOT * np.arange(steps, dtype=np.int64)
        clear_wh = clear_sky_poa(t + SLOT // 2, self.site) * 0.25
        hours, _ = _calendar(t, self.site)
        effective = self.kwp * SYSTEM_DERATE
        shift: FloatArray = np.zeros(steps)
        if history is not None and history.t.size:
            _check_origin(history, origin, steps)
            tail = history.rows(-SLOTS_PER_DAY)
            poa = clear_sky_poa(tail.t + SLOT // 2, self.site)
            past_hours, _ = _calendar(tail.t, self.site)
            sunny = ~np.isnan(tail.pv_wh) & (poa >= PV_MIN_POA)
            with np.errstate(divide="ignore", invalid="ignore"):
                k = np.where(sunny, tail.pv_wh / (effective * poa * 0.25), np.nan)
            anomaly = np.clip(k, 0.0, 1.6) - self.clearness[past_hours, 2]
            last_hour, last_day = anomaly[-CARRY_WINDOW:], anomaly
            hour_mean = _mean_or_zero(last_hour)
            day_mean = _mean_or_zero(last_day)
            shift = self.carry[:steps, 0] * hour_mean + self.carry[:steps, 1] * day_mean
        c = self.clearness[hours]
        scale = clear_wh * effective
        columns = [scale * np.maximum(c[:, j] + shift, 0.0) for j in range(4)]
        return Band(columns[0], columns[1], columns[2], columns[3])


def _mean_or_zero(values: FloatArray) -> float:
    ok = ~np.isnan(values)
    return float(values[ok].mean()) if ok.any() else 0.0


def _persistence(anomaly: FloatArray) -> FloatArray:
    """Per step, coefficients of the last hour's and last day's mean clearness anomaly."""
    n = anomaly.size
    last_hour = _shift(_window_mean(anomaly, CARRY_WINDOW - 1, 0), 1)
    last_day = _shift(_window_mean(anomaly, SLOTS_PER_DAY - 1, 0), 1)
    carry = np.zeros((MAX_STEPS, 2))
    for h in range(1, MAX_STEPS + 1):
        later = anomaly[h - 1 :]
        x = np.stack([last_hour[: n - h + 1], last_day[: n - h + 1]], axis=1)
        x = np.where(np.isnan(x), 0.0, x)
        ok = ~np.isnan(later)
        if ok.sum() < 50:
            continue
        xo, yo = x[ok], later[ok]
        normal = xo.T @ xo + 1.0 * np.eye(2)
        carry[h - 1] = np.clip(np.linalg.solve(normal, xo.T @ yo), -1.0, 1.0)
    return carry


def _learn_kwp(t: IntArray, pv: FloatArray, clear_wh: FloatArray, site: Site) -> float:
    day = local_times(t, site.timezone) // 86_400
    daylight = clear_wh > 0
    first = int(day.min())
    index = (day - first).astype(np.int64)
    n_days = int(index.max()) + 1
    measured = daylight & ~np.isnan(pv)
    produced = np.bincount(index[measured], weights=pv[measured], minlength=n_days)
    possible = np.bincount(index[measured], weights=clear_wh[measured], minlength=n_days)
    complete = np.bincount(index[measured], minlength=n_days) >= 0.8 * np.bincount(
        index[daylight], minlength=n_days
    )
    good = complete & (possible > 0)
    if good.sum() < 3:
        raise NotEnoughData("fewer than 3 days of PV data to learn the system size")
    ratios = produced[good] / possible[good]
    return float(max(np.quantile(ratios, 0.9) / SYSTEM_DERATE, 0.01))


# -- the pair ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class HomeModel:
    """Both models of one home and when they were fitted."""

    consumption: ConsumptionModel
    production: ProductionModel | None
    fitted_until: int  # end (exclusive) of the history they saw

    def forecast(
        self,
        history: Series,
        origin: int,
        steps: int = MAX_STEPS,
        temperature: FloatArray | None = None,
    ) -> Forecast:
        """Both forecasts; ``history`` is the recent grid ending at ``origin`` (35 days do)."""
        consumption = self.consumption.forecast(history, origin, steps, temperature)
        production = (
            Band.zeros(steps)
            if self.production is None
            else self.production.forecast(origin, steps, history)
        )
        start = origin + SLOT * np.arange(steps, dtype=np.int64)
        return Forecast(start, consumption, production)


def fit_home(history: Series, site: Site, use_temperature: bool = True) -> HomeModel:
    """Fit both models on a dense 15-minute history (leading empty intervals are skipped)."""
    if history.t.size == 0:
        raise NotEnoughData("no history")
    end = int(history.t[-1]) + SLOT
    measured = np.flatnonzero(~np.isnan(history.import_wh) | ~np.isnan(history.pv_wh))
    if measured.size:
        first = int(measured[0])
        history = history.rows(first)
    return HomeModel(
        ConsumptionModel.fit(history, site, use_temperature),
        ProductionModel.fit(history, site),
        end,
    )


HISTORY_DAYS_FOR_FORECAST: Final = 36
