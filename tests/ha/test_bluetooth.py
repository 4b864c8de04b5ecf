"""Bluetooth actuators: switches from the options, checked settings, and the GATT writes.

Home Assistant's Bluetooth integration runs for real here (the harness's
``enable_bluetooth`` stands in for the local adapter only). The relay is heard
and reached through a loopback Bluetooth proxy (``blerelay``), so a switch
command crosses Home Assistant's device lookup, its ``bleak`` wrapper,
``bleak-retry-connector`` and a GATT write with response. Without a proxy or
adapter the write goes to BlueZ over the system D-Bus, which fails cleanly on a
machine with no Bluetooth.
"""

from __future__ import annotations

import inspect
import time
from collections.abc import AsyncIterator
from datetime import datetime

import pytest
import pytest_socket
from bleak.backends.device import BLEDevice
from blerelay import LoopbackProxy, Relay
from conftest import (
    RealNode,
    StartNode,
    entity_id,
    local,
    node_get,
    setup_entry,
    wait_for_state,
    wait_until,
)
from homeassistant.components import bluetooth
from homeassistant.core import HomeAssistant, State
from homeassistant.exceptions import HomeAssistantError
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pytest_homeassistant_custom_component.common import mock_restore_cache

from custom_components.transactiva.ble import normalise_address, normalise_uuid, parse_payload
from custom_components.transactiva.ble_client import BleWriteError, write_payload
from custom_components.transactiva.const import CONF_APPLIANCES, CONF_BLUETOOTH
from ledger_core.demo.chain import paper_contract

ACTUATOR = {
    "name": "Relevador lavadora",
    "address": "AA:BB:CC:DD:EE:FF",
    "characteristic": "0000ff01-0000-1000-8000-00805f9b34fb",
    "on_payload": "01",
    "off_payload": "00",
}


async def test_actuators_are_switches_that_need_the_bluetooth_integration(
    hass: HomeAssistant, idle_node: RealNode
) -> None:
    mock_restore_cache(hass, [State("switch.relevador_lavadora", "on")])
    entry = await setup_entry(hass, idle_node.url, idle_node, {CONF_BLUETOOTH: [ACTUATOR]})
    state = hass.states.get("switch.relevador_lavadora")
    assert state is not None
    assert state.state == "on"  # restored: a relay does not report its state
    assert state.attributes["assumed_state"] is True
    assert "bluetooth" not in hass.config.components
    with pytest.raises(HomeAssistantError) as failed:
        await hass.services.async_call(
            "switch", "turn_off", {"entity_id": "switch.relevador_lavadora"}, blocking=True
        )
    assert failed.value.translation_key == "bluetooth_unavailable"
    assert failed.value.translation_placeholders == {
        "name": "Relevador lavadora",
        "address": "AA:BB:CC:DD:EE:FF",
    }
    assert hass.states.get("switch.relevador_lavadora").state == "on"  # type: ignore[union-attr]
    assert await hass.config_entries.async_unload(entry.entry_id)


async def test_entries_without_actuators_have_no_switches(
    hass: HomeAssistant, idle_node: RealNode
) -> None:
    entry = await setup_entry(hass, idle_node.url, idle_node)
    assert "switch" not in entry.runtime_data.platforms
    assert hass.states.async_entity_ids("switch") == []


RELAY = "switch.relevador_lavadora"


@pytest.fixture
async def proxy(hass: HomeAssistant, enable_bluetooth: None) -> AsyncIterator[LoopbackProxy]:
    """A Bluetooth proxy registered with Home Assistant, hearing the washer's relay."""
    relay = Relay(
        address=ACTUATOR["address"],
        characteristic=ACTUATOR["characteristic"],
        on_payload=b"\x01",
        off_payload=b"\x00",
    )
    scanner = LoopbackProxy("AA:00:00:00:00:01", {relay.address: relay})
    unsetup = scanner.async_setup()
    unregister = bluetooth.async_register_scanner(hass, scanner, connection_slots=2)
    scanner.advertise(relay)
    yield scanner
    unregister()
    unsetup()


