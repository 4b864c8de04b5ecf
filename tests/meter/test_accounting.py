"""Energy accounting over a real SQLite file: exact integrals, gaps, counters, restarts."""

from __future__ import annotations

import contextlib
import json
import math
import sqlite3
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ledger_core.clock import utc
from ledger_core.meter.accounting import Accountant, trapezoid
from ledger_core.meter.reading import MeterDataError, PhaseReading, Reading, check_number
from ledger_core.meter.store import MeterStore, MeterStoreError
from tests.meter.helpers import NOON

METER = "tv" + "ab" * 20
CHAIN = "transactiva-test-1"


def reading(
    t: float,
    power: float | None = None,
    phases: tuple[float, ...] = (),
    imported: float | None = None,
    exported: float | None = None,
) -> Reading:
    items = tuple(PhaseReading(i + 1, power=p) for i, p in enumerate(phases))
    net = power if power is not None else (math.fsum(phases) if phases else None)
    return Reading(utc(t), items, net, "test", None, imported, exported)


@contextlib.contextmanager
def accountant(path: Path, **kw: float) -> Iterator[Accountant]:
    store = MeterStore(path, METER, CHAIN)
    try:
        yield Accountant(store, **kw)
    finally:
        store.close()


def net(acc: Accountant) -> tuple[int, int]:
    counter = acc.counters["net"]
    return counter.import_mwh, counter.export_mwh


def test_constant_power_integrates_exactly(tmp_path: Path) -> None:
    with accountant(tmp_path / "meter.db") as acc:
        for i in range(3601):
            acc.add(reading(NOON + i, phases=(600.0, 400.0, 0.0)))
        assert net(acc) == (1_000_000, 0)  # 1 kWh in mWh
        assert acc.counters["1"].import_mwh == 600_000
        assert acc.counters["2"].import_mwh == 400_000
        assert acc.counters["3"].import_mwh == 0
        assert acc.gaps == 0
    # Half-second samples of a constant export: the same exactness.
    with accountant(tmp_path / "export.db") as acc:
        for i in range(1801):
            acc.add(reading(NOON + i / 2, power=-250.0))
        assert net(acc) == (0, 62_500)


def test_a_zero_crossing_is_split_into_import_and_export(tmp_path: Path) -> None:
    with accountant(tmp_path / "meter.db") as acc:
        spans = acc.add(reading(NOON, power=1800.0))
        assert spans == []  # the first sample only starts the integral
        spans = acc.add(reading(NOON + 4, power=-1800.0))
        # A triangle either side of the crossing: 1800 W * 2 s / 2 = 1800 W s = 500 mWh.
        assert net(acc) == (500, 500)
        assert [(s.start, s.end, s.import_mwh, s.export_mwh) for s in spans] == [
            (NOON, NOON + 4, 500, 500)
        ]


def test_net_and_per_phase_counters_differ_when_phases_offset(tmp_path: Path) -> None:
    with accountant(tmp_path / "meter.db") as acc:
        for i in range(0, 3601, 2):
            acc.add(reading(NOON + i, phases=(-1000.0, 1000.0, 0.0)))
        assert net(acc) == (0, 0)  # balanced: what a billing meter sees
        assert acc.counters["1"].export_mwh == 1_000_000
        assert acc.counters["2"].import_mwh == 1_000_000


def test_a_gap_is_counted_and_not_integrated(tmp_path: Path) -> None:
    with accountant(tmp_path / "meter.db", max_gap=30.0) as acc:
        acc.add(reading(NOON, power=3600.0))
        acc.add(reading(NOON + 10, power=3600.0))  # 10 Wh
        assert acc.add(reading(NOON + 100, power=3600.0)) == []  # 90 s without data
        acc.add(reading(NOON + 110, power=3600.0))  # 10 Wh more
        assert net(acc) == (20_000, 0)
        assert acc.gaps == 1
        assert acc.gap_seconds == 90
        # The same sample twice, and a clock that goes back, add nothing.
        acc.add(reading(NOON + 110, power=3600.0))
        acc.add(reading(NOON + 50, power=3600.0))
        assert net(acc) == (20_000, 0)
        acc.add(reading(NOON + 60, power=3600.0))  # integrates from the re-based sample
        assert net(acc) == (30_000, 0)


def test_a_restart_loses_nothing(tmp_path: Path) -> None:
    path = tmp_path / "meter.db"
    with accountant(path) as acc:
        for i in range(0, 1801, 3):
            acc.add(reading(NOON + i, phases=(500.0, 250.0, -100.0)))
    # The node restarts within max_gap; the file has the last sample.
    with accountant(path) as acc:
        for i in range(1805, 3601, 5):
            acc.add(reading(NOON + i, phases=(500.0, 250.0, -100.0)))
        assert net(acc) == (650_000, 0)
        assert acc.counters["3"].export_mwh == 100_000
    with contextlib.closing(sqlite3.connect(path)) as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        stored = db.execute("SELECT import_mwh FROM counters WHERE channel = 'net'").fetchone()
        assert stored == (650_000,)


