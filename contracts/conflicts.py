"""Contradictions between a new contract and a home's active ones, found before signing.

Between the contracts of a home, one decision is made per device and event
(:mod:`contracts.decide`), so contradicting contracts do not make an appliance
flap; but the household should know which of its words lose. :func:`conflicts`
warns, naming both places, when:

- a rule of the new contract turns a device on (off) while a rule of an active
  contract turns it off (on), and both can apply at once (*opposite*);
- a rule of one turns a device on that the other holds off: demand response
  sheds it (the ``TURN ON`` is suppressed while an event is in force) or
  refused imports turn it off (``Consumption false`` / ``programmed``).

"Can apply at once" is decided by evaluating both conditions, with the
evaluator's own semantics, at every combination of the values that matter: for
each variable the conditions read, the constants they compare it with and the
values between and around them; every weekday and the times of day around each
boundary; demand-response levels 0-3. That is exact for comparisons with
constants (truth changes only at a constant); for comparisons between two
variables, and for ``Surplus`` against limits on consumption and production, it
tries the orderings those values allow. The search stops after
:data:`MAX_STATES` combinations per pair, and :data:`MAX_WORK` in all (no
warning then), so a check takes a bounded time whatever the contracts. Validity
windows must overlap; which weekdays they share is not considered.

A warning never rejects a contract. Pure: no I/O, no clock.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from enum import StrEnum
from typing import Final

from contracts.canonical import action as action_text
from contracts.canonical import number, quote
from contracts.errors import Diagnostic, Severity
from contracts.evaluator import MeterState, compile_condition, schedule_test
from contracts.model import (
    WEEKDAY_NAMES,
    ActionKind,
    AllOf,
    AnyOf,
    ClockRange,
    ClockValue,
    Comparison,
    Condition,
    ConsumptionMode,
    Contract,
    Measure,
    Membership,
    Not,
    Quantity,
    Variable,
    VarRef,
)

MAX_STATES: Final = 20_000
MAX_WORK: Final = 200_000
_MONDAY: Final = datetime(2024, 1, 1)  # noqa: DTZ001 - local civil time, a Monday

type Test = Callable[[MeterState], bool | None]


class ConflictKind(StrEnum):
    """How two contracts of a home contradict each other over a device."""

    OPPOSITE = "opposite"  # a rule of each: TURN ON against TURN OFF
    HELD_BY_DR = "held_by_dr"  # the new TURN ON; the active contract sheds the device
    HELD_BY_IMPORTS = "held_by_imports"  # the new TURN ON; the active one refuses imports
    SHEDS = "sheds"  # the new contract sheds what an active rule turns on
    REFUSES = "refuses"  # the new contract refuses imports; an active rule turns the device on


@dataclass(frozen=True, slots=True)
class Conflict:
    """A contradiction: where in the new contract, where in an active one, and an example."""

    kind: ConflictKind
    device: str
    line: int
    column: int
    what: str  # the new contract's side, as written
    other: int  # index of the active contract
    other_line: int
    other_column: int
    other_what: str
    example: str  # a state in which both apply, e.g. "Price 2 MXN/kWh, DRLevel 3"


@dataclass(frozen=True, slots=True)
class _Switch:
    device: str
    on: bool
    branch: bool  # THEN runs when the condition is True, ELSE when False
    condition: Condition
    test: Test
    line: int
    column: int
    text: str
    size: int  # tests in the condition: the cheaper switch is tried first


def _size(node: Condition) -> int:
    if isinstance(node, Not):
        return _size(node.inner)
    if isinstance(node, AllOf | AnyOf):
        return sum(_size(item) for item in node.items)
    return 1


@dataclass(frozen=True, slots=True)
class _Side:
    contract: Contract
    switches: tuple[_Switch, ...]
    shed: frozenset[str]
    import_held: frozenset[str]
    in_schedule: Callable[[datetime], bool] | None  # None: imports always refused


def _side(contract: Contract) -> _Side:
    switches: list[_Switch] = []
    for rule in contract.rules:
        test = compile_condition(rule.condition)
        size = _size(rule.condition)
        for branch, actions in ((True, rule.then), (False, rule.otherwise)):
            for spec in actions:
                if spec.kind in (ActionKind.TURN_ON, ActionKind.TURN_OFF) and spec.device:
                    switches.append(
                        _Switch(
                            spec.device,
                            spec.kind is ActionKind.TURN_ON,
                            branch,
                            rule.condition,
                            test,
                            spec.line,
                            spec.column or 1,
                            action_text(spec).strip() + ("" if branch else " (ELSE)"),
                            size,
                        )
                    )
    dr = contract.demand_response
    mode = contract.consumption.mode
    return _Side(
        contract,
        tuple(switches),
        frozenset(contract.shed_devices()) if dr.enabled else frozenset(),
        frozenset(contract.controlled_devices())
        if mode is not ConsumptionMode.TRUE
        else frozenset(),
        schedule_test(contract.consumption.schedule)
        if mode is ConsumptionMode.PROGRAMMED
        else None,
    )


# -- the values that matter -----------------------------------------------------------


@dataclass
class _Reads:
    """What some conditions read, and the constants they compare it with."""

    variables: set[tuple[Variable, Measure]]
    prices: set[Decimal]
    power: set[Decimal]
    energy: set[Decimal]
    surplus_power: set[Decimal]
    surplus_energy: set[Decimal]
    percent: set[Decimal]
    minutes: set[int]

    @classmethod
    def empty(cls) -> _Reads:
        return cls(set(), set(), set(), set(), set(), set(), set(), set())

    def read(self, node: Condition) -> None:
        if isinstance(node, Comparison):
            for this, other in ((node.left, node.right), (node.right, node.left)):
                if isinstance(this, VarRef):
                    self.variables.add((this.variable, node.measure))
                    self.constant(this.variable, node.measure, other)
        elif isinstance(node, Membership):
            self.variables.add((node.subject.variable, Measure.NONE))
            if isinstance(node.within, ClockRange):
                self.minutes.update((node.within.start.minutes, node.within.end.minutes))
        elif isinstance(node, Not):
            self.read(node.inner)
        else:
            assert isinstance(node, AllOf | AnyOf)
            for item in node.items:
                self.read(item)

    def constant(self, variable: Variable, measure: Measure, value: object) -> None:
        if isinstance(value, ClockValue):
            self.minutes.add(value.minutes)
            return
        if not isinstance(value, Quantity):
            return  # day sets, service values and variables: enumerated whole
        base = value.base
        if variable in (Variable.PRICE, Variable.IMPORT_PRICE, Variable.EXPORT_PRICE):
            self.prices.add(base)
        elif variable is Variable.BATTERY:
            self.percent.add(base)
        elif variable is Variable.SURPLUS:
            (self.surplus_energy if measure is Measure.ENERGY else self.surplus_power).add(base)
        elif variable in (Variable.CONSUMPTION, Variable.PRODUCTION):
            (self.energy if measure is Measure.ENERGY else self.power).add(base)

    def reads(self, *variables: Variable) -> bool:
        return any(v in variables for v, _m in self.variables)

    def reads_measure(self, measure: Measure) -> bool:
        power_vars = (Variable.CONSUMPTION, Variable.PRODUCTION, Variable.SURPLUS)
        return any(v in power_vars and m is measure for v, m in self.variables)


def _around(values: set[Decimal]) -> list[Decimal]:
    """The constants, the midpoints between them, and one below and one above."""
    ordered = sorted(values)
    if not ordered:  # two variables compared with each other need values apart
        return [Decimal(-1), Decimal(0), Decimal(1)]
    out = [ordered[0] - 1]
    for low, high in itertools.pairwise(ordered):
        out.extend((low, (low + high) / 2))
    out.extend((ordered[-1], ordered[-1] + 1))
    return out


def _whole(values: set[Decimal], extra: set[Decimal]) -> list[int]:
    """Whole, non-negative values around each constant (W or Wh), and 0 and 1."""
    found = {0, 1}
    for value in values:
        low, high = math.floor(value), math.ceil(value)
        found.update(v for v in (low - 1, low, high, high + 1) if v >= 0)
    for surplus in extra:
        for base in list(found):
            found.update(
                v for v in (base + math.floor(surplus), base + math.ceil(surplus) + 1) if v >= 0
            )
    return sorted(found)


def _states(reads: _Reads, *, dr: bool, imports: bool, days: bool) -> Iterator[MeterState]:
    """Every combination of the values that matter, in a fixed order."""
    prices: list[Decimal | None] = list(_around(reads.prices))
    import_prices = prices if reads.reads(Variable.PRICE, Variable.IMPORT_PRICE) else [None]
    export_prices = prices if reads.reads(Variable.EXPORT_PRICE) else [None]
    power = (
        _whole(reads.power, reads.surplus_power)
        if reads.reads_measure(Measure.POWER) or imports
        else [0]
    )
    energy = (
        _whole(reads.energy, reads.surplus_energy) if reads.reads_measure(Measure.ENERGY) else [0]
    )
    minutes = sorted(
        {(m + d) % 1440 for m in reads.minutes for d in (-1, 0, 1)} | {0}
        if reads.minutes or reads.reads(Variable.TIME)
        else {720}
    )
    weekdays = range(7) if days or reads.reads(Variable.WEEKDAY) else range(1)
    levels = range(4) if dr or reads.reads(Variable.DR_LEVEL) else range(1)
    battery: list[Decimal | None] = (
        [v for v in _around(reads.percent) if 0 <= v <= 100] or [Decimal(0)]
        if reads.reads(Variable.BATTERY)
        else [None]
    )
    service = (True, False) if reads.reads(Variable.SERVICE) else (True,)
    clocks = [
        _MONDAY + timedelta(days=day, minutes=minute) for day in weekdays for minute in minutes
    ]
    combos = itertools.product(
        itertools.product(import_prices, export_prices),
        itertools.product(power, power, energy, energy, clocks, levels),
        battery,
        service,
    )
    for (imp, exp), (cw, pw, cwh, pwh, clock, level), soc, connected in itertools.islice(
        combos, MAX_STATES
    ):
        yield MeterState(
            clock=clock,
            import_price=imp,
            export_price=exp,
            consumption_w=cw,
            production_w=pw,
            consumption_wh=cwh,
            production_wh=pwh,
            dr_level=level,
            battery_soc=soc,
            service_connected=connected,
        )


def _example(state: MeterState, reads: _Reads, *, dr: bool, imports: bool) -> str:
    """The values of ``state`` that the conditions read, for people."""
    parts: list[str] = []
    if reads.reads(Variable.PRICE, Variable.IMPORT_PRICE) and state.import_price is not None:
        parts.append(f"Price {number(state.import_price)} MXN/kWh")
    if reads.reads(Variable.EXPORT_PRICE) and state.export_price is not None:
        parts.append(f"ExportPrice {number(state.export_price)} MXN/kWh")
    if reads.reads_measure(Measure.POWER) or imports:
        parts.append(f"consumption {state.consumption_w} W, production {state.production_w} W")
    if reads.reads_measure(Measure.ENERGY):
        parts.append(
            f"consumption {state.consumption_wh} Wh, production {state.production_wh} Wh "
            "in the last interval"
        )
    if reads.reads(Variable.WEEKDAY) or reads.minutes:
        parts.append(WEEKDAY_NAMES[state.clock.weekday()])
    if reads.reads(Variable.TIME) or reads.minutes:
        parts.append(f"{state.clock:%H:%M}")
    if dr or reads.reads(Variable.DR_LEVEL):
        parts.append(f"DRLevel {state.dr_level}")
    if reads.reads(Variable.BATTERY) and state.battery_soc is not None:
        parts.append(f"Battery {number(state.battery_soc)} %")
    if reads.reads(Variable.SERVICE):
        parts.append("Service " + ("connected" if state.service_connected else "cut"))
    return ", ".join(parts) or "always"


def _windows_overlap(a: Contract, b: Contract) -> bool:
    return a.valid_from <= b.valid_to and b.valid_from <= a.valid_to


@dataclass
class _Budget:
    """States left to try in one :func:`find_conflicts` call."""

    left: int = MAX_WORK


def _witness(
    switches: Sequence[_Switch],
    budget: _Budget,
    *,
    hold: Callable[[MeterState], bool] | None = None,
    dr: bool = False,
    imports: bool = False,
    schedule: Sequence[Contract] = (),
) -> str | None:
    """An example state in which every switch's branch runs (and ``hold`` holds), or None."""
    reads = _Reads.empty()
    for switch in switches:
        reads.read(switch.condition)
    days = False
    for contract in schedule:
        for window in contract.consumption.schedule:
            reads.minutes.update((window.start.minutes, window.end.minutes))
            days = days or len(window.days) < 7
    # Every switch must hold, so the order only changes the cost: the shortest condition
    # first, which fails soonest on most states.
    ordered = sorted(switches, key=lambda s: s.size)
    for state in _states(reads, dr=dr, imports=imports, days=days):
        if budget.left <= 0:
            return None
        budget.left -= 1
        if all(s.test(state) is s.branch for s in ordered) and (hold is None or hold(state)):
            return _example(state, reads, dr=dr, imports=imports)
    return None


