"""A node's start-up time and resident memory as its chain ages: days of a neighbourhood.

    .venv/bin/python -m bench.startup [--days 14] [--at 1,4,7,10,14] [--meters 500]
                                      [--traders 40] [--runs 3] [--quick]

One chain in a temporary folder (real SQLite file) lives through ``--days`` local days
of a neighbourhood of ``--meters`` homes, each with a meter, generated as fast as the
node commits them (the clock is the benchmark's, so nothing waits for real time), all
signed, submitted and committed in blocks through the node as a real chain gets them:

* each day, the ISO's price signal for every quarter-hour (four price levels);
* every hour, ``--traders`` homes trade one quarter-hour: half sell 500 Wh, half buy
  400 Wh; the interval clears at its gate, and the DSO delivers it once it is due;
* every meter's report of every quarter-hour (a commitment to its reading), in blocks
  of up to 4,000 every two hours: 96 per meter per day;
* once a day is over and the settlement delay more, the DSO bills every home's day,
  citing its 96 reports, with lines computed as the concentrator computes them.

After each day in ``--at`` the node is closed and, ``--runs`` times, a new Python
process opens the folder as the ``transactiva node`` process does (its modules, the
storage, the state machine restored from the committed state with the garbage collector
paused, then tuned) and reports how long that took from its own start and its resident
memory once ready. The table also gives the longest a block took to produce (execute,
commit, store) since the checkpoint before: a block of 4,000 reports, of a day's 500
bills, or one that takes 2,000 records of a closed day out of the live state.

Records of a closed day leave the live state (docs/market.md), so from the day the first
day closes (``bill_deadline_seconds`` after it, and the settlement delay) the live state,
the start-up and the memory stay flat while the history and the database grow.
``--quick``: 100 meters, 6 days, 2 runs.
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
from ledger_core.state import keys
from ledger_core.state.machine import StateMachine
from ledger_core.types.codec import Value
from ledger_core.types.crypto import SigningKey
from ledger_core.types.genesis import Genesis, Operator, Params, Validator
from ledger_core.types.metering import IntervalUse, bill_lines, commitment, delivered
from ledger_core.types.tx import Tx, TxType, sign

CHAIN = "bench-startup"
FIRST_DAY = 1_773_208_800  # a local midnight (UTC-6)
DAY = 86400
INTERVAL = 900
PER_DAY = DAY // INTERVAL
BLOCK = 4000
PRICE_LEVELS = (18_000, 22_000, 31_000, 26_000)  # night, morning, peak, evening


def _key(i: int) -> SigningKey:
    return SigningKey.from_seed(i.to_bytes(32, "big"))


def genesis() -> Genesis:
    """The chain every run of this benchmark builds (the child rebuilds it)."""
    return Genesis(
        chain_id=CHAIN,
        genesis_time=FIRST_DAY - DAY,
        operators=(Operator(_key(1).public_key, ("ISO", "SUPPLIER", "DSO")),),
        validators=(Validator(_key(2).public_key, 1),),
        params=Params(max_block_txs=5000),
    )


def _prices(start: int) -> tuple[int, int]:
    """An interval's import and export prices (the signal's network fee is 3,000)."""
    level = PRICE_LEVELS[min((start - FIRST_DAY) % DAY // 3600 // 6, 3)]
    return level, level // 3


class Neighbourhood:
    """The chain being generated, and what its homes and operators know of it."""

    def __init__(self, folder: Path, meters: int, traders: int) -> None:
        self.folder = folder
        self.now = float(FIRST_DAY - DAY + 60)
        self.node = self.open()
        self.operator = _key(1)
        self.homes = [_key(100 + i) for i in range(meters)]
        self.home_index = {home.address: i for i, home in enumerate(self.homes)}
        self.meters = [_key(100_000 + i) for i in range(meters)]
        self.traders = min(traders, meters) // 2 * 2
        self.nonces: dict[str, int] = {}
        self.undelivered: list[int] = []
        self.slowest = 0.0  # the longest block production since the last checkpoint, s

    def open(self) -> Node:
        return Node(
            genesis(),
            _key(2),
            open_storage(self.folder, genesis()),
            clock=lambda: self.now,
            app_factory=StateMachine.restore,
        )

    def reopen(self) -> None:
        self.node.close()
        self.node = self.open()

    def tx(self, signer: SigningKey, tx_type: TxType, body: dict[str, Value]) -> Tx:
        nonce = self.nonces.get(signer.address, 0) + 1
        self.nonces[signer.address] = nonce
        return sign(signer, CHAIN, tx_type, nonce, body)

    def block(self) -> None:
        started = time.perf_counter()
        self.node.produce_block()
        self.slowest = max(self.slowest, time.perf_counter() - started)

    def at(self, when: int) -> None:
        """A block at ``when`` (the mempool then checks at that time)."""
        self.now = max(self.now, float(when))
        self.block()

    def commit(self, txs: list[Tx]) -> None:
        for first in range(0, len(txs), BLOCK):
            for tx in txs[first : first + BLOCK]:
                result = self.node.submit(tx.wire())
                assert result.accepted, (tx.type, result)
            self.block()

    def reading(self, i: int, start: int) -> tuple[int, int]:
        """Home ``i``'s import and export (Wh) in an interval: sellers export what they
        sold in traded intervals."""
        if self.traded(start) and i < self.traders // 2:
            return 0, 600
        return 100 + (i * 7 + start // INTERVAL) % 50, 0

    @staticmethod
    def traded(start: int) -> bool:
        return (start - FIRST_DAY) % 3600 == 1800

    def setup(self) -> None:
        txs = []
        for home, meter in zip(self.homes, self.meters, strict=True):
            txs.append(
                self.tx(
                    self.operator,
                    TxType.REGISTER,
                    {"public_key": home.public_key.hex(), "role": "prosumer"},
                )
            )
            txs.append(
                self.tx(
                    self.operator,
                    TxType.BIND_METER,
                    {"meter_public_key": meter.public_key.hex(), "participant": home.address},
                )
            )
        self.commit(txs)
        requests = [  # enough for the bills and the purchases of the run
            self.tx(home, TxType.DEPOSIT_REQUEST, {"amount": 10_000_000, "reference": "spei"})
            for home in self.homes
        ]
        self.commit(requests)
        self.commit(
            [self.tx(self.operator, TxType.DEPOSIT_CONFIRM, {"request": r.id}) for r in requests]
        )

    def day(self, first: int) -> None:
        """Generate the local day starting at ``first`` (and bill the day before)."""
        self.at(first + 1)
        txs = []
        for t in range(first, first + DAY, INTERVAL):
            import_price, export_price = _prices(t)
            signal: dict[str, Value] = {
                "interval_start": t,
                "import_price": import_price,
                "export_price": export_price,
                "network_fee": 3_000,
            }
            txs.append(self.tx(self.operator, TxType.PRICE_SIGNAL, signal))
        half = self.traders // 2
        for start in range(first + 1800, first + DAY, 3600):
            for i in range(self.traders):
                side, energy, limit = ("sell", 500, 5_000) if i < half else ("buy", 400, 40_000)
                body: dict[str, Value] = {
                    "interval_start": start,
                    "side": side,
                    "energy_wh": energy,
                    "limit_price": limit,
                }
                txs.append(self.tx(self.homes[i], TxType.ORDER, body))
            self.undelivered.append(start)
        self.commit(txs)
        self.at(first + 2700 + 1)  # the day before's last traded interval is due
        self.deliver()
        if first > FIRST_DAY:
            self.at(first + 3600 + 1)
            self.bill(first - DAY)
        for chunk in range(first, first + DAY, 2 * 3600):
            self.at(chunk + 2 * 3600 + 1)
            self.commit(
                [
                    self.report(i, start)
                    for start in range(chunk, chunk + 2 * 3600, INTERVAL)
                    for i in range(len(self.meters))
                ]
            )
            self.deliver()

    def report(self, i: int, start: int) -> Tx:
        import_wh, export_wh = self.reading(i, start)
        meter = self.meters[i]
        salt = (i * 1_000_003 + start).to_bytes(32, "big")
        value = commitment(
            CHAIN, meter.address, start, import_wh=import_wh, export_wh=export_wh, salt=salt
        )
        return self.tx(meter, TxType.REPORT, {"interval_start": start, "commitment": value})

    def _trades(self, start: int) -> list[dict[str, Value]]:
        record = self.node.committed.get(keys.interval(start))
        assert isinstance(record, dict), start
        count = record.get("trades", 0)
        assert isinstance(count, int)
        found = []
        for index in range(count):
            trade = self.node.committed.get(keys.trade(start, index))
            assert isinstance(trade, dict)
            found.append(trade)
        return found

    def deliver(self) -> None:
        """The DSO's delivery of every traded interval now due."""
        txs, waiting = [], []
        for start in self.undelivered:
            record = self.node.committed.get(keys.interval(start))
            if not isinstance(record, dict) or record.get("settlement") != "awaiting_delivery":
                if start + INTERVAL + 3600 > self.now:
                    waiting.append(start)
                continue
            sold: dict[str, int] = {}
            for trade in self._trades(start):
                seller, energy = str(trade["seller"]), trade["energy_wh"]
                assert isinstance(energy, int)
                sold[seller] = sold.get(seller, 0) + energy
            sellers: list[Value] = [
                {
                    "participant": seller,
                    "delivered_wh": delivered(
                        self.reading(self.home_index[seller], start)[1], sold[seller]
                    ),
                    "meters": [self.meters[self.home_index[seller]].address],
                }
                for seller in sorted(sold)
            ]
            body: dict[str, Value] = {"interval_start": start, "sellers": sellers}
            txs.append(self.tx(self.operator, TxType.DELIVERY, body))
        self.undelivered = waiting
        if txs:
            self.commit(txs)

    def bill(self, day: int) -> None:
        """The DSO's bill of every home's ``day``."""
        traded: dict[int, list[dict[str, Value]]] = {
            start: self._trades(start) for start in range(day + 1800, day + DAY, 3600)
        }
        txs = []
        for i, home in enumerate(self.homes):
            uses = []
            for start in range(day, day + DAY, INTERVAL):
                import_wh, export_wh = self.reading(i, start)
                trades = traded.get(start, [])
                bought = sum(int(str(t["energy_wh"])) for t in trades if t["buyer"] == home.address)
                sold = sum(int(str(t["energy_wh"])) for t in trades if t["seller"] == home.address)
                uses.append(IntervalUse(start, import_wh, export_wh, bought, sold, *_prices(start)))
            body: dict[str, Value] = {
                "participant": home.address,
                "day": day,
                "reports": [
                    {
                        "meter": self.meters[i].address,
                        "intervals": list(range(day, day + DAY, INTERVAL)),
                    }
                ],
                "lines": [line.to_json() for line in bill_lines(uses)],
            }
            txs.append(self.tx(self.operator, TxType.BILL, body))
        self.commit(txs)


