"""The blueprints in docs/blueprints run as automations against a real node."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from conftest import RealNode, entity_id, local, setup_entry, wait_for_state
from homeassistant.components.blueprint.models import Blueprint, BlueprintInputs
from homeassistant.components.blueprint.schemas import BLUEPRINT_SCHEMA
from homeassistant.core import HomeAssistant
from homeassistant.helpers.template import Template
from homeassistant.setup import async_setup_component
from homeassistant.util import dt as dt_util
from homeassistant.util.yaml import load_yaml

BLUEPRINTS = Path(__file__).resolve().parents[2] / "docs" / "blueprints"


async def _automation(hass: HomeAssistant, name: str, inputs: dict[str, Any]) -> None:
    path = BLUEPRINTS / name
    data = await hass.async_add_executor_job(load_yaml, path)
    blueprint = Blueprint(data, expected_domain="automation", schema=BLUEPRINT_SCHEMA)
    use = BlueprintInputs(blueprint, {"use_blueprint": {"path": name, "input": inputs}})
    use.validate()
    config = use.async_substitute() | {"id": name, "alias": name}
    assert await async_setup_component(hass, "homeassistant", {})
    assert await async_setup_component(hass, "automation", {"automation": [config]})
    await hass.async_block_till_done()


async def test_the_appliance_runs_in_the_cheapest_window(
    hass: HomeAssistant, transactiva_node: RealNode
) -> None:
    node = transactiva_node
    assert await async_setup_component(
        hass, "input_boolean", {"input_boolean": {"lavavajillas": {"name": "Lavavajillas"}}}
    )
    entry = await setup_entry(hass, node.url, node)
    now = int(time.time())
    current = now // 900 * 900
    # Dearer later; the current interval is the cheapest that fits before the deadline.
    for n, cents in enumerate((1500, 2500, 3000, 2600)):
        await local(
            hass,
            node,
            "price_signal",
            {
                "interval_start": current + 900 * n,
                "import_price": cents * 10,
                "export_price": 0,
                "network_fee": 0,
            },
        )
    deadline = dt_util.as_local(dt_util.utc_from_timestamp(current + 4 * 900))
    await _automation(
        hass,
        "cheapest_window.yaml",
        {
            "node": entry.entry_id,
            "appliance": "input_boolean.lavavajillas",
            "run_minutes": 15,
            "deadline": deadline.strftime("%H:%M:%S"),
        },
    )
    await hass.services.async_call(
        "automation", "trigger", {"entity_id": "automation.cheapest_window_yaml"}, blocking=True
    )
    await wait_for_state(hass, "input_boolean.lavavajillas", "on")
    # Its daily time trigger is not left behind.
    await hass.services.async_call(
        "automation", "turn_off", {"entity_id": "automation.cheapest_window_yaml"}, blocking=True
    )


async def test_loads_are_shed_during_demand_response_and_restored(
    hass: HomeAssistant, transactiva_node: RealNode
) -> None:
    node = transactiva_node
    assert await async_setup_component(
        hass,
        "input_boolean",
        {"input_boolean": {"calentador": {"initial": True}, "bomba": {"initial": False}}},
    )
    assert await async_setup_component(hass, "scene", {})
    await setup_entry(hass, node.url, node)
    await _automation(
        hass,
        "shed_load_on_demand_response.yaml",
        {
            "active": entity_id(hass, "binary_sensor", node, "demand_response_active"),
            "level": entity_id(hass, "sensor", node, "demand_response_level"),
            "minimum_level": 2,
            "loads": ["input_boolean.calentador", "input_boolean.bomba"],
        },
    )
    await local(
        hass,
        node,
        "dr_event",
        {
            "event_id": "pico",
            "modification_number": 0,
            "signal": {"name": "SIMPLE", "level": 2},
            "start": int(time.time()) - 1,
            "duration": 6,
            "targets": [],
            "cancelled": False,
        },
    )
    await wait_for_state(hass, "input_boolean.calentador", "off")
    # When the event ends, each load is back as it was (the pump stays off).
    await wait_for_state(hass, "input_boolean.calentador", "on", seconds=20)
    assert hass.states.get("input_boolean.bomba").state == "off"  # type: ignore[union-attr]


def _intervals(start: int, prices: list[float | None]) -> list[dict[str, Any]]:
    return [
        {
            "start": dt_util.utc_from_timestamp(start + 900 * n).isoformat(),
            "end": dt_util.utc_from_timestamp(start + 900 * (n + 1)).isoformat(),
            "import_price": price,
        }
        for n, price in enumerate(prices)
        if price is not None
    ]


async def test_the_window_choice_is_the_cheapest_contiguous_run_before_the_deadline(
    hass: HomeAssistant,
) -> None:
    data = await hass.async_add_executor_job(load_yaml, BLUEPRINTS / "cheapest_window.yaml")
    source = data["actions"][1]["variables"]["best_start"]
    start = int(time.time()) // 900 * 900 + 900

    def choose(prices: list[float | None], minutes: int, hours_to_deadline: float) -> str:
        deadline = dt_util.as_local(dt_util.utc_from_timestamp(start + hours_to_deadline * 3600))
        template = Template(source, hass)
        return str(
            template.async_render(
                {
                    "prices": {"intervals": _intervals(start, prices)},
                    "run_minutes": minutes,
                    "deadline_time": deadline.strftime("%H:%M:%S"),
                },
                parse_result=False,
            )
        ).strip()

    def at(n: int) -> str:
        return dt_util.utc_from_timestamp(start + 900 * n).isoformat()

    # 30 minutes: intervals 4 and 5 cost 1 + 0.5; 5 and 7 would cost 0.6, but 6 is
    # missing, so they are not one run.
    assert choose([3, 3, 2, 1, 1, 0.5, None, 0.1], 30, 3) == at(4)
    # The deadline leaves out the cheap end of the night.
    assert choose([3, 2, 4, 4, 0.1, 0.1], 30, 1) == at(0)
    assert choose([3, 2, 4, 4, 0.1, 0.1], 30, 2) == at(4)
    # Nothing long enough before the deadline: no run.
    assert choose([1, None, 1], 30, 3) == ""
