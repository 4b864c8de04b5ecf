"""The contract language's tokens, produced by one regular expression.

It implements the terminals that ``grammar.lark`` declares. Keywords are
case-insensitive: a WORD whose lower-case spelling is a keyword becomes that
keyword's token, everywhere (the grammar accepts CONSUMPTION and PRODUCTION as
variable names inside conditions).

:func:`tokenize` is the reference: it names the first character that starts no
token. :func:`scan` is the fast path the parser tries first: the same tokens
from a regular expression that tries the commonest token (a word) first and
tells units and keywords apart by a dictionary, and None, instead of an error,
for any text it does not tokenize (the parser then uses :func:`tokenize`, which
reports the error).
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


# -- the fast path ---------------------------------------------------------------

# The same terminals as _MASTER, in one group, words first; blanks before each
# token in a group of their own (to count columns), and any character that starts
# no token in a third group. ``findall`` then returns every token of the text in
# one call, none skipped. A word that a '/' follows is left to the unit
# alternative (MXN/kWh); the possessive ``*+`` keeps it from giving letters back
# to match a shorter word. Units spelt as a word (W, kWh, ...) are words here and
# their kind comes from _KINDS: _MASTER's unit alternative matches them only as
# whole words, which is exactly the extent of a word.
_FAST: Final = re.compile(
    rf"""
    ([ \t\f\r]*+)
    (?:(
      [A-Za-z_][A-Za-z0-9_]*+(?!/)
    | \n
    | '(?:[^'\n]|'')*'
    | \d{{4}}/\d{{1,2}}/\d{{1,2}}{_BOUNDARY}
    | \d{{1,2}}:\d{{2}}:\d{{2}}{_BOUNDARY}
    | \d{{1,2}}:\d{{2}}{_BOUNDARY}
    | -(?=[ \t]*\d{{1,2}}:\d{{2}})
    | -?\d+(?:\.\d+)?
    | <= | >= | != | <> | == | < | > | =
    | [(),:%-]
    | (?i:MXN/[km]?wh){_BOUNDARY}
    | \#[^\n]*
    )|([\s\S]))
    """,
    re.VERBOSE,
)

type Scanned = tuple[str, str, int, int]
"""A token from :func:`scan`: terminal name, text, line and column (as :class:`Token`)."""

# The kind of a token by its whole text, for keywords as they are usually written,
# units and punctuation; anything else goes through _kind.
_KINDS: Final[dict[str, str]] = {
    **{
        spelling: kind
        for word, kind in KEYWORDS.items()
        for spelling in (word, word.upper(), word.capitalize())
    },
    "DemandResponse": "DEMANDRESPONSE",
    "DemandRespose": "DEMANDRESPONSE",
    **{
        spelling: "UNIT"
        for unit in ("W", "kW", "MW", "Wh", "kWh", "MWh")
        for spelling in (unit, unit.lower(), unit.upper())
    },
    "MXN/kWh": "UNIT",
    "MXN/MWh": "UNIT",
    "%": "UNIT",
    "\n": "_NL",
    "(": "LPAR",
    ")": "RPAR",
    ",": "COMMA",
    ":": "COLON",
    "-": "MINUS",
    **dict.fromkeys(("<=", ">=", "!=", "<>", "==", "<", ">", "="), "COMPARE"),
}
_UNIT_WORDS: Final = frozenset({"w", "kw", "mw", "wh", "kwh", "mwh"})


def _kind(value: str) -> str:
    """The kind of a token that _FAST matched and _KINDS does not list."""
    first = value[0]
    if first == "'":
        return "STRING"
    if first == "#":
        return "COMMENT"
    if first.isdigit() or first == "-":
        if value == "-":
            return "MINUS"  # the one before a time of day
        if "/" in value:
            return "DATE"
        colons = value.count(":")
        return "TIME" if colons == 2 else "CLOCK" if colons else "NUMBER"
    if "/" in value:
        return "UNIT"  # MXN/kWh in another case
    lower = value.lower()
    return "UNIT" if lower in _UNIT_WORDS else KEYWORDS.get(lower, "WORD")


def scan(text: str) -> list[Scanned] | None:
    """The tokens :func:`tokenize` gives for ``text``, as tuples, or None where it would
    raise (and for nothing else)."""
    tokens: list[Scanned] = []
    emit = tokens.append
    kinds = _KINDS
    pos = 0
    line = 1
    line_start = 0
    for blanks, value, other in _FAST.findall(text):
        if other:
            return None
        start = pos + len(blanks)
        pos = start + len(value)
        kind = kinds.get(value) or _kind(value)
        if kind == "_NL":
            emit(("_NL", "\n", line, start - line_start + 1))
            line += 1
            line_start = pos
        elif kind != "COMMENT":
            emit((kind, value, line, start - line_start + 1))
    # Only blanks are left (they match nothing alone): END goes after them.
    emit((END, "", line, len(text) - line_start + 1))
    return tokens
