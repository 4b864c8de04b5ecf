"""Property tests of the integration's pure code: exact unit conversion and every decoder of
what the node (or anything at its address) sends."""

from __future__ import annotations

import contextlib
import json
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from custom_components.transactiva.actions import (
    DEVICE_ACTIONS,
    Decision,
    Logged,
    plan_catch_up,
)
from custom_components.transactiva.analytics import parse_summary
from custom_components.transactiva.api import TransactivaConnectionError, parse_status
from custom_components.transactiva.events import (
    EventError,
    action_result,
    contract_action,
    contract_info,
    decode_local_message,
    decode_message,
    demand_response,
    market_result,
    price_row,
)
from custom_components.transactiva.meter import parse_reading
from custom_components.transactiva.units import NotExactError, money, price, scale_exact

SETTINGS = settings(
    suppress_health_check=[HealthCheck.function_scoped_fixture], max_examples=300, deadline=None
)
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
        "type", "seq", "height", "event", "interval_start", "import_price", "export_price",
        "network_fee", "event_id", "modification_number", "signal", "name", "level", "price",
        "start", "duration", "targets", "cancelled", "contract_id", "short_id", "device",
        "action", "reason", "phases", "phase", "voltage", "power", "import_wh_total",
        "last_interval", "import_wh", "export_wh", "service", "source", "signers", "signed",
        "status", "proposer", "chain_id", "participant", "validator", "peers",
        "lseq", "action_id", "time", "trigger", "contract", "description", "text", "order",
        "side", "energy_wh", "limit_price", "result", "detail", "volume_wh", "bids", "offers",
        "trades", "ready", "date", "message", "measured_consumption_wh",
        "measured_production_wh", "consumption_today_wh", "utc_offset_minutes",
        "interval_seconds",
    ]
)  # fmt: skip
NODE_LIKE = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**64), 2**64) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(KEYS, inner, max_size=8),
    max_leaves=30,
)


@SETTINGS
@given(st.integers(min_value=-(10**15), max_value=10**15), st.integers(min_value=0, max_value=6))
def test_exact_values_convert_to_the_same_integer(units: int, decimals: int) -> None:
    value = Decimal(units).scaleb(-decimals)
    assert scale_exact(value, decimals) == units
    assert scale_exact(str(value), decimals) == units
    assert scale_exact(format(value, "f"), decimals) == units


@SETTINGS
@given(st.integers(min_value=-(10**12), max_value=10**12))
def test_cents_as_floats_convert_exactly(centavos: int) -> None:
    assert scale_exact(centavos / 100, 2) == centavos
    assert money(centavos) == Decimal(centavos) / 100
    assert price(centavos) == Decimal(centavos) / 10000


@SETTINGS
@given(st.integers(min_value=1, max_value=10**9), st.integers(min_value=0, max_value=4))
def test_finer_values_are_refused_not_rounded(units: int, decimals: int) -> None:
    finer = Decimal(units * 10 + 1).scaleb(-(decimals + 1))
    with pytest.raises(NotExactError):
        scale_exact(finer, decimals)


@SETTINGS
@given(JSON | st.text())
def test_anything_converts_or_is_refused(value: Any) -> None:
    try:
        result = scale_exact(value, 2)
    except NotExactError:
        return
    assert isinstance(result, int)


@pytest.mark.parametrize("value", ["1e999999999", "-1e-999999999", "NaN", "inf", True, None])
def test_extreme_numbers_are_refused_quickly(value: object) -> None:
    if value == "-1e-999999999":
        with pytest.raises(NotExactError):
            scale_exact(value, 2)
        return
    with pytest.raises(NotExactError):
        scale_exact(value, 2)


@SETTINGS
@given(st.text(max_size=300) | JSON.map(json.dumps))
def test_stream_messages_decode_or_raise_event_error(raw: str) -> None:
    try:
        seq, height, event = decode_message(raw)
    except EventError:
        return
    assert seq >= 1
    assert height >= 0
    assert isinstance(event["type"], str)


@SETTINGS
@given(st.text(max_size=300) | JSON.map(json.dumps))
def test_local_stream_messages_decode_or_raise_event_error(raw: str) -> None:
    try:
        lseq, event = decode_local_message(raw)
    except EventError:
        return
    assert lseq >= 1
    assert isinstance(event["type"], str)


