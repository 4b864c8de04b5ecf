"""The contract language's tokens, produced by one regular expression.

It implements the terminals that ``grammar.lark`` declares. Keywords are
case-insensitive: a WORD whose lower-case spelling is a keyword becomes that
keyword's token, everywhere (the grammar accepts CONSUMPTION and PRODUCTION as
variable names inside conditions).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Final

from lark import Token

from contracts.errors import ContractError, Diagnostic, Severity

KEYWORDS: Final[dict[str, str]] = {
    word.lower(): word
    for word in [
        "CONTRACT",
        "VALID",
        "FROM",
        "TO",
        "CONSUMPTION",
        "PRODUCTION",
        "STORE",
        "DEVICES",
        "PARTIES",
        "TRUE",
        "FALSE",
        "PROGRAMMED",
        "SELL",
        "SHED",
        "IF",
        "THEN",
        "ELSE",
        "ENDIF",
        "AND",
        "OR",
        "NOT",
        "IN",
        "TURN",
        "ON",
        "OFF",
        "DEVICE",
        "SURPLUS",
        "AT",
        "MIN",
        "MAX",
        "BUY",
        "UP",
        "NOTIFY",
    ]
}
KEYWORDS["demandresponse"] = "DEMANDRESPONSE"
# The paper's Fig. 7 spelling; the checker warns and names the right keyword.
KEYWORDS["demandrespose"] = "DEMANDRESPONSE"

_BOUNDARY = r"(?![A-Za-z0-9_])"
_MASTER: Final = re.compile(
    rf"""
     (?P<_NL>\r?\n)
    |(?P<WS>[ \t\f\r]+)
    |(?P<COMMENT>\#[^\n]*)
    |(?P<STRING>'(?:[^'\n]|'')*')
    |(?P<OPEN_STRING>'[^\n]*)
    |(?P<DATE>\d{{4}}/\d{{1,2}}/\d{{1,2}}){_BOUNDARY}
    |(?P<TIME>\d{{1,2}}:\d{{2}}:\d{{2}}){_BOUNDARY}
    |(?P<CLOCK>\d{{1,2}}:\d{{2}}){_BOUNDARY}
    |(?P<MINUS>-(?=[ \t]*\d{{1,2}}:\d{{2}}))
    |(?P<NUMBER>-?\d+(?:\.\d+)?)
    |(?P<UNIT>(?i:MXN/[km]?wh|[km]?wh|[km]?w){_BOUNDARY}|%)
    |(?P<WORD>[A-Za-z_][A-Za-z0-9_]*)
    |(?P<COMPARE><=|>=|!=|<>|==|<|>|=)
    |(?P<LPAR>\()
    |(?P<RPAR>\))
    |(?P<COMMA>,)
    |(?P<COLON>:)
    |(?P<MINUS2>-)
    """,
    re.VERBOSE,
)

_SKIP: Final = frozenset({"WS", "COMMENT"})

_CHARACTER_HINTS: Final[dict[str, str]] = {
    '"': "strings are written in single quotes: 'Lavadora'",
    "$": "prices are written with the currency code: 2.5 MXN/kWh",
    "/": "units are W, kW, Wh, kWh, MWh, MXN/kWh, MXN/MWh and %",
    ";": "put each clause and each action on its own line",
    "{": "blocks are written IF ... THEN ... ENDIF",
    ".": "write numbers with a digit before the point: 0.5",
}


def _describe(char: str) -> str:
    if char.isprintable() and not char.isspace():
        return f"'{char}'"
    return f"U+{ord(char):04X}"


def tokenize(text: str, filename: str = "<contract>") -> Iterator[Token]:
    """Yield the tokens of ``text``; raise ContractError at the first bad character."""
    match = _MASTER.match
    keywords = KEYWORDS
    pos = 0
    line = 1
    line_start = 0
    end = len(text)
    while pos < end:
        found = match(text, pos)
        column = pos - line_start + 1
        if found is None:
            char = text[pos]
            raise ContractError(
                [
                    Diagnostic(
                        Severity.ERROR,
                        line,
                        column,
                        f"unexpected character {_describe(char)}",
                        hint=_CHARACTER_HINTS.get(char),
                    )
                ],
                filename,
            )
        kind = found.lastgroup
        value = found.group()
        next_pos = found.end()
        if kind == "WORD":
            kind = keywords.get(value.lower(), "WORD")
        elif kind == "MINUS2":
            kind = "MINUS"
        elif kind == "OPEN_STRING":
            raise ContractError(
                [
                    Diagnostic(
                        Severity.ERROR,
                        line,
                        column,
                        "this string is not closed on its line",
                        expected="a closing single quote (')",
                        hint="write a quote inside a string as two quotes: 'Juan''s'",
                    )
                ],
                filename,
            )
        if kind not in _SKIP:
            assert kind is not None  # every alternative is a named group
            yield Token(kind, value, pos, line, column, line, column + len(value), next_pos)
        if kind == "_NL":
            line += 1
            line_start = next_pos
        pos = next_pos
