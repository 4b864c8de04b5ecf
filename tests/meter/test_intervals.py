"""Interval boundaries in local time, proportional splitting, carried rounding, closing."""

from __future__ import annotations

import contextlib
import itertools
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ledger_core.meter.accounting import Span
from ledger_core.meter.intervals import IntervalClock, Intervals, split
from ledger_core.meter.store import MeterStore
from tests.meter.helpers import NOON

METER = "tv" + "ab" * 20
CHAIN = "transactiva-test-1"


@contextlib.contextmanager
def intervals(
    path: Path, zone: str = "America/Mexico_City", seconds: int = 900
) -> Iterator[Intervals]:
    store = MeterStore(path, METER, CHAIN)
    try:
        yield Intervals(store, IntervalClock(zone, seconds))
    finally:
        store.close()


def test_mexico_city_quarter_hours() -> None:
    clock = IntervalClock("America/Mexico_City")
    assert clock.start_of(NOON) == NOON
    assert clock.start_of(NOON + 899.9) == NOON
    assert clock.start_of(NOON + 900) == NOON + 900
    assert clock.start_of(NOON - 0.5) == NOON - 900
    assert clock.next_start(int(NOON)) == NOON + 900
    local = clock.local(clock.start_of(NOON + 1234))
    assert (local.hour, local.minute, local.second) == (12, 15, 0)
    assert local.utcoffset() is not None
    assert local.utcoffset().total_seconds() == -6 * 3600  # type: ignore[union-attr]


def test_a_half_hour_offset_zone_aligns_on_local_time() -> None:
    # India is UTC+05:30: local hours start at half past the UTC hour.
    hourly = IntervalClock("Asia/Kolkata", 3600)
    t = datetime(2026, 3, 10, 12, 10, tzinfo=UTC).timestamp()
    start = hourly.start_of(t)
    assert start % 3600 == 1800
    local = hourly.local(start)
    assert (local.hour, local.minute) == (17, 0)
    # Quarter hours there coincide with UTC quarter hours (5:30 is a multiple of 15 minutes).
    quarters = IntervalClock("Asia/Kolkata", 900)
    assert quarters.start_of(t) == datetime(2026, 3, 10, 12, 0, tzinfo=UTC).timestamp()
    assert quarters.local(quarters.start_of(t)).minute == 30


@given(
    st.sampled_from(
        ["America/Mexico_City", "Asia/Kolkata", "Asia/Kathmandu", "America/New_York", "UTC"]
    ),
    st.sampled_from([900, 1800, 3600]),
    st.floats(min_value=1.6e9, max_value=1.9e9),
)
def test_every_instant_has_one_interval_with_a_local_round_start(
    zone: str, seconds: int, t: float
) -> None:
    clock = IntervalClock(zone, seconds)
    start = clock.start_of(t)
    following = clock.next_start(start)
    assert start <= t < following
    assert following - start <= seconds
    local = clock.local(start)
    assert local.second == 0
    assert (local.hour * 3600 + local.minute * 60) % seconds == 0
    assert clock.start_of(following) == following


def test_daylight_saving_days_keep_quarter_hours() -> None:
    clock = IntervalClock("America/New_York", 900)
    # 2026-11-01 01:00-02:00 EDT then again EST: 25 hours of quarter hours that day.
    day = datetime(2026, 11, 1, 4, 0, tzinfo=UTC).timestamp()  # local midnight (EDT)
    starts = [int(day)]
    for _ in range(200):
        starts.append(clock.next_start(starts[-1]))
        if starts[-1] >= day + 25 * 3600:
            break
    assert starts[-1] == day + 25 * 3600
    assert len(starts) == 101
    assert all(b - a == 900 for a, b in itertools.pairwise(starts))