@SETTINGS
@given(st.dictionaries(KEYS, NODE_LIKE, max_size=12))
def test_event_decoders_raise_only_event_error(data: dict[str, Any]) -> None:
    for decoder in (
        price_row,
        demand_response,
        contract_action,
        action_result,
        market_result,
        parse_reading,
        parse_summary,
    ):
        with contextlib.suppress(EventError):
            decoder(data)
    with contextlib.suppress(EventError):
        contract_info("ab" * 32, data)
    try:
        status = parse_status(data)
    except TransactivaConnectionError:
        return
    assert status.height >= 0


def test_a_valid_demand_response_round_trips() -> None:
    record = {
        "event_id": "pico",
        "modification_number": 2,
        "signal": {"name": "SIMPLE", "level": 3},
        "start": 100,
        "duration": 50,
        "targets": ["tv" + "a" * 40],
        "cancelled": False,
    }
    event = demand_response(record)
    assert event.to_json() == record
    assert event.active(100)
    assert not event.active(150)
    assert event.concerns("tv" + "a" * 40)
    assert not event.concerns("tv" + "b" * 40)
    assert demand_response(record | {"targets": []}).concerns("tv" + "b" * 40)


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
    "contract_id": "ab" * 32,
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


@pytest.mark.parametrize(
    ("decoder", "data", "message"),
    [
        (demand_response, DR | {"signal": "SIMPLE"}, "signal must be an object"),
        (demand_response, DR | {"signal": {"name": "LOAD"}}, "SIMPLE or ELECTRICITY_PRICE"),
        (demand_response, DR | {"signal": {"name": "SIMPLE", "level": 4}}, "level"),
        (demand_response, DR | {"targets": ["nadie"]}, "targets"),
        (demand_response, DR | {"cancelled": "no"}, "cancelled"),
        (demand_response, DR | {"duration": 0}, "duration"),
        (contract_action, ACTION | {"contract_id": "zz"}, "64 hex digits"),
        (contract_action, ACTION | {"device": ""}, "device"),
        (contract_action, ACTION | {"device": 7}, "device"),
        (contract_action, ACTION | {"reason": 7}, "reason"),
        (contract_action, ACTION | {"action_id": 0}, "action_id"),
        (contract_action, ACTION | {"order": [1]}, "order must be an object"),
        (contract_action, ACTION | {"order": ORDER | {"side": "hold"}}, "buy or sell"),
        (contract_action, ACTION | {"order": ORDER | {"energy_wh": 0}}, "energy_wh"),
        (action_result, {"result": "done"}, "result must be one of"),
        (action_result, {"result": "ok", "detail": 5}, "detail"),
        (market_result, CLEARED | {"price": "1.6"}, "price"),
        (market_result, CLEARED | {"volume_wh": -1}, "volume_wh"),
        (parse_summary, [], "JSON object"),
        (parse_summary, SUMMARY | {"ready": "yes"}, "ready"),
        (parse_summary, SUMMARY | {"date": "24/11/2026"}, "ISO date"),
        (parse_summary, SUMMARY | {"date": 20261124}, "ISO date"),
        (parse_summary, SUMMARY | {"consumption_today_wh": None}, "consumption_today_wh"),
        (price_row, {"interval_start": 0, "import_price": 1, "export_price": 1}, "network_fee"),
        (parse_reading, [], "JSON object"),
        (parse_reading, {"phases": [{"phase": "1"}, {"phase": "1"}]}, "repeat"),
        (parse_reading, {"phases": [1]}, "each phase is an object"),
        (parse_reading, {"phases": [{"phase": True}]}, "name or number"),
        (parse_reading, {"power": 10**16}, "out of range"),
        (parse_reading, {"power": 1e300}, "finite"),
        (parse_reading, {"power": "1"}, "number"),
        (parse_reading, {"import_wh_total": -1}, "below zero"),
        (parse_reading, {"last_interval": 5}, "object or null"),
        (parse_reading, {"service": "maybe"}, "service"),
    ],
)
def test_decoders_say_what_is_wrong(decoder: Any, data: Any, message: str) -> None:
    with pytest.raises(EventError, match=message):
        decoder(data)


