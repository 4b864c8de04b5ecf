"""The reading store on a real SQLite file: folding, reports, retention, ranges, bad input."""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger_core.analytics.localtime import local_midnight
from ledger_core.analytics.store import (
    Interval,
    Minute,
    ReadingError,
    ReadingStore,
    Retention,
    consumption_wh,
)

TZ = "America/Mexico_City"
T0 = 1_767_247_200  # 2026-01-01 00:00 in Mexico City (UTC-6)
DAY = 86_400


@pytest.fixture
def store(tmp_path: Path) -> Iterator[ReadingStore]:
    with ReadingStore(tmp_path / "analytics.db") as opened:
        yield opened


def test_minutes_fold_into_quarter_hours_with_rounding(store: ReadingStore) -> None:
    # 15 minutes at 100 W is 25 Wh; 7 minutes at 31 W is 217/60 = 3.6 Wh -> 4.
    store.add_minutes([Minute(T0 + 60 * i, 100, 0, 40, {"Lavadora": 20}) for i in range(15)])
    store.add_minutes([Minute(T0 + 900 + 60 * i, 31, 5, None) for i in range(7)])
    series = store.series(T0, T0 + 1800)
    assert series.import_wh.tolist() == [25.0, 4.0]
    assert series.export_wh.tolist() == [0.0, 1.0]  # 35/60 rounds to 1
    assert series.pv_wh[0] == 10.0
    assert np.isnan(series.pv_wh[1])
    assert series.minutes.tolist() == [15, 7]
    # With PV measured, import - export + PV; without it, what came from the grid.
    assert series.consumption.tolist() == [35.0, 4.0]
    assert series.production.tolist() == [10.0, 1.0]
    assert store.channel_series("Lavadora", T0, T0 + 1800)[0] == 5.0
    assert store.channels() == ["Lavadora"]


def test_an_exporting_home_without_measured_pv_never_consumes_less_than_nothing(
    store: ReadingStore,
) -> None:
    # A net meter: 40 Wh in, 217 Wh out (PV the meter does not see), then 60 Wh in, 5 Wh out
    # with PV measured at 20 Wh, then a PV meter that reads a little ahead of the grid's.
    store.add_intervals(
        [Interval(T0, 40, 217), Interval(T0 + 900, 60, 5, 20), Interval(T0 + 1800, 0, 30, 28)]
    )
    series = store.series(T0, T0 + 2700)
    assert series.consumption.tolist() == [40.0, 75.0, 0.0]
    assert series.production.tolist() == [217.0, 20.0, 28.0]
    assert consumption_wh(40, 217, None) == 40
    rows = store.history(T0, T0 + 2700, "15m", TZ)
    assert [row["consumption_wh"] for row in rows] == [40, 75, 0]


def test_a_late_minute_updates_its_quarter_hour(store: ReadingStore) -> None:
    store.add_minutes([Minute(T0, 600, 0)])
    assert store.series(T0, T0 + 900).import_wh[0] == 10.0
    store.add_minutes([Minute(T0 + 60, 600, 0)])
    assert store.series(T0, T0 + 900).import_wh[0] == 20.0
    store.add_minutes([Minute(T0, 0, 0)])  # a corrected minute replaces the old one
    assert store.series(T0, T0 + 900).import_wh[0] == 10.0


def test_meter_reports_win_over_minutes(store: ReadingStore) -> None:
    store.add_minutes([Minute(T0 + 60 * i, 400, 0) for i in range(15)])
    store.add_intervals([Interval(T0, 99, 1, None, {"Bomba": 7})])
    store.add_minutes([Minute(T0 + 60 * i, 4000, 0) for i in range(15)])
    series = store.series(T0, T0 + 900)
    assert (series.import_wh[0], series.export_wh[0], series.minutes[0]) == (99.0, 1.0, 15)
    assert store.channel_series("Bomba", T0, T0 + 900)[0] == 7.0


