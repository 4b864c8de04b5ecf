"""Contract execution at a home: events in, actions with reasons out."""

from __future__ import annotations

from datetime import UTC, datetime

from contracts import format_contract, parse
from contracts.model import ActionKind
from ledger_core.agent.execution import ContractExecutor, OrderIntent, dr_level_of

PARTICIPANT = "tv" + "a" * 40
OTHER = "tv" + "b" * 40
METER = "tv" + "c" * 40

PAPER = """Contract 'prueba'
Valid from 2026/11/01 00:00:00 to 2026/12/31 23:59:59
Consumption true
Production true and sell
Store false
DemandResponse true shed 'Lavadora'
IF Price < 3 THEN
  TURN ON DEVICE 'Lavadora'
ELSE
  TURN OFF DEVICE 'Lavadora'
ENDIF
Parties: ISO
"""

# 2026-11-24 10:00 local (UTC-6) is 16:00 UTC.
T0 = int(datetime(2026, 11, 24, 16, 0, tzinfo=UTC).timestamp())


def _record(source: str, status: str = "active", signers: list[str] | None = None) -> dict:
    return {"source": source, "status": status, "signers": signers or [PARTICIPANT, OTHER]}


def _executor() -> ContractExecutor:
    executor = ContractExecutor(PARTICIPANT, METER)
    assert executor.track("c1", _record(PAPER))
    return executor


def _price(start: int, imp: int, exp: int = 10_000) -> dict:
    return {
        "type": "price_signal",
        "interval_start": start,
        "import_price": imp,
        "export_price": exp,
        "network_fee": 0,
    }


def test_paper_contract_is_canonical_for_the_ledger() -> None:
    assert format_contract(parse(PAPER, "paper")) == PAPER


def test_tracks_only_active_contracts_of_the_participant() -> None:
    executor = ContractExecutor(PARTICIPANT, METER)
    assert not executor.track("p", _record(PAPER, status="proposed"))
    assert not executor.track("x", _record(PAPER, signers=[OTHER]))
    assert executor.track("c1", _record(PAPER))
    assert not executor.track("c1", _record(PAPER, status="revoked"))
    assert executor.programs == {}


def test_low_price_turns_the_washing_machine_on_with_its_reason() -> None:
    executor = _executor()
    actions = executor.on_ledger_event(_price(T0, 25_000), T0 + 10)
    assert [(a.kind, a.device) for a in actions] == [(ActionKind.TURN_ON, "Lavadora")]
    action = actions[0]
    assert action.reason == "line 7: IF Price < 3 THEN"
    assert action.short_id.startswith("0x")
    assert action.to_event()["trigger"] == "price_signal"
    assert action.to_event()["type"] == "contract_action"


def test_price_events_fire_when_the_price_in_force_changes() -> None:
    executor = _executor()
    # A day-ahead signal for a later interval changes nothing now...
    assert executor.on_ledger_event(_price(T0 + 900, 40_000), T0) == []
    # ...until that interval starts: then the ELSE turns the machine off.
    actions = executor.on_tick(T0 + 900)
    assert [(a.kind, a.reason) for a in actions] == [
        (ActionKind.TURN_OFF, "line 7: ELSE of IF Price < 3 THEN")
    ]
    # The same price in the next interval is not a new event.
    executor.on_ledger_event(_price(T0 + 1800, 40_000), T0 + 900)
    assert executor.on_tick(T0 + 1800) == []


