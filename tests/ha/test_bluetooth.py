"""Bluetooth actuators: switches from the options, checked settings, and the connection attempt.

What this environment allows: Home Assistant's Bluetooth integration cannot be
loaded here (its USB and serial dependencies are not installed, and no BlueZ
runs), so the switch is tested up to the point where it needs that integration,
and the GATT write is tested up to the connection, which fails for real because
no Bluetooth stack answers. A real write needs an adapter (see the docs).
"""

from __future__ import annotations

import pytest
import pytest_socket
from bleak.backends.device import BLEDevice
from conftest import RealNode, setup_entry
from homeassistant.core import HomeAssistant, State
from homeassistant.exceptions import HomeAssistantError
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pytest_homeassistant_custom_component.common import mock_restore_cache

from custom_components.transactiva.ble import normalise_address, normalise_uuid, parse_payload
from custom_components.transactiva.ble_client import BleWriteError, write_payload
from custom_components.transactiva.const import CONF_BLUETOOTH

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


@pytest.fixture
def system_bus_reachable(socket_enabled: None) -> None:
    """Let bleak try the system D-Bus socket (a Unix socket) as it would on a real host."""
    pytest_socket.socket_allow_hosts(["127.0.0.1"], allow_unix_socket=True)


async def test_a_write_attempt_reaches_the_connection_and_fails_cleanly(
    system_bus_reachable: None,
) -> None:
    device = BLEDevice("AA:BB:CC:DD:EE:FF", "Relevador", {"path": "/org/bluez/hci0/dev_AA"})
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
