"""Pure settlement: the worked example line by line, and conservation and delivery properties."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from ledger_core.state.market.auction import Backstop, Order, Trade, clear, cost
from ledger_core.state.market.settlement import Metered, Settlement, settle
from ledger_core.types.tx import Side

SUPPLIER, DSO = "supplier", "dso"


def _settle(
    trades: list[Trade],
    metered: dict[str, Metered],
    participants: list[str],
    import_price: int = 25_000,
    export_price: int = 9_000,
) -> Settlement:
    return settle(
        trades,
        metered,
        participants,
        import_price=import_price,
        export_price=export_price,
        supplier=SUPPLIER,
        dso=DSO,
    )


def _by_wallet(result: Settlement) -> dict[str, dict[str, int]]:
    wallets: dict[str, dict[str, int]] = {}
    for movement in result.movements:
        wallets.setdefault(movement.participant, {})[movement.why] = movement.delta
    return wallets


def test_worked_example_line_by_line() -> None:
    trades = [
        Trade("d1", "a1", "diego", "ana", 2_000, 18_000, 360, 60),
        Trade("c1", "b1", "carla", "beto", 1_234, 18_000, 222, 37),
    ]
    metered = {
        "ana": Metered(0, 1_800),
        "beto": Metered(100, 1_500),
        "carla": Metered(1_400, 0),
        "diego": Metered(1_900, 0),
        "elena": Metered(500, 0),
    }
    result = _settle(trades, metered, ["elena", "ana"])
    assert _by_wallet(result) == {
        # Ana exported 1,800 of the 2,000 Wh she sold: paid for 1,800 (324), and pays the
        # supplier the tariff for the other 200 Wh (50) less the 36 Diego paid for them.
        "ana": {"p2p_energy": 324, "shortfall": -14},
        "beto": {"p2p_energy": 222, "import": -25, "export": 23},
        "carla": {"p2p_energy": -222, "network_fee": -37, "import": -41},
        "diego": {"p2p_energy": -324, "network_fee": -60, "shortfall_cover": -36, "unused": 9},
        "elena": {"import": -125},
        "dso": {"network_fee": 97},
        "supplier": {
            "shortfall": 14,
            "shortfall_cover": 36,
            "import": 191,
            "export": -23,
            "unused": -9,
        },
    }
    amounts = {s.participant: s.amount for s in result.statements}
    assert amounts == {"ana": 310, "beto": 220, "carla": -300, "diego": -411, "elena": -125}
    ana = next(s for s in result.statements if s.participant == "ana")
    assert (ana.sold_wh, ana.delivered_wh, ana.shortfall_wh) == (2_000, 1_800, 200)
    assert sum(m.delta for m in result.movements) == 0


def test_a_household_without_trades_pays_its_bill() -> None:
    result = _settle([], {"h": Metered(1_000, 300)}, ["h", "nobody"])
    assert _by_wallet(result)["h"] == {"import": -250, "export": 27}
    nobody = next(s for s in result.statements if s.participant == "nobody")
    assert (nobody.amount, nobody.import_wh, dict(nobody.lines)) == (0, 0, {})


def test_a_seller_cannot_profit_from_not_delivering() -> None:
    # The final import price fell below the trade price: the supplier covers the shortfall
    # for less than the buyer paid, but the seller still gets nothing for energy it kept.
    trade = Trade("b", "s", "buyer", "seller", 1_000, 20_000, 200, 30)
    result = _settle([trade], {"buyer": Metered(1_000, 0)}, [], import_price=10_000)
    wallets = _by_wallet(result)
    assert "seller" not in wallets  # no payment, no penalty
    assert wallets["supplier"]["shortfall_cover"] == 200
    assert wallets["buyer"] == {"network_fee": -30, "shortfall_cover": -200}


# -- properties --------------------------------------------------------------------------------

PEOPLE = ["p0", "p1", "p2", "p3", "p4"]
specs = st.lists(
    st.tuples(
        st.sampled_from([Side.BUY, Side.SELL]),
        st.integers(1, 3_000),
        st.integers(0, 40_000),
        st.sampled_from(PEOPLE),
    ),
    max_size=25,
)
readings = st.dictionaries(
    st.sampled_from(PEOPLE),
    st.builds(Metered, st.integers(0, 6_000), st.integers(0, 6_000)),
)
prices = st.tuples(st.integers(0, 50_000), st.integers(0, 30_000), st.integers(0, 5_000))


@given(specs, readings, prices, prices)
def test_settlement_conserves_money_and_pays_only_delivered_energy(
    orders: list[tuple[Side, int, int, str]],
    metered: dict[str, Metered],
    at_clearing: tuple[int, int, int],
    at_delivery: tuple[int, int, int],
) -> None:
    book = [
        Order(f"o{i}", who, side, e, limit, i) for i, (side, e, limit, who) in enumerate(orders)
    ]
    result = clear(book, Backstop(*at_clearing))
    trades = list(result.trades)
    settled = _settle(trades, metered, PEOPLE, at_delivery[0], at_delivery[1])
    assert sum(m.delta for m in settled.movements) == 0
    wallets = _by_wallet(settled)
    statements = {s.participant: s for s in settled.statements}
    assert set(statements) == set(PEOPLE)
    assert wallets.get(DSO, {}).get("network_fee", 0) == sum(t.fee for t in trades)
    for who, statement in statements.items():
        reading = metered.get(who, Metered())
        sales = [t for t in trades if t.seller == who]
        purchases = [t for t in trades if t.buyer == who]
        lines = wallets.get(who, {})
        assert statement.sold_wh == sum(t.energy_wh for t in sales)
        assert statement.bought_wh == sum(t.energy_wh for t in purchases)
        # Sold energy is settled only as far as it was exported...
        assert statement.delivered_wh == min(statement.sold_wh, reading.export_wh)
        assert statement.delivered_wh + statement.shortfall_wh == statement.sold_wh
        # ...and paid only for that, allocated to the trades in matching order.
        delivered = _delivered(sales, reading.export_wh)
        received = sum(cost(d, t.price) for t, d in zip(sales, delivered, strict=True))
        assert received <= sum(t.payment for t in sales)
        if not purchases:
            assert lines.get("p2p_energy", 0) == received
        # A shortfall never pays the seller.
        assert lines.get("shortfall", 0) <= 0
        # A buyer pays each trade in full: to the seller or the supplier, and the fee.
        if not sales:
            trade_lines = ("p2p_energy", "network_fee", "shortfall_cover")
            assert sum(lines.get(w, 0) for w in trade_lines) == -sum(t.total for t in purchases)
        if not sales and not purchases:
            bill = cost(reading.export_wh, at_delivery[1]) - cost(reading.import_wh, at_delivery[0])
            assert statement.amount == bill
        assert statement.amount == sum(lines.values())


def _delivered(trades: list[Trade], exported: int) -> list[int]:
    left = min(sum(t.energy_wh for t in trades), exported)
    out = []
    for trade in trades:
        done = min(trade.energy_wh, left)
        left -= done
        out.append(done)
    return out