def test_range_queries_are_half_open_and_dense(store: ReadingStore) -> None:
    store.add_intervals([Interval(T0 + 900 * i, i, 0) for i in range(8)])
    series = store.series(T0 + 900, T0 + 3 * 900)
    assert series.t.tolist() == [T0 + 900, T0 + 1800]
    assert series.import_wh.tolist() == [1.0, 2.0]
    gap = store.series(T0 + 6 * 900, T0 + 10 * 900)
    assert gap.import_wh[:2].tolist() == [6.0, 7.0]
    assert np.isnan(gap.import_wh[2:]).all()
    assert store.series(T0, T0).t.size == 0
    rows = store.history(T0 + 900, T0 + 3 * 900, "15m", TZ)
    assert [r["start"] for r in rows] == [T0 + 900, T0 + 1800]
    assert store.first_interval() == T0
    assert store.last_interval() == T0 + 7 * 900


def test_history_groups_by_local_hour_and_day(store: ReadingStore) -> None:
    # Two local days of 1 Wh import per quarter-hour and 2 Wh of PV by day.
    rows = [
        Interval(T0 + 900 * i, 1, 0, 2 if 40 <= i % 96 < 72 else 0, {"Bomba": 1})
        for i in range(2 * 96)
    ]
    store.add_intervals(rows)
    hours = store.history(T0, T0 + 2 * DAY, "1h", TZ)
    assert len(hours) == 48
    assert hours[0]["start"] == T0
    assert hours[0]["import_wh"] == 4
    assert hours[0]["intervals"] == 4
    assert hours[12]["pv_wh"] == 8
    assert hours[12]["consumption_wh"] == 12
    days = store.history(T0, T0 + 2 * DAY, "1d", TZ)
    assert [d["start"] for d in days] == [T0, T0 + DAY]
    assert days[0]["import_wh"] == 96
    assert days[0]["pv_wh"] == 64
    assert days[0]["appliances"] == {"Bomba": 96}
    with pytest.raises(ValueError, match="resolution"):
        store.history(T0, T0 + DAY, "5m", TZ)  # type: ignore[arg-type]


def test_retention_ladder(tmp_path: Path) -> None:
    assert Retention() == Retention(minute_days=14, interval_days=1096)
    path = tmp_path / "analytics.db"
    now = T0 + 12 * 3600  # midday
    with ReadingStore(path, Retention(minute_days=2, interval_days=10)) as store:
        # Fifteen days of quarter-hours (from a report), then four days of minutes.
        start = T0 - 15 * DAY
        store.add_intervals(
            Interval(start + 900 * i, 10, 1, 3, {"Refrigerador": 2}) for i in range(11 * 96)
        )
        store.add_minutes(
            Minute(T0 - 4 * DAY + 60 * i, 60, 0, None, {"Bomba": 30}) for i in range(4 * 1440)
        )
        total_before = sum(int(r["import_wh"]) for r in store.history(start, now, "1d", TZ))  # type: ignore[call-overload]
        done = store.compact(now, TZ)
        assert done.minutes_removed == 2 * (2 * 1440 + 720)  # minutes and the pump's channel
        cut = local_midnight(now - 10 * DAY, TZ)
        assert cut == T0 - 10 * DAY
        assert done.intervals_removed == 5 * 96
        assert done.days_written == 5
        assert store.count("minute") == 1440 + 720
        assert store.first_interval() == cut
        assert done.bytes_after < 0.8 * done.bytes_before  # freed pages went back
        days = store.history(start, now, "1d", TZ)
        assert sum(int(r["import_wh"]) for r in days) == total_before  # type: ignore[call-overload]
        first = days[0]
        assert (first["start"], first["import_wh"], first["pv_wh"], first["intervals"]) == (
            start,
            960,
            288,
            96,
        )
        assert first["appliances"] == {"Refrigerador": 192}
        # The quarter-hours of dropped minutes stay.
        assert store.series(T0 - 4 * DAY, T0 - 4 * DAY + 900).import_wh[0] == 15.0
        assert store.channel_series("Bomba", T0 - 4 * DAY, T0 - 4 * DAY + 900)[0] == 8.0
        again = store.compact(now, TZ)
        assert (again.minutes_removed, again.intervals_removed, again.days_written) == (0, 0, 0)
    with ReadingStore(path) as reopened:
        assert reopened.count("day") == 5
        assert reopened.count("minute") == 1440 + 720


def test_schema_version_is_checked(tmp_path: Path) -> None:
    path = tmp_path / "analytics.db"
    ReadingStore(path).close()
    with contextlib.closing(sqlite3.connect(path)) as db, db:
        db.execute("UPDATE meta SET value = '99' WHERE key = 'schema'")
    with pytest.raises(ValueError, match="schema 99"):
        ReadingStore(path)


