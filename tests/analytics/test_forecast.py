"""Forecasts: shapes, ordered bands, calibration on held-out days, PV at night, features."""

from __future__ import annotations

import datetime as dt
from functools import cache

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from pvlib import spa

from ledger_core.analytics.backtest import synthetic_series
from ledger_core.analytics.forecast import (
    MAX_STEPS,
    ConsumptionModel,
    NotEnoughData,
    ProductionModel,
    fit_home,
    grouped_quantiles,
)
from ledger_core.analytics.localtime import Site, midnight
from ledger_core.analytics.store import Series
from ledger_core.analytics.synthetic import HouseholdConfig

DAYS = 96  # quarter-hours


@cache
def household() -> Series:
    """Ten weeks of the synthetic home from 2025-01-01 (no absence in them)."""
    return synthetic_series(70, seed=1)


def made_up(days: int, load: np.ndarray, temperature: np.ndarray | None = None) -> Series:
    """A consumption-only home with the given load per quarter-hour."""
    t = midnight(dt.date(2025, 7, 1), "America/Mexico_City") + 900 * np.arange(days * DAYS)
    zero = np.zeros(t.size)
    temps = np.full(t.size, np.nan) if temperature is None else temperature
    return Series(t, load, zero, np.full(t.size, np.nan), temps, np.full(t.size, 15))


def test_forecast_has_ordered_bands_for_48_hours() -> None:
    series = household()
    n = 56 * DAYS
    model = fit_home(series.rows(0, n), Site())
    origin = int(series.t[n])
    forecast = model.forecast(series.rows(n - 36 * DAYS, n), origin)
    rows = forecast.rows()
    assert len(rows) == MAX_STEPS
    assert [r["start"] for r in rows] == [origin + 900 * i for i in range(MAX_STEPS)]
    for band in (forecast.consumption, forecast.production):
        assert (band.p10 >= 0).all()
        assert (band.p10 <= band.p50).all()
        assert (band.p50 <= band.p90).all()
        assert (band.mean >= 0).all()
    assert all(r["consumption_p10"] <= r["consumption_wh"] <= r["consumption_p90"] for r in rows)
    assert all(r["production_p10"] <= r["production_wh"] <= r["production_p90"] for r in rows)
    # A home of about 2,600 kWh a year uses roughly 7 kWh a day.
    assert 4_000 < forecast.consumption.mean[:96].sum() < 12_000


def test_bands_cover_held_out_days_about_as_nominal() -> None:
    """80 % bands fitted on eight weeks hold about 80 % of the next two weeks."""
    series = household()
    n = 56 * DAYS
    consumption = ConsumptionModel.fit(series.rows(0, n), Site())
    production = ProductionModel.fit(series.rows(0, n), Site())
    assert production is not None
    inside_c, inside_p = [], []
    for day in range(13):
        origin = n + day * DAYS
        history = series.rows(origin - 36 * DAYS, origin)
        t0 = int(series.t[origin])
        band = consumption.forecast(history, t0, DAYS, series.temperature[origin : origin + DAYS])
        actual = series.consumption[origin : origin + DAYS]
        inside_c.append((actual >= band.p10) & (actual <= band.p90))
        pv = production.forecast(t0, DAYS, history)
        day_time = pv.p90 > 0
        actual_pv = series.pv_wh[origin : origin + DAYS]
        inside_p.append(((actual_pv >= pv.p10) & (actual_pv <= pv.p90))[day_time])
    assert 0.7 <= np.concatenate(inside_c).mean() <= 0.9
    assert 0.65 <= np.concatenate(inside_p).mean() <= 0.95


