"""The concentrator's inputs in the state machine: ``delivery`` and ``bill``, their checks and
refusals with codes, and what a refused input leaves behind (nothing). docs/privacy.md."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from ledger_core.types import codec
from ledger_core.types.crypto import SigningKey
from ledger_core.types.fields import FieldError
from ledger_core.types.tx import Tx, TxType, decode
from tests.state.chain import Chain
from tests.state.market_chain import (
    BILL_AT,
    DAY,
    INTERVAL,
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
)

SETTLE = T + INTERVAL + 3600


@dataclass
class Scene:
    """Alice sold Bob 1,000 Wh in ``T``; Alice exported 800, Bob imported 900, Carol 100."""

    chain: Chain
    alice: SigningKey
    bob: SigningKey
    carol: SigningKey
    meters: dict[str, SigningKey]

    def deliver(self, **seller: codec.Value) -> Tx:
        entry: dict[str, codec.Value] = {
            "participant": self.alice.address,
            "delivered_wh": 800,
            "meters": [self.meters["alice"].address],
            **seller,
        }
        return self.chain.tx(self.chain.dso, TxType.DELIVERY, interval_start=T, sellers=[entry])

    def bill(self, who: SigningKey, *, signer: SigningKey | None = None, **body: codec.Value) -> Tx:
        """A bill of ``who``'s report of ``T`` (no lines), with ``body``'s changes."""
        meter = self.meters[{self.alice: "alice", self.bob: "bob"}.get(who, "carol")]
        fields: dict[str, codec.Value] = {
            "participant": who.address,
            "day": DAY,
            "reports": [{"meter": meter.address, "intervals": [T]}],
            "lines": [],
            **body,
        }
        return self.chain.tx(signer or self.chain.dso, TxType.BILL, **fields)


def line(
    import_price: int = 25_000, export_price: int = 9_000, **energy: int
) -> dict[str, codec.Value]:
    """A bill line (Wh not given are 0)."""
    found: dict[str, codec.Value] = {"import_price": import_price, "export_price": export_price}
    return found | {name: energy.get(name, 0) for name in ("import_wh", "unused_wh", "export_wh")}


def scene() -> Scene:
    chain = Chain()
    people = {name: chain.register(name) for name in ("alice", "bob", "carol")}
    meters = {name: chain.bind_meter(k, f"meter-{name}") for name, k in people.items()}
    chain.fund(people["bob"], 1_000)
    run_ok(chain, chain.time + 5, price(chain))
    run_ok(
        chain,
        chain.time + 5,
        order(chain, people["alice"], "sell", 1_000, 10_000),
        order(chain, people["bob"], "buy", 1_000, 30_000),
    )
    run_ok(chain, T)
    run_ok(
        chain,
        T + INTERVAL + 10,
        report(chain, meters["alice"], 0, 800),
        report(chain, meters["bob"], 900, 0),
        report(chain, meters["carol"], 100, 0),
    )
    return Scene(chain, people["alice"], people["bob"], people["carol"], meters)


def codes(chain: Chain, when: int, *txs: Tx) -> list[str]:
    results, _ = run(chain, when, *txs)
    return [r.code for r in results]


def test_a_delivery_is_checked_against_the_trades_and_the_committed_reports() -> None:
    s = scene()
    chain = s.chain
    # Not before the interval is due: its trades are not waiting yet.
    assert codes(chain, T + INTERVAL + 20, s.deliver()) == ["not_awaiting_delivery"]
    run_ok(chain, SETTLE)
    spare = chain.bind_meter(s.alice, "meter-alice-2")  # bound, never reported
    bob_as_seller = chain.tx(
        chain.dso,
        TxType.DELIVERY,
        interval_start=T,
        sellers=[{"participant": s.bob.address, "delivered_wh": 0, "meters": []}],
    )
    two_sellers = chain.tx(
        chain.dso,
        TxType.DELIVERY,
        interval_start=T,
        sellers=sorted(
            [
                {"participant": s.alice.address, "delivered_wh": 800, "meters": []},
                {"participant": s.carol.address, "delivered_wh": 0, "meters": []},
            ],
            key=lambda e: str(e["participant"]),
        ),
    )
    by_iso = chain.tx(
        chain.iso,
        TxType.DELIVERY,
        interval_start=T,
        sellers=[{"participant": s.alice.address, "delivered_wh": 800, "meters": []}],
    )
    refused = [
        by_iso,
        bob_as_seller,
        two_sellers,
        s.deliver(delivered_wh=1_001),
        s.deliver(meters=[]),
        s.deliver(meters=[s.meters["bob"].address]),
        s.deliver(meters=sorted([s.meters["alice"].address, spare.address])),
    ]
    assert codes(chain, SETTLE + 10, *refused) == [
        "not_permitted",
        "wrong_sellers",
        "wrong_sellers",
        "over_delivery",
        "unreported_delivery",
        "foreign_meter",
        "unknown_report",
    ]
    # Nothing moved: the trade still waits, Bob's money is still held.
    assert record(chain, f"market/{T:012d}")["settlement"] == "awaiting_delivery"
    assert record(chain, f"position/{s.bob.address}/{T:012d}")["hold"] == 160 + 30
    [settled], _ = run_ok(chain, SETTLE + 15, s.deliver())
    statement = record(chain, f"settle/{s.alice.address}/{T:012d}")
    assert (statement["delivered_wh"], statement["shortfall_wh"], statement["amount"]) == (
        800,
        200,
        cost_of(800, 16_000) - (cost_of(200, 25_000) - (160 - cost_of(800, 16_000))),
    )
    assert [e["type"] for e in settled.events].count("settlement") == 2
    assert codes(chain, SETTLE + 20, s.deliver()) == ["not_awaiting_delivery"]
    money_is_conserved(chain)


def cost_of(energy: int, price_: int) -> int:
    return energy * price_ // 100_000


def test_an_interval_without_trades_needs_no_delivery() -> None:
    chain = Chain()
    alice = chain.register("alice")
    run_ok(chain, chain.time + 5, price(chain), order(chain, alice, "sell", 100, 50_000))
    run_ok(chain, SETTLE)
    assert record(chain, f"market/{T:012d}")["status"] == "settled"
    nobody = chain.tx(
        chain.dso,
        TxType.DELIVERY,
        interval_start=T,
        sellers=[{"participant": alice.address, "delivered_wh": 0, "meters": []}],
    )
    assert codes(chain, SETTLE + 5, nobody) == ["not_awaiting_delivery"]


def test_a_bill_is_checked_and_a_refused_one_leaves_nothing_behind() -> None:
    s = scene()
    chain = s.chain
    run_ok(chain, SETTLE)
    assert codes(chain, BILL_AT - 1, s.bill(s.carol)) == ["too_early"]
    next_day = T + 86400
    refused = [
        s.bill(s.carol, signer=s.chain.iso),
        s.bill(s.carol, participant=s.meters["carol"].address),
        s.bill(s.carol, participant=chain.iso.address),
        s.bill(s.carol, participant=chain.iso.address[:-4] + "0000"),
        s.bill(s.carol, day=DAY + INTERVAL),
        s.bill(s.carol, reports=[{"meter": s.meters["carol"].address, "intervals": [next_day]}]),
        s.bill(s.carol, reports=[{"meter": s.meters["carol"].address, "intervals": [T + 7]}]),
        s.bill(s.carol, reports=[{"meter": s.meters["bob"].address, "intervals": [T]}]),
        s.bill(
            s.carol,
            reports=[{"meter": s.meters["carol"].address, "intervals": [T + INTERVAL]}],
        ),
        # Alice sold in T: her day waits for the interval's delivery.
        s.bill(s.alice),
        s.bill(s.carol, lines=[line(30_000, import_wh=100)]),
        s.bill(s.bob, lines=[line(unused_wh=1_001)]),
    ]
    assert codes(chain, BILL_AT, *refused) == [
        "not_permitted",
        "not_permitted",
        "not_permitted",
        "unknown_account",
        "misaligned_day",
        "outside_day",
        "outside_day",
        "foreign_meter",
        "unknown_report",
        "delivery_pending",
        "wrong_price",
        "unused_exceeds_bought",
    ]
    for name in ("alice", "bob", "carol"):
        assert "billed" not in record(chain, f"report/{s.meters[name].address}/{T:012d}")
    assert not [k for k in chain.app.state if k.startswith("bill/")]
    supplier = chain.balance(chain.iso)
    # Carol imported 100 Wh (she owes them); Bob bought 1,000 Wh and imported 900: 100
    # unused, sold back at the export price.
    run_ok(chain, BILL_AT + 5, bill(chain, s.carol), bill(chain, s.bob))
    assert (chain.balance(s.carol), number(chain, f"debt/{s.carol.address}")) == (0, 25)
    assert chain.balance(chain.iso) == supplier + 25 - 9
    assert record(chain, f"bill/{s.bob.address}/{DAY:012d}")["lines"] == {"unused": 9}
    # A report is billed once.
    assert codes(chain, BILL_AT + 10, s.bill(s.carol)) == ["already_billed"]
    # The delivery comes, then Alice's day.
    run_ok(chain, BILL_AT + 15, delivery(chain))
    [billed], _ = run_ok(chain, BILL_AT + 20, bill(chain, s.alice))
    event = next(e for e in billed.events if e["type"] == "bill")
    assert (event["amount"], event["export_wh"], event["reports"]) == (0, 800, 1)
    money_is_conserved(chain)


NONE: dict[str, codec.Value] = {"meters": []}


@pytest.mark.parametrize(
    ("tx_type", "body", "field"),
    [
        ("report", {"interval_start": T, "commitment": "AB" * 32}, "commitment"),
        ("report", {"interval_start": T, "commitment": "ab" * 31}, "commitment"),
        ("delivery", {"interval_start": T, "sellers": []}, "sellers"),
        (
            "delivery",
            {"interval_start": T, "sellers": [{"participant": "x", "delivered_wh": 1, **NONE}]},
            "sellers[0].participant",
        ),
        ("bill", {"participant": "P", "day": 0, "reports": [], "lines": []}, "reports"),
        (
            "bill",
            {"participant": "P", "day": 0, "reports": [{"meter": "M", "intervals": [900, 900]}],
             "lines": []},
            "reports[0].intervals",
        ),
        (
            "bill",
            {"participant": "P", "day": 0, "reports": [{"meter": "M", "intervals": [900]}],
             "lines": [line(2, 1), line(1, 1)]},
            "lines",
        ),
    ],
)  # fmt: skip
def test_bodies_are_decoded_with_field_errors(
    tx_type: str, body: dict[str, codec.Value], field: str
) -> None:
    chain = Chain()
    address = chain.dso.address
    # Stand-ins for addresses the case does not test.
    text = codec.encode(body).decode().replace('"P"', f'"{address}"').replace('"M"', f'"{address}"')
    envelope: dict[str, codec.Value] = {
        "body": codec.decode(text.encode(), 1 << 16),
        "chain_id": chain.genesis.chain_id,
        "nonce": 1,
        "signer": address,
        "type": tx_type,
    }
    with pytest.raises(FieldError) as info:
        decode(codec.encode({"signature": "00" * 64, "tx": envelope}))
    assert info.value.field == f"tx.body.{field}"


def _sellers_scene() -> tuple[Chain, list[SigningKey], dict[str, codec.Value]]:
    """Five sellers each sold a buyer 1,000 Wh in ``T``; each exported 600 Wh. The whole
    delivery's entries by seller address."""
    chain = Chain()
    sellers = [chain.register(f"s{i}") for i in range(5)]
    buyers = [chain.register(f"b{i}") for i in range(5)]
    meters = {s.address: chain.bind_meter(s, f"meter-s{i}") for i, s in enumerate(sellers)}
    for buyer in buyers:
        chain.fund(buyer, 1_000)
    run_ok(chain, chain.time + 5, price(chain))
    run_ok(
        chain,
        chain.time + 5,
        *(order(chain, s, "sell", 1_000, 10_000) for s in sellers),
        *(order(chain, b, "buy", 1_000, 30_000) for b in buyers),
    )
    run_ok(chain, T)
    run_ok(chain, T + INTERVAL + 10, *(report(chain, m, 0, 600) for m in meters.values()))
    run_ok(chain, SETTLE)
    entries: dict[str, codec.Value] = {
        address: {"participant": address, "delivered_wh": 600, "meters": [meter.address]}
        for address, meter in meters.items()
    }
    return chain, sellers, entries


