"""Contract actions carried out on mapped entities, with repair issues for unmapped devices.

The node does not emit ``contract_action`` events yet, so the tests hand the
coordinator such events exactly as the stream would deliver them (the shape the
node will send); everything else, the contract included, is a real node's.
"""

from __future__ import annotations

from typing import Any

import pytest
from conftest import CONTRACT, RealNode, entity_id, setup_entry, wait_until
from homeassistant.core import HomeAssistant
from homeassistant.helpers import issue_registry as ir
from homeassistant.setup import async_setup_component
from pytest_homeassistant_custom_component.common import MockConfigEntry, async_capture_events

from custom_components.transactiva.appliances import issue_id
from custom_components.transactiva.const import CONF_APPLIANCES, DOMAIN, EVENT_CONTRACT_ACTION
from custom_components.transactiva.events import ContractAction


async def _contract(hass: HomeAssistant, entry: MockConfigEntry) -> dict[str, Any]:
    answer = await hass.services.async_call(
        DOMAIN,
        "submit_contract",
        {"config_entry_id": entry.entry_id, "source": CONTRACT},
        blocking=True,
        return_response=True,
    )
    assert answer is not None
    return dict(answer)


async def _act(
    entry: MockConfigEntry,
    contract: dict[str, Any],
    device: str | None,
    action: str,
    *,
    live: bool = True,
) -> None:
    coordinator = entry.runtime_data.coordinator
    height = coordinator.data.status.height + (10**6 if live else 0)
    event = {
        "type": "contract_action",
        "contract_id": contract["contract_id"],
        "short_id": contract["short_id"],
        "action": action,
        "reason": "Price 2.5 MXN/kWh < 3 MXN/kWh",
    }
    if device is not None:
        event["device"] = device
    await coordinator.async_process_event(10**9, height, event)


@pytest.fixture
async def lavadora(hass: HomeAssistant) -> str:
    assert await async_setup_component(
        hass, "input_boolean", {"input_boolean": {"lavadora": {"name": "Lavadora"}}}
    )
    return "input_boolean.lavadora"


async def test_a_contract_action_switches_the_mapped_appliance(
    hass: HomeAssistant, transactiva_node: RealNode, lavadora: str
) -> None:
    node = transactiva_node
    entry = await setup_entry(
        hass, node.url, node, {CONF_APPLIANCES: {"Lavadora": lavadora, "Clima": "climate.sala"}}
    )
    events = async_capture_events(hass, EVENT_CONTRACT_ACTION)
    contract = await _contract(hass, entry)
    last_id = entity_id(hass, "sensor", node, "last_contract_action")

    await _act(entry, contract, "Lavadora", "turn_on")
    await wait_until(lambda: hass.states.get(lavadora).state == "on", "the washer on")  # type: ignore[union-attr]
    await wait_until(
        lambda: hass.states.get(last_id).attributes.get("carried_out") is True,  # type: ignore[union-attr]
        "the result",
    )
    last = hass.states.get(last_id)
    assert last is not None
    assert last.state == "turn_on"
    assert last.attributes["device"] == "Lavadora"
    assert last.attributes["reason"] == "Price 2.5 MXN/kWh < 3 MXN/kWh"
    assert last.attributes["short_id"] == contract["short_id"]
    contract_state = hass.states.get("sensor.transactiva_contracts_contract_lavado_barato")
    assert contract_state is not None
    assert contract_state.attributes["last_action"] == "turn_on"
    assert contract_state.attributes["last_action_device"] == "Lavadora"
    (event,) = events
    assert event.data["action"] == "turn_on"
    assert event.data["contract_id"] == contract["contract_id"]
    assert event.data["device_id"] is not None

    await _act(entry, contract, "Lavadora", "turn_off")
    await wait_until(lambda: hass.states.get(lavadora).state == "off", "the washer off")  # type: ignore[union-attr]
    appliances = entry.runtime_data.appliances
    assert appliances is not None
    await wait_until(lambda: appliances.last_result is not None, "a result")
    assert appliances.last_result is not None
    assert appliances.last_result["success"] is True

    # An appliance whose service fails: reported as not carried out.
    await _act(entry, contract, "Clima", "turn_on")
    await wait_until(
        lambda: appliances.last_result is not None and appliances.last_result["device"] == "Clima",
        "the climate result",
    )
    assert appliances.last_result["success"] is False
    assert appliances.last_result["error"] == "service_not_found"
    await wait_until(
        lambda: hass.states.get(last_id).attributes.get("carried_out") is False,  # type: ignore[union-attr]
        "the failure noted",
    )

    # The switch still happens when the node cannot hear the result.
    await hass.async_add_executor_job(node.stop)
    await appliances(ContractAction(contract["contract_id"], "0x0", "Lavadora", "turn_on", ""))
    assert hass.states.get(lavadora).state == "on"  # type: ignore[union-attr]


