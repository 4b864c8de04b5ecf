"""The market in the state machine: orders, holds, clearing and settlement in end_block, debts,
prices, timing, genesis parameters, and invariants under random traffic."""

from __future__ import annotations

import random
from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger_core.state.machine import StateMachine
from ledger_core.state.market.auction import cost
from ledger_core.types import codec
from ledger_core.types.fields import FieldError
from ledger_core.types.genesis import Params, parse_genesis
from ledger_core.types.tx import TxType, decode
from tests.state.chain import START, Chain, key
from tests.state.market_chain import (
    BILL_AT,
    DAY,
    INTERVAL,
    Event,
    T,
    bill,
    delivery,
    money_is_conserved,
    number,
    order,
    price,
    record,
    report,
    run,
    run_ok,
    value,
    worked_example,
)

SETTLE = T + INTERVAL + 3600


def chain_with(**params: int | bool | str) -> Chain:
    chain = Chain()
    chain.genesis = replace(chain.genesis, params=Params(**params))  # type: ignore[arg-type]
    chain.app = StateMachine(chain.genesis)
    return chain


def of_type(events: list[Event], kind: str) -> list[Event]:
    return [e for e in events if e["type"] == kind]


# -- the worked example of docs/market.md ---------------------------------------------------


def test_worked_example_clears_and_settles_as_documented() -> None:
    ex = worked_example()
    chain = ex.chain
    ana, beto, carla, diego, elena = ex.ana, ex.beto, ex.carla, ex.diego, ex.elena
    # Placing the bids held cost(energy, limit): 1,500 Wh at 2.40 and 2,000 Wh at 3.00 MXN/kWh.
    assert (chain.balance(carla), number(chain, f"held/{carla.address}")) == (640, 360)
    assert (chain.balance(diego), number(chain, f"held/{diego.address}")) == (400, 600)
    money_is_conserved(chain)

    # Nothing clears before the interval starts (gate closure 0)...
    _, events = run_ok(chain, T - 1)
    assert events == []
    # ...and the first block at its start clears it.
    _, events = run_ok(chain, T)
    [cleared] = of_type(events, "interval_cleared")
    assert {k: cleared[k] for k in ("status", "price", "volume_wh", "trades", "bids")} == {
        "status": "cleared",
        "price": 18_000,
        "volume_wh": 3_234,
        "trades": 2,
        "bids": 2,
    }
    trades = of_type(events, "trade")
    assert [(t["buyer"], t["seller"], t["energy_wh"], t["payment"], t["fee"]) for t in trades] == [
        (diego.address, ana.address, 2_000, 360, 60),
        (carla.address, beto.address, 1_234, 222, 37),
    ]
    # Holds shrink to what the trades cost: Diego 360 + 60, Carla 222 + 37.
    assert (chain.balance(diego), number(chain, f"held/{diego.address}")) == (580, 420)
    assert (chain.balance(carla), number(chain, f"held/{carla.address}")) == (741, 259)
    carla_order = record(chain, f"order/{ex.orders['carla'].id}")
    assert (carla_order["status"], carla_order["traded_wh"], carla_order["hold"]) == (
        "cleared",
        1_234,
        0,
    )
    interval = record(chain, f"market/{T:012d}")
    assert (interval["status"], interval["price"], interval["import_price"]) == (
        "cleared",
        18_000,
        25_000,
    )
    money_is_conserved(chain)

    # Reports after the interval (commitments only); an hour after it ends the interval
    # waits for the concentrator's delivery, which settles the trades.
    m = ex.meters
    run_ok(
        chain,
        T + INTERVAL + 10,
        report(chain, m["ana"], 0, 1_800),
        report(chain, m["beto"], 100, 1_500),
        report(chain, m["carla"], 1_400, 0),
        report(chain, m["diego"], 1_900, 0),
        report(chain, m["elena"], 500, 0),
    )
    assert "import_wh" not in record(chain, f"report/{m['elena'].address}/{T:012d}")
    _, events = run_ok(chain, SETTLE - 1)
    assert events == []
    _, events = run_ok(chain, SETTLE)
    assert events == []
    assert record(chain, f"market/{T:012d}")["settlement"] == "awaiting_delivery"
    supplier, dso = chain.iso, chain.dso
    [delivered], _ = run_ok(chain, SETTLE + 5, delivery(chain))
    assert chain.app.state[f"settle/{ana.address}/{T:012d}"]
    assert of_type(list(delivered.events), "interval_settled")[0]["participants"] == 4
    people = {"ana": ana, "beto": beto, "carla": carla, "diego": diego, "elena": elena}
    balances = {name: chain.balance(k) for name, k in people.items()}
    balances |= {"dso": chain.balance(dso), "supplier": chain.balance(supplier)}
    # The trades: paid in full by the buyers, to Ana for the 1,800 Wh she delivered.
    assert balances == {
        "ana": 310,
        "beto": 222,
        "carla": 741,
        "diego": 580,
        "elena": 100,
        "dso": 97,
        "supplier": 50,
    }
    ana_bill = record(chain, f"settle/{ana.address}/{T:012d}")
    assert (ana_bill["sold_wh"], ana_bill["delivered_wh"], ana_bill["amount"]) == (
        2_000,
        1_800,
        310,
    )
    assert ana_bill["lines"] == {"p2p_energy": 324, "shortfall": -14}
    assert ana_bill["meters"] == [m["ana"].address]
    assert record(chain, f"market/{T:012d}")["status"] == "settled"
    assert number(chain, f"held/{diego.address}") == 0
    money_is_conserved(chain)

    # The day's bills: everything else is the supplier's at the interval's prices.
    [refused] = chain.block(bill(chain, elena))
    assert refused.code == "too_early"
    results, _ = run_ok(chain, BILL_AT, *(bill(chain, k) for k in people.values()))
    amounts = {
        name: of_type(list(r.events), "bill")[0]["amount"]
        for name, r in zip(people, results, strict=True)
    }
    assert amounts == {"ana": 0, "beto": -25 + 23, "carla": -41, "diego": 9, "elena": -125}
    balances = {name: chain.balance(k) for name, k in people.items()}
    balances |= {"dso": chain.balance(dso), "supplier": chain.balance(supplier)}
    assert balances == {
        "ana": 310,
        "beto": 220,
        "carla": 700,
        "diego": 589,
        "elena": 0,
        "dso": 97,
        "supplier": 209,
    }
    assert number(chain, f"debt/{elena.address}") == 25
    beto_day = record(chain, f"bill/{beto.address}/{DAY:012d}")
    assert beto_day["by_price"] == [
        {"import_price": 25_000, "export_price": 9_000, "import_wh": 100, "unused_wh": 0,
         "export_wh": 266}
    ]  # fmt: skip
    # The metered totals the bill implies: bought - unused + import, delivered + export.
    assert (beto_day["import_wh"], beto_day["export_wh"], beto_day["amount"]) == (100, 1_500, -2)
    diego_day = record(chain, f"bill/{diego.address}/{DAY:012d}")
    assert (diego_day["import_wh"], diego_day["unused_wh"], diego_day["lines"]) == (
        1_900,
        100,
        {"unused": 9},
    )
    assert record(chain, f"report/{m['elena'].address}/{T:012d}")["billed"] == chain.app.height
    # The per-interval indexes are gone; the queue is empty.
    assert not [k for k in chain.app.state if k.startswith("traders/")]
    assert value(chain, "queue/market") == []
    # Every wallet movement sums to zero.
    changes = [e for r in results for e in of_type(list(r.events), "wallet_change")]
    changes += of_type(list(delivered.events), "wallet_change")
    assert sum(e["delta"] for e in changes if e["why"] != "order_release") == 0  # type: ignore[misc]
    money_is_conserved(chain)


