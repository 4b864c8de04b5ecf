"""What a meter does at each event: the paper's cases, every flag, and the edge cases."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from contracts import Event, MeterState, compile_contract, evaluate, format_contract, parse
from contracts.evaluator import Action, Evaluation
from contracts.model import ActionKind, Contract
from tests.contracts.strategies import contracts

HEAD = "Contract 'casa'\nValid from 2026/01/01 00:00:00 to 2026/12/31 23:59:59\n"
TAIL = "Parties: ISO\n"
# 2026/03/10 is a Tuesday.
TUESDAY_NOON = datetime(2026, 3, 10, 12, 0)

PAPER = """\
Contract 'prueba'
Valid from 2026/01/01 00:00:00 to 2026/12/31 23:59:59
Consumption true
Production true and sell
Store false
DemandResponse true shed 'Lavadora'
IF Price < 3 THEN
TURN ON DEVICE 'Lavadora'
ENDIF
Parties: ISO
"""


def contract(body: str) -> Contract:
    return parse(HEAD + body.rstrip("\n") + "\n" + TAIL)


def state(**changes: object) -> MeterState:
    values: dict[str, object] = {"clock": TUESDAY_NOON}
    values.update(changes)
    return MeterState(**values)  # type: ignore[arg-type]


def kinds(evaluation: Evaluation) -> list[tuple[ActionKind, str | None]]:
    return [(a.kind, a.device) for a in evaluation.actions]


def test_low_price_signal_turns_on_the_washing_machine() -> None:
    result = evaluate(parse(PAPER), state(import_price=Decimal(2)), Event.PRICE_SIGNAL)
    [action] = result.actions
    assert (action.kind, action.device) == (ActionKind.TURN_ON, "Lavadora")
    assert action.reason.line == 7
    assert action.reason.clause == "IF Price < 3 THEN"
    assert result.rules == ((7, True),)


def test_high_price_does_nothing() -> None:
    result = evaluate(parse(PAPER), state(import_price=Decimal(3)), Event.PRICE_SIGNAL)
    assert result.actions == ()
    assert result.rules == ((7, False),)


def test_demand_response_turns_it_off_holds_it_off_and_restores_it() -> None:
    program = compile_contract(parse(PAPER))

    started = program.evaluate(state(import_price=Decimal(2), dr_level=2), Event.DR_SIGNAL)
    [off] = started.actions
    assert (off.kind, off.device) == (ActionKind.TURN_OFF, "Lavadora")
    assert off.reason.clause == "DemandResponse true shed 'Lavadora'"
    assert off.reason.line == 6
    # The price rule would turn it on, but demand response wins.
    [held] = started.suppressed
    assert held.action.kind is ActionKind.TURN_ON
    assert held.why == "held off by demand response"

    during = program.evaluate(state(import_price=Decimal(1), dr_level=2), Event.PRICE_SIGNAL)
    assert during.actions == ()
    assert [s.why for s in during.suppressed] == ["held off by demand response"]

    ended = program.evaluate(state(import_price=Decimal(4), dr_level=0), Event.DR_SIGNAL)
    assert kinds(ended) == [(ActionKind.RESTORE, "Lavadora")]


def test_without_demand_response_a_dr_signal_changes_nothing() -> None:
    c = contract("DemandResponse false\nIF Price < 3 THEN TURN ON DEVICE 'Lavadora' ENDIF")
    result = evaluate(c, state(import_price=Decimal(2), dr_level=3), Event.DR_SIGNAL)
    assert kinds(result) == [(ActionKind.TURN_ON, "Lavadora")]


def test_demand_response_without_shed_list_sheds_every_controlled_device() -> None:
    c = contract(
        "DemandResponse true\nDevices: 'Lavadora', 'Calentador'\n"
        "IF Price < 3 THEN TURN ON DEVICE 'Lavadora' ENDIF"
    )
    result = evaluate(c, state(dr_level=1), Event.DR_SIGNAL)
    assert kinds(result) == [
        (ActionKind.TURN_OFF, "Lavadora"),
        (ActionKind.TURN_OFF, "Calentador"),
    ]


def test_surplus_is_offered_at_the_interval_report() -> None:
    program = compile_contract(parse(PAPER))
    sunny = state(import_price=Decimal(4), production_wh=800, consumption_wh=300)
    result = program.evaluate(sunny, Event.INTERVAL_REPORT)
    [sell] = result.actions
    assert sell.kind is ActionKind.SELL_SURPLUS
    assert sell.min_price is None
    assert sell.reason.clause == "Production true and sell"
    assert sell.reason.line == 4
    # Not at other events, and not without surplus.
    assert program.evaluate(sunny, Event.PRICE_SIGNAL).actions == ()
    cloudy = state(import_price=Decimal(4), production_wh=100, consumption_wh=300)
    assert program.evaluate(cloudy, Event.INTERVAL_REPORT).actions == ()


def test_a_rules_sell_with_minimum_price_replaces_the_flags_plain_offer() -> None:
    c = contract(
        "Production true and sell\nIF ExportPrice >= 1 THEN SELL SURPLUS AT MIN 1.5 MXN/kWh ENDIF"
    )
    result = evaluate(
        c,
        state(export_price=Decimal("1.2"), production_wh=500, consumption_wh=0),
        Event.INTERVAL_REPORT,
    )
    [sell] = result.actions
    assert sell.min_price == Decimal("1.5")
    assert sell.reason.line == 4


def test_production_true_without_sell_offers_nothing() -> None:
    c = contract("Production true")
    sunny = state(production_wh=800, consumption_wh=300, production_w=3000)
    assert evaluate(c, sunny, Event.INTERVAL_REPORT).actions == ()


def test_production_false_curtails_export_whenever_there_is_surplus_power() -> None:
    c = contract("Production false")
    result = evaluate(c, state(production_w=2000, consumption_w=500), Event.PRICE_SIGNAL)
    assert kinds(result) == [(ActionKind.CURTAIL_EXPORT, None)]
    assert evaluate(c, state(production_w=100, consumption_w=500), Event.PRICE_SIGNAL).actions == ()


def test_store_true_stores_surplus_first_until_the_battery_is_full() -> None:
    c = contract("Production true and sell\nStore true")
    surplus = {"production_wh": 900, "consumption_wh": 100}
    result = evaluate(c, state(battery_soc=Decimal(40), **surplus), Event.INTERVAL_REPORT)
    assert kinds(result) == [(ActionKind.STORE_SURPLUS, None), (ActionKind.SELL_SURPLUS, None)]
    full = evaluate(c, state(battery_soc=Decimal(100), **surplus), Event.INTERVAL_REPORT)
    assert kinds(full) == [(ActionKind.SELL_SURPLUS, None)]


def test_consumption_false_sheds_controlled_devices_while_importing() -> None:
    c = contract(
        "Consumption false\nDevices: 'Lavadora', 'Bomba'\n"
        "IF Price < 3 THEN\n  TURN ON DEVICE 'Lavadora'\n  BUY up to 1 kWh AT MAX 3\nENDIF"
    )
    importing = state(import_price=Decimal(2), consumption_w=900, production_w=200)
    result = evaluate(c, importing, Event.PRICE_SIGNAL)
    assert kinds(result) == [(ActionKind.TURN_OFF, "Lavadora"), (ActionKind.TURN_OFF, "Bomba")]
    assert result.actions[0].reason.clause == "Consumption false: importing is not allowed"
    assert sorted(s.action.kind for s in result.suppressed) == [ActionKind.BUY, ActionKind.TURN_ON]

    self_sufficient = state(import_price=Decimal(2), consumption_w=900, production_w=1500)
    assert kinds(evaluate(c, self_sufficient, Event.PRICE_SIGNAL)) == [
        (ActionKind.TURN_ON, "Lavadora"),
        (ActionKind.BUY, None),
    ]


@pytest.mark.parametrize(
    ("moment", "allowed"),
    [
        (datetime(2026, 3, 10, 23, 0), True),  # Tuesday night
        (datetime(2026, 3, 10, 5, 59), True),  # Tuesday early (Monday's night)
        (datetime(2026, 3, 10, 6, 0), False),  # the window ends at 06:00
        (datetime(2026, 3, 10, 12, 0), False),  # Tuesday noon
        (datetime(2026, 3, 14, 2, 0), True),  # Saturday 02:00 belongs to Friday's night
        (datetime(2026, 3, 15, 23, 0), False),  # Sunday night is not a weekday night
        (datetime(2026, 3, 9, 2, 0), False),  # Monday 02:00 belongs to Sunday's night
        (datetime(2026, 3, 14, 11, 0), True),  # Saturday, second window
    ],
)
def test_programmed_consumption_allows_imports_only_in_the_schedule(
    moment: datetime, allowed: bool
) -> None:
    c = contract(
        "Consumption programmed 22:00-06:00 weekdays, 10:00-14:00 weekends\nDevices: 'Bomba'"
    )
    result = evaluate(c, state(clock=moment, consumption_w=800), Event.INTERVAL_REPORT)
    if allowed:
        assert result.actions == ()
    else:
        assert kinds(result) == [(ActionKind.TURN_OFF, "Bomba")]
        assert result.actions[0].reason.clause.startswith("Consumption programmed 22:00-06:00")


def test_outside_the_validity_window_nothing_happens_and_the_bounds_are_inclusive() -> None:
    program = compile_contract(parse(PAPER))
    low = state(import_price=Decimal(1))
    before = program.evaluate(
        MeterState(clock=datetime(2025, 12, 31, 23, 59, 59), import_price=Decimal(1)),
        Event.PRICE_SIGNAL,
    )
    assert before.actions == ()
    assert before.in_window is False
    after = program.evaluate(
        MeterState(clock=datetime(2027, 1, 1), import_price=Decimal(1)), Event.PRICE_SIGNAL
    )
    assert after.actions == ()
    for edge in (datetime(2026, 1, 1), datetime(2026, 12, 31, 23, 59, 59)):
        assert program.evaluate(
            MeterState(clock=edge, import_price=low.import_price), Event.PRICE_SIGNAL
        ).actions


def test_unknown_values_fire_neither_branch() -> None:
    c = contract(
        "IF Price < 3 THEN TURN ON DEVICE 'A' ELSE TURN OFF DEVICE 'A' ENDIF\n"
        "IF Battery < 20 OR Price < 3 THEN NOTIFY 'low' ENDIF\n"
        "IF NOT Battery < 20 THEN NOTIFY 'fine' ENDIF"
    )
    unknown = evaluate(c, state(), Event.INTERVAL_REPORT)
    assert unknown.actions == ()
    assert unknown.rules == ((3, None), (4, None), (5, None))

    known = evaluate(c, state(import_price=Decimal(5), battery_soc=Decimal(10)), Event.PRICE_SIGNAL)
    assert kinds(known) == [(ActionKind.TURN_OFF, "A"), (ActionKind.NOTIFY, None)]
    assert known.rules == ((3, False), (4, True), (5, False))
    assert known.actions[0].reason.clause == "ELSE of IF Price < 3 THEN"


def test_and_is_false_when_any_part_is_false_even_with_unknowns() -> None:
    c = contract("IF Battery < 20 AND Price < 3 THEN NOTIFY 'x' ELSE NOTIFY 'y' ENDIF")
    result = evaluate(c, state(import_price=Decimal(5)), Event.PRICE_SIGNAL)
    assert [a.text for a in result.actions] == ["y"]


@pytest.mark.parametrize(
    ("condition", "changes", "fires"),
    [
        ("Consumption > 1 kWh", {"consumption_wh": 1500, "consumption_w": 10}, True),
        ("Consumption > 1 kW", {"consumption_wh": 1500, "consumption_w": 10}, False),
        ("Surplus >= 500 W", {"production_w": 1500, "consumption_w": 1000}, True),
        ("Surplus > 0 W", {"production_w": 500, "consumption_w": 1000}, False),
        ("Surplus > 0.2 kWh", {"production_wh": 500, "consumption_wh": 100}, True),
        ("Production > Consumption", {"production_w": 600, "consumption_w": 500}, True),
        ("ExportPrice > Price", {"export_price": Decimal(2)}, False),  # price unknown
        ("ExportPrice > Price", {"export_price": Decimal(2), "import_price": Decimal(1)}, True),
        ("Time = 12:00", {}, True),
        ("3 > Price", {"import_price": Decimal(2)}, True),
        ("3 > Price", {"import_price": Decimal(4)}, False),
        ("ExportPrice >= 1500 MXN/MWh", {"export_price": Decimal("1.5")}, True),
        ("Price < 0", {"import_price": Decimal("-0.2")}, True),
        ("Time >= 12:00", {}, True),
        ("Time < 12:00", {}, False),
        ("Time IN 22:00-06:00", {"clock": datetime(2026, 3, 10, 23, 30)}, True),
        ("Time IN 22:00-06:00", {"clock": datetime(2026, 3, 10, 6, 0)}, False),
        ("Time IN 09:00-17:00", {}, True),
        ("Weekday = tue", {}, True),
        ("Weekday != tuesday", {}, False),
        ("Weekday = weekdays", {}, True),
        ("Weekday IN sat sun", {}, False),
        ("Weekday IN fri-tue", {}, True),
        ("DRLevel >= 2", {"dr_level": 3}, True),
        ("Battery <= 20 %", {"battery_soc": Decimal(20)}, True),
        ("Service = cut", {"service_connected": False}, True),
        ("Service = connected", {"service_connected": False}, False),
    ],
)
def test_conditions(condition: str, changes: dict[str, object], fires: bool) -> None:
    c = contract(f"IF {condition} THEN NOTIFY 'yes' ENDIF")
    result = evaluate(c, state(**changes), Event.INTERVAL_REPORT)
    assert bool(result.actions) is fires


def test_service_cut_and_reconnection_events_run_the_rules() -> None:
    c = contract(
        "IF Service = cut THEN NOTIFY 'sin servicio' ELSE NOTIFY 'servicio restablecido' ENDIF"
    )
    cut = evaluate(c, state(service_connected=False), Event.SERVICE_CUT)
    back = evaluate(c, state(service_connected=True), Event.RECONNECTION)
    assert [a.text for a in cut.actions] == ["sin servicio"]
    assert [a.text for a in back.actions] == ["servicio restablecido"]


def test_a_later_rule_supersedes_an_earlier_one_for_the_same_device() -> None:
    c = contract(
        "IF Price < 3 THEN TURN ON DEVICE 'A' ENDIF\n"
        "IF Price < 3 THEN TURN ON DEVICE 'A' ENDIF\n"
        "IF Price < 2 THEN TURN OFF DEVICE 'A' ENDIF\n"
        "IF Price < 3 THEN NOTIFY 'n' ENDIF\n"
        "IF Price < 3 THEN NOTIFY 'n' ENDIF"
    )
    result = evaluate(c, state(import_price=Decimal(1)), Event.PRICE_SIGNAL)
    assert kinds(result) == [(ActionKind.TURN_OFF, "A"), (ActionKind.NOTIFY, None)]
    [superseded] = result.suppressed
    assert superseded.action.kind is ActionKind.TURN_ON
    assert superseded.why == "superseded by line 5: IF Price < 2 THEN"


def test_buy_action_carries_whole_wh_and_price() -> None:
    c = contract("IF Price < 2 THEN BUY up to 1.2 kWh AT MAX 2.5 MXN/kWh ENDIF")
    [buy] = evaluate(c, state(import_price=Decimal(1)), Event.PRICE_SIGNAL).actions
    assert buy.max_energy_wh == 1200
    assert buy.max_price == Decimal("2.5")
    assert buy.describe() == "buy up to 1200 Wh at max 2.5 MXN/kWh (line 3: IF Price < 2 THEN)"


def test_describe_reads_well() -> None:
    action = Action(ActionKind.TURN_ON, reason=parse_reason(), device="Lavadora")
    assert action.describe() == "turn on 'Lavadora' (line 7: IF Price < 3 THEN)"


def parse_reason() -> object:
    return (
        evaluate(parse(PAPER), state(import_price=Decimal(1)), Event.PRICE_SIGNAL).actions[0].reason
    )


_states = st.builds(
    MeterState,
    clock=st.datetimes(min_value=datetime(1999, 1, 1), max_value=datetime(2100, 1, 1)),
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


@given(contracts(), _states, st.sampled_from(list(Event)))
def test_evaluation_is_deterministic_and_well_formed(
    c: Contract, s: MeterState, event: Event
) -> None:
    first = evaluate(c, s, event)
    assert evaluate(c, s, event) == first
    # The canonical text parsed back acts the same (its reasons also carry line numbers).
    again = compile_contract(parse_canonical(c)).evaluate(s, event)
    assert _without_lines(again) == _without_lines(first)
    if not c.valid_from <= s.clock <= c.valid_to:
        assert first.actions == ()
    devices = [a.device for a in first.actions if a.device is not None]
    assert len(devices) == len(set(devices)), "one action per device"
    assert len(first.rules) == (len(c.rules) if first.in_window else 0)


def _without_lines(evaluation: Evaluation) -> list[tuple[object, ...]]:
    return [
        (a.kind, a.device, a.text, a.min_price, a.max_energy_wh, a.max_price, a.reason.clause)
        for a in evaluation.actions
    ]


def parse_canonical(c: Contract) -> Contract:
    return parse(format_contract(c))
