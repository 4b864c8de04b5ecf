"""Diagnostics say what the entry knows and never the token, keys or addresses."""

from __future__ import annotations

import json

from conftest import CONTRACT, RealNode, local, setup_entry, wait_until
from homeassistant.core import HomeAssistant
from pytest_homeassistant_custom_component.components.diagnostics import (
    get_diagnostics_for_config_entry,
)
from pytest_homeassistant_custom_component.typing import ClientSessionGenerator

from custom_components.transactiva.const import CONF_APPLIANCES, CONF_BLUETOOTH


async def test_diagnostics_are_redacted(
    hass: HomeAssistant, hass_client: ClientSessionGenerator, transactiva_node: RealNode
) -> None:
    node = transactiva_node
    options = {
        CONF_APPLIANCES: {"Lavadora": "switch.lavadora"},
        CONF_BLUETOOTH: [
            {
                "name": "Relevador",
                "address": "AA:BB:CC:DD:EE:FF",
                "characteristic": "0000ff01-0000-1000-8000-00805f9b34fb",
                "on_payload": "01",
                "off_payload": "00",
            }
        ],
    }
    entry = await setup_entry(hass, node.url, node, options)
    await local(hass, node, "contract_propose", {"source": CONTRACT})
    coordinator = entry.runtime_data.coordinator
    await wait_until(lambda: bool(coordinator.data.contracts), "the contract")
    actions = entry.runtime_data.actions
    assert actions is not None
    await wait_until(lambda: actions.connected, "the local stream")

    diagnostics = await get_diagnostics_for_config_entry(hass, hass_client, entry)
    text = json.dumps(diagnostics)
    for secret in (node.token, node.participant, node.url, "AA:BB:CC:DD:EE:FF"):
        assert secret not in text
    assert diagnostics["entry"]["data"] == {"url": "**REDACTED**", "token": "**REDACTED**"}
    assert diagnostics["entry"]["options"]["appliances"] == ["Lavadora"]
    assert diagnostics["node"]["status"]["chain_id"] == "transactiva-local"
    assert diagnostics["node"]["roles"] == ["ISO", "SUPPLIER", "DSO"]
    (contract,) = diagnostics["contracts"]
    assert contract["status"] == "active"
    assert contract["signers"] == "**REDACTED**"
    assert diagnostics["meter"] is None
    assert diagnostics["forecast"] is None
    assert diagnostics["readings"] is None
    # No price is known, so the contract has not acted: the node's action log is empty.
    assert diagnostics["actions_connected"] is True
    assert diagnostics["handled_action_id"] == 0
    assert diagnostics["market_results"] == {"last_cleared": None, "last_priced": None}
