"""The one-pass reader gives exactly what the parser and the checker give, or nothing.

``contracts.check`` tries :func:`contracts.reader.read` first and falls back to
the parser and the checker. What could go wrong is the reader accepting a
contract the checker refuses, or building another contract (positions
included) or other warnings. These tests compare the two paths on written,
generated and mutated contracts, with mutations aimed at every value the
checker judges, and check that valid contracts do take the one pass.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from contracts import CheckResult, ContractError, Diagnostic, check, format_contract
from contracts.checker import check_items
from contracts.model import Contract
from contracts.parser import decode, parse_raw
from contracts.reader import read
from tests.contracts.strategies import contracts
from tests.contracts.test_descent import WRITTEN
from tests.contracts.test_fuzz import FIG7, VOCABULARY

EXAMPLES = sorted((Path(__file__).parent / "examples").glob("*.contract"))

HOME = """\
Contract 'hogar'
Valid from 2026/01/01 00:00:00 to 2026/12/31 23:59:59
Consumption programmed 22:00-06:00 weekdays, 10:00-16:00 sat-sun
Production true and sell
Store true
DemandResponse true shed 'Calentador'
Devices: 'Lavadora', 'Secadora', 'Calentador'
IF Price < 2 OR (Surplus > 1.5 kW AND NOT Weekday IN weekends) THEN
  TURN ON DEVICE 'Lavadora'
  NOTIFY 'Lavadora encendida: energía barata'
ELSE
  TURN OFF DEVICE 'Lavadora'
ENDIF
IF Battery < 20 % AND Time >= 18:00 AND DRLevel = 0 AND Service = connected THEN
  TURN OFF DEVICE 'Secadora'
ENDIF
IF Consumption > 2 kWh AND Time IN 22:00-24:00 AND mon != Weekday THEN
  SELL SURPLUS AT MIN 1.8 MXN/kWh
  BUY up to 1.5 kWh AT MAX 1.2 MXN/kWh
