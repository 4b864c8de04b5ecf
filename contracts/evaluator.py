"""What a contract asks a meter to do at an event.

Pure and deterministic: the caller passes the contract, the participant's state
after the event (readings, prices, demand-response level, service status, local
clock) and the event's kind; the result is an ordered tuple of actions, each
with the clause that caused it. Evaluation is bounded by the contract's size:
the language has no loops and no recursion.

A contract is compiled once (:func:`compile_contract`) into closures; a meter
keeps the :class:`Program` of each active contract and calls
:meth:`Program.evaluate` at every event.

Conditions use three-valued logic: a comparison that reads a value the meter
does not know yet (no price signal so far, no battery) is *unknown*; ``NOT``
keeps it unknown, ``AND`` is false if any part is false, ``OR`` is true if any
part is true. A rule runs its THEN actions only when its condition is true, its
ELSE actions only when it is false, and neither when it is unknown.
"""

from __future__ import annotations

import operator
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from enum import IntEnum, StrEnum
from typing import Any, Final

from contracts.canonical import condition as condition_text
from contracts.canonical import days as days_text
from contracts.canonical import quote
from contracts.model import (
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
    Measure,
    Membership,
    Not,
    Op,
    Operand,
    Quantity,
    ServiceValue,
    Variable,
    VarRef,
    Window,
)


class Event(StrEnum):
    """The events at which a meter evaluates its contracts."""

    INTERVAL_REPORT = "interval_report"
    SERVICE_CUT = "service_cut"
    RECONNECTION = "reconnection"
    PRICE_SIGNAL = "price_signal"
    DR_SIGNAL = "dr_signal"


@dataclass(frozen=True, slots=True)
class MeterState:
    """A participant's state right after an event.

    ``clock`` is the market's local civil time (naive). Power is live (W);
    energy is that of the last completed 15-minute interval (Wh). Prices are
    MXN/kWh; None means no price signal has arrived. ``dr_level`` is the active
    OpenADR SIMPLE level (0 = no event). ``battery_soc`` is in percent, None
    without a battery.
    """

    clock: datetime
    import_price: Decimal | None = None
    export_price: Decimal | None = None
    consumption_w: int = 0
    production_w: int = 0
    consumption_wh: int = 0
    production_wh: int = 0
    dr_level: int = 0
    battery_soc: Decimal | None = None
    service_connected: bool = True


@dataclass(frozen=True, slots=True)
class Reason:
    """The clause that produced an action, and where it is written."""

    line: int
    clause: str

    def __str__(self) -> str:
        return f"line {self.line}: {self.clause}"


@dataclass(frozen=True, slots=True)
class Action:
    """One thing the meter is asked to do.

    Prices are MXN/kWh and energy is Wh. ``RESTORE`` puts a device back in the
    state it had before demand response shed it.
    """

    kind: ActionKind
    reason: Reason
    device: str | None = None
    text: str | None = None
    min_price: Decimal | None = None
    max_energy_wh: int | None = None
    max_price: Decimal | None = None

    def describe(self) -> str:
        """One line for people: what, and why."""
        what = {
            ActionKind.TURN_ON: f"turn on {self.device!r}",
            ActionKind.TURN_OFF: f"turn off {self.device!r}",
            ActionKind.RESTORE: f"restore {self.device!r}",
            ActionKind.NOTIFY: f"notify {self.text!r}",
            ActionKind.STORE_SURPLUS: "store surplus",
            ActionKind.CURTAIL_EXPORT: "curtail export",
            ActionKind.SELL_SURPLUS: "sell surplus"
            + ("" if self.min_price is None else f" at min {self.min_price} MXN/kWh"),
            ActionKind.BUY: f"buy up to {self.max_energy_wh} Wh at max {self.max_price} MXN/kWh",
        }[self.kind]
        return f"{what} ({self.reason})"


@dataclass(frozen=True, slots=True)
class Suppressed:
    """An action a clause asked for that did not make it, and why."""

    action: Action
    why: str