# -- orders -----------------------------------------------------------------------------------


def test_orders_are_checked_with_reasons() -> None:
    chain = Chain()
    alice = chain.register("alice")
    bob = chain.register("bob")
    meter = chain.bind_meter(alice, "meter-alice")
    chain.fund(alice, 1_000)
    results, _ = run(
        chain,
        chain.time + 5,
        order(chain, meter, "sell", 100, 1),
        order(chain, chain.iso, "sell", 100, 1),
        order(chain, alice, "buy", 100, 1, start=T + 7),
        order(chain, alice, "buy", 100, 1, start=(chain.time // INTERVAL) * INTERVAL),
        order(chain, alice, "buy", 100, 1, start=T + 8 * 86400),
        order(chain, alice, "buy", 10_000, 10_001),  # holds 1,000.01 -> 1,000
        order(chain, alice, "buy", 1, 100_000),  # 1 centavo, nothing left
        order(chain, alice, "sell", 100, 1),
        order(chain, bob, "buy", 1, 1),  # no balance needed: the hold rounds down to 0
    )
    assert [r.code for r in results] == [
        "not_permitted",
        "not_permitted",
        "misaligned_interval",
        "gate_closed",
        "too_far_ahead",
        "ok",
        "insufficient_funds",
        "opposite_side",
        "ok",
    ]
    assert "operators do not place orders" in results[1].message
    assert chain.balance(alice) == 0
    assert number(chain, f"held/{alice.address}") == 1_000
    chain.ok(chain.tx(chain.dso, TxType.SERVICE, participant=bob.address, connected=False))
    [cut] = chain.block(order(chain, bob, "sell", 5, 1))
    assert cut.code == "service_cut"
    chain.ok(chain.tx(chain.dso, TxType.SERVICE, participant=bob.address, connected=True))
    many = [order(chain, bob, "buy", 5, 1) for _ in range(32)]
    results = chain.block(*many)
    assert [r.code for r in results].count("ok") == 31  # one was placed already
    assert results[-1].code == "too_many_orders"


def test_order_bodies_are_decoded_with_field_errors() -> None:
    chain = Chain()
    alice = key("alice")
    cases: list[tuple[dict[str, codec.Value], str]] = [
        ({"interval_start": T, "side": "hold", "energy_wh": 1, "limit_price": 1}, "side"),
        ({"interval_start": T, "side": "buy", "energy_wh": 0, "limit_price": 1}, "energy_wh"),
        (
            {"interval_start": T, "side": "buy", "energy_wh": 1, "limit_price": 10**10},
            "limit_price",
        ),
        ({"interval_start": T, "side": "buy", "energy_wh": 1}, "limit_price"),
        ({"interval_start": T, "side": "buy", "energy_wh": 1, "limit_price": 1, "x": 1}, "x"),
        ({"order_id": "abc"}, "order_id"),
    ]
    for body, field in cases:
        kind = "order_cancel" if "order_id" in body else "order"
        envelope: dict[str, codec.Value] = {"body": body, "chain_id": chain.genesis.chain_id}
        envelope |= {"nonce": 1, "signer": alice.address, "type": kind}
        wire = codec.encode({"signature": "00" * 64, "tx": envelope})
        with pytest.raises(FieldError) as info:
            decode(wire)
        assert info.value.field == f"tx.body.{field}"


def test_cancelling_releases_the_hold_and_frees_the_other_side() -> None:
    chain = Chain()
    alice = chain.register("alice")
    bob = chain.register("bob")
    chain.fund(alice, 500)
    bid = order(chain, alice, "buy", 1_000, 20_000, start=T + INTERVAL)
    [placed], _ = run_ok(chain, chain.time + 5, bid)
    assert [e["type"] for e in placed.events] == ["order_placed", "wallet_change"]
    assert chain.balance(alice) == 300
    results, _ = run(
        chain,
        chain.time + 5,
        chain.tx(bob, TxType.ORDER_CANCEL, order_id=bid.id),
        chain.tx(alice, TxType.ORDER_CANCEL, order_id="0" * 64),
        chain.tx(alice, TxType.ORDER_CANCEL, order_id=bid.id),
        chain.tx(alice, TxType.ORDER_CANCEL, order_id=bid.id),
        order(chain, alice, "sell", 700, 5_000, start=T + INTERVAL),
    )
    assert [r.code for r in results] == ["not_permitted", "unknown_order", "ok", "not_open", "ok"]
    assert results[2].events[0] == {
        "type": "order_cancelled",
        "order": bid.id,
        "participant": alice.address,
        "interval_start": T + INTERVAL,
        "released": 200,
    }
    assert chain.balance(alice) == 500
    assert number(chain, f"held/{alice.address}") == 0
    position = record(chain, f"position/{alice.address}/{T + INTERVAL:012d}")
    assert position["side"] == "sell"
    assert record(chain, f"market/{T + INTERVAL:012d}")["orders"] == 2
    # After the gate, orders can no longer be cancelled.
    late = order(chain, alice, "sell", 1, 5_000, start=T + 2 * INTERVAL)
    run_ok(chain, chain.time + 5, late)
    [result], _ = run(
        chain, T + 2 * INTERVAL, chain.tx(alice, TxType.ORDER_CANCEL, order_id=late.id)
    )
    assert result.code == "gate_closed"  # the block's own end_block clears it afterwards
    assert record(chain, f"order/{late.id}")["status"] == "unpriced"  # no price signal here
    money_is_conserved(chain)


# -- timing and prices ------------------------------------------------------------------------


def test_gate_closure_and_intervals_cleared_in_order_in_one_block() -> None:
    chain = chain_with(gate_closure_seconds=600)
    alice = chain.register("alice")
    bob = chain.register("bob")
    chain.fund(bob, 10_000)
    run_ok(chain, chain.time + 5, price(chain))
    starts = [T, T + INTERVAL, T + 2 * INTERVAL]
    txs = []
    for start in starts:
        txs += [
            order(chain, alice, "sell", 100, 10_000, start),
            order(chain, bob, "buy", 100, 20_000, start),
        ]
    run_ok(chain, chain.time + 5, *txs)
    [result], events = run(chain, T - 600, order(chain, alice, "sell", 1, 1))
    assert result.code == "gate_closed"
    assert [e["interval_start"] for e in of_type(events, "interval_cleared")] == [T]
    # A block an hour later clears the other two, in interval order.
    _, events = run_ok(chain, T + 3600)
    assert [e["interval_start"] for e in of_type(events, "interval_cleared")] == starts[1:]
    assert [e["interval_start"] for e in of_type(events, "trade")] == starts[1:]
    assert value(chain, "queue/market") == starts
    money_is_conserved(chain)


def test_without_prices_orders_lapse_and_reports_are_not_billed() -> None:
    chain = Chain()
    alice = chain.register("alice")
    meter = chain.bind_meter(alice, "meter-alice")
    chain.fund(alice, 1_000)
    run_ok(chain, chain.time + 5, order(chain, alice, "buy", 1_000, 20_000))
    assert chain.balance(alice) == 800
    _, events = run_ok(chain, T)
    assert of_type(events, "interval_cleared")[0]["status"] == "unpriced"
    assert chain.balance(alice) == 1_000
    assert of_type(events, "wallet_change") == [
        {
            "type": "wallet_change",
            "participant": alice.address,
            "delta": 200,
            "why": "order_release",
        }
    ]
    run_ok(chain, T + INTERVAL, report(chain, meter, 900, 0))
    _, events = run_ok(chain, SETTLE)
    assert events == [{"type": "interval_settled", "interval_start": T, "status": "unpriced"}]
    assert record(chain, f"market/{T:012d}")["settlement"] == "unpriced"
    cites = {"meter": meter.address, "intervals": [T]}
    [refused] = run(
        chain, BILL_AT, chain.tx(chain.dso, TxType.BILL, participant=alice.address, day=DAY,
                                 reports=[cites], lines=[])
    )[0]  # fmt: skip
    assert refused.code == "unpriced_interval"
    assert "billed" not in record(chain, f"report/{meter.address}/{T:012d}")
    assert chain.balance(alice) == 1_000
    money_is_conserved(chain)


def test_clearing_uses_the_latest_price_and_settlement_the_final_one() -> None:
    chain = Chain()
    alice = chain.register("alice")
    bob = chain.register("bob")
    meter_a, meter_b = chain.bind_meter(alice, "m-a"), chain.bind_meter(bob, "m-b")
    chain.fund(bob, 10_000)
    # Only an earlier interval and a later one are priced when T clears.
    run_ok(
        chain,
        chain.time + 5,
        price(chain, start=T - 2 * INTERVAL),
        price(chain, start=T + 4 * INTERVAL, import_price=99_000),
    )
    run_ok(
        chain,
        chain.time + 5,
        order(chain, alice, "sell", 1_000, 10_000),
        order(chain, bob, "buy", 1_000, 30_000),
    )
    _, events = run_ok(chain, T)
    cleared = of_type(events, "interval_cleared")[0]
    assert (cleared["import_price"], cleared["price"]) == (25_000, 16_000)
    # During the interval the supplier announces its real-time price for T.
    run_ok(chain, T + 60, price(chain, import_price=30_000, export_price=5_000))
    run_ok(chain, T + INTERVAL, report(chain, meter_a, 0, 1_200), report(chain, meter_b, 1_500, 0))
    run_ok(chain, SETTLE)
    [settled], _ = run_ok(chain, SETTLE + 5, delivery(chain))
    interval = of_type(list(settled.events), "interval_settled")[0]
    assert (interval["import_price"], interval["export_price"]) == (30_000, 5_000)
    trades = {e["participant"]: e for e in of_type(list(settled.events), "settlement")}
    assert trades[alice.address]["amount"] == cost(1_000, 16_000)
    assert trades[bob.address]["amount"] == -(160 + 30)
    # A bill at the clearing prices is refused: the day is billed at the final ones.
    stale = chain.tx(
        chain.dso,
        TxType.BILL,
        participant=alice.address,
        day=DAY,
        reports=[{"meter": meter_a.address, "intervals": [T]}],
        lines=[{"import_price": 25_000, "export_price": 9_000, "import_wh": 0, "unused_wh": 0,
                "export_wh": 200}],
    )  # fmt: skip
    [refused], _ = run(chain, BILL_AT, stale)
    assert refused.code == "wrong_price"
    results, _ = run_ok(chain, BILL_AT + 5, bill(chain, alice), bill(chain, bob))
    bills = [of_type(list(r.events), "bill")[0] for r in results]
    # Alice exported 200 Wh more than she sold (5,000 each) and Bob imported 500 more (30,000).
    assert [b["amount"] for b in bills] == [cost(200, 5_000), -cost(500, 30_000)]
    assert [(b["import_wh"], b["export_wh"]) for b in bills] == [(0, 1_200), (1_500, 0)]
    money_is_conserved(chain)


def test_a_price_from_an_earlier_day_is_found() -> None:
    chain = Chain()
    alice = chain.register("alice")
    meter = chain.bind_meter(alice, "meter-alice")
    run_ok(chain, chain.time + 5, price(chain, start=T, import_price=20_000))
    later = T + 3 * 86400
    # That later day has a signal, but only for an interval after the one being billed.
    run_ok(chain, later - 5, price(chain, start=later + 4 * INTERVAL, import_price=40_000))
    run_ok(chain, later + INTERVAL + 5, report(chain, meter, 1_000, 0, start=later))
    [billed], _ = run_ok(chain, BILL_AT + 3 * 86400, bill(chain, alice, DAY + 3 * 86400))
    assert of_type(list(billed.events), "bill")[0]["amount"] == -200
    assert value(chain, f"priceday/{later - later % 86400:012d}") == later + 4 * INTERVAL


def test_switched_off_only_intervals_with_orders_are_billed() -> None:
    chain = chain_with(settle_all_reports=False)
    alice, bob = chain.register("alice"), chain.register("bob")
    meter_a, meter_b = chain.bind_meter(alice, "m-a"), chain.bind_meter(bob, "m-b")
    chain.fund(bob, 1_000)
    run_ok(chain, chain.time + 5, price(chain))
    run_ok(chain, chain.time + 5, order(chain, bob, "buy", 100, 30_000))
    run_ok(chain, SETTLE)
    run_ok(chain, SETTLE + 5, report(chain, meter_a, 1_000, 0), report(chain, meter_b, 1_000, 0))
    # Bob ordered (and did not trade), so his day is billed; Alice did not order.
    results, _ = run(chain, BILL_AT, bill(chain, alice), bill(chain, bob))
    assert [r.code for r in results] == ["not_billable", "ok"]
    assert of_type(list(results[1].events), "bill")[0]["amount"] == -250
    assert chain.balance(alice) == 0
    money_is_conserved(chain)


# -- settlement options, late reports, debts ---------------------------------------------------


def test_households_without_orders_are_billed_by_the_day() -> None:
    chain = Chain()
    alice = chain.register("alice")
    meter = chain.bind_meter(alice, "meter-alice")
    chain.fund(alice, 1_000)
    run_ok(
        chain, chain.time + 5, price(chain), price(chain, start=T + INTERVAL, import_price=20_000)
    )
    run_ok(chain, T + INTERVAL, report(chain, meter, 1_000, 200))
    run_ok(chain, T + 2 * INTERVAL, report(chain, meter, 300, 0, start=T + INTERVAL))
    _, events = run_ok(chain, SETTLE + INTERVAL)
    assert events == []  # no market interval, no settlement by the interval
    assert value(chain, f"market/{T:012d}") is None
    [billed], _ = run_ok(chain, BILL_AT, bill(chain, alice))
    # One line per pair of prices: the day's energy at each, as a utility bills it.
    assert record(chain, f"bill/{alice.address}/{DAY:012d}")["by_price"] == [
        {"import_price": 20_000, "export_price": 9_000, "import_wh": 300, "unused_wh": 0,
         "export_wh": 0},
        {"import_price": 25_000, "export_price": 9_000, "import_wh": 1_000, "unused_wh": 0,
         "export_wh": 200},
    ]  # fmt: skip
    assert record(chain, f"bill/{alice.address}/{DAY:012d}")["lines"] == {
        "export": 18,
        "import": -60 - 250,
    }
    assert chain.balance(alice) == 1_000 - 60 - 250 + 18
    event = of_type(list(billed.events), "bill")[0]
    assert (event["reports"], event["import_wh"], event["export_wh"], event["late"]) == (
        2,
        1_300,
        200,
        False,
    )
    money_is_conserved(chain)


def test_late_reports_are_billed_when_the_bill_is_linear() -> None:
    chain = Chain()
    alice = chain.register("alice")
    bob = chain.register("bob")
    carol = chain.register("carol")
    m1, m2 = chain.bind_meter(alice, "a-1"), chain.bind_meter(alice, "a-2")
    mb = chain.bind_meter(bob, "b-1")
    mc1, mc2 = chain.bind_meter(carol, "c-1"), chain.bind_meter(carol, "c-2")
    chain.fund(alice, 1_000)
    chain.fund(carol, 1_000)
    run_ok(chain, chain.time + 5, price(chain))
    run_ok(
        chain,
        chain.time + 5,
        order(chain, bob, "sell", 500, 10_000),
        order(chain, carol, "buy", 500, 30_000),
    )
    run_ok(chain, T + INTERVAL, report(chain, m1, 400, 0), report(chain, mc1, 400, 0))
    run_ok(chain, SETTLE)
    # Bob's meter is down: he delivered nothing of what he sold.
    [settled], _ = run_ok(chain, SETTLE + 5, delivery(chain))
    assert of_type(list(settled.events), "settlement")[1]["delivered_wh"] == 0
    results, _ = run_ok(chain, BILL_AT, bill(chain, alice), bill(chain, carol))
    assert chain.balance(alice) == 900
    # Carol bought 500 Wh and imported 400: 100 Wh unused, back at the export price.
    assert of_type(list(results[1].events), "bill")[0]["amount"] == cost(100, 9_000)
    # Alice's second meter, Bob's and Carol's second come back online a day later.
    run_ok(
        chain,
        SETTLE + 86400,
        report(chain, m2, 600, 100),
        report(chain, mb, 0, 500),
        report(chain, mc2, 100, 0),
    )
    results, _ = run(chain, BILL_AT + 86400, bill(chain, alice), bill(chain, carol))
    [late] = of_type(list(results[0].events), "bill")
    assert (late["late"], late["import_wh"], late["amount"]) == (True, 600, -150 + 9)
    # Carol traded in that interval and her day was billed: the late report is not billed.
    assert results[1].code == "not_billable"
    day = record(chain, f"bill/{alice.address}/{DAY:012d}")
    assert (day["import_wh"], day["export_wh"], day["amount"], day["bills"], day["reports"]) == (
        1_000,
        100,
        -100 - 150 + 9,
        2,
        2,
    )
    assert day["lines"] == {"export": 9, "import": -250}
    assert chain.balance(alice) == 1_000 - 250 + 9
    # Bob's first bill of the day bills his late report (his delivery was settled without it).
    [bob_bill], _ = run_ok(chain, BILL_AT + 86400 + 5, bill(chain, bob))
    assert of_type(list(bob_bill.events), "bill")[0]["reports"] == 1
    money_is_conserved(chain)


def test_debts_are_repaid_first_and_block_orders() -> None:
    ex = worked_example()
    chain = ex.chain
    run_ok(chain, T)
    m = ex.meters
    run_ok(chain, T + INTERVAL, report(chain, m["elena"], 500, 0))
    run_ok(chain, BILL_AT, bill(chain, ex.elena))
    elena = ex.elena
    assert number(chain, f"debt/{elena.address}") == 25
    chain.fund(elena, 10)
    next_start = chain.time + 3600 - chain.time % INTERVAL
    [refused] = chain.block(order(chain, elena, "sell", 100, 5_000, start=next_start))
    assert (refused.code, refused.message) == ("in_debt", "the participant owes 15 centavos")
    assert number(chain, f"debt/{elena.address}") == 25  # a refused order changes nothing
    chain.fund(elena, 20)
    [placed] = chain.ok(order(chain, elena, "sell", 100, 5_000, start=next_start))
    assert [e["type"] for e in placed.events] == ["debt_change", "order_placed"]
    assert placed.events[0] == {
        "type": "debt_change",
        "participant": elena.address,
        "delta": -25,
        "debt": 0,
    }
    assert (chain.balance(elena), number(chain, f"debt/{elena.address}")) == (5, 0)
    assert value(chain, f"debt/{elena.address}") is None
    money_is_conserved(chain)


def test_a_credit_repays_debt_at_settlement() -> None:
    chain = Chain()
    alice = chain.register("alice")
    meter = chain.bind_meter(alice, "meter-alice")
    tomorrow = T + 86400
    run_ok(chain, chain.time + 5, price(chain), price(chain, start=tomorrow))
    run_ok(chain, T + INTERVAL, report(chain, meter, 400, 0))
    run_ok(chain, BILL_AT, bill(chain, alice))
    assert number(chain, f"debt/{alice.address}") == 100
    run_ok(chain, tomorrow + INTERVAL, report(chain, meter, 0, 2_000, start=tomorrow))
    [credited], _ = run_ok(chain, BILL_AT + 86400, bill(chain, alice, DAY + 86400))
    assert of_type(list(credited.events), "debt_change") == [
        {"type": "debt_change", "participant": alice.address, "delta": -100, "debt": 0},
        # The supplier had only Alice's unpaid 100 to pay her 180 with.
        {"type": "debt_change", "participant": chain.iso.address, "delta": 80, "debt": 80},
    ]
    assert chain.balance(alice) == 180 - 100
    money_is_conserved(chain)


def test_the_supplier_goes_into_debt_rather_than_below_zero() -> None:
    chain = Chain()
    alice = chain.register("alice")
    meter = chain.bind_meter(alice, "meter-alice")
    run_ok(chain, chain.time + 5, price(chain))
    run_ok(chain, T + INTERVAL, report(chain, meter, 0, 1_000))
    run_ok(chain, BILL_AT, bill(chain, alice))
    assert chain.balance(alice) == 90
    assert (chain.balance(chain.iso), number(chain, f"debt/{chain.iso.address}")) == (0, 90)
    money_is_conserved(chain)


def test_pay_as_bid_is_a_genesis_choice() -> None:
    chain = chain_with(market_pricing="pay_as_bid")
    alice, bob = chain.register("alice"), chain.register("bob")
    chain.fund(bob, 1_000)
    run_ok(chain, chain.time + 5, price(chain))
    run_ok(
        chain,
        chain.time + 5,
        order(chain, alice, "sell", 1_000, 10_000),
        order(chain, bob, "buy", 1_000, 20_000),
    )
    _, events = run_ok(chain, T)
    assert of_type(events, "interval_cleared")[0]["price"] is None
    assert of_type(events, "trade")[0]["price"] == 17_000


# -- genesis ------------------------------------------------------------------------------------


def test_market_params_are_optional_in_genesis_files() -> None:
    plain = Chain().genesis
    text = plain.encode()
    assert b"gate_closure" not in text  # defaults are not written: old files keep their hash
    assert parse_genesis(text) == plain
    custom = replace(
        plain,
        params=Params(
            gate_closure_seconds=300,
            settlement_delay_seconds=7200,
            settle_all_reports=False,
            market_pricing="pay_as_bid",
        ),
    )
    assert parse_genesis(custom.encode()) == custom
    raw = custom.to_json()
    assert isinstance(raw, dict)
    params = raw["params"]
    assert isinstance(params, dict)
    bad: list[tuple[dict[str, codec.Value], str, str]] = [
        ({"market_pricing": "auction"}, "params.market_pricing", "uniform or pay_as_bid"),
        ({"settle_all_reports": 1}, "params.settle_all_reports", "true or false"),
        ({"gate_closure_seconds": -1}, "params.gate_closure_seconds", "between 0"),
    ]
    for change, field, message in bad:
        with pytest.raises(FieldError) as info:
            parse_genesis(codec.encode({**raw, "params": {**params, **change}}))
        assert (info.value.field, message in info.value.message) == (field, True)


# -- properties under random traffic -----------------------------------------------------------

NAMES = ["ana", "beto", "carla", "diego", "elena"]
traffic = st.lists(
    st.tuples(
        st.sampled_from(NAMES),
        st.sampled_from(["buy", "sell", "cancel"]),
        st.integers(0, 2),  # which interval
        st.integers(1, 3_000),
        st.integers(0, 40_000),
    ),
    max_size=25,
)
meter_readings = st.lists(
    st.tuples(st.integers(0, 4_000), st.integers(0, 4_000), st.booleans()),
    min_size=15,
    max_size=15,
)


def _replay(
    ops: list[tuple[str, str, int, int, int]],
    readings: list[tuple[int, int, bool]],
    funds: list[int],
) -> Chain:
    chain = Chain()
    people = {name: chain.register(name) for name in NAMES}
    meters = {name: chain.bind_meter(k, f"meter-{name}") for name, k in people.items()}
    for name, amount in zip(NAMES, funds, strict=True):
        if amount:
            chain.fund(people[name], amount)
    starts = [T, T + INTERVAL, T + 2 * INTERVAL]
    run_ok(chain, chain.time + 5, *(price(chain, start=s) for s in starts[:2]))
    placed: list[str] = []
    for i in range(0, len(ops), 4):
        txs = []
        for name, kind, which, energy, draw in ops[i : i + 4]:
            if kind == "cancel":
                if placed:
                    txs.append(
                        chain.tx(
                            people[name], TxType.ORDER_CANCEL, order_id=placed[energy % len(placed)]
                        )
                    )
                continue
            # Offers mostly below bids, so that intervals trade.
            limit = draw // 2 if kind == "sell" else 10_000 + draw * 3 // 4
            tx = order(chain, people[name], kind, energy, limit, start=starts[which])
            placed.append(tx.id)
            txs.append(tx)
        run(chain, chain.time + 5, *txs)
        money_is_conserved(chain)
    for n, start in enumerate(starts):
        run(chain, start)
        money_is_conserved(chain)
        reports = []
        for j, name in enumerate(NAMES):
            imported, exported, sent = readings[n * len(NAMES) + j]
            if sent:
                reports.append(report(chain, meters[name], imported, exported, start=start))
        run_ok(chain, start + INTERVAL, *reports)
    run(chain, T + 3 * INTERVAL + 3600)
    # The concentrator settles each interval's trades, then bills the day.
    due = [s for s in starts if (value(chain, f"market/{s:012d}") or {}).get("trades")]  # type: ignore[union-attr]
    run_ok(chain, chain.time + 5, *(delivery(chain, s) for s in due))
    with_reports = [
        person
        for name, person in people.items()
        if any(m == meters[name].address for m, _ in chain.openings)
    ]
    run_ok(chain, BILL_AT, *(bill(chain, person) for person in with_reports))
    return chain


def _check_market(chain: Chain) -> None:
    money_is_conserved(chain)
    state = chain.app.state
    assert state.get("queue/market", []) == []
    for key_, trade in state.items():
        if not key_.startswith("trade/"):
            continue
        assert isinstance(trade, dict)
        bid = record(chain, f"order/{trade['buy_order']}")
        offer = record(chain, f"order/{trade['sell_order']}")
        energy = trade["energy_wh"]
        assert isinstance(energy, int)
        assert trade["payment"] + trade["fee"] <= cost(energy, bid["limit_price"])  # type: ignore[operator, arg-type]
        assert trade["payment"] >= cost(energy, offer["limit_price"])  # type: ignore[arg-type, operator]
    for key_, statement in state.items():
        if key_.startswith("settle/"):
            assert isinstance(statement, dict)
            start = int(key_.rsplit("/", 1)[1])
            meters = statement.get("meters", [])
            assert isinstance(meters, list)
            exported = sum(chain.openings[str(m), start].export_wh for m in meters)
            assert statement["delivered_wh"] <= exported  # type: ignore[operator]
            assert statement["delivered_wh"] <= statement["sold_wh"]  # type: ignore[operator]
    # Every report is billed once, and every interval settled.
    for key_, report_record in state.items():
        if key_.startswith("report/"):
            assert isinstance(report_record, dict)
            assert "billed" in report_record, key_
        elif key_.startswith("market/"):
            assert isinstance(report_record, dict)
            assert report_record["status"] == "settled", key_
    for key_, item in state.items():
        if key_.startswith("order/"):
            assert isinstance(item, dict)
            assert item["status"] in ("cleared", "cancelled", "unpriced")
            assert item["hold"] == 0
    assert not [k for k, v in state.items() if k.startswith("held/") and v]


@settings(max_examples=12)
@given(traffic, meter_readings, st.lists(st.integers(0, 3_000), min_size=5, max_size=5))
def test_random_market_traffic_keeps_every_invariant_and_replays_identically(
    ops: list[tuple[str, str, int, int, int]],
    readings: list[tuple[int, int, bool]],
    funds: list[int],
) -> None:
    first = _replay(ops, readings, funds)
    _check_market(first)
    second = _replay(ops, readings, funds)
    assert first.app.app_hash == second.app.app_hash


def _trades_after(
    bodies: list[tuple[str, str, int, int]], permutation: list[int]
) -> list[tuple[str, ...]]:
    chain = Chain()
    people = {name: chain.register(name) for name in sorted({b[0] for b in bodies})}
    for person in people.values():
        chain.fund(person, 100_000)
    run_ok(chain, chain.time + 5, price(chain))
    txs = [order(chain, people[n], side, e, limit) for n, side, e, limit in bodies]
    run_ok(chain, chain.time + 5, *(txs[i] for i in permutation))
    _, events = run_ok(chain, T)
    names = {p.address: n for n, p in people.items()}
    return [
        (names[str(t["buyer"])], names[str(t["seller"])], str(t["energy_wh"]), str(t["price"]))
        for t in of_type(events, "trade")
    ]


def test_submission_order_matters_only_between_equal_prices() -> None:
    distinct = [
        ("ana", "sell", 700, 11_000),
        ("beto", "sell", 900, 12_000),
        ("carla", "buy", 1_000, 24_000),
        ("diego", "buy", 500, 23_000),
    ]
    rng = random.Random(7)  # noqa: S311 - a fixed shuffle, not cryptography
    expected = _trades_after(distinct, [0, 1, 2, 3])
    assert expected == [
        ("carla", "ana", "700", "16000"),
        ("carla", "beto", "300", "16000"),
        ("diego", "beto", "500", "16000"),
    ]
    for _ in range(3):
        permutation = [0, 1, 2, 3]
        rng.shuffle(permutation)
        assert _trades_after(distinct, permutation) == expected
    ties = [
        ("ana", "sell", 700, 11_000),
        ("beto", "sell", 700, 11_000),
        ("carla", "buy", 1_000, 24_000),
    ]
    assert [t[1] for t in _trades_after(ties, [0, 1, 2])] == ["ana", "beto"]
    assert [t[1] for t in _trades_after(ties, [1, 0, 2])] == ["beto", "ana"]
    assert _trades_after(ties, [1, 0, 2])[0][2] == "700"


def test_the_genesis_start_is_before_the_examples() -> None:
    assert T % INTERVAL == 0
    assert START - 3600 < T
