"""Commitments to interval readings, their openings and proofs, and the energies settlement
needs from readings (ledger_core/types/metering.py; docs/privacy.md)."""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

from ledger_core.types import codec
from ledger_core.types.fields import FieldError
from ledger_core.types.metering import (
    SALT_BYTES,
    BillLine,
    IntervalUse,
    Opening,
    Proof,
    backstop_energy,
    bill_lines,
    commitment,
    delivered,
    metered,
    new_salt,
)
from tests.state.chain import CHAIN_ID, key

METERS = [key(f"meter-{i}").address for i in range(3)]
energy = st.integers(0, 100_000)
openings = st.builds(
    Opening,
    meter=st.sampled_from(METERS),
    interval_start=st.integers(0, 2**33).map(lambda t: t - t % 900),
    import_wh=energy,
    export_wh=energy,
    salt=st.binary(min_size=SALT_BYTES, max_size=SALT_BYTES),
)


@given(openings)
def test_a_commitment_is_64_hex_digits_and_its_opening_opens_it(opening: Opening) -> None:
    committed = opening.commitment(CHAIN_ID)
    assert len(committed) == 64
    assert committed == committed.lower()
    int(committed, 16)
    assert opening.opens(CHAIN_ID, committed)
    assert committed == commitment(
        CHAIN_ID,
        opening.meter,
        opening.interval_start,
        import_wh=opening.import_wh,
        export_wh=opening.export_wh,
        salt=opening.salt,
    )


@given(openings, openings)
def test_no_other_reading_opens_a_commitment(first: Opening, second: Opening) -> None:
    """Binding: a different meter, interval, energy or salt gives another commitment."""
    assume(first != second)
    assert first.commitment(CHAIN_ID) != second.commitment(CHAIN_ID)
    assert not second.opens(CHAIN_ID, first.commitment(CHAIN_ID))


@given(openings, st.sampled_from(["meter", "interval_start", "import_wh", "export_wh", "salt"]))
def test_changing_any_field_of_an_opening_breaks_it(opening: Opening, name: str) -> None:
    fields = opening.to_json()
    if name == "meter":
        fields["meter"] = next(m for m in METERS if m != opening.meter)
    elif name == "salt":
        fields["salt"] = (bytes([opening.salt[0] ^ 1]) + opening.salt[1:]).hex()
    else:
        fields[name] = getattr(opening, name) + 1
    forged = Opening.from_json(fields)
    assert not forged.opens(CHAIN_ID, opening.commitment(CHAIN_ID))


@given(openings)
def test_the_chain_is_part_of_the_commitment(opening: Opening) -> None:
    assert not opening.opens("another-chain", opening.commitment(CHAIN_ID))


def test_the_same_reading_with_fresh_salts_gives_unlinkable_commitments() -> None:
    """Hiding: equal readings are not recognisable on chain; only the salt links them."""
    reading = {"import_wh": 412, "export_wh": 0}
    seen = {
        commitment(CHAIN_ID, METERS[0], 1_773_169_200, **reading, salt=new_salt())
        for _ in range(200)
    }
    assert len(seen) == 200
    with pytest.raises(ValueError, match="32 bytes"):
        commitment(CHAIN_ID, METERS[0], 1_773_169_200, **reading, salt=b"short")


@given(openings)
def test_an_opening_round_trips_through_canonical_json(opening: Opening) -> None:
    again = Opening.from_json(codec.decode(codec.encode(opening.to_json()), 1 << 20))
    assert again == opening


@pytest.mark.parametrize(
    ("change", "field", "message"),
    [
        ({"meter": "alice"}, "opening.meter", "does not match"),
        ({"import_wh": -1}, "opening.import_wh", "between 0"),
        ({"export_wh": True}, "opening.export_wh", "must be an integer"),
        ({"salt": "ab" * 31}, "opening.salt", "does not match"),
        ({"salt": "AB" * 32}, "opening.salt", "does not match"),
        ({"extra": 1}, "opening.extra", "not a known field"),
    ],
)
def test_a_bad_opening_is_refused_naming_the_field(
    change: dict[str, object], field: str, message: str
) -> None:
    good = Opening(METERS[0], 900, 1, 2, b"\x01" * SALT_BYTES).to_json()
    with pytest.raises(FieldError, match=message) as caught:
        Opening.from_json({**good, **change})
    assert caught.value.field == field