@dataclass(frozen=True, slots=True)
class Evaluation:
    """The actions, in order; what was suppressed; each rule's outcome by line."""

    actions: tuple[Action, ...]
    suppressed: tuple[Suppressed, ...] = ()
    rules: tuple[tuple[int, bool | None], ...] = ()
    in_window: bool = True


class Role(IntEnum):
    """Where an action comes from. For devices, the precedence between the contracts of a
    home: a higher role wins (:func:`contracts.decide.decide`)."""

    FLAG = 0  # storing, selling, curtailing: not device actions
    RESTORE = 1  # the end of demand response
    RULE = 2  # a rule's THEN or ELSE
    IMPORT_HOLD = 3  # refused imports turning the controlled devices off
    DR_HOLD = 4  # demand response shedding


@dataclass(frozen=True, slots=True)
class Contribution:
    """One contract's part at one event, before merging: every action a clause asks for,
    in clause order, with its role; the devices held off now, and why; each rule's outcome.

    ``import_reason`` is set when the contract refuses imports now (its BUYs are
    suppressed and ``import_held`` are held off).
    """

    candidates: tuple[tuple[Action, Role], ...] = ()
    rules: tuple[tuple[int, bool | None], ...] = ()
    dr_held: tuple[str, ...] = ()
    import_held: tuple[str, ...] = ()
    import_reason: Reason | None = None
    in_window: bool = True


# ---------------------------------------------------------------------------
# Compiling conditions
# ---------------------------------------------------------------------------

type Getter = Callable[[MeterState], object]
type Test = Callable[[MeterState], bool | None]

_OPS: Final[dict[Op, Callable[[Any, Any], bool]]] = {
    Op.LT: operator.lt,
    Op.LE: operator.le,
    Op.GT: operator.gt,
    Op.GE: operator.ge,
    Op.EQ: operator.eq,
    Op.NE: operator.ne,
}


def _minutes(state: MeterState) -> int:
    return state.clock.hour * 60 + state.clock.minute


def _weekday(state: MeterState) -> int:
    return state.clock.weekday()


def _variable_getter(variable: Variable, measure: Measure) -> Getter:
    energy = measure is Measure.ENERGY
    getters: dict[Variable, Getter] = {
        Variable.PRICE: lambda s: s.import_price,
        Variable.IMPORT_PRICE: lambda s: s.import_price,
        Variable.EXPORT_PRICE: lambda s: s.export_price,
        Variable.CONSUMPTION: (lambda s: s.consumption_wh)
        if energy
        else (lambda s: s.consumption_w),
        Variable.PRODUCTION: (lambda s: s.production_wh) if energy else (lambda s: s.production_w),
        Variable.SURPLUS: (lambda s: max(s.production_wh - s.consumption_wh, 0))
        if energy
        else (lambda s: max(s.production_w - s.consumption_w, 0)),
        Variable.TIME: _minutes,
        Variable.WEEKDAY: _weekday,
        Variable.DR_LEVEL: lambda s: s.dr_level,
        Variable.BATTERY: lambda s: s.battery_soc,
        Variable.SERVICE: lambda s: not s.service_connected,
    }
    return getters[variable]


def _constant(value: Operand) -> object:
    if isinstance(value, Quantity):
        return value.base
    if isinstance(value, ClockValue):
        return value.minutes
    if isinstance(value, ServiceValue):
        return value.cut
    assert isinstance(value, DaySet)
    return value.days


