"""Local time, day types and the site's checks."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger_core.analytics.localtime import (
    SATURDAY,
    SUNDAY_OR_HOLIDAY,
    WEEKDAY,
    Site,
    day_types,
    local_days,
    midnight,
    slots_of_day,
    utc_offsets,
    whole,
)

ZONES = ["America/Mexico_City", "America/Tijuana", "Europe/Berlin", "Australia/Lord_Howe", "UTC"]


@settings(max_examples=50)
@given(
    st.sampled_from(ZONES),
    st.lists(st.integers(0, 2_000_000_000), min_size=1, max_size=40),
)
def test_offsets_match_zoneinfo(zone: str, times: list[int]) -> None:
    """Daylight-saving changes included (Tijuana, Berlin, Lord Howe's half hour)."""
    expected = [dt.datetime.fromtimestamp(t, ZoneInfo(zone)).utcoffset() for t in times]
    got = utc_offsets(np.array(times), zone)
    assert got.tolist() == [int(e.total_seconds()) for e in expected if e is not None]


def test_offsets_across_a_daylight_saving_change() -> None:
    # Tijuana moved to daylight time at 2026-03-08 02:00 local (10:00 UTC).
    t = np.array([1_772_963_100, 1_772_964_000, 1_772_964_900])  # 09:45, 10:00, 10:15 UTC
    assert utc_offsets(t, "America/Tijuana").tolist() == [-8 * 3600, -7 * 3600, -7 * 3600]
    assert utc_offsets(np.array([], dtype=np.int64), "UTC").size == 0


def test_slots_days_and_midnight() -> None:
    t0 = midnight(dt.date(2026, 1, 1), "America/Mexico_City")
    assert t0 == 1_767_247_200
    t = t0 + 900 * np.arange(96 + 2)
    assert slots_of_day(t, "America/Mexico_City").tolist() == [*range(96), 0, 1]
    days = local_days(t, "America/Mexico_City")
    assert (days[:96] == (dt.date(2026, 1, 1) - dt.date(1970, 1, 1)).days).all()
    assert whole([1.4, 2.6, -0.6]) == [1, 3, -1]


def test_day_types_know_mexican_holidays() -> None:
    epoch = dt.date(1970, 1, 1)

    def kind(day: dt.date, site: Site | None = None) -> int:
        return int(day_types(np.array([(day - epoch).days]), site or Site())[0])

    assert kind(dt.date(2025, 9, 16)) == SUNDAY_OR_HOLIDAY  # Independencia, a Tuesday
    assert kind(dt.date(2025, 9, 17)) == WEEKDAY
    assert kind(dt.date(2025, 9, 20)) == SATURDAY
    assert kind(dt.date(2025, 9, 21)) == SUNDAY_OR_HOLIDAY
    assert kind(dt.date(2025, 11, 17)) == SUNDAY_OR_HOLIDAY  # Revolución, third Monday
    extra = Site(extra_holidays=frozenset({dt.date(2025, 12, 12)}))  # Guadalupe
    assert kind(dt.date(2025, 12, 12)) == WEEKDAY
    assert kind(dt.date(2025, 12, 12), extra) == SUNDAY_OR_HOLIDAY
    assert day_types(np.array([], dtype=np.int64), Site()).size == 0


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"latitude": 91.0}, "latitude"),
        ({"longitude": float("nan")}, "longitude"),
        ({"altitude_m": 10_000.0}, "altitude_m"),
        ({"tilt_deg": -1.0}, "tilt_deg"),
        ({"azimuth_deg": 400.0}, "azimuth_deg"),
        ({"kwp": 0.0}, "kwp"),
        ({"kwp": 501.0}, "kwp"),
        ({"timezone": "Mars/Olympus"}, "timezone"),
        ({"country": "XX"}, "country"),
    ],
)
def test_site_refuses_bad_settings(changes: dict[str, object], field: str) -> None:
    with pytest.raises(ValueError, match=f"^{field}:"):
        Site(**changes)  # type: ignore[arg-type]
