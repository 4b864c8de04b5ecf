"""The fast path (``scan`` and the descent parser) agrees with the reference (``tokenize``
and the LALR tables of grammar.lark) on everything it accepts, and accepts every
well-formed contract.

``parse_raw`` tries the fast path and leaves whatever it does not accept to the
tables, so the language and every syntax error stay the tables'. What could go
wrong is the fast path accepting text the tables refuse, or building another tree:
these tests compare the two token by token and node by node (positions included)
on generated, written and mutated contracts and on arbitrary text.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from contracts import ContractError, format_contract
from contracts.lexer import scan, tokenize
from contracts.parser import parse_descent, parse_lalr, parse_raw
from tests.contracts.strategies import contracts
from tests.contracts.test_fuzz import FIG7, VOCABULARY

EXAMPLES = sorted((Path(__file__).parent / "examples").glob("*.contract"))

WRITTEN = [
    # keywords in any case, comments, blank lines, tabs, CRLF, one-line rules
    (
        "contract 'x' # name\r\n\r\nVALID FROM 2026/01/01 00:00:00 TO 2026/12/31 23:59:59\n"
        "\tconsumption PROGRAMMED 22:00 - 06:00 mon-fri sat, 10:00-16:00\n"
        "production TRUE and SELL\nstore FALSE\ndemandrespose true SHED 'a', 'b''c'\n"
        "devices 'a', 'b''c'\n"
        "if not (price < 2.5 mxn/kwh or price > -3 MXN/MWh) and time in 22:00-06:00 then "
        "turn off device 'a' else notify 'x' endif\n"
        "IF (Consumption >= 1.5 kWh AND Production < 500 w) OR Battery <= 20 % "
        "OR DRLevel = 3 THEN\n"
        "\n  SELL SURPLUS AT MIN 1.8 MXN/kWh\n  SELL SURPLUS\n  BUY UP TO 2 kWh AT MAX 1.2\n"
        "  BUY 500 Wh AT MAX 1 MXN/kWh TURN ON DEVICE 'a'\nENDIF\n"
        "IF Weekday IN weekends AND Service != cut AND 10:00 < Time THEN\nTURN ON DEVICE 'b''c'\n"
        "ELSE\nENDIF\nParties: ISO, 'casa-1', SUPPLIER\n"
    ),
    "Contract 'x'\nParties:\n",
    "",
    "\n\n# only a comment\n",
    "IF ((((Price < 1)))) THEN ENDIF",
    "IF NOT NOT NOT Price < 1 THEN ENDIF",
    "IF Price < 1 AND (Price < 2 AND Price < 3) AND (Price < 4 OR Price < 5) THEN ENDIF",
]


def _tokens(text: str) -> list[tuple[str, str, int, int]] | None:
    try:
        reference = tokenize(text)
    except ContractError:
        return None
    return [(t.type, t.value, t.line, t.column) for t in reference]


def _agree(text: str) -> bool:
    """The fast path agrees with the reference on ``text``; whether it accepted it."""
    fast_tokens = scan(text)
    if fast_tokens is not None:
        assert fast_tokens == _tokens(text)
    fast = parse_descent(text)
    try:
        reference = parse_lalr(text)
    except ContractError:
        assert fast is None, "the descent parser accepted text the grammar refuses"
        return False
    if fast is None:
        return False
    assert repr(fast) == repr(reference)
    assert repr(parse_raw(text)) == repr(reference)
    return True


@pytest.mark.parametrize("text", WRITTEN)
def test_written_contracts_take_the_fast_path(text: str) -> None:
    assert _agree(text)


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_examples_take_the_fast_path(path: Path) -> None:
    assert _agree(path.read_text(encoding="utf-8"))


@pytest.mark.parametrize(
    "text",
    [
        "Contract 'x",  # an open string: the reference names it
        'Contract "x"',  # a character that starts no token
        "Valid from 2026/01/01 to 2026/12/31",  # a syntax error
        "IF " + "NOT " * 30 + "Price < 1 THEN ENDIF",  # nested past the limit
        "IF " + "(" * 200 + "Price < 1" + ")" * 200 + " THEN ENDIF",  # deep groups
        "Contract 'x' Parties: ISO",  # two clauses on a line
        "Consumption programmed 22:00-06:00 mon-",  # a day range without its end
        "IF Price < 3 THEN TURN ON DEVICE 'a' ENDIF Parties: ISO",
    ],
)
def test_what_the_fast_path_leaves_to_the_tables(text: str) -> None:
    assert not _agree(text)
    if text.startswith("IF ("):
        assert parse_raw(text)  # the tables accept deep groups without recursion


@given(contracts())
def test_canonical_contracts_take_the_fast_path(contract: object) -> None:
    assert _agree(format_contract(contract))  # type: ignore[arg-type]


@given(st.data())
def test_mutated_contracts_agree(data: st.DataObject) -> None:
    text = data.draw(st.sampled_from([FIG7, format_contract(data.draw(contracts()))]))
    for _ in range(data.draw(st.integers(1, 4))):
        position = data.draw(st.integers(0, len(text)))
        action = data.draw(st.sampled_from(["insert", "delete", "replace", "case"]))
        piece = data.draw(st.sampled_from(VOCABULARY))
        if action == "insert":
            text = text[:position] + piece + text[position:]
        elif action == "delete":
            text = text[:position] + text[position + data.draw(st.integers(1, 8)) :]
        elif action == "case":
            text = text[:position] + text[position:].swapcase()
        else:
            text = text[:position] + piece + text[position + len(piece) :]
    _agree(text)


@given(st.lists(st.sampled_from(VOCABULARY), max_size=60), st.lists(st.sampled_from([" ", "\n"])))
def test_token_soup_agrees(words: list[str], separators: list[str]) -> None:
    pieces = []
    for i, word in enumerate(words):
        pieces.append(word)
        pieces.append(separators[i % len(separators)] if separators else " ")
    _agree("".join(pieces))


@given(st.text(max_size=300))
def test_arbitrary_text_agrees(text: str) -> None:
    _agree(text)