def _part(chain: Chain, entries: dict[str, codec.Value], *who: str) -> Tx:
    return chain.tx(
        chain.dso, TxType.DELIVERY, interval_start=T, sellers=[entries[w] for w in sorted(who)]
    )


def test_a_delivery_in_parts_settles_as_the_whole_delivery_does() -> None:
    whole, _, entries = _sellers_scene()
    [settled], _ = run_ok(whole, SETTLE + 5, _part(whole, entries, *entries))
    parted, _, entries = _sellers_scene()
    addresses = sorted(entries)
    # Parts in any order; a seller listed twice, or someone who sold nothing, is refused.
    stranger: dict[str, codec.Value] = {
        "participant": parted.iso.address,
        "delivered_wh": 0,
        "meters": [],
    }
    assert codes(
        parted,
        SETTLE + 5,
        _part(parted, entries, addresses[3], addresses[1]),
        _part(parted, entries, addresses[1]),
        _part(parted, {**entries, "x": stranger}, addresses[2], "x"),
    ) == ["ok", "wrong_sellers", "wrong_sellers"]
    assert record(parted, f"market/{T:012d}")["settlement"] == "awaiting_delivery"
    results, _ = run_ok(
        parted,
        SETTLE + 10,
        _part(parted, entries, addresses[4]),
        _part(parted, entries, addresses[0], addresses[2]),
    )
    assert results[0].events == ()
    assert results[1].events == settled.events
    for key in ("market", *(f"settle/{a}" for a in addresses)):
        name = f"{key}/{T:012d}"
        ours, theirs = record(parted, name), record(whole, name)
        heights = {"settled_height": 0, "height": 0}  # a block later in parts
        assert {**ours, **heights} == {**theirs, **heights}
    assert not [k for k in parted.app.state if k.startswith("delivering/")]
    money_is_conserved(parted)
