"""Device triggers: the integration's bus events, offered on the device they concern.

The market device offers a new price signal, a demand-response event (new,
modified or cancelled), a service cut and a reconnection; the contracts device
offers a contract action. Each trigger is an event trigger on the bus event
with the device's id in its data.
"""

from __future__ import annotations

from typing import Any, Final

import voluptuous as vol
from homeassistant.components.device_automation import DEVICE_TRIGGER_BASE_SCHEMA
from homeassistant.components.homeassistant.triggers import event as event_trigger
from homeassistant.const import (
    CONF_DEVICE_ID,
    CONF_DOMAIN,
    CONF_EVENT_DATA,
    CONF_PLATFORM,
    CONF_TYPE,
)
from homeassistant.core import CALLBACK_TYPE, HomeAssistant
from homeassistant.helpers import device_registry as dr
from homeassistant.helpers.trigger import TriggerActionType, TriggerInfo
from homeassistant.helpers.typing import ConfigType

from .const import (
    DOMAIN,
    EVENT_CONTRACT_ACTION,
    EVENT_DEMAND_RESPONSE,
    EVENT_PRICE_SIGNAL,
    EVENT_SERVICE_STATUS,
)
from .devices import Group

# trigger type -> (device group, bus event, extra event data to match)
TRIGGERS: Final[dict[str, tuple[Group, str, dict[str, Any]]]] = {
    "price_signal": (Group.MARKET, EVENT_PRICE_SIGNAL, {}),
    "demand_response": (Group.MARKET, EVENT_DEMAND_RESPONSE, {}),
    "service_cut": (Group.MARKET, EVENT_SERVICE_STATUS, {"connected": False}),
    "service_reconnected": (Group.MARKET, EVENT_SERVICE_STATUS, {"connected": True}),
    "contract_action": (Group.CONTRACTS, EVENT_CONTRACT_ACTION, {}),
}

TRIGGER_SCHEMA = DEVICE_TRIGGER_BASE_SCHEMA.extend({vol.Required(CONF_TYPE): vol.In(TRIGGERS)})


def _group(hass: HomeAssistant, device_id: str) -> Group | None:
    device = dr.async_get(hass).async_get(device_id)
    if device is None:
        return None
    for domain, key in device.identifiers:
        if domain == DOMAIN:
            for group in (Group.MARKET, Group.CONTRACTS):
                if key.endswith(f"_{group}"):
                    return group
    return None


async def async_get_triggers(hass: HomeAssistant, device_id: str) -> list[dict[str, Any]]:
    """The triggers a device offers."""
    group = _group(hass, device_id)
    return [
        {
            CONF_PLATFORM: "device",
            CONF_DOMAIN: DOMAIN,
            CONF_DEVICE_ID: device_id,
            CONF_TYPE: trigger_type,
        }
        for trigger_type, (trigger_group, _, _) in TRIGGERS.items()
        if trigger_group is group
    ]


async def async_attach_trigger(
    hass: HomeAssistant,
    config: ConfigType,
    action: TriggerActionType,
    trigger_info: TriggerInfo,
) -> CALLBACK_TYPE:
    """Listen for the trigger's bus event from this device."""
    _, event_type, extra = TRIGGERS[config[CONF_TYPE]]
    event_config = event_trigger.TRIGGER_SCHEMA(
        {
            CONF_PLATFORM: "event",
            event_trigger.CONF_EVENT_TYPE: event_type,
            CONF_EVENT_DATA: {CONF_DEVICE_ID: config[CONF_DEVICE_ID], **extra},
        }
    )
    return await event_trigger.async_attach_trigger(
        hass, event_config, action, trigger_info, platform_type="device"
    )
