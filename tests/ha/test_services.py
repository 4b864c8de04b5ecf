"""The integration's actions against a real node: contracts, wallet, market, operators."""

from __future__ import annotations

import asyncio
import re
import time
from typing import Any

import pytest
from conftest import (
    CONTRACT,
    RealNode,
    call_action,
    entity_id,
    local,
    register_neighbour,
    setup_entry,
    wait_for_state,
)
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import HomeAssistantError, ServiceValidationError
from homeassistant.util import dt as dt_util

from custom_components.transactiva.const import DOMAIN


async def test_contracts_are_validated_submitted_signed_and_revoked(
    hass: HomeAssistant, transactiva_node: RealNode
) -> None:
    node = transactiva_node
    neighbour = await register_neighbour(hass, node, "vecino")
    entry = await setup_entry(hass, node.url, node)

    syntax = CONTRACT.replace("Store false", "Stor false")
    answer = await call_action(hass, "validate_contract", entry, source=syntax)
    assert [(e["line"], e["column"]) for e in answer["errors"]] == [(5, 1)]
    broken = CONTRACT.replace("2030/12/31", "2030/02/30")
    answer = await call_action(hass, "validate_contract", entry, source=broken)
    assert answer["valid"] is False
    assert answer["contract_id"] is None
    assert [(e["line"], e["column"]) for e in answer["errors"]] == [(2, 35)]
    assert "28 days" in answer["errors"][0]["message"]

    loose = CONTRACT.replace("Consumption true", "consumption TRUE   # siempre")
    answer = await call_action(hass, "validate_contract", entry, source=loose)
    assert answer["valid"] is True
    assert answer["errors"] == []
    assert answer["canonical"] == CONTRACT
    assert answer["short_id"] == "0x" + answer["contract_id"][:10].upper()

    with pytest.raises(ServiceValidationError) as refused:
        await call_action(hass, "submit_contract", entry, source=broken)
    assert refused.value.translation_key == "invalid_contract"
    placeholders = refused.value.translation_placeholders or {}
    assert (placeholders["line"], placeholders["column"]) == ("2", "35")
    assert placeholders["count"] == "1"
    assert "calendar date" in placeholders["message"]

    # Parties: ISO only, and this node is the ISO: active at once, with the paper's receipt.
    submitted = await call_action(hass, "submit_contract", entry, source=loose)
    assert submitted["status"] == "active"
    assert submitted["receipt"].startswith("Timestamp 20")
    assert submitted["receipt"].endswith(f"to 'lavado barato' [{submitted['short_id']}]")
    contract_entity = "sensor.transactiva_contracts_contract_lavado_barato"
    state = await wait_for_state(hass, contract_entity, "active")
    assert state.attributes["short_id"] == submitted["short_id"]
    assert state.attributes["valid_from"] == "2026/01/01 00:00:00"
    assert state.attributes["valid_to"] == "2030/12/31 23:59:59"
    assert state.attributes["role"] == "proposer"
    assert state.attributes["signatures"] == "1/1"

    with pytest.raises(ServiceValidationError) as refused:
        await call_action(hass, "submit_contract", entry, source=loose)
    assert refused.value.translation_key == "node_refused"
    assert refused.value.translation_placeholders["code"] == "duplicate_contract"

    # The neighbour proposes a contract that this home must sign too (ISO is this node).
    theirs = CONTRACT.replace("lavado barato", "excedente vecinal")
    canonical = (await call_action(hass, "validate_contract", entry, source=theirs))["canonical"]
    await neighbour.send(hass, node, "contract_propose", {"source": canonical})
    pending = "sensor.transactiva_contracts_contract_excedente_vecinal"
    state = await wait_for_state(hass, pending, "proposed")
    assert state.attributes["role"] == "party"
    assert state.attributes["signatures"] == "1/2"
    signed = await call_action(
        hass, "sign_contract", entry, contract=state.attributes["short_id"].lower()
    )
    assert signed["status"] == "active"
    assert signed["receipt"].endswith(f"[{state.attributes['short_id']}]")
    await wait_for_state(hass, pending, "active")
    assert hass.states.get(pending).attributes["signatures"] == "2/2"  # type: ignore[union-attr]

    revoked = await call_action(
        hass, "revoke_contract", entry, contract=submitted["contract_id"].upper()
    )
    assert revoked["status"] == "revoked"
    await wait_for_state(hass, contract_entity, "revoked")

    # A contract between others does not become an entity here.
    alone = CONTRACT.replace("lavado barato", "solo vecino").replace(
        "Parties: ISO", f"Parties: '{neighbour.address}'"
    )
    alone = (await call_action(hass, "validate_contract", entry, source=alone))["canonical"]
    await neighbour.send(hass, node, "contract_propose", {"source": alone})
    await hass.async_block_till_done()
    assert hass.states.get("sensor.transactiva_contracts_contract_solo_vecino") is None
    assert len(entry.runtime_data.coordinator.data.contracts) == 2

    for unknown in ("0x0000000000", "nada"):
        with pytest.raises(ServiceValidationError) as refused:
            await call_action(hass, "sign_contract", entry, contract=unknown)
        assert refused.value.translation_key == "unknown_contract"
    with pytest.raises(ServiceValidationError) as refused:
        await call_action(hass, "sign_contract", entry, contract=signed["contract_id"])
    assert refused.value.translation_key == "not_awaiting_signature"
    assert "active" in refused.value.translation_placeholders["message"]


