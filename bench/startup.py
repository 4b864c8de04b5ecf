"""A node's start-up time and resident memory against the size of its committed state.

    .venv/bin/python -m bench.startup [--reports 0,20000,100000] [--meters 500] [--runs 3]
                                      [--quick]

For each size: a fresh chain in a temporary folder (real SQLite file) with ``--meters``
participants, each with a meter, and that many interval reports (signed, submitted and
committed in blocks of 5,000 through the node, as a real chain gets them: one report per
meter per quarter-hour). Then, ``--runs`` times, a new Python process opens the folder as
the ``transactiva node`` process does (its modules, the storage, the state machine restored
from the committed state, the garbage collector tuned) and reports how long that took from
its own start and its resident memory (RSS) once ready. The extrapolation to a year of a
500-home neighbourhood (17.5 million reports, 35,040 intervals) is the slope between the two
largest sizes (of the loading: importing costs the same at every size), so it says what the
state's growth costs with the code as it is: every report stays in the live state and all
of it is loaded at start-up (issue 19's first goal is that it does not).
``--quick``: 0 and 20,000 reports, 2 runs.
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.common import footer, header, rss_mib
from ledger_core.node.host import Node
from ledger_core.node.storage import open_storage
from ledger_core.state.machine import StateMachine
from ledger_core.types.codec import Value
from ledger_core.types.crypto import SigningKey
from ledger_core.types.genesis import Genesis, Operator, Params, Validator
from ledger_core.types.metering import commitment
from ledger_core.types.tx import Tx, TxType, sign

CHAIN = "bench-startup"
START = 1_773_165_600  # a multiple of 900 s
INTERVAL = 900
YEAR_REPORTS = 500 * 96 * 365  # 500 meters, one report per quarter-hour


def _key(i: int) -> SigningKey:
    return SigningKey.from_seed(i.to_bytes(32, "big"))


def genesis() -> Genesis:
    """The chain every run of this benchmark builds (the child rebuilds it)."""
    return Genesis(
        chain_id=CHAIN,
        genesis_time=START - 86400,
        operators=(Operator(_key(1).public_key, ("ISO", "SUPPLIER", "DSO")),),
        validators=(Validator(_key(2).public_key, 1),),
        params=Params(max_block_txs=5000),
    )


def build(folder: Path, meters_count: int, reports: int) -> None:
    """Commit ``meters_count`` participants with meters and ``reports`` reports."""
    clock = [float(START)]
    node = Node(
        genesis(),
        _key(2),
        open_storage(folder, genesis()),
        clock=lambda: clock[0],
        app_factory=StateMachine.restore,
    )
    operator = _key(1)
    meters = [_key(100_000 + i) for i in range(meters_count)]
    nonce = 0
    for i, meter in enumerate(meters):
        person = _key(100 + i)
        nonce += 1
        body: dict[str, Value] = {"public_key": person.public_key.hex(), "role": "prosumer"}
        assert node.submit(sign(operator, CHAIN, TxType.REGISTER, nonce, body).wire()).accepted
        nonce += 1
        body = {"meter_public_key": meter.public_key.hex(), "participant": person.address}
        assert node.submit(sign(operator, CHAIN, TxType.BIND_METER, nonce, body).wire()).accepted
    node.produce_block()
    pending: list[Tx] = []
    for i in range(reports):
        meter, interval = meters[i % meters_count], i // meters_count
        start = START + interval * INTERVAL
        salt = i.to_bytes(32, "big")
        report: dict[str, Value] = {
            "interval_start": start,
            "commitment": commitment(
                CHAIN, meter.address, start, import_wh=120, export_wh=40, salt=salt
            ),
        }
        pending.append(sign(meter, CHAIN, TxType.REPORT, 1 + interval, report))
        if len(pending) == 5000 or i == reports - 1:
            # A block whose time is past every pending report's interval: the mempool
            # checks at the last block's time.
            clock[0] = max(clock[0], start + INTERVAL + 1)
            node.produce_block()
            for tx in pending:
                result = node.submit(tx.wire())
                assert result.accepted, result
            node.produce_block()
            pending = []
    node.close()


def child(folder: Path, started: float) -> None:
    """Open the folder as the node process does; print seconds and RSS as JSON."""
    import ledger_core.serve  # noqa: F401, PLC0415 - what a node process imports
    from ledger_core.node.memory import tune_gc  # noqa: PLC0415

    imported = time.time()
    node = Node(
        genesis(),
        _key(2),
        open_storage(folder, genesis()),
        app_factory=StateMachine.restore,
    )
    tune_gc()
    ready = time.time()
    print(
        json.dumps(
            {
                "seconds": ready - started,
                "loading": ready - imported,
                "rss": rss_mib(),
                "height": node.height,
            }
        )
    )
    node.close()


def _measure(folder: Path, runs: int) -> tuple[float, float, float]:
    """Median start-up seconds (process start to ready), of which loading, and RSS MiB."""
    seconds, loading, rss = [], [], []
    for _ in range(runs):
        started = time.time()
        command = [sys.executable, "-m", "bench.startup", "--child", str(folder), str(started)]
        out = subprocess.run(command, check=True, capture_output=True, text=True, timeout=600)  # noqa: S603
        figures = json.loads(out.stdout.strip().splitlines()[-1])
        seconds.append(figures["seconds"])
        loading.append(figures["loading"])
        rss.append(figures["rss"])
    return statistics.median(seconds), statistics.median(loading), statistics.median(rss)


def _state_rows(folder: Path) -> tuple[int, float]:
    """Rows of the committed state and the database's size, MiB."""
    database = folder / "ledger.db"
    with sqlite3.connect(database) as db:
        (rows,) = db.execute("SELECT COUNT(*) FROM state").fetchone()
    size = sum(p.stat().st_size for p in folder.iterdir() if p.name.startswith("ledger.db"))
    return int(rows), size / 2**20


