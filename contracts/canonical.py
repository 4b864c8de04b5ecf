"""Canonical text, content hash, short id and the ledger's receipt line.

The canonical text writes keywords in one spelling, one clause per line in a
fixed order, every flag explicitly, numbers without exponent or trailing zeros,
and conditions with only the parentheses their meaning needs. Parsing it gives
back an equal contract, and formatting that gives the same text.
"""

from __future__ import annotations

import hashlib
from datetime import datetime
from decimal import Decimal
from typing import Final

from contracts.model import (
    ALL_DAYS,
    WEEKDAY_NAMES,
    ActionKind,
    ActionSpec,
    AllOf,
    AnyOf,
    ClockRange,
    ClockValue,
    Comparison,
    Condition,
    ConsumptionMode,
    Contract,
    DaySet,
    Membership,
    Not,
    Operand,
    Party,
    Quantity,
    ServiceValue,
    VarRef,
    Window,
)

INDENT: Final = "  "
SHORT_ID_DIGITS: Final = 10

_DAY_SETS: Final[dict[frozenset[int], str]] = {
    frozenset(range(5)): "weekdays",
    frozenset({5, 6}): "weekends",
    ALL_DAYS: "daily",
}


def stamp(moment: datetime) -> str:
    """``YYYY/MM/DD HH:MM:SS`` (four-digit years, whatever the platform)."""
    return (
        f"{moment.year:04d}/{moment.month:02d}/{moment.day:02d} "
        f"{moment.hour:02d}:{moment.minute:02d}:{moment.second:02d}"
    )


def quote(text: str) -> str:
    """A string literal: single quotes, a quote inside written twice."""
    return "'" + text.replace("'", "''") + "'"


def number(value: Decimal) -> str:
    """Decimal in canonical notation: no exponent, no trailing zeros, no '-0'."""
    if value == 0:
        return "0"
    return format(value.normalize(), "f")


def quantity(q: Quantity) -> str:
    """A number with its unit, as written."""
    return number(q.value) if q.unit is None else f"{number(q.value)} {q.unit.symbol}"


def clock(value: ClockValue) -> str:
    """``HH:MM``; 24:00 for the end of the day."""
    return str(value)


def days(value: frozenset[int]) -> str:
    """A set of weekdays: a named set, or short names with runs of 3+ as ranges."""
    if value in _DAY_SETS:
        return _DAY_SETS[value]
    ordered = sorted(value)
    parts: list[str] = []
    i = 0
    while i < len(ordered):
        j = i
        while j + 1 < len(ordered) and ordered[j + 1] == ordered[j] + 1:
            j += 1
        if j - i >= 2:
            parts.append(f"{WEEKDAY_NAMES[ordered[i]]}-{WEEKDAY_NAMES[ordered[j]]}")
        else:
            parts.extend(WEEKDAY_NAMES[k] for k in ordered[i : j + 1])
        i = j + 1
    return " ".join(parts)


def operand(value: Operand) -> str:
    """One side of a comparison."""
    if isinstance(value, VarRef):
        return value.variable.canonical
    if isinstance(value, Quantity):
        return quantity(value)
    if isinstance(value, ClockValue):
        return clock(value)
    if isinstance(value, DaySet):
        return days(value.days)
    assert isinstance(value, ServiceValue)
    return "cut" if value.cut else "connected"


_OR, _AND, _NOT = 1, 2, 3


def condition(node: Condition, parent: int = 0) -> str:
    """A condition with only the parentheses that its structure needs."""
    if isinstance(node, AnyOf):
        text = " OR ".join(condition(item, _OR) for item in node.items)
        return f"({text})" if parent > _OR else text
    if isinstance(node, AllOf):
        text = " AND ".join(condition(item, _AND) for item in node.items)
        return f"({text})" if parent > _AND else text
    if isinstance(node, Not):
        return "NOT " + condition(node.inner, _NOT)
    if isinstance(node, Membership):
        within = node.within
        target = (
            f"{clock(within.start)}-{clock(within.end)}"
            if isinstance(within, ClockRange)
            else days(within.days)
        )
        return f"{node.subject.variable.canonical} IN {target}"
    assert isinstance(node, Comparison)
    return f"{operand(node.left)} {node.op} {operand(node.right)}"