def _compile_comparison(node: Comparison) -> Test:
    left, right, op = node.left, node.right, node.op
    if isinstance(left, VarRef) and isinstance(right, VarRef):
        get_l = _variable_getter(left.variable, node.measure)
        get_r = _variable_getter(right.variable, node.measure)
        fn = _OPS[op]

        def both(state: MeterState) -> bool | None:
            a, b = get_l(state), get_r(state)
            if a is None or b is None:
                return None
            return fn(a, b)

        return both
    if isinstance(left, VarRef):
        get = _variable_getter(left.variable, node.measure)
        const = _constant(right)
        fn = _OPS[op]
    else:
        assert isinstance(right, VarRef)
        get = _variable_getter(right.variable, node.measure)
        const = _constant(left)
        # ``3 > Price`` is ``Price < 3``.
        flipped = {Op.LT: Op.GT, Op.LE: Op.GE, Op.GT: Op.LT, Op.GE: Op.LE}.get(op, op)
        fn = _OPS[flipped]
    if isinstance(const, frozenset):
        day_set: frozenset[int] = const
        wanted = op is Op.EQ

        def in_days(state: MeterState) -> bool | None:
            return (get(state) in day_set) is wanted

        return in_days

    def against_constant(state: MeterState) -> bool | None:
        value = get(state)
        if value is None:
            return None
        return fn(value, const)

    return against_constant


def _in_clock_range(start: int, end: int) -> Callable[[int], bool]:
    if start < end:
        return lambda m: start <= m < end
    return lambda m: m >= start or m < end


def _compile(node: Condition) -> Test:
    if isinstance(node, Comparison):
        return _compile_comparison(node)
    if isinstance(node, Membership):
        within = node.within
        if isinstance(within, ClockRange):
            inside = _in_clock_range(within.start.minutes, within.end.minutes % 1440)
            return lambda s: inside(_minutes(s))
        days = within.days
        return lambda s: _weekday(s) in days
    if isinstance(node, Not):
        inner = _compile(node.inner)

        def negate(state: MeterState) -> bool | None:
            value = inner(state)
            return None if value is None else not value

        return negate
    tests = tuple(_compile(item) for item in node.items)
    if isinstance(node, AllOf):

        def all_of(state: MeterState) -> bool | None:
            unknown = False
            for test in tests:
                value = test(state)
                if value is False:
                    return False
                if value is None:
                    unknown = True
            return None if unknown else True

        return all_of
    assert isinstance(node, AnyOf)

    def any_of(state: MeterState) -> bool | None:
        unknown = False
        for test in tests:
            value = test(state)
            if value is True:
                return True
            if value is None:
                unknown = True
        return None if unknown else False

    return any_of


def compile_condition(node: Condition) -> Test:
    """A condition as a function of the state: True, False or None (unknown)."""
    return _compile(node)


def schedule_test(schedule: tuple[Window, ...]) -> Callable[[datetime], bool]:
    """Whether a local time falls in a programmed consumption window (see below)."""
    return _schedule_test(schedule)


def _schedule_test(schedule: tuple[Window, ...]) -> Callable[[datetime], bool]:
    """Whether a local time falls in a programmed window.

    A window that wraps past midnight belongs to the day it starts on: with
    ``22:00-06:00 weekdays``, Saturday 02:00 is inside (Friday's night).
    """
    compiled = [(w.start.minutes, w.end.minutes % 1440 or 1440, w.days) for w in schedule]

    def inside(moment: datetime) -> bool:
        minute = moment.hour * 60 + moment.minute
        day = moment.weekday()
        for start, end, days in compiled:
            if start < end:
                if day in days and start <= minute < end:
                    return True
            elif (day in days and minute >= start) or ((day - 1) % 7 in days and minute < end):
                return True
        return False

    return inside


# ---------------------------------------------------------------------------
# Programs
# ---------------------------------------------------------------------------


def _spec_action(spec: ActionSpec, reason: Reason) -> Action:
    return Action(
        kind=spec.kind,
        reason=reason,
        device=spec.device,
        text=spec.text,
        min_price=spec.min_price.base if spec.min_price is not None else None,
        max_energy_wh=int(spec.max_energy.base) if spec.max_energy is not None else None,
        max_price=spec.max_price.base if spec.max_price is not None else None,
    )


@dataclass(frozen=True, slots=True)
class _CompiledRule:
    line: int
    test: Test
    then: tuple[Action, ...]
    otherwise: tuple[Action, ...]


