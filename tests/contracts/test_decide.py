"""One decision per device per event for the contracts of a home (contracts.decide)."""

from __future__ import annotations

import dataclasses
from collections import Counter
from datetime import datetime
from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from contracts import (
    Contract,
    Decided,
    Devices,
    DrInForce,
    Event,
    HomeDecision,
    Member,
    MeterState,
    Status,
    compile_contract,
    decide,
    parse,
)
from contracts.decide import dr_reason
from contracts.evaluator import Role
from contracts.model import ActionKind
from tests.contracts.strategies import contracts, devices_pool, meter_states

# 2026/03/10 is a Tuesday.
NOON = datetime(2026, 3, 10, 12, 0)
VALID = "Valid from 2026/01/01 00:00:00 to 2026/12/31 23:59:59\n"

# Fig. 7 with a real validity window: no demand response.
PAPER = (
    "Contract 'prueba'\n" + VALID + "Consumption true\nProduction true and sell\nStore false\n"
    "DemandResponse false\nIF Price < 3 THEN\n  TURN ON DEVICE 'Lavadora'\nENDIF\nParties: ISO\n"
)
# The same with demand response shedding the washer (docs/contract-language.md).
PAPER_DR = PAPER.replace("'prueba'", "'prueba dr'").replace(
    "DemandResponse false", "DemandResponse true shed 'Lavadora'"
)
EVENT = DrInForce("pico-1", 3, datetime(2026, 3, 10, 13, 30))


def member(source: str, height: int, contract_id: str | None = None) -> Member:
    contract = parse(source)
    return Member.of(
        contract_id or contract.name.ljust(64, "0"), compile_contract(contract), height
    )


def state(**changes: object) -> MeterState:
    values: dict[str, object] = {"clock": NOON}
    values.update(changes)
    return MeterState(**values)  # type: ignore[arg-type]


def seen(decision: HomeDecision) -> list[tuple[str, str, str | None, str]]:
    """(status, action, device, contract name) of every decision."""
    return [
        (
            str(d.status),
            str(d.action.kind),
            d.action.device,
            d.label.split(" [", 1)[0].strip("'"),
        )
        for d in decision.decisions
    ]


def test_the_scene_demand_response_holds_the_washer_against_the_price_contract() -> None:
    home = [member(PAPER, 10), member(PAPER_DR, 12)]
    cheap, dear = Decimal(2), Decimal(4)

    # Before the event a low price turns the washer on: one decision, the newer contract's.
    before = decide(home, state(import_price=cheap), Event.PRICE_SIGNAL)
    assert seen(before) == [
        ("superseded", "turn_on", "Lavadora", "prueba"),
        ("effective", "turn_on", "Lavadora", "prueba dr"),
    ]
    assert before.devices.known == {"Lavadora": True}

    # A level-3 event sheds it; both price rules' TURN ON are suppressed, with the event named.
    shed = decide(
        home,
        state(import_price=cheap, dr_level=3),
        Event.DR_SIGNAL,
        dr_events=[EVENT],
        devices=before.devices,
    )
    assert seen(shed) == [
        ("suppressed", "turn_on", "Lavadora", "prueba"),
        ("effective", "turn_off", "Lavadora", "prueba dr"),
        ("suppressed", "turn_on", "Lavadora", "prueba dr"),
    ]
    assert {d.why for d in shed.decisions if d.status is Status.SUPPRESSED} == {
        "held off by DR event pico-1 until 13:30"
    }
    assert shed.devices == Devices({"Lavadora": False}, {"Lavadora": True})

    # A low price during the event: suppressed again; nothing is carried out.
    during = decide(
        home,
        state(import_price=Decimal("1.5"), dr_level=3),
        Event.PRICE_SIGNAL,
        dr_events=[EVENT],
        devices=shed.devices,
    )
    assert [d.status for d in during.decisions] == [Status.SUPPRESSED, Status.SUPPRESSED]
    assert during.effective == ()
    # A later, dear price: the rules are false, nothing asked.
    later = decide(
        home,
        state(import_price=dear, dr_level=3),
        Event.PRICE_SIGNAL,
        dr_events=[EVENT],
        devices=during.devices,
    )
    assert later.decisions == ()

    # The event ends: the washer goes back to how it was before it (on), and is known so.
    end = decide(home, state(import_price=dear), Event.DR_SIGNAL, devices=later.devices)
    (restore,) = end.decisions
    assert (restore.status, restore.action.kind, restore.restore_to) == (
        Status.EFFECTIVE,
        ActionKind.RESTORE,
        True,
    )
    assert (
        restore.describe()
        == "restore 'Lavadora' to on (line 6: DemandResponse true shed 'Lavadora')"
    )
    assert end.devices == Devices({"Lavadora": True}, {})