@given(st.lists(openings, min_size=1, max_size=20, unique_by=lambda o: (o.meter, o.interval_start)))
def test_a_proof_round_trips_and_opens_each_report_once(found: list[Opening]) -> None:
    proof = Proof(CHAIN_ID, tuple(found))
    assert Proof.from_json(codec.decode(codec.encode(proof.to_json()), 1 << 20)) == proof
    twice = {**proof.to_json(), "openings": [*proof.to_json()["openings"], found[0].to_json()]}  # type: ignore[misc]
    with pytest.raises(FieldError, match="already opened") as caught:
        Proof.from_json(twice)
    assert caught.value.field == f"proof.openings[{len(found)}]"
    with pytest.raises(FieldError, match="non-empty"):
        Proof.from_json({"chain_id": CHAIN_ID, "openings": []})


# -- settlement arithmetic ------------------------------------------------------------------


@given(energy, energy, energy, energy)
def test_backstop_energy_accounts_for_every_metered_watt_hour(
    imported: int, exported: int, bought: int, sold: int
) -> None:
    backstop = backstop_energy(imported, exported, bought, sold)
    # What was imported is what was bought, less what went unused, plus what the supplier
    # sold; what was exported is what was delivered plus what the supplier bought.
    assert imported == bought - backstop.unused_wh + backstop.import_wh
    assert exported == delivered(exported, sold) + backstop.export_wh
    assert backstop.import_wh * backstop.unused_wh == 0
    assert 0 <= delivered(exported, sold) <= min(exported, sold)


uses = st.builds(
    IntervalUse,
    interval_start=st.integers(0, 95).map(lambda k: k * 900),
    import_wh=energy,
    export_wh=energy,
    bought_wh=st.integers(0, 5_000),
    sold_wh=st.integers(0, 5_000),
    import_price=st.sampled_from([12_150, 20_480, 34_520]),
    export_price=st.sampled_from([9_000, 9_500]),
)


@given(st.lists(uses, max_size=40))
def test_bill_lines_sum_each_intervals_energy_per_pair_of_prices(days: list[IntervalUse]) -> None:
    lines = bill_lines(days)
    assert [line.prices for line in lines] == sorted({line.prices for line in lines})
    assert all(line.import_wh or line.unused_wh or line.export_wh for line in lines)
    for pair in {(u.import_price, u.export_price) for u in days}:
        energies = [
            backstop_energy(u.import_wh, u.export_wh, u.bought_wh, u.sold_wh)
            for u in days
            if (u.import_price, u.export_price) == pair
        ]
        line = next((x for x in lines if x.prices == pair), BillLine(*pair, 0, 0, 0))
        assert line.import_wh == sum(e.import_wh for e in energies)
        assert line.unused_wh == sum(e.unused_wh for e in energies)
        assert line.export_wh == sum(e.export_wh for e in energies)


@given(st.lists(uses, max_size=20), st.lists(uses, max_size=20))
def test_without_trades_a_bill_is_additive(
    first: list[IntervalUse], second: list[IntervalUse]
) -> None:
    """Why a late report of an interval without trades can be billed on its own."""
    quiet = [dataclasses.replace(u, bought_wh=0, sold_wh=0) for u in first + second]
    whole = {line.prices: line for line in bill_lines(quiet)}
    parts: dict[tuple[int, int], list[int]] = {}
    for line in (*bill_lines(quiet[: len(first)]), *bill_lines(quiet[len(first) :])):
        total = parts.setdefault(line.prices, [0, 0, 0])
        total[0] += line.import_wh
        total[1] += line.unused_wh
        total[2] += line.export_wh
    assert {p: [w.import_wh, w.unused_wh, w.export_wh] for p, w in whole.items()} == parts


def test_a_bill_line_is_decoded_with_field_errors() -> None:
    line = BillLine(25_000, 9_000, 500, 0, 0)
    assert BillLine.from_json(line.to_json(), "line") == line
    with pytest.raises(FieldError) as caught:
        BillLine.from_json({**line.to_json(), "unused_wh": -5}, "tx.body.lines[0]")
    assert caught.value.field == "tx.body.lines[0].unused_wh"


def test_metered_sums_a_participants_meters() -> None:
    salt = b"\x00" * SALT_BYTES
    found = metered(
        [
            Opening(METERS[0], 900, 100, 5, salt),
            Opening(METERS[1], 900, 20, 0, salt),
            Opening(METERS[2], 900, 7, 7, salt),
        ],
        {METERS[0]: "home", METERS[1]: "home"},
    )
    assert found == {("home", 900): (120, 5)}
