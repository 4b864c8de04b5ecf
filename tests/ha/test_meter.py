"""Meter entities from a real node's meter role, fed by pushed readings (the node's ``pushed``
source, which is what Home Assistant's own sensors use), and Home Assistant's sensors sent to it.
"""

from __future__ import annotations

import logging
import time
from datetime import UTC, datetime

import pytest
from conftest import (
    RealNode,
    StartNode,
    entity_id,
    node_get,
    push_reading,
    setup_entry,
    wait_for_state,
    wait_until,
)
from homeassistant.const import EVENT_STATE_CHANGED, STATE_UNAVAILABLE, STATE_UNKNOWN
from homeassistant.core import Event, EventStateChangedData, HomeAssistant, callback
from homeassistant.data_entry_flow import FlowResultType
from homeassistant.exceptions import ServiceValidationError
from homeassistant.helpers import entity_registry as er
from homeassistant.setup import async_setup_component
from homeassistant.util import dt as dt_util

from custom_components.transactiva.const import (
    CONF_EXPORT_SENSOR,
    CONF_IMPORT_SENSOR,
    CONF_METER_INTERVAL,
    CONF_POWER_SENSOR,
    DEFAULT_METER_INTERVAL,
    DOMAIN,
)


@pytest.fixture
def meter_node(start_node: StartNode) -> RealNode:
    """A node with the meter role, reading what is pushed to it."""
    return start_node("node", meter=True)


def _iso(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, UTC).isoformat()


def _state(hass: HomeAssistant, entity: str) -> str:
    state = hass.states.get(entity)
    assert state is not None
    return state.state


async def test_meter_entities_follow_the_nodes_meter(
    hass: HomeAssistant,
    meter_node: RealNode,
    entity_registry: er.EntityRegistry,
    caplog: pytest.LogCaptureFixture,
) -> None:
    node = meter_node
    entry = await setup_entry(hass, node.url, node)
    power_id = entity_id(hass, "sensor", node, "meter_power")
    import_id = entity_id(hass, "sensor", node, "meter_energy_import")
    export_id = entity_id(hass, "sensor", node, "meter_energy_export")
    interval_id = entity_id(hass, "sensor", node, "meter_last_interval_import")
    supply_id = entity_id(hass, "binary_sensor", node, "meter_grid_supply")
    assert power_id == "sensor.transactiva_meter_power"
    # Not read yet: the entities are there, unavailable; no phase is known.
    assert _state(hass, power_id) == STATE_UNAVAILABLE
    phase_key = f"{node.participant}_meter_1_phase_power"
    assert entity_registry.async_get_entity_id("sensor", "transactiva", phase_key) is None
    # Without history the node's analytics are not ready: no forecast yet, and it says why.
    forecast_id = entity_id(hass, "sensor", node, "meter_forecast_consumption_today")
    assert _state(hass, forecast_id) == STATE_UNAVAILABLE
    # What the person can wait for: a translated validation error (no traceback in the log).
    with pytest.raises(ServiceValidationError) as not_ready:
        await _forecast(hass, entry.entry_id)
    assert not_ready.value.translation_key == "not_ready"
    assert "14" in (not_ready.value.translation_placeholders or {})["message"]
    # The forecast's status says it, in Home Assistant's language, with the node's reason.
    status = hass.states.get(entity_id(hass, "sensor", node, "meter_forecast_status"))
    assert status is not None
    assert status.state == "learning"
    assert status.attributes["options"] == ["ready", "learning"]
    assert "14" in status.attributes["message"]

    # Readings with lifetime counters (kWh) across an interval boundary: the node counts
    # their differences and closes the interval that the data has passed.
    boundary = int(time.time()) // 900 * 900
    first = {"power": 1500.0, "import_kwh_total": 1200.0, "export_kwh_total": 50.0}
    await push_reading(hass, node, time=_iso(boundary - 60), **first)
    await wait_for_state(hass, power_id, "1500.0")
    assert float(_state(hass, import_id)) == 0  # the first counter value is the baseline
    assert _state(hass, supply_id) == STATE_UNKNOWN  # no voltage yet
    second = {"power": -800.0, "import_kwh_total": 1200.5, "export_kwh_total": 50.2}
    await push_reading(hass, node, time=_iso(boundary + 30), voltage=127.0, **second)
    await wait_for_state(hass, power_id, "-800.0")
    energy = hass.states.get(import_id)
    assert energy is not None
    assert float(energy.state) == 0.5
    assert energy.attributes["state_class"] == "total_increasing"
    assert energy.attributes["device_class"] == "energy"
    assert energy.attributes["unit_of_measurement"] == "kWh"
    assert float(_state(hass, export_id)) == 0.2
    interval = hass.states.get(interval_id)
    assert interval is not None
    # 60 of the 90 seconds between the readings were in the closed interval.
    assert abs(int(interval.state) - 333) <= 1
    start = dt_util.utc_from_timestamp(boundary - 900).isoformat()
    assert interval.attributes["interval_start"] == start
    exported = _state(hass, entity_id(hass, "sensor", node, "meter_last_interval_export"))
    assert abs(int(exported) - 133) <= 1
    # The supply is seen with the voltage; three readings without it are a service cut.
    assert _state(hass, supply_id) == "on"
    for n in range(3):
        await push_reading(hass, node, time=_iso(boundary + 31 + n), voltage=0.0, power=0.0)
    await wait_for_state(hass, supply_id, "off")
    await push_reading(hass, node, time=_iso(boundary + 34), voltage=126.0, power=-790.0)
    # The node's one phase appears as the meter reports it; noisy quantities are disabled.
    phase_power = await wait_for_state(
        hass, entity_id(hass, "sensor", node, "meter_1_phase_power"), "-790.0"
    )
    assert phase_power.name == "Transactiva meter Phase 1 power"
    for key in ("meter_1_phase_voltage", "meter_1_phase_frequency", "meter_neutral_current"):
        registry_entry = entity_registry.async_get(entity_id(hass, "sensor", node, key))
        assert registry_entry is not None
        assert registry_entry.disabled_by is er.RegistryEntryDisabler.INTEGRATION
    # Asked for (homeassistant.update_entity), the reading is read again.
    assert await async_setup_component(hass, "homeassistant", {})
    await hass.services.async_call(
        "homeassistant", "update_entity", {"entity_id": power_id}, blocking=True
    )
    assert _state(hass, power_id) == "-790.0"

    # The node goes away: its entities become unavailable, the meter's and the forecast's
    # too, and the log says so once, whichever of its connections notices first; it comes
    # back with its counters, every connection reconnects (one line), and a reading makes the
    # meter's entities available again.
    caplog.clear()
    caplog.set_level(logging.INFO)
    await hass.async_add_executor_job(node.stop)
    await wait_for_state(hass, power_id, STATE_UNAVAILABLE)
    await wait_for_state(hass, forecast_id, STATE_UNAVAILABLE)
    runtime = entry.runtime_data
    await wait_until(lambda: runtime.availability.down, "the node to be missed")
    await hass.async_add_executor_job(node.restart)
    meter, actions = runtime.meter, runtime.actions
    assert meter is not None
    assert actions is not None
    await wait_until(
        lambda: meter.connected and actions.connected and not runtime.availability.down,
        "every connection back",
        seconds=60,
    )
    await push_reading(hass, node, time=_iso(boundary + 32), power=250.0)
    await wait_for_state(hass, power_id, "250.0", seconds=20)
    assert float(_state(hass, import_id)) == 0.5
    said = [
        (record.levelname, record.getMessage())
        for record in caplog.records
        if record.levelno >= logging.INFO and record.name.startswith("custom_components")
    ]
    assert said == [
        ("WARNING", said[0][1]),
        ("INFO", f"Transactiva node at {node.url} is available again"),
    ]
    assert said[0][1].startswith(f"Transactiva node at {node.url} is unavailable: ")


