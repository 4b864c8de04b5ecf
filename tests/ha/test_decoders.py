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

from custom_components.transactiva.api import TransactivaConnectionError, parse_status
from custom_components.transactiva.events import (
    EventError,
    contract_action,
    contract_info,
    decode_message,
    demand_response,
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
@given(st.dictionaries(KEYS, NODE_LIKE, max_size=12))
def test_event_decoders_raise_only_event_error(data: dict[str, Any]) -> None:
    for decoder in (price_row, demand_response, contract_action, parse_reading):
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
ACTION = {"contract_id": "ab" * 32, "short_id": "0xABABABABAB", "action": "turn_on"}


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


def test_a_contract_action_without_device_or_reason_is_still_one() -> None:
    action = contract_action(ACTION)
    assert (action.device, action.reason) == (None, "")
    assert contract_action(ACTION | {"reason": "x" * 5000}).reason == "x" * 1000


def test_contract_records_without_lists_are_refused() -> None:
    with pytest.raises(EventError, match="lists"):
        contract_info("ab" * 32, {"signers": "all", "signed": []})
