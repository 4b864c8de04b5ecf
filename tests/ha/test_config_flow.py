"""Config and options flows against real node processes: every step, error and abort."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from conftest import RealNode, node_device, node_devices, setup_entry
from homeassistant.config_entries import SOURCE_HASSIO, SOURCE_USER, ConfigEntryState
from homeassistant.const import CONF_NAME, CONF_TOKEN, CONF_URL
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType
from homeassistant.helpers.service_info.hassio import HassioServiceInfo
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.transactiva.config_flow import _discovered_url
from custom_components.transactiva.const import (
    CONF_ADDRESS,
    CONF_APPLIANCES,
    CONF_BLUETOOTH,
    CONF_CHARACTERISTIC,
    CONF_DEVICE,
    CONF_ENTITY,
    CONF_EXPORT_SENSOR,
    CONF_IMPORT_SENSOR,
    CONF_OFF_PAYLOAD,
    CONF_ON_PAYLOAD,
    CONF_POWER_SENSOR,
    DOMAIN,
)


async def _start_flow(hass: HomeAssistant) -> str:
    result = await hass.config_entries.flow.async_init(DOMAIN, context={"source": SOURCE_USER})
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "user"
    assert result["errors"] == {}
    return str(result["flow_id"])


async def test_user_step_checks_the_node_and_creates_the_entry(
    hass: HomeAssistant, idle_node: RealNode
) -> None:
    flow_id = await _start_flow(hass)
    result = await hass.config_entries.flow.async_configure(
        flow_id, {CONF_URL: f" {idle_node.url}/ ", CONF_TOKEN: idle_node.token}
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["title"] == "Transactiva transactiva-local"
    assert result["data"] == {CONF_URL: idle_node.url, CONF_TOKEN: idle_node.token}
    assert result["result"].unique_id == idle_node.participant
    await hass.async_block_till_done()


async def test_wrong_token_unreachable_node_and_bad_urls_are_told_apart(
    hass: HomeAssistant, idle_node: RealNode
) -> None:
    flow_id = await _start_flow(hass)
    result = await hass.config_entries.flow.async_configure(
        flow_id, {CONF_URL: idle_node.url, CONF_TOKEN: "wrong"}
    )
    assert result["errors"] == {CONF_TOKEN: "invalid_auth"}
    # The form keeps the URL but never echoes the token.
    suggested = {
        str(key): (key.description or {}).get("suggested_value")
        for key in result["data_schema"].schema
    }
    assert suggested == {CONF_URL: idle_node.url, CONF_TOKEN: None}

    result = await hass.config_entries.flow.async_configure(
        flow_id, {CONF_URL: "http://127.0.0.1:1", CONF_TOKEN: idle_node.token}
    )
    assert result["errors"] == {"base": "cannot_connect"}

    result = await hass.config_entries.flow.async_configure(
        flow_id, {CONF_URL: "ftp://nodo", CONF_TOKEN: idle_node.token}
    )
    assert result["errors"] == {CONF_URL: "invalid_url"}

    result = await hass.config_entries.flow.async_configure(
        flow_id, {CONF_URL: idle_node.url, CONF_TOKEN: idle_node.token}
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    await hass.async_block_till_done()


@pytest.mark.parametrize(
    "bad", ["ftp://nodo", "nodo.local", "http://", "http://h/?token=1", "http://h/#x"]
)
async def test_addresses_that_are_not_node_urls_are_refused_before_any_request(
    hass: HomeAssistant, bad: str
) -> None:
    flow_id = await _start_flow(hass)
    result = await hass.config_entries.flow.async_configure(
        flow_id, {CONF_URL: bad, CONF_TOKEN: "t"}
    )
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {CONF_URL: "invalid_url"}


async def test_the_same_node_cannot_be_added_twice(
    hass: HomeAssistant, idle_node: RealNode
) -> None:
    entry = MockConfigEntry(
        domain=DOMAIN,
        unique_id=idle_node.participant,
        data={CONF_URL: "http://old.address:8765", CONF_TOKEN: idle_node.token},
    )
    entry.add_to_hass(hass)
    flow_id = await _start_flow(hass)
    result = await hass.config_entries.flow.async_configure(
        flow_id, {CONF_URL: idle_node.url, CONF_TOKEN: idle_node.token}
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "already_configured"
    # A node that moved gets its new address.
    assert entry.data[CONF_URL] == idle_node.url


async def test_reauth_takes_a_new_token_for_the_same_node_only(
    hass: HomeAssistant, start_node: Callable[[str], RealNode]
) -> None:
    node = start_node("casa")
    other = start_node("vecino")
    entry = MockConfigEntry(
        domain=DOMAIN,
        unique_id=node.participant,
        data={CONF_URL: node.url, CONF_TOKEN: "stale"},
    )
    entry.add_to_hass(hass)
    result = await entry.start_reauth_flow(hass)
    assert result["step_id"] == "reauth_confirm"
    assert result["description_placeholders"]["url"] == node.url

    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_TOKEN: "still-wrong"}
    )
    assert result["errors"] == {CONF_TOKEN: "invalid_auth"}

    # The other node's token is refused by this node.
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_TOKEN: other.token}
    )
    assert result["errors"] == {CONF_TOKEN: "invalid_auth"}

    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_TOKEN: node.token}
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "reauth_successful"
    assert entry.data[CONF_TOKEN] == node.token
    await hass.async_block_till_done()


async def test_reauth_refuses_a_different_node_at_the_same_address(
    hass: HomeAssistant, start_node: Callable[[str], RealNode]
) -> None:
    node = start_node("casa")
    entry = MockConfigEntry(
        domain=DOMAIN,
        unique_id="tv" + "0" * 40,  # the node that used to answer at this address
        data={CONF_URL: node.url, CONF_TOKEN: "stale"},
    )
    entry.add_to_hass(hass)
    result = await entry.start_reauth_flow(hass)
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_TOKEN: node.token}
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "wrong_node"
    assert entry.data[CONF_TOKEN] == "stale"


# -- Supervisor discovery -------------------------------------------------------------


def _discovery(node: RealNode, **config: object) -> HassioServiceInfo:
    return HassioServiceInfo(
        config={"host": "127.0.0.1", "port": node.port, "token": node.token} | config,
        name="Transactiva",
        slug="transactiva",
        uuid="1234",
    )


async def test_the_app_announced_node_is_added_only_when_confirmed(
    hass: HomeAssistant, idle_node: RealNode
) -> None:
    result = await hass.config_entries.flow.async_init(
        DOMAIN, context={"source": SOURCE_HASSIO}, data=_discovery(idle_node)
    )
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "hassio_confirm"
    assert result["description_placeholders"] == {
        "addon": "Transactiva",
        "url": idle_node.url,
    }
    assert not hass.config_entries.async_entries(DOMAIN)
    result = await hass.config_entries.flow.async_configure(result["flow_id"], {})
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["data"] == {CONF_URL: idle_node.url, CONF_TOKEN: idle_node.token}
    assert result["result"].unique_id == idle_node.participant
    await hass.async_block_till_done()


async def test_an_announced_token_the_node_refuses_is_reported_at_confirmation(
    hass: HomeAssistant, idle_node: RealNode
) -> None:
    result = await hass.config_entries.flow.async_init(
        DOMAIN,
        context={"source": SOURCE_HASSIO},
        data=_discovery(idle_node, token="old"),  # noqa: S106 - a refused token
    )
    result = await hass.config_entries.flow.async_configure(result["flow_id"], {})
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {CONF_TOKEN: "invalid_auth"}


async def test_an_announcement_updates_the_configured_node(
    hass: HomeAssistant, idle_node: RealNode
) -> None:
    entry = MockConfigEntry(
        domain=DOMAIN,
        unique_id=idle_node.participant,
        data={CONF_URL: "http://old.address:8765", CONF_TOKEN: "old"},
    )
    entry.add_to_hass(hass)
    result = await hass.config_entries.flow.async_init(
        DOMAIN, context={"source": SOURCE_HASSIO}, data=_discovery(idle_node)
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "already_configured"
    assert dict(entry.data) == {
        CONF_URL: idle_node.url,
        CONF_TOKEN: idle_node.token,
    }
    await hass.async_block_till_done()


@pytest.mark.parametrize(
    ("config", "reason"),
    [
        ({"token": ""}, "invalid_discovery_info"),
        ({"token": None}, "invalid_discovery_info"),
        ({"port": True}, "invalid_discovery_info"),
        ({"host": None}, "invalid_discovery_info"),
        ({"port": 99999}, "invalid_discovery_info"),
        ({"port": 1}, "cannot_connect"),
    ],
)
async def test_unusable_announcements_abort(
    hass: HomeAssistant, socket_enabled: None, config: dict[str, object], reason: str
) -> None:
    info = HassioServiceInfo(
        config={"host": "127.0.0.1", "port": 8765, "token": "t"} | config,
        name="Transactiva",
        slug="transactiva",
        uuid="1234",
    )
    result = await hass.config_entries.flow.async_init(
        DOMAIN, context={"source": SOURCE_HASSIO}, data=info
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == reason


def test_announced_ipv6_hosts_are_bracketed() -> None:
    url = _discovered_url({"host": "fd00::5", "port": "8765"})
    assert str(url) == "http://[fd00::5]:8765"


# -- reconfiguration --------------------------------------------------------------------


async def test_reconfigure_checks_the_address_and_keeps_the_same_node(
    hass: HomeAssistant, start_node: Callable[[str], RealNode]
) -> None:
    node = start_node("casa")
    other = start_node("vecino")
    entry = MockConfigEntry(
        domain=DOMAIN,
        unique_id=node.participant,
        data={CONF_URL: "http://old.address:8765", CONF_TOKEN: node.token},
    )
    entry.add_to_hass(hass)
    result = await entry.start_reconfigure_flow(hass)
    assert result["step_id"] == "reconfigure"
    suggested = {
        str(key): (key.description or {}).get("suggested_value")
        for key in result["data_schema"].schema
    }
    assert suggested == {CONF_URL: "http://old.address:8765", CONF_TOKEN: None}

    result = await hass.config_entries.flow.async_configure(result["flow_id"], {CONF_URL: "nodo"})
    assert result["errors"] == {CONF_URL: "invalid_url"}
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_URL: node.url, CONF_TOKEN: "wrong"}
    )
    assert result["errors"] == {CONF_TOKEN: "invalid_auth"}
    # The neighbour's node, with its own token, is another node.
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_URL: other.url, CONF_TOKEN: other.token}
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "wrong_node"
    assert entry.data[CONF_URL] == "http://old.address:8765"

    result = await entry.start_reconfigure_flow(hass)
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_URL: node.url + "/"}
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "reconfigure_successful"
    # An empty token keeps the stored one.
    assert dict(entry.data) == {CONF_URL: node.url, CONF_TOKEN: node.token}
    await hass.async_block_till_done()
    assert entry.state is ConfigEntryState.LOADED


# -- options ------------------------------------------------------------------------------


async def _options_step(hass: HomeAssistant, entry: MockConfigEntry, step: str) -> dict[str, Any]:
    result = await hass.config_entries.options.async_init(entry.entry_id)
    assert result["type"] is FlowResultType.MENU
    assert step in result["menu_options"]
    result = await hass.config_entries.options.async_configure(
        result["flow_id"], {"next_step_id": step}
    )
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == step
    return dict(result)


async def test_options_map_appliances_add_actuators_and_remove_them(
    hass: HomeAssistant, idle_node: RealNode
) -> None:
    entry = await setup_entry(hass, idle_node.url, idle_node)
    menu = await hass.config_entries.options.async_init(entry.entry_id)
    assert menu["menu_options"] == ["appliance", "meter", "bluetooth"]
    hass.config_entries.options.async_abort(menu["flow_id"])

    result = await _options_step(hass, entry, "appliance")
    result = await hass.config_entries.options.async_configure(
        result["flow_id"], {CONF_DEVICE: "   ", CONF_ENTITY: "switch.lavadora"}
    )
    assert result["errors"] == {CONF_DEVICE: "invalid_device_name"}
    result = await hass.config_entries.options.async_configure(
        result["flow_id"], {CONF_DEVICE: " Lavadora ", CONF_ENTITY: "switch.lavadora"}
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    await hass.async_block_till_done()
    assert entry.options[CONF_APPLIANCES] == {"Lavadora": "switch.lavadora"}
    assert entry.state is ConfigEntryState.LOADED
    assert entry.runtime_data.appliances is not None
    assert entry.runtime_data.appliances.mapping == {"Lavadora": "switch.lavadora"}

    result = await _options_step(hass, entry, "bluetooth")
    result = await hass.config_entries.options.async_configure(
        result["flow_id"],
        {
            CONF_NAME: "",
            CONF_ADDRESS: "AA:BB",
            CONF_CHARACTERISTIC: "not-a-uuid",
            CONF_ON_PAYLOAD: "zz",
            CONF_OFF_PAYLOAD: "",
        },
    )
    assert result["errors"] == {
        CONF_NAME: "invalid_device_name",
        CONF_ADDRESS: "invalid_address",
        CONF_CHARACTERISTIC: "invalid_uuid",
        CONF_ON_PAYLOAD: "invalid_payload",
        CONF_OFF_PAYLOAD: "invalid_payload",
    }
    actuator = {
        CONF_NAME: "Relevador lavadora",
        CONF_ADDRESS: "aa-bb-cc-dd-ee-ff",
        CONF_CHARACTERISTIC: "FF01",
        CONF_ON_PAYLOAD: "0x01 A0",
        CONF_OFF_PAYLOAD: "00",
    }
    result = await hass.config_entries.options.async_configure(result["flow_id"], actuator)
    assert result["type"] is FlowResultType.CREATE_ENTRY
    await hass.async_block_till_done()
    assert entry.options[CONF_BLUETOOTH] == [
        {
            CONF_NAME: "Relevador lavadora",
            CONF_ADDRESS: "AA:BB:CC:DD:EE:FF",
            CONF_CHARACTERISTIC: "0000ff01-0000-1000-8000-00805f9b34fb",
            CONF_ON_PAYLOAD: "01a0",
            CONF_OFF_PAYLOAD: "00",
        }
    ]
    switch = hass.states.get("switch.relevador_lavadora")
    assert switch is not None
    assert switch.attributes["assumed_state"] is True
    # The actuator is a device of its own, under the node's.
    actuator_device = node_device(hass, idle_node, "ble_AA:BB:CC:DD:EE:FF")
    assert actuator_device.via_device_id == node_device(hass, idle_node).id

    result = await _options_step(hass, entry, "bluetooth")
    result = await hass.config_entries.options.async_configure(result["flow_id"], actuator)
    assert result["errors"] == {CONF_ADDRESS: "address_in_use"}

    result = await _options_step(hass, entry, "remove")
    selectable = {str(key): key for key in result["data_schema"].schema}
    assert set(selectable) == {CONF_APPLIANCES, CONF_BLUETOOTH}
    result = await hass.config_entries.options.async_configure(
        result["flow_id"], {CONF_APPLIANCES: ["Lavadora"], CONF_BLUETOOTH: ["AA:BB:CC:DD:EE:FF"]}
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    await hass.async_block_till_done()
    assert entry.options[CONF_APPLIANCES] == {}
    assert entry.options[CONF_BLUETOOTH] == []
    assert hass.states.get("switch.relevador_lavadora") is None
    # The actuator's device went with it.
    assert node_devices(hass, idle_node, "ble_AA:BB:CC:DD:EE:FF") == []


async def test_options_pick_meter_sensors_of_the_right_kind(
    hass: HomeAssistant, idle_node: RealNode
) -> None:
    entry = await setup_entry(hass, idle_node.url, idle_node)
    hass.states.async_set("sensor.potencia", "1.5", {"unit_of_measurement": "kW"})
    hass.states.async_set("sensor.temperatura", "21", {"unit_of_measurement": "°C"})
    hass.states.async_set(
        "sensor.importada",
        "1200.5",
        {"unit_of_measurement": "kWh", "state_class": "total_increasing"},
    )
    hass.states.async_set(
        "sensor.exportada_medida", "3", {"unit_of_measurement": "kWh", "state_class": "measurement"}
    )
    hass.states.async_set(
        "sensor.exportada", "300", {"unit_of_measurement": "Wh", "state_class": "total"}
    )

    result = await _options_step(hass, entry, "meter")
    result = await hass.config_entries.options.async_configure(
        result["flow_id"],
        {
            CONF_POWER_SENSOR: "sensor.temperatura",
            CONF_IMPORT_SENSOR: "sensor.no_existe",
            CONF_EXPORT_SENSOR: "sensor.exportada_medida",
        },
    )
    assert result["errors"] == {
        CONF_POWER_SENSOR: "not_power_sensor",
        CONF_IMPORT_SENSOR: "not_energy_counter",
        CONF_EXPORT_SENSOR: "not_energy_counter",
    }
    result = await hass.config_entries.options.async_configure(
        result["flow_id"],
        {
            CONF_POWER_SENSOR: "sensor.potencia",
            CONF_IMPORT_SENSOR: "sensor.importada",
            CONF_EXPORT_SENSOR: "sensor.exportada",
        },
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    await hass.async_block_till_done()
    assert entry.runtime_data.readings is not None
    assert entry.runtime_data.readings.sensors == {
        CONF_POWER_SENSOR: "sensor.potencia",
        CONF_IMPORT_SENSOR: "sensor.importada",
        CONF_EXPORT_SENSOR: "sensor.exportada",
    }

    # The form shows what is picked; emptying a field stops sending it.
    result = await _options_step(hass, entry, "meter")
    suggested = {
        str(key): (key.description or {}).get("suggested_value")
        for key in result["data_schema"].schema
    }
    assert suggested[CONF_POWER_SENSOR] == "sensor.potencia"
    result = await hass.config_entries.options.async_configure(
        result["flow_id"], {CONF_IMPORT_SENSOR: "sensor.importada"}
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    await hass.async_block_till_done()
    assert CONF_POWER_SENSOR not in entry.options
    assert entry.runtime_data.readings is not None
    assert entry.runtime_data.readings.sensors == {CONF_IMPORT_SENSOR: "sensor.importada"}

    result = await _options_step(hass, entry, "meter")
    result = await hass.config_entries.options.async_configure(result["flow_id"], {})
    await hass.async_block_till_done()
    assert entry.runtime_data.readings is None
