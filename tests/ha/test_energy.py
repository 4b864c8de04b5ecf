"""The Energy dashboard's own validation accepts the meter counters and the price entities.

Both come from a real node: the meter role's lifetime counters from readings pushed to it,
prices from the operator's signal.
"""

from __future__ import annotations

import time
from typing import Any

import pytest
from conftest import (
    RealNode,
    StartNode,
    entity_id,
    local,
    push_reading,
    setup_entry,
    wait_for_state,
)
from homeassistant.components.energy.data import GridSourceType, async_get_manager
from homeassistant.components.energy.validate import async_validate
from homeassistant.core import HomeAssistant
from homeassistant.setup import async_setup_component
from homeassistant.util import dt as dt_util
from pytest_homeassistant_custom_component.components.recorder.common import (
    async_wait_recording_done,
    do_adhoc_statistics,
)


@pytest.fixture(autouse=True)
def mock_recorder_before_hass(async_test_recorder: Any) -> None:
    """The recorder's database is prepared before Home Assistant starts."""


@pytest.fixture
def meter_node(start_node: StartNode) -> RealNode:
    """A node with the meter role, reading what is pushed to it."""
    return start_node("node", meter=True)


async def test_energy_dashboard_accepts_the_counters_and_prices(
    recorder_mock: Any, hass: HomeAssistant, meter_node: RealNode
) -> None:
    node = meter_node
    hass.config.currency = "MXN"
    assert await async_setup_component(hass, "energy", {})
    await setup_entry(hass, node.url, node)
    now = time.time()
    for seconds, imported, exported in ((60, 1200.0, 50.0), (30, 1200.4, 50.1)):
        stamp = dt_util.utc_from_timestamp(now - seconds).isoformat()
        reading = {"import_kwh_total": imported, "export_kwh_total": exported, "power": 900.0}
        await push_reading(hass, node, time=stamp, **reading)
    start = int(now) // 900 * 900
    await local(
        hass,
        node,
        "price_signal",
        {"interval_start": start, "import_price": 25000, "export_price": 8000, "network_fee": 0},
    )
    import_price = entity_id(hass, "sensor", node, "import_price")
    export_price = entity_id(hass, "sensor", node, "export_price")
    await wait_for_state(hass, import_price, "2.5000")
    energy_in = entity_id(hass, "sensor", node, "meter_energy_import")
    energy_out = entity_id(hass, "sensor", node, "meter_energy_export")
    await wait_for_state(hass, energy_in, "0.4")
    assert float(hass.states.get(energy_out).state) == 0.1  # type: ignore[union-attr]

    # Long-term statistics exist once a period is compiled.
    await async_wait_recording_done(hass)
    now = dt_util.utcnow()
    do_adhoc_statistics(
        hass, start=now.replace(minute=now.minute // 5 * 5, second=0, microsecond=0)
    )
    await async_wait_recording_done(hass)

    manager = await async_get_manager(hass)

    def grid(energy_from: str, price_from: str) -> dict[str, Any]:
        if "flow_from" not in GridSourceType.__annotations__:
            # Home Assistant 2026.x: one import/export pair per grid source.
            return {
                "energy_sources": [
                    {
                        "type": "grid",
                        "stat_energy_from": energy_from,
                        "stat_energy_to": energy_out,
                        "stat_cost": None,
                        "entity_energy_price": price_from,
                        "number_energy_price": None,
                        "stat_compensation": None,
                        "entity_energy_price_export": export_price,
                        "number_energy_price_export": None,
                        "cost_adjustment_day": 0,
                    }
                ]
            }
        return {
            "energy_sources": [
                {
                    "type": "grid",
                    "flow_from": [
                        {
                            "stat_energy_from": energy_from,
                            "stat_cost": None,
                            "entity_energy_price": price_from,
                            "number_energy_price": None,
                        }
                    ],
                    "flow_to": [
                        {
                            "stat_energy_to": energy_out,
                            "stat_compensation": None,
                            "entity_energy_price": export_price,
                            "number_energy_price": None,
                        }
                    ],
                    "cost_adjustment_day": 0,
                }
            ]
        }

    await manager.async_update(grid(energy_in, import_price))  # type: ignore[arg-type]
    validation = (await async_validate(hass)).as_dict()
    # One source and no issue with it; nothing else configured, nothing else objected to
    # (newer Home Assistant releases add groups, such as water consumption).
    assert validation["energy_sources"] == [[]]
    assert validation["device_consumption"] == []
    assert not any(issues for issues in validation.values() if issues != [[]])

    # The same check does object to entities that are not fit: a balance is not a price,
    # and power is not energy.
    balance = entity_id(hass, "sensor", node, "wallet_balance")
    power = entity_id(hass, "sensor", node, "meter_power")
    await manager.async_update(grid(power, balance))  # type: ignore[arg-type]
    issues = {
        issue["type"] for issue in (await async_validate(hass)).as_dict()["energy_sources"][0]
    }
    assert "entity_unexpected_device_class" in issues
    assert "entity_unexpected_unit_energy_price" in issues
