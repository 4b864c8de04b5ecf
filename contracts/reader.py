"""The one-pass reader: a valid contract's tokens straight to its :class:`Contract`.

:func:`contracts.check` tries this first. It reads the tokens of
:func:`contracts.lexer.scan` once, by the rules of the descent parser, and
checks each value as it reads it, building the model's values directly: no
raw tree, no :class:`~contracts.lexer.Token` objects, no second walk.

It gives an answer only for a contract without errors, and then exactly what
the parser and the checker give (the same contract, positions included, and
the same warnings). At the first thing that would be an error, or anything it
is not sure of, it gives None, and :func:`contracts.check` runs the parser and
the checker, which name every error. So the language and its diagnostics stay
theirs; tests/contracts/test_reader.py compares the two paths on written,
generated and mutated contracts.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from decimal import Decimal
from typing import Final

from contracts.checker import (
    MAX_DEVICE,
    MAX_NAME,
    MAX_NOTIFY,
    OPERATORS,
    PARTICIPANT_ID,
    buying_without_consumption,
    clock_fits,
    day_range,
    misspelt_dr,
    nothing_to_shed,
    numeral_fits,
    selling_without_production,
    text_fault,
    unquoted,
)
from contracts.errors import Diagnostic
from contracts.lexer import END, Scanned, scan
from contracts.model import (
    ALL_DAYS,
    ROLES,
    SERVICE_STATES,
    UNITS,
    VARIABLE_NAMES,
    WEEKDAY_WORDS,
    ActionKind,
    ActionSpec,
    AllOf,
    AnyOf,
    ClauseLines,
    ClockRange,
    ClockValue,
    Comparison,
    Condition,
    Consumption,
    ConsumptionMode,
    Contract,
    DaySet,
    DemandResponse,
    Dimension,
    Measure,
    Membership,
    Not,
    Op,
    Operand,
    Party,
    Production,
    Quantity,
    Rule,
    ServiceValue,
    Variable,
    VarRef,
    VarType,
    Window,
)
from contracts.parser import LINE_ENDS, MAX_CONDITION_DEPTH, NAME_KINDS

# The most AND, OR, NOT and '(' a condition may hold here. A condition's depth is at
# most one more than its operators, and the parser refuses depths past
# MAX_CONDITION_DEPTH, counting a group one level deeper than its inside. So up to
# MAX_CONDITION_DEPTH - 2 operators no condition is refused for depth; the reader stops
# two short of that, and above it the parser decides.
_MAX_OPERATORS: Final = MAX_CONDITION_DEPTH - 4
_FIELDS: Final[dict[str, str]] = {
    "CONTRACT": "contract",
    "VALID": "valid",
    "CONSUMPTION": "consumption",
    "PRODUCTION": "production",
    "STORE": "store",
    "DEMANDRESPONSE": "demand_response",
    "DEVICES": "devices",
    "PARTIES": "parties",
}
_EQUALITY: Final = (Op.EQ, Op.NE)

# Values are immutable, so the reader shares the ones that recur.
_VARIABLES: Final[dict[str, VarRef]] = {
    name: VarRef(variable) for name, variable in VARIABLE_NAMES.items()
}
_ROLES: Final[dict[str, Party]] = {role: Party(role, is_role=True) for role in ROLES}
_CLOCKS: Final[tuple[ClockValue, ...]] = tuple(ClockValue(minutes) for minutes in range(1441))
_CONSUMPTION: Final[dict[str, Consumption]] = {
    "TRUE": Consumption(ConsumptionMode.TRUE),
    "FALSE": Consumption(ConsumptionMode.FALSE),
}
_PRODUCTION_OFF: Final = Production(enabled=False)
_PRODUCTION_ON: Final = Production(enabled=True)
_PRODUCTION_SELLING: Final = Production(enabled=True, sell=True)
_NO_DEMAND_RESPONSE: Final = DemandResponse(enabled=False)
_DEMAND_RESPONSE: Final = DemandResponse(enabled=True)

type _Operand = tuple[str, str, str | None]
"""An operand as written: ``name``, ``number`` (with its unit) or ``clock``."""


class _Unsure(Exception):  # noqa: N818 - not an error: the parser and checker decide
    """The reader leaves this text to the parser and the checker."""


_UNSURE: Final = _Unsure()


def read(text: str) -> tuple[Contract, tuple[Diagnostic, ...]] | None:
    """The contract in ``text`` and its warnings, or None when the text is not a valid
    contract or the reader is not sure (:func:`contracts.check` then decides)."""
    tokens = scan(text)
    if tokens is None:
        return None
    try:
        return _Reader(tokens).contract()
    except (_Unsure, IndexError):
        return None


# -- values: each is the value the checker gives, or _Unsure where it reports an error


def _text(string: str, limit: int) -> str:
    value = unquoted(string)
    if text_fault(value, limit) is not None:
        raise _UNSURE
    return value


def _date_time(date: str, time: str) -> datetime:
    year, month, day = date.split("/")
    hour, minute, second = time.split(":")
    try:
        # datetime refuses exactly the dates and times the checker does
        return datetime(int(year), int(month), int(day), int(hour), int(minute), int(second))  # noqa: DTZ001 - local civil time
    except ValueError:
        raise _UNSURE from None


def _clock(value: str, *, allow_24: bool = False) -> ClockValue:
    hour_text, minute_text = value.split(":")
    hour, minute = int(hour_text), int(minute_text)
    if not clock_fits(hour, minute, allow_24=allow_24):
        raise _UNSURE
    return _CLOCKS[hour * 60 + minute]


def _quantity(number: str, unit: str | None) -> Quantity:
    if not numeral_fits(number):
        raise _UNSURE
    value = Decimal(number)
    if not value:
        value = Decimal(0)  # "-0" and "0.0" are zero
    return Quantity(value, None if unit is None else UNITS[unit.lower()])


def _price(number: str, unit: str | None) -> Quantity:
    quantity = _quantity(number, unit)
    if quantity.unit is not None and quantity.unit.dimension is not Dimension.PRICE:
        raise _UNSURE
    return quantity


def _energy(number: str, unit: str | None) -> Quantity:
    quantity = _quantity(number, unit)
    if quantity.unit is None or quantity.unit.dimension is not Dimension.ENERGY:
        raise _UNSURE
    base = quantity.base
    if quantity.value <= 0 or base != base.to_integral_value():
        raise _UNSURE
    return quantity


def _day_word(word: str, *, single: bool) -> frozenset[int]:
    days = WEEKDAY_WORDS.get(word.lower())
    if days is None or (single and len(days) != 1):
        raise _UNSURE
    return days


def _days(items: list[tuple[str, str | None]]) -> frozenset[int]:
    result: set[int] = set()
    for first, last in items:
        if last is None:
            result |= _day_word(first, single=False)
            continue
        (day,) = _day_word(first, single=True)
        (end,) = _day_word(last, single=True)
        result |= day_range(day, end)
    return frozenset(result)


def _literal(variable: Variable, op: Op, other: _Operand) -> tuple[Operand, Measure]:
    """What a variable is compared with, as the checker's ``literal`` takes it."""
    var_type = variable.var_type
    tag, value, unit = other
    if var_type is VarType.WEEKDAY or var_type is VarType.SERVICE:
        if op not in _EQUALITY or tag != "name":
            raise _UNSURE
        if var_type is VarType.WEEKDAY:
            return DaySet(_day_word(value, single=False)), Measure.NONE
        word = value.lower()
        if word not in SERVICE_STATES:
            raise _UNSURE
        return ServiceValue(cut=word == "cut"), Measure.NONE
    if var_type is VarType.CLOCK:
        if tag != "clock":
            raise _UNSURE
        return _clock(value), Measure.NONE
    if tag != "number":
        raise _UNSURE
    quantity = _quantity(value, unit)
    dimension = None if quantity.unit is None else quantity.unit.dimension
    if var_type is VarType.PRICE:
        if dimension is not None and dimension is not Dimension.PRICE:
            raise _UNSURE
        return quantity, Measure.NONE
    if var_type is VarType.POWER_OR_ENERGY:
        if dimension is Dimension.POWER:
            return quantity, Measure.POWER
        if dimension is Dimension.ENERGY:
            return quantity, Measure.ENERGY
        raise _UNSURE
    if var_type is VarType.PERCENT:
        if (dimension is not None and dimension is not Dimension.PERCENT) or not (
            0 <= quantity.value <= 100
        ):
            raise _UNSURE
        return quantity, Measure.NONE
    # LEVEL
    if dimension is not None or quantity.value not in (0, 1, 2, 3):
        raise _UNSURE
    return quantity, Measure.NONE