def test_pv_is_zero_at_night_and_positive_at_noon() -> None:
    series = household()
    n = 40 * DAYS
    production = ProductionModel.fit(series.rows(0, n), Site())
    assert production is not None
    origin = int(series.t[n])
    band = production.forecast(origin, MAX_STEPS)
    site = Site()
    mid = (origin + 900 * np.arange(MAX_STEPS) + 450).astype(float)
    zenith = spa.solar_position(
        mid, site.latitude, site.longitude, site.altitude_m, 810.0, 20.0, 69.0, 0.5667,
        numthreads=0,
    )[0]  # fmt: skip
    night = zenith >= 90.0
    assert night.sum() > 80
    for values in (band.mean, band.p10, band.p50, band.p90):
        assert (values[night] == 0).all()
    noon = 12 * 4 + 2  # 12:30 local on the first day
    assert band.p50[noon] > 200


def test_system_size_learned_or_configured() -> None:
    series = household()  # 3 kWp
    learned = ProductionModel.fit(series.rows(0, 40 * DAYS), Site())
    assert learned is not None
    assert learned.learned
    # The size is learned as an effective kWp: hot cells and clouds keep it below nameplate.
    assert 2.4 <= learned.kwp <= 3.3
    configured = ProductionModel.fit(series.rows(0, 40 * DAYS), Site(kwp=5.0))
    assert configured is not None
    assert (configured.kwp, configured.learned) == (5.0, False)
    no_pv = made_up(20, np.full(20 * DAYS, 100.0))
    assert ProductionModel.fit(no_pv, Site()) is None
    model = fit_home(no_pv, Site())
    forecast = model.forecast(no_pv.rows(0, no_pv.t.size), int(no_pv.t[-1]) + 900, 8)
    assert (forecast.production.p90 == 0).all()
    # Configured but not yet measured: the default clearness and the given size.
    untried = ProductionModel.fit(no_pv, Site(kwp=2.0))
    assert untried is not None
    assert untried.forecast(int(no_pv.t[-1]) + 900, MAX_STEPS).p50.max() > 100