async def test_wallet_actions_convert_amounts_exactly(
    hass: HomeAssistant, transactiva_node: RealNode
) -> None:
    node = transactiva_node
    neighbour = await register_neighbour(hass, node, "vecino")
    entry = await setup_entry(hass, node.url, node)
    balance_id = entity_id(hass, "sensor", node, "wallet_balance")

    deposit = await call_action(hass, "deposit", entry, amount=150.5, reference="recibo 7")
    assert deposit["status"] == "committed"
    await local(hass, node, "deposit_confirm", {"request": deposit["transaction"]})
    await wait_for_state(hass, balance_id, "150.50")

    await call_action(hass, "withdraw", entry, amount="20")
    await wait_for_state(hass, balance_id, "130.50")
    transfer = await call_action(
        hass, "transfer", entry, to=neighbour.address, amount=1.23, memo="luz"
    )
    assert transfer["height"] >= 1
    await wait_for_state(hass, balance_id, "129.27")
    assert hass.states.get(entity_id(hass, "sensor", node, "spending_today")).state == "1.23"  # type: ignore[union-attr]

    cases: list[tuple[dict[str, Any], str]] = [
        ({"amount": 1.005}, "not_exact"),
        ({"amount": "diez"}, "not_exact"),
        ({"amount": 0}, "not_positive"),
        ({"amount": -5}, "not_positive"),
    ]
    for data, key in cases:
        with pytest.raises(ServiceValidationError) as refused:
            await call_action(hass, "deposit", entry, **data)
        assert refused.value.translation_key == key
    # A recipient is an address or a participant's name (the node says who holds it).
    for to, key in (("tv123", "unknown_name"), ("no válido", "invalid_address")):
        with pytest.raises(ServiceValidationError) as refused:
            await call_action(hass, "transfer", entry, to=to, amount=1)
        assert refused.value.translation_key == key
    with pytest.raises(ServiceValidationError) as refused:
        await call_action(hass, "transfer", entry, to=neighbour.address, amount=10**6)
    assert refused.value.translation_placeholders["code"] == "insufficient_funds"


