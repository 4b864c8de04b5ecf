"""Pure settlement: the worked example line by line (an interval's trades, then the day's
bills), and conservation, delivery and equivalence properties."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from ledger_core.state.market.auction import Backstop, Order, Trade, clear, cost
from ledger_core.state.market.settlement import Movement, settle_bill, settle_trades
from ledger_core.types.metering import BillLine, IntervalUse, bill_lines, delivered
from ledger_core.types.tx import Side

SUPPLIER, DSO = "supplier", "dso"


def _by_wallet(movements: tuple[Movement, ...]) -> dict[str, dict[str, int]]:
    wallets: dict[str, dict[str, int]] = {}
    for movement in movements:
        lines = wallets.setdefault(movement.participant, {})
        lines[movement.why] = lines.get(movement.why, 0) + movement.delta
    return wallets


def _day_bill(
    who: str,
    metered: tuple[int, int],
    trades: list[Trade],
    import_price: int = 25_000,
    export_price: int = 9_000,
) -> tuple[Movement, ...]:
    """A participant's bill of a day with one interval: its backstop energy at the prices."""
    use = IntervalUse(
        0,
        *metered,
        bought_wh=sum(t.energy_wh for t in trades if t.buyer == who),
        sold_wh=sum(t.energy_wh for t in trades if t.seller == who),
        import_price=import_price,
        export_price=export_price,
    )
    return settle_bill(who, bill_lines([use]), supplier=SUPPLIER).movements


WORKED_TRADES = [
    Trade("d1", "a1", "diego", "ana", 2_000, 18_000, 360, 60),
    Trade("c1", "b1", "carla", "beto", 1_234, 18_000, 222, 37),
]
WORKED_READINGS = {
    "ana": (0, 1_800),
    "beto": (100, 1_500),
    "carla": (1_400, 0),
    "diego": (1_900, 0),
    "elena": (500, 0),
}


def test_worked_example_line_by_line() -> None:
    # The interval: the concentrator delivers each seller's export up to what it sold.
    given_delivery = {
        "ana": delivered(WORKED_READINGS["ana"][1], 2_000),
        "beto": delivered(WORKED_READINGS["beto"][1], 1_234),
    }
    assert given_delivery == {"ana": 1_800, "beto": 1_234}
    result = settle_trades(
        WORKED_TRADES, given_delivery, import_price=25_000, supplier=SUPPLIER, dso=DSO
    )
    assert _by_wallet(result.movements) == {
        # Ana exported 1,800 of the 2,000 Wh she sold: paid for 1,800 (324), and pays the
        # supplier the tariff for the other 200 Wh (50) less the 36 Diego paid for them.
        "ana": {"p2p_energy": 324, "shortfall": -14},
        "beto": {"p2p_energy": 222},
        "carla": {"p2p_energy": -222, "network_fee": -37},
        "diego": {"p2p_energy": -324, "network_fee": -60, "shortfall_cover": -36},
        "dso": {"network_fee": 97},
        "supplier": {"shortfall": 14, "shortfall_cover": 36},
    }
    ana = next(s for s in result.statements if s.participant == "ana")
    assert (ana.sold_wh, ana.delivered_wh, ana.shortfall_wh, ana.amount) == (2_000, 1_800, 200, 310)
    assert sum(m.delta for m in result.movements) == 0
    # The day: each household's energy with the supplier.
    bills = {
        who: _day_bill(who, reading, WORKED_TRADES) for who, reading in WORKED_READINGS.items()
    }
    assert {who: _by_wallet(m).get(who, {}) for who, m in bills.items()} == {
        "ana": {},
        "beto": {"import": -25, "export": 23},
        "carla": {"import": -41},
        "diego": {"unused": 9},
        "elena": {"import": -125},
    }
    every = [*result.movements, *(m for movements in bills.values() for m in movements)]
    assert sum(m.delta for m in every) == 0
    totals = _by_wallet(tuple(every))
    assert {who: sum(lines.values()) for who, lines in totals.items()} == {
        "ana": 310,
        "beto": 220,
        "carla": -300,
        "diego": -411,
        "elena": -125,
        "dso": 97,
        "supplier": 209,
    }


def test_a_household_without_trades_pays_its_bill() -> None:
    bill = settle_bill("h", [BillLine(25_000, 9_000, 1_000, 0, 300)], supplier=SUPPLIER)
    assert (bill.amount, dict(bill.lines)) == (-250 + 27, {"import": -250, "export": 27})
    assert (bill.import_wh, bill.unused_wh, bill.export_wh) == (1_000, 0, 300)
    assert settle_bill("h", [], supplier=SUPPLIER).movements == ()


def test_a_day_is_billed_per_pair_of_prices() -> None:
    """Rounding is per line of the bill (kWh per tariff period), not per interval."""
    lines = [BillLine(20_480, 9_000, 333, 0, 0), BillLine(34_520, 9_000, 333, 0, 0)]
    bill = settle_bill("h", lines, supplier=SUPPLIER)
    assert bill.amount == -(cost(333, 20_480) + cost(333, 34_520)) == -(68 + 114)


def test_a_seller_cannot_profit_from_not_delivering() -> None:
    # The final import price fell below the trade price: the supplier covers the shortfall
    # for less than the buyer paid, but the seller still gets nothing for energy it kept.
    trade = Trade("b", "s", "buyer", "seller", 1_000, 20_000, 200, 30)
    result = settle_trades([trade], {}, import_price=10_000, supplier=SUPPLIER, dso=DSO)
    wallets = _by_wallet(result.movements)
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
    st.sampled_from(PEOPLE), st.tuples(st.integers(0, 6_000), st.integers(0, 6_000))
)
prices = st.tuples(st.integers(0, 50_000), st.integers(0, 30_000), st.integers(0, 5_000))


