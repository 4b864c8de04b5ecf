"""Market test helpers: blocks at chosen times with their end-of-block events, the worked
example of docs/market.md as a chain, and the concentrator's settlement inputs.

Reports carry commitments; the chain keeps their openings as the concentrator would
(:meth:`tests.state.chain.Chain.report`), and :func:`delivery` and :func:`bill`
compute the concentrator's inputs from them with the same pure functions the
concentrator uses (:mod:`ledger_core.types.metering`).
"""

from __future__ import annotations

from dataclasses import dataclass

from ledger_core.state.kernel import Overlay
from ledger_core.state.market.books import backstop_at
from ledger_core.types import codec
from ledger_core.types.abci import BlockContext, TxResult
from ledger_core.types.crypto import SigningKey
from ledger_core.types.metering import IntervalUse, bill_lines, delivered
from ledger_core.types.tx import Tx, TxType
from tests.state.chain import START, Chain

type Event = dict[str, codec.Value]

INTERVAL = 900
T = START + 3600  # 13:00 local; a multiple of 900
DAY = START - 12 * 3600  # local midnight that began T's day
BILL_AT = DAY + 86400 + 3600  # the day is over, and the settlement delay
PRICES = {"import_price": 25_000, "export_price": 9_000, "network_fee": 3_000}


def run(chain: Chain, when: int, *txs: Tx) -> tuple[list[TxResult], list[Event]]:
    """Execute and commit one block at time ``when``: the results and the end-of-block events."""
    assert when >= chain.time
    chain.time = when
    chain.app.begin_block(BlockContext(chain.app.height + 1, when))
    results = [chain.app.deliver_tx(tx) for tx in txs]
    events = list(chain.app.end_block())
    chain.app.commit()
    return results, events


def run_ok(chain: Chain, when: int, *txs: Tx) -> tuple[list[TxResult], list[Event]]:
    """:func:`run`, every transaction must succeed."""
    results, events = run(chain, when, *txs)
    for tx, result in zip(txs, results, strict=True):
        assert result.ok, (tx.type, result.code, result.message)
    return results, events


def order(
    chain: Chain, who: SigningKey, side: str, energy_wh: int, limit_price: int, start: int = T
) -> Tx:
    return chain.tx(
        who,
        TxType.ORDER,
        interval_start=start,
        side=side,
        energy_wh=energy_wh,
        limit_price=limit_price,
    )


def report(chain: Chain, meter: SigningKey, import_wh: int, export_wh: int, start: int = T) -> Tx:
    return chain.report(meter, start, import_wh, export_wh)


def _owner(chain: Chain, meter: str) -> str:
    account = chain.app.state[f"acct/{meter}"]
    assert isinstance(account, dict)
    return str(account["owner"])


def _trades(chain: Chain, start: int) -> list[dict[str, codec.Value]]:
    found = chain.app.state.get(f"market/{start:012d}")
    count = found.get("trades", 0) if isinstance(found, dict) else 0
    assert isinstance(count, int)
    return [record(chain, f"trade/{start:012d}/{k:08d}") for k in range(count)]


def delivery(chain: Chain, start: int = T) -> Tx:
    """The concentrator's delivery of interval ``start``: each seller's export (its meters'
    committed reports it holds openings of), up to what it sold."""
    sold: dict[str, int] = {}
    for trade in _trades(chain, start):
        seller, energy = str(trade["seller"]), trade["energy_wh"]
        assert isinstance(energy, int)
        sold[seller] = sold.get(seller, 0) + energy
    sellers: list[codec.Value] = []
    for seller in sorted(sold):
        meters = sorted(
            meter
            for meter, t in chain.openings
            if t == start
            and _owner(chain, meter) == seller
            and f"report/{meter}/{start:012d}" in chain.app.state
        )
        export = sum(chain.openings[m, start].export_wh for m in meters)
        sellers.append(
            {
                "participant": seller,
                "delivered_wh": delivered(export, sold[seller]),
                "meters": list[codec.Value](meters),
            }
        )
    return chain.tx(chain.dso, TxType.DELIVERY, interval_start=start, sellers=sellers)


