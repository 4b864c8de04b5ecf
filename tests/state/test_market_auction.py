"""The pure double auction: worked example, rules one by one, and properties under random books."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ledger_core.state.market.auction import (
    Backstop,
    ClearingResult,
    Fill,
    Order,
    Pricing,
    clear,
    cost,
)
from ledger_core.types.tx import Side

BACKSTOP = Backstop(import_price=25_000, export_price=9_000, network_fee=3_000)
BUY, SELL = Side.BUY, Side.SELL


def o(oid: str, side: Side, energy: int, limit: int, seq: int, who: str = "") -> Order:
    return Order(oid, who or oid, side, energy, limit, seq)


def test_cost_rounds_down_to_the_centavo() -> None:
    assert cost(1_000, 25_000) == 250  # 1 kWh at 2.50 MXN/kWh = 250 centavos
    assert cost(1_234, 18_000) == 222  # 222.12
    assert cost(1_234, 3_000) == 37  # 37.02
    assert cost(1, 99_999) == 0
    assert cost(3, -50_000) == -2  # toward -inf: never more than the exact amount
    assert cost(0, 10**9) == 0


def test_worked_example_of_the_docs() -> None:
    result = clear(
        [
            o("ana", SELL, 2_000, 10_000, 1),
            o("beto", SELL, 1_234, 15_000, 2),
            o("carla", BUY, 1_500, 24_000, 3),
            o("diego", BUY, 2_000, 30_000, 4),
        ],
        BACKSTOP,
    )
    # Diego's 30,000 is capped at the import price (25,000) and net of the fee is 22,000;
    # the marginal pair is Carla (24,000 - 3,000 = 21,000) and Beto (15,000).
    assert result.price == 18_000
    assert [(t.buyer, t.seller, t.energy_wh, t.payment, t.fee) for t in result.trades] == [
        ("diego", "ana", 2_000, 360, 60),
        ("carla", "beto", 1_234, 222, 37),
    ]
    assert result.volume_wh == 3_234
    assert result.fills["carla"] == Fill(traded_wh=1_234, backstop_wh=0)  # 24,000 < import
    assert (result.demand_wh, result.supply_wh) == (3_500, 3_234)
    assert (result.bids, result.offers) == (2, 2)


def test_the_fee_must_fit_between_bid_and_offer() -> None:
    offer = o("s", SELL, 1_000, 18_000, 1)
    assert clear([offer, o("b", BUY, 1_000, 20_999, 2)], BACKSTOP).trades == ()
    [trade] = clear([offer, o("b", BUY, 1_000, 21_000, 2)], BACKSTOP).trades
    assert (trade.price, trade.payment, trade.fee, trade.total) == (18_000, 180, 30, 210)


def test_peer_prices_stay_inside_the_backstop_band() -> None:
    # A generous bid and a cheap offer: the buyer never pays more than the tariff with the fee,
    # the seller never gets less than the supplier's export price.
    result = clear([o("s", SELL, 1_000, 1_000, 1), o("b", BUY, 1_000, 90_000, 2)], BACKSTOP)
    assert result.price == (25_000 - 3_000 + 9_000) // 2
    # When the tariff leaves no room above the export price after the fee, peers do not trade.
    narrow = Backstop(import_price=11_000, export_price=9_000, network_fee=3_000)
    result = clear([o("s", SELL, 1_000, 0, 1), o("b", BUY, 1_000, 90_000, 2)], narrow)
    assert result.trades == ()
    assert result.fills["b"] == Fill(0, 1_000)
    assert result.fills["s"] == Fill(0, 1_000)
    assert (result.supplier_sold_wh, result.supplier_bought_wh) == (1_000, 1_000)


def test_the_supplier_takes_residuals_acceptable_to_the_order() -> None:
    result = clear(
        [
            o("b-high", BUY, 800, 25_000, 1),
            o("b-low", BUY, 500, 24_999, 2),
            o("s-low", SELL, 300, 9_000, 3),
            o("s-high", SELL, 400, 9_001, 4),
        ],
        BACKSTOP,
    )
    # b-high takes both offers; the rest of it (limit at the tariff) comes from the supplier,
    # b-low (a centavo's fraction under the tariff) goes unfilled.
    assert result.fills == {
        "b-high": Fill(700, 100),
        "b-low": Fill(0, 0),
        "s-low": Fill(300, 0),
        "s-high": Fill(400, 0),
    }
    alone = clear([o("b", BUY, 800, 30_000, 1), o("s", SELL, 50, 5_000, 2)], BACKSTOP)
    assert alone.fills["b"] == Fill(50, 750)
    unmatched_seller = clear([o("s", SELL, 50, 5_000, 1)], BACKSTOP)
    assert unmatched_seller.fills["s"] == Fill(0, 50)
    assert unmatched_seller.price is None


def test_equal_prices_go_by_arrival_then_id() -> None:
    def fills(first: int, second: int) -> tuple[int, int]:
        result = clear(
            [
                o("x", SELL, 1_000, 12_000, first),
                o("y", SELL, 1_000, 12_000, second),
                o("b", BUY, 1_500, 24_000, 3),
            ],
            BACKSTOP,
        )
        return result.fills["x"].traded_wh, result.fills["y"].traded_wh

    assert fills(1, 2) == (1_000, 500)
    assert fills(2, 1) == (500, 1_000)
    assert fills(1, 1) == (1_000, 500)  # same sequence: the smaller id first


def test_pay_as_bid_prices_each_trade_at_its_bid() -> None:
    result = clear(
        [
            o("s", SELL, 2_000, 10_000, 1),
            o("b1", BUY, 1_000, 30_000, 2),
            o("b2", BUY, 1_000, 20_000, 3),
        ],
        BACKSTOP,
        Pricing.PAY_AS_BID,
    )
    assert result.price is None
    assert [(t.buyer, t.price) for t in result.trades] == [("b1", 22_000), ("b2", 17_000)]


def test_orders_that_cannot_be_matched_are_refused() -> None:
    with pytest.raises(ValueError, match="energy_wh must be at least 1"):
        clear([o("a", BUY, 0, 1, 1)], BACKSTOP)
    with pytest.raises(ValueError, match="appears twice"):
        clear([o("a", BUY, 1, 1, 1), o("a", SELL, 1, 1, 2)], BACKSTOP)
    empty = clear([], BACKSTOP)
    assert (empty.price, empty.volume_wh, empty.trades, dict(empty.fills)) == (None, 0, (), {})


# -- properties --------------------------------------------------------------------------------

backstops = st.builds(
    Backstop,
    import_price=st.integers(0, 60_000),
    export_price=st.integers(-5_000, 40_000),
    network_fee=st.integers(-2_000, 8_000),
)
order_specs = st.lists(
    st.tuples(
        st.sampled_from([BUY, SELL]),
        st.integers(1, 5_000),
        st.integers(-10_000, 70_000),
        st.sampled_from(["p0", "p1", "p2", "p3", "p4", "p5"]),
    ),
    max_size=40,
)


def _orders(specs: list[tuple[Side, int, int, str]]) -> list[Order]:
    return [
        Order(f"o{i:03d}", who, side, energy, limit, i)
        for i, (side, energy, limit, who) in enumerate(specs)
    ]


def _net(order: Order, backstop: Backstop) -> int:
    return min(order.limit_price, backstop.import_price) - backstop.network_fee


def _ask(order: Order, backstop: Backstop) -> int:
    return max(order.limit_price, backstop.export_price)


def _check(orders: list[Order], backstop: Backstop, result: ClearingResult) -> None:
    by_id = {order.id: order for order in orders}
    traded: dict[str, int] = {}
    for trade in result.trades:
        bid, offer = by_id[trade.buy_order], by_id[trade.sell_order]
        assert (bid.side, offer.side) == (BUY, SELL)
        assert (trade.buyer, trade.seller) == (bid.participant, offer.participant)
        assert trade.energy_wh >= 1
        # Limits: nobody pays above its limit with the fee, nobody gets below its limit.
        assert trade.price + backstop.network_fee <= min(bid.limit_price, backstop.import_price)
        assert trade.price >= max(offer.limit_price, backstop.export_price)
        assert trade.total <= cost(trade.energy_wh, bid.limit_price)
        assert trade.payment >= cost(trade.energy_wh, offer.limit_price)
        assert trade.payment == cost(trade.energy_wh, trade.price)
        assert trade.fee == cost(trade.energy_wh, backstop.network_fee)
        traded[bid.id] = traded.get(bid.id, 0) + trade.energy_wh
        traded[offer.id] = traded.get(offer.id, 0) + trade.energy_wh
    assert set(result.fills) == set(by_id)
    for order in orders:
        fill = result.fills[order.id]
        assert fill.traded_wh == traded.get(order.id, 0)
        assert fill.traded_wh + fill.backstop_wh <= order.energy_wh
        acceptable = (
            order.limit_price >= backstop.import_price
            if order.side is BUY
            else order.limit_price <= backstop.export_price
        )
        assert fill.backstop_wh == (order.energy_wh - fill.traded_wh if acceptable else 0)
    bids = sorted((x for x in orders if x.side is BUY), key=lambda x: (-x.limit_price, x.sequence))
    offers = sorted(
        (x for x in orders if x.side is SELL), key=lambda x: (x.limit_price, x.sequence)
    )
    volume = sum(t.energy_wh for t in result.trades)
    assert volume == result.volume_wh
    assert volume == sum(traded.get(b.id, 0) for b in bids)
    assert volume == sum(traded.get(s.id, 0) for s in offers)
    for book in (bids, offers):
        # Merit order: full fills, at most one partial fill, then nothing.
        amounts = [traded.get(x.id, 0) for x in book]
        full = [a == x.energy_wh for a, x in zip(amounts, book, strict=True)]
        k = full.index(False) if False in full else len(book)
        assert all(a == 0 for a in amounts[k + 1 :])
    # Nothing left that could still trade: the best remaining bid and offer do not match.
    left_bids = [b for b in bids if traded.get(b.id, 0) < b.energy_wh]
    left_offers = [s for s in offers if traded.get(s.id, 0) < s.energy_wh]
    if left_bids and left_offers:
        assert _net(left_bids[0], backstop) < _ask(left_offers[0], backstop)
    if result.pricing is Pricing.UNIFORM and result.trades:
        assert {t.price for t in result.trades} == {result.price}
        last = result.trades[-1]
        marginal = _net(by_id[last.buy_order], backstop) + _ask(by_id[last.sell_order], backstop)
        assert result.price == marginal // 2


@given(order_specs, backstops, st.sampled_from(list(Pricing)))
def test_random_books_respect_every_rule(
    specs: list[tuple[Side, int, int, str]], backstop: Backstop, pricing: Pricing
) -> None:
    orders = _orders(specs)
    _check(orders, backstop, clear(orders, backstop, pricing))


@given(order_specs, backstops, st.randoms(use_true_random=False))
def test_the_result_does_not_depend_on_the_input_order(
    specs: list[tuple[Side, int, int, str]], backstop: Backstop, rng: object
) -> None:
    orders = _orders(specs)
    shuffled = list(orders)
    rng.shuffle(shuffled)  # type: ignore[attr-defined]
    assert clear(shuffled, backstop) == clear(orders, backstop)


@given(order_specs, backstops)
def test_the_buyers_pay_exactly_what_sellers_and_the_operator_receive(
    specs: list[tuple[Side, int, int, str]], backstop: Backstop
) -> None:
    result = clear(_orders(specs), backstop)
    paid = sum(t.total for t in result.trades)
    assert paid == sum(t.payment for t in result.trades) + sum(t.fee for t in result.trades)
