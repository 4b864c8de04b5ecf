"""Sensors follow a real node's event stream: pushed updates, unavailability, recovery."""

from __future__ import annotations

import asyncio
import json
import time

from conftest import RealNode
from homeassistant.const import CONF_TOKEN, CONF_URL, STATE_UNAVAILABLE
from homeassistant.core import HomeAssistant
from homeassistant.helpers import entity_registry as er
from homeassistant.helpers.aiohttp_client import async_get_clientsession
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.transactiva.const import DOMAIN


async def _wait_for(hass: HomeAssistant, entity_id: str, wanted: str, seconds: float = 20) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        state = hass.states.get(entity_id)
        if state is not None and state.state == wanted:
            return
        await asyncio.sleep(0.1)
    state = hass.states.get(entity_id)
    raise AssertionError(f"{entity_id} is {state.state if state else None}, not {wanted}")


async def _local(hass: HomeAssistant, node: RealNode, tx_type: str, body: dict[str, object]) -> str:
    session = async_get_clientsession(hass)
    async with session.post(
        f"{node.url}/api/v1/local/{tx_type}?wait=true",
        data=json.dumps(body).encode(),
        headers={"Authorization": f"Bearer {node.token}"},
    ) as response:
        result = await response.json()
    assert result["code"] == "ok", result
    return str(result["id"])


async def test_balance_and_height_are_pushed_and_survive_a_node_restart(
    hass: HomeAssistant, transactiva_node: RealNode, entity_registry: er.EntityRegistry
) -> None:
    entry = MockConfigEntry(
        domain=DOMAIN,
        unique_id=transactiva_node.participant,
        data={CONF_URL: transactiva_node.url, CONF_TOKEN: transactiva_node.token},
    )
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()

    balance_id = entity_registry.async_get_entity_id(
        "sensor", DOMAIN, f"{transactiva_node.participant}_wallet_balance"
    )
    height_id = entity_registry.async_get_entity_id(
        "sensor", DOMAIN, f"{transactiva_node.participant}_height"
    )
    assert balance_id is not None
    assert height_id is not None
    balance = hass.states.get(balance_id)
    assert balance is not None
    assert balance.state == "0"
    assert balance.attributes["unit_of_measurement"] == "MXN"
    assert balance.attributes["device_class"] == "monetary"
    assert entity_registry.async_get(height_id).entity_category == "diagnostic"  # type: ignore[union-attr]

    request = await _local(hass, transactiva_node, "deposit_request", {"amount": 15050})
    await _local(hass, transactiva_node, "deposit_confirm", {"request": request})
    await _wait_for(hass, balance_id, "150.5")
    height = hass.states.get(height_id)
    assert height is not None
    assert int(height.state) >= 2

    # The node goes away: entities become unavailable; it comes back: they recover.
    await hass.async_add_executor_job(transactiva_node.stop)
    await _wait_for(hass, balance_id, STATE_UNAVAILABLE)
    await hass.async_add_executor_job(transactiva_node.restart)
    await _wait_for(hass, balance_id, "150.5", seconds=40)

    assert await hass.config_entries.async_unload(entry.entry_id)
    await hass.async_block_till_done()
