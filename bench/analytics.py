"""Analytics benchmark: storage size and speed, model fit and forecast time and memory.

    .venv/bin/python -m bench.analytics            # --repeat N

One home, simulated by ``ledger_core.analytics.synthetic`` (3 kWp PV, four
appliances with their own sensor), stored in a real SQLite file in a
temporary folder:

- *storage*: the file size for a year of 15-minute rows (with and without the
  appliance channels and temperatures), for the 14 days of minute rows the
  retention keeps, and the steady state the ladder converges to; the time to
  store one minute as a meter does (one transaction per minute) and to compact;
- *models*: in a fresh process (so memory is the home's, not the benchmark's),
  a year of 15-minute rows is read from the store, then both models are fitted
  and a 48-hour forecast made, ``--repeat`` times: wall and CPU time (median,
  best, worst), the peak of memory allocated during one fit and forecast
  (``tracemalloc``, numpy included), and the process's resident memory before
  and at its peak. Importing numpy, pandas and pvlib is reported separately:
  it is paid once per process, not per fit.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path
from typing import Any

MIB = 1024 * 1024


def _rss_mib() -> float:
    with Path("/proc/self/status").open(encoding="ascii") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def _peak_rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def child(path: str, repeat: int) -> None:
    """Measure fit + forecast on the store at ``path``; print JSON."""
    rss_start = _rss_mib()
    began = time.perf_counter()
    import numpy as np  # noqa: PLC0415

    from ledger_core.analytics.forecast import fit_home  # noqa: PLC0415
    from ledger_core.analytics.localtime import Site  # noqa: PLC0415
    from ledger_core.analytics.store import ReadingStore  # noqa: PLC0415

    import_seconds = time.perf_counter() - began
    rss_imported = _rss_mib()
    site = Site()
    with ReadingStore(Path(path)) as store:
        last = store.last_interval()
        assert last is not None
        end = last + 900
        read_began = time.perf_counter()
        history = store.series(end - 365 * 86_400, end)
        read_seconds = time.perf_counter() - read_began
    recent_start = history.t.size - 36 * 96
    # Warm up on three weeks: lazy imports, the turbidity table, zoneinfo and
    # holiday caches are paid once per process, not per fit.
    few = type(history)(
        *(
            a[-21 * 96 :]
            for a in (
                history.t,
                history.import_wh,
                history.export_wh,
                history.pv_wh,
                history.temperature,
                history.minutes,
            )
        )
    )
    fit_home(few, site).forecast(few, end, 192)
    rss_loaded = _rss_mib()
    walls, cpus = [], []
    for i in range(repeat + 1):
        wall, cpu = time.perf_counter(), time.process_time()
        model = fit_home(history, site)
        recent = type(history)(
            *(
                a[recent_start:]
                for a in (
                    history.t,
                    history.import_wh,
                    history.export_wh,
                    history.pv_wh,
                    history.temperature,
                    history.minutes,
                )
            )
        )
        forecast = model.forecast(recent, end, 192)
        if i:  # the first run warms caches (turbidity table, zoneinfo)
            walls.append(time.perf_counter() - wall)
            cpus.append(time.process_time() - cpu)
    assert forecast.start.size == 192
    assert np.isfinite(forecast.consumption.p50).all()
    tracemalloc.start()
    model = fit_home(history, site)
    model.forecast(recent, end, 192)
    _, traced_peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    print(
        json.dumps(
            {
                "rows": int(history.t.size),
                "import_seconds": import_seconds,
                "read_seconds": read_seconds,
                "rss_start": rss_start,
                "rss_imported": rss_imported,
                "rss_loaded": rss_loaded,
                "rss_peak": _peak_rss_mib(),
                "traced_peak_mib": traced_peak / MIB,
                "wall": walls,
                "cpu": cpus,
            }
        )
    )


def _size(store_path: Path) -> float:
    from ledger_core.analytics.store import ReadingStore  # noqa: PLC0415

    with ReadingStore(store_path) as store:
        return store.size_bytes() / MIB


def storage(folder: Path) -> tuple[list[tuple[str, str]], Path]:
    """Sizes and speeds of the store; the path of the year-long store for the models."""
    from ledger_core.analytics.store import Interval, ReadingStore  # noqa: PLC0415
    from ledger_core.analytics.synthetic import simulate  # noqa: PLC0415

    rows: list[tuple[str, str]] = []
    home = simulate(dt.date(2025, 1, 1), 365, seed=1)
    intervals = home.interval_rows()
    temperatures = [
        (int(t), float(c)) for t, c in zip(home.interval_times, home.temperature, strict=True)
    ]
    year = folder / "year.db"
    with ReadingStore(year) as store:
        began = time.perf_counter()
        store.add_intervals(intervals)
        store.add_temperatures(temperatures)
        load_seconds = time.perf_counter() - began
    bare = folder / "bare.db"
    with ReadingStore(bare) as store:
        store.add_intervals(Interval(r.t, r.import_wh, r.export_wh, r.pv_wh) for r in intervals)
    rows.append(("a year of 15-minute rows: import, export, PV", f"{_size(bare):.2f} MiB"))
    rows.append(
        (
            "  + 4 appliance channels and temperature",
            f"{_size(year):.2f} MiB (written in {load_seconds:.1f} s)",
        )
    )
    minutes_home = simulate(dt.date(2025, 3, 1), 14, seed=2)
    minutes = folder / "minutes.db"
    with ReadingStore(minutes) as store:
        store.add_minutes(minutes_home.minute_rows())
    rows.append(
        (
            "14 days of minute rows with 4 channels (and their quarter-hours)",
            f"{_size(minutes):.2f} MiB",
        )
    )
    steady = 3 * _size(year) + _size(minutes)
    rows.append(
        (
            "steady state: 3 years of quarter-hours + 14 days of minutes (+ day rows)",
            f"{steady:.1f} MiB",
        )
    )
    live = folder / "live.db"
    with ReadingStore(live) as store:
        one_by_one = minutes_home.minute_rows(0, 1000)
        began = time.perf_counter()
        for minute in one_by_one:
            store.add_minutes([minute])
        per_minute = (time.perf_counter() - began) / len(one_by_one)
    rows.append(
        (
            "store one minute (4 channels; one transaction, refolds its quarter-hour)",
            f"{per_minute * 1000:.2f} ms",
        )
    )
    with ReadingStore(year) as store:
        began = time.perf_counter()
        done = store.compact(
            intervals[-1].t + 900 + 1096 * 86_400 - 180 * 86_400, "America/Mexico_City"
        )
        seconds = time.perf_counter() - began
    rows.append(
        (
            f"compact: {done.intervals_removed:,} quarter-hours into {done.days_written} day rows",
            f"{seconds:.2f} s, {done.bytes_before / MIB:.2f} -> {done.bytes_after / MIB:.2f} MiB",
        )
    )
    # A fresh year for the model measurement (the compaction above removed half of it).
    model_store = folder / "model.db"
    with ReadingStore(model_store) as store:
        store.add_intervals(intervals)
        store.add_temperatures(temperatures)
    return rows, model_store


def _models_table(m: dict[str, Any]) -> str:
    walls, cpus = m["wall"], m["cpu"]

    def spread(values: list[float]) -> str:
        median, best, worst = statistics.median(values), min(values), max(values)
        return f"{median:.2f} s | {best:.2f} s | {worst:.2f} s"

    growth = m["rss_peak"] - m["rss_loaded"]
    lines = [
        f"\nModels: one home, {m['rows']:,} quarter-hours (a year); fit both, forecast 48 h\n",
        "| measurement | median | best | worst | target |",
        "|---|---:|---:|---:|---:|",
        f"| wall time | {spread(walls)} | < 2 s |",
        f"| CPU time | {spread(cpus)} | |",
        f"| allocated at peak (tracemalloc) | {m['traced_peak_mib']:.0f} MiB | | | < 100 MiB |",
        f"| resident: peak - before the first fit | {growth:.0f} MiB | | | < 100 MiB |",
        "",
        (
            f"Once per process: imports (numpy, pandas, pvlib) {m['import_seconds']:.2f} s,"
            f" resident {m['rss_start']:.0f} -> {m['rss_imported']:.0f} MiB;"
        ),
        (
            f"reading the year from SQLite {m['read_seconds']:.2f} s and a warm-up fit on three"
            f" weeks -> {m['rss_loaded']:.0f} MiB; process peak {m['rss_peak']:.0f} MiB;"
        ),
        f"{len(walls)} runs after one warm-up.",
    ]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.analytics")
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.child, args.repeat)
        return 0
    with tempfile.TemporaryDirectory() as folder:
        rows, model_store = storage(Path(folder))
        env = dict(os.environ, PYTHONPATH=str(Path.cwd()))
        result = subprocess.run(  # noqa: S603 - our own interpreter and module
            [
                sys.executable,
                "-m",
                "bench.analytics",
                "--child",
                str(model_store),
                "--repeat",
                str(args.repeat),
            ],
            capture_output=True,
            text=True,
            check=True,
            env=env,
        )
    measured = json.loads(result.stdout)
    print("Storage (one home, SQLite file in a temporary folder)\n")
    width = max(len(name) for name, _ in rows)
    for name, value in rows:
        print(f"  {name:<{width}}  {value}")
    print(_models_table(measured))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