def test_demand_response_sheds_then_restores() -> None:
    executor = _executor()
    executor.on_ledger_event(_price(T0, 25_000), T0)
    dr = {
        "type": "dr_event",
        "event_id": "peak-1",
        "modification_number": 0,
        "signal": {"name": "SIMPLE", "level": 2},
        "start": T0 + 300,
        "duration": 500,
        "targets": [],
        "cancelled": False,
    }
    assert executor.on_ledger_event(dr, T0 + 60) == []  # announced, not yet active
    shed = executor.on_tick(T0 + 300)
    assert [(a.kind, a.device, a.status) for a in shed] == [
        (ActionKind.TURN_OFF, "Lavadora", "effective"),
        (ActionKind.TURN_ON, "Lavadora", "suppressed"),
    ]
    assert "DemandResponse true" in shed[0].reason
    # 16:13:20 UTC is 10:13 local: the event's end, as the reason says.
    assert shed[1].why == "held off by DR event peak-1 until 10:13"
    # During the event a low price does not turn the machine back on.
    during = executor.on_ledger_event(_price(T0, 20_000), T0 + 400)
    assert [(a.kind, a.status, a.why) for a in during] == [
        (ActionKind.TURN_ON, "suppressed", "held off by DR event peak-1 until 10:13")
    ]
    # When the event ends the price is still low: the rule turns it back on, which is also
    # the state it had before; the restore gives way to the rule.
    after = executor.on_tick(T0 + 800)
    assert [(a.kind, a.event, a.status) for a in after if a.effective] == [
        (ActionKind.TURN_ON, "dr_signal", "effective")
    ]
    (restore,) = [a for a in after if a.kind is ActionKind.RESTORE]
    assert (restore.status, restore.restore_to) == ("superseded", True)
    assert restore.why == "superseded by line 7: IF Price < 3 THEN"
    assert restore.to_event()["to"] == "on"


def test_cancelled_or_untargeted_dr_events_do_not_apply() -> None:
    executor = _executor()
    base = {
        "type": "dr_event",
        "event_id": "e",
        "modification_number": 0,
        "signal": {"name": "SIMPLE", "level": 3},
        "start": T0,
        "duration": 900,
        "cancelled": False,
    }
    assert executor.on_ledger_event({**base, "targets": [OTHER]}, T0) == []
    assert executor.dr_level_at(T0) == 0
    executor.on_ledger_event({**base, "targets": [PARTICIPANT]}, T0)
    assert executor.dr_level_at(T0) == 3
    executor.on_ledger_event({**base, "targets": [], "cancelled": True}, T0 + 1)
    assert executor.dr_level_at(T0 + 1) == 0


def test_dr_levels_of_signals() -> None:
    assert dr_level_of({"name": "SIMPLE", "level": 2}) == 2
    assert dr_level_of({"name": "ELECTRICITY_PRICE", "price": 50_000}) == 1
    assert dr_level_of({"name": "SIMPLE", "level": "x"}) == 0


def test_interval_report_offers_the_surplus_for_the_next_interval() -> None:
    executor = _executor()
    executor.on_ledger_event(_price(T0, 35_000, 12_000), T0)
    # The home's own meter closed the interval (the chain holds only its commitment).
    actions = executor.on_interval_report(T0, 20, 420, T0 + 905)
    sells = [a for a in actions if a.kind is ActionKind.SELL_SURPLUS]
    assert len(sells) == 1
    assert sells[0].order == OrderIntent(T0 + 1800, "sell", 400, 12_000)
    assert sells[0].to_event()["order"] == {
        "interval_start": T0 + 1800,
        "side": "sell",
        "energy_wh": 400,
        "limit_price": 12_000,
    }
    # A report on the chain (a commitment, any meter's) is not an event for the contracts.
    committed = {"type": "interval_report", "meter": METER, "interval_start": T0 + 900}
    assert executor.on_ledger_event({**committed, "commitment": "ab" * 32}, T0 + 906) == []
    assert executor.on_ledger_event({**committed, "meter": OTHER}, T0 + 906) == []
    # An older interval reported late changes nothing.
    assert executor.on_interval_report(T0 - 900, 20, 420, T0 + 907) == []


def test_buy_rule_makes_a_buy_order() -> None:
    source = format_contract(
        parse(
            "Contract 'compra'\nValid from 2026/11/01 00:00:00 to 2026/12/31 23:59:59\n"
            "IF Price < 2 THEN BUY 500 Wh AT MAX 2.5 MXN/kWh ENDIF\nParties: ISO\n",
            "buy",
        )
    )
    executor = ContractExecutor(PARTICIPANT, METER)
    assert executor.track("b", _record(source))
    actions = executor.on_ledger_event(_price(T0, 15_000), T0 + 1)
    assert [a.order for a in actions] == [OrderIntent(T0 + 900, "buy", 500, 25_000)]


