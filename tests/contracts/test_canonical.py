"""Canonical form, content hash, short id and receipt; format then parse is the identity."""

from __future__ import annotations

import hashlib
import random
import re
from datetime import datetime
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from contracts import content_hash, format_contract, parse, receipt, short_id
from contracts.model import Contract
from tests.contracts.strategies import contracts

FIG7_FIXED = (
    (Path(__file__).parent / "examples" / "fig7.contract")
    .read_text(encoding="utf-8")
    .replace("2019/09/31", "2019/09/30")
)

FIG7_CANONICAL = """\
Contract 'prueba'
Valid from 2019/08/01 00:00:00 to 2019/09/30 23:59:59
Consumption true
Production true and sell
Store false
DemandResponse false
IF Price < 3 THEN
  TURN ON DEVICE 'Lavadora'
ENDIF
Parties: ISO
"""


def test_fig7_canonical_text() -> None:
    assert format_contract(parse(FIG7_FIXED)) == FIG7_CANONICAL


def test_hash_is_sha256_of_the_canonical_utf8_bytes_and_short_id_its_prefix() -> None:
    contract = parse(FIG7_FIXED)
    digest = hashlib.sha256(FIG7_CANONICAL.encode("utf-8")).hexdigest()
    assert content_hash(contract) == digest
    assert short_id(contract) == "0x" + digest[:10].upper()
    assert re.fullmatch(r"0x[0-9A-F]{10}", short_id(contract))


def test_receipt_has_the_papers_shape() -> None:
    contract = parse(FIG7_FIXED)
    text = receipt(contract, datetime(2019, 7, 11, 18, 23, 47))
    assert text == f"Timestamp 2019/07/11 18:23:47 to 'prueba' [{short_id(contract)}]"
    assert re.fullmatch(
        r"Timestamp \d{4}/\d\d/\d\d \d\d:\d\d:\d\d to '.*' \[0x[0-9A-F]{10}\]", text
    )


def test_receipt_quotes_names_with_quotes_and_pads_early_years() -> None:
    contract = parse(
        "Contract 'Juan''s'\nValid from 0999/01/01 00:00:00 to 2026/01/01 00:00:00\nParties: ISO\n"
    )
    assert receipt(contract, datetime(999, 1, 2, 3, 4, 5)).startswith(
        "Timestamp 0999/01/02 03:04:05 to 'Juan''s' ["
    )
    assert format_contract(contract).splitlines()[1] == (
        "Valid from 0999/01/01 00:00:00 to 2026/01/01 00:00:00"
    )


def test_spelling_spacing_and_synonyms_do_not_change_the_identity() -> None:
    messy = """
    contract 'prueba'
    VALID from 2019/8/1 0:00:00 to 2019/09/30 23:59:59   # one-digit parts
    consumption true
    production TRUE and SELL
    store false
    DemandRespose false
    if price<3.00 then
        turn on device 'Lavadora'
    endif
    parties:iso
    """
    assert short_id(parse(messy)) == short_id(parse(FIG7_FIXED))


def test_different_contracts_have_different_ids() -> None:
    other = parse(FIG7_FIXED.replace("Price < 3", "Price < 2.5"))
    assert short_id(other) != short_id(parse(FIG7_FIXED))


def test_canonical_conditions_keep_only_needed_parentheses() -> None:
    head = "Contract 'x'\nValid from 2026/01/01 00:00:00 to 2026/12/31 23:59:59\n"
    source = (
        head
        + "IF ((Price < 3)) AND (Surplus > 1 kW OR NOT (Battery < 20 AND Time IN 22:00-06:00)) "
        + "THEN NOTIFY 'x' ENDIF\nParties: ISO\n"
    )
    text = format_contract(parse(source))
    assert (
        "IF Price < 3 AND (Surplus > 1 kW OR NOT (Battery < 20 AND Time IN 22:00-06:00)) THEN"
        in text
    )


def test_canonical_numbers_units_and_days() -> None:
    head = "Contract 'x'\nValid from 2026/01/01 00:00:00 to 2026/12/31 23:59:59\n"
    source = (
        head
        + "Consumption programmed 22:00-06:00 mon tue wed thu, 10:00-24:00 sat-sun, "
        + "1:00-2:00 mon wed\n"
        + "IF Consumption > 1.50kwh AND Price <= -0.0 AND ExportPrice > 1500.000 mxn/mwh "
        + "THEN BUY up to 2.000 KWH AT MAX 03 ENDIF\nParties: iso\n"
    )
    lines = format_contract(parse(source)).splitlines()
    assert lines[2] == (
        "Consumption programmed 22:00-06:00 mon-thu, 10:00-24:00 weekends, 01:00-02:00 mon wed"
    )
    assert lines[6] == (
        "IF Consumption > 1.5 kWh AND Price <= 0 AND ExportPrice > 1500 MXN/MWh THEN"
    )
    assert lines[7] == "  BUY UP TO 2 kWh AT MAX 3"


@given(contracts())
def test_format_then_parse_is_the_identity(contract: Contract) -> None:
    text = format_contract(contract)
    again = parse(text)
    assert again == contract
    assert format_contract(again) == text
    assert short_id(again) == short_id(contract)


def _outside_quotes(text: str, change: random.Random) -> str:
    """Change letter case and spacing everywhere except inside string literals."""
    out: list[str] = []
    in_string = False
    for char in text:
        if char == "'":
            in_string = not in_string
            out.append(char)
            continue
        if in_string:
            out.append(char)
        elif char.isalpha():
            out.append(char.upper() if change.random() < 0.5 else char.lower())
        elif char == " ":
            out.append(" " * change.randint(1, 3))
        else:
            out.append(char)
    return "".join(out)


@given(contracts(), st.randoms(use_true_random=False))
def test_case_and_spacing_never_change_the_contract(
    contract: Contract, change: random.Random
) -> None:
    variant = _outside_quotes(format_contract(contract), change)
    assert parse(variant) == contract
