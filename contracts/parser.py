"""Syntax: source text to a raw tree of clauses, with positions.

``grammar.lark`` is the grammar. lark checks it and builds its LALR(1) tables
once per process, with the reduction callbacks that call :class:`_Builder`.
:func:`parse_raw` runs those tables over the tokens of :mod:`contracts.lexer`
in a short loop of its own (lark's general-purpose loop costs about twice as
much per token, see ``docs/performance.md``). The checker
(:mod:`contracts.checker`) turns the raw tree into a :class:`Contract`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from operator import itemgetter
from typing import Final, cast

from contracts.errors import ContractError, Diagnostic, Severity, did_you_mean
from contracts.lexer import END, Scanned, Token, scan, tokenize

MAX_SOURCE_BYTES: Final = 64 * 1024
MAX_CONDITION_DEPTH: Final = 24

# ---------------------------------------------------------------------------
# Raw tree: what was written, before names are resolved and values checked.
# ---------------------------------------------------------------------------


@dataclass(slots=True)
class RawClause:
    """A header clause: its keyword token and its argument tokens or nodes."""

    kind: str
    keyword: Token
    args: list[object]


@dataclass(slots=True)
class RawNumber:
    """``NUMBER UNIT?``."""

    number: Token
    unit: Token | None


@dataclass(slots=True)
class RawName:
    """A WORD (or CONSUMPTION/PRODUCTION) used as a name inside a condition."""

    token: Token


@dataclass(slots=True)
class RawClock:
    """``HH:MM`` inside a condition."""

    token: Token


@dataclass(slots=True)
class RawDays:
    """Day words: each item is one WORD or a ``WORD - WORD`` range."""

    items: list[tuple[Token, Token | None]]


@dataclass(slots=True)
class RawClockRange:
    """``HH:MM - HH:MM``."""

    start: Token
    end: Token


@dataclass(slots=True)
class RawWindow:
    """A window of a programmed schedule."""

    start: Token
    end: Token
    days: RawDays


type RawOperand = RawName | RawNumber | RawClock


@dataclass(slots=True)
class RawComparison:
    """``operand COMPARE operand``."""

    left: RawOperand
    op: Token
    right: RawOperand
    depth: int = 1


@dataclass(slots=True)
class RawMembership:
    """``operand IN range``."""

    subject: RawOperand
    keyword: Token
    within: RawClockRange | RawDays
    depth: int = 1


@dataclass(slots=True)
class RawNot:
    """``NOT inner``."""

    keyword: Token
    inner: RawCondition
    depth: int = 1


@dataclass(slots=True)
class RawBool:
    """``a AND b ...`` or ``a OR b ...`` (flattened)."""

    is_and: bool
    items: list[RawCondition]
    depth: int = 1


type RawCondition = RawComparison | RawMembership | RawNot | RawBool


@dataclass(slots=True)
class RawAction:
    """An action: its first keyword and its arguments."""

    kind: str
    keyword: Token
    args: list[object] = field(default_factory=list)


@dataclass(slots=True)
class RawRule:
    """``IF ... THEN ... [ELSE ...] ENDIF``."""

    keyword: Token
    condition: RawCondition
    then_keyword: Token
    then: list[RawAction]
    else_keyword: Token | None
    otherwise: list[RawAction] | None


type RawItem = RawClause | RawRule


def _depth_of(node: RawCondition) -> int:
    return node.depth


def _nested(depth: int, at: Token) -> int:
    if depth > MAX_CONDITION_DEPTH:
        raise ContractError(
            [
                Diagnostic(
                    Severity.ERROR,
                    at.line or 1,
                    at.column or 1,
                    f"condition is nested more than {MAX_CONDITION_DEPTH} levels deep",
                    hint="split it into several rules",
                )
            ]
        )
    return depth


def _bool_unchecked(children: list[object], is_and: bool) -> RawCondition:
    """``a AND b ...`` or ``a OR b ...`` from its operands and operator tokens, with
    nested groups of the same operator flattened into one (depth not bounded)."""
    if len(children) == 1:  # a lone operand, no AND/OR
        return children[0]  # type: ignore[return-value]
    items: list[RawCondition] = []
    depth = 0
    for child in children:
        if child.__class__ is Token:
            continue
        node: RawCondition = child  # type: ignore[assignment]
        if node.__class__ is RawBool and node.is_and == is_and:
            items.extend(node.items)
        else:
            items.append(node)
        depth = max(depth, node.depth)
    return RawBool(is_and, items, depth + 1)


def _bool(children: list[object], is_and: bool) -> RawCondition:
    """:func:`_bool_unchecked`, refused past MAX_CONDITION_DEPTH at its last operator."""
    node = _bool_unchecked(children, is_and)
    if len(children) > 1:
        at = [c for c in children if isinstance(c, Token)][-1]
        _nested(node.depth, at)
    return node


class _Builder:
    """Builds the raw tree at each reduction (lark calls these by rule name)."""

    def start(self, children: list[list[RawItem]]) -> list[RawItem]:
        return children[0]

    def first_line(self, children: list[RawItem]) -> list[RawItem]:
        return children

    def next_line(self, children: list[object]) -> list[RawItem]:
        items = children[0]
        assert isinstance(items, list)
        if len(children) > 1:
            items.append(children[1])
        return items

    def _clause(self, kind: str, children: list[object]) -> RawClause:
        keyword = children[0]
        assert isinstance(keyword, Token)
        return RawClause(kind, keyword, list(children[1:]))

    def contract_clause(self, children: list[object]) -> RawClause:
        return self._clause("contract", children)

    def valid_clause(self, children: list[object]) -> RawClause:
        return self._clause("valid", children)

    def consumption_clause(self, children: list[object]) -> RawClause:
        return self._clause("consumption", children)

    def production_clause(self, children: list[object]) -> RawClause:
        return self._clause("production", children)

    def store_clause(self, children: list[object]) -> RawClause:
        return self._clause("store", children)

    def dr_clause(self, children: list[object]) -> RawClause:
        return self._clause("demand_response", children)

    def devices_clause(self, children: list[object]) -> RawClause:
        return self._clause("devices", [c for c in children if not _is(c, "COLON")])

    def parties_clause(self, children: list[object]) -> RawClause:
        keyword = children[0]
        assert isinstance(keyword, Token)
        parties = [c for c in children[1:] if isinstance(c, Token) and c.type in ("WORD", "STRING")]
        colon = children[1]
        assert isinstance(colon, Token)
        return RawClause("parties", keyword, [colon, *parties])

    def party(self, children: list[Token]) -> Token:
        return children[0]

    def string_list(self, children: list[Token]) -> list[Token]:
        return [c for c in children if c.type == "STRING"]

    def schedule(self, children: list[object]) -> list[RawWindow]:
        return [c for c in children if isinstance(c, RawWindow)]

    def window(self, children: list[object]) -> RawWindow:
        start, _minus, end, *days = children
        assert isinstance(start, Token)
        assert isinstance(end, Token)
        return RawWindow(start, end, RawDays([d for d in days if isinstance(d, tuple)]))

    def day_item(self, children: list[Token]) -> tuple[Token, Token | None]:
        return (children[0], children[2] if len(children) == 3 else None)

    def rule(self, children: list[object]) -> RawRule:
        keyword, condition, then_keyword, then, else_keyword, otherwise, _endif = children
        assert isinstance(keyword, Token)
        assert isinstance(then_keyword, Token)
        assert isinstance(then, list)
        assert else_keyword is None or isinstance(else_keyword, Token)
        assert otherwise is None or isinstance(otherwise, list)
        return RawRule(
            keyword,
            condition,  # type: ignore[arg-type]
            then_keyword,
            then,
            else_keyword,
            otherwise,
        )

    def body_empty(self, _children: list[object]) -> list[RawAction]:
        return []

    def body_action(self, children: list[object]) -> list[RawAction]:
        actions, action = children
        assert isinstance(actions, list)
        assert isinstance(action, RawAction)
        actions.append(action)
        return actions

    def body_newline(self, children: list[object]) -> list[RawAction]:
        actions = children[0]
        assert isinstance(actions, list)
        return actions

    def or_cond(self, children: list[object]) -> RawCondition:
        return _bool(children, is_and=False)

    def and_cond(self, children: list[object]) -> RawCondition:
        return _bool(children, is_and=True)

    def negation(self, children: list[object]) -> RawNot:
        keyword, inner = children
        assert isinstance(keyword, Token)
        node: RawCondition = inner  # type: ignore[assignment]
        return RawNot(keyword, node, _nested(_depth_of(node) + 1, keyword))

    def group(self, children: list[object]) -> RawCondition:
        lpar, inner, _rpar = children
        assert isinstance(lpar, Token)
        node: RawCondition = inner  # type: ignore[assignment]
        _nested(_depth_of(node) + 1, lpar)
        return node

    def comparison(self, children: list[object]) -> RawComparison:
        left, op, right = children
        assert isinstance(op, Token)
        return RawComparison(left, op, right)  # type: ignore[arg-type]

    def membership(self, children: list[object]) -> RawMembership:
        subject, keyword, *rest = children
        assert isinstance(keyword, Token)
        within: RawClockRange | RawDays
        if len(rest) == 1 and isinstance(rest[0], RawClockRange):
            within = rest[0]
        else:
            within = RawDays([d for d in rest if isinstance(d, tuple)])
        return RawMembership(subject, keyword, within)  # type: ignore[arg-type]

    def clock_range(self, children: list[Token]) -> RawClockRange:
        return RawClockRange(children[0], children[2])

    def name_ref(self, children: list[Token]) -> RawName:
        return RawName(children[0])

    def number(self, children: list[Token]) -> RawNumber:
        return RawNumber(children[0], children[1] if len(children) > 1 else None)

    quantity = number

    def clock(self, children: list[Token]) -> RawClock:
        return RawClock(children[0])

    def turn(self, children: list[Token]) -> RawAction:
        return RawAction("turn", children[0], list(children[1:]))

    def sell(self, children: list[object]) -> RawAction:
        keyword = children[0]
        assert isinstance(keyword, Token)
        return RawAction("sell", keyword, [c for c in children[2:] if isinstance(c, RawNumber)])

    def buy(self, children: list[object]) -> RawAction:
        keyword = children[0]
        assert isinstance(keyword, Token)
        return RawAction("buy", keyword, [c for c in children[1:] if isinstance(c, RawNumber)])

    def notify(self, children: list[Token]) -> RawAction:
        return RawAction("notify", children[0], [children[1]])


def _is(node: object, kind: str) -> bool:
    return isinstance(node, Token) and node.type == kind


type _Callback = Callable[[list[object]], object]
type _Reduce = tuple[int, _Callback, str]
type _Tables = tuple[dict[int, dict[str, int | _Reduce]], dict[int, dict[str, int]], int, int]


@cache
def _tables() -> _Tables:
    """lark's LALR tables with plain-string keys, built on first use.

    ``actions[state][terminal]`` is the next state (shift) or a reduction
    ``(size, callback, rule name)``; ``goto[state][rule name]`` is the state
    after a reduction. lark names rules with its own Token type, whose
    comparisons run in Python; plain strings keep every lookup in C.

    Terminals are %declare'd in the grammar (they come from contracts.lexer), so
    lark's own lexer is never used; it only builds the tables and callbacks.
    Only text that the descent parser leaves to the tables needs them (syntax
    errors, mostly), so lark is imported here, not when the package is.
    """
    from lark import Lark  # noqa: PLC0415 - loaded only when a contract needs the tables
    from lark.parse_tree_builder import ExpandSingleChild  # noqa: PLC0415
    from lark.parsers.lalr_analysis import Shift  # noqa: PLC0415

    lark = Lark(
        resources.files("contracts").joinpath("grammar.lark").read_text(encoding="utf-8"),
        parser="lalr",
        lexer="basic",
        transformer=_Builder(),
        maybe_placeholders=True,
    )
    parser = lark.parser.parser.parser
    table = parser.parse_table
    actions: dict[int, dict[str, int | _Reduce]] = {}
    goto: dict[int, dict[str, int]] = {}
    for state, row in table.states.items():
        actions[state] = {}
        goto[state] = {}
        for symbol, (action, arg) in row.items():
            name = str(symbol)
            if name.isupper() or name.startswith("$") or name == "_NL":
                if action is Shift:
                    actions[state][name] = arg
                else:
                    rule = arg
                    callback = parser.callbacks[rule]
                    if (
                        isinstance(callback, ExpandSingleChild)
                        and len(rule.expansion) == 1
                        and not getattr(rule.expansion[0], "filter_out", False)
                        and not str(rule.expansion[0].name).startswith("_")
                    ):
                        # A one-symbol ``?rule`` returns its child: do it in C.
                        callback = itemgetter(0)
                    actions[state][name] = (len(rule.expansion), callback, str(rule.origin.name))
            else:
                goto[state][name] = arg
    return actions, goto, table.start_states["start"], table.end_states["start"]


# ---------------------------------------------------------------------------
# Syntax errors people can act on
# ---------------------------------------------------------------------------

# How each terminal is named in messages; keywords as they are usually written.
TERMINAL_TEXT: Final[dict[str, str]] = {
    "CONTRACT": "Contract",
    "VALID": "Valid",
    "FROM": "from",
    "TO": "to",
    "CONSUMPTION": "Consumption",
    "PRODUCTION": "Production",
    "STORE": "Store",
    "DEMANDRESPONSE": "DemandResponse",
    "DEVICES": "Devices",
    "PARTIES": "Parties",
    "TRUE": "true",
    "FALSE": "false",
    "PROGRAMMED": "programmed",
    "SELL": "SELL",
    "SHED": "shed",
    "IF": "IF",
    "THEN": "THEN",
    "ELSE": "ELSE",
    "ENDIF": "ENDIF",
    "AND": "AND",
    "OR": "OR",
    "NOT": "NOT",
    "IN": "IN",
    "TURN": "TURN",
    "ON": "ON",
    "OFF": "OFF",
    "DEVICE": "DEVICE",
    "SURPLUS": "SURPLUS",
    "AT": "AT",
    "MIN": "MIN",
    "MAX": "MAX",
    "BUY": "BUY",
    "UP": "UP",
    "NOTIFY": "NOTIFY",
    "STRING": "a quoted string",
    "DATE": "a date (YYYY/MM/DD)",
    "TIME": "a time (HH:MM:SS)",
    "CLOCK": "a time of day (HH:MM)",
    "NUMBER": "a number",
    "UNIT": "a unit",
    "COMPARE": "a comparison (<, <=, >, >=, =, !=)",
    "WORD": "a name",
    "LPAR": "'('",
    "RPAR": "')'",
    "COMMA": "','",
    "COLON": "':'",
    "MINUS": "'-'",
    "_NL": "the end of the line",
    "$END": "the end of the contract",
}

_CLAUSE_STARTS: Final = frozenset(
    {
        "CONTRACT",
        "VALID",
        "CONSUMPTION",
        "PRODUCTION",
        "STORE",
        "DEMANDRESPONSE",
        "DEVICES",
        "PARTIES",
        "IF",
    }
)
_ACTION_STARTS: Final = frozenset({"TURN", "SELL", "BUY", "NOTIFY"})


def _describe_token(token: Token) -> str:
    if token.type == "$END":
        return "end of contract"
    if token.type == "_NL":
        return "end of line"
    if token.type == "STRING":
        return f"string {token.value}"
    return f"'{token.value}'"


def _expected_text(expected: set[str]) -> str:
    names = sorted({TERMINAL_TEXT.get(name, name) for name in expected})
    if len(names) > 8:
        names = [*names[:8], "..."]
    return ", ".join(names) if len(names) > 1 else names[0]


def _hint(token: Token, expected: set[str]) -> str | None:
    if token.type == "WORD":
        keywords = [
            TERMINAL_TEXT[name]
            for name in expected
            if name in TERMINAL_TEXT
            and TERMINAL_TEXT[name][0].isalpha()
            and " " not in TERMINAL_TEXT[name]
        ]
        if suggestion := did_you_mean(token.value, keywords):
            return suggestion
    if "ENDIF" in expected and token.type in ("$END", *_CLAUSE_STARTS):
        return "every IF needs an ENDIF"
    if "_NL" in expected and token.type in _CLAUSE_STARTS | _ACTION_STARTS:
        return "put each clause and each action on its own line"
    if "UNIT" in expected and token.type == "WORD":
        return "units are W, kW, MW, Wh, kWh, MWh, MXN/kWh, MXN/MWh and %"
    return None


def _end_position(text: str) -> tuple[int, int]:
    line = text.count("\n") + 1
    column = len(text) - (text.rfind("\n") + 1) + 1
    return line, column


def _syntax_error(token: Token, expected: set[str], filename: str) -> ContractError:
    return ContractError(
        [
            Diagnostic(
                Severity.ERROR,
                token.line,
                token.column,
                f"unexpected {_describe_token(token)}",
                expected=_expected_text(expected),
                hint=_hint(token, expected),
            )
        ],
        filename,
    )


def decode(source: str | bytes, filename: str = "<contract>") -> str:
    """The source as text: bytes must be UTF-8; the size is bounded."""
    if isinstance(source, bytes):
        if len(source) > MAX_SOURCE_BYTES:
            raise ContractError(
                [
                    Diagnostic(
                        Severity.ERROR,
                        1,
                        1,
                        f"contract is {len(source)} bytes; the limit is {MAX_SOURCE_BYTES}",
                    )
                ],
                filename,
            )
        try:
            return source.decode("utf-8")
        except UnicodeDecodeError as err:
            prefix = source[: err.start].decode("utf-8", errors="replace")
            line, column = _end_position(prefix)
            raise ContractError(
                [
                    Diagnostic(
                        Severity.ERROR,
                        line,
                        column,
                        f"byte 0x{source[err.start]:02X} is not valid UTF-8",
                        hint="save the contract as UTF-8",
                    )
                ],
                filename,
            ) from None
    try:
        size = len(source.encode("utf-8"))
    except UnicodeEncodeError as err:
        line, column = _end_position(source[: err.start])
        raise ContractError(
            [
                Diagnostic(
                    Severity.ERROR,
                    line,
                    column,
                    f"character U+{ord(source[err.start]):04X} cannot be written in UTF-8",
                )
            ],
            filename,
        ) from None
    if size > MAX_SOURCE_BYTES:
        raise ContractError(
            [
                Diagnostic(
                    Severity.ERROR,
                    1,
                    1,
                    f"contract is {size} bytes; the limit is {MAX_SOURCE_BYTES}",
                )
            ],
            filename,
        )
    return source


def parse_raw(text: str, filename: str = "<contract>") -> list[RawItem]:
    """The raw clauses of ``text``, or ContractError at the first syntax error.

    The descent parser (:func:`parse_descent`) reads well-formed contracts;
    whatever it does not accept is parsed again by the LALR tables of
    ``grammar.lark`` (:func:`parse_lalr`), which accept exactly the grammar and
    name the error. So the language and its syntax errors are the tables', and
    the descent parser only has to build the same tree for what it accepts
    (tests/contracts/test_descent.py compares the two on generated and mutated
    contracts).
    """
    items = parse_descent(text)
    return items if items is not None else parse_lalr(text, filename)


def parse_descent(text: str) -> list[RawItem] | None:
    """The raw clauses of ``text`` by the fast tokenizer and the descent parser, or None
    when they leave the text to :func:`parse_lalr` (every text with a syntax error, and
    any other they are not sure of)."""
    tokens = scan(text)
    if tokens is None:
        return None
    try:
        return _Descent(tokens).contract()
    except (_Unsure, IndexError, RecursionError):
        return None


def parse_lalr(text: str, filename: str = "<contract>") -> list[RawItem]:
    """:func:`parse_raw` by the reference tokenizer and the LALR tables alone.

    ``state`` is the automaton's current state; ``below`` holds the states
    under it, one per symbol in ``values``.
    """
    actions, goto, state, end_state = _tables()
    row = actions[state]
    below: list[int] = []
    values: list[object] = []
    try:
        for token in tokenize(text, filename):
            kind = token.type
            while True:
                step = row.get(kind)
                if step.__class__ is int:
                    below.append(state)
                    values.append(token)
                    state = step
                    row = actions[state]
                    break
                if step is None:
                    expected = {name for name in row if name.isupper()}
                    raise _syntax_error(token, expected, filename)
                size, callback, origin = step  # type: ignore[misc]
                if size:
                    children = values[-size:]
                    del values[-size:]
                    state = below[-size]
                    del below[-size:]
                else:
                    children = []
                values.append(callback(children))
                below.append(state)
                state = goto[state][origin]
                row = actions[state]
                if state == end_state and kind == END:
                    return cast(list[RawItem], values[-1])
    except ContractError as err:
        raise ContractError(err.diagnostics, filename) from None
    # tokenize() always ends with END, and END either completes the parse or
    # raises a syntax error above.
    raise AssertionError("unreachable: the token stream ended without END")  # pragma: no cover


# ---------------------------------------------------------------------------
# The descent parser: the grammar's rules as methods, for well-formed contracts
# ---------------------------------------------------------------------------


class _Unsure(Exception):  # noqa: N818 - not an error: the tables decide
    """The descent parser leaves this text to the LALR tables."""


_UNSURE: Final = _Unsure()
# The tokens a condition takes as a name, and those that end a clause's line (shared
# with the one-pass reader, contracts.reader).
NAME_KINDS: Final = frozenset({"WORD", "CONSUMPTION", "PRODUCTION", "SURPLUS"})
LINE_ENDS: Final = frozenset({"_NL", END})
# Parentheses nest without adding to a condition's depth; beyond this the
# descent parser leaves the text to the tables, which do not recurse.
_MAX_GROUPS: Final = 2 * MAX_CONDITION_DEPTH


class _Descent:
    """One contract's tokens to its raw tree, exactly as the LALR tables build it.

    Every method reads the rule of the same name in ``grammar.lark`` at
    ``self.at`` and leaves ``self.at`` after it; anything else raises _Unsure.
    Tokens come as tuples from :func:`scan`; those the tree keeps become
    :class:`Token` objects.
    """

    __slots__ = ("at", "groups", "tokens")

    def __init__(self, tokens: list[Scanned]) -> None:
        self.tokens = tokens
        self.at = 0
        self.groups = 0

    def take(self, kind: str) -> Token:
        token = self.tokens[self.at]
        if token[0] != kind:
            raise _UNSURE
        self.at += 1
        return Token(*token)

    def skip(self, kind: str) -> None:
        if self.tokens[self.at][0] != kind:
            raise _UNSURE
        self.at += 1

    def kind(self) -> str:
        return self.tokens[self.at][0]

    def contract(self) -> list[RawItem]:
        tokens = self.tokens
        items: list[RawItem] = []
        clauses = _CLAUSES
        while True:
            token = tokens[self.at]
            kind = token[0]
            if kind == "_NL":
                self.at += 1
                continue
            if kind == END:
                return items
            self.at += 1
            if kind == "IF":
                items.append(self.rule(Token(*token)))
            else:
                clause = clauses.get(kind)
                if clause is None:
                    raise _UNSURE
                items.append(clause(self, Token(*token)))
            if tokens[self.at][0] not in LINE_ENDS:
                raise _UNSURE

    # -- clauses --------------------------------------------------------------

    def contract_clause(self, keyword: Token) -> RawClause:
        return RawClause("contract", keyword, [self.take("STRING")])

    def valid_clause(self, keyword: Token) -> RawClause:
        take = self.take
        args: list[object] = [take("FROM"), take("DATE"), take("TIME")]
        args += [take("TO"), take("DATE"), take("TIME")]
        return RawClause("valid", keyword, args)

    def flag(self, *kinds: str) -> Token:
        token = self.tokens[self.at]
        if token[0] not in kinds:
            raise _UNSURE
        self.at += 1
        return Token(*token)

    def consumption_clause(self, keyword: Token) -> RawClause:
        flag = self.flag("TRUE", "FALSE", "PROGRAMMED")
        if flag.type != "PROGRAMMED":
            return RawClause("consumption", keyword, [flag])
        windows = [self.window()]
        while self.kind() == "COMMA":
            self.at += 1
            windows.append(self.window())
        return RawClause("consumption", keyword, [flag, windows])

    def window(self) -> RawWindow:
        start = self.take("CLOCK")
        self.skip("MINUS")
        end = self.take("CLOCK")
        return RawWindow(start, end, RawDays(self.day_items()))

    def day_items(self) -> list[tuple[Token, Token | None]]:
        """``day_item*``."""
        tokens = self.tokens
        items: list[tuple[Token, Token | None]] = []
        while (first := tokens[self.at])[0] == "WORD":
            self.at += 1
            if tokens[self.at][0] == "MINUS":
                self.at += 1
                items.append((Token(*first), self.take("WORD")))
            else:
                items.append((Token(*first), None))
        return items

    def production_clause(self, keyword: Token) -> RawClause:
        flag = self.flag("TRUE", "FALSE")
        if flag.type == "TRUE" and self.kind() == "AND":
            return RawClause("production", keyword, [flag, self.take("AND"), self.take("SELL")])
        return RawClause("production", keyword, [flag])

    def store_clause(self, keyword: Token) -> RawClause:
        return RawClause("store", keyword, [self.flag("TRUE", "FALSE")])

    def dr_clause(self, keyword: Token) -> RawClause:
        flag = self.flag("TRUE", "FALSE")
        if flag.type == "TRUE" and self.kind() == "SHED":
            shed = self.take("SHED")
            return RawClause("demand_response", keyword, [flag, shed, self.string_list()])
        return RawClause("demand_response", keyword, [flag])

    def devices_clause(self, keyword: Token) -> RawClause:
        if self.kind() == "COLON":
            self.at += 1
        return RawClause("devices", keyword, [self.string_list()])

    def parties_clause(self, keyword: Token) -> RawClause:
        args: list[object] = [self.take("COLON")]
        if self.kind() in ("WORD", "STRING"):
            args.append(self.flag("WORD", "STRING"))
            while self.kind() == "COMMA":
                self.at += 1
                args.append(self.flag("WORD", "STRING"))
        return RawClause("parties", keyword, args)

    def string_list(self) -> list[Token]:
        strings = [self.take("STRING")]
        while self.kind() == "COMMA":
            self.at += 1
            strings.append(self.take("STRING"))
        return strings

    # -- rules ----------------------------------------------------------------

    def rule(self, keyword: Token) -> RawRule:
        condition = self.or_cond()
        then_keyword = self.take("THEN")
        then = self.body()
        else_keyword: Token | None = None
        otherwise: list[RawAction] | None = None
        if self.kind() == "ELSE":
            else_keyword = self.take("ELSE")
            otherwise = self.body()
        self.skip("ENDIF")
        return RawRule(keyword, condition, then_keyword, then, else_keyword, otherwise)

    def body(self) -> list[RawAction]:
        tokens = self.tokens
        actions: list[RawAction] = []
        while True:
            token = tokens[self.at]
            kind = token[0]
            if kind == "_NL":
                self.at += 1
            elif kind in _ACTION_STARTS:
                self.at += 1
                actions.append(_ACTIONS_OF[kind](self, Token(*token)))
            else:
                return actions

    def turn(self, keyword: Token) -> RawAction:
        switch = self.flag("ON", "OFF")
        return RawAction("turn", keyword, [switch, self.take("DEVICE"), self.take("STRING")])

    def sell(self, keyword: Token) -> RawAction:
        self.skip("SURPLUS")
        if self.kind() == "AT":
            self.at += 1
            self.skip("MIN")
            return RawAction("sell", keyword, [self.quantity()])
        return RawAction("sell", keyword, [])

    def buy(self, keyword: Token) -> RawAction:
        if self.kind() == "UP":
            self.at += 1
            self.skip("TO")
        energy = self.quantity()
        self.skip("AT")
        self.skip("MAX")
        return RawAction("buy", keyword, [energy, self.quantity()])

    def notify(self, keyword: Token) -> RawAction:
        return RawAction("notify", keyword, [self.take("STRING")])

    def quantity(self) -> RawNumber:
        number = self.take("NUMBER")
        unit = self.tokens[self.at]
        if unit[0] == "UNIT":
            self.at += 1
            return RawNumber(number, Token(*unit))
        return RawNumber(number, None)

    # -- conditions -------------------------------------------------------------

    def or_cond(self) -> RawCondition:
        first = self.and_cond()
        if self.kind() != "OR":
            return first
        children: list[object] = [first]
        while (token := self.tokens[self.at])[0] == "OR":
            self.at += 1
            children += (Token(*token), self.and_cond())
        return self.bounded(_bool_unchecked(children, is_and=False))

    def and_cond(self) -> RawCondition:
        first = self.not_cond()
        if self.kind() != "AND":
            return first
        children: list[object] = [first]
        while (token := self.tokens[self.at])[0] == "AND":
            self.at += 1
            children += (Token(*token), self.not_cond())
        return self.bounded(_bool_unchecked(children, is_and=True))

    @staticmethod
    def bounded(node: RawCondition) -> RawCondition:
        if node.depth > MAX_CONDITION_DEPTH:
            raise _UNSURE
        return node

    def not_cond(self) -> RawCondition:
        token = self.tokens[self.at]
        kind = token[0]
        if kind == "NOT":
            self.at += 1
            inner = self.not_cond()
            return self.bounded(RawNot(Token(*token), inner, inner.depth + 1))
        if kind == "LPAR":
            self.at += 1
            self.groups += 1
            if self.groups > _MAX_GROUPS:
                raise _UNSURE
            inner = self.or_cond()
            self.skip("RPAR")
            self.groups -= 1
            if inner.depth + 1 > MAX_CONDITION_DEPTH:
                raise _UNSURE
            return inner
        left = self.operand()
        token = self.tokens[self.at]
        if token[0] == "COMPARE":
            self.at += 1
            return RawComparison(left, Token(*token), self.operand())
        if token[0] != "IN":
            raise _UNSURE
        self.at += 1
        keyword = Token(*token)
        if self.kind() == "CLOCK":
            start = self.take("CLOCK")
            self.skip("MINUS")
            return RawMembership(left, keyword, RawClockRange(start, self.take("CLOCK")))
        days = self.day_items()
        if not days:
            raise _UNSURE
        return RawMembership(left, keyword, RawDays(days))

    def operand(self) -> RawOperand:
        token = self.tokens[self.at]
        kind = token[0]
        self.at += 1
        if kind in NAME_KINDS:
            return RawName(Token(*token))
        if kind == "NUMBER":
            unit = self.tokens[self.at]
            if unit[0] == "UNIT":
                self.at += 1
                return RawNumber(Token(*token), Token(*unit))
            return RawNumber(Token(*token), None)
        if kind == "CLOCK":
            return RawClock(Token(*token))
        raise _UNSURE


_CLAUSES: Final[dict[str, Callable[[_Descent, Token], RawClause]]] = {
    "CONTRACT": _Descent.contract_clause,
    "VALID": _Descent.valid_clause,
    "CONSUMPTION": _Descent.consumption_clause,
    "PRODUCTION": _Descent.production_clause,
    "STORE": _Descent.store_clause,
    "DEMANDRESPONSE": _Descent.dr_clause,
    "DEVICES": _Descent.devices_clause,
    "PARTIES": _Descent.parties_clause,
}
_ACTIONS_OF: Final[dict[str, Callable[[_Descent, Token], RawAction]]] = {
    "TURN": _Descent.turn,
    "SELL": _Descent.sell,
    "BUY": _Descent.buy,
    "NOTIFY": _Descent.notify,
}
