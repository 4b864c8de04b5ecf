"""Rolling-origin backtests of the forecasts against naive baselines.

Method: walk through a long 15-minute series one local day at a time. Each day
has one origin, at an hour that moves on by 7 hours a day (so every horizon
bucket sees every hour of the day); from it the models -- refitted every
``refit_days`` on all data before the origin, at most a year -- forecast the
next 48 hours (192 intervals) from the data before the origin only. Every forecast is compared
with what happened, and so are two baselines:

- *seasonal naive*: the same quarter-hour one week earlier (the baseline the
  model must beat);
- *persistence*: the same quarter-hour on the last day known at the origin
  (yesterday for the first 24 h, the day before for 24-48 h).

Scores per horizon bucket (0-1 h, 1-6 h, 6-24 h, 24-48 h after the origin):
MAE (Wh per 15 minutes) of the point forecast (the median); MAPE over the
intervals whose actual value is at least a threshold (consumption: 25 Wh, a
mean of 100 W; production: 10 % of the 99th percentile of the actual
15-minute production), because percentage errors of near-zero values are
meaningless; WAPE (sum of absolute errors over the sum of actuals, all
intervals); and the share of actual values inside the model's 10 %-90 % band.
Production is scored on daylight intervals only (clear-sky irradiance above
zero): at night every method is exactly right.

Data: the meter simulator's household model (``ledger_core.meter.household``)
and the noisier synthetic household of ``synthetic.py`` for consumption and
production (no package here ships real household load data); real irradiance
for production -- the Miami TMY2 file that ``pvlib`` ships
(``pvlib/data/12839.tm2``, hourly typical months) turned into a 15-minute PV
series for a 3 kWp array (see :func:`tmy_pv_series`).

Run ``python -m ledger_core.analytics.backtest --write docs/analytics.md`` to
regenerate the tables in the documentation.
"""

from __future__ import annotations

import argparse
import datetime as dt
import importlib.resources
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final, Literal, TextIO

import numpy as np
import numpy.typing as npt

from ledger_core.analytics.forecast import (
    BUCKETS,
    HISTORY_DAYS_FOR_FORECAST,
    MAX_STEPS,
    Band,
    ConsumptionModel,
    ProductionModel,
)
from ledger_core.analytics.localtime import SLOT, SLOTS_PER_DAY, FloatArray, Site, midnight
from ledger_core.analytics.solar import clear_sky_poa
from ledger_core.analytics.store import Series
from ledger_core.analytics.synthetic import HouseholdConfig, simulate

BUCKET_NAMES: Final = ("0-1 h", "1-6 h", "6-24 h", "24-48 h")
CONSUMPTION_MAPE_FLOOR: Final = 25.0
MAX_FIT_DAYS: Final = 365
START_MARK: Final = "<!-- backtest:start -->"
END_MARK: Final = "<!-- backtest:end -->"

type Target = Literal["consumption", "production"]


@dataclass(frozen=True, slots=True)
class Score:
    """Errors of one method over one horizon bucket."""

    mae: float
    mape: float
    wape: float


@dataclass(frozen=True, slots=True)
class BucketResult:
    """Model and baselines over one horizon bucket."""

    bucket: str
    intervals: int
    model: Score
    naive: Score
    persistence: Score
    coverage: float  # share of actual values within [p10, p90]

    @property
    def skill(self) -> float:
        """1 - model MAE / seasonal-naive MAE: how much better than the baseline."""
        return 1.0 - self.model.mae / self.naive.mae if self.naive.mae > 0 else 0.0


