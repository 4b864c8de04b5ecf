"""The language as people write it: Fig. 7, the extensions, and the model they produce."""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from pathlib import Path

import pytest

from contracts import ContractError, Severity, check, parse
from contracts.model import (
    UNITS,
    ActionKind,
    AllOf,
    AnyOf,
    ClockRange,
    ClockValue,
    Comparison,
    ConsumptionMode,
    DaySet,
    Measure,
    Membership,
    Not,
    Op,
    Party,
    Quantity,
    ServiceValue,
    Unit,
    Variable,
    VarRef,
)

FIG7 = (Path(__file__).parent / "examples" / "fig7.contract").read_text(encoding="utf-8")
FIG7_FIXED = FIG7.replace("2019/09/31", "2019/09/30")

HEAD = "Contract 'x'\nValid from 2026/01/01 00:00:00 to 2026/12/31 23:59:59\n"
TAIL = "Parties: ISO\n"


def with_rules(body: str) -> str:
    return HEAD + body.rstrip("\n") + "\n" + TAIL


def test_fig7_as_printed_is_rejected_only_for_its_date() -> None:
    result = check(FIG7, "fig7.contract")
    assert result.contract is None
    errors = [d for d in result.diagnostics if d.severity is Severity.ERROR]
    assert len(errors) == 1
    error = errors[0]
    assert (error.line, error.column) == (2, 35)
    assert error.message == "2019/09/31 is not a calendar date: September 2019 has 30 days"
    assert error.render("fig7.contract").startswith(
        "fig7.contract:2:35: error: 2019/09/31 is not a calendar date"
    )


def test_fig7_with_a_real_date_parses_with_a_warning_for_the_misspelling() -> None:
    result = check(FIG7_FIXED)
    contract = result.contract
    assert contract is not None
    [warning] = result.diagnostics
    assert warning.severity is Severity.WARNING
    assert (warning.line, warning.column) == (6, 1)
    assert "DemandResponse" in warning.message
    assert warning.hint == "did you mean DemandResponse?"

    assert contract.name == "prueba"
    assert contract.valid_from == datetime(2019, 8, 1, 0, 0, 0)
    assert contract.valid_to == datetime(2019, 9, 30, 23, 59, 59)
    assert contract.consumption.mode is ConsumptionMode.TRUE
    assert contract.production.enabled
    assert contract.production.sell
    assert contract.store is False
    assert contract.demand_response.enabled is False
    assert contract.parties == (Party("ISO", is_role=True),)
    [rule] = contract.rules
    assert rule.line == 7
    assert rule.condition == Comparison(
        VarRef(Variable.PRICE), Op.LT, Quantity(Decimal(3)), Measure.NONE
    )
    [action] = rule.then
    assert action.kind is ActionKind.TURN_ON
    assert action.device == "Lavadora"


def test_keywords_are_case_insensitive_and_comments_and_blank_lines_are_ignored() -> None:
    source = """
    # Contrato del ejemplo del artículo / the paper's example
    CONTRACT 'prueba'   # name
    valid FROM 2019/08/01 00:00:00 TO 2019/09/30 23:59:59

    consumption TRUE
    PRODUCTION true AND SELL
    store FALSE
    demandresponse False
    if price < 3 then turn on device 'Lavadora' endif
    parties: iso
    """
    assert parse(source) == parse(FIG7_FIXED)


def test_one_line_and_multi_line_rules_are_the_same_rule() -> None:
    one = with_rules("IF Price < 3 THEN TURN ON DEVICE 'Lavadora' ENDIF")
    many = with_rules("IF Price < 3 THEN\n  TURN ON DEVICE 'Lavadora'\nENDIF")
    assert parse(one).rules == parse(many).rules


def test_crlf_line_endings_are_accepted() -> None:
    assert parse(FIG7_FIXED.replace("\n", "\r\n")) == parse(FIG7_FIXED)


def test_bytes_are_decoded_as_utf8() -> None:
    source = with_rules("IF Price < 3 THEN NOTIFY 'Enciende la lavadora, ¡ahorra!' ENDIF")
    contract = parse(source.encode("utf-8"))
    assert contract.rules[0].then[0].text == "Enciende la lavadora, ¡ahorra!"


def test_quotes_inside_strings_are_doubled() -> None:
    contract = parse(with_rules("IF Price < 3 THEN NOTIFY 'Juan''s washer' ENDIF"))
    assert contract.rules[0].then[0].text == "Juan's washer"


def test_else_and_boolean_operators_with_precedence() -> None:
    contract = parse(
        with_rules(
            "IF NOT Price >= 3 AND (Surplus > 500 W OR Weekday IN weekends) THEN\n"
            "  TURN ON DEVICE 'Lavadora'\n"
            "ELSE\n"
            "  TURN OFF DEVICE 'Lavadora'\n"
            "ENDIF"
        )
    )
    [rule] = contract.rules
    assert rule.condition == AllOf(
        (
            Not(Comparison(VarRef(Variable.PRICE), Op.GE, Quantity(Decimal(3)))),
            AnyOf(
                (
                    Comparison(
                        VarRef(Variable.SURPLUS),
                        Op.GT,
                        Quantity(Decimal(500), parse_unit("W")),
                        Measure.POWER,
                    ),
                    Membership(VarRef(Variable.WEEKDAY), DaySet(frozenset({5, 6}))),
                )
            ),
        )
    )
    assert [a.kind for a in rule.otherwise] == [ActionKind.TURN_OFF]


