"""Meaning: resolve names, check values and build the :class:`Contract`.

Every problem becomes a :class:`Diagnostic` at the line and column of the
token it concerns; the checker reports all it finds, not just the first.
"""

from __future__ import annotations

import calendar
import re
from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime
from decimal import Decimal, InvalidOperation
from typing import Final

from contracts.canonical import stamp
from contracts.errors import Diagnostic, Severity, did_you_mean
from contracts.lexer import Token
from contracts.model import (
    ROLES,
    SERVICE_STATES,
    UNITS,
    VARIABLE_NAMES,
    WEEKDAY_NAMES,
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
    VarRef,
    VarType,
    Window,
)
from contracts.parser import (
    RawAction,
    RawBool,
    RawClause,
    RawClock,
    RawClockRange,
    RawComparison,
    RawCondition,
    RawDays,
    RawItem,
    RawMembership,
    RawName,
    RawNot,
    RawNumber,
    RawOperand,
    RawRule,
    RawWindow,
)

MAX_NAME: Final = 100
MAX_DEVICE: Final = 64
MAX_NOTIFY: Final = 280
MAX_DIGITS: Final = 15
MAX_DECIMALS: Final = 6

# Shared with the one-pass reader (contracts.reader), which must judge exactly alike.
OPERATORS: Final[dict[str, Op]] = {
    "<": Op.LT,
    "<=": Op.LE,
    ">": Op.GT,
    ">=": Op.GE,
    "=": Op.EQ,
    "==": Op.EQ,
    "!=": Op.NE,
    "<>": Op.NE,
}
PARTICIPANT_ID: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:\-]{0,99}")
_CLOCK: Final = re.compile(r"(\d{1,2}):(\d{2})")

_CLAUSE_TITLES: Final[dict[str, str]] = {
    "contract": "Contract",
    "valid": "Valid",
    "consumption": "Consumption",
    "production": "Production",
    "store": "Store",
    "demand_response": "DemandResponse",
    "devices": "Devices",
    "parties": "Parties",
}
_ROLE_TEXT: Final = ", ".join(ROLES)
_VARIABLE_SPELLINGS: Final = sorted({v.canonical for v in VARIABLE_NAMES.values()})


_MONTH_DAYS: Final = (31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)


def _days_in_month(year: int, month: int) -> int:
    if month == 2 and calendar.isleap(year):
        return 29
    return _MONTH_DAYS[month - 1]


# -- the warnings: a valid contract may still say something its author did not mean.
# The one-pass reader (contracts.reader) gives the same ones.


def misspelt_dr(spelling: str, line: int, column: int) -> Diagnostic:
    """The paper's ``DemandRespose``, accepted with a warning."""
    return Diagnostic(
        Severity.WARNING,
        line,
        column,
        f"'{spelling}' is the paper's misspelling of DemandResponse; accepted",
        None,
        "did you mean DemandResponse?",
    )


def selling_without_production(line: int, column: int) -> Diagnostic:
    """SELL SURPLUS where Production is false."""
    return Diagnostic(
        Severity.WARNING,
        line,
        column,
        "SELL SURPLUS in a contract with Production false: surplus is not "
        "injected, so there is nothing to sell",
    )


def buying_without_consumption(line: int, column: int) -> Diagnostic:
    """BUY where Consumption is false."""
    return Diagnostic(
        Severity.WARNING,
        line,
        column,
        "BUY in a contract with Consumption false: imports are refused",
    )


def nothing_to_shed(line: int, column: int) -> Diagnostic:
    """DemandResponse true in a contract that controls no device."""
    return Diagnostic(
        Severity.WARNING,
        line,
        column,
        "DemandResponse true, but the contract controls no device to shed",
        None,
        "add shed 'Device' or a Devices declaration",
    )


def _at(token: Token) -> tuple[int, int]:
    return token.line or 1, token.column or 1


def unquote(token: Token) -> str:
    """A STRING token's text: quotes removed, '' turned into '."""
    return unquoted(str(token.value))


