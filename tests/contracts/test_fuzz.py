"""Any input either parses or raises ContractError: never another exception."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from contracts import Contract, ContractError, check, format_contract, parse
from contracts.lexer import KEYWORDS
from tests.contracts.strategies import contracts

FIG7 = (Path(__file__).parent / "examples" / "fig7.contract").read_text(encoding="utf-8")

VOCABULARY = [
    *KEYWORDS,
    *(k.upper() for k in KEYWORDS),
    "Price",
    "ExportPrice",
    "Consumption",
    "Surplus",
    "Time",
    "Weekday",
    "DRLevel",
    "Battery",
    "Service",
    "cut",
    "connected",
    "weekdays",
    "sat",
    "mon-fri",
    "ISO",
    "SUPPLIER",
    "Parties:",
    "'Lavadora'",
    "'casa-1'",
    "''",
    "'",
    "3",
    "-2.5",
    "500 W",
    "1.2 kWh",
    "2 MXN/kWh",
    "20 %",
    "22:00",
    "06:00",
    "22:00-06:00",
    "2019/08/01",
    "00:00:00",
    "2019/09/31",
    "23:59:59",
    "<",
    "<=",
    ">",
    ">=",
    "=",
    "!=",
    "<>",
    "(",
    ")",
    ",",
    ":",
    "-",
    "#",
    "\n",
    "\r\n",
    "\t",
    "\x00",
    "é",
    "\ud800",
]


def _never_anything_else(source: str | bytes) -> None:
    result = check(source)
    assert result.ok == (result.contract is not None)
    if result.contract is None:
        assert result.diagnostics, "a rejected contract has at least one diagnostic"
    for diagnostic in result.diagnostics:
        assert diagnostic.line >= 1
        assert diagnostic.column >= 1
    if result.contract is None:
        with pytest.raises(ContractError) as info:
            parse(source)
        assert info.value.errors
    else:
        contract = parse(source)
        assert isinstance(contract, Contract)
        assert parse(format_contract(contract)) == contract


@given(st.binary(max_size=600))
def test_arbitrary_bytes(data: bytes) -> None:
    _never_anything_else(data)


@given(st.text(max_size=400))
def test_arbitrary_text(text: str) -> None:
    _never_anything_else(text)


@given(st.lists(st.sampled_from(VOCABULARY), max_size=60), st.lists(st.sampled_from([" ", "\n"])))
def test_token_soup(words: list[str], separators: list[str]) -> None:
    pieces = []
    for i, word in enumerate(words):
        pieces.append(word)
        pieces.append(separators[i % len(separators)] if separators else " ")
    _never_anything_else("".join(pieces))


@given(st.data())
def test_mutated_valid_contracts(data: st.DataObject) -> None:
    text = data.draw(st.sampled_from([FIG7, format_contract(data.draw(contracts()))]))
    for _ in range(data.draw(st.integers(1, 4))):
        position = data.draw(st.integers(0, len(text)))
        action = data.draw(st.sampled_from(["insert", "delete", "replace"]))
        piece = data.draw(st.sampled_from(VOCABULARY))
        if action == "insert":
            text = text[:position] + piece + text[position:]
        elif action == "delete":
            text = text[:position] + text[position + data.draw(st.integers(1, 8)) :]
        else:
            text = text[:position] + piece + text[position + len(piece) :]
    _never_anything_else(text)