@dataclass(frozen=True, slots=True)
class BacktestResult:
    """A whole backtest: what, on what data, and the scores per bucket and overall."""

    target: Target
    data: str
    origins: int
    buckets: tuple[BucketResult, ...]
    overall: BucketResult
    seconds: float

    def table(self) -> str:
        """A Markdown table of the scores."""
        lines = [
            (
                "| horizon | intervals | MAE model | MAE naive | MAE persistence | skill vs naive"
                " | MAPE model | MAPE naive | WAPE model | WAPE naive | in 10-90 % band |"
            ),
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for row in (*self.buckets, self.overall):
            lines.append(
                f"| {row.bucket} | {row.intervals:,} | {row.model.mae:.1f} | {row.naive.mae:.1f}"
                f" | {row.persistence.mae:.1f} | {100 * row.skill:.1f} %"
                f" | {100 * row.model.mape:.1f} % | {100 * row.naive.mape:.1f} %"
                f" | {100 * row.model.wape:.1f} % | {100 * row.naive.wape:.1f} %"
                f" | {100 * row.coverage:.1f} % |"
            )
        return "\n".join(lines)


def _score(errors: FloatArray, actual: FloatArray, floor: float) -> Score:
    ok = ~np.isnan(errors) & ~np.isnan(actual)
    e, a = errors[ok], actual[ok]
    big = a >= floor
    total = float(np.abs(a).sum())
    return Score(
        mae=float(np.abs(e).mean()) if e.size else float("nan"),
        mape=float(np.mean(np.abs(e[big]) / a[big])) if big.any() else float("nan"),
        wape=float(np.abs(e).sum() / total) if total > 0 else float("nan"),
    )


@dataclass(slots=True)
class _Matrices:
    """Forecasts, baselines and actual values: one row per origin, one column per step."""

    predicted: FloatArray
    low: FloatArray
    high: FloatArray
    naive: FloatArray
    persistence: FloatArray
    actual: FloatArray
    scored: npt.NDArray[np.bool_]

    def bucket(self, name: str, columns: slice, floor: float) -> BucketResult:
        a = np.where(self.scored[:, columns], self.actual[:, columns], np.nan)
        inside = (a >= self.low[:, columns]) & (a <= self.high[:, columns])
        valid = ~np.isnan(a)
        return BucketResult(
            bucket=name,
            intervals=int(valid.sum()),
            model=_score((self.predicted[:, columns] - a).ravel(), a.ravel(), floor),
            naive=_score((self.naive[:, columns] - a).ravel(), a.ravel(), floor),
            persistence=_score((self.persistence[:, columns] - a).ravel(), a.ravel(), floor),
            coverage=float(inside[valid].mean()) if valid.any() else float("nan"),
        )


def origins_for(n: int, warmup_days: int, steps: int = MAX_STEPS) -> list[int]:
    """Grid indices of the origins: one a day after the warm-up, at an hour that
    moves on by 7 hours a day, so that every horizon bucket sees every hour."""
    candidates = (
        day * SLOTS_PER_DAY + 4 * ((7 * k) % 24)
        for k, day in enumerate(range(warmup_days, n // SLOTS_PER_DAY))
    )
    return [origin for origin in candidates if origin + steps <= n]


def _forecasts(
    series: Series,
    site: Site,
    target: Target,
    origins: list[int],
    *,
    refit_days: int,
    use_temperature: bool,
    progress: Callable[[str], None] | None,
) -> _Matrices:
    actual_all = series.consumption if target == "consumption" else series.pv_wh
    steps = MAX_STEPS
    shape = (len(origins), steps)

    def blank() -> FloatArray:
        return np.full(shape, np.nan)

    m = _Matrices(blank(), blank(), blank(), blank(), blank(), blank(), np.ones(shape, bool))
    step_index = np.arange(steps)
    lag_days = (step_index // SLOTS_PER_DAY) + 1
    consumption_model: ConsumptionModel | None = None
    production_model: ProductionModel | None = None
    for row, origin in enumerate(origins):
        if row % refit_days == 0:
            fit_on = series.rows(max(0, origin - MAX_FIT_DAYS * SLOTS_PER_DAY), origin)
            if target == "consumption":
                consumption_model = ConsumptionModel.fit(fit_on, site, use_temperature)
            else:
                production_model = ProductionModel.fit(fit_on, site)
            if progress is not None:
                progress(f"{target}: origin {row + 1}/{len(origins)}")
        history = series.rows(max(0, origin - HISTORY_DAYS_FOR_FORECAST * SLOTS_PER_DAY), origin)
        t0 = int(series.t[origin])
        if consumption_model is not None:
            future_temperature = series.temperature[origin : origin + steps]
            band = consumption_model.forecast(history, t0, steps, future_temperature)
        elif production_model is not None:
            band = production_model.forecast(t0, steps, history)
        else:
            band = Band.zeros(steps)
        m.predicted[row], m.low[row], m.high[row] = band.p50, band.p10, band.p90
        index = origin + step_index
        m.actual[row] = actual_all[index]
        m.naive[row] = actual_all[index - 7 * SLOTS_PER_DAY]
        m.persistence[row] = actual_all[index - lag_days * SLOTS_PER_DAY]
    if target == "production":
        starts = series.t[np.array(origins)][:, None] + SLOT * step_index[None, :]
        m.scored = clear_sky_poa((starts + SLOT // 2).ravel(), site).reshape(shape) > 0
    return m


def run(
    series: Series,
    site: Site,
    target: Target,
    *,
    data: str,
    warmup_days: int = 28,
    refit_days: int = 7,
    use_temperature: bool = True,
    progress: Callable[[str], None] | None = None,
) -> BacktestResult:
    """Backtest one target on ``series`` (a dense grid starting at a local midnight)."""
    began = time.perf_counter()
    origins = origins_for(series.t.size, warmup_days)
    if not origins:
        raise ValueError("series: too short for one origin after the warm-up")
    m = _forecasts(
        series,
        site,
        target,
        origins,
        refit_days=refit_days,
        use_temperature=use_temperature,
        progress=progress,
    )
    if target == "production":
        finite = m.actual[~np.isnan(m.actual)]
        floor = 0.1 * float(np.quantile(finite, 0.99)) if finite.size else 0.0
    else:
        floor = CONSUMPTION_MAPE_FLOOR
    buckets = tuple(
        m.bucket(name, slice(low_step - 1, high_step), floor)
        for name, (low_step, high_step) in zip(BUCKET_NAMES, BUCKETS, strict=True)
    )
    return BacktestResult(
        target,
        data,
        len(origins),
        buckets,
        m.bucket("0-48 h", slice(0, MAX_STEPS), floor),
        time.perf_counter() - began,
    )


# -- data -------------------------------------------------------------------------------


def synthetic_series(days: int, seed: int, config: HouseholdConfig | None = None) -> Series:
    """The synthetic household as a 15-minute series (PV measured, temperature known)."""
    config = config or HouseholdConfig()
    home = simulate(dt.date(2025, 1, 1), days, seed, config)
    imp = home.intervals_wh(home.import_w)
    exp = home.intervals_wh(home.export_w)
    return Series(
        home.interval_times,
        imp,
        exp,
        home.pv_wh,
        home.temperature,
        np.full(imp.size, 15, dtype=np.int64),
    )


def meter_series(days: int, seed: int) -> Series:
    """The meter simulator's household model (``ledger_core.meter.household``), 15-minute.

    The SmartPi simulator samples the same model, so this is the home the
    rest of the system sees in demos: H0 base load, fridge, pump, washer,
    standby, PV with a day-by-day cloud model, and its air temperature.
    """
    from ledger_core.meter.household import Household, HouseholdModel  # noqa: PLC0415

    model = HouseholdModel(Household(seed=seed))
    start = midnight(dt.date(2025, 1, 1), model.zone)
    profile = model.profile(start, start + days * 86_400)
    quarter_hours = SLOT / 3600.0
    t = profile.start
    return Series(
        t,
        profile.import_w * quarter_hours,
        profile.export_w * quarter_hours,
        profile.pv_w * quarter_hours,
        model.air_temperature((t + SLOT // 2).astype(np.float64)),
        np.full(t.size, 15, dtype=np.int64),
    )


def tmy_pv_series(kwp: float = 3.0) -> tuple[Series, Site]:
    """15-minute PV production from the real irradiance in pvlib's Miami TMY2 file.

    For each hour the measured global, direct and diffuse irradiance are put
    onto the array plane (isotropic model, sun at mid-hour), giving an hourly
    clearness ratio against pvlib's clear-sky irradiance on the same plane; each
    15-minute interval's energy is then the clear-sky energy of that interval
    times its hour's ratio, the size and 14 % losses with a temperature
    derating from the measured air temperature. The twelve typical months are
    laid end to end on 2025 and repeated once, so rolling origins see two
    years; the second pass is a test of the same weather, not new weather.
    """
    from pvlib import iotools, irradiance, spa  # noqa: PLC0415 - only here

    path = importlib.resources.files("pvlib") / "data" / "12839.tm2"
    data, meta = iotools.read_tmy2(str(path))
    site = Site(
        latitude=float(meta["latitude"]),
        longitude=float(meta["longitude"]),
        altitude_m=float(meta["altitude"]),
        timezone=f"Etc/GMT{-int(meta['TZ']):+d}",
        tilt_deg=20.0,
        azimuth_deg=180.0,
    )
    offset = int(meta["TZ"]) * 3600
    start = int(dt.datetime(2025, 1, 1, tzinfo=dt.UTC).timestamp()) - offset
    hours = 8760
    ghi = data["GHI"].to_numpy(dtype=float)[:hours]
    dni = data["DNI"].to_numpy(dtype=float)[:hours]
    dhi = data["DHI"].to_numpy(dtype=float)[:hours]
    air = data["DryBulb"].to_numpy(dtype=float)[:hours] / 10.0  # TMY2: tenths of °C
    # TMY2 values are for the hour ending at the stamp; pvlib labels them at its start.
    mid = start + 3600 * np.arange(hours) + 1800
    position = spa.solar_position(
        mid.astype(float), site.latitude, site.longitude, site.altitude_m, 1013.0, 25.0,
        69.0, 0.5667, numthreads=0,
    )  # fmt: skip
    with np.errstate(divide="ignore", invalid="ignore"):
        measured = irradiance.get_total_irradiance(
            site.tilt_deg, site.azimuth_deg, position[1], position[4], dni, ghi, dhi
        )["poa_global"]
    measured = np.clip(np.nan_to_num(np.asarray(measured, dtype=float)), 0.0, None)
    clear_hour = clear_sky_poa(mid, site)
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(clear_hour > 20.0, measured / clear_hour, 0.0)
    ratio = np.clip(ratio, 0.0, 1.5)
    t = start + SLOT * np.arange(hours * 4, dtype=np.int64)
    clear = clear_sky_poa(t + SLOT // 2, site)
    poa = clear * np.repeat(ratio, 4)
    cell = np.repeat(air, 4) + 0.03 * poa
    pv = poa * 0.25 * kwp * 0.86 * (1.0 - 0.0037 * (cell - 25.0))
    pv = np.maximum(pv, 0.0)
    t2 = np.concatenate([t, t + 365 * 86_400])
    pv2 = np.concatenate([pv, pv])
    temp2 = np.concatenate([np.repeat(air, 4)] * 2)
    zero = np.zeros(t2.size)
    series = Series(t2, zero, zero, pv2, temp2, np.full(t2.size, 15, dtype=np.int64))
    return series, site


# -- command line --------------------------------------------------------------------------


def report(results: Sequence[BacktestResult], command: str) -> str:
    """The Markdown section written into docs/analytics.md."""
    parts = [f"Regenerate with `{command}`.", ""]
    for result in results:
        overall = result.overall
        parts += [
            (
                f"**{result.target.capitalize()}, {result.data}** -- {result.origins} daily"
                f" origins, {result.overall.intervals:,} scored intervals,"
                f" {result.seconds:.0f} s. MAE {overall.model.mae:.1f} Wh against"
                f" {overall.naive.mae:.1f} Wh for the seasonal naive baseline:"
                f" {100 * abs(overall.skill):.1f} % {'lower' if overall.skill >= 0 else 'higher'}."
            ),
            "",
            result.table(),
            "",
        ]
    return "\n".join(parts).rstrip() + "\n"


def write_into(path: Path, section: str) -> None:
    """Replace the text between the backtest markers of ``path``."""
    text = path.read_text(encoding="utf-8")
    head, found, rest = text.partition(START_MARK)
    _, found_end, tail = rest.partition(END_MARK)
    if not found or not found_end:
        raise ValueError(f"{path}: needs the backtest markers {START_MARK} and {END_MARK}")
    path.write_text(f"{head}{START_MARK}\n{section}{END_MARK}{tail}", encoding="utf-8")


def main(argv: Sequence[str] | None = None, out: TextIO | None = None) -> int:
    """``python -m ledger_core.analytics.backtest [--days N] [--seed S] [--write FILE]``."""
    parser = argparse.ArgumentParser(prog="python -m ledger_core.analytics.backtest")
    parser.add_argument("--days", type=int, default=365, help="days of forecast origins")
    parser.add_argument("--seed", type=int, default=1, help="seed of the simulated households")
    parser.add_argument("--write", type=Path, help="update the tables in this Markdown file")
    parser.add_argument("--quiet", action="store_true")
    args = parser.parse_args(argv)
    if not 7 <= args.days <= 3650:
        parser.error("--days must be between 7 and 3650")

    stream = out if out is not None else sys.stdout

    def say(message: str) -> None:
        if not args.quiet:
            sys.stderr.write(message + "\n")

    warmup = 56
    days = warmup + args.days + 2
    site = Site()
    results = []
    meter = meter_series(days, args.seed)
    meter_label = (
        f"meter simulator's household model (seed {args.seed}, {days} days from 2025-01-01)"
    )
    targets: tuple[Target, Target] = ("consumption", "production")
    for target in targets:
        results.append(run(meter, site, target, data=meter_label, warmup_days=warmup, progress=say))
    synthetic = synthetic_series(days, args.seed)
    label = (
        f"analytics' noisier synthetic household (seed {args.seed}, {days} days from 2025-01-01)"
    )
    for target in targets:
        results.append(run(synthetic, site, target, data=label, warmup_days=warmup, progress=say))
    tmy, tmy_site = tmy_pv_series()
    tmy_days = min(args.days, tmy.t.size // SLOTS_PER_DAY - warmup - 2)
    tmy = tmy.rows(0, (warmup + tmy_days + 2) * SLOTS_PER_DAY)
    results.append(
        run(
            tmy,
            tmy_site,
            "production",
            data="real irradiance, pvlib's Miami TMY2 (3 kWp)",
            warmup_days=warmup,
            progress=say,
        )
    )
    command = (
        "python -m ledger_core.analytics.backtest"
        + (f" --days {args.days}" if args.days != 365 else "")
        + (f" --seed {args.seed}" if args.seed != 1 else "")
        + " --write docs/analytics.md"
    )
    section = report(results, command)
    stream.write(section)
    if args.write is not None:
        write_into(args.write, section)
    return 0 if all(r.overall.skill > 0 for r in results) else 1


if __name__ == "__main__":
    raise SystemExit(main())