# -- the rules of values, shared with the one-pass reader (contracts.reader), which must
# judge exactly alike


def unquoted(string: str) -> str:
    """A string literal's text: quotes removed, '' turned into '."""
    return string[1:-1].replace("''", "'")


def text_fault(value: str, limit: int) -> str | None:
    """What is wrong with a name, device or notification's text (to follow its
    description in a message), or None."""
    if not value.strip():
        return "is empty"
    if len(value) > limit:
        return f"is {len(value)} characters long; the limit is {limit}"
    if not value.isprintable():
        return "contains a control character"
    return None


def clock_fits(hour: int, minute: int, *, allow_24: bool) -> bool:
    """Whether HH:MM is a time of day: 00:00 to 23:59, and 24:00 where ``allow_24`` (the
    end of a range)."""
    return minute <= 59 and (hour < 24 or (hour == 24 and minute == 0 and allow_24))


def numeral_fits(text: str) -> bool:
    """Whether a numeral has at most MAX_DIGITS significant digits, MAX_DECIMALS of them
    after the point."""
    whole, _point, fraction = text.partition(".")
    significant = (whole.lstrip("-") + fraction).lstrip("0")
    return len(significant) <= MAX_DIGITS and len(fraction) <= MAX_DECIMALS


def day_range(first: int, last: int) -> set[int]:
    """The days from ``first`` to ``last`` (0 = Monday), wrapping past Sunday: fri-mon is
    Friday, Saturday, Sunday and Monday."""
    days = {first}
    day = first
    while day != last:
        day = (day + 1) % 7
        days.add(day)
    return days