def test_holidays_are_forecast_like_sundays() -> None:
    """Weekdays have a 500 Wh bump at 08:00; Sundays and holidays do not."""
    days = 84  # 2025-07-01 .. 2025-09-22
    t = midnight(dt.date(2025, 7, 1), "America/Mexico_City") + 900 * np.arange(days * DAYS)
    weekday = ((t - t[0]) // 86_400 + 1) % 7  # 2025-07-01 was a Tuesday: 1
    bump = (weekday < 5) & (((t - t[0]) % 86_400) // 3600 == 8)
    load = np.where(bump, 500.0, 60.0)
    holiday = np.flatnonzero(t == midnight(dt.date(2025, 9, 16), "America/Mexico_City"))[0]
    load[holiday : holiday + DAYS] = 60.0
    series = made_up(days, load)
    n = int(holiday) - DAYS  # origin at midnight on Monday 15 September
    model = ConsumptionModel.fit(series.rows(0, n), Site())
    band = model.forecast(series.rows(n - 36 * DAYS, n), int(t[n]), MAX_STEPS)
    eight = slice(8 * 4, 9 * 4)
    assert band.p50[eight].min() > 400  # Monday
    assert band.p50[DAYS:][eight].max() < 150  # Tuesday 16 September, Independence Day


def test_temperature_improves_a_temperature_driven_home() -> None:
    rng = np.random.default_rng(5)
    days = 70
    daily = 24.0 + 4.0 * np.cumsum(rng.normal(0, 0.5, days)) % 6.0
    hour = (np.arange(days * DAYS) % DAYS) / 4.0
    temperature = np.repeat(daily, DAYS) + 5.0 * np.cos(2 * np.pi * (hour - 15) / 24)
    load = 80.0 + 60.0 * np.maximum(temperature - 24.0, 0.0) + rng.normal(0, 5, days * DAYS)
    series = made_up(days, load, temperature)
    n = 60 * DAYS
    errors = {}
    for use in (True, False):
        model = ConsumptionModel.fit(series.rows(0, n), Site(), use_temperature=use)
        assert model.uses_temperature is use
        total = 0.0
        for day in range(8):
            origin = n + day * DAYS
            band = model.forecast(
                series.rows(origin - 36 * DAYS, origin),
                int(series.t[origin]),
                DAYS,
                temperature[origin : origin + DAYS],
            )
            total += float(np.abs(band.p50 - load[origin : origin + DAYS]).mean())
        errors[use] = total / 8
    assert errors[True] < 0.6 * errors[False]


def test_a_busy_last_hour_raises_the_next_quarter_hours() -> None:
    series = household()
    n = 56 * DAYS + 19 * 4  # 19:00
    model = ConsumptionModel.fit(series.rows(0, n), Site())
    history = series.rows(n - 36 * DAYS, n)
    t0 = int(series.t[n])
    calm = model.forecast(history, t0, 8)
    busy_load = history.import_wh.copy()
    busy_load[-4:] += 400.0
    busy = Series(
        history.t, busy_load, history.export_wh, history.pv_wh, history.temperature,
        history.minutes,
    )  # fmt: skip
    raised = model.forecast(busy, t0, 8)
    assert model.carry[0] > 0.2
    assert raised.mean[0] > calm.mean[0] + 50
    assert raised.mean[0] - calm.mean[0] > raised.mean[7] - calm.mean[7]


def test_too_little_history_and_bad_calls() -> None:
    short = made_up(10, np.full(10 * DAYS, 50.0))
    with pytest.raises(NotEnoughData, match=r"10\.0 days"):
        ConsumptionModel.fit(short, Site())
    with pytest.raises(NotEnoughData, match="no history"):
        fit_home(short.rows(0, 0), Site())
    series = made_up(20, np.full(20 * DAYS, 50.0))
    model = ConsumptionModel.fit(series, Site())
    end = int(series.t[-1]) + 900
    with pytest.raises(ValueError, match="origin"):
        model.forecast(series, end + 1, 4)
    with pytest.raises(ValueError, match="steps"):
        model.forecast(series, end, MAX_STEPS + 1)
    with pytest.raises(ValueError, match="history"):
        model.forecast(series, end + 900, 4)
    flat = model.forecast(series, end, 4)
    assert flat.p50 == pytest.approx(np.full(4, 50.0), abs=1.0)
    no_pv_yet = made_up(20, np.full(20 * DAYS, 50.0))
    pv_short = Series(
        no_pv_yet.t, no_pv_yet.import_wh, no_pv_yet.export_wh,
        np.where(np.arange(no_pv_yet.t.size) < 2 * DAYS, 100.0, np.nan),
        no_pv_yet.temperature, no_pv_yet.minutes,
    )  # fmt: skip
    with pytest.raises(NotEnoughData, match="system size"):
        ProductionModel.fit(pv_short, Site())


def test_synthetic_configuration_changes_the_home() -> None:
    small = synthetic_series(14, 3, HouseholdConfig(pv_kwp=0.0, standby_w=10.0))
    assert np.nansum(small.pv_wh) == 0
    assert np.nanmin(small.consumption) > 0


@settings(max_examples=50)
@given(
    hnp.arrays(np.float64, st.integers(0, 300), elements=st.floats(-1e6, 1e6)),
    st.data(),
)
def test_grouped_quantiles_match_numpy(values: np.ndarray, data: st.DataObject) -> None:
    groups = np.array(
        data.draw(st.lists(st.integers(0, 4), min_size=values.size, max_size=values.size)),
        dtype=np.int64,
    )
    result = grouped_quantiles(values, groups, 5, minimum=3)
    for g in range(5):
        chosen = values[groups == g]
        if chosen.size >= 3:
            expected = np.quantile(chosen, [0.1, 0.5, 0.9])
        elif values.size:
            expected = np.quantile(values, [0.1, 0.5, 0.9])
        else:
            expected = np.zeros(3)
        assert result[g] == pytest.approx(expected, rel=1e-9, abs=1e-6)