def test_lifetime_counters_are_preferred_and_resets_handled(tmp_path: Path) -> None:
    path = tmp_path / "meter.db"
    with accountant(path) as acc:
        acc.add(reading(NOON, power=1000.0))
        acc.add(reading(NOON + 10, power=1000.0))  # power integration: 2777.78 mWh
        before = net(acc)
        assert before == (2777, 0)
        acc.add(reading(NOON + 20, power=1000.0, imported=5000.0, exported=100.0))  # baseline
        assert acc.counter_driven("import")
        assert acc.counter_driven("export")
        acc.add(reading(NOON + 30, power=9000.0))  # power no longer drives net
        assert net(acc) == before
        spans = acc.add(reading(NOON + 80, power=1000.0, imported=5012.5, exported=100.25))
        assert net(acc) == (before[0] + 12_500, 250)
        assert any(s.start == NOON + 20 and s.import_mwh == 12_500 for s in spans)
        # The counter goes down: a reset (the device was replaced). Nothing is subtracted.
        acc.add(reading(NOON + 140, imported=3.0, exported=0.0))
        assert acc.resets == 2
        assert net(acc) == (before[0] + 12_500, 250)
        acc.add(reading(NOON + 200, imported=4.0, exported=0.5))
        assert net(acc) == (before[0] + 13_500, 750)
        # A jump no home could draw in a minute is not believed.
        acc.add(reading(NOON + 260, imported=4.0 + 1e7))
        assert acc.resets == 3
        assert net(acc) == (before[0] + 13_500, 750)
        assert acc.counters["1"].import_mwh == 0  # phases come only from phase readings
    # The node was off for an hour; the device's counters kept counting.
    with accountant(path) as acc:
        acc.add(reading(NOON + 3860, imported=4.0 + 1e7 + 800.0))
        assert net(acc)[0] == before[0] + 13_500 + 800_000


def test_readings_are_aware_and_values_checked() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        Reading(datetime(2026, 3, 10, 12), (), 0.0, "test")
    assert reading(NOON, phases=(1.0,)).phase(2) is None
    with pytest.raises(MeterDataError, match="too large"):
        check_number(10**400, "power", -1, 1)


def test_the_file_belongs_to_one_meter_and_chain(tmp_path: Path) -> None:
    path = tmp_path / "meter.db"
    MeterStore(path, METER, CHAIN).close()
    with pytest.raises(MeterStoreError, match="belongs to meter"):
        MeterStore(path, "tv" + "cd" * 20, CHAIN)
    with pytest.raises(MeterStoreError, match="belongs to meter"):
        MeterStore(path, METER, "another-chain")
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"this is not a database at all" * 100)
    with pytest.raises(MeterStoreError, match=r"junk\.db"):
        MeterStore(junk, METER, CHAIN)


def test_a_file_of_the_version_that_reported_readings_in_the_clear_is_refused(
    tmp_path: Path,
) -> None:
    """Its outbox holds reports with the energy in them, for a chain that must start anew."""
    path = tmp_path / "meter.db"
    old = sqlite3.connect(path)
    old.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)")
    identity = json.dumps({"chain_id": CHAIN, "meter": METER, "schema": 1}, sort_keys=True)
    old.execute("INSERT INTO meta VALUES ('identity', ?)", (identity,))
    old.commit()
    old.close()
    with pytest.raises(MeterStoreError, match=r"older version \(schema 1\).*new one"):
        MeterStore(path, METER, CHAIN)
    # Nothing was added to it.
    with contextlib.closing(sqlite3.connect(path)) as db:
        tables = db.execute("SELECT name FROM sqlite_master").fetchall()
    assert tables == [("meta",), ("sqlite_autoindex_meta_1",)]


def test_a_failed_write_rolls_back_everything(tmp_path: Path) -> None:
    with accountant(tmp_path / "meter.db") as acc:
        acc.add(reading(NOON, power=100.0))

        def crash() -> None:
            with acc.store.transaction() as db:
                db.execute("UPDATE counters SET import_mwh = 99")
                raise RuntimeError("crash inside the transaction")

        with pytest.raises(RuntimeError):
            crash()
        assert acc.store.db.execute("SELECT MAX(import_mwh) FROM counters").fetchone() == (0,)


powers = st.floats(min_value=-20_000, max_value=20_000, allow_nan=False)


@given(powers, powers, st.floats(min_value=0, max_value=60))
def test_trapezoid_parts_are_positive_and_conserve_the_integral(
    p0: float, p1: float, seconds: float
) -> None:
    imported, exported = trapezoid(p0, p1, seconds)
    assert imported >= 0
    assert exported >= 0
    assert imported - exported == pytest.approx((p0 + p1) / 2 * seconds, abs=1e-6)
    if min(p0, p1) >= 0:
        assert exported == 0
    if max(p0, p1) <= 0:
        assert imported == 0


steps = st.lists(
    st.tuples(
        st.floats(min_value=-5, max_value=90),  # seconds since the previous sample
        powers,
        st.one_of(st.none(), st.floats(min_value=0, max_value=1e6)),  # a lifetime counter
    ),
    min_size=1,
    max_size=40,
)


@given(steps)
def test_counters_never_go_backwards_and_conserve_energy(samples: list[tuple]) -> None:  # type: ignore[type-arg]
    # Pure logic: an in-memory database keeps hundreds of examples fast.
    with accountant(Path(":memory:")) as acc:
        t = NOON
        expected = 0.0  # import minus export of the power-driven net channel, W s
        previous: float | None = None
        last_counts = (0, 0, 0, 0)
        for dt, power, counter in samples:
            t += dt
            acc.add(reading(t, phases=(power, -power / 2, 0.0), imported=counter))
            if previous is not None and 0 < t - previous[0] <= acc.max_gap:
                expected += (previous[1] + power / 2) / 2 * (t - previous[0])
            if previous is None or t != previous[0]:
                previous = (t, power / 2)
            counts = (
                acc.counters["net"].import_mwh,
                acc.counters["net"].export_mwh,
                acc.counters["1"].import_mwh,
                acc.counters["1"].export_mwh,
            )
            assert all(now >= before for now, before in zip(counts, last_counts, strict=True))
            last_counts = counts
        exported = acc.counters["net"].export_wh * 3600
        if not acc.counter_driven("import"):
            imported = acc.counters["net"].import_wh * 3600
            assert imported - exported == pytest.approx(
                expected, abs=1e-3 * 3600 + 1e-6 * abs(expected)
            )