def main() -> None:
    """Build each size, measure, print the table and the extrapolation."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reports", default="0,20000,100000", help="sizes, comma-separated")
    parser.add_argument("--meters", type=int, default=500)
    parser.add_argument("--runs", type=int, default=3, help="start-ups measured per size")
    parser.add_argument("--quick", action="store_true", help="0 and 20,000 reports, 2 runs")
    parser.add_argument("--child", nargs=2, metavar=("DIR", "STARTED"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(Path(args.child[0]), float(args.child[1]))
        return
    if args.quick:
        args.reports, args.runs = "0,20000", 2
    sizes = [int(s) for s in args.reports.split(",")]
    before = header("A node's start-up against its state")
    print(
        f"{args.meters} meters, one report per meter per {INTERVAL} s interval; start-up: "
        f"median of {args.runs} new processes, from the process's start to the node ready "
        "(its modules imported, the state loaded, the garbage collector tuned)\n"
    )
    rows: list[tuple[int, int, float, float, float, float, float]] = []
    for size in sizes:
        with tempfile.TemporaryDirectory(prefix="bench-startup-") as tmp:
            folder = Path(tmp)
            build_started = time.perf_counter()
            build(folder, args.meters, size)
            built = time.perf_counter() - build_started
            entries, mib = _state_rows(folder)
            seconds, loading, rss = _measure(folder, args.runs)
            load = os.getloadavg()[0]
            rows.append((size, entries, mib, seconds, loading, rss, load))
            print(f"  built {size:,} reports in {built:.0f} s", file=sys.stderr)
    print("| reports | state entries | ledger.db | start-up | of it loading | RSS | load (1 min) |")
    print("|---:|---:|---:|---:|---:|---:|---:|")
    for size, entries, mib, seconds, loading, rss, load in rows:
        print(
            f"| {size:,} | {entries:,} | {mib:.0f} MiB | {seconds:.2f} s | {loading:.2f} s | "
            f"{rss:.0f} MiB | {load:.1f} |"
        )
    if len(rows) >= 2:
        # The slope of loading (imports cost the same at every size and vary with the load).
        (_, e0, _, _, l0, r0, _), (_, e1, _, s1, l1, r1, _) = rows[-2], rows[-1]
        per_second, per_mib = (l1 - l0) / (e1 - e0), (r1 - r0) / (e1 - e0)
        year = YEAR_REPORTS * (e1 - e0) / max(1, rows[-1][0] - rows[-2][0])
        print(
            f"\nper state entry: {per_second * 1e6:.1f} µs of loading, {per_mib * 1024:.2f} KiB "
            f"resident. A year of 500 homes ({YEAR_REPORTS:,} reports, about {year:,.0f} state "
            f"entries) at that slope: start-up {s1 + per_second * (year - e1):,.0f} s, "
            f"RSS {(r1 + per_mib * (year - e1)) / 1024:,.1f} GiB (goal: < 5 s, < 300 MiB)"
        )
    footer(before)


if __name__ == "__main__":
    main()
