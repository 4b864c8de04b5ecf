"""Hypothesis strategies for valid contracts (as model values)."""

from __future__ import annotations

import string
from dataclasses import replace
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Final

from hypothesis import strategies as st

from contracts.evaluator import MeterState
from contracts.model import (
    ROLES,
    UNITS,
    ActionKind,
    ActionSpec,
    AllOf,
    AnyOf,
    ClockRange,
    ClockValue,
    Comparison,
    Condition,
    Consumption,
    ConsumptionMode,
    Contract,
    DaySet,
    DemandResponse,
    Measure,
    Membership,
    Not,
    Op,
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

_PRINTABLE = st.characters(categories=["L", "M", "N", "P", "S"]) | st.sampled_from(" '")


def _text(max_size: int) -> st.SearchStrategy[str]:
    return st.text(_PRINTABLE, min_size=1, max_size=max_size).filter(lambda s: s.strip() != "")


names = _text(40)
devices_pool = st.lists(_text(20), min_size=1, max_size=4, unique=True)


def _decimal(low: int, high: int, places: int = 3) -> st.SearchStrategy[Decimal]:
    return st.decimals(min_value=low, max_value=high, places=places, allow_nan=False)


def _unit(*symbols: str) -> st.SearchStrategy[object]:
    return st.sampled_from([UNITS[s.lower()] for s in symbols])


prices = st.builds(Quantity, _decimal(-100, 100), st.none() | _unit("MXN/kWh", "MXN/MWh", "MXN/Wh"))
powers = st.builds(Quantity, _decimal(0, 10**6), _unit("W", "kW", "MW"))
energies = st.builds(Quantity, _decimal(0, 10**6), _unit("Wh", "kWh", "MWh"))
percents = st.builds(Quantity, _decimal(0, 100), st.none() | _unit("%"))
levels = st.builds(Quantity, st.sampled_from([Decimal(n) for n in range(4)]))
clocks = st.builds(ClockValue, st.integers(0, 1439))
single_days = st.sampled_from(
    [frozenset({d}) for d in range(7)]
    + [frozenset(range(5)), frozenset({5, 6}), frozenset(range(7))]
)
day_sets = st.frozensets(st.integers(0, 6), min_size=1)
ordering = st.sampled_from(list(Op))
equality = st.sampled_from([Op.EQ, Op.NE])


@st.composite
def comparisons(draw: st.DrawFn) -> Comparison:
    variable = draw(st.sampled_from(list(Variable)))
    var_type = variable.var_type
    measure = Measure.NONE
    op = draw(ordering)
    value: object
    if var_type is VarType.PRICE:
        value = draw(prices)
    elif var_type is VarType.POWER_OR_ENERGY:
        if draw(st.booleans()):
            value, measure = draw(powers), Measure.POWER
        else:
            value, measure = draw(energies), Measure.ENERGY
    elif var_type is VarType.CLOCK:
        value = draw(clocks)
    elif var_type is VarType.WEEKDAY:
        value, op = DaySet(draw(single_days)), draw(equality)
    elif var_type is VarType.LEVEL:
        value = draw(levels)
    elif var_type is VarType.PERCENT:
        value = draw(percents)
    else:
        value, op = ServiceValue(draw(st.booleans())), draw(equality)
    if draw(st.booleans()):
        # Two variables of one type.
        same = [v for v in Variable if v.var_type is var_type]
        other = draw(st.sampled_from(same))
        if var_type is VarType.POWER_OR_ENERGY:
            measure = Measure.POWER
        elif var_type is not VarType.WEEKDAY and var_type is not VarType.SERVICE:
            measure = Measure.NONE
        return Comparison(VarRef(variable), op, VarRef(other), measure)
    if draw(st.booleans()):
        return Comparison(VarRef(variable), op, value, measure)  # type: ignore[arg-type]
    return Comparison(value, op, VarRef(variable), measure)  # type: ignore[arg-type]


def _end_after(start: int, length: int) -> int:
    """An end ``length`` minutes after ``start`` (1..1440: midnight as 24:00, never ``start``)."""
    return (start + length) % 1440 or 1440


@st.composite
def memberships(draw: st.DrawFn) -> Membership:
    if draw(st.booleans()):
        start = draw(st.integers(0, 1439))
        end = _end_after(start, draw(st.integers(1, 1439)))
        return Membership(VarRef(Variable.TIME), ClockRange(ClockValue(start), ClockValue(end)))
    return Membership(VarRef(Variable.WEEKDAY), DaySet(draw(day_sets)))


def _flat(kind: type[AllOf] | type[AnyOf], items: list[Condition]) -> Condition:
    out: list[Condition] = []
    for item in items:
        if isinstance(item, kind):
            out.extend(item.items)
        else:
            out.append(item)
    return kind(tuple(out))


conditions: st.SearchStrategy[Condition] = st.recursive(
    comparisons() | memberships(),
    lambda inner: (
        st.builds(Not, inner)
        | st.lists(inner, min_size=2, max_size=3).map(lambda xs: _flat(AllOf, xs))
        | st.lists(inner, min_size=2, max_size=3).map(lambda xs: _flat(AnyOf, xs))
    ),
    max_leaves=8,
)


def actions(pool: list[str]) -> st.SearchStrategy[ActionSpec]:
    device = st.sampled_from(pool)
    whole_wh = st.one_of(
        st.builds(Quantity, st.integers(1, 10**6).map(Decimal), _unit("Wh")),
        st.builds(Quantity, _decimal(1, 1000, 3).filter(lambda d: d > 0), _unit("kWh")),
    )
    return st.one_of(
        st.builds(ActionSpec, st.just(ActionKind.TURN_ON), device=device),
        st.builds(ActionSpec, st.just(ActionKind.TURN_OFF), device=device),
        st.builds(ActionSpec, st.just(ActionKind.NOTIFY), text=_text(60)),
        st.builds(ActionSpec, st.just(ActionKind.SELL_SURPLUS), min_price=st.none() | prices),
        st.builds(ActionSpec, st.just(ActionKind.BUY), max_energy=whole_wh, max_price=prices),
    )


@st.composite
def windows(draw: st.DrawFn) -> Window:
    start = draw(st.integers(0, 1439))
    end = _end_after(start, draw(st.integers(1, 1439)))
    return Window(ClockValue(start), ClockValue(end), draw(day_sets))


consumptions = st.one_of(
    st.builds(Consumption, st.sampled_from([ConsumptionMode.TRUE, ConsumptionMode.FALSE])),
    st.builds(
        Consumption,
        st.just(ConsumptionMode.PROGRAMMED),
        st.lists(windows(), min_size=1, max_size=3).map(tuple),
    ),
)

_PARTY_FIRST = string.ascii_letters + string.digits  # then also _ . : - (checker's rule)

parties = st.lists(
    st.one_of(
        st.sampled_from(ROLES).map(lambda r: Party(r, is_role=True)),
        st.builds(
            lambda first, rest: Party(first + rest, is_role=False),
            st.sampled_from(_PARTY_FIRST),
            st.text(_PARTY_FIRST + "_.:-", max_size=20),
        ),
    ),
    min_size=1,
    max_size=4,
    unique=True,
).map(tuple)


# Strategies are built once, here: building them in every draw cost most of the time
# (Hypothesis validates each new strategy). Devices are slots, filled from the home's pool.
_SLOTS: Final = [f"\0slot{i}" for i in range(4)]
_rules = st.lists(
    st.builds(
        Rule,
        conditions,
        st.lists(actions(_SLOTS), min_size=1, max_size=3).map(tuple),
        st.lists(actions(_SLOTS), max_size=2).map(tuple),
    ),
    max_size=3,
)
_shed = st.lists(st.integers(0, len(_SLOTS) - 1), unique=True)


def _in_home(rule: Rule, pool: list[str]) -> Rule:
    """``rule`` with each device slot replaced by one of the home's devices."""

    def fill(action: ActionSpec) -> ActionSpec:
        if action.device is None:
            return action
        return replace(action, device=pool[_SLOTS.index(action.device) % len(pool)])

    return replace(
        rule,
        then=tuple(fill(a) for a in rule.then),
        otherwise=tuple(fill(a) for a in rule.otherwise),
    )


@st.composite
def contracts(draw: st.DrawFn, pool: list[str] | None = None) -> Contract:
    """A valid contract; its devices from ``pool`` when given (contracts of one home)."""
    if pool is None:
        pool = draw(devices_pool)
    start = draw(
        st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2090, 1, 1)).map(
            lambda d: d.replace(microsecond=0)
        )
    )
    length = draw(st.integers(1, 10 * 365 * 86400))
    rules = [_in_home(rule, pool) for rule in draw(_rules)]
    declared = draw(st.booleans())
    dr_enabled = draw(st.booleans())
    shed = tuple(dict.fromkeys(pool[i % len(pool)] for i in draw(_shed))) if dr_enabled else ()
    production_enabled = draw(st.booleans())
    return Contract(
        name=draw(names),
        valid_from=start,
        valid_to=start + timedelta(seconds=length),
        parties=draw(parties),
        consumption=draw(consumptions),
        production=Production(production_enabled, production_enabled and draw(st.booleans())),
        store=draw(st.booleans()),
        demand_response=DemandResponse(dr_enabled, shed),
        devices=tuple(pool) if declared else None,
        rules=tuple(rules),
    )


def meter_states(
    clock: st.SearchStrategy[datetime] | None = None,
) -> st.SearchStrategy[MeterState]:
    """A meter's state after an event (any clock unless one is given)."""
    if clock is None:
        clock = st.datetimes(min_value=datetime(1999, 1, 1), max_value=datetime(2100, 1, 1))
    return st.builds(
        MeterState,
        clock=clock,
        import_price=st.none() | st.decimals(-5, 10, places=2),
        export_price=st.none() | st.decimals(-5, 10, places=2),
        consumption_w=st.integers(0, 20_000),
        production_w=st.integers(0, 20_000),
        consumption_wh=st.integers(0, 5_000),
        production_wh=st.integers(0, 5_000),
        dr_level=st.integers(0, 3),
        battery_soc=st.none() | st.decimals(0, 100, places=1),
        service_connected=st.booleans(),
    )