def _comparison(left: _Operand, op: Op, right: _Operand) -> Comparison:
    left_ref = _VARIABLES.get(left[1].lower()) if left[0] == "name" else None
    right_ref = _VARIABLES.get(right[1].lower()) if right[0] == "name" else None
    if left_ref is not None:
        if right_ref is None:
            value, measure = _literal(left_ref.variable, op, right)
            return Comparison(left_ref, op, value, measure)
        var_type = left_ref.variable.var_type
        if right_ref.variable.var_type is not var_type or (
            (var_type is VarType.WEEKDAY or var_type is VarType.SERVICE) and op not in _EQUALITY
        ):
            raise _UNSURE
        measure = Measure.POWER if var_type is VarType.POWER_OR_ENERGY else Measure.NONE
        return Comparison(left_ref, op, right_ref, measure)
    if right_ref is None:  # no variable (or an unknown name)
        raise _UNSURE
    value, measure = _literal(right_ref.variable, op, left)
    return Comparison(value, op, right_ref, measure)


class _Reader:
    """One contract's tokens, read once. Every method reads the rule of the same name in
    the descent parser (:class:`contracts.parser._Descent`) at ``self.at``."""

    __slots__ = (
        "actions",
        "at",
        "consumption",
        "demand_response",
        "devices",
        "name",
        "operators",
        "parties",
        "production",
        "store",
        "tokens",
        "turned",
        "valid",
    )

    def __init__(self, tokens: list[Scanned]) -> None:
        self.tokens = tokens
        self.at = 0
        self.operators = 0
        # (kind, keyword) of each SELL and BUY, and the device of each TURN, in order
        self.actions: list[tuple[ActionKind, Scanned]] = []
        self.turned: list[str] = []
        # What the clauses say; a clause not written leaves the checker's default.
        self.name = ""
        self.valid: tuple[datetime, datetime] | None = None
        self.consumption = _CONSUMPTION["TRUE"]
        self.production = _PRODUCTION_ON
        self.store = False
        self.demand_response = _NO_DEMAND_RESPONSE
        self.devices: tuple[str, ...] | None = None
        self.parties: tuple[Party, ...] = ()

    def take(self, kind: str) -> str:
        token = self.tokens[self.at]
        if token[0] != kind:
            raise _UNSURE
        self.at += 1
        return token[1]

    def flag(self, *kinds: str) -> str:
        kind = self.tokens[self.at][0]
        if kind not in kinds:
            raise _UNSURE
        self.at += 1
        return kind

    def contract(self) -> tuple[Contract, tuple[Diagnostic, ...]]:
        tokens = self.tokens
        keywords: dict[str, Scanned] = {}
        rules: list[Rule] = []
        clauses = _CLAUSES
        while True:
            token = tokens[self.at]
            kind = token[0]
            if kind == "_NL":
                self.at += 1
                continue
            if kind == END:
                break
            self.at += 1
            if kind == "IF" and keywords:
                rules.append(self.rule(token[2]))
            elif kind in keywords or (kind != "CONTRACT" and not keywords):
                raise _UNSURE  # a second clause of a kind, or a contract not starting with its name
            else:
                clause = clauses.get(kind)
                if clause is None:
                    raise _UNSURE
                keywords[kind] = token
                clause(self)
            if tokens[self.at][0] not in LINE_ENDS:
                raise _UNSURE
        if "VALID" not in keywords or "PARTIES" not in keywords:
            raise _UNSURE
        return self.build(keywords, rules)

    def build(
        self, keywords: dict[str, Scanned], rules: list[Rule]
    ) -> tuple[Contract, tuple[Diagnostic, ...]]:
        devices = self.devices
        demand_response = self.demand_response
        if devices is not None:
            for device in (*self.turned, *demand_response.shed):
                if device not in devices:
                    raise _UNSURE
        warnings: list[Diagnostic] = []
        dr_keyword = keywords.get("DEMANDRESPONSE")
        if dr_keyword is not None and dr_keyword[1].lower() == "demandrespose":
            warnings.append(misspelt_dr(dr_keyword[1], dr_keyword[2], dr_keyword[3]))
        for kind, at in self.actions:
            if kind is ActionKind.SELL_SURPLUS:
                if not self.production.enabled:
                    warnings.append(selling_without_production(at[2], at[3]))
            elif self.consumption.mode is ConsumptionMode.FALSE:
                warnings.append(buying_without_consumption(at[2], at[3]))
        assert self.valid is not None  # the Valid clause is there (see contract())
        contract = Contract(
            name=self.name,
            valid_from=self.valid[0],
            valid_to=self.valid[1],
            parties=self.parties,
            consumption=self.consumption,
            production=self.production,
            store=self.store,
            demand_response=demand_response,
            devices=devices,
            rules=tuple(rules),
            lines=ClauseLines(**{_FIELDS[kind]: token[2] for kind, token in keywords.items()}),
            columns=ClauseLines(**{_FIELDS[kind]: token[3] for kind, token in keywords.items()}),
        )
        if dr_keyword is not None and demand_response.enabled and not contract.shed_devices():
            warnings.append(nothing_to_shed(dr_keyword[2], dr_keyword[3]))
        if len(warnings) > 1:
            warnings.sort(key=lambda d: (d.line, d.column))
        return contract, tuple(warnings)

    # -- clauses ----------------------------------------------------------------

    def contract_clause(self) -> None:
        self.name = _text(self.take("STRING"), MAX_NAME)

    def valid_clause(self) -> None:
        take = self.take
        take("FROM")
        start = _date_time(take("DATE"), take("TIME"))
        take("TO")
        end = _date_time(take("DATE"), take("TIME"))
        if end <= start:
            raise _UNSURE
        self.valid = start, end

    def consumption_clause(self) -> None:
        flag = self.flag("TRUE", "FALSE", "PROGRAMMED")
        if flag != "PROGRAMMED":
            self.consumption = _CONSUMPTION[flag]
            return
        windows = [self.window()]
        while self.tokens[self.at][0] == "COMMA":
            self.at += 1
            windows.append(self.window())
        self.consumption = Consumption(ConsumptionMode.PROGRAMMED, tuple(windows))

    def window(self) -> Window:
        start = _clock(self.take("CLOCK"))
        self.take("MINUS")
        end = _clock(self.take("CLOCK"), allow_24=True)
        items = self.day_items()
        if start.minutes == end.minutes % 1440:
            raise _UNSURE
        return Window(start, end, _days(items) if items else ALL_DAYS)

    def day_items(self) -> list[tuple[str, str | None]]:
        tokens = self.tokens
        items: list[tuple[str, str | None]] = []
        while (first := tokens[self.at])[0] == "WORD":
            self.at += 1
            if tokens[self.at][0] == "MINUS":
                self.at += 1
                items.append((first[1], self.take("WORD")))
            else:
                items.append((first[1], None))
        return items

    def production_clause(self) -> None:
        if self.flag("TRUE", "FALSE") == "FALSE":
            self.production = _PRODUCTION_OFF
        elif self.tokens[self.at][0] == "AND":
            self.at += 1
            self.take("SELL")
            self.production = _PRODUCTION_SELLING

    def store_clause(self) -> None:
        self.store = self.flag("TRUE", "FALSE") == "TRUE"

    def dr_clause(self) -> None:
        if self.flag("TRUE", "FALSE") == "FALSE":
            return  # as without the clause
        if self.tokens[self.at][0] != "SHED":
            self.demand_response = _DEMAND_RESPONSE
            return
        self.at += 1
        self.demand_response = DemandResponse(enabled=True, shed=self.device_list())

    def devices_clause(self) -> None:
        if self.tokens[self.at][0] == "COLON":
            self.at += 1
        self.devices = self.device_list()

    def device_list(self) -> tuple[str, ...]:
        """Device names, in quotes and separated by commas, none twice."""
        devices = [_text(self.take("STRING"), MAX_DEVICE)]
        while self.tokens[self.at][0] == "COMMA":
            self.at += 1
            device = _text(self.take("STRING"), MAX_DEVICE)
            if device in devices:
                raise _UNSURE
            devices.append(device)
        return tuple(devices)

    def parties_clause(self) -> None:
        self.take("COLON")
        parties = [self.party()]
        while self.tokens[self.at][0] == "COMMA":
            self.at += 1
            party = self.party()
            if party in parties:
                raise _UNSURE
            parties.append(party)
        self.parties = tuple(parties)

    def party(self) -> Party:
        kind, value, _line, _column = self.tokens[self.at]
        self.at += 1
        if kind == "WORD":
            role = _ROLES.get(value.upper())
            if role is None:
                raise _UNSURE
            return role
        if kind != "STRING":
            raise _UNSURE
        ident = unquoted(value)
        if not PARTICIPANT_ID.fullmatch(ident):
            raise _UNSURE
        return Party(ident, is_role=False)

    # -- rules ------------------------------------------------------------------

    def rule(self, line: int) -> Rule:
        self.operators = 0
        condition = self.or_cond()
        self.take("THEN")
        then = self.body()
        otherwise: tuple[ActionSpec, ...] = ()
        if self.tokens[self.at][0] == "ELSE":
            self.at += 1
            otherwise = self.body()
        self.take("ENDIF")
        return Rule(condition, then, otherwise, line=line)

    def body(self) -> tuple[ActionSpec, ...]:
        tokens = self.tokens
        actions: list[ActionSpec] = []
        while True:
            token = tokens[self.at]
            kind = token[0]
            if kind == "_NL":
                self.at += 1
                continue
            action = _ACTIONS.get(kind)
            if action is None:
                if not actions:
                    raise _UNSURE  # THEN or ELSE without actions
                return tuple(actions)
            self.at += 1
            actions.append(action(self, token))

    def turn(self, keyword: Scanned) -> ActionSpec:
        kind = ActionKind.TURN_ON if self.flag("ON", "OFF") == "ON" else ActionKind.TURN_OFF
        self.take("DEVICE")
        device = _text(self.take("STRING"), MAX_DEVICE)
        self.turned.append(device)
        return ActionSpec(kind, device=device, line=keyword[2], column=keyword[3])

    def sell(self, keyword: Scanned) -> ActionSpec:
        self.take("SURPLUS")
        self.actions.append((ActionKind.SELL_SURPLUS, keyword))
        if self.tokens[self.at][0] != "AT":
            return ActionSpec(ActionKind.SELL_SURPLUS, line=keyword[2], column=keyword[3])
        self.at += 1
        self.take("MIN")
        price = _price(*self.quantity())
        return ActionSpec(
            ActionKind.SELL_SURPLUS, min_price=price, line=keyword[2], column=keyword[3]
        )

    def buy(self, keyword: Scanned) -> ActionSpec:
        if self.tokens[self.at][0] == "UP":
            self.at += 1
            self.take("TO")
        energy = self.quantity()
        self.take("AT")
        self.take("MAX")
        price = _price(*self.quantity())
        self.actions.append((ActionKind.BUY, keyword))
        return ActionSpec(
            ActionKind.BUY,
            max_energy=_energy(*energy),
            max_price=price,
            line=keyword[2],
            column=keyword[3],
        )

    def notify(self, keyword: Scanned) -> ActionSpec:
        text = _text(self.take("STRING"), MAX_NOTIFY)
        return ActionSpec(ActionKind.NOTIFY, text=text, line=keyword[2], column=keyword[3])

    def quantity(self) -> tuple[str, str | None]:
        number = self.take("NUMBER")
        unit = self.tokens[self.at]
        if unit[0] == "UNIT":
            self.at += 1
            return number, unit[1]
        return number, None

    # -- conditions ---------------------------------------------------------------

    def operator(self) -> None:
        self.operators += 1
        if self.operators > _MAX_OPERATORS:
            raise _UNSURE

    def or_cond(self) -> Condition:
        return self.joined("OR", AnyOf, self.and_cond)

    def and_cond(self) -> Condition:
        return self.joined("AND", AllOf, self.not_cond)

    def joined(
        self, operator: str, node: type[AllOf | AnyOf], item: Callable[[], Condition]
    ) -> Condition:
        """``item (operator item)*``, with groups of the same operator flattened into it."""
        first = item()
        if self.tokens[self.at][0] != operator:
            return first
        items = list(first.items) if first.__class__ is node else [first]
        while self.tokens[self.at][0] == operator:
            self.at += 1
            self.operator()
            following = item()
            if following.__class__ is node:
                items += following.items
            else:
                items.append(following)
        return node(tuple(items))

    def not_cond(self) -> Condition:
        tokens = self.tokens
        kind = tokens[self.at][0]
        if kind == "NOT":
            self.at += 1
            self.operator()
            return Not(self.not_cond())
        if kind == "LPAR":
            self.at += 1
            self.operator()
            inner = self.or_cond()
            self.take("RPAR")
            return inner
        left = self.operand()
        token = tokens[self.at]
        self.at += 1
        if token[0] == "COMPARE":
            return _comparison(left, OPERATORS[token[1]], self.operand())
        if token[0] != "IN":
            raise _UNSURE
        if left[0] != "name" or (ref := _VARIABLES.get(left[1].lower())) is None:
            raise _UNSURE
        if tokens[self.at][0] == "CLOCK":
            start = _clock(self.take("CLOCK"))
            self.take("MINUS")
            end = _clock(self.take("CLOCK"), allow_24=True)
            if ref.variable.var_type is not VarType.CLOCK or start.minutes == end.minutes % 1440:
                raise _UNSURE
            return Membership(ref, ClockRange(start, end))
        items = self.day_items()
        if not items or ref.variable.var_type is not VarType.WEEKDAY:
            raise _UNSURE
        return Membership(ref, DaySet(_days(items)))

    def operand(self) -> _Operand:
        kind, value, _line, _column = self.tokens[self.at]
        self.at += 1
        if kind in NAME_KINDS:
            return "name", value, None
        if kind == "NUMBER":
            unit = self.tokens[self.at]
            if unit[0] == "UNIT":
                self.at += 1
                return "number", value, unit[1]
            return "number", value, None
        if kind == "CLOCK":
            return "clock", value, None
        raise _UNSURE


_CLAUSES: Final[dict[str, Callable[[_Reader], None]]] = {
    "CONTRACT": _Reader.contract_clause,
    "VALID": _Reader.valid_clause,
    "CONSUMPTION": _Reader.consumption_clause,
    "PRODUCTION": _Reader.production_clause,
    "STORE": _Reader.store_clause,
    "DEMANDRESPONSE": _Reader.dr_clause,
    "DEVICES": _Reader.devices_clause,
    "PARTIES": _Reader.parties_clause,
}
_ACTIONS: Final[dict[str, Callable[[_Reader, Scanned], ActionSpec]]] = {
    "TURN": _Reader.turn,
    "SELL": _Reader.sell,
    "BUY": _Reader.buy,
    "NOTIFY": _Reader.notify,
}
