"""The double auction of one delivery interval: a pure function of its orders and backstop prices.

Units are the ledger's: energy in Wh, prices in 10^-4 MXN/kWh, money in
centavos, all integers. Nothing here reads state, a clock or randomness, so
every node computes the same trades from the same orders.

Rules (``docs/market.md`` has them with a worked example):

* **Merit order.** Bids are served highest limit first, offers lowest limit
  first; equal limits go by arrival (``sequence``, the order's position in the
  chain), then by order id.
* **The backstop bounds peer-to-peer prices.** For matching, a bid's limit is
  capped at the supplier's ``import_price`` (nobody pays a peer more than the
  tariff, fee included) and an offer's limit is raised to the supplier's
  ``export_price`` (nobody sells to a peer for less than the supplier pays).
* **The network fee.** On energy traded between peers the buyer pays the
  distribution operator ``network_fee`` per kWh on top of the price, so a bid
  and an offer match when ``min(bid, import_price) - network_fee >=
  max(offer, export_price)``: no buyer pays more than its limit including the
  fee, and every matched unit stays within the backstop band.
* **Volume.** Matching walks both books in merit order and trades as much as
  it can, with partial fills, until the next bid and offer no longer match.
* **Price.** Uniform (pay-as-clear): every trade is at the midpoint of the
  marginal (last matched) bid, net of the fee and capped as above, and the
  marginal offer, raised as above; rounded down to a whole price unit. It lies
  between the two, so it satisfies every matched order. Pay-as-bid: each
  trade is at its bid's net (capped) limit.
* **Backstop fills.** What is left of a bid whose limit is at least the import
  price is served by the supplier at the import price; what is left of an offer
  whose limit is at most the export price is bought by the supplier at the
  export price. The rest of an order goes unfilled.
* **Money.** The centavos for ``e`` Wh at ``p`` are ``floor(e * p / 100000)``
  (:func:`cost`), computed once per trade for the seller's payment and once for
  the fee; the buyer pays exactly their sum. Since ``floor(a) + floor(b) <=
  floor(a + b)``, a buyer never pays more than ``cost(e, limit)``, and since
  ``cost`` grows with the price, a seller never gets less than
  ``cost(e, limit)``. Rounding never creates money: every centavo a buyer pays
  is a centavo the seller or the operator receives.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from operator import attrgetter
from typing import Final, NamedTuple

from ledger_core.types.tx import Side

WH_PRICE_PER_CENTAVO: Final = 100_000
"""Wh x (10^-4 MXN/kWh) per centavo: 1000 Wh per kWh x 10^4 x 1/100 MXN per centavo."""


class Pricing(StrEnum):
    """How matched trades are priced."""

    UNIFORM = "uniform"
    PAY_AS_BID = "pay_as_bid"


def cost(energy_wh: int, price: int) -> int:
    """Centavos for ``energy_wh`` at ``price`` (10^-4 MXN/kWh), rounded down (toward -inf)."""
    return energy_wh * price // WH_PRICE_PER_CENTAVO


class Order(NamedTuple):
    """A limit order for one interval. ``sequence`` is its arrival position (time priority).
    (A named tuple, as trades are: a clearing reads thousands.)"""

    id: str
    participant: str
    side: Side
    energy_wh: int
    limit_price: int
    sequence: int


@dataclass(frozen=True, slots=True)
class Backstop:
    """The supplier's prices for the interval and the distribution operator's fee."""

    import_price: int
    export_price: int
    network_fee: int


class Trade(NamedTuple):
    """Energy from one offer to one bid. ``payment`` goes to the seller, ``fee`` to the
    distribution operator; the buyer pays both (centavos). (A named tuple: clearing
    builds thousands, and tuples are built fastest.)"""

    buy_order: str
    sell_order: str
    buyer: str
    seller: str
    energy_wh: int
    price: int
    payment: int
    fee: int

    @property
    def total(self) -> int:
        """What the buyer pays for this trade, fee included."""
        return self.payment + self.fee


class Fill(NamedTuple):
    """How much of an order traded with peers and how much the supplier takes or serves."""

    traded_wh: int
    backstop_wh: int


@dataclass(frozen=True, slots=True)
class ClearingResult:
    """The outcome of :func:`clear`.

    ``price`` is the uniform price (None in pay-as-bid or without trades);
    ``trades`` are in matching order; ``fills`` has every order's id.
    """

    pricing: Pricing
    backstop: Backstop
    price: int | None
    volume_wh: int
    trades: tuple[Trade, ...]
    fills: Mapping[str, Fill]
    bids: int
    offers: int
    demand_wh: int
    supply_wh: int
    supplier_sold_wh: int
    supplier_bought_wh: int


# Named tuples built straight from a tuple, without their Python-level __new__: clearing
# builds one per order and per trade, and this halves the cost.
_new: Final = tuple.__new__
_ID, _SEQUENCE, _LIMIT = attrgetter("id"), attrgetter("sequence"), attrgetter("limit_price")


def _merit_order(orders: list[Order], *, descending: bool) -> None:
    """Sort by limit (highest first for bids), then sequence, then id: three stable sorts
    on C-level keys, faster than one sort on Python-built tuples."""
    orders.sort(key=_ID)
    orders.sort(key=_SEQUENCE)
    orders.sort(key=_LIMIT, reverse=descending)  # reverse=True keeps equal keys in order


def clear(
    orders: Iterable[Order], backstop: Backstop, pricing: Pricing = Pricing.UNIFORM
) -> ClearingResult:
    """Match the orders of one interval; ValueError for an order that cannot be matched
    (energy below 1 Wh, or an id used twice)."""
    bids: list[Order] = []
    offers: list[Order] = []
    seen: set[str] = set()
    for order in orders:
        if order.energy_wh < 1:
            raise ValueError(f"order {order.id}: energy_wh must be at least 1")
        if order.id in seen:
            raise ValueError(f"order {order.id} appears twice")
        seen.add(order.id)
        (bids if order.side is Side.BUY else offers).append(order)
    _merit_order(bids, descending=True)
    _merit_order(offers, descending=False)
    matches = _match(bids, offers, backstop)

    import_price, export_price, fee = (
        backstop.import_price,
        backstop.export_price,
        backstop.network_fee,
    )
    price: int | None = None
    if matches and pricing is Pricing.UNIFORM:
        last_bid, last_offer, _ = matches[-1]
        marginal_net = min(bids[last_bid].limit_price, import_price) - fee
        marginal_ask = max(offers[last_offer].limit_price, export_price)
        price = (marginal_net + marginal_ask) // 2

    bid_traded = [0] * len(bids)
    offer_traded = [0] * len(offers)
    trades: list[Trade] = []
    for bi, oi, quantity in matches:
        bid, offer = bids[bi], offers[oi]
        at = price if price is not None else min(bid.limit_price, import_price) - fee
        trades.append(
            _new(
                Trade,
                (
                    bid.id,
                    offer.id,
                    bid.participant,
                    offer.participant,
                    quantity,
                    at,
                    quantity * at // WH_PRICE_PER_CENTAVO,
                    quantity * fee // WH_PRICE_PER_CENTAVO,
                ),
            )
        )
        bid_traded[bi] += quantity
        offer_traded[oi] += quantity

    fills: dict[str, Fill] = {}
    supplier_sold = supplier_bought = 0
    for bid, done in zip(bids, bid_traded, strict=True):
        rest = bid.energy_wh - done if bid.limit_price >= import_price else 0
        fills[bid.id] = _new(Fill, (done, rest))
        supplier_sold += rest
    for offer, done in zip(offers, offer_traded, strict=True):
        rest = offer.energy_wh - done if offer.limit_price <= export_price else 0
        fills[offer.id] = _new(Fill, (done, rest))
        supplier_bought += rest
    return ClearingResult(
        pricing=pricing,
        backstop=backstop,
        price=price,
        volume_wh=sum(bid_traded),
        trades=tuple(trades),
        fills=fills,
        bids=len(bids),
        offers=len(offers),
        demand_wh=sum(o.energy_wh for o in bids),
        supply_wh=sum(o.energy_wh for o in offers),
        supplier_sold_wh=supplier_sold,
        supplier_bought_wh=supplier_bought,
    )


def _match(
    bids: list[Order], offers: list[Order], backstop: Backstop
) -> list[tuple[int, int, int]]:
    """(bid index, offer index, energy) in merit order, as long as bid and offer match."""
    import_price, export_price, fee = (
        backstop.import_price,
        backstop.export_price,
        backstop.network_fee,
    )
    matches: list[tuple[int, int, int]] = []
    n_bids, n_offers = len(bids), len(offers)
    i = j = 0
    bid_left = bids[0].energy_wh if bids else 0
    offer_left = offers[0].energy_wh if offers else 0
    while i < n_bids and j < n_offers:
        net = min(bids[i].limit_price, import_price) - fee
        ask = max(offers[j].limit_price, export_price)
        if net < ask:
            break
        quantity = min(bid_left, offer_left)
        matches.append((i, j, quantity))
        bid_left -= quantity
        offer_left -= quantity
        if not bid_left:
            i += 1
            bid_left = bids[i].energy_wh if i < n_bids else 0
        if not offer_left:
            j += 1
            offer_left = offers[j].energy_wh if j < n_offers else 0
    return matches