async def test_market_actions_prices_orders_and_settlements(
    hass: HomeAssistant, transactiva_node: RealNode
) -> None:
    node = transactiva_node
    entry = await setup_entry(hass, node.url, node)
    hour = int(time.time()) // 3600 * 3600 + 3600
    for quarter, import_price in enumerate((20000, 21000, 22000, 23001)):
        await call_action(
            hass,
            "send_price_signal",
            entry,
            interval_start=dt_util.utc_from_timestamp(hour + 900 * quarter).isoformat(),
            import_price=import_price / 10000,
            export_price="0.75",
            network_fee=0.5,
        )
    start = dt_util.utc_from_timestamp(hour).isoformat()
    prices = await call_action(hass, "get_prices", entry, start=start)
    assert prices["unit"] == "MXN/kWh"
    assert [p["import_price"] for p in prices["intervals"]] == [2.0, 2.1, 2.2, 2.3001]
    assert prices["intervals"][0]["start"] == start
    assert prices["intervals"][0]["end"] == dt_util.utc_from_timestamp(hour + 900).isoformat()
    assert {p["export_price"] for p in prices["intervals"]} == {0.75}
    hourly = await call_action(hass, "get_prices", entry, start=start, resolution="hour")
    assert hourly["resolution"] == "hour"
    (only,) = hourly["intervals"]
    assert only["import_price"] == 2.15
    assert only["network_fee"] == 0.5
    assert only["end"] == dt_util.utc_from_timestamp(hour + 3600).isoformat()
    # Local times without a zone are Home Assistant's time zone; the default range is two days.
    naive = dt_util.as_local(dt_util.utc_from_timestamp(hour)).replace(tzinfo=None)
    local_prices = await call_action(hass, "get_prices", entry, start=naive.isoformat())
    assert local_prices["intervals"] == prices["intervals"]
    default = await call_action(hass, "get_prices", entry)
    assert len(default["intervals"]) == 4
    with pytest.raises(ServiceValidationError) as refused:
        await call_action(hass, "get_prices", entry, start=start, end=start)
    assert refused.value.translation_key == "empty_range"

    with pytest.raises(ServiceValidationError) as refused:
        await call_action(
            hass,
            "send_price_signal",
            entry,
            interval_start=start,
            import_price=2.00001,
            export_price=1,
            network_fee=0,
        )
    assert refused.value.translation_placeholders == {
        "field": "import_price",
        "value": "2.00001",
        "decimals": "4",
    }

    # This home is the operator (the supplier backs every interval): the ledger refuses
    # its orders; a prosumer's are in test_market.py.
    order = {"interval_start": start, "side": "buy", "energy": 1.5, "limit_price": 2.5}
    with pytest.raises(ServiceValidationError) as refused:
        await call_action(hass, "place_order", entry, **order)
    assert refused.value.translation_key == "node_refused"
    assert refused.value.translation_placeholders["code"] == "not_permitted"
    with pytest.raises(ServiceValidationError) as refused:
        await call_action(hass, "place_order", entry, **(order | {"energy": 1.0005}))
    assert refused.value.translation_placeholders["decimals"] == "3"
    settlements = await call_action(hass, "get_settlements", entry)
    assert settlements == {"currency": "MXN", "total": 0.0, "debt": 0.0, "settlements": []}
    assert (await call_action(hass, "get_trades", entry))["trades"] == []


