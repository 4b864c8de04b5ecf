"""The contract language's tokens, produced by one regular expression.

It implements the terminals that ``grammar.lark`` declares. Keywords are
case-insensitive: a WORD whose lower-case spelling is a keyword becomes that
keyword's token, everywhere (the grammar accepts CONSUMPTION and PRODUCTION as
variable names inside conditions).
"""

from __future__ import annotations

import re
from typing import Final

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


class Token:
    """A token: its terminal name (as in grammar.lark), text and 1-based position."""

    __slots__ = ("column", "line", "type", "value")

    def __init__(self, type_: str, value: str, line: int, column: int) -> None:
        self.type = type_
        self.value = value
        self.line = line
        self.column = column

    def __repr__(self) -> str:
        return f"Token({self.type!r}, {self.value!r}, {self.line}:{self.column})"


END: Final = "$END"

_BOUNDARY = r"(?![A-Za-z0-9_])"
_MASTER: Final = re.compile(
    rf"""
    [ \t\f\r]*                     # blanks before a token are skipped
    (?:
     (?P<_NL>\n)
    |(?P<END>\Z)
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
    )
    """,
    re.VERBOSE,
)

_BLANKS: Final = re.compile(r"[ \t\f\r]*")
_NAMES: Final[list[str]] = [""] * (_MASTER.groups + 1)
for _name, _index in _MASTER.groupindex.items():
    _NAMES[_index] = "MINUS" if _name == "MINUS2" else "$END" if _name == "END" else _name

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


def _error(line: int, column: int, message: str, filename: str, **extra: str) -> ContractError:
    return ContractError([Diagnostic(Severity.ERROR, line, column, message, **extra)], filename)


def tokenize(text: str, filename: str = "<contract>") -> list[Token]:
    """The tokens of ``text``, then an END token after the last character.

    Raise ContractError at the first character that starts no token.
    """
    tokens: list[Token] = []
    emit = tokens.append
    match = _MASTER.match
    names = _NAMES
    keywords = KEYWORDS
    pos = 0
    line = 1
    line_start = 0
    while True:
        found = match(text, pos)
        if found is None:
            pos = _BLANKS.match(text, pos).end()  # type: ignore[union-attr]
            char = text[pos]
            raise _error(
                line,
                pos - line_start + 1,
                f"unexpected character {_describe(char)}",
                filename,
                **({"hint": _CHARACTER_HINTS[char]} if char in _CHARACTER_HINTS else {}),
            )
        index = found.lastindex
        assert index is not None  # every alternative is a named group
        start, pos = found.span(index)
        kind = names[index]
        if kind == "WORD":
            value = text[start:pos]
            emit(Token(keywords.get(value.lower(), "WORD"), value, line, start - line_start + 1))
        elif kind == "_NL":
            emit(Token(kind, "\n", line, start - line_start + 1))
            line += 1
            line_start = pos
        elif kind == "COMMENT":
            continue
        elif kind == "$END":
            emit(Token(END, "", line, start - line_start + 1))
            return tokens
        elif kind == "OPEN_STRING":
            raise _error(
                line,
                start - line_start + 1,
                "this string is not closed on its line",
                filename,
                expected="a closing single quote (')",
                hint="write a quote inside a string as two quotes: 'Juan''s'",
            )
        else:
            emit(Token(kind, text[start:pos], line, start - line_start + 1))