def test_service_cut_and_reconnection() -> None:
    source = format_contract(
        parse(
            "Contract 'corte'\nValid from 2026/11/01 00:00:00 to 2026/12/31 23:59:59\n"
            "IF Service = cut THEN NOTIFY 'sin servicio' ENDIF\nParties: ISO\n",
            "cut",
        )
    )
    executor = ContractExecutor(PARTICIPANT, METER)
    assert executor.track("s", _record(source))
    cut = executor.on_ledger_event({"type": "service_cut", "participant": PARTICIPANT}, T0)
    assert [(a.kind, a.text, a.event) for a in cut] == [
        (ActionKind.NOTIFY, "sin servicio", "service_cut")
    ]
    assert executor.on_service(connected=False, now=T0 + 1) == []  # already cut
    back = executor.on_service(connected=True, now=T0 + 2)
    assert [a.event for a in back] == []  # the rule is false again: no action
    assert executor.state(T0 + 2).service_connected


def test_live_power_and_local_clock() -> None:
    executor = _executor()
    executor.on_power(-1234.4)
    state = executor.state(T0)
    assert (state.consumption_w, state.production_w) == (0, 1234)
    assert state.clock == datetime(2026, 11, 24, 10, 0)
    assert state.import_price is None


def test_a_newly_active_contract_hears_the_price_in_force() -> None:
    executor = ContractExecutor(PARTICIPANT, METER)
    executor.on_ledger_event(_price(T0, 25_000), T0)
    assert executor.on_activated("c1", T0) == []  # not tracked yet
    assert executor.track("c1", _record(PAPER))
    actions = executor.on_activated("c1", T0 + 5)
    assert [(a.kind, a.event) for a in actions] == [(ActionKind.TURN_ON, "price_signal")]
    silent = ContractExecutor(PARTICIPANT, METER)
    assert silent.track("c1", _record(PAPER))
    assert silent.on_activated("c1", T0) == []  # no price known yet


# -- a home's contracts decide together ----------------------------------------------

# The paper's contract (Fig. 7, a valid window): no demand response.
FIG7 = format_contract(
    parse(
        "Contract 'prueba'\nValid from 2026/11/01 00:00:00 to 2026/12/31 23:59:59\n"
        "Consumption true\nProduction true and sell\nStore false\nDemandResponse false\n"
        "IF Price < 3 THEN\n  TURN ON DEVICE 'Lavadora'\nENDIF\nParties: ISO\n"
    )
)
FIG7_DR = FIG7.replace("'prueba'", "'prueba dr'").replace(
    "DemandResponse false", "DemandResponse true shed 'Lavadora'"
)


def _dr(event_id: str, start: int, duration: int, number: int = 0, level: int = 3) -> dict:
    return {
        "type": "dr_event",
        "event_id": event_id,
        "modification_number": number,
        "signal": {"name": "SIMPLE", "level": level},
        "start": start,
        "duration": duration,
        "targets": [],
        "cancelled": False,
    }


def _seen(records: list) -> list[tuple[str, str, str | None, str]]:
    return [(r.status, str(r.kind), r.device, r.contract_name) for r in records]


def test_the_scene_the_washer_is_held_off_for_the_whole_event_and_restored() -> None:
    executor = ContractExecutor(PARTICIPANT, METER)
    assert executor.track("a" * 64, {**_record(FIG7), "activated_height": 3})
    assert executor.track("b" * 64, {**_record(FIG7_DR), "activated_height": 5})
    # A low price: on, once.
    on = executor.on_ledger_event(_price(T0, 20_000), T0 + 10)
    assert _seen(on) == [
        ("superseded", "turn_on", "Lavadora", "prueba"),
        ("effective", "turn_on", "Lavadora", "prueba dr"),
    ]
    # A level-3 event from T0 + 100 for 20 minutes (until 10:21:40 local).
    assert executor.on_ledger_event(_dr("pico-1", T0 + 100, 1200), T0 + 20) == []
    shed = executor.on_tick(T0 + 100)
    assert _seen(shed) == [
        ("suppressed", "turn_on", "Lavadora", "prueba"),
        ("effective", "turn_off", "Lavadora", "prueba dr"),
        ("suppressed", "turn_on", "Lavadora", "prueba dr"),
    ]
    assert shed[0].why == "held off by DR event pico-1 until 10:21"
    # A low price during the event, then a later price signal: held off both times.
    for now, price in ((T0 + 300, 15_000), (T0 + 900, 10_000)):
        signal = _price(now - now % 900, price)
        during = executor.on_ledger_event(signal, now)
        assert [(r.status, r.why) for r in during] == [
            ("suppressed", "held off by DR event pico-1 until 10:21")
        ] * 2
    # The washer stays off to the end; then it is as before the event (on).
    assert executor.on_tick(T0 + 1299) == []
    end = executor.on_tick(T0 + 1300)
    effective = [r for r in end if r.effective]
    assert [(str(r.kind), r.device, r.contract_name) for r in effective] == [
        ("turn_on", "Lavadora", "prueba dr")
    ]
    (restore,) = [r for r in end if r.kind is ActionKind.RESTORE]
    assert (restore.status, restore.restore_to) == ("superseded", True)
    assert executor.devices.known == {"Lavadora": True}
    assert executor.devices.before_dr == {}