async def test_demand_response_is_sent_and_cancelled_by_an_operator(
    hass: HomeAssistant, transactiva_node: RealNode
) -> None:
    node = transactiva_node
    entry = await setup_entry(hass, node.url, node)
    active_id = entity_id(hass, "binary_sensor", node, "demand_response_active")
    sent = await call_action(
        hass, "send_demand_response", entry, event_id="pico-1", level=2, duration={"minutes": 30}
    )
    assert sent["event_id"] == "pico-1"
    await wait_for_state(hass, active_id, "on")
    assert hass.states.get(entity_id(hass, "sensor", node, "demand_response_level")).state == "2"  # type: ignore[union-attr]
    await call_action(hass, "cancel_demand_response", entry, event_id="pico-1")
    await wait_for_state(hass, active_id, "off")
    record = await entry.runtime_data.client.dr_event("pico-1")
    assert (record.cancelled, record.modification) == (True, 1)

    priced = await call_action(
        hass,
        "send_demand_response",
        entry,
        price=4.5,
        duration="00:10:00",
        targets=[node.participant],
        start=dt_util.now().isoformat(),
    )
    assert re.fullmatch(r"ha-\d{8}T\d{6}Z-[0-9a-f]{12}", priced["event_id"])
    record = await entry.runtime_data.client.dr_event(priced["event_id"])
    assert record.to_json()["signal"] == {"name": "ELECTRICITY_PRICE", "price": 45000}
    assert record.end - record.start == 600
    # Two events sent at once (the same second) are two events.
    twice = await asyncio.gather(
        *(
            call_action(hass, "send_demand_response", entry, level=1, duration="00:05:00")
            for _ in "ab"
        )
    )
    assert twice[0]["event_id"] != twice[1]["event_id"]
    for sent_now in twice:
        assert (await entry.runtime_data.client.dr_event(sent_now["event_id"])).level == 1

    bad: list[tuple[dict[str, Any], str]] = [
        ({"level": 1, "price": 2}, "level_or_price"),
        ({}, "level_or_price"),
        ({"level": 1, "event_id": "con espacio"}, "invalid_event_id"),
        ({"level": 1, "targets": ["nadie"]}, "unknown_name"),
        ({"level": 1, "targets": ["con espacio"]}, "invalid_address"),
    ]
    for data, key in bad:
        with pytest.raises(ServiceValidationError) as refused:
            await call_action(hass, "send_demand_response", entry, duration={"minutes": 5}, **data)
        assert refused.value.translation_key == key
    with pytest.raises(ServiceValidationError) as refused:
        await call_action(hass, "cancel_demand_response", entry, event_id="no-existe")
    assert refused.value.translation_placeholders["code"] == "not_found"
    with pytest.raises(ServiceValidationError) as refused:
        await call_action(hass, "cancel_demand_response", entry, event_id="mal id")
    assert refused.value.translation_key == "invalid_event_id"

    # A node whose participant holds no operator role may not do this.
    entry.runtime_data.coordinator.data.roles = ()
    with pytest.raises(ServiceValidationError) as refused:
        await call_action(hass, "send_demand_response", entry, level=1, duration={"minutes": 5})
    assert refused.value.translation_key == "not_operator"
    assert refused.value.translation_placeholders["roles"] == "DSO or ISO"


async def test_actions_name_a_loaded_entry_and_report_node_failures(
    hass: HomeAssistant, transactiva_node: RealNode
) -> None:
    node = transactiva_node
    entry = await setup_entry(hass, node.url, node)
    with pytest.raises(ServiceValidationError) as refused:
        await hass.services.async_call(
            DOMAIN, "deposit", {"config_entry_id": "nope", "amount": 1}, blocking=True
        )
    assert refused.value.translation_key == "entry_not_found"

    # Without a response asked for, actions that may answer do not.
    assert (
        await hass.services.async_call(
            DOMAIN, "deposit", {"config_entry_id": entry.entry_id, "amount": 1}, blocking=True
        )
        is None
    )

    # A token the node no longer accepts starts reauthentication.
    entry.runtime_data.client._token = "rotated"  # noqa: S105 - what the node now refuses
    with pytest.raises(HomeAssistantError) as failed:
        await call_action(hass, "deposit", entry, amount=1)
    assert failed.value.translation_key == "invalid_auth"
    flows = hass.config_entries.flow.async_progress_by_handler(DOMAIN)
    assert [flow["context"]["source"] for flow in flows] == ["reauth"]

    await hass.async_add_executor_job(node.stop)
    with pytest.raises(HomeAssistantError) as failed:
        await call_action(hass, "deposit", entry, amount=1)
    assert failed.value.translation_key == "cannot_connect"

    assert await hass.config_entries.async_unload(entry.entry_id)
    with pytest.raises(ServiceValidationError) as refused:
        await call_action(hass, "deposit", entry, amount=1)
    assert refused.value.translation_key == "entry_not_loaded"
