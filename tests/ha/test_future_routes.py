"""Meter entities, readings sent to the node and action results, through FUTURE node routes.

The node does not serve the meter, meter-readings and action-result routes yet;
``future_routes.FutureRoutes`` stands in for exactly those in front of a real
node process (see that module). Replace it with the real node once merged.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from copy import deepcopy
from typing import Any

import pytest
from conftest import CONTRACT, RealNode, entity_id, setup_entry, wait_for_state, wait_until
from future_routes import READING, FutureRoutes, future_routes
from homeassistant.const import STATE_UNAVAILABLE
from homeassistant.core import HomeAssistant
from homeassistant.helpers import entity_registry as er
from homeassistant.setup import async_setup_component
from homeassistant.util import dt as dt_util

from custom_components.transactiva.const import (
    CONF_APPLIANCES,
    CONF_EXPORT_SENSOR,
    CONF_IMPORT_SENSOR,
    CONF_POWER_SENSOR,
)
from custom_components.transactiva.events import ContractAction

__all__ = ["future_routes"]  # the fixture


async def test_meter_entities_follow_the_meter_stream(
    hass: HomeAssistant,
    transactiva_node: RealNode,
    future_routes: FutureRoutes,
    entity_registry: er.EntityRegistry,
    caplog: pytest.LogCaptureFixture,
) -> None:
    node = transactiva_node
    await setup_entry(hass, future_routes.url, node)
    power_id = entity_id(hass, "sensor", node, "meter_power")
    import_id = entity_id(hass, "sensor", node, "meter_energy_import")
    supply_id = entity_id(hass, "binary_sensor", node, "meter_grid_supply")
    assert power_id == "sensor.transactiva_meter_power"
    assert hass.states.get(power_id).state == "1921.5"  # type: ignore[union-attr]
    energy = hass.states.get(import_id)
    assert energy is not None
    assert energy.state == "1234.567"
    assert energy.attributes["state_class"] == "total_increasing"
    assert energy.attributes["device_class"] == "energy"
    assert energy.attributes["unit_of_measurement"] == "kWh"
    assert hass.states.get(entity_id(hass, "sensor", node, "meter_energy_export")).state == "89.012"  # type: ignore[union-attr]
    interval = hass.states.get(entity_id(hass, "sensor", node, "meter_last_interval_import"))
    assert interval is not None
    assert interval.state == "310"
    assert (
        interval.attributes["interval_start"] == dt_util.utc_from_timestamp(1795515300).isoformat()
    )
    assert hass.states.get(supply_id).state == "on"  # type: ignore[union-attr]
    phase_power = hass.states.get(entity_id(hass, "sensor", node, "meter_2_phase_power"))
    assert phase_power is not None
    assert phase_power.name == "Transactiva meter Phase 2 power"
    for key in ("meter_2_phase_voltage", "meter_1_phase_frequency", "meter_neutral_current"):
        registry_entry = entity_registry.async_get(entity_id(hass, "sensor", node, key))
        assert registry_entry is not None
        assert registry_entry.disabled_by is er.RegistryEntryDisabler.INTEGRATION

    await wait_until(lambda: bool(future_routes.streams), "the meter stream")
    newer = deepcopy(READING) | {"power": -350, "import_wh_total": 1234600, "service": "cut"}
    await future_routes.push(newer)
    await wait_for_state(hass, power_id, "-350.0")
    assert hass.states.get(import_id).state == "1234.6"  # type: ignore[union-attr]
    assert hass.states.get(supply_id).state == "off"  # type: ignore[union-attr]
    # A reading that is not the contract's is skipped; the last good one stays.
    await future_routes.push("not json")
    await future_routes.push(json.dumps(newer | {"power": "mucho"}))
    await future_routes.push(deepcopy(READING) | {"power": 5})
    await wait_for_state(hass, power_id, "5.0")

    # A binary frame is not a reading: the stream is reopened.
    caplog.set_level(logging.INFO)
    for socket in list(future_routes.streams):
        await socket.send_bytes(b"\x00")
    await wait_for_state(hass, power_id, STATE_UNAVAILABLE)
    await wait_for_state(hass, power_id, "5.0", seconds=15)
    went = [r for r in caplog.records if "meter unavailable" in r.getMessage()]
    assert len(went) == 1

    # The stream drops and, for a while, neither the stream nor the reading answers:
    # meter entities go unavailable (one warning) and come back (one line).
    caplog.clear()
    future_routes.stream_open = False
    future_routes.reading = None
    await future_routes.drop_streams()
    await wait_for_state(hass, power_id, STATE_UNAVAILABLE)
    await asyncio.sleep(3.5)  # two reconnection attempts fail
    future_routes.stream_open = True
    future_routes.reading = deepcopy(READING) | {"power": 5}
    await wait_for_state(hass, power_id, "5.0", seconds=20)
    went = [r for r in caplog.records if "meter unavailable" in r.getMessage()]
    back = [r for r in caplog.records if "meter available again" in r.getMessage()]
    assert (len(went), len(back)) == (1, 1)


async def test_a_node_without_a_meter_has_no_meter_entities(
    hass: HomeAssistant, transactiva_node: RealNode, entity_registry: er.EntityRegistry
) -> None:
    entry = await setup_entry(hass, transactiva_node.url, transactiva_node)
    assert entry.runtime_data.meter is None
    assert not [
        e
        for e in er.async_entries_for_config_entry(entity_registry, entry.entry_id)
        if "_meter_" in e.unique_id
    ]


async def test_a_reading_the_node_gets_wrong_means_no_meter(
    hass: HomeAssistant, transactiva_node: RealNode, future_routes: FutureRoutes
) -> None:
    future_routes.reading = {"phases": "three"}
    entry = await setup_entry(hass, future_routes.url, transactiva_node)
    assert entry.runtime_data.meter is None


async def test_home_assistant_sensors_are_sent_as_the_meter(
    hass: HomeAssistant, transactiva_node: RealNode, future_routes: FutureRoutes
) -> None:
    hass.states.async_set("sensor.potencia", "1.5", {"unit_of_measurement": "kW"})
    hass.states.async_set(
        "sensor.importada",
        "1200.5",
        {"unit_of_measurement": "kWh", "state_class": "total_increasing"},
    )
    hass.states.async_set(
        "sensor.exportada", "unavailable", {"unit_of_measurement": "Wh", "state_class": "total"}
    )
    options = {
        CONF_POWER_SENSOR: "sensor.potencia",
        CONF_IMPORT_SENSOR: "sensor.importada",
        CONF_EXPORT_SENSOR: "sensor.exportada",
    }
    await setup_entry(hass, future_routes.url, transactiva_node, options)
    hass.states.async_set("sensor.potencia", "-0.25", {"unit_of_measurement": "kW"})
    await wait_until(lambda: len(future_routes.readings_received) == 1, "a reading")
    first = future_routes.readings_received[0]
    assert (first["power"], first["import_kwh_total"]) == (-250.0, 1200.5)
    assert "export_kwh_total" not in first  # unavailable: left out
    assert abs(dt_util.parse_datetime(first["time"]).timestamp() - time.time()) < 60  # type: ignore[union-attr]

    hass.states.async_set(
        "sensor.exportada", "2500", {"unit_of_measurement": "Wh", "state_class": "total"}
    )
    hass.states.async_set("sensor.potencia", "no number", {"unit_of_measurement": "kW"})
    hass.states.async_set("sensor.importada", "5", {"unit_of_measurement": "°C"})
    await wait_until(lambda: len(future_routes.readings_received) >= 2, "more readings")
    latest = future_routes.readings_received[-1]
    assert latest["export_kwh_total"] == 2.5
    assert "power" not in latest
    assert "import_kwh_total" not in latest  # not an energy unit


async def test_readings_to_a_node_without_the_route_warn_once(
    hass: HomeAssistant, transactiva_node: RealNode, caplog: pytest.LogCaptureFixture
) -> None:
    hass.states.async_set("sensor.potencia", "100", {"unit_of_measurement": "W"})
    entry = await setup_entry(
        hass, transactiva_node.url, transactiva_node, {CONF_POWER_SENSOR: "sensor.potencia"}
    )
    readings = entry.runtime_data.readings
    assert readings is not None
    for watts in ("101", "102", "103"):
        hass.states.async_set("sensor.potencia", watts, {"unit_of_measurement": "W"})
        await hass.async_block_till_done()
        await wait_until(lambda: not readings._sending, "the reading to be sent")
    warnings = [r for r in caplog.records if "does not accept meter readings" in r.getMessage()]
    assert len(warnings) == 1
    assert readings.sent == 0


async def test_contract_action_results_are_reported_to_the_node(
    hass: HomeAssistant, transactiva_node: RealNode, future_routes: FutureRoutes
) -> None:
    node = transactiva_node
    assert await _setup_input_boolean(hass)
    entry = await setup_entry(
        hass, future_routes.url, node, {CONF_APPLIANCES: {"Lavadora": "input_boolean.lavadora"}}
    )
    contract_id = await _propose(hass, entry)
    appliances = entry.runtime_data.appliances
    assert appliances is not None
    await appliances(
        ContractAction(contract_id, "0x0123456789", "Lavadora", "turn_on", "Price < 3")
    )
    (result,) = future_routes.results_received
    assert result["success"] is True
    assert (result["device"], result["action"], result["entity_id"]) == (
        "Lavadora",
        "turn_on",
        "input_boolean.lavadora",
    )
    assert hass.states.get("input_boolean.lavadora").state == "on"  # type: ignore[union-attr]


async def _setup_input_boolean(hass: HomeAssistant) -> bool:
    return await async_setup_component(
        hass, "input_boolean", {"input_boolean": {"lavadora": {"name": "Lavadora"}}}
    )


async def _propose(hass: HomeAssistant, entry: Any) -> str:
    answer = await hass.services.async_call(
        "transactiva",
        "submit_contract",
        {"config_entry_id": entry.entry_id, "source": CONTRACT},
        blocking=True,
        return_response=True,
    )
    assert answer is not None
    return str(answer["contract_id"])


async def test_status_fields_of_a_multi_validator_node(
    hass: HomeAssistant, transactiva_node: RealNode, future_routes: FutureRoutes
) -> None:
    node = transactiva_node
    future_routes.status_extra = {"peers": 4, "catching_up": True}
    await setup_entry(hass, future_routes.url, node)
    peers = entity_id(hass, "sensor", node, "peers")
    assert hass.states.get(peers).state == "4"  # type: ignore[union-attr]
    sync = entity_id(hass, "sensor", node, "sync_status")
    assert hass.states.get(sync).state == "catching_up"  # type: ignore[union-attr]