ENDIF
Parties: ISO, SUPPLIER, 'casa-7'
"""

# Values the checker judges, each written right and wrong, to put in place of a token.
EDGE_VALUES = [
    "2024/02/29",
    "2026/02/29",
    "0000/01/01",
    "2026/13/01",
    "2026/04/31",
    "9999/12/31",
    "24:00:00",
    "23:59:60",
    "00:00:00",
    "24:00",
    "24:01",
    "23:60",
    "7:05",
    "06:00",
    "22:00",
    "0",
    "-0",
    "0.0",
    "-1",
    "101",
    "100",
    "3",
    "1.5",
    "1.2345678",
    "123456789012345",
    "1234567890123456",
    "0.0001",
    "W",
    "kW",
    "Wh",
    "MWh",
    "%",
    "MXN/kWh",
    "MXN/MWh",
    "''",
    "' '",
    "'" + "x" * 65 + "'",
    "'" + "y" * 101 + "'",
    "'a''b'",
    "'Lavadora'",
    "'Secadora'",
    "'casa 1'",
    "'-casa'",
    "'casa-7'",
    "iso",
    "Supplier",
    "FOO",
    "mon",
    "sun",
    "weekdays",
    "daily",
    "funday",
    "fri-mon",
    "weekdays-sun",
    "cut",
    "connected",
    "Price",
    "Time",
    "Weekday",
    "Battery",
    "DRLevel",
    "Consumption",
    "Service",
    "Soc",
    "Precio",
    "DemandRespose",
    "false",
    "true",
]
_TOKEN = re.compile(r"'(?:[^'\n]|'')*'|[^\s,()]+")


def _slow(text: str) -> tuple[Contract | None, tuple[Diagnostic, ...]]:
    try:
        items = parse_raw(decode(text))
    except ContractError as err:
        return None, err.diagnostics
    return check_items(items)


def _agree(text: str) -> bool:
    """The reader agrees with the parser and the checker on ``text``; whether it read it."""
    slow_contract, slow_diagnostics = _slow(text)
    result = check(text)
    assert result.diagnostics == slow_diagnostics
    assert repr(result.contract) == repr(slow_contract)
    fast = read(text)
    if fast is None:
        return False
    contract, warnings = fast
    assert slow_contract is not None, f"the reader accepted an invalid contract: {text!r}"
    assert contract == slow_contract
    assert repr(contract) == repr(slow_contract)  # positions too
    assert warnings == slow_diagnostics
    return True


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_examples_agree_and_the_valid_ones_are_read_in_one_pass(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    assert _agree(text) == check(text).ok  # fig7.contract has the paper's 2019/09/31


def test_a_household_contract_using_every_clause_is_read_in_one_pass() -> None:
    assert _agree(HOME)
    assert _agree(HOME.replace("\n", "\r\n").lower())


@pytest.mark.parametrize("text", WRITTEN)
def test_written_texts_agree(text: str) -> None:
    _agree(text)


@given(contracts())
def test_generated_contracts_are_read_in_one_pass(contract: Contract) -> None:
    assert _agree(format_contract(contract))


@pytest.mark.parametrize(
    ("change", "warnings"),
    [
        (("DemandResponse true shed 'Calentador'", "DemandRespose true shed 'Calentador'"), 1),
        (("Production true and sell", "Production false"), 1),
        (
            (
                "Consumption programmed 22:00-06:00 weekdays, 10:00-16:00 sat-sun",
                "Consumption false",
            ),
            1,
        ),
        (("DemandResponse true shed 'Calentador'", "DemandRespose true"), 1),
    ],
)
def test_warnings_are_the_checkers(change: tuple[str, str], warnings: int) -> None:
    text = HOME.replace(*change)
    assert _agree(text)
    result = read(text)
    assert result is not None
    assert len(result[1]) == warnings


def test_warnings_come_in_order_of_position() -> None:
    text = (
        HOME.replace("Production true and sell", "Production false")
        .replace(
            "Consumption programmed 22:00-06:00 weekdays, 10:00-16:00 sat-sun", "Consumption false"
        )
        .replace("DemandResponse true shed 'Calentador'", "DemandRespose true")
        .replace("Devices: 'Lavadora', 'Secadora', 'Calentador'\n", "")
    )
    assert _agree(text)
    result = read(text)
    assert result is not None
    assert [(d.line, d.column) for d in result[1]] == sorted((d.line, d.column) for d in result[1])
    assert len(result[1]) == 3


@pytest.mark.parametrize(
    ("old", "new"),
    [
        (
            "2026/01/01 00:00:00 to 2026/12/31 23:59:59",
            "2026/01/01 00:00:00 to 2026/01/01 00:00:00",
        ),
        (
            "2026/01/01 00:00:00 to 2026/12/31 23:59:59",
            "2026/12/31 23:59:59 to 2026/01/01 00:00:00",
        ),
        ("Contract 'hogar'\n", ""),
        ("Contract 'hogar'\n", "Store false\nContract 'hogar'\n"),
        ("Store true\n", "Store true\nStore false\n"),
        ("Parties: ISO, SUPPLIER, 'casa-7'\n", ""),
        ("Parties: ISO, SUPPLIER, 'casa-7'", "Parties: ISO, SUPPLIER, iso"),
        ("Parties: ISO, SUPPLIER, 'casa-7'", "Parties:"),
        ("'Lavadora', 'Secadora', 'Calentador'", "'Lavadora', 'Secadora', 'Lavadora'"),
        ("'Lavadora', 'Secadora', 'Calentador'", "'Lavadora', 'Secadora'"),
        ("shed 'Calentador'", "shed 'Calentador', 'Calentador'"),
        ("TURN OFF DEVICE 'Secadora'", "TURN OFF DEVICE 'Plancha'"),
        ("  TURN OFF DEVICE 'Secadora'\n", ""),
        ("ELSE\n  TURN OFF DEVICE 'Lavadora'\n", "ELSE\n"),
        ("22:00-06:00 weekdays", "22:00-22:00 weekdays"),
        ("Time IN 22:00-24:00", "Time IN 24:00-22:00"),
        ("Time IN 22:00-24:00", "Time IN 22:00-22:00"),
        ("Time IN 22:00-24:00", "Weekday IN 22:00-24:00"),
        ("Weekday IN weekends", "Time IN weekends"),
        ("Weekday IN weekends", "Precio IN weekends"),
        ("Weekday IN weekends", "Weekday IN weekends-mon"),
        ("mon != Weekday", "mon < Weekday"),
        ("mon != Weekday", "Price != Weekday"),
        ("mon != Weekday", "3 < 4"),
        ("mon != Weekday", "Precio < 4"),
        ("mon != Weekday", "4 < Precio"),
        ("Service = connected", "Service = 3"),
        ("Service = connected", "Service < cut"),
        ("Time >= 18:00", "Time >= 18"),
        ("Time >= 18:00", "Price >= 18:00"),
        ("Battery < 20 %", "Battery < 20 kW"),
        ("Battery < 20 %", "Battery < 101"),
        ("DRLevel = 0", "DRLevel = 4"),
        ("DRLevel = 0", "DRLevel = 1 %"),
        ("Surplus > 1.5 kW", "Surplus > 1.5"),
        ("Surplus > 1.5 kW", "Surplus > 1.5 %"),
        ("Price < 2", "Price < 2 kWh"),
        ("AT MIN 1.8 MXN/kWh", "AT MIN 1.8 kWh"),
        ("up to 1.5 kWh", "up to 1.5 kW"),
        ("up to 1.5 kWh", "up to 0 kWh"),
        ("up to 1.5 kWh", "up to 1.5 Wh"),
        ("up to 1.5 kWh", "up to 1.5"),
        ("AT MAX 1.2 MXN/kWh", "AT MAX 1.2 %"),
        ("NOTIFY 'Lavadora encendida: energía barata'", "NOTIFY ' '"),
        ("NOTIFY 'Lavadora encendida: energía barata'", "NOTIFY '" + "n" * 281 + "'"),
        ("NOTIFY 'Lavadora encendida: energía barata'", "NOTIFY '\x07'"),
    ],
)
def test_every_error_is_left_to_the_checker(old: str, new: str) -> None:
    text = HOME.replace(old, new, 1)
    assert text != HOME
    assert not _agree(text)
    assert not check(text).ok


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ("Time IN 22:00-24:00", "Time IN 22:00-06:00"),
        ("mon != Weekday", "Weekday = Day"),
        ("mon != Weekday", "Consumption >= Production"),
        ("Service = connected", "cut != Service"),
        ("Time >= 18:00", "18:00 > Time"),
        ("Battery < 20 %", "Soc <= 100"),
        ("DRLevel = 0", "3 = DRLevel"),
        ("Price < 2", "2 MXN/MWh > Price"),
        ("up to 1.5 kWh", "1 MWh"),
        ("up to 1.5 kWh", "500 Wh"),
        ("AT MIN 1.8 MXN/kWh", "AT MIN -0"),
        ("Weekday IN weekends", "Weekday IN fri-mon wed"),
        ("Parties: ISO, SUPPLIER, 'casa-7'", "Parties: ISO, 'ISO'"),
        ("10:00-16:00", "10:00-24:00"),
        ("mon != Weekday", "Weekday != Day"),
        ("mon != Weekday", "Consumption > Production"),
        ("Service = connected", "connected = Service"),
        ("Time >= 18:00", "18:00 <= Time"),
        ("DRLevel = 0", "DRLevel = 2.0"),
        ("Price < 2", "Price < 2 MXN/MWh"),
        ("'casa-7'", "'casa-7', Retailer, 'a.b:c_d'"),
    ],
)
def test_other_valid_forms_are_read_in_one_pass(old: str, new: str) -> None:
    text = HOME.replace(old, new, 1)
    assert text != HOME
    assert _agree(text)


def test_deep_conditions_are_left_to_the_parser() -> None:
    twenty = "IF " + "NOT " * 20 + "Price < 1 THEN\nNOTIFY 'x'\nENDIF\n"
    deeper = "IF " + "NOT " * 21 + "Price < 1 THEN\nNOTIFY 'x'\nENDIF\n"
    too_deep = "IF " + "NOT " * 30 + "Price < 1 THEN\nNOTIFY 'x'\nENDIF\n"
    assert _agree(HOME.replace("Parties:", twenty + "Parties:"))
    assert not _agree(HOME.replace("Parties:", deeper + "Parties:"))
    assert check(HOME.replace("Parties:", deeper + "Parties:")).ok
    assert not check(HOME.replace("Parties:", too_deep + "Parties:")).ok


def _mutate(text: str, data: st.DataObject) -> str:
    for _ in range(data.draw(st.integers(1, 3))):
        spans = [m.span() for m in _TOKEN.finditer(text)]
        start, end = data.draw(st.sampled_from(spans))
        piece = data.draw(st.sampled_from(EDGE_VALUES + VOCABULARY))
        text = text[:start] + piece + text[end:]
    return text


@given(st.data())
def test_values_put_in_place_of_tokens_agree(data: st.DataObject) -> None:
    base = data.draw(st.sampled_from([HOME, FIG7, format_contract(data.draw(contracts()))]))
    _agree(_mutate(base, data))


@given(st.data())
def test_mutated_texts_agree(data: st.DataObject) -> None:
    text = data.draw(st.sampled_from([HOME, FIG7]))
    for _ in range(data.draw(st.integers(1, 4))):
        position = data.draw(st.integers(0, len(text)))
        piece = data.draw(st.sampled_from(VOCABULARY + EDGE_VALUES))
        if data.draw(st.booleans()):
            text = text[:position] + piece + text[position:]
        else:
            text = text[:position] + text[position + data.draw(st.integers(1, 8)) :]
    _agree(text)


def test_check_result_is_the_same_whichever_path_reads_it() -> None:
    fast = check(HOME)
    contract, diagnostics = _slow(HOME)
    assert fast == CheckResult(contract, diagnostics)
