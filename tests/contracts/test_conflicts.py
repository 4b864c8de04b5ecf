"""Conflicts between a new contract and a home's active ones: warnings naming both places."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from contracts import (
    ConflictKind,
    Contract,
    Severity,
    conflicts,
    find_conflicts,
    format_contract,
    parse,
)
from contracts.conflicts import MAX_STATES, MAX_WORK
from contracts.evaluator import MeterState, compile_condition
from contracts.model import (
    ActionKind,
    ActionSpec,
    AllOf,
    ClockRange,
    ClockValue,
    Comparison,
    Condition,
    DaySet,
    Membership,
    Not,
    Op,
    Party,
    Quantity,
    Rule,
    Variable,
    VarRef,
)

VALID = "Valid from 2026/01/01 00:00:00 to 2026/12/31 23:59:59\n"
PAPER = (
    "Contract 'prueba'\n" + VALID + "Consumption true\nProduction true and sell\nStore false\n"
    "DemandResponse false\nIF Price < 3 THEN\n  TURN ON DEVICE 'Lavadora'\nENDIF\nParties: ISO\n"
)
PAPER_DR = PAPER.replace("'prueba'", "'prueba dr'").replace(
    "DemandResponse false", "DemandResponse true shed 'Lavadora'"
)


def rules(name: str, body: str, head: str = "") -> Contract:
    return parse(f"Contract '{name}'\n{VALID}{head}{body}Parties: ISO\n")


def rendered(new: Contract, *active: tuple[str, Contract]) -> list[str]:
    return [d.render("nuevo.contract") for d in conflicts(new, list(active))]


def test_the_scene_is_caught_both_ways() -> None:
    # The DR variant submitted while the paper's contract is active: its shedding names the
    # paper's TURN ON, which will be suppressed during events.
    (sheds,) = rendered(parse(PAPER_DR), ("activo.contract", parse(PAPER)))
    assert sheds == (
        "nuevo.contract:6:1: warning: demand response sheds 'Lavadora', which TURN ON DEVICE "
        "'Lavadora' at activo.contract:8:3 turns on: during an event that TURN ON is suppressed "
        "(e.g. when Price 2 MXN/kWh, DRLevel 1) (the device stays off until the event ends, "
        "then goes back to how it was)"
    )
    # The other way round: the paper's TURN ON is the new contract's line.
    (held,) = conflicts(parse(PAPER), [("activo.contract", parse(PAPER_DR))])
    assert (held.severity, held.line, held.column) == (Severity.WARNING, 8, 3)
    assert held.message.startswith(
        "TURN ON DEVICE 'Lavadora' is suppressed during demand response: activo.contract:6:1 "
        "sheds 'Lavadora'"
    )


def test_opposite_actions_on_overlapping_conditions() -> None:
    on = rules("on", "IF Price < 3 THEN\n  TURN ON DEVICE 'Clima'\nENDIF\n")
    off = rules("off", "IF Price > 2.5 THEN\n  TURN OFF DEVICE 'Clima'\nENDIF\n")
    (warning,) = rendered(on, ("off.contract", off))
    assert warning == (
        "nuevo.contract:4:3: warning: TURN ON DEVICE 'Clima' contradicts TURN OFF DEVICE "
        "'Clima' at off.contract:4:3: both apply when Price 2.75 MXN/kWh (between contracts "
        "of a home the one activated later wins)"
    )
    apart = rules("off", "IF Price > 3 THEN\n  TURN OFF DEVICE 'Clima'\nENDIF\n")
    assert rendered(on, ("off.contract", apart)) == []
    # Another device, or the same action, is no conflict.
    other = rules("x", "IF Price > 2.5 THEN\n  TURN OFF DEVICE 'Bomba'\nENDIF\n")
    same = rules("y", "IF Price > 2.5 THEN\n  TURN ON DEVICE 'Clima'\nENDIF\n")
    assert rendered(on, ("x", other), ("y", same)) == []


def test_else_branches_count() -> None:
    both = rules(
        "a", "IF Price < 3 THEN\n  TURN ON DEVICE 'Clima'\nELSE\n  TURN OFF DEVICE 'Clima'\nENDIF\n"
    )
    cheap_off = rules("b", "IF Price < 1 THEN\n  TURN OFF DEVICE 'Clima'\nENDIF\n")
    dear_on = rules("c", "IF Price > 5 THEN\n  TURN ON DEVICE 'Clima'\nENDIF\n")
    found = find_conflicts(both, [cheap_off, dear_on])
    assert [(c.line, c.other, c.other_line, c.what, c.example) for c in found] == [
        (4, 0, 4, "TURN ON DEVICE 'Clima'", "Price 0 MXN/kWh"),
        (6, 1, 4, "TURN OFF DEVICE 'Clima' (ELSE)", "Price 6 MXN/kWh"),
    ]


def test_time_weekday_and_validity_windows() -> None:
    morning = rules("m", "IF Time IN 08:00-12:00 THEN\n  TURN ON DEVICE 'Bomba'\nENDIF\n")
    noon = rules("n", "IF Time IN 12:00-18:00 THEN\n  TURN OFF DEVICE 'Bomba'\nENDIF\n")
    late = rules("l", "IF Time >= 11:59 THEN\n  TURN OFF DEVICE 'Bomba'\nENDIF\n")
    assert find_conflicts(morning, [noon]) == ()  # the end of a range is excluded
    (overlap,) = find_conflicts(morning, [late])
    assert overlap.example == "mon, 11:59"
    weekdays = rules("w", "IF Weekday IN weekdays THEN\n  TURN ON DEVICE 'Bomba'\nENDIF\n")
    weekends = rules("e", "IF Weekday = weekends THEN\n  TURN OFF DEVICE 'Bomba'\nENDIF\n")
    assert find_conflicts(weekdays, [weekends]) == ()
    next_year = parse(
        format_contract(noon)
        .replace("2026/01/01 00:00:00", "2027/01/01 00:00:00")
        .replace("2026/12/31", "2027/12/31")
    )
    assert find_conflicts(morning, [parse(format_contract(late).replace("2026", "2027"))]) == ()
    assert find_conflicts(morning, [next_year]) == ()


def test_a_rule_that_waits_for_the_end_of_demand_response_is_no_conflict() -> None:
    polite = rules("p", "IF Price < 3 AND DRLevel = 0 THEN\n  TURN ON DEVICE 'Lavadora'\nENDIF\n")
    assert find_conflicts(polite, [parse(PAPER_DR)]) == ()
    assert find_conflicts(parse(PAPER_DR), [polite]) == ()


def test_refused_imports_against_a_turn_on() -> None:
    island = rules("isla", "Devices: 'Bomba'\n", head="Consumption false\n")
    pump = rules("bomba", "IF Price < 3 THEN\n  TURN ON DEVICE 'Bomba'\nENDIF\n")
    (held,) = rendered(pump, ("isla.contract", island))
    assert held.startswith(
        "nuevo.contract:4:3: warning: TURN ON DEVICE 'Bomba' is suppressed while "
        "isla.contract:3:1 (Consumption false) refuses imports (e.g. when Price 2 MXN/kWh, "
        "consumption 1 W, production 0 W)"
    )
    (refuses,) = find_conflicts(island, [pump])
    assert (refuses.kind, refuses.line, refuses.other_line) == (ConflictKind.REFUSES, 3, 4)
    # A programmed schedule: only a TURN ON outside its windows is held off.
    night = rules("noche", "Devices: 'Bomba'\n", head="Consumption programmed 22:00-06:00 daily\n")
    at_night = rules("n", "IF Time IN 23:00-05:00 THEN\n  TURN ON DEVICE 'Bomba'\nENDIF\n")
    morning = rules("m", "IF Time IN 07:00-08:00 THEN\n  TURN ON DEVICE 'Bomba'\nENDIF\n")
    assert find_conflicts(at_night, [night]) == ()
    (outside,) = find_conflicts(morning, [night])
    assert outside.kind is ConflictKind.HELD_BY_IMPORTS
    assert outside.example == "consumption 1 W, production 0 W, mon, 07:00"


def test_variables_compared_with_each_other_and_surplus() -> None:
    sell = rules("s", "IF ExportPrice > Price THEN\n  TURN ON DEVICE 'Bomba'\nENDIF\n")
    buy = rules("b", "IF Price > ExportPrice THEN\n  TURN OFF DEVICE 'Bomba'\nENDIF\n")
    equal = rules("e", "IF ExportPrice >= Price THEN\n  TURN OFF DEVICE 'Bomba'\nENDIF\n")
    assert find_conflicts(sell, [buy]) == ()
    (tie,) = find_conflicts(sell, [equal])
    assert tie.kind is ConflictKind.OPPOSITE
    sunny = rules("sol", "IF Surplus > 500 W THEN\n  TURN ON DEVICE 'Bomba'\nENDIF\n")
    dark = rules("d", "IF Production < 400 W THEN\n  TURN OFF DEVICE 'Bomba'\nENDIF\n")
    busy = rules("o", "IF Consumption > 1 kW THEN\n  TURN OFF DEVICE 'Bomba'\nENDIF\n")
    assert find_conflicts(sunny, [dark]) == ()
    (both,) = find_conflicts(sunny, [busy])
    assert both.example.startswith("consumption 1001 W, production 15")


# -- completeness for comparisons with constants ----------------------------------------

_DEVICES = ("Bomba", "Clima")
_atoms = st.one_of(
    st.builds(
        Comparison,
        st.just(VarRef(Variable.PRICE)),
        st.sampled_from([Op.LT, Op.LE, Op.GT, Op.GE, Op.EQ, Op.NE]),
        st.integers(-2, 6).map(lambda n: Quantity(Decimal(n))),
    ),
    st.builds(
        Comparison,
        st.just(VarRef(Variable.DR_LEVEL)),
        st.sampled_from([Op.LT, Op.GE, Op.EQ]),
        st.integers(0, 3).map(lambda n: Quantity(Decimal(n))),
    ),
    st.builds(
        Membership,
        st.just(VarRef(Variable.TIME)),
        st.builds(
            ClockRange,
            st.integers(0, 23).map(lambda h: ClockValue(h * 60)),
            st.integers(0, 23).map(lambda h: ClockValue(h * 60 + 30)),
        ),
    ),
    st.builds(
        Membership,
        st.just(VarRef(Variable.WEEKDAY)),
        st.frozensets(st.integers(0, 6), min_size=1, max_size=6).map(DaySet),
    ),
)
_conditions: st.SearchStrategy[Condition] = st.one_of(
    _atoms,
    _atoms.map(Not),
    st.lists(_atoms, min_size=2, max_size=3).map(lambda items: AllOf(tuple(items))),
)


@st.composite
def _small_contracts(draw: st.DrawFn) -> Contract:
    switches = st.builds(
        ActionSpec,
        st.sampled_from([ActionKind.TURN_ON, ActionKind.TURN_OFF]),
        device=st.sampled_from(_DEVICES),
    )
    rule = st.builds(
        Rule,
        _conditions,
        st.lists(switches, min_size=1, max_size=2).map(tuple),
        st.lists(switches, max_size=1).map(tuple),
    )
    body = Contract(
        name="c",
        valid_from=datetime(2026, 1, 1),
        valid_to=datetime(2026, 12, 31),
        parties=(Party("ISO", is_role=True),),
        rules=tuple(draw(st.lists(rule, min_size=1, max_size=2))),
    )
    return parse(format_contract(body))  # with lines and columns


_states = st.builds(
    MeterState,
    clock=st.datetimes(datetime(2026, 1, 1), datetime(2026, 12, 31)).map(
        lambda d: d.replace(second=0, microsecond=0)
    ),
    import_price=st.decimals(-3, 7, places=2),
    dr_level=st.integers(0, 3),
)


@given(_small_contracts(), _small_contracts(), st.lists(_states, min_size=1, max_size=20))
def test_any_state_where_opposite_actions_both_run_is_found(
    new: Contract, old: Contract, states: list[MeterState]
) -> None:
    found = {
        (c.line, c.column, c.other_line, c.other_column)
        for c in find_conflicts(new, [old])
        if c.kind is ConflictKind.OPPOSITE
    }
    for now in states:
        for a in _runs(new, now):
            for b in _runs(old, now):
                if a[0] == b[0] and a[1] != b[1]:
                    assert (a[2], a[3], b[2], b[3]) in found, (a, b, now)
    # And the same pairs, seen from the other side.
    mirrored = {
        (c.other_line, c.other_column, c.line, c.column)
        for c in find_conflicts(old, [new])
        if c.kind is ConflictKind.OPPOSITE
    }
    assert mirrored == found


def _runs(contract: Contract, now: MeterState) -> list[tuple[str, bool, int, int]]:
    """(device, on, line, column) of every switch whose branch runs at ``now``."""
    out = []
    for rule in contract.rules:
        value = compile_condition(rule.condition)(now)
        if value is None:
            continue
        for spec in rule.then if value else rule.otherwise:
            assert spec.device is not None
            out.append((spec.device, spec.kind is ActionKind.TURN_ON, spec.line, spec.column))
    return out


def test_the_search_is_bounded() -> None:
    # Many constants for two variables: more combinations than MAX_STATES per pair, none of
    # them a conflict with `other`. Ten such pairs spend the whole MAX_WORK, so a conflict
    # in the eleventh active contract is not looked for; alone, it is found.
    parts = " AND ".join(f"Price != {n}" for n in range(30))
    parts += " AND " + " AND ".join(f"Battery != {n}" for n in range(30))
    wide = rules("w", f"IF {parts} THEN\n  TURN ON DEVICE 'Bomba'\nENDIF\n")
    other = rules(
        "o",
        "IF Battery = 15 AND Time >= 10:00 AND ExportPrice > 1 THEN\n"
        "  TURN OFF DEVICE 'Bomba'\nENDIF\n",
    )
    clash = rules("c", "IF Price > 100 THEN\n  TURN OFF DEVICE 'Bomba'\nENDIF\n")
    assert MAX_WORK == 10 * MAX_STATES
    [found] = find_conflicts(wide, [clash])
    assert (found.kind, found.other) == (ConflictKind.OPPOSITE, 0)
    assert find_conflicts(wide, [other] * 10 + [clash]) == ()