def _importing_refused(side: _Side) -> Callable[[MeterState], bool]:
    in_schedule = side.in_schedule

    def refused(state: MeterState) -> bool:
        if state.consumption_w <= state.production_w:
            return False
        return in_schedule is None or not in_schedule(state.clock)

    return refused


def _dr_in_force(state: MeterState) -> bool:
    return state.dr_level > 0


def _identity(conflict: Conflict) -> tuple[object, ...]:
    return (
        conflict.kind,
        conflict.device,
        conflict.line,
        conflict.column,
        conflict.other,
        conflict.other_line,
        conflict.other_column,
    )


def find_conflicts(new: Contract, active: Sequence[Contract]) -> tuple[Conflict, ...]:
    """Every contradiction between ``new`` and each contract of ``active``, in source order."""
    mine = _side(new)
    budget = _Budget()
    found: dict[tuple[object, ...], Conflict] = {}

    def add(conflict: Conflict) -> None:
        found.setdefault(_identity(conflict), conflict)

    lines, columns = new.lines, new.columns
    for index, contract in enumerate(active):
        if not _windows_overlap(new, contract):
            continue
        theirs = _side(contract)
        other_lines, other_columns = contract.lines, contract.columns
        for a in mine.switches:
            for b in theirs.switches:
                if a.device != b.device or a.on == b.on:
                    continue
                example = _witness((a, b), budget)
                if example is not None:
                    add(Conflict(ConflictKind.OPPOSITE, a.device, a.line, a.column, a.text,
                                 index, b.line, b.column, b.text, example))  # fmt: skip
            if a.on and a.device in theirs.shed:
                example = _witness((a,), budget, hold=_dr_in_force, dr=True)
                if example is not None:
                    add(Conflict(ConflictKind.HELD_BY_DR, a.device, a.line, a.column, a.text,
                                 index, other_lines.demand_response,
                                 other_columns.demand_response or 1,
                                 "DemandResponse true", example))  # fmt: skip
            if a.on and a.device in theirs.import_held:
                example = _witness(
                    (a,),
                    budget,
                    hold=_importing_refused(theirs),
                    imports=True,
                    schedule=(contract,),
                )
                if example is not None:
                    add(Conflict(ConflictKind.HELD_BY_IMPORTS, a.device, a.line, a.column, a.text,
                                 index, other_lines.consumption,
                                 other_columns.consumption or 1,
                                 f"Consumption {contract.consumption.mode}", example))  # fmt: skip
        for b in theirs.switches:
            if b.on and b.device in mine.shed:
                example = _witness((b,), budget, hold=_dr_in_force, dr=True)
                if example is not None:
                    add(Conflict(ConflictKind.SHEDS, b.device, lines.demand_response,
                                 columns.demand_response or 1, "DemandResponse true",
                                 index, b.line, b.column, b.text, example))  # fmt: skip
            if b.on and b.device in mine.import_held:
                example = _witness(
                    (b,), budget, hold=_importing_refused(mine), imports=True, schedule=(new,)
                )
                if example is not None:
                    add(Conflict(ConflictKind.REFUSES, b.device, lines.consumption,
                                 columns.consumption or 1, f"Consumption {new.consumption.mode}",
                                 index, b.line, b.column, b.text, example))  # fmt: skip
    return tuple(
        sorted(found.values(), key=lambda c: (c.line, c.column, c.other, c.other_line, c.kind))
    )


