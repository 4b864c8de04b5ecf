"""Diagnostics: what the entry knows, with tokens, keys and addresses redacted."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any, Final

from homeassistant.components.diagnostics import async_redact_data
from homeassistant.const import CONF_TOKEN, CONF_URL
from homeassistant.core import HomeAssistant

from . import TransactivaConfigEntry
from .const import CONF_ADDRESS

TO_REDACT: Final = {
    CONF_TOKEN,
    CONF_URL,
    CONF_ADDRESS,
    "participant",
    "validator",
    "proposer",
    "signers",
    "signed",
    "names",  # the parties' display names, by address
    "targets",
    "public_key",
    "unique_id",
    "entity_id",
}


async def async_get_config_entry_diagnostics(
    hass: HomeAssistant, entry: TransactivaConfigEntry
) -> dict[str, Any]:
    """The entry's settings and data, redacted."""
    runtime = entry.runtime_data
    state = runtime.coordinator.data
    meter = runtime.meter
    appliances = runtime.appliances
    readings = runtime.readings
    data = {
        "entry": {
            "unique_id": entry.unique_id,
            "data": dict(entry.data),
            "options": {
                **entry.options,
                # Contract device names are the user's; which ones are mapped is enough.
                "appliances": sorted(entry.options.get("appliances", {})),
            },
        },
        "node": {
            "status": asdict(state.status),
            "roles": list(state.roles),
            "height": state.height,
            "replaying": state.replaying,
            "connected": runtime.coordinator.last_update_success,
        },
        "market": {
            "prices": [asdict(row) for row in state.prices.values()],
            "demand_response": [event.to_json() for event in state.demand_response.values()],
            "service_connected": state.service_connected,
        },
        "wallet": {
            "balance": state.balance.balance,
            "held": state.balance.held,
            "day": state.day.isoformat(),
            "earnings": state.earnings,
            "spending": state.spending,
        },
        "contracts": [asdict(info) for info in state.contracts.values()],
        "last_action": None if state.last_action is None else asdict(state.last_action),
        "last_action_result": state.last_action_result,
        "handled_action_id": runtime.coordinator.handled_action_id,
        "actions_connected": None if runtime.actions is None else runtime.actions.connected,
        "market_results": {
            "last_cleared": None if state.last_cleared is None else asdict(state.last_cleared),
            "last_priced": None if state.last_priced is None else asdict(state.last_priced),
        },
        "meter": None
        if meter is None
        else {
            "connected": meter.last_update_success,
            "reading": None if meter.data is None else asdict(meter.data),
        },
        "forecast": None
        if runtime.analytics is None
        else {
            "connected": runtime.analytics.last_update_success,
            "summary": None if runtime.analytics.data is None else asdict(runtime.analytics.data),
        },
        "appliances": {
            "last_result": None if appliances is None else appliances.last_result,
        },
        "readings": None
        if readings is None
        else {"sensors": readings.sensors, "sent": readings.sent},
    }
    return async_redact_data(data, TO_REDACT)