_EMPTY: Final = Evaluation((), in_window=False)
_OUTSIDE: Final = Contribution(in_window=False)
_SURPLUS_EVENTS: Final = frozenset({Event.INTERVAL_REPORT})
_DEVICE_KINDS: Final = frozenset({ActionKind.TURN_ON, ActionKind.TURN_OFF, ActionKind.RESTORE})


class Program:
    """A compiled contract: call :meth:`evaluate` at every event."""

    __slots__ = (
        "_consumption_off",
        "_consumption_reason",
        "_curtail",
        "_dr_enabled",
        "_in_schedule",
        "_mode",
        "_restore",
        "_rules",
        "_sell",
        "_shed",
        "_shed_set",
        "_store",
        "contract",
        "valid_from",
        "valid_to",
    )

    def __init__(self, contract: Contract) -> None:
        self.contract = contract
        self.valid_from = contract.valid_from
        self.valid_to = contract.valid_to
        lines = contract.lines

        dr = contract.demand_response
        self._dr_enabled = dr.enabled
        dr_clause = "DemandResponse true" + (
            " shed " + ", ".join(quote(d) for d in dr.shed) if dr.shed else ""
        )
        shed = contract.shed_devices() if dr.enabled else ()
        dr_reason = Reason(lines.demand_response, dr_clause)
        self._shed = tuple(Action(ActionKind.TURN_OFF, dr_reason, device=d) for d in shed)
        self._restore = tuple(Action(ActionKind.RESTORE, dr_reason, device=d) for d in shed)
        self._shed_set = tuple(shed)

        consumption = contract.consumption
        self._mode = consumption.mode
        if consumption.mode is ConsumptionMode.PROGRAMMED:
            windows = ", ".join(
                f"{w.start}-{w.end}" + ("" if len(w.days) == 7 else " " + days_text(w.days))
                for w in consumption.schedule
            )
            clause = f"Consumption programmed {windows}: importing outside the schedule"
        else:
            clause = "Consumption false: importing is not allowed"
        self._consumption_reason = Reason(lines.consumption, clause)
        self._consumption_off = tuple(
            Action(ActionKind.TURN_OFF, self._consumption_reason, device=d)
            for d in contract.controlled_devices()
        )
        self._in_schedule = _schedule_test(consumption.schedule)

        production = contract.production
        self._sell = (
            Action(ActionKind.SELL_SURPLUS, Reason(lines.production, "Production true and sell"))
            if production.enabled and production.sell
            else None
        )
        self._curtail = (
            None
            if production.enabled
            else Action(ActionKind.CURTAIL_EXPORT, Reason(lines.production, "Production false"))
        )
        self._store = (
            Action(ActionKind.STORE_SURPLUS, Reason(lines.store, "Store true"))
            if contract.store
            else None
        )

        rules = []
        for rule in contract.rules:
            head = f"IF {condition_text(rule.condition)} THEN"
            then_reason = Reason(rule.line, head)
            else_reason = Reason(rule.line, f"ELSE of {head}")
            rules.append(
                _CompiledRule(
                    rule.line,
                    _compile(rule.condition),
                    tuple(_spec_action(a, then_reason) for a in rule.then),
                    tuple(_spec_action(a, else_reason) for a in rule.otherwise),
                )
            )
        self._rules = tuple(rules)

    def contributions(self, state: MeterState, event: Event) -> Contribution:
        """What each clause asks for at ``event``, before anything is merged or suppressed.

        :meth:`evaluate` merges one contract's contributions; a home with several
        contracts merges them all at once (:func:`contracts.decide.decide`).
        """
        clock = state.clock
        if clock < self.valid_from or clock > self.valid_to:
            return _OUTSIDE
        candidates: list[tuple[Action, Role]] = []
        dr_held: tuple[str, ...] = ()

        if self._dr_enabled:
            if state.dr_level > 0:
                if event is Event.DR_SIGNAL:
                    candidates.extend((act, Role.DR_HOLD) for act in self._shed)
                dr_held = self._shed_set
            elif event is Event.DR_SIGNAL:
                candidates.extend((act, Role.RESTORE) for act in self._restore)

        importing = state.consumption_w > state.production_w
        refuse_imports = False
        import_held: tuple[str, ...] = ()
        if importing and self._mode is not ConsumptionMode.TRUE:
            refuse_imports = self._mode is ConsumptionMode.FALSE or not self._in_schedule(clock)
            if refuse_imports:
                candidates.extend((off, Role.IMPORT_HOLD) for off in self._consumption_off)
                import_held = tuple(off.device or "" for off in self._consumption_off)

        outcomes: list[tuple[int, bool | None]] = []
        for rule in self._rules:
            result = rule.test(state)
            outcomes.append((rule.line, result))
            if result is None:
                continue
            candidates.extend((act, Role.RULE) for act in (rule.then if result else rule.otherwise))

        if event in _SURPLUS_EVENTS and state.production_wh > state.consumption_wh:
            if self._store is not None and (state.battery_soc is None or state.battery_soc < 100):
                candidates.append((self._store, Role.FLAG))
            if self._sell is not None and not any(
                a.kind is ActionKind.SELL_SURPLUS for a, _role in candidates
            ):
                candidates.append((self._sell, Role.FLAG))
        if self._curtail is not None and state.production_w > state.consumption_w:
            candidates.append((self._curtail, Role.FLAG))

        return Contribution(
            candidates=tuple(candidates),
            rules=tuple(outcomes),
            dr_held=dr_held,
            import_held=import_held,
            import_reason=self._consumption_reason if refuse_imports else None,
        )

    def evaluate(self, state: MeterState, event: Event) -> Evaluation:
        """The actions for ``event``, given the state right after it."""
        contribution = self.contributions(state, event)
        if not contribution.in_window:
            return _EMPTY
        held_off = dict.fromkeys(contribution.dr_held, "held off by demand response")
        for device in contribution.import_held:
            held_off.setdefault(device, "imports are not allowed now")
        refuse_imports = contribution.import_reason is not None
        actions: list[Action] = []
        suppressed: list[Suppressed] = []
        for act, role in contribution.candidates:
            if role is Role.RULE and act.kind is ActionKind.TURN_ON and act.device in held_off:
                suppressed.append(Suppressed(act, held_off[act.device]))
            elif role is Role.RULE and act.kind is ActionKind.BUY and refuse_imports:
                suppressed.append(Suppressed(act, "imports are not allowed now"))
            else:
                actions.append(act)
        return Evaluation(_merge(actions, suppressed), tuple(suppressed), contribution.rules)