def test_at_the_end_a_rule_naming_the_device_wins_over_the_restore() -> None:
    home = [member(PAPER, 10), member(PAPER_DR, 12)]
    memory = Devices({"Lavadora": False}, {"Lavadora": False})
    end = decide(home, state(import_price=Decimal(2)), Event.DR_SIGNAL, devices=memory)
    assert seen(end) == [
        ("superseded", "turn_on", "Lavadora", "prueba"),
        ("superseded", "restore", "Lavadora", "prueba dr"),
        ("effective", "turn_on", "Lavadora", "prueba dr"),
    ]
    restore = end.decisions[1]
    assert restore.why == "superseded by line 7: IF Price < 3 THEN"
    assert restore.restore_to is False
    assert end.decisions[0].why.startswith("superseded by 'prueba dr' [0x")
    assert end.devices == Devices({"Lavadora": True}, {})


def test_restore_returns_the_state_before_the_event_whoever_switched_it_since() -> None:
    shedder = member(
        "Contract 'bomba'\n" + VALID + "DemandResponse true shed 'Bomba'\nParties: ISO\n", 3
    )
    # Turns the pump off whenever the price is above 3, during the event too.
    saver = member(
        "Contract 'ahorro'\n" + VALID + "IF Price > 3 THEN\n  TURN OFF DEVICE 'Bomba'\nENDIF\n"
        "Parties: ISO\n",
        4,
    )
    home = [shedder, saver]
    for before in (True, False):
        memory = Devices({"Bomba": before})
        shed = decide(home, state(dr_level=2), Event.DR_SIGNAL, devices=memory)
        expected = Status.EFFECTIVE if before else Status.UNCHANGED
        assert [(d.action.kind, d.status) for d in shed.decisions] == [
            (ActionKind.TURN_OFF, expected)
        ]
        during = decide(
            home,
            state(dr_level=2, import_price=Decimal(5)),
            Event.PRICE_SIGNAL,
            devices=shed.devices,
        )
        assert [(d.action.kind, d.status, d.why) for d in during.decisions] == [
            (ActionKind.TURN_OFF, Status.UNCHANGED, "no change: 'Bomba' is already off")
        ]
        end = decide(home, state(), Event.DR_SIGNAL, devices=during.devices)
        (restore,) = end.decisions
        assert restore.restore_to is before
        assert restore.status is (Status.EFFECTIVE if before else Status.UNCHANGED)
        assert end.devices == Devices({"Bomba": before}, {})


def test_a_restore_without_a_noted_state_is_carried_out_and_forgets_the_device() -> None:
    home = [member(PAPER_DR, 1)]
    end = decide(home, state(import_price=Decimal(9)), Event.DR_SIGNAL)
    (restore,) = end.decisions
    assert (restore.status, restore.restore_to) == (Status.EFFECTIVE, None)
    assert restore.describe() == "restore 'Lavadora' (line 6: DemandResponse true shed 'Lavadora')"
    assert end.devices == Devices({}, {})