def _relay(proxy: LoopbackProxy) -> Relay:
    return proxy.relays[ACTUATOR["address"]]


async def _switch(hass: HomeAssistant, service: str) -> None:
    await hass.services.async_call("switch", service, {"entity_id": RELAY}, blocking=True)


async def test_the_switch_writes_the_payloads_through_home_assistants_bluetooth(
    hass: HomeAssistant, idle_node: RealNode, proxy: LoopbackProxy
) -> None:
    relay = _relay(proxy)
    entry = await setup_entry(hass, idle_node.url, idle_node, {CONF_BLUETOOTH: [ACTUATOR]})
    assert hass.states.get(RELAY).state == "off"  # type: ignore[union-attr]
    await _switch(hass, "turn_on")
    assert relay.writes == [b"\x01"]
    assert relay.closed
    assert hass.states.get(RELAY).state == "on"  # type: ignore[union-attr]
    await _switch(hass, "turn_off")
    assert relay.writes == [b"\x01", b"\x00"]
    assert not relay.closed
    assert hass.states.get(RELAY).state == "off"  # type: ignore[union-attr]
    # One connection per command, closed after it: the relay is free for the next one.
    assert (relay.connections, relay.open_links) == (2, 0)
    assert await hass.config_entries.async_unload(entry.entry_id)


async def test_a_relay_that_refuses_or_is_out_of_range_leaves_the_switch_as_it_was(
    hass: HomeAssistant, idle_node: RealNode, proxy: LoopbackProxy
) -> None:
    relay = _relay(proxy)
    entry = await setup_entry(hass, idle_node.url, idle_node, {CONF_BLUETOOTH: [ACTUATOR]})
    relay.refuses_writes = True
    with pytest.raises(HomeAssistantError) as refused:
        await _switch(hass, "turn_on")
    assert refused.value.translation_key == "bluetooth_write_failed"
    assert "write not permitted" in refused.value.translation_placeholders["error"]
    assert (relay.writes, relay.closed) == ([], False)
    assert hass.states.get(RELAY).state == "off"  # type: ignore[union-attr]

    relay.refuses_writes, relay.in_range = False, False
    with pytest.raises(HomeAssistantError) as unreachable:
        await _switch(hass, "turn_on")
    assert unreachable.value.translation_key == "bluetooth_write_failed"
    assert (
        "cannot connect to AA:BB:CC:DD:EE:FF"
        in (unreachable.value.translation_placeholders["error"])
    )
    assert hass.states.get(RELAY).state == "off"  # type: ignore[union-attr]

    relay.in_range = True
    await _switch(hass, "turn_on")
    assert relay.writes == [b"\x01"]
    assert relay.open_links == 0  # the refused write's connection was closed too
    assert await hass.config_entries.async_unload(entry.entry_id)


async def test_a_relay_nobody_hears_is_not_found(
    hass: HomeAssistant, idle_node: RealNode, proxy: LoopbackProxy
) -> None:
    other = ACTUATOR | {"name": "Relevador bomba", "address": "11:22:33:44:55:66"}
    entry = await setup_entry(hass, idle_node.url, idle_node, {CONF_BLUETOOTH: [other]})
    with pytest.raises(HomeAssistantError) as missing:
        await hass.services.async_call(
            "switch", "turn_on", {"entity_id": "switch.relevador_bomba"}, blocking=True
        )
    assert missing.value.translation_key == "bluetooth_not_found"
    assert missing.value.translation_placeholders == {
        "name": "Relevador bomba",
        "address": "11:22:33:44:55:66",
    }
    assert await hass.config_entries.async_unload(entry.entry_id)


PAPER = paper_contract("lavadora", datetime(2026, 1, 1), datetime(2030, 12, 31, 23, 59, 59))