async def test_readings_every_second_write_few_states(
    hass: HomeAssistant, meter_node: RealNode
) -> None:
    """The recorder's rows: half an hour of one reading a second (a steady load with noise,
    one appliance switched on) writes at most one state per entity per update interval plus
    the changes that matter (about 120 an hour instead of 3600 at 30 s), and counters only in
    whole Wh."""
    node = meter_node
    entry = await setup_entry(hass, node.url, node)
    meter = entry.runtime_data.meter
    assert meter is not None
    assert meter.interval == DEFAULT_METER_INTERVAL == 10
    # The option, through the options flow (the entry reloads with it).
    menu = await hass.config_entries.options.async_init(entry.entry_id)
    assert "meter_updates" in menu["menu_options"]
    form = await hass.config_entries.options.async_configure(
        menu["flow_id"], {"next_step_id": "meter_updates"}
    )
    assert form["type"] is FlowResultType.FORM
    suggested = {
        str(key): (key.description or {}).get("suggested_value")
        for key in form["data_schema"].schema
    }
    assert suggested == {CONF_METER_INTERVAL: DEFAULT_METER_INTERVAL}
    done = await hass.config_entries.options.async_configure(
        form["flow_id"], {CONF_METER_INTERVAL: 30.0}
    )
    assert done["type"] is FlowResultType.CREATE_ENTRY
    await hass.async_block_till_done()
    assert entry.options[CONF_METER_INTERVAL] == 30
    meter = entry.runtime_data.meter
    assert meter is not None
    assert meter.interval == 30

    power_id = entity_id(hass, "sensor", node, "meter_power")
    import_id = entity_id(hass, "sensor", node, "meter_energy_import")
    export_id = entity_id(hass, "sensor", node, "meter_energy_export")
    written: dict[str, list[str]] = {power_id: [], import_id: [], export_id: []}

    @callback
    def count(event: Event[EventStateChangedData]) -> None:
        new = event.data["new_state"]
        if new is not None and new.entity_id in written:
            written[new.entity_id].append(new.state)

    stop = hass.bus.async_listen(EVENT_STATE_CHANGED, count)
    # Half an hour that ends a minute ago (readings may not be ahead of the node's clock).
    start = int(time.time()) - 1860
    imported = 1000.0  # kWh
    watts = 0.0
    for n in range(1800):
        watts = 400.0 + (n * 37) % 41 - 20 + (2000.0 if n >= 900 else 0.0)
        imported += watts / 3_600_000
        await push_reading(
            hass,
            node,
            time=_iso(start + n),
            power=watts,
            import_kwh_total=imported,
            export_kwh_total=20.0,
        )
    # The last reading, held back, is told when its time comes.
    await wait_for_state(hass, power_id, str(watts), seconds=60)
    stop()

    # 1800 readings: every 30 s, plus the washer switched on and the intervals that closed.
    assert 1800 // 30 - 5 <= len(written[power_id]) <= 1800 // 30 + 5, written[power_id]
    assert len(written[import_id]) <= 1800 // 30 + 5
    assert len(written[export_id]) <= 1  # it did not move
    assert written[power_id][-1] == str(watts)
    # The counter in whole Wh, and it got where the readings got.
    assert all(len(value.partition(".")[2]) <= 3 for value in written[import_id])
    assert abs(float(_state(hass, import_id)) - (imported - 1000.0)) < 0.0011