class _Checker:
    def __init__(self) -> None:
        self.diagnostics: list[Diagnostic] = []
        self.failed = False

    # -- reporting --------------------------------------------------------

    def error(
        self,
        at: Token,
        message: str,
        *,
        expected: str | None = None,
        hint: str | None = None,
    ) -> None:
        self.failed = True
        self.diagnostics.append(Diagnostic(Severity.ERROR, *_at(at), message, expected, hint))

    # -- values -----------------------------------------------------------

    def text(self, token: Token, what: str, limit: int) -> str | None:
        value = unquote(token)
        if (fault := text_fault(value, limit)) is not None:
            self.error(token, f"{what} {fault}")
            return None
        return value

    def date_time(self, date: Token, time: Token) -> datetime | None:
        year, month, day = map(int, date.value.split("/"))
        hour, minute, second = map(int, time.value.split(":"))
        ok = True
        if year < 1:
            self.error(date, f"{date.value} is not a calendar date: there is no year 0")
            ok = False
        elif not 1 <= month <= 12:
            self.error(date, f"{date.value} is not a calendar date: there is no month {month}")
            ok = False
        elif not 1 <= day <= _days_in_month(year, month):
            last = _days_in_month(year, month)
            month_name = calendar.month_name[month]
            self.error(
                date,
                f"{date.value} is not a calendar date: {month_name} {year} has {last} days",
                hint=f"the last day is {year:04d}/{month:02d}/{last:02d}",
            )
            ok = False
        if hour > 23 or minute > 59 or second > 59:
            self.error(
                time,
                f"{time.value} is not a time of day",
                expected="HH:MM:SS from 00:00:00 to 23:59:59",
            )
            ok = False
        if not ok:
            return None
        return datetime(year, month, day, hour, minute, second)  # noqa: DTZ001 - local civil time

    def clock(self, token: Token, *, allow_24: bool = False) -> ClockValue | None:
        m = _CLOCK.fullmatch(str(token.value))
        assert m is not None
        hour, minute = int(m.group(1)), int(m.group(2))
        if not clock_fits(hour, minute, allow_24=allow_24):
            expected = "HH:MM from 00:00 to 24:00" if allow_24 else "HH:MM from 00:00 to 23:59"
            self.error(token, f"{token.value} is not a time of day", expected=expected)
            return None
        return ClockValue(hour * 60 + minute)

    def quantity(self, raw: RawNumber) -> Quantity | None:
        text = str(raw.number.value)
        try:
            value = Decimal(text)
        except InvalidOperation:  # pragma: no cover - the lexer only passes numerals
            self.error(raw.number, f"{text} is not a number")
            return None
        if not numeral_fits(text):
            self.error(
                raw.number,
                f"{text} has too many digits",
                expected=f"at most {MAX_DIGITS} digits, {MAX_DECIMALS} after the point",
            )
            return None
        if value == 0:
            value = Decimal(0)  # "-0" and "0.0" are zero
        unit = UNITS[str(raw.unit.value).lower()] if raw.unit is not None else None
        return Quantity(value, unit)

    def days(self, raw: RawDays) -> frozenset[int] | None:
        result: set[int] = set()
        ok = True
        for first, last in raw.items:
            start = self.day_word(first, single=last is not None)
            if last is None:
                if start is None:
                    ok = False
                else:
                    result |= start
                continue
            end = self.day_word(last, single=True)
            if start is None or end is None:
                ok = False
                continue
            (a,), (b,) = start, end
            result |= day_range(a, b)
        return frozenset(result) if ok else None

    def day_word(self, token: Token, *, single: bool) -> frozenset[int] | None:
        word = str(token.value).lower()
        days = WEEKDAY_WORDS.get(word)
        if days is None:
            choices = [*WEEKDAY_NAMES, "monday", "saturday", "weekdays", "weekends", "daily"]
            self.error(
                token,
                f"unknown day '{token.value}'",
                expected="mon..sun, monday..sunday, weekdays, weekends or daily",
                hint=did_you_mean(word, choices),
            )
            return None
        if single and len(days) != 1:
            self.error(token, f"'{token.value}' cannot be the end of a day range like mon-fri")
            return None
        return days

    # -- clauses ----------------------------------------------------------

    def check(self, items: Sequence[RawItem]) -> Contract | None:
        if not items:
            self.failed = True
            self.diagnostics.append(
                Diagnostic(
                    Severity.ERROR,
                    1,
                    1,
                    "empty contract",
                    expected="Contract 'name' as the first clause",
                )
            )
            return None
        first = items[0]
        if not (isinstance(first, RawClause) and first.kind == "contract"):
            at = first.keyword
            self.error(at, "a contract starts with its name", expected="Contract 'name'")
        seen: dict[str, RawClause] = {}
        rules: list[Rule] = []
        for item in items:
            if isinstance(item, RawRule):
                rule = self.rule(item)
                if rule is not None:
                    rules.append(rule)
                continue
            if (previous := seen.get(item.kind)) is not None:
                title = _CLAUSE_TITLES[item.kind]
                self.error(
                    item.keyword,
                    f"second {title} clause; a contract has one",
                    hint=f"the first is at line {previous.keyword.line}",
                )
                continue
            seen[item.kind] = item

        anchor = first.keyword
        for kind, form in (
            ("contract", "Contract 'name'"),
            ("valid", "Valid from YYYY/MM/DD HH:MM:SS to YYYY/MM/DD HH:MM:SS"),
            ("parties", "Parties: ISO"),
        ):
            if kind not in seen:
                self.error(anchor, f"missing {_CLAUSE_TITLES[kind]} clause", expected=form)

        name = self.name_clause(seen.get("contract"))
        window = self.valid_clause(seen.get("valid"))
        devices = self.devices_clause(seen.get("devices"))
        consumption = self.consumption_clause(seen.get("consumption"))
        production = self.production_clause(seen.get("production"))
        store = self.store_clause(seen.get("store"))
        demand_response = self.dr_clause(seen.get("demand_response"), devices)
        parties = self.parties_clause(seen.get("parties"))
        self.check_devices(items, devices)
        self.check_consistency(items, consumption, production)

        if self.failed or name is None or window is None or parties is None:
            return None
        lines = ClauseLines(**{kind: clause.keyword.line for kind, clause in seen.items()})
        columns = ClauseLines(**{kind: clause.keyword.column for kind, clause in seen.items()})
        contract = Contract(
            name=name,
            valid_from=window[0],
            valid_to=window[1],
            parties=parties,
            consumption=consumption,
            production=production,
            store=store,
            demand_response=demand_response,
            devices=devices,
            rules=tuple(rules),
            lines=lines,
            columns=columns,
        )
        if contract.demand_response.enabled and not contract.shed_devices():
            self.diagnostics.append(nothing_to_shed(*_at(seen["demand_response"].keyword)))
        return contract

    def name_clause(self, clause: RawClause | None) -> str | None:
        if clause is None:
            return None
        token = clause.args[0]
        assert isinstance(token, Token)
        return self.text(token, "the contract name", MAX_NAME)

    def valid_clause(self, clause: RawClause | None) -> tuple[datetime, datetime] | None:
        if clause is None:
            return None
        _from, d1, t1, _to, d2, t2 = clause.args
        assert isinstance(d1, Token)
        assert isinstance(t1, Token)
        assert isinstance(d2, Token)
        assert isinstance(t2, Token)
        start = self.date_time(d1, t1)
        end = self.date_time(d2, t2)
        if start is None or end is None:
            return None
        if end <= start:
            relation = "when" if end == start else "before"
            self.error(
                d2,
                f"the validity window ends ({stamp(end)}) {relation} it starts ({stamp(start)})",
            )
            return None
        return start, end

    def consumption_clause(self, clause: RawClause | None) -> Consumption:
        if clause is None:
            return Consumption()
        flag = clause.args[0]
        assert isinstance(flag, Token)
        if flag.type == "TRUE":
            return Consumption(ConsumptionMode.TRUE)
        if flag.type == "FALSE":
            return Consumption(ConsumptionMode.FALSE)
        raw_windows = clause.args[1]
        assert isinstance(raw_windows, list)
        windows = [self.window(w) for w in raw_windows]
        return Consumption(ConsumptionMode.PROGRAMMED, tuple(w for w in windows if w is not None))

    def window(self, raw: RawWindow) -> Window | None:
        start = self.clock(raw.start)
        end = self.clock(raw.end, allow_24=True)
        days = self.days(raw.days) if raw.days.items else frozenset(range(7))
        if start is None or end is None or days is None:
            return None
        if start.minutes == end.minutes % 1440:
            self.error(raw.start, f"the window {start}-{end} is empty")
            return None
        return Window(start, end, days)

    def production_clause(self, clause: RawClause | None) -> Production:
        if clause is None:
            return Production()
        flag = clause.args[0]
        assert isinstance(flag, Token)
        if flag.type == "FALSE":
            return Production(enabled=False)
        return Production(enabled=True, sell=len(clause.args) > 1)

    def store_clause(self, clause: RawClause | None) -> bool:
        if clause is None:
            return False
        flag = clause.args[0]
        assert isinstance(flag, Token)
        return flag.type == "TRUE"

    def dr_clause(
        self, clause: RawClause | None, devices: tuple[str, ...] | None
    ) -> DemandResponse:
        if clause is None:
            return DemandResponse()
        if str(clause.keyword.value).lower() == "demandrespose":
            self.diagnostics.append(misspelt_dr(clause.keyword.value, *_at(clause.keyword)))
        flag = clause.args[0]
        assert isinstance(flag, Token)
        if flag.type == "FALSE":
            return DemandResponse(enabled=False)
        shed: list[str] = []
        if len(clause.args) > 1:
            tokens = clause.args[2]
            assert isinstance(tokens, list)
            for token in tokens:
                device = self.device(token, devices)
                if device is None:
                    continue
                if device in shed:
                    self.error(token, f"device '{device}' is listed twice")
                    continue
                shed.append(device)
        return DemandResponse(enabled=True, shed=tuple(shed))

    def devices_clause(self, clause: RawClause | None) -> tuple[str, ...] | None:
        if clause is None:
            return None
        tokens = clause.args[0]
        assert isinstance(tokens, list)
        devices: list[str] = []
        for token in tokens:
            device = self.text(token, "a device name", MAX_DEVICE)
            if device is None:
                continue
            if device in devices:
                self.error(token, f"device '{device}' is declared twice")
                continue
            devices.append(device)
        return tuple(devices)

    def parties_clause(self, clause: RawClause | None) -> tuple[Party, ...] | None:
        if clause is None:
            return None
        colon, *tokens = clause.args
        assert isinstance(colon, Token)
        if not tokens:
            self.error(
                colon,
                "empty party list",
                expected=f"a role ({_ROLE_TEXT}) or a participant identifier in quotes",
            )
            return None
        parties: list[Party] = []
        for token in tokens:
            assert isinstance(token, Token)
            party = self.party(token)
            if party is None:
                continue
            if party in parties:
                self.error(token, f"party {token.value} is listed twice")
                continue
            parties.append(party)
        return tuple(parties) if len(parties) == len(tokens) else None

    def party(self, token: Token) -> Party | None:
        if token.type == "WORD":
            role = str(token.value).upper()
            if role in ROLES:
                return Party(role, is_role=True)
            self.error(
                token,
                f"unknown role '{token.value}'",
                expected=f"a role ({_ROLE_TEXT}) or a participant identifier in quotes",
                hint=did_you_mean(role, ROLES) or "participant identifiers are quoted: 'casa-12'",
            )
            return None
        ident = unquote(token)
        if not PARTICIPANT_ID.fullmatch(ident):
            self.error(
                token,
                f"'{ident}' is not a participant identifier",
                expected="1-100 letters, digits, '_', '.', ':' or '-', "
                "starting with a letter or digit",
            )
            return None
        return Party(ident, is_role=False)

    def device(self, token: Token, declared: tuple[str, ...] | None) -> str | None:
        device = self.text(token, "a device name", MAX_DEVICE)
        if device is None:
            return None
        return device if self.declared(token, device, declared) else None

    def declared(self, token: Token, device: str, declared: tuple[str, ...] | None) -> bool:
        """Whether ``device`` may be named, given the Devices declaration (if any)."""
        if declared is None or device in declared:
            return True
        listed = ", ".join(f"'{d}'" for d in declared) or "none"
        self.error(
            token,
            f"device '{device}' is not declared in Devices",
            expected=f"one of {listed}",
            hint=did_you_mean(device, declared, quoted=True),
        )
        return False

    def check_devices(self, items: Sequence[RawItem], devices: tuple[str, ...] | None) -> None:
        """Actions may only name declared devices, where declarations exist."""
        if devices is None:
            return
        for action in _rule_actions(items):
            if action.kind == "turn":
                token = action.args[2]
                assert isinstance(token, Token)
                name = unquote(token)
                if name.strip():  # an empty name is reported with the action
                    self.declared(token, name, devices)

    def check_consistency(
        self, items: Sequence[RawItem], consumption: Consumption, production: Production
    ) -> None:
        for action in _rule_actions(items):
            if action.kind == "sell" and not production.enabled:
                self.diagnostics.append(selling_without_production(*_at(action.keyword)))
            if action.kind == "buy" and consumption.mode is ConsumptionMode.FALSE:
                self.diagnostics.append(buying_without_consumption(*_at(action.keyword)))

    # -- rules ------------------------------------------------------------

    def rule(self, raw: RawRule) -> Rule | None:
        condition = self.condition(raw.condition)
        then = self.actions(raw.then, raw.then_keyword, "THEN")
        otherwise: tuple[ActionSpec, ...] | None = ()
        if raw.otherwise is not None:
            assert raw.else_keyword is not None
            otherwise = self.actions(raw.otherwise, raw.else_keyword, "ELSE")
        if condition is None or then is None or otherwise is None:
            return None
        return Rule(condition, then, otherwise, line=raw.keyword.line or 0)

    def actions(
        self, raws: list[RawAction], keyword: Token, where: str
    ) -> tuple[ActionSpec, ...] | None:
        if not raws:
            self.error(
                keyword,
                f"{where} has no actions",
                expected="TURN ON|OFF DEVICE 'x', SELL SURPLUS, BUY ..., or NOTIFY 'text'",
            )
            return None
        out = [self.action(raw) for raw in raws]
        if any(a is None for a in out):
            return None
        return tuple(a for a in out if a is not None)

    def action(self, raw: RawAction) -> ActionSpec | None:
        line = raw.keyword.line or 0
        column = raw.keyword.column or 0
        if raw.kind == "turn":
            switch, _device_kw, token = raw.args
            assert isinstance(switch, Token)
            assert isinstance(token, Token)
            device = self.text(token, "a device name", MAX_DEVICE)
            if device is None:
                return None
            kind = ActionKind.TURN_ON if switch.type == "ON" else ActionKind.TURN_OFF
            return ActionSpec(kind, device=device, line=line, column=column)
        if raw.kind == "notify":
            token = raw.args[0]
            assert isinstance(token, Token)
            text = self.text(token, "the notification", MAX_NOTIFY)
            return (
                None
                if text is None
                else ActionSpec(ActionKind.NOTIFY, text=text, line=line, column=column)
            )
        if raw.kind == "sell":
            if not raw.args:
                return ActionSpec(ActionKind.SELL_SURPLUS, line=line, column=column)
            price_raw = raw.args[0]
            assert isinstance(price_raw, RawNumber)
            price = self.price(price_raw, "the minimum price")
            return (
                None
                if price is None
                else ActionSpec(ActionKind.SELL_SURPLUS, min_price=price, line=line, column=column)
            )
        energy_raw, price_raw = raw.args
        assert isinstance(energy_raw, RawNumber)
        assert isinstance(price_raw, RawNumber)
        energy = self.energy(energy_raw)
        price = self.price(price_raw, "the maximum price")
        if energy is None or price is None:
            return None
        return ActionSpec(
            ActionKind.BUY, max_energy=energy, max_price=price, line=line, column=column
        )

    def price(self, raw: RawNumber, what: str) -> Quantity | None:
        quantity = self.quantity(raw)
        if quantity is None:
            return None
        if quantity.unit is not None and quantity.unit.dimension is not Dimension.PRICE:
            self.error(
                raw.unit or raw.number,
                f"{what} is in {quantity.unit.symbol} ({quantity.unit.dimension})",
                expected="a price in MXN/kWh or MXN/MWh",
            )
            return None
        return quantity

    def energy(self, raw: RawNumber) -> Quantity | None:
        quantity = self.quantity(raw)
        if quantity is None:
            return None
        if quantity.unit is None or quantity.unit.dimension is not Dimension.ENERGY:
            got = "no unit" if quantity.unit is None else quantity.unit.symbol
            self.error(
                raw.unit or raw.number,
                f"the energy to buy has {got}",
                expected="an energy in Wh, kWh or MWh",
            )
            return None
        if quantity.value <= 0:
            self.error(raw.number, "the energy to buy must be more than zero")
            return None
        if quantity.base != quantity.base.to_integral_value():
            self.error(raw.number, f"{quantity.value} {quantity.unit.symbol} is not a whole Wh")
            return None
        return quantity

    # -- conditions -------------------------------------------------------

    def condition(self, raw: RawCondition) -> Condition | None:
        if isinstance(raw, RawBool):
            items = [self.condition(item) for item in raw.items]
            if any(item is None for item in items):
                return None
            checked = tuple(item for item in items if item is not None)
            return AllOf(checked) if raw.is_and else AnyOf(checked)
        if isinstance(raw, RawNot):
            inner = self.condition(raw.inner)
            return None if inner is None else Not(inner)
        if isinstance(raw, RawMembership):
            return self.membership(raw)
        return self.comparison(raw)

    def variable(self, raw: RawOperand) -> VarRef | None:
        if isinstance(raw, RawName):
            variable = VARIABLE_NAMES.get(str(raw.token.value).lower())
            if variable is not None:
                return VarRef(variable)
        return None

    def unknown_name(self, raw: RawName) -> None:
        self.error(
            raw.token,
            f"unknown variable '{raw.token.value}'",
            expected="one of " + ", ".join(_VARIABLE_SPELLINGS),
            hint=did_you_mean(str(raw.token.value), _VARIABLE_SPELLINGS),
        )

    def membership(self, raw: RawMembership) -> Membership | None:
        var = self.variable(raw.subject)
        if var is None and isinstance(raw.subject, RawName):
            self.unknown_name(raw.subject)
            return None
        if isinstance(raw.within, RawClockRange):
            if var is None or var.variable.var_type is not VarType.CLOCK:
                self.error(
                    raw.keyword,
                    "a range of times applies to Time",
                    expected="Time IN HH:MM-HH:MM",
                )
                return None
            start = self.clock(raw.within.start)
            end = self.clock(raw.within.end, allow_24=True)
            if start is None or end is None:
                return None
            if start.minutes == end.minutes % 1440:
                self.error(raw.within.start, f"the range {start}-{end} is empty")
                return None
            return Membership(var, ClockRange(start, end))
        if var is None or var.variable.var_type is not VarType.WEEKDAY:
            self.error(
                raw.keyword, "a set of days applies to Weekday", expected="Weekday IN weekends"
            )
            return None
        days = self.days(raw.within)
        return None if days is None else Membership(var, DaySet(days))

    def comparison(self, raw: RawComparison) -> Comparison | None:
        op = OPERATORS[str(raw.op.value)]
        left_var = self.variable(raw.left)
        right_var = self.variable(raw.right)
        if left_var is None and right_var is None:
            for side in (raw.left, raw.right):
                if isinstance(side, RawName):
                    self.unknown_name(side)
                    return None
            self.error(raw.op, "this comparison has no variable; it is always true or false")
            return None
        if left_var is not None and right_var is not None:
            return self.compare_variables(raw, left_var, op, right_var)
        var = left_var if left_var is not None else right_var
        assert var is not None
        other_raw = raw.right if left_var is not None else raw.left
        other = self.literal(var, other_raw, op, raw.op)
        if other is None:
            return None
        value, measure = other
        if left_var is not None:
            return Comparison(var, op, value, measure)
        return Comparison(value, op, var, measure)

    def compare_variables(
        self, raw: RawComparison, left: VarRef, op: Op, right: VarRef
    ) -> Comparison | None:
        lt, rt = left.variable.var_type, right.variable.var_type
        if lt is not rt:
            self.error(
                raw.op,
                f"cannot compare {left.variable.canonical} ({lt}) with "
                f"{right.variable.canonical} ({rt})",
            )
            return None
        if lt in (VarType.WEEKDAY, VarType.SERVICE) and op not in (Op.EQ, Op.NE):
            self.error(raw.op, f"{lt} values are compared with = or !=")
            return None
        measure = Measure.POWER if lt is VarType.POWER_OR_ENERGY else Measure.NONE
        return Comparison(left, op, right, measure)

    def literal(
        self, var: VarRef, raw: RawOperand, op: Op, op_token: Token
    ) -> tuple[Operand, Measure] | None:
        variable = var.variable
        var_type = variable.var_type
        name = variable.canonical
        if var_type in (VarType.WEEKDAY, VarType.SERVICE) and op not in (Op.EQ, Op.NE):
            hint = (
                "use Weekday IN mon-fri for several days" if var_type is VarType.WEEKDAY else None
            )
            self.error(op_token, f"{name} is compared with = or !=", hint=hint)
            return None
        if var_type is VarType.WEEKDAY:
            if not isinstance(raw, RawName):
                self.error(_token_of(raw), f"{name} is compared with a day", expected="mon..sun")
                return None
            days = self.day_word(raw.token, single=False)
            return None if days is None else (DaySet(days), Measure.NONE)
        if var_type is VarType.SERVICE:
            word = str(raw.token.value).lower() if isinstance(raw, RawName) else ""
            if word not in SERVICE_STATES:
                self.error(
                    _token_of(raw),
                    f"{name} is 'connected' or 'cut'",
                    hint=did_you_mean(word, SERVICE_STATES) if word else None,
                )
                return None
            return ServiceValue(cut=word == "cut"), Measure.NONE
        if var_type is VarType.CLOCK:
            if not isinstance(raw, RawClock):
                self.error(_token_of(raw), "Time is compared with a time of day", expected="HH:MM")
                return None
            clock = self.clock(raw.token)
            return None if clock is None else (clock, Measure.NONE)
        if isinstance(raw, RawName):
            self.unknown_name(raw)
            return None
        if not isinstance(raw, RawNumber):
            self.error(raw.token, f"{name} is a {var_type}, not a time of day")
            return None
        quantity = self.quantity(raw)
        if quantity is None:
            return None
        return self.typed_quantity(variable.canonical, var_type, quantity, raw)

    def typed_quantity(
        self, name: str, var_type: VarType, quantity: Quantity, raw: RawNumber
    ) -> tuple[Operand, Measure] | None:
        unit = quantity.unit
        at = raw.unit or raw.number
        if var_type is VarType.PRICE:
            if unit is not None and unit.dimension is not Dimension.PRICE:
                self.error(
                    at,
                    f"cannot compare {name} (MXN/kWh) with {quantity.value} {unit.symbol} "
                    f"({unit.dimension})",
                    expected="a price: 3 or 2.5 MXN/kWh",
                )
                return None
            return quantity, Measure.NONE
        if var_type is VarType.POWER_OR_ENERGY:
            if unit is None:
                self.error(
                    raw.number,
                    f"{name} needs a unit",
                    expected="W, kW or MW for power now; Wh, kWh or MWh for the last interval",
                )
                return None
            if unit.dimension is Dimension.POWER:
                return quantity, Measure.POWER
            if unit.dimension is Dimension.ENERGY:
                return quantity, Measure.ENERGY
            self.error(
                at,
                f"cannot compare {name} (power or energy) with {quantity.value} {unit.symbol} "
                f"({unit.dimension})",
                expected="W, kW or MW for power now; Wh, kWh or MWh for the last interval",
            )
            return None
        if var_type is VarType.PERCENT:
            if unit is not None and unit.dimension is not Dimension.PERCENT:
                self.error(
                    at,
                    f"cannot compare {name} (%) with {quantity.value} {unit.symbol} "
                    f"({unit.dimension})",
                )
                return None
            if not 0 <= quantity.value <= 100:
                self.error(raw.number, f"{name} is between 0 and 100 %")
                return None
            return quantity, Measure.NONE
        # LEVEL
        if unit is not None:
            self.error(at, f"{name} is a plain number from 0 to 3, without unit")
            return None
        if quantity.value not in (0, 1, 2, 3):
            self.error(raw.number, f"{name} is 0, 1, 2 or 3 (OpenADR SIMPLE levels)")
            return None
        return quantity, Measure.NONE


def _rule_actions(items: Sequence[RawItem]) -> Iterator[RawAction]:
    """Every action written in the rules, THEN and ELSE, in order."""
    for item in items:
        if isinstance(item, RawRule):
            yield from item.then
            yield from item.otherwise or ()


def _token_of(raw: RawOperand) -> Token:
    if isinstance(raw, RawNumber):
        return raw.number
    return raw.token


def check_items(items: Iterable[RawItem]) -> tuple[Contract | None, tuple[Diagnostic, ...]]:
    """Check raw clauses; the contract is None when any diagnostic is an error."""
    checker = _Checker()
    contract = checker.check(list(items))
    diagnostics = tuple(sorted(checker.diagnostics, key=lambda d: (d.line, d.column)))
    return (None if checker.failed else contract), diagnostics