@given(
    st.integers(min_value=0, max_value=10**9), st.lists(st.floats(0, 1e4), min_size=1, max_size=30)
)
def test_split_is_exact_and_proportional(total: int, weights: list[float]) -> None:
    shares = split(total, weights)
    assert sum(shares) == total
    assert all(share >= 0 for share in shares)
    whole = sum(weights)
    if whole > 0:
        for share, weight in zip(shares, weights, strict=True):
            assert abs(share - total * weight / whole) <= 1 + total * 1e-9


def test_a_span_across_a_boundary_is_split_by_time(tmp_path: Path) -> None:
    with intervals(tmp_path / "meter.db") as iv:
        iv.add(Span(NOON - 10, NOON + 30, import_mwh=4000, export_mwh=40))
        assert iv.close_through(NOON - 1) == []  # no interval has ended yet
    # Reopened: the open intervals were on disk.
    with intervals(tmp_path / "meter.db") as iv:
        first = iv.close_through(NOON + 899)  # [NOON - 900, NOON) ended; [NOON, ...) not
        assert [(r.interval_start, r.import_wh, r.export_wh) for r in first] == [
            (NOON - 900, 1, 0)
        ]  # 1000 mWh and 10 mWh; the rest is carried
        second = iv.close_through(NOON + 900)
        assert [(r.interval_start, r.import_wh, r.export_wh) for r in second] == [(NOON, 3, 0)]
        assert (iv.carry_import, iv.carry_export) == (0, 40)
        assert iv.last_report == second[0]


@given(st.lists(st.integers(min_value=0, max_value=50_000), min_size=1, max_size=60))
def test_carried_rounding_never_loses_a_watt_hour(amounts: list[int]) -> None:
    with intervals(Path(":memory:")) as iv:
        measured = 0
        reported = 0
        for i, mwh in enumerate(amounts):
            start = NOON + 900 * i
            iv.add(Span(start + 100, start + 200, mwh, mwh // 3))
            [report] = iv.close_through(start + 900)
            measured += mwh
            reported += report.import_wh
            assert report.interval_start == start
            assert 0 <= measured - 1000 * reported < 1000  # behind by less than 1 Wh, never ahead
        assert 1000 * reported + iv.carry_import == measured


def test_late_energy_goes_to_the_first_open_interval(tmp_path: Path) -> None:
    with intervals(tmp_path / "meter.db") as iv:
        iv.add(Span(NOON, NOON + 10, 2000, 0))
        [closed] = iv.close_through(NOON + 900)
        assert closed.import_wh == 2
        # A counter difference for a span that is half in the closed interval.
        iv.add(Span(NOON + 850, NOON + 950, 6000, 0))
        [late] = iv.close_through(NOON + 1800)
        assert (late.interval_start, late.import_wh) == (NOON + 900, 6)


def test_intervals_without_data_are_not_reported(tmp_path: Path) -> None:
    with intervals(tmp_path / "meter.db") as iv:
        assert iv.close_through(NOON + 10_000) == []  # nothing before the first data
        iv.add(Span(NOON + 60, NOON + 61, 0, 0))  # a sample of zero power still counts
        iv.add(Span(NOON + 3 * 3600, NOON + 3 * 3600 + 5, 1000, 0))
        reports = iv.close_through(NOON + 4 * 3600)
        assert [(r.interval_start, r.import_wh) for r in reports] == [
            (NOON, 0),
            (NOON + 3 * 3600, 1),
        ]
        assert [r.interval_start for r in iv.reports()] == [NOON, NOON + 3 * 3600]
        assert iv.open_energy() == (0, 0)


def test_a_zero_length_span_lands_in_its_interval(tmp_path: Path) -> None:
    with intervals(tmp_path / "meter.db") as iv:
        iv.add(Span(NOON + 30, NOON + 30, 1500, 0))
        assert iv.open_energy() == (1500, 0)


def test_clock_rejects_lengths_that_do_not_divide_a_day() -> None:
    with pytest.raises(ValueError, match="divide a day"):
        IntervalClock("America/Mexico_City", 7 * 60)