def child(folder: Path, started: float) -> None:
    """Open the folder as the node process does; print seconds and RSS as JSON."""
    import ledger_core.serve  # noqa: F401, PLC0415 - what a node process imports
    from ledger_core.node.memory import collection_paused, tune_gc  # noqa: PLC0415

    imported = time.time()
    with collection_paused():
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


def _rows(folder: Path) -> tuple[int, int, float]:
    """Rows of the live state and of the history, and the database's size, MiB."""
    with sqlite3.connect(folder / "ledger.db") as db:
        (live,) = db.execute("SELECT COUNT(*) FROM state").fetchone()
        (history,) = db.execute("SELECT COUNT(*) FROM history").fetchone()
    size = sum(p.stat().st_size for p in folder.iterdir() if p.name.startswith("ledger.db"))
    return int(live), int(history), size / 2**20


def main() -> None:
    """Generate the days, measure at each checkpoint, print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=14)
    parser.add_argument("--at", default="1,4,7,10,14", help="days measured after, comma-separated")
    parser.add_argument("--meters", type=int, default=500)
    parser.add_argument("--traders", type=int, default=40, help="homes trading each hour")
    parser.add_argument("--runs", type=int, default=3, help="start-ups measured per checkpoint")
    parser.add_argument("--quick", action="store_true", help="100 meters, 6 days, 2 runs")
    parser.add_argument("--child", nargs=2, metavar=("DIR", "STARTED"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(Path(args.child[0]), float(args.child[1]))
        return
    if args.quick:
        args.meters, args.days, args.at, args.runs = 100, 6, "1,3,6", 2
    checkpoints = {int(d) for d in args.at.split(",") if int(d) <= args.days} | {args.days}
    before = header("A node's start-up as its chain ages")
    params = genesis().params
    print(
        f"{args.meters} homes: a report per meter per {INTERVAL} s interval, {args.traders} "
        "traders an hour, prices, deliveries and daily bills; a day's records leave the live "
        f"state {(params.day_closes(0) - DAY) / 3600:.0f} h after it ends "
        "(bill_deadline_seconds and the settlement delay). Start-up: median of "
        f"{args.runs} new processes, from the process's start to the node ready\n"
    )
    table: list[tuple[int, int, int, int, float, float, float, float, float, float]] = []
    with tempfile.TemporaryDirectory(prefix="bench-startup-") as tmp:
        hood = Neighbourhood(Path(tmp), args.meters, args.traders)
        hood.setup()
        generated = time.perf_counter()
        for number in range(1, args.days + 1):
            hood.day(FIRST_DAY + (number - 1) * DAY)
            if number not in checkpoints:
                continue
            elapsed = time.perf_counter() - generated
            height = hood.node.height
            hood.node.close()
            live, history, mib = _rows(Path(tmp))
            seconds, loading, rss = _measure(Path(tmp), args.runs)
            load = os.getloadavg()[0]
            table.append(
                (number, height, live, history, mib, hood.slowest, seconds, loading, rss, load)
            )
            hood.slowest = 0.0
            print(f"  day {number}: generated in {elapsed:.0f} s so far", file=sys.stderr)
            hood.node = hood.open()
        # Every bill was committed, not only accepted by the mempool: a refused one would
        # leave a day of reports in the live state and flatter nothing.
        bills = hood.node.committed.range("bill/", "", "~", 1 << 30)
        assert len(bills) == len(hood.homes) * (args.days - 1), len(bills)
        hood.node.close()
    print(
        "| day | height | live state | history | ledger.db | slowest block | start-up "
        "| of it loading | RSS | load (1 min) |"
    )
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for number, height, live, history, mib, slowest, seconds, loading, rss, load in table:
        print(
            f"| {number} | {height:,} | {live:,} | {history:,} | {mib:.0f} MiB | {slowest:.2f} s "
            f"| {seconds:.2f} s | {loading:.2f} s | {rss:.0f} MiB | {load:.1f} |"
        )
    footer(before)


if __name__ == "__main__":
    main()