def action(spec: ActionSpec) -> str:
    """One action line (without indentation)."""
    kind = spec.kind
    if kind is ActionKind.TURN_ON or kind is ActionKind.TURN_OFF:
        assert spec.device is not None
        switch = "ON" if kind is ActionKind.TURN_ON else "OFF"
        return f"TURN {switch} DEVICE {quote(spec.device)}"
    if kind is ActionKind.NOTIFY:
        assert spec.text is not None
        return f"NOTIFY {quote(spec.text)}"
    if kind is ActionKind.SELL_SURPLUS:
        if spec.min_price is None:
            return "SELL SURPLUS"
        return f"SELL SURPLUS AT MIN {quantity(spec.min_price)}"
    assert kind is ActionKind.BUY
    assert spec.max_energy is not None
    assert spec.max_price is not None
    return f"BUY UP TO {quantity(spec.max_energy)} AT MAX {quantity(spec.max_price)}"


def _window(window: Window) -> str:
    text = f"{clock(window.start)}-{clock(window.end)}"
    if window.days != ALL_DAYS:
        text += " " + days(window.days)
    return text


def _party(party: Party) -> str:
    return party.name if party.is_role else quote(party.name)


def format_contract(contract: Contract) -> str:
    """The canonical text of a contract, ending with a newline."""
    lines = [
        f"Contract {quote(contract.name)}",
        f"Valid from {stamp(contract.valid_from)} to {stamp(contract.valid_to)}",
    ]
    consumption = contract.consumption
    if consumption.mode is ConsumptionMode.PROGRAMMED:
        lines.append(
            "Consumption programmed " + ", ".join(_window(w) for w in consumption.schedule)
        )
    else:
        lines.append(f"Consumption {consumption.mode}")
    production = contract.production
    if not production.enabled:
        lines.append("Production false")
    else:
        lines.append("Production true and sell" if production.sell else "Production true")
    lines.append(f"Store {'true' if contract.store else 'false'}")
    dr = contract.demand_response
    if not dr.enabled:
        lines.append("DemandResponse false")
    elif dr.shed:
        lines.append("DemandResponse true shed " + ", ".join(quote(d) for d in dr.shed))
    else:
        lines.append("DemandResponse true")
    if contract.devices is not None:
        lines.append("Devices: " + ", ".join(quote(d) for d in contract.devices))
    for rule in contract.rules:
        lines.append(f"IF {condition(rule.condition)} THEN")
        lines.extend(INDENT + action(a) for a in rule.then)
        if rule.otherwise:
            lines.append("ELSE")
            lines.extend(INDENT + action(a) for a in rule.otherwise)
        lines.append("ENDIF")
    lines.append("Parties: " + ", ".join(_party(p) for p in contract.parties))
    return "\n".join(lines) + "\n"


def content_hash(contract: Contract) -> str:
    """SHA-256 of the canonical text's UTF-8 bytes, lower-case hex."""
    return hashlib.sha256(format_contract(contract).encode("utf-8")).hexdigest()


def short_id(contract: Contract) -> str:
    """What people see: ``0x`` and the hash's first 10 hex digits, upper case."""
    return "0x" + content_hash(contract)[:SHORT_ID_DIGITS].upper()


def receipt(contract: Contract, timestamp: datetime) -> str:
    """The ledger's answer once a contract is committed.

    ``Timestamp 2019/07/11 18:23:47 to 'prueba' [0x23ABCD92B5]``
    """
    return f"Timestamp {stamp(timestamp)} to {quote(contract.name)} [{short_id(contract)}]"