@pytest.mark.parametrize(
    ("row", "field"),
    [
        (Minute(T0 + 1, 0, 0), "minutes[1].t"),
        (Minute(-60, 0, 0), "minutes[1].t"),
        (Minute(T0, -1, 0), "minutes[1].import_w"),
        (Minute(T0, 0, 2_000_000), "minutes[1].export_w"),
        (Minute(T0, 0, 0, -5), "minutes[1].pv_w"),
        (Minute(T0, True, 0), "minutes[1].import_w"),  # noqa: FBT003
        (Minute(T0, 1.5, 0), "minutes[1].import_w"),  # type: ignore[arg-type]
        (Minute(T0, 0, 0, None, {"bad\nname": 1}), "minutes[1].channels"),
        (Minute(T0, 0, 0, None, {"": 1}), "minutes[1].channels"),
        (Minute(T0, 0, 0, None, {"Lavadora": -1}), "minutes[1].channels.Lavadora"),
    ],
)
def test_bad_minutes_are_refused_whole(store: ReadingStore, row: Minute, field: str) -> None:
    with pytest.raises(ReadingError) as caught:
        store.add_minutes([Minute(T0 + 600, 1, 0), row])
    assert caught.value.field == field
    assert store.count("minute") == 0
    assert store.count("interval") == 0


def test_bad_intervals_and_temperatures(store: ReadingStore) -> None:
    with pytest.raises(ReadingError) as caught:
        store.add_intervals([Interval(T0 + 60, 1, 1)])
    assert caught.value.field == "intervals[0].t"
    with pytest.raises(ReadingError) as caught:
        store.add_intervals([Interval(T0, 1, 300_000)])
    assert caught.value.field == "intervals[0].export_wh"
    for value, message in ((float("nan"), "finite"), (80.0, "between"), ("20", "finite")):
        with pytest.raises(ReadingError, match=message):
            store.add_temperatures([(T0, value)])  # type: ignore[list-item]
    assert store.add_temperatures([(T0, 21.34), (T0 + 900, -3.0)]) == 2
    assert store.temperatures(T0, T0 + 1800) == {T0: 21.3, T0 + 900: -3.0}
    assert store.series(T0, T0 + 900).temperature[0] == pytest.approx(21.3)
    with pytest.raises(ValueError, match="minute_days"):
        Retention(minute_days=0)
    with pytest.raises(ValueError, match="interval_days"):
        Retention(minute_days=1, interval_days=40_000)
    assert store.add_minutes([]) == 0
    assert store.add_intervals([]) == 0


@settings(max_examples=40)
@given(
    st.lists(
        st.tuples(
            st.integers(0, 3 * 96 * 15 - 1),
            st.integers(0, 20_000),
            st.integers(0, 5_000),
        ),
        min_size=1,
        max_size=60,
        unique_by=lambda row: row[0],
    )
)
def test_quarter_hours_and_days_add_up(
    tmp_path_factory: pytest.TempPathFactory, rows: list[tuple[int, int, int]]
) -> None:
    """Every resolution shows the same energy: minute sums rounded per quarter-hour."""
    path = tmp_path_factory.mktemp("store") / "analytics.db"
    with ReadingStore(path) as store:
        store.add_minutes(Minute(T0 + 60 * m, imp, exp) for m, imp, exp in rows)
        expected: dict[int, tuple[int, int]] = {}
        for m, imp, exp in rows:
            slot = (m // 15) * 900 + T0
            a, b = expected.get(slot, (0, 0))
            expected[slot] = (a + imp, b + exp)
        quarter = store.history(T0, T0 + 3 * DAY, "15m", TZ)
        assert {r["start"]: (r["import_wh"], r["export_wh"]) for r in quarter} == {
            slot: ((a + 30) // 60, (b + 30) // 60) for slot, (a, b) in expected.items()
        }
        day_total = sum(int(r["import_wh"]) for r in store.history(T0, T0 + 3 * DAY, "1d", TZ))  # type: ignore[call-overload]
        hour_total = sum(int(r["import_wh"]) for r in store.history(T0, T0 + 3 * DAY, "1h", TZ))  # type: ignore[call-overload]
        assert day_total == hour_total == sum(int(r["import_wh"]) for r in quarter)  # type: ignore[call-overload]
