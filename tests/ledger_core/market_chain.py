"""Market test helpers: blocks at chosen times with their end-of-block events, and the worked
example of docs/market.md as a chain."""

from __future__ import annotations

from dataclasses import dataclass

from ledger_core.types import codec
from ledger_core.types.abci import BlockContext, TxResult
from ledger_core.types.crypto import SigningKey
from ledger_core.types.tx import Tx, TxType
from tests.ledger_core.chain import START, Chain

type Event = dict[str, codec.Value]

INTERVAL = 900
T = START + 3600  # 13:00 local; a multiple of 900
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
    return chain.tx(
        meter, TxType.REPORT, interval_start=start, import_wh=import_wh, export_wh=export_wh
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