def _message(conflict: Conflict, where: str) -> tuple[str, str]:
    device = quote(conflict.device)
    example = conflict.example
    match conflict.kind:
        case ConflictKind.OPPOSITE:
            return (
                (
                    f"{conflict.what} contradicts {conflict.other_what} at {where}: "
                    f"both apply when {example}"
                ),
                "between contracts of a home the one activated later wins",
            )
        case ConflictKind.HELD_BY_DR:
            return (
                (
                    f"{conflict.what} is suppressed during demand response: {where} sheds "
                    f"{device} (e.g. when {example})"
                ),
                "the device stays off until the event ends, then goes back to how it was",
            )
        case ConflictKind.HELD_BY_IMPORTS:
            return (
                (
                    f"{conflict.what} is suppressed while {where} ({conflict.other_what}) refuses "
                    f"imports (e.g. when {example})"
                ),
                "refused imports hold the device off",
            )
        case ConflictKind.SHEDS:
            return (
                (
                    f"demand response sheds {device}, which {conflict.other_what} at {where} turns "
                    f"on: during an event that TURN ON is suppressed (e.g. when {example})"
                ),
                "the device stays off until the event ends, then goes back to how it was",
            )
        case ConflictKind.REFUSES:
            return (
                (
                    f"refusing imports holds {device} off, which {conflict.other_what} at {where} "
                    f"turns on: while importing that TURN ON is suppressed (e.g. when {example})"
                ),
                "refused imports hold the device off",
            )


def to_diagnostic(conflict: Conflict, where: str) -> Diagnostic:
    """The warning for ``conflict``, at its place in the new contract; ``where`` names the
    other place (``NAME:LINE:COL``)."""
    message, hint = _message(conflict, where)
    return Diagnostic(Severity.WARNING, conflict.line, conflict.column, message, None, hint)


def conflicts(new: Contract, active: Sequence[tuple[str, Contract]]) -> tuple[Diagnostic, ...]:
    """Warnings at the new contract's lines for every contradiction with ``active``.

    Each active contract comes with the name shown for it (a file name, or
    ``'name' [0x...]``); the other place is written ``NAME:LINE:COL``.
    """
    found = find_conflicts(new, [contract for _name, contract in active])
    return tuple(
        to_diagnostic(c, f"{active[c.other][0]}:{c.other_line}:{c.other_column}") for c in found
    )
