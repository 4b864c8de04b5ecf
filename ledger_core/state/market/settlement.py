"""Settlement of delivered energy, as wallet movements: an interval's trades, and a day's bill.

Pure. Meter readings never reach the state machine (docs/privacy.md): the
concentrator computes, from the readings it holds, how much of what each
seller sold it delivered in an interval, and each participant's energy with
the supplier over a day, per pair of prices; the state machine checks those
inputs (:mod:`.metered`) and this module turns them into money. Each part's
movements sum to zero.

Rules (``docs/market.md`` explains them with a worked example):

* **Trades are firm for the buyer** (:func:`settle_trades`). A buyer pays every
  trade in full, price and network fee, exactly as computed at clearing (and
  held since then).
* **Sellers are paid only for what they delivered.** A seller's delivered
  energy (at most what it sold) is allocated to its trades in matching order.
  For the delivered part of a trade the buyer's payment goes to the seller; for
  the undelivered part it goes to the supplier, who delivered that energy
  instead, and the seller pays the supplier whatever that falls short of the
  supplier's import price for the energy (never less than nothing: a seller
  cannot profit from not delivering).
* **Everything else is the supplier's, at backstop prices** (:func:`settle_bill`),
  billed per day: imports beyond what a participant bought are bought from the
  supplier at the import price; bought energy it did not import is sold back to
  the supplier at the export price; exports beyond what it sold are sold to the
  supplier at the export price. Each line of a bill is one pair of prices, and
  its energy is the day's total at those prices: a participant without trades
  simply imports from and exports to the supplier, and that is its electricity
  bill.
* **Money.** Each line's centavos are computed once with
  :func:`ledger_core.state.market.auction.cost` (rounded down) and moved from
  payer to payee, so the movements sum to zero to the centavo.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import NamedTuple

from ledger_core.state.market.auction import Trade, cost
from ledger_core.types.metering import BillLine

# Why money moves (the ``why`` of a movement and of its wallet_change event).
P2P_ENERGY = "p2p_energy"
NETWORK_FEE = "network_fee"
SHORTFALL_COVER = "shortfall_cover"
SHORTFALL = "shortfall"
IMPORT = "import"
UNUSED = "unused"
EXPORT = "export"


class Movement(NamedTuple):
    """A change of one wallet, in centavos, and why. (Movements and statements are named
    tuples, as trades are: a settlement builds thousands.)"""

    participant: str
    delta: int
    why: str


class Statement(NamedTuple):
    """One participant's settlement of an interval's trades: energy and the net amount."""

    participant: str
    bought_wh: int
    sold_wh: int
    delivered_wh: int
    shortfall_wh: int
    amount: int
    lines: Mapping[str, int]


@dataclass(frozen=True, slots=True)
class Settlement:
    """Movements (one per wallet and reason, summing to zero) and a statement per trader."""

    movements: tuple[Movement, ...]
    statements: tuple[Statement, ...]


@dataclass(frozen=True, slots=True)
class Bill:
    """A participant's day with the supplier: movements summing to zero, its amount and
    energies (Wh), and the amount by reason."""

    movements: tuple[Movement, ...]
    amount: int
    import_wh: int
    unused_wh: int
    export_wh: int
    lines: Mapping[str, int]


class _Book:
    """Accumulates two-sided moves into per-(wallet, reason) deltas."""

    def __init__(self) -> None:
        self.deltas: dict[tuple[str, str], int] = {}

    def move(self, payer: str, payee: str, amount: int, why: str) -> None:
        if not amount or payer == payee:
            return
        self.deltas[payer, why] = self.deltas.get((payer, why), 0) - amount
        self.deltas[payee, why] = self.deltas.get((payee, why), 0) + amount

    def movements(self) -> tuple[Movement, ...]:
        return tuple(
            Movement(who, delta, why) for (who, why), delta in sorted(self.deltas.items()) if delta
        )


def _lines(movements: Iterable[Movement]) -> dict[str, dict[str, int]]:
    lines: dict[str, dict[str, int]] = {}
    for movement in movements:
        lines.setdefault(movement.participant, {})[movement.why] = movement.delta
    return lines


def settle_trades(
    trades: Sequence[Trade],
    delivered: Mapping[str, int],
    *,
    import_price: int,
    supplier: str,
    dso: str,
) -> Settlement:
    """Settle an interval's trades, given what each seller delivered (a seller missing from
    ``delivered`` delivered nothing; more than it sold counts as what it sold)."""
    book = _Book()
    bought: dict[str, int] = {}
    sold: dict[str, int] = {}
    for trade in trades:
        bought[trade.buyer] = bought.get(trade.buyer, 0) + trade.energy_wh
        sold[trade.seller] = sold.get(trade.seller, 0) + trade.energy_wh
    # Delivered energy available to each seller's trades, used up in matching order.
    available = {seller: min(amount, delivered.get(seller, 0)) for seller, amount in sold.items()}
    allocated: dict[str, int] = {}
    for trade in trades:
        done = min(trade.energy_wh, available[trade.seller])
        available[trade.seller] -= done
        allocated[trade.seller] = allocated.get(trade.seller, 0) + done
        paid = cost(done, trade.price)
        book.move(trade.buyer, trade.seller, paid, P2P_ENERGY)
        book.move(trade.buyer, dso, trade.fee, NETWORK_FEE)
        covered = trade.payment - paid
        book.move(trade.buyer, supplier, covered, SHORTFALL_COVER)
        missing = trade.energy_wh - done
        if missing:
            book.move(
                trade.seller, supplier, max(cost(missing, import_price) - covered, 0), SHORTFALL
            )
    movements = book.movements()
    lines = _lines(movements)
    statements = tuple(
        Statement(
            participant=who,
            bought_wh=bought.get(who, 0),
            sold_wh=sold.get(who, 0),
            delivered_wh=allocated.get(who, 0),
            shortfall_wh=sold.get(who, 0) - allocated.get(who, 0),
            amount=sum(lines.get(who, {}).values()),
            lines=lines.get(who, {}),
        )
        for who in sorted({*bought, *sold})
    )
    return Settlement(movements, statements)


def settle_bill(participant: str, lines: Sequence[BillLine], *, supplier: str) -> Bill:
    """A participant's energy with the supplier over a day, one line per pair of prices."""
    book = _Book()
    for line in lines:
        book.move(participant, supplier, cost(line.import_wh, line.import_price), IMPORT)
        book.move(supplier, participant, cost(line.unused_wh, line.export_price), UNUSED)
        book.move(supplier, participant, cost(line.export_wh, line.export_price), EXPORT)
    movements = book.movements()
    own = _lines(movements).get(participant, {})
    return Bill(
        movements=movements,
        amount=sum(own.values()),
        import_wh=sum(line.import_wh for line in lines),
        unused_wh=sum(line.unused_wh for line in lines),
        export_wh=sum(line.export_wh for line in lines),
        lines=own,
    )
