"""Switches: Bluetooth LE actuators configured in the options flow.

Each actuator is a device of the entry's own, under the node's device; its
identifier holds its Bluetooth address. It declares no Bluetooth connection:
Home Assistant 2025.x would merge it with another integration's device of that
address, and removing the actuator would then remove that device too. The
state is assumed (a relay does not say whether it is on) and restored after a
restart. A contract device can be mapped to one of these switches like to any
other entity, so ``TURN ON DEVICE 'Lavadora'`` can drive a Bluetooth relay.
"""

from __future__ import annotations

from typing import Any

from homeassistant.components.switch import SwitchEntity
from homeassistant.const import STATE_ON
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import HomeAssistantError
from homeassistant.helpers.device_registry import DeviceInfo
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback
from homeassistant.helpers.restore_state import RestoreEntity

from . import TransactivaConfigEntry
from .ble_client import BleWriteError, write_payload
from .const import (
    CONF_ADDRESS,
    CONF_BLUETOOTH,
    CONF_CHARACTERISTIC,
    CONF_OFF_PAYLOAD,
    CONF_ON_PAYLOAD,
    DOMAIN,
)

PARALLEL_UPDATES = 1  # one Bluetooth connection at a time


def actuator_identifier(participant: str, address: str) -> tuple[str, str]:
    """The device registry identifier of a Bluetooth actuator."""
    return (DOMAIN, f"{participant}_ble_{address}")


async def async_setup_entry(
    hass: HomeAssistant,
    entry: TransactivaConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Add a switch per configured Bluetooth actuator."""
    participant = entry.runtime_data.coordinator.data.participant
    async_add_entities(
        BluetoothActuator(participant, dict(item)) for item in entry.options.get(CONF_BLUETOOTH, [])
    )


class BluetoothActuator(SwitchEntity, RestoreEntity):
    """A relay switched by writing to a GATT characteristic."""

    _attr_has_entity_name = True
    _attr_name = None  # the device's name
    _attr_assumed_state = True
    _attr_translation_key = "bluetooth_actuator"

    def __init__(self, participant: str, config: dict[str, Any]) -> None:
        self.address: str = config[CONF_ADDRESS]
        self.characteristic: str = config[CONF_CHARACTERISTIC]
        self.payloads = {
            True: bytes.fromhex(config[CONF_ON_PAYLOAD]),
            False: bytes.fromhex(config[CONF_OFF_PAYLOAD]),
        }
        self._attr_unique_id = f"{participant}_ble_{self.address}"
        self._attr_is_on = False
        self._attr_device_info = DeviceInfo(
            identifiers={actuator_identifier(participant, self.address)},
            name=config["name"],
            manufacturer="Transactiva",
            model="Bluetooth actuator",
        )
        self.device_name: str = config["name"]

    async def async_added_to_hass(self) -> None:
        """Take up the last known state."""
        await super().async_added_to_hass()
        last = await self.async_get_last_state()
        if last is not None:
            self._attr_is_on = last.state == STATE_ON

    async def async_turn_on(self, **kwargs: Any) -> None:  # noqa: ANN401 - entity API
        """Write the 'on' payload."""
        await self._switch(on=True)

    async def async_turn_off(self, **kwargs: Any) -> None:  # noqa: ANN401 - entity API
        """Write the 'off' payload."""
        await self._switch(on=False)

    async def _switch(self, *, on: bool) -> None:
        placeholders = {"name": self.device_name, "address": self.address}
        if "bluetooth" not in self.hass.config.components:
            raise HomeAssistantError(
                translation_domain=DOMAIN,
                translation_key="bluetooth_unavailable",
                translation_placeholders=placeholders,
            )
        # Imported here: the Bluetooth integration and its libraries are loaded
        # only on systems that set it up (checked just above).
        from homeassistant.components import bluetooth  # noqa: PLC0415

        device = bluetooth.async_ble_device_from_address(self.hass, self.address, connectable=True)
        if device is None:
            raise HomeAssistantError(
                translation_domain=DOMAIN,
                translation_key="bluetooth_not_found",
                translation_placeholders=placeholders,
            )
        try:
            await write_payload(device, self.device_name, self.characteristic, self.payloads[on])
        except BleWriteError as err:
            raise HomeAssistantError(
                translation_domain=DOMAIN,
                translation_key="bluetooth_write_failed",
                translation_placeholders=placeholders | {"error": str(err)},
            ) from err
        self._attr_is_on = on
        self.async_write_ha_state()
