"""Settlement of one delivered interval: trades against metered energy, as wallet movements.

Pure: the caller passes the interval's trades (from clearing), the metered
energy of each participant (the sum of its meters' committed reports; a
missing report counts as nothing imported and nothing exported), the
interval's final backstop prices and who the supplier and the distribution
operator are. The result is a list of movements that sums to zero.

Rules (``docs/market.md`` explains them with a worked example):

* **Trades are firm for the buyer.** A buyer pays every trade in full, price
  and network fee, exactly as computed at clearing (and held since then).
* **Sellers are paid only for what they exported.** A seller's exported energy
  (capped at what it sold) is allocated to its trades in matching order. For
  the delivered part of a trade the buyer's payment goes to the seller; for the
  undelivered part it goes to the supplier, who delivered that energy instead,
  and the seller pays the supplier whatever that falls short of the supplier's
  import price for the energy (never less than nothing: a seller cannot profit
  from not delivering).
* **Everything else is the supplier's, at backstop prices.** Imports beyond
  what a participant bought are bought from the supplier at the import price;
  bought energy it did not import is sold back to the supplier at the export
  price; exports beyond what it sold are sold to the supplier at the export
  price. A participant without trades simply imports from and exports to the
  supplier: that is the household's electricity bill.
* **Money.** Each line's centavos are computed once with
  :func:`ledger_core.market.auction.cost` (rounded down) and moved from payer
  to payee, so the movements sum to zero to the centavo.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace

from ledger_core.state.market.auction import Trade, cost

# Why money moves (the ``why`` of a movement and of its wallet_change event).
P2P_ENERGY = "p2p_energy"
NETWORK_FEE = "network_fee"
SHORTFALL_COVER = "shortfall_cover"
SHORTFALL = "shortfall"
IMPORT = "import"
UNUSED = "unused"
EXPORT = "export"


@dataclass(frozen=True, slots=True)
class Metered:
    """A participant's metered energy in the interval (all its meters together)."""

    import_wh: int = 0
    export_wh: int = 0


@dataclass(frozen=True, slots=True)
class Movement:
    """A change of one wallet, in centavos, and why."""

    participant: str
    delta: int
    why: str


@dataclass(frozen=True, slots=True)
class Statement:
    """One participant's settlement of the interval: energy and the net amount (centavos)."""

    participant: str
    bought_wh: int
    sold_wh: int
    delivered_wh: int
    shortfall_wh: int
    import_wh: int
    export_wh: int
    supplier_import_wh: int
    unused_wh: int
    supplier_export_wh: int
    amount: int
    lines: Mapping[str, int]


@dataclass(frozen=True, slots=True)
class Settlement:
    """Movements (one per wallet and reason, summing to zero) and a statement per participant."""

    movements: tuple[Movement, ...]
    statements: tuple[Statement, ...]


class _Book:
    """Accumulates two-sided moves into per-(wallet, reason) deltas."""

    def __init__(self) -> None:
        self.deltas: dict[tuple[str, str], int] = {}

    def move(self, payer: str, payee: str, amount: int, why: str) -> None:
        if not amount or payer == payee:
            return
        self.deltas[payer, why] = self.deltas.get((payer, why), 0) - amount
        self.deltas[payee, why] = self.deltas.get((payee, why), 0) + amount


def settle(
    trades: Sequence[Trade],
    metered: Mapping[str, Metered],
    participants: Iterable[str],
    *,
    import_price: int,
    export_price: int,
    supplier: str,
    dso: str,
) -> Settlement:
    """Settle the interval for ``participants`` (every buyer and seller of ``trades`` is
    settled whether listed or not)."""
    book = _Book()
    bought: dict[str, int] = {}
    sold: dict[str, int] = {}
    for trade in trades:
        bought[trade.buyer] = bought.get(trade.buyer, 0) + trade.energy_wh
        sold[trade.seller] = sold.get(trade.seller, 0) + trade.energy_wh
    # Exported energy available to each seller's trades, used up in matching order.
    available = {
        seller: min(amount, metered.get(seller, Metered()).export_wh)
        for seller, amount in sold.items()
    }
    delivered: dict[str, int] = {}
    for trade in trades:
        done = min(trade.energy_wh, available[trade.seller])
        available[trade.seller] -= done
        delivered[trade.seller] = delivered.get(trade.seller, 0) + done
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

    everyone = sorted({*participants, *bought, *sold})
    drafts: list[Statement] = []
    for who in everyone:
        reading = metered.get(who, Metered())
        buys, sells = bought.get(who, 0), sold.get(who, 0)
        extra_import = max(reading.import_wh - buys, 0)
        unused = max(buys - reading.import_wh, 0)
        extra_export = max(reading.export_wh - sells, 0)
        book.move(who, supplier, cost(extra_import, import_price), IMPORT)
        book.move(supplier, who, cost(unused, export_price), UNUSED)
        book.move(supplier, who, cost(extra_export, export_price), EXPORT)
        drafts.append(
            Statement(
                participant=who,
                bought_wh=buys,
                sold_wh=sells,
                delivered_wh=delivered.get(who, 0),
                shortfall_wh=sells - delivered.get(who, 0),
                import_wh=reading.import_wh,
                export_wh=reading.export_wh,
                supplier_import_wh=extra_import,
                unused_wh=unused,
                supplier_export_wh=extra_export,
                amount=0,
                lines={},
            )
        )

    movements = tuple(
        Movement(who, delta, why) for (who, why), delta in sorted(book.deltas.items()) if delta
    )
    lines: dict[str, dict[str, int]] = {}
    for movement in movements:
        lines.setdefault(movement.participant, {})[movement.why] = movement.delta
    statements = tuple(
        replace(
            draft,
            amount=sum(lines.get(draft.participant, {}).values()),
            lines=lines.get(draft.participant, {}),
        )
        for draft in drafts
    )
    return Settlement(movements, statements)
