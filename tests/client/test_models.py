"""The decoders of what a node sends: exactly the node's shapes decode, anything else raises
DecodeError naming the field (fuzzed: nothing else ever escapes)."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from datetime import UTC, date, datetime
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from transactiva_client.errors import DecodeError
from transactiva_client.models import (
    ActionLogEntry,
    ActionResultReport,
    Advice,
    Balance,
    ContractAction,
    ContractChange,
    ContractCheck,
    ContractRecord,
    DemandResponse,
    Forecast,
    ForecastSummary,
    LedgerEvent,
    LedgerMessage,
    LocalMessage,
    MarketResult,
    MeterReading,
    NewBlock,
    NodeStatus,
    Participant,
    PriceSignal,
    PushedReading,
    ServiceChange,
    Settlements,
    Trade,
    TxResult,
    WalletChange,
    WalletRequest,
)
from transactiva_client.protocol import (
    ActionKind,
    ActionResult,
    ActionTrigger,
    ApiVersion,
    EventKind,
    IntervalStatus,
    LocalEventKind,
    OrderSide,
    Severity,
    SignalName,
    TxStatus,
    WalletReason,
)

A = "tv" + "a" * 40
B = "tv" + "b" * 40
HASH = "ab" * 32
JSON = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=6)
    ),
    max_leaves=20,
)
KEYS = st.sampled_from(
    [
        "type", "seq", "lseq", "height", "event", "interval_start", "import_price",
        "export_price", "network_fee", "event_id", "modification_number", "signal", "name",
        "level", "price", "setpoint_w", "delta_w", "ramp_up", "recovery", "start", "duration",
        "targets", "cancelled", "contract_id", "short_id", "device", "action", "reason",
        "phases", "phase", "voltage", "power", "import_wh_total", "last_interval",
        "import_wh", "export_wh", "service", "source", "signers", "signed", "status",
        "proposer", "chain_id", "participant", "validator", "peers", "api_version",
        "action_id", "time", "trigger", "contract", "description", "text", "order", "side",
        "energy_wh", "limit_price", "result", "detail", "volume_wh", "bids", "offers",
        "trades", "ready", "date", "message", "measured_consumption_wh",
        "measured_production_wh", "consumption_today_wh", "utc_offset_minutes",
        "interval_seconds", "balance", "held", "debt", "address", "role", "roles", "id",
        "valid", "diagnostics", "severity", "line", "column", "parties", "canonical", "code",
        "events", "delta", "why", "request", "amount", "party", "settlements", "lines",
        "late_reports", "buyer", "seller", "payment", "fee", "series", "items", "title",
        "generated_at", "centavos", "period_days", "fitted_at", "kwp",
    ]
)  # fmt: skip
NODE_LIKE = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**64), 2**64)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.sampled_from(["", A, HASH, "0xABABABABAB", "SIMPLE", "ok", "buy", "2026-11-24", "1.0"])
    | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(KEYS, inner, max_size=8),
    max_leaves=30,
)

type Decoder = Callable[[Any], object]


def _event(kind: str) -> Decoder:
    return lambda data: LedgerEvent(kind, data)


DECODERS: list[Decoder] = [
    NodeStatus.from_json,
    Balance.from_json,
    Participant.from_json,
    ContractRecord.from_json,
    ContractCheck.from_json,
    PriceSignal.from_json,
    DemandResponse.from_json,
    TxResult.from_json,
    LedgerEvent.from_json,
    NewBlock.from_json,
    WalletChange.from_json,
    lambda data: WalletRequest.from_event(LedgerEvent(EventKind.DEPOSIT_REQUESTED, data)),
    lambda data: WalletRequest.from_event(LedgerEvent(EventKind.WITHDRAWAL_PAID, data)),
    lambda data: WalletRequest.from_event(LedgerEvent(EventKind.WALLET_REQUEST_CANCELLED, data)),
    lambda data: ServiceChange.from_event(LedgerEvent(EventKind.SERVICE_CUT, data)),
    lambda data: ContractChange.from_event(LedgerEvent(EventKind.CONTRACT_SIGNED, data)),
    MarketResult.from_json,
    Settlements.from_json,
    Trade.from_json,
    ContractAction.from_json,
    ActionLogEntry.from_json,
    ActionResultReport.from_json,
    MeterReading.from_json,
    ForecastSummary.from_json,
    Forecast.from_json,
    Advice.from_json,
]


@given(st.dictionaries(KEYS, NODE_LIKE, max_size=14) | NODE_LIKE)
def test_decoders_raise_only_decode_error(data: Any) -> None:
    refusals: list[DecodeError] = []
    for decoder in DECODERS:
        try:
            decoder(data)
        except DecodeError as err:
            refusals.append(err)
    for refusal in refusals:
        assert str(refusal) == f"{refusal.field} {refusal.problem}"
        assert refusal.field
        assert refusal.problem


@given(st.text(max_size=300) | JSON.map(json.dumps) | NODE_LIKE.map(json.dumps))
def test_stream_messages_decode_or_raise_decode_error(raw: str) -> None:
    try:
        message = LedgerMessage.from_text(raw)
    except DecodeError:
        pass
    else:
        assert message.seq >= 1
        assert message.height >= 0
        assert isinstance(message.event.kind, str)
    try:
        local = LocalMessage.from_text(raw.encode())
    except DecodeError:
        return
    assert local.lseq >= 1
    assert isinstance(local.event.kind, str)


def test_deeply_nested_json_is_a_decode_error() -> None:
    with pytest.raises(DecodeError, match="is not JSON"):
        LedgerMessage.from_text("[" * 100_000 + "]" * 100_000)


STATUS = {"chain_id": "c", "height": 1, "participant": A, "validator": A, "api_version": "1.0"}


def test_a_status_decodes_with_its_version() -> None:
    status = NodeStatus.from_json(STATUS)
    assert status.api_version == ApiVersion(1, 0)
    assert (status.chain_id, status.height, status.participant, status.validator) == (
        "c",
        1,
        A,
        A,
    )
    assert NodeStatus.from_json(STATUS | {"validator": None}).validator is None
    assert (
        NodeStatus.from_json({k: v for k, v in STATUS.items() if k != "api_version"}).api_version
        is None
    )


@pytest.mark.parametrize(
    ("extra", "peers", "catching_up", "interval", "offset"),
    [
        ({}, None, None, 900, 0),
        ({"peers": -1, "catching_up": "yes", "interval_seconds": 30}, None, None, 900, 0),
        ({"peers": True, "interval_seconds": 3600}, None, None, 3600, 0),
        ({"utc_offset_minutes": -360}, None, None, 900, -360),
        ({"peers": 0, "catching_up": False, "interval_seconds": 300}, 0, False, 300, 0),
        ({"peers": {"count": 2, "list": [{"id": "p"}]}}, 2, None, 900, 0),
        ({"peers": {"count": -2, "list": None}}, None, None, 900, 0),
        ({"peers": {"list": []}}, None, None, 900, 0),
        ({"utc_offset_minutes": 15 * 60}, None, None, 900, 0),
        ({"utc_offset_minutes": "-06:00"}, None, None, 900, 0),
    ],
)  # fmt: skip
def test_optional_status_fields_are_used_only_when_sound(
    extra: dict[str, Any], peers: int | None, catching_up: bool | None, interval: int, offset: int
) -> None:
    status = NodeStatus.from_json(STATUS | extra)
    assert (status.peers, status.catching_up, status.interval_seconds) == (
        peers,
        catching_up,
        interval,
    )
    assert status.utc_offset_minutes == offset


DR = {
    "event_id": "pico",
    "modification_number": 0,
    "signal": {"name": "SIMPLE", "level": 1},
    "start": 100,
    "duration": 50,
    "targets": [],
    "cancelled": False,
}
# As the node's home agent publishes it (ActionRecord.to_event() plus action_id).
ACTION: dict[str, Any] = {
    "type": "contract_action",
    "action_id": 7,
    "time": 1795515300,
    "trigger": "price_signal",
    "contract_id": HASH,
    "short_id": "0xABABABABAB",
    "contract": "lavado barato",
    "action": "turn_on",
    "device": "Lavadora",
    "reason": "line 7: IF Price < 3 THEN",
    "description": "turn on 'Lavadora' (line 7: IF Price < 3 THEN)",
}
ORDER = {"interval_start": 1795516200, "side": "sell", "energy_wh": 350, "limit_price": 12000}
CLEARED = {
    "type": "interval_cleared",
    "interval_start": 1795515300,
    "status": "cleared",
    "price": 16000,
    "volume_wh": 2000,
    "bids": 1,
    "offers": 1,
    "trades": 1,
}
SUMMARY = {
    "date": "2026-11-24",
    "ready": True,
    "message": None,
    "measured_consumption_wh": 4200,
    "measured_production_wh": 3100,
    "consumption_today_wh": 9800,
    "production_today_wh": 5200,
    "consumption_tomorrow_wh": 10100,
    "production_tomorrow_wh": 4900,
}
RECORD = {
    "id": HASH,
    "short_id": "0xABABABABAB",
    "name": "lavado barato",
    "status": "active",
    "proposer": A,
    "signers": [A, B],
    "signed": [A],
    "source": "Contract 'lavado barato'\n",
}
SETTLEMENT = {
    "interval_start": 900,
    "amount": -125,
    **{f"{name}_wh": 10 for name in ("bought", "sold", "delivered", "shortfall", "import")},
    **{f"{name}_wh": 0 for name in ("export", "supplier_import", "supplier_export", "unused")},
    "import_price": 30000,
    "export_price": 10000,
    "lines": {"p2p_energy": -100, "network_fee": -25},
    "late_reports": 0,
}


@pytest.mark.parametrize(
    ("decoder", "data", "message"),
    [
        (NodeStatus.from_json, ["chain_id"], "the status must be a JSON object"),
        (NodeStatus.from_json, {"chain_id": "c"}, "height must be an integer"),
        (NodeStatus.from_json, STATUS | {"participant": "casa"}, "participant must be an address"),
        (NodeStatus.from_json, STATUS | {"api_version": "uno"}, "api_version must be MAJOR.MINOR"),
        (Balance.from_json, {"balance": "lots"}, "balance must be an integer"),
        (Balance.from_json, {"balance": 1, "held": -1}, "held must be an integer"),
        (
            Participant.from_json,
            {"address": A, "role": "operator", "status": "active", "roles": [1]},
            "roles",
        ),
        (
            ContractRecord.from_json,
            RECORD | {"signers": "all"},
            "signers must be a list of addresses",
        ),
        (ContractRecord.from_json, RECORD | {"short_id": "0xabc"}, "short_id must be 0x and 10"),
        (
            ContractCheck.from_json,
            {"valid": False, "diagnostics": [{"severity": "fatal"}]},
            "diagnostics[0].severity must be one of error, warning",
        ),
        (ContractCheck.from_json, {"valid": True, "diagnostics": [], "parties": [7]}, "parties"),
        (
            PriceSignal.from_json,
            {"interval_start": 0, "import_price": 1, "export_price": 1},
            "network_fee",
        ),
        (DemandResponse.from_json, DR | {"signal": "SIMPLE"}, "signal must be a JSON object"),
        (
            DemandResponse.from_json,
            DR | {"signal": {"name": "LOAD"}},
            "signal.name must be one of SIMPLE, ELECTRICITY_PRICE, LOAD_DISPATCH",
        ),
        (
            DemandResponse.from_json,
            DR | {"signal": {"name": "SIMPLE", "level": 4}},
            "signal.level",
        ),
        (
            DemandResponse.from_json,
            DR | {"signal": {"name": "LOAD_DISPATCH"}},
            "exactly one of setpoint_w and delta_w",
        ),
        (
            DemandResponse.from_json,
            DR | {"signal": {"name": "LOAD_DISPATCH", "setpoint_w": -1}},
            "signal.setpoint_w",
        ),
        (DemandResponse.from_json, DR | {"targets": ["nadie"]}, "targets"),
        (DemandResponse.from_json, DR | {"cancelled": "no"}, "cancelled"),
        (DemandResponse.from_json, DR | {"duration": 0}, "duration"),
        (DemandResponse.from_json, DR | {"ramp_up": 86401}, "ramp_up"),
        (DemandResponse.from_json, DR | {"event_id": " pico"}, "event_id"),
        (TxResult.from_json, {"id": "x", "status": "pending"}, "id must be 64 hex digits"),
        (TxResult.from_json, {"id": HASH, "status": "committed", "code": 5}, "code must be"),
        (
            TxResult.from_json,
            {"id": HASH, "status": "lost"},
            "status must be one of pending, committed",
        ),
        (
            TxResult.from_json,
            {"id": HASH, "status": "committed", "events": [{"tx": HASH}]},
            "events[0].type",
        ),
        (ContractAction.from_json, ACTION | {"contract_id": "zz"}, "64 hex digits"),
        (ContractAction.from_json, ACTION | {"device": ""}, "device"),
        (ContractAction.from_json, ACTION | {"device": 7}, "device"),
        (ContractAction.from_json, ACTION | {"reason": 7}, "reason"),
        (ContractAction.from_json, ACTION | {"action_id": 0}, "action_id"),
        (ContractAction.from_json, ACTION | {"action": ""}, "action must be a name"),
        (ContractAction.from_json, ACTION | {"order": [1]}, "order must be a JSON object"),
        (
            ContractAction.from_json,
            ACTION | {"order": ORDER | {"side": "hold"}},
            "order.side must be one of buy, sell",
        ),
        (
            ContractAction.from_json,
            ACTION | {"order": ORDER | {"energy_wh": 0}},
            "order.energy_wh",
        ),
        (ActionLogEntry.from_json, ACTION | {"result": "done"}, "result must be one of"),
        (ActionLogEntry.from_json, ACTION | {"result": "ok", "detail": 5}, "detail"),
        (ActionResultReport.from_json, {"action_id": 7}, "result must be one of"),
        (MarketResult.from_json, CLEARED | {"price": "1.6"}, "price"),
        (MarketResult.from_json, CLEARED | {"volume_wh": -1}, "volume_wh"),
        (
            Settlements.from_json,
            {"debt": 0, "settlements": [SETTLEMENT | {"lines": {"p2p_energy": 1.5}}]},
            "settlements[0].lines.p2p_energy",
        ),
        (Settlements.from_json, {"debt": "mucho", "settlements": []}, "debt"),
        (Settlements.from_json, {"settlements": "none"}, "settlements must be a list"),
        (Trade.from_json, {"interval_start": 0, "side": "both"}, "side"),
        (WalletChange.from_json, {"participant": A, "delta": 5, "why": ""}, "why"),
        (ForecastSummary.from_json, [], "a forecast summary must be a JSON object"),
        (ForecastSummary.from_json, SUMMARY | {"ready": "yes"}, "ready"),
        (ForecastSummary.from_json, SUMMARY | {"date": "24/11/2026"}, "ISO date"),
        (ForecastSummary.from_json, SUMMARY | {"date": 20261124}, "ISO date"),
        (
            ForecastSummary.from_json,
            SUMMARY | {"consumption_today_wh": None},
            "consumption_today_wh",
        ),
        (Forecast.from_json, {"series": [{"start": 0}]}, "series[0].consumption_wh"),
        (
            Advice.from_json,
            {"generated_at": 0, "items": [{"id": "a", "title": {"en": 1}}]},
            "items[0].title.en",
        ),
        (MeterReading.from_json, [], "a meter reading must be a JSON object"),
        (MeterReading.from_json, {"phases": [{"phase": "1"}, {"phase": "1"}]}, "repeat"),
        (MeterReading.from_json, {"phases": [1]}, "phases[0] must be a JSON object"),
        (
            MeterReading.from_json,
            {"phases": [{"phase": True}]},
            "phases[0].phase must be a name or number",
        ),
        (
            MeterReading.from_json,
            {"phases": [{"phase": 1, "voltage": "230"}]},
            "phases[0].voltage must be a number",
        ),
        (MeterReading.from_json, {"phases": [{}] * 4}, "at most 3 phases"),
        (MeterReading.from_json, {"power": 10**16}, "out of range"),
        (MeterReading.from_json, {"power": 1e300}, "finite"),
        (MeterReading.from_json, {"power": "1"}, "number"),
        (MeterReading.from_json, {"import_wh_total": -1}, "below zero"),
        (MeterReading.from_json, {"last_interval": 5}, "object or null"),
        (MeterReading.from_json, {"service": "maybe"}, "service"),
        (LedgerMessage.from_text, '{"seq": 1, "height": 1, "event": {"type": 5}}', "event.type"),
        (LedgerMessage.from_text, '{"seq": 0, "height": 1, "event": {"type": "trade"}}', "seq"),
        (LocalMessage.from_text, '{"lseq": 1, "event": []}', "event must be a JSON object"),
        (LocalMessage.from_text, "nada", "the message is not JSON"),
    ],
)
def test_decoders_say_what_is_wrong_and_where(decoder: Decoder, data: Any, message: str) -> None:
    with pytest.raises(DecodeError, match=re.escape(message)):
        decoder(data)


def test_a_valid_demand_response_round_trips() -> None:
    record = {
        "event_id": "pico",
        "modification_number": 2,
        "signal": {"name": "SIMPLE", "level": 3},
        "start": 100,
        "duration": 50,
        "targets": [A],
        "cancelled": False,
    }
    event = DemandResponse.from_json(record)
    assert event.to_json() == record
    assert (event.signal, event.level, event.price) == (SignalName.SIMPLE, 3, None)
    assert event.active(100)
    assert not event.active(150)
    assert event.concerns(A)
    assert not event.concerns(B)
    assert DemandResponse.from_json(record | {"targets": []}).concerns(B)
    # The node's dispatch signals and ramps, as the concentrator sends them.
    dispatch = record | {
        "signal": {"name": "LOAD_DISPATCH", "delta_w": -1500},
        "ramp_up": 600,
        "recovery": 300,
    }
    decoded = DemandResponse.from_json(dispatch | {"height": 9, "issuer": A, "tx": HASH})
    assert (decoded.signal, decoded.delta_w, decoded.setpoint_w) == (
        SignalName.LOAD_DISPATCH,
        -1500,
        None,
    )
    assert decoded.to_json() == dispatch
    price = DemandResponse.from_json(
        record | {"signal": {"name": "ELECTRICITY_PRICE", "price": 45000}}
    )
    assert price.price == 45000
    cancelled = DemandResponse.from_json(record | {"cancelled": True})
    assert not cancelled.active(120)


def test_the_nodes_contract_actions_and_results_decode() -> None:
    action = ContractAction.from_json(ACTION)
    assert (action.action_id, action.time, action.trigger) == (7, 1795515300, "price_signal")
    assert action.trigger is ActionTrigger.PRICE_SIGNAL
    assert action.action is ActionKind.TURN_ON
    assert (action.contract, action.device, action.text, action.order) == (
        "lavado barato",
        "Lavadora",
        None,
        None,
    )
    notify = ContractAction.from_json(
        ACTION | {"action": "notify", "device": None, "text": "¡Barato!"}
    )
    assert (notify.device, notify.text) == (None, "¡Barato!")
    sell = ContractAction.from_json(
        ACTION | {"action": "sell_surplus", "device": None, "order": ORDER}
    )
    assert sell.order is not None
    assert sell.order.to_json() == ORDER
    assert sell.order.side is OrderSide.SELL
    future = ContractAction.from_json(ACTION | {"action": "charge_car", "trigger": "ev_plugged"})
    assert (future.action, future.trigger) == ("charge_car", "ev_plugged")
    # A log row has the result; an action nobody reported on has none yet.
    failed = ActionLogEntry.from_json(ACTION | {"result": "failed", "detail": "x" * 900})
    assert (failed.action, failed.result, failed.detail) == (action, ActionResult.FAILED, "x" * 500)
    assert ActionLogEntry.from_json(ACTION | {"result": None}) == ActionLogEntry(action, None, "")
    report = ActionResultReport.from_json(
        {"type": "contract_action_result", "action_id": 7, "result": "unmapped"}
    )
    assert report == ActionResultReport(7, ActionResult.UNMAPPED, "")


def test_market_results_settlements_and_trades_decode() -> None:
    cleared = MarketResult.from_json(CLEARED)
    assert (cleared.price, cleared.volume_wh, cleared.cleared) == (16000, 2000, True)
    assert cleared.status is IntervalStatus.CLEARED
    unpriced = MarketResult.from_json(
        {"interval_start": 0, "status": "unpriced", "bids": 2, "offers": 0}
    )
    assert (unpriced.price, unpriced.volume_wh, unpriced.cleared) == (None, None, False)
    settled = MarketResult.from_json({"interval_start": 0, "status": "settled", "volume_wh": 0})
    assert (settled.cleared, settled.trades) == (True, 0)
    bills = Settlements.from_json({"debt": 300, "settlements": [SETTLEMENT]})
    (bill,) = bills.settlements
    assert (bills.debt, bill.start, bill.amount, bill.energy_wh["bought"]) == (300, 900, -125, 10)
    assert bill.lines == {WalletReason.P2P_ENERGY: -100, "network_fee": -25}
    trade = Trade.from_json(
        {
            "side": "buy",
            "interval_start": 900,
            "index": 0,
            "buyer": A,
            "seller": B,
            "energy_wh": 500,
            "price": 16000,
            "payment": 80,
            "fee": 21,
            "buy_order": HASH,
            "sell_order": HASH,
        }
    )
    assert (trade.side, trade.energy_wh, trade.payment, trade.fee) == (OrderSide.BUY, 500, 80, 21)


def test_forecasts_and_advice_decode() -> None:
    summary = ForecastSummary.from_json(SUMMARY)
    assert summary.totals["production_tomorrow_wh"] == 4900
    assert summary.date == date(2026, 11, 24)
    waiting = ForecastSummary.from_json(
        {**SUMMARY, "ready": False, "consumption_today_wh": None, "message": "y" * 900}
    )
    assert (waiting.ready, waiting.totals, waiting.message) == (False, {}, "y" * 500)
    columns = {
        f"{what}_{stat}": 10
        for what in ("consumption", "production")
        for stat in ("wh", "p10", "p90", "mean")
    }
    forecast = Forecast.from_json(
        {
            "origin": 0,
            "interval_seconds": 900,
            "fitted_at": None,
            "kwp": 3.2,
            "series": [{"start": 900, **columns}],
        }
    )
    assert (forecast.kwp, forecast.fitted_at, forecast.series[0].values) == (3.2, None, columns)
    advice = Advice.from_json(
        {
            "generated_at": 5,
            "items": [
                {
                    "id": "shift",
                    "title": {"en": "Shift", "es": "Mueve"},
                    "detail": {"en": "d", "es": "d"},
                    "centavos": 1200,
                    "mxn": 12.0,
                    "period_days": 30,
                    "evidence": {"kwh": 3},
                }
            ],
        }
    )
    assert advice.items[0].title["es"] == "Mueve"
    assert advice.items[0].evidence == {"kwh": 3}


def test_accounts_contracts_and_checks_decode() -> None:
    assert Balance.from_json({"balance": 1250}) == Balance(1250, 0, 0)
    operator = Participant.from_json(
        {"address": A, "role": "operator", "status": "active", "roles": ["ISO", "DSO"]}
    )
    assert (operator.role, operator.roles) == ("operator", ("ISO", "DSO"))
    assert operator.service_connected is True  # a 1.0 node does not say
    cut = Participant.from_json(
        {"address": A, "role": "prosumer", "status": "active", "service_connected": False}
    )
    assert cut.service_connected is False
    record = ContractRecord.from_json(RECORD | {"receipt": "Timestamp ..."})
    assert (record.contract_id, record.signers, record.signed) == (HASH, (A, B), (A,))
    check = ContractCheck.from_json(
        {
            "valid": False,
            "ok": False,
            "diagnostics": [
                {
                    "severity": "error",
                    "line": 3,
                    "column": 1,
                    "message": "m",
                    "expected": None,
                    "hint": "h",
                },
                {
                    "severity": "warning",
                    "line": 1,
                    "column": 1,
                    "message": "w",
                    "expected": "x",
                    "hint": None,
                },
            ],
        }
    )
    (error,) = check.of_severity(Severity.ERROR)
    assert error.to_json() == {
        "line": 3,
        "column": 1,
        "message": "m",
        "expected": None,
        "hint": "h",
    }
    assert check.contract_id is None


def test_ledger_events_and_their_payloads_decode() -> None:
    message = LedgerMessage.from_text(
        json.dumps(
            {
                "seq": 4,
                "height": 2,
                "event": {
                    "type": "wallet_change",
                    "participant": A,
                    "delta": -5,
                    "why": "transfer",
                    "tx": HASH,
                },
            }
        )
    )
    assert (message.seq, message.height, message.event.kind) == (4, 2, EventKind.WALLET_CHANGE)
    change = WalletChange.from_json(message.event.data)
    assert change == WalletChange(A, -5, WalletReason.TRANSFER)
    unknown = LedgerMessage.from_text('{"seq": 5, "height": 2, "event": {"type": "a_new_kind"}}')
    assert unknown.event.kind == "a_new_kind"
    block = NewBlock.from_json({"type": "new_block", "height": 3, "time": 1700000000, "hash": "h"})
    assert block == NewBlock(3, 1700000000)
    requested = WalletRequest.from_event(
        LedgerEvent(EventKind.WITHDRAWAL_REQUESTED, {"request": HASH, "participant": A})
    )
    assert requested == WalletRequest(A, HASH)
    cut = ServiceChange.from_event(LedgerEvent(EventKind.SERVICE_CUT, {"participant": A}))
    back = ServiceChange.from_event(LedgerEvent(EventKind.SERVICE_RECONNECTED, {"participant": A}))
    assert (cut.connected, back.connected) == (False, True)
    signed = ContractChange.from_event(
        LedgerEvent(EventKind.CONTRACT_SIGNED, {"contract_id": HASH, "party": B})
    )
    assert (signed.contract_id, signed.party) == (HASH, B)
    result = TxResult.from_json(
        {
            "id": HASH,
            "status": "committed",
            "height": 3,
            "code": "ok",
            "message": "",
            "events": [{"type": "contract_proposed", "contract_id": HASH, "tx": HASH}],
        }
    )
    assert result.ok
    proposed = result.first(EventKind.CONTRACT_PROPOSED)
    assert proposed is not None
    assert proposed.data["contract_id"] == HASH
    assert result.first(EventKind.TRADE) is None
    refused = TxResult.from_json({"id": HASH, "status": "committed", "code": "late_report"})
    assert (refused.ok, refused.code) == (False, "late_report")
    assert TxResult.from_json({"id": HASH, "status": "pending"}).status is TxStatus.PENDING
    local = LocalMessage.from_text(json.dumps({"lseq": 2, "event": ACTION}))
    assert local.event.kind is LocalEventKind.CONTRACT_ACTION


def test_meter_readings_decode_and_pushed_ones_encode() -> None:
    reading = MeterReading.from_json(
        {
            "time": "2026-11-24T12:00:00+00:00",
            "source": "smartpi",
            "phases": [{"phase": 1, "voltage": 230.1, "current": 2, "power": 460}],
            "power": -250,
            "import_wh_total": 750,
            "last_interval": {"interval_start": 900, "import_wh": 12, "export_wh": 0},
            "service": "cut",
        }
    )
    assert reading.time == datetime(2026, 11, 24, 12, tzinfo=UTC)
    assert (reading.phases[0].phase, reading.phases[0].voltage, reading.phases[0].frequency) == (
        "1",
        230.1,
        None,
    )
    assert (reading.power, reading.service, reading.last_interval) == (
        -250.0,
        False,
        reading.last_interval,
    )
    assert MeterReading.from_json({"time": "ayer", "service": "unknown"}).time is None
    assert MeterReading.from_json({"service": True}).service is True
    moment = datetime(2026, 11, 24, 12, tzinfo=UTC)
    pushed = PushedReading(moment, power=-250.0, export_kwh_total=2.5)
    assert pushed.to_json() == {
        "time": moment.isoformat(),
        "power": -250.0,
        "export_kwh_total": 2.5,
    }
    assert not pushed.empty
    assert PushedReading(moment).empty