async def test_a_contract_action_switches_the_bluetooth_relay(
    hass: HomeAssistant, start_node: StartNode, proxy: LoopbackProxy
) -> None:
    """The paper's chain end to end: price signal, contract, Home Assistant, relay."""
    relay = _relay(proxy)
    node = start_node("node")
    entry = await setup_entry(
        hass,
        node.url,
        node,
        {CONF_BLUETOOTH: [ACTUATOR], CONF_APPLIANCES: {"Lavadora": RELAY}},
    )
    actions = entry.runtime_data.actions
    assert actions is not None
    await wait_until(lambda: actions.connected, "the local stream")
    start = int(time.time()) // 900 * 900
    price = {"interval_start": start, "export_price": 9000, "network_fee": 0}
    await local(hass, node, "price_signal", price | {"import_price": 25000})
    await local(hass, node, "contract_propose", {"source": PAPER})
    await wait_for_state(hass, RELAY, "on")
    assert relay.writes == [b"\x01"]
    await wait_for_state(hass, entity_id(hass, "sensor", node, "last_contract_action"), "turn_on")

    await local(hass, node, "price_signal", price | {"import_price": 35000})
    await wait_for_state(hass, RELAY, "off")
    assert relay.writes == [b"\x01", b"\x00"]
    deadline = time.monotonic() + 20
    while True:
        status, body = await node_get(hass, node, "local/actions?limit=2")
        assert status == 200, body
        results = [(row["action"], row["result"]) for row in body["actions"]]
        if results == [("turn_off", "ok"), ("turn_on", "ok")]:
            break
        assert time.monotonic() < deadline, results
        await wait_until(lambda: True, "a pause", step=0.1)
    assert await hass.config_entries.async_unload(entry.entry_id)


@pytest.fixture
def system_bus_reachable(socket_enabled: None) -> None:
    """Let bleak try the system D-Bus socket (a Unix socket) as it would on a real host."""
    pytest_socket.socket_allow_hosts(["127.0.0.1"], allow_unix_socket=True)


async def test_a_write_attempt_reaches_the_connection_and_fails_cleanly(
    system_bus_reachable: None,
) -> None:
    # bleak 0.22 (Home Assistant 2025.4) needs the signal strength; bleak 3 deprecates it.
    needs_rssi = "rssi" in inspect.signature(BLEDevice).parameters
    device = BLEDevice(
        "AA:BB:CC:DD:EE:FF",
        "Relevador",
        {"path": "/org/bluez/hci0/dev_AA"},
        **({"rssi": -60} if needs_rssi else {}),
    )
    with pytest.raises(BleWriteError, match="cannot connect to AA:BB:CC:DD:EE:FF"):
        await write_payload(device, "Relevador", ACTUATOR["characteristic"], b"\x01")


@pytest.mark.parametrize(
    ("raw", "address"),
    [
        ("aa:bb:cc:dd:ee:ff", "AA:BB:CC:DD:EE:FF"),
        (" AA-BB-CC-DD-EE-FF ", "AA:BB:CC:DD:EE:FF"),
        ("AA:BB:CC:DD:EE", None),
        ("GG:BB:CC:DD:EE:FF", None),
    ],
)
def test_addresses(raw: str, address: str | None) -> None:
    assert normalise_address(raw) == address


@pytest.mark.parametrize(
    ("raw", "uuid"),
    [
        ("ff01", "0000ff01-0000-1000-8000-00805f9b34fb"),
        ("0xFF01", "0000ff01-0000-1000-8000-00805f9b34fb"),
        ("6E400002-B5A3-F393-E0A9-E50E24DCCA9E", "6e400002-b5a3-f393-e0a9-e50e24dcca9e"),
        ("ff0", None),
        ("6e400002-b5a3-f393-e0a9", None),
    ],
)
def test_characteristics(raw: str, uuid: str | None) -> None:
    assert normalise_uuid(raw) == uuid


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture], max_examples=200)
@given(st.binary(min_size=1, max_size=64), st.sampled_from(["", "0x", " "]))
def test_payloads_round_trip(payload: bytes, prefix: str) -> None:
    spaced = " ".join(f"{b:02X}" for b in payload) if prefix == " " else payload.hex()
    assert parse_payload(("0x" if prefix == "0x" else "") + spaced) == payload


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture], max_examples=200)
@given(st.text(max_size=200))
def test_any_text_is_a_payload_or_refused(text: str) -> None:
    result = parse_payload(text)
    assert result is None or 1 <= len(result) <= 64
