"""Device triggers: offered on the market and contracts devices, fired by the node's events."""

from __future__ import annotations

import time

from conftest import CONTRACT, RealNode, local, node_device, setup_entry, wait_until
from homeassistant.components import automation
from homeassistant.components.device_automation import DeviceAutomationType
from homeassistant.core import HomeAssistant, ServiceCall
from homeassistant.setup import async_setup_component
from pytest_homeassistant_custom_component.common import async_get_device_automations

from custom_components.transactiva import device_trigger
from custom_components.transactiva.const import DOMAIN


async def test_devices_offer_their_triggers_and_automations_run_on_them(
    hass: HomeAssistant,
    transactiva_node: RealNode,
    service_calls: list[ServiceCall],
) -> None:
    node = transactiva_node
    await setup_entry(hass, node.url, node)
    market = node_device(hass, node, "market")
    contracts = node_device(hass, node, "contracts")
    wallet = node_device(hass, node, "wallet")

    def types(device_id: str, triggers: list[dict[str, str]]) -> list[str]:
        return sorted(
            t["type"] for t in triggers if t["device_id"] == device_id and t["domain"] == DOMAIN
        )

    market_triggers = await async_get_device_automations(
        hass, DeviceAutomationType.TRIGGER, market.id
    )
    assert types(market.id, market_triggers) == [
        "demand_response",
        "price_signal",
        "service_cut",
        "service_reconnected",
    ]
    contract_triggers = await async_get_device_automations(
        hass, DeviceAutomationType.TRIGGER, contracts.id
    )
    assert types(contracts.id, contract_triggers) == ["contract_action"]
    wallet_triggers = await async_get_device_automations(
        hass, DeviceAutomationType.TRIGGER, wallet.id
    )
    assert types(wallet.id, wallet_triggers) == []
    assert await device_trigger.async_get_triggers(hass, "no-such-device") == []

    def trigger(kind: str, device_id: str) -> dict[str, object]:
        return {
            "trigger": {
                "platform": "device",
                "domain": DOMAIN,
                "device_id": device_id,
                "type": kind,
            },
            "action": {
                "service": "test.automation",
                "data_template": {"kind": kind, "data": "{{ trigger.event.data }}"},
            },
        }

    assert await async_setup_component(
        hass,
        automation.DOMAIN,
        {
            automation.DOMAIN: [
                trigger("service_cut", market.id),
                trigger("service_reconnected", market.id),
                trigger("price_signal", market.id),
                trigger("contract_action", contracts.id),
            ]
        },
    )
    await local(hass, node, "service", {"participant": node.participant, "connected": False})
    await wait_until(lambda: len(service_calls) == 1, "the service-cut automation")
    assert service_calls[0].data["kind"] == "service_cut"
    assert service_calls[0].data["data"]["connected"] is False
    await local(hass, node, "service", {"participant": node.participant, "connected": True})
    await wait_until(lambda: len(service_calls) == 2, "the reconnection automation")
    assert service_calls[1].data["kind"] == "service_reconnected"

    # The operator's price makes this home's contract act on the node: both automations run.
    now = int(time.time())
    price = {"interval_start": now // 900 * 900, "import_price": 20000, "export_price": 0}
    await local(hass, node, "price_signal", price | {"network_fee": 0})
    await wait_until(lambda: len(service_calls) == 3, "the price-signal automation")
    assert service_calls[2].data["data"]["import_price"] == 2.0
    await local(hass, node, "contract_propose", {"source": CONTRACT})
    await wait_until(lambda: len(service_calls) == 4, "the contract-action automation")
    assert service_calls[3].data["kind"] == "contract_action"
    action = service_calls[3].data["data"]
    assert (action["action"], action["device"], action["trigger"]) == (
        "turn_on",
        "Lavadora",
        "price_signal",
    )
    assert action["device_id"] == contracts.id