def bill(chain: Chain, who: SigningKey | str, day: int = DAY) -> Tx:
    """The concentrator's bill of ``who`` for the local ``day``: every committed report of its
    meters in the day, not billed yet, that it holds an opening of."""
    address = who if isinstance(who, str) else who.address
    state = chain.app.state
    cited: dict[str, list[int]] = {}
    for meter, start in sorted(chain.openings):
        report_record = state.get(f"report/{meter}/{start:012d}")
        if (
            day <= start < day + 86400
            and _owner(chain, meter) == address
            and isinstance(report_record, dict)
            and "billed" not in report_record
        ):
            cited.setdefault(meter, []).append(start)
    uses = []
    for start in sorted({t for starts in cited.values() for t in starts}):
        imported = sum(chain.openings[m, start].import_wh for m in cited if start in cited[m])
        exported = sum(chain.openings[m, start].export_wh for m in cited if start in cited[m])
        bought = sum(
            int(str(t["energy_wh"])) for t in _trades(chain, start) if t["buyer"] == address
        )
        sold = sum(
            int(str(t["energy_wh"])) for t in _trades(chain, start) if t["seller"] == address
        )
        prices = backstop_at(chain.app.chain, Overlay(state), start)
        assert prices is not None, start
        uses.append(
            IntervalUse(
                start, imported, exported, bought, sold, prices.import_price, prices.export_price
            )
        )
    return chain.tx(
        chain.dso,
        TxType.BILL,
        participant=address,
        day=day,
        reports=[
            {"meter": meter, "intervals": list[codec.Value](starts)}
            for meter, starts in sorted(cited.items())
        ],
        lines=[line.to_json() for line in bill_lines(uses)],
    )


def price(chain: Chain, start: int = T, **changes: int) -> Tx:
    return chain.tx(chain.iso, TxType.PRICE_SIGNAL, interval_start=start, **{**PRICES, **changes})


def value(chain: Chain, key: str) -> codec.Value:
    return chain.app.state.get(key)


def number(chain: Chain, key: str) -> int:
    found = chain.app.state.get(key, 0)
    assert isinstance(found, int)
    return found


def record(chain: Chain, key: str) -> dict[str, codec.Value]:
    found = chain.app.state.get(key)
    assert isinstance(found, dict), key
    return found


def money_is_conserved(chain: Chain) -> None:
    """Balances and holds never negative; balances + holds - debts = deposits - withdrawals."""
    state = chain.app.state
    total = 0
    for key, amount in state.items():
        if key.startswith(("bal/", "held/")):
            assert isinstance(amount, int)
            assert amount >= 0, key
            total += amount
        elif key.startswith("debt/"):
            assert isinstance(amount, int)
            assert amount > 0, key
            total -= amount
    assert total == number(chain, "total/deposits") - number(chain, "total/withdrawals")


@dataclass
class Example:
    """The worked example of docs/market.md, up to (not including) clearing."""

    chain: Chain
    ana: SigningKey
    beto: SigningKey
    carla: SigningKey
    diego: SigningKey
    elena: SigningKey
    meters: dict[str, SigningKey]
    orders: dict[str, Tx]


def worked_example(chain: Chain | None = None) -> Example:
    """Five households, prices for ``T``, two offers and two bids placed before ``T``."""
    chain = chain or Chain()
    people = {name: chain.register(name) for name in ("ana", "beto", "carla", "diego", "elena")}
    meters = {name: chain.bind_meter(key, f"meter-{name}") for name, key in people.items()}
    chain.fund(people["carla"], 1_000)
    chain.fund(people["diego"], 1_000)
    chain.fund(people["elena"], 100)
    run_ok(chain, chain.time + 5, price(chain))
    orders = {
        "ana": order(chain, people["ana"], "sell", 2_000, 10_000),
        "beto": order(chain, people["beto"], "sell", 1_234, 15_000),
        "carla": order(chain, people["carla"], "buy", 1_500, 24_000),
        "diego": order(chain, people["diego"], "buy", 2_000, 30_000),
    }
    run_ok(chain, chain.time + 5, *orders.values())
    return Example(chain, **people, meters=meters, orders=orders)