def test_the_most_recently_activated_contract_wins_then_the_greater_id() -> None:
    on = (
        "Contract 'on'\n"
        + VALID
        + "IF Price < 3 THEN\n  TURN ON DEVICE 'Clima'\nENDIF\nParties: ISO\n"
    )
    off = on.replace("'on'", "'off'").replace("TURN ON", "TURN OFF")
    cheap = state(import_price=Decimal(1))
    for heights, winner in (((5, 7), "off"), ((7, 5), "on")):
        home = [member(on, heights[0]), member(off, heights[1])]
        (effective,) = decide(home, cheap, Event.PRICE_SIGNAL).effective
        assert effective.label.startswith(f"'{winner}'")
    # Same height: the greater contract id.
    home = [member(on, 5, "b" * 64), member(off, 5, "a" * 64)]
    decision = decide(home, cheap, Event.PRICE_SIGNAL)
    assert [(d.label.split(" ")[0], d.status) for d in decision.decisions] == [
        ("'off'", Status.SUPERSEDED),
        ("'on'", Status.EFFECTIVE),
    ]
    assert decision.decisions[0].why.startswith("superseded by 'on' [0x")
    assert decision.decisions[0].why.endswith("line 3: IF Price < 3 THEN")


def test_refused_imports_hold_a_device_off_against_another_contracts_turn_on() -> None:
    island = member(
        "Contract 'isla'\n" + VALID + "Consumption false\nDevices: 'Lavadora'\nParties: ISO\n", 2
    )
    home = [island, member(PAPER, 1)]
    importing = state(import_price=Decimal(2), consumption_w=800, production_w=100)
    decision = decide(home, importing, Event.PRICE_SIGNAL)
    assert seen(decision) == [
        ("suppressed", "turn_on", "Lavadora", "prueba"),
        ("effective", "turn_off", "Lavadora", "isla"),
    ]
    why = decision.decisions[0].why
    assert why.startswith("held off by 'isla' [0x")
    assert why.endswith("line 3: Consumption false: importing is not allowed")
    # Exporting, the price contract has its way.
    exporting = dataclasses.replace(importing, consumption_w=0)
    assert [d.status for d in decide(home, exporting, Event.PRICE_SIGNAL).decisions] == [
        Status.EFFECTIVE
    ]


def test_a_contract_just_activated_speaks_alone_but_every_hold_applies() -> None:
    home = [member(PAPER_DR, 1), member(PAPER, 2)]
    decision = decide(
        home,
        state(import_price=Decimal(2), dr_level=1),
        Event.PRICE_SIGNAL,
        dr_events=[EVENT],
        only=home[1].contract_id,
    )
    assert seen(decision) == [("suppressed", "turn_on", "Lavadora", "prueba")]


def test_actions_without_a_device_stay_each_contracts_own() -> None:
    notify = (
        "Contract 'aviso'\n" + VALID + "Consumption false\nIF Price < 3 THEN\n  NOTIFY 'barato'\n"
        "  BUY UP TO 500 Wh AT MAX 2 MXN/kWh\n  NOTIFY 'barato'\nENDIF\nParties: ISO\n"
    )
    other = notify.replace("'aviso'", "'otro'").replace("Consumption false", "Consumption true")
    home = [member(notify, 1), member(other, 2)]
    decision = decide(
        home,
        state(import_price=Decimal(1), consumption_w=500),
        Event.PRICE_SIGNAL,
    )
    assert seen(decision) == [
        ("effective", "notify", None, "aviso"),
        ("suppressed", "buy", None, "aviso"),
        ("effective", "notify", None, "otro"),
        ("effective", "buy", None, "otro"),
    ]
    assert decision.decisions[1].why == "imports are not allowed now"


def test_the_hold_names_the_strongest_event_and_its_day_when_not_today() -> None:
    events = [
        DrInForce("b", 2, datetime(2026, 3, 10, 14, 0)),
        DrInForce("a", 3, datetime(2026, 3, 11, 1, 15)),
        DrInForce("c", 3, datetime(2026, 3, 10, 23, 0)),
    ]
    assert dr_reason(state(dr_level=3), events) == "held off by DR event a until 2026/03/11 01:15"
    assert dr_reason(state(dr_level=2), []) == "held off by demand response (level 2)"


# -- properties --------------------------------------------------------------------