@given(specs, readings, prices, prices)
def test_settlement_conserves_money_and_pays_only_delivered_energy(
    orders: list[tuple[Side, int, int, str]],
    metered: dict[str, tuple[int, int]],
    at_clearing: tuple[int, int, int],
    at_delivery: tuple[int, int, int],
) -> None:
    book = [
        Order(f"o{i}", who, side, e, limit, i) for i, (side, e, limit, who) in enumerate(orders)
    ]
    trades = list(clear(book, Backstop(*at_clearing)).trades)
    sold_by: dict[str, int] = {}
    for trade in trades:
        sold_by[trade.seller] = sold_by.get(trade.seller, 0) + trade.energy_wh
    given_delivery = {
        seller: delivered(metered.get(seller, (0, 0))[1], amount)
        for seller, amount in sold_by.items()
    }
    settled = settle_trades(
        trades, given_delivery, import_price=at_delivery[0], supplier=SUPPLIER, dso=DSO
    )
    bills = {
        who: _day_bill(who, metered.get(who, (0, 0)), trades, at_delivery[0], at_delivery[1])
        for who in PEOPLE
    }
    assert sum(m.delta for m in settled.movements) == 0
    assert all(sum(m.delta for m in movements) == 0 for movements in bills.values())
    wallets = _by_wallet(settled.movements)
    statements = {s.participant: s for s in settled.statements}
    assert set(statements) == {t.buyer for t in trades} | {t.seller for t in trades}
    assert wallets.get(DSO, {}).get("network_fee", 0) == sum(t.fee for t in trades)
    for who, statement in statements.items():
        exported = metered.get(who, (0, 0))[1]
        sales = [t for t in trades if t.seller == who]
        purchases = [t for t in trades if t.buyer == who]
        lines = wallets.get(who, {})
        assert statement.sold_wh == sum(t.energy_wh for t in sales)
        assert statement.bought_wh == sum(t.energy_wh for t in purchases)
        # Sold energy is settled only as far as it was exported...
        assert statement.delivered_wh == min(statement.sold_wh, exported)
        assert statement.delivered_wh + statement.shortfall_wh == statement.sold_wh
        # ...and paid only for that, allocated to the trades in matching order.
        done = _delivered(sales, exported)
        received = sum(cost(d, t.price) for t, d in zip(sales, done, strict=True))
        assert received <= sum(t.payment for t in sales)
        if not purchases:
            assert lines.get("p2p_energy", 0) == received
        # A shortfall never pays the seller.
        assert lines.get("shortfall", 0) <= 0
        # A buyer pays each trade in full: to the seller or the supplier, and the fee.
        if not sales:
            assert sum(lines.values()) == -sum(t.total for t in purchases)
        assert statement.amount == sum(lines.values())
    for who in PEOPLE:
        if who not in statements:
            imported, exported = metered.get(who, (0, 0))
            bill = cost(exported, at_delivery[1]) - cost(imported, at_delivery[0])
            assert sum(m.delta for m in bills[who] if m.participant == who) == bill
    # For a day of one interval, trades and bill together are the per-interval rule.
    every = (*settled.movements, *(m for movements in bills.values() for m in movements))
    together = {who: sum(lines.values()) for who, lines in _by_wallet(every).items()}
    reference = _reference(trades, metered, at_delivery)
    assert {k: v for k, v in together.items() if v} == {k: v for k, v in reference.items() if v}


def _delivered(trades: list[Trade], exported: int) -> list[int]:
    left = min(sum(t.energy_wh for t in trades), exported)
    out = []
    for trade in trades:
        done = min(trade.energy_wh, left)
        left -= done
        out.append(done)
    return out


def _reference(
    trades: list[Trade], metered: dict[str, tuple[int, int]], at: tuple[int, int, int]
) -> dict[str, int]:
    """Each wallet's change when an interval is settled whole from its readings (the rule of
    docs/market.md before the supplier's part moved to the day's bill)."""
    change: dict[str, int] = {}

    def move(payer: str, payee: str, amount: int) -> None:
        change[payer] = change.get(payer, 0) - amount
        change[payee] = change.get(payee, 0) + amount

    import_price, export_price, _ = at
    people = {t.buyer for t in trades} | {t.seller for t in trades} | set(metered)
    for who in people:
        imported, exported = metered.get(who, (0, 0))
        sales = [t for t in trades if t.seller == who]
        bought = sum(t.energy_wh for t in trades if t.buyer == who)
        sold = sum(t.energy_wh for t in sales)
        for trade, done in zip(sales, _delivered(sales, exported), strict=True):
            paid = cost(done, trade.price)
            move(trade.buyer, who, paid)
            move(trade.buyer, SUPPLIER, trade.payment - paid)
            if trade.energy_wh > done:
                shortfall = cost(trade.energy_wh - done, import_price) - (trade.payment - paid)
                move(who, SUPPLIER, max(shortfall, 0))
        for trade in sales:
            move(trade.buyer, DSO, trade.fee)
        move(who, SUPPLIER, cost(max(imported - bought, 0), import_price))
        move(SUPPLIER, who, cost(max(bought - imported, 0), export_price))
        move(SUPPLIER, who, cost(max(exported - sold, 0), export_price))
    return change