async def test_unmapped_devices_raise_a_repair_issue_until_mapped(
    hass: HomeAssistant, transactiva_node: RealNode, lavadora: str
) -> None:
    node = transactiva_node
    entry = await setup_entry(hass, node.url, node)
    contract = await _contract(hass, entry)
    registry = ir.async_get(hass)
    await _act(entry, contract, "Lavadora", "turn_on")
    await wait_until(
        lambda: registry.async_get_issue(DOMAIN, issue_id(entry.entry_id, "Lavadora")) is not None,
        "the repair issue",
    )
    issue = registry.async_get_issue(DOMAIN, issue_id(entry.entry_id, "Lavadora"))
    assert issue is not None
    assert issue.translation_key == "unmapped_device"
    assert issue.translation_placeholders == {"device": "Lavadora", "entry": "Casa"}
    assert issue.severity is ir.IssueSeverity.WARNING
    assert hass.states.get(lavadora).state == "off"  # type: ignore[union-attr]

    # Mapping the device (options save and reload) withdraws the issue.
    hass.config_entries.async_update_entry(entry, options={CONF_APPLIANCES: {"Lavadora": lavadora}})
    await hass.config_entries.async_reload(entry.entry_id)
    await hass.async_block_till_done()
    assert registry.async_get_issue(DOMAIN, issue_id(entry.entry_id, "Lavadora")) is None

    # Removing the entry withdraws its issues too.
    await _act(entry, contract, "Secadora", "turn_on")
    await wait_until(
        lambda: registry.async_get_issue(DOMAIN, issue_id(entry.entry_id, "Secadora")) is not None,
        "the second issue",
    )
    await hass.config_entries.async_remove(entry.entry_id)
    assert registry.async_get_issue(DOMAIN, issue_id(entry.entry_id, "Secadora")) is None


async def test_only_live_switching_actions_of_this_homes_contracts_act(
    hass: HomeAssistant, transactiva_node: RealNode, lavadora: str
) -> None:
    node = transactiva_node
    entry = await setup_entry(hass, node.url, node, {CONF_APPLIANCES: {"Lavadora": lavadora}})
    events = async_capture_events(hass, EVENT_CONTRACT_ACTION)
    contract = await _contract(hass, entry)
    appliances = entry.runtime_data.appliances
    assert appliances is not None

    # Replayed after a reconnection: remembered, but nothing is switched or fired.
    await _act(entry, contract, "Lavadora", "turn_on", live=False)
    # Not a switching action: fired for automations, nothing switched.
    await _act(entry, contract, None, "notify")
    # A contract that does not exist on the node (not this home's): ignored.
    await _act(entry, {"contract_id": "ab" * 32, "short_id": "0xABABABABAB"}, "Lavadora", "turn_on")
    # Not the node's shape: skipped.
    await entry.runtime_data.coordinator.async_process_event(
        1, 10**9, {"type": "contract_action", "contract_id": "zz", "action": "turn_on"}
    )
    await hass.async_block_till_done()
    assert hass.states.get(lavadora).state == "off"  # type: ignore[union-attr]
    assert [e.data["action"] for e in events] == ["notify"]
    assert appliances.last_result is None
    last = hass.states.get(entity_id(hass, "sensor", node, "last_contract_action"))
    assert last is not None
    assert last.state == "notify"