@st.composite
def homes(draw: st.DrawFn) -> list[Member]:
    """One to three contracts sharing a few devices, most of them valid at NOON."""
    pool = draw(devices_pool)
    found: list[Member] = []
    for index in range(draw(st.integers(1, 3))):
        contract: Contract = draw(contracts(pool))
        if draw(st.integers(0, 3)):
            contract = dataclasses.replace(
                contract, valid_from=datetime(2000, 1, 1), valid_to=datetime(2090, 1, 1)
            )
        height = draw(st.integers(0, 3))
        contract_id = f"{index:x}".rjust(64, "c")
        found.append(Member(contract_id, compile_contract(contract), height, f"'{index}'"))
    return found


@st.composite
def memories(draw: st.DrawFn) -> Devices:
    names = draw(st.lists(st.text(min_size=1, max_size=20), max_size=4))
    known = {n: draw(st.booleans()) for n in names}
    before = {n: draw(st.none() | st.booleans()) for n in names if draw(st.booleans())}
    return Devices(known, before)


_noon_states = meter_states(st.just(NOON))


@given(homes(), _noon_states, st.sampled_from(list(Event)), memories(), st.randoms())
def test_the_decision_is_the_same_for_any_order_of_the_contracts(
    home: list[Member], now: MeterState, event: Event, memory: Devices, shuffle: object
) -> None:
    first = decide(home, now, event, devices=memory)
    assert decide(home, now, event, devices=memory) == first
    shuffled = list(home)
    shuffle.shuffle(shuffled)  # type: ignore[attr-defined]
    assert decide(shuffled, now, event, devices=memory) == first
    assert decide(reversed(home), now, event, devices=memory) == first


def _device_candidates(home: list[Member], now: MeterState, event: Event) -> int:
    return sum(
        1
        for m in home
        for action, role in m.program.contributions(now, event).candidates
        if role is not Role.FLAG and action.device is not None
    )


@given(homes(), _noon_states, st.sampled_from(list(Event)), memories())
def test_one_decision_per_device_every_action_accounted_for_holds_respected(
    home: list[Member], now: MeterState, event: Event, memory: Devices
) -> None:
    decision = decide(home, now, event, devices=memory)
    devices = [d for d in decision.decisions if d.action.device is not None]
    assert len(devices) == _device_candidates(home, now, event)
    winners = Counter(
        d.action.device for d in devices if d.status in (Status.EFFECTIVE, Status.UNCHANGED)
    )
    assert all(count == 1 for count in winners.values()), winners
    held: set[str] = set()
    for m in home:
        contribution = m.program.contributions(now, event)
        held.update(contribution.dr_held, contribution.import_held)
    for d in devices:
        if d.action.device in held and d.status in (Status.EFFECTIVE, Status.UNCHANGED):
            assert d.action.kind is ActionKind.TURN_OFF or d.restore_to is False, d
        if d.status is not Status.EFFECTIVE:
            assert d.why, d


def _actions(decided: tuple[Decided, ...]) -> Counter[tuple[object, ...]]:
    return Counter(
        (d.action.kind, d.action.device, d.action.text, d.action.min_price, d.action.max_price)
        for d in decided
    )


@given(contracts(), meter_states(), st.sampled_from(list(Event)))
def test_for_one_contract_the_home_does_what_the_contract_says(
    contract: Contract, now: MeterState, event: Event
) -> None:
    program = compile_contract(contract)
    decision = decide([Member.of("c" * 64, program)], now, event)
    evaluation = program.evaluate(now, event)
    assert _actions(decision.effective) == _actions(
        tuple(Decided("c" * 64, "", a, Status.EFFECTIVE) for a in evaluation.actions)
    )
    assert {
        (d.action.kind, d.action.device)
        for d in decision.decisions
        if d.status is Status.SUPPRESSED
    } >= {
        (s.action.kind, s.action.device)
        for s in evaluation.suppressed
        if s.action.kind is ActionKind.TURN_ON and not s.why.startswith("superseded")
    }