async def test_home_assistant_sensors_are_the_nodes_meter(
    hass: HomeAssistant, meter_node: RealNode
) -> None:
    node = meter_node
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
    entry = await setup_entry(hass, node.url, node, options)
    readings = entry.runtime_data.readings
    assert readings is not None
    power_id = entity_id(hass, "sensor", node, "meter_power")
    import_id = entity_id(hass, "sensor", node, "meter_energy_import")
    # A change is sent to the node, which reads it as its meter and pushes it back.
    hass.states.async_set("sensor.potencia", "-0.25", {"unit_of_measurement": "kW"})
    await wait_for_state(hass, power_id, "-250.0")
    reading = readings.reading()
    assert (reading["power"], reading["import_kwh_total"]) == (-250.0, 1200.5)
    assert "export_kwh_total" not in reading  # unavailable: left out
    assert abs(dt_util.parse_datetime(reading["time"]).timestamp() - time.time()) < 60  # type: ignore[union-attr]

    hass.states.async_set(
        "sensor.importada", "1201.25", {"unit_of_measurement": "kWh", "state_class": "total"}
    )
    await wait_until(lambda: _state(hass, import_id) == "0.75", "the imported energy")
    status, meter = await node_get(hass, node, "local/meter")
    assert status == 200
    assert (meter["source"], meter["power"], meter["import_wh_total"]) == ("pushed", -250.0, 750.0)
    hass.states.async_set(
        "sensor.exportada", "2500", {"unit_of_measurement": "Wh", "state_class": "total"}
    )
    hass.states.async_set("sensor.potencia", "no number", {"unit_of_measurement": "kW"})
    hass.states.async_set("sensor.importada", "5", {"unit_of_measurement": "°C"})
    await hass.async_block_till_done()
    await wait_until(lambda: not readings._sending, "the readings to be sent")
    latest = readings.reading()
    assert latest["export_kwh_total"] == 2.5
    assert "power" not in latest
    assert "import_kwh_total" not in latest  # not an energy unit
    # The node took the export counter's 2.5 kWh as its baseline (its export so far is
    # the -250 W integrated between the first readings) and kept its import; its latest
    # reading has no power, so neither has the meter's power sensor.
    await wait_for_state(hass, power_id, STATE_UNKNOWN)
    status, meter = await node_get(hass, node, "local/meter")
    assert (meter["power"], meter["import_wh_total"]) == (None, 750.0)
    assert meter["export_wh_total"] < 1


async def test_readings_to_a_node_without_a_meter_warn_once(
    hass: HomeAssistant, idle_node: RealNode, caplog: pytest.LogCaptureFixture
) -> None:
    hass.states.async_set("sensor.potencia", "100", {"unit_of_measurement": "W"})
    entry = await setup_entry(
        hass, idle_node.url, idle_node, {CONF_POWER_SENSOR: "sensor.potencia"}
    )
    assert entry.runtime_data.meter is None
    assert not [
        e
        for e in er.async_entries_for_config_entry(er.async_get(hass), entry.entry_id)
        if "_meter_" in e.unique_id
    ]
    readings = entry.runtime_data.readings
    assert readings is not None
    for watts in ("101", "102", "103"):
        hass.states.async_set("sensor.potencia", watts, {"unit_of_measurement": "W"})
        await hass.async_block_till_done()
        await wait_until(lambda: not readings._sending, "the reading to be sent")
    said = [r.levelno for r in caplog.records if "no meter to send readings" in r.getMessage()]
    assert said == [logging.WARNING, logging.DEBUG, logging.DEBUG]
    assert readings.sent == 0
    # No meter, no analytics.
    with pytest.raises(ServiceValidationError) as refused:
        await _forecast(hass, entry.entry_id)
    assert refused.value.translation_key == "no_meter"
    assert refused.value.translation_placeholders == {"entry": "Casa"}


async def _forecast(hass: HomeAssistant, entry_id: str) -> None:
    await hass.services.async_call(
        DOMAIN,
        "get_forecast",
        {"config_entry_id": entry_id},
        blocking=True,
        return_response=True,
    )