def test_restore_alone_returns_the_washer_to_its_state_before_the_event() -> None:
    executor = ContractExecutor(PARTICIPANT, METER)
    executor.track("a" * 64, {**_record(FIG7), "activated_height": 3})
    executor.track("b" * 64, {**_record(FIG7_DR), "activated_height": 5})
    executor.on_ledger_event(_price(T0, 20_000), T0)  # on
    executor.on_ledger_event(_dr("pico-2", T0 + 60, 600), T0 + 1)
    executor.on_tick(T0 + 60)  # off
    executor.on_ledger_event(_price(T0, 45_000), T0 + 120)  # dear: the rules are silent
    # The event is ended early by a modification.
    executor.on_ledger_event(_dr("pico-2", T0 + 60, 200, number=1), T0 + 200)
    (restore,) = executor.on_tick(T0 + 260)
    assert (restore.kind, restore.status, restore.restore_to) == (
        ActionKind.RESTORE,
        "effective",
        True,
    )
    assert restore.description == (
        "restore 'Lavadora' to on (line 6: DemandResponse true shed 'Lavadora')"
    )
    assert restore.to_event()["to"] == "on"


def test_a_contract_activated_during_an_event_is_held_off_too() -> None:
    executor = ContractExecutor(PARTICIPANT, METER)
    executor.track("b" * 64, {**_record(FIG7_DR), "activated_height": 5})
    executor.on_ledger_event(_price(T0, 45_000), T0)
    executor.on_ledger_event(_dr("pico-3", T0, 900), T0 + 1)
    executor.on_tick(T0 + 2)
    executor.on_ledger_event(_price(T0, 20_000), T0 + 3)
    executor.track("a" * 64, {**_record(FIG7), "activated_height": 9})
    (held,) = executor.on_activated("a" * 64, T0 + 4)
    assert (held.status, held.contract_name, held.why) == (
        "suppressed",
        "prueba",
        "held off by DR event pico-3 until 10:15",
    )


# -- day-ahead orders from a forecast ------------------------------------------------

SELLER = """Contract 'excedente'
Valid from 2026/11/01 00:00:00 to 2026/12/31 23:59:59
Production true
IF Price > 2 THEN
  SELL SURPLUS AT MIN 1.8 MXN/kWh
ENDIF
Parties: ISO
"""
TOMORROW = T0 + 86_400 - 10 * 3600  # 2026-11-25 00:00 local


class Forecast:
    """A home's expected energies by interval, and the questions asked of it."""

    def __init__(self, expected: dict[int, tuple[int, int]]) -> None:
        self.expected = expected
        self.asked: list[tuple[int, int]] = []

    def __call__(self, start: int, end: int) -> dict[int, tuple[int, int]]:
        self.asked.append((start, end))
        return {t: v for t, v in self.expected.items() if start <= t < end}


def _seller(forecast: Forecast, gate: int = 0) -> ContractExecutor:
    executor = ContractExecutor(PARTICIPANT, METER, gate_closure_seconds=gate, forecast=forecast)
    assert executor.track("s", _record(format_contract(parse(SELLER, "s"))))
    return executor