def parse_unit(symbol: str) -> Unit:
    return UNITS[symbol.lower()]


def test_nested_and_or_groups_are_flattened() -> None:
    flat = parse(with_rules("IF Price < 1 AND Price < 2 AND Price < 3 THEN NOTIFY 'a' ENDIF"))
    nested = parse(with_rules("IF (Price < 1 AND (Price < 2)) AND Price < 3 THEN NOTIFY 'a' ENDIF"))
    assert flat.rules == nested.rules
    condition = flat.rules[0].condition
    assert isinstance(condition, AllOf)
    assert len(condition.items) == 3


@pytest.mark.parametrize(
    ("text", "variable", "measure", "base"),
    [
        ("Price < 3", Variable.PRICE, Measure.NONE, Decimal(3)),
        ("ImportPrice <= 2.5 MXN/kWh", Variable.IMPORT_PRICE, Measure.NONE, Decimal("2.5")),
        ("ExportPrice > 1500 MXN/MWh", Variable.EXPORT_PRICE, Measure.NONE, Decimal("1.5")),
        ("Consumption > 500 W", Variable.CONSUMPTION, Measure.POWER, Decimal(500)),
        ("Consumption > 1.2 kW", Variable.CONSUMPTION, Measure.POWER, Decimal(1200)),
        ("Production >= 1.2 kWh", Variable.PRODUCTION, Measure.ENERGY, Decimal(1200)),
        ("Surplus > 300 Wh", Variable.SURPLUS, Measure.ENERGY, Decimal(300)),
        ("Battery < 20 %", Variable.BATTERY, Measure.NONE, Decimal(20)),
        ("SoC < 20", Variable.BATTERY, Measure.NONE, Decimal(20)),
        ("DRLevel >= 2", Variable.DR_LEVEL, Measure.NONE, Decimal(2)),
        ("DemandResponseLevel = 0", Variable.DR_LEVEL, Measure.NONE, Decimal(0)),
        ("Price < -0.50", Variable.PRICE, Measure.NONE, Decimal("-0.5")),
    ],
)
def test_variables_units_and_measures(
    text: str, variable: Variable, measure: Measure, base: Decimal
) -> None:
    contract = parse(with_rules(f"IF {text} THEN NOTIFY 'n' ENDIF"))
    condition = contract.rules[0].condition
    assert isinstance(condition, Comparison)
    assert condition.left == VarRef(variable)
    assert condition.measure is measure
    assert isinstance(condition.right, Quantity)
    assert condition.right.base == base


def test_units_are_case_insensitive_and_may_touch_the_number() -> None:
    a = parse(with_rules("IF Consumption > 1.2kwh THEN NOTIFY 'n' ENDIF"))
    b = parse(with_rules("IF Consumption > 1.2 kWh THEN NOTIFY 'n' ENDIF"))
    assert a == b


def test_time_weekday_and_service_conditions() -> None:
    contract = parse(
        with_rules(
            "IF Time IN 22:00-06:00 AND Weekday IN mon-fri AND Service = connected THEN\n"
            "  NOTIFY 'night'\nENDIF\n"
            "IF Time >= 18:30 AND Day = saturday AND Service != cut THEN NOTIFY 'sat' ENDIF\n"
            "IF Weekday IN fri-mon THEN NOTIFY 'long weekend' ENDIF"
        )
    )
    first, second, third = (rule.condition for rule in contract.rules)
    assert isinstance(first, AllOf)
    assert first.items == (
        Membership(VarRef(Variable.TIME), ClockRange(ClockValue(22 * 60), ClockValue(6 * 60))),
        Membership(VarRef(Variable.WEEKDAY), DaySet(frozenset(range(5)))),
        Comparison(VarRef(Variable.SERVICE), Op.EQ, ServiceValue(cut=False)),
    )
    assert isinstance(second, AllOf)
    assert second.items[0] == Comparison(VarRef(Variable.TIME), Op.GE, ClockValue(18 * 60 + 30))
    assert second.items[1] == Comparison(VarRef(Variable.WEEKDAY), Op.EQ, DaySet(frozenset({5})))
    assert third == Membership(VarRef(Variable.WEEKDAY), DaySet(frozenset({4, 5, 6, 0})))


def test_comparison_operators_have_synonyms() -> None:
    a = parse(with_rules("IF Price == 3 OR Price <> 4 THEN NOTIFY 'n' ENDIF"))
    b = parse(with_rules("IF Price = 3 OR Price != 4 THEN NOTIFY 'n' ENDIF"))
    assert a == b