def test_the_nodes_contract_actions_and_results_decode() -> None:
    action = contract_action(ACTION)
    assert (action.action_id, action.time, action.trigger) == (7, 1795515300, "price_signal")
    assert (action.contract, action.device, action.text, action.order) == (
        "lavado barato",
        "Lavadora",
        None,
        None,
    )
    notify = contract_action(ACTION | {"action": "notify", "device": None, "text": "¡Barato!"})
    assert (notify.device, notify.text) == (None, "¡Barato!")
    sell = contract_action(ACTION | {"action": "sell_surplus", "device": None, "order": ORDER})
    assert sell.order == ORDER
    # A log row has the result; an action nobody reported on has none yet.
    failed = ACTION | {"result": "failed", "detail": "x" * 900}
    assert action_result(failed) == ("failed", "x" * 500)
    assert action_result(ACTION | {"result": None}) == (None, "")


def test_market_results_and_forecast_summaries_decode() -> None:
    cleared = market_result(CLEARED)
    assert (cleared.price, cleared.volume_wh, cleared.cleared) == (16000, 2000, True)
    unpriced = market_result({"interval_start": 0, "status": "unpriced", "bids": 2, "offers": 0})
    assert (unpriced.price, unpriced.volume_wh, unpriced.cleared) == (None, None, False)
    settled = market_result({"interval_start": 0, "status": "settled", "volume_wh": 0})
    assert (settled.cleared, settled.trades) == (True, 0)
    summary = parse_summary(SUMMARY)
    assert summary.totals["production_tomorrow_wh"] == 4900
    assert summary.date.isoformat() == "2026-11-24"
    waiting = parse_summary({**SUMMARY, "ready": False, "consumption_today_wh": None})
    assert (waiting.ready, waiting.totals) == (False, {})


def test_contract_records_without_lists_are_refused() -> None:
    with pytest.raises(EventError, match="lists"):
        contract_info("ab" * 32, {"signers": "all", "signed": []})


DEVICES = st.sampled_from(["Lavadora", "Bomba", "Clima", None])
KINDS = st.sampled_from(["turn_on", "turn_off", "restore", "notify", "sell_surplus"])
RESULT = st.sampled_from([None, "ok", "failed", "unmapped", "skipped"])


@st.composite
def action_logs(draw: st.DrawFn) -> list[Logged]:
    """Rows of a node's action log: distinct ids, any devices, kinds and results."""
    ids = draw(st.lists(st.integers(1, 60), unique=True, max_size=25))
    rows = []
    for n in ids:
        row = ACTION | {"action_id": n, "device": draw(DEVICES), "action": draw(KINDS)}
        rows.append(Logged(contract_action(row), draw(RESULT), ""))
    return rows


@SETTINGS
@given(action_logs(), st.none() | st.integers(0, 70))
def test_catching_up_carries_out_each_devices_newest_missed_action_once(
    logged: list[Logged], handled: int | None
) -> None:
    steps = plan_catch_up(logged, handled)
    ids = [item.action.action_id for item, _, _ in steps]
    assert ids == sorted(ids)
    newest = max(ids, default=0)
    if handled is None or (logged and max(i.action.action_id for i in logged) < handled):
        # The first meeting (or a replaced log): the newest row is shown, nothing is done.
        assert [decision for _, decision, _ in steps] == ([Decision.HISTORY] if logged else [])
        assert newest == max((i.action.action_id for i in logged), default=0)
        return
    missed = [item for item in logged if item.action.action_id > handled]
    assert sorted(ids) == sorted(item.action.action_id for item in missed)
    carried: set[str] = set()
    for item, decision, newer in steps:
        action = item.action
        same_device = [
            other.action.action_id
            for other in missed
            if other.action.device == action.device and other.action.action in DEVICE_ACTIONS
        ]
        if decision is Decision.CARRY_OUT:
            assert action.device is not None
            assert action.action in DEVICE_ACTIONS
            assert item.result in (None, "skipped")
            assert action.action_id == max(same_device)
            assert action.device not in carried
            carried.add(action.device)
        elif decision is Decision.SUPERSEDED:
            assert action.action in DEVICE_ACTIONS
            assert newer == max(same_device) > action.action_id
        else:
            assert newer is None
            switching = action.device is not None and action.action in DEVICE_ACTIONS
            assert not switching or item.result not in (None, "skipped")