def _merge(actions: list[Action], suppressed: list[Suppressed]) -> tuple[Action, ...]:
    """One action per device (a later different one supersedes); no exact repeats."""
    if len(actions) < 2:
        return tuple(actions)
    out: list[Action | None] = []
    by_device: dict[str, int] = {}
    seen: set[tuple[object, ...]] = set()
    for act in actions:
        if act.kind in _DEVICE_KINDS:
            assert act.device is not None
            index = by_device.get(act.device)
            if index is not None:
                earlier = out[index]
                assert earlier is not None
                if earlier.kind is act.kind:
                    continue
                suppressed.append(Suppressed(earlier, f"superseded by {act.reason}"))
                out[index] = None
            by_device[act.device] = len(out)
            out.append(act)
            continue
        key = (act.kind, act.text, act.min_price, act.max_energy_wh, act.max_price)
        if key in seen:
            continue
        seen.add(key)
        out.append(act)
    return tuple(a for a in out if a is not None)


def compile_contract(contract: Contract) -> Program:
    """Compile once, evaluate at every event."""
    return Program(contract)


def evaluate(contract: Contract, state: MeterState, event: Event) -> Evaluation:
    """Compile and evaluate in one call (a meter keeps the :class:`Program` instead)."""
    return Program(contract).evaluate(state, event)