def test_constant_on_the_left_is_kept() -> None:
    contract = parse(with_rules("IF 3 > Price THEN NOTIFY 'n' ENDIF"))
    condition = contract.rules[0].condition
    assert condition == Comparison(Quantity(Decimal(3)), Op.GT, VarRef(Variable.PRICE))


def test_two_variables_of_one_type_compare_and_power_or_energy_compares_power() -> None:
    contract = parse(
        with_rules(
            "IF Production > Consumption AND ExportPrice > ImportPrice THEN SELL SURPLUS ENDIF"
        )
    )
    condition = contract.rules[0].condition
    assert isinstance(condition, AllOf)
    first = condition.items[0]
    assert isinstance(first, Comparison)
    assert first.measure is Measure.POWER


def test_actions() -> None:
    contract = parse(
        with_rules(
            "IF Price < 2 THEN\n"
            "  TURN ON DEVICE 'Lavadora'\n"
            "  TURN OFF DEVICE 'Calentador'\n"
            "  SELL SURPLUS\n"
            "  SELL SURPLUS AT MIN 2.5 MXN/kWh\n"
            "  BUY up to 1.2 kWh AT MAX 3 MXN/kWh\n"
            "  BUY 500 Wh AT MAX 2.8\n"
            "  NOTIFY 'precio bajo'\n"
            "ENDIF"
        )
    )
    actions = contract.rules[0].then
    assert [a.kind for a in actions] == [
        ActionKind.TURN_ON,
        ActionKind.TURN_OFF,
        ActionKind.SELL_SURPLUS,
        ActionKind.SELL_SURPLUS,
        ActionKind.BUY,
        ActionKind.BUY,
        ActionKind.NOTIFY,
    ]
    assert [a.line for a in actions] == [4, 5, 6, 7, 8, 9, 10]
    assert actions[3].min_price is not None
    assert actions[3].min_price.base == Decimal("2.5")
    assert actions[4].max_energy is not None
    assert actions[4].max_energy.base == Decimal(1200)
    assert actions[5].max_price is not None
    assert actions[5].max_price.unit is None


def test_programmed_consumption_schedule() -> None:
    contract = parse(
        HEAD + "Consumption programmed 22:00-06:00 weekdays, 10:00-24:00 sat sun, "
        "12:00-13:00\n" + TAIL
    )
    consumption = contract.consumption
    assert consumption.mode is ConsumptionMode.PROGRAMMED
    first, second, third = consumption.schedule
    assert (first.start.minutes, first.end.minutes, first.days) == (1320, 360, frozenset(range(5)))
    assert (second.end.minutes, second.days) == (1440, frozenset({5, 6}))
    assert third.days == frozenset(range(7))


def test_demand_response_devices_and_parties() -> None:
    contract = parse(
        HEAD
        + "DemandResponse true shed 'Calentador', 'Bomba'\n"
        + "Devices: 'Lavadora', 'Calentador', 'Bomba'\n"
        + "IF Price < 3 THEN TURN ON DEVICE 'Lavadora' ENDIF\n"
        + "Parties: ISO, supplier, DSO, 'casa-12', 'tva1qxyz:meter.3'\n"
    )
    assert contract.demand_response.enabled
    assert contract.demand_response.shed == ("Calentador", "Bomba")
    assert contract.devices == ("Lavadora", "Calentador", "Bomba")
    assert contract.shed_devices() == ("Calentador", "Bomba")
    assert contract.parties == (
        Party("ISO", is_role=True),
        Party("SUPPLIER", is_role=True),
        Party("DSO", is_role=True),
        Party("casa-12", is_role=False),
        Party("tva1qxyz:meter.3", is_role=False),
    )


def test_controlled_devices_without_declarations_come_from_actions() -> None:
    contract = parse(
        HEAD
        + "DemandResponse true\n"
        + "IF Price < 3 THEN TURN ON DEVICE 'Lavadora' ELSE TURN OFF DEVICE 'Secadora' ENDIF\n"
        + "IF Price > 5 THEN TURN OFF DEVICE 'Lavadora' ENDIF\n"
        + TAIL
    )
    assert contract.devices is None
    assert contract.controlled_devices() == ("Lavadora", "Secadora")
    assert contract.shed_devices() == ("Lavadora", "Secadora")


def test_omitted_flags_take_their_documented_defaults() -> None:
    contract = parse(HEAD + TAIL)
    assert contract.consumption.mode is ConsumptionMode.TRUE
    assert contract.production.enabled
    assert not contract.production.sell
    assert contract.store is False
    assert not contract.demand_response.enabled
    assert contract.devices is None
    assert contract.rules == ()


def test_parse_raises_the_library_error_with_every_diagnostic() -> None:
    with pytest.raises(ContractError) as info:
        parse(FIG7, "fig7.contract")
    assert "fig7.contract:2:35: error:" in str(info.value)
    assert len(info.value.errors) == 1
    assert len(info.value.diagnostics) == 2