def _sunny_day() -> dict[int, tuple[int, int]]:
    """Tomorrow: 150 Wh used per interval, 600 Wh produced from 10:00 to 15:00."""
    return {TOMORROW + 900 * i: (150, 600 if 40 <= i < 60 else 0) for i in range(96)}


def test_published_prices_are_sold_ahead_from_the_forecast() -> None:
    forecast = Forecast(_sunny_day())
    executor = _seller(forecast)
    now = T0 + 30
    # The operator publishes tomorrow: 3 MXN/kWh from 12:00, 1.5 before.
    for i in range(96):
        executor.on_ledger_event(_price(TOMORROW + 900 * i, 30_000 if i >= 48 else 15_000), now)
    planned = executor.on_tick(now)
    assert forecast.asked == [(T0 + 900, T0 + 900 + 2 * 86_400)]
    orders = [a.order for a in planned]
    # Only intervals whose price satisfies the rule and whose forecast has a surplus.
    assert orders == [OrderIntent(TOMORROW + 900 * i, "sell", 450, 18_000) for i in range(48, 60)]
    event = planned[0].to_event()
    assert (event["trigger"], event["action"], event["contract"]) == (
        "day_ahead",
        "sell_surplus",
        "excedente",
    )
    assert executor.on_tick(now + 1) == []  # planned once
    # The interval report just before such an interval does not offer it again.
    executor.on_ledger_event(_price(TOMORROW + 900 * 47, 30_000), now)  # a revision
    late = executor.on_interval_report(TOMORROW + 900 * 46, 0, 500, TOMORROW + 900 * 47 + 5)
    assert [a.kind for a in late] == [ActionKind.SELL_SURPLUS]
    assert late[0].order is None  # 12:00 was sold ahead
    assert (("sell", TOMORROW + 900 * 48)) in executor.planned


def test_the_gate_and_a_missing_forecast_hold_the_plan_back() -> None:
    forecast = Forecast({})
    executor = _seller(forecast, gate=3 * 3600)
    now = TOMORROW + 9 * 3600 + 60  # 09:01, with orders closing three hours ahead
    for i in range(36, 64):
        executor.on_ledger_event(_price(TOMORROW + 900 * i, 30_000), now)
    assert executor.on_tick(now) == []  # no forecast yet
    assert executor.on_tick(now + 60) == []  # asked once per interval, not at every tick
    assert len(forecast.asked) == 1
    forecast.expected = _sunny_day()
    planned = executor.on_tick(now + 900)  # the next interval: asked again
    assert len(forecast.asked) == 2
    starts = [a.order.interval_start for a in planned if a.order is not None]
    # Asked at 09:16: 12:30 is the first interval still open; the surplus ends at 15:00.
    assert starts == [TOMORROW + 900 * i for i in range(50, 60)]
    assert all(t - 3 * 3600 > now + 900 for t in starts)


def test_one_offer_per_interval_and_demand_response_is_foreseen() -> None:
    forecast = Forecast(_sunny_day())
    executor = _seller(forecast)
    assert executor.track("p", _record(PAPER))  # also sells surplus ("and sell")
    now = T0
    executor.on_ledger_event(
        {
            "type": "dr_event",
            "event_id": "tarde",
            "signal": {"name": "SIMPLE", "level": 2},
            "start": TOMORROW + 900 * 50,
            "duration": 900,
            "targets": [],
            "cancelled": False,
        },
        now,
    )
    for i in range(48, 52):
        executor.on_ledger_event(_price(TOMORROW + 900 * i, 30_000), now)
    planned = executor.on_tick(now)
    assert [a.order.interval_start for a in planned if a.order] == [
        TOMORROW + 900 * i for i in range(48, 52)
    ]  # one sell per interval though two contracts sell
    assert all(a.device is None for a in planned)  # devices act when the time comes
    assert executor.dr_level_at(TOMORROW + 900 * 50) == 2


def test_without_a_forecast_nothing_is_planned() -> None:
    executor = ContractExecutor(PARTICIPANT, METER)
    assert executor.track("s", _record(format_contract(parse(SELLER, "s"))))
    executor.on_ledger_event(_price(TOMORROW + 900 * 48, 30_000), T0)
    assert executor.on_tick(T0) == []
    assert executor.planned == {}
