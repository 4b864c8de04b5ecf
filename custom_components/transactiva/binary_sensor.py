"""Binary sensors: a demand-response event in force, and the meter's grid supply."""

from __future__ import annotations

from typing import Any

from homeassistant.components.binary_sensor import BinarySensorDeviceClass, BinarySensorEntity
from homeassistant.core import HomeAssistant
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback
from homeassistant.util import dt as dt_util

from . import TransactivaConfigEntry
from .coordinator import TransactivaCoordinator, now_seconds
from .devices import Group
from .entity import MeterEntity, TransactivaEntity
from .meter import MeterCoordinator

PARALLEL_UPDATES = 0  # pushed by the coordinators; nothing to throttle


async def async_setup_entry(
    hass: HomeAssistant,
    entry: TransactivaConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Add the binary sensors."""
    runtime = entry.runtime_data
    entities: list[BinarySensorEntity] = [DemandResponseActive(runtime.coordinator)]
    if runtime.meter is not None:
        entities.append(GridSupply(runtime.meter, runtime.coordinator))
    async_add_entities(entities)


class DemandResponseActive(TransactivaEntity, BinarySensorEntity):
    """On while a demand-response event for this participant is in force."""

    def __init__(self, coordinator: TransactivaCoordinator) -> None:
        super().__init__(coordinator, Group.MARKET, "demand_response_active")

    @property
    def is_on(self) -> bool:
        """Whether an event is in force now."""
        return bool(self.coordinator.data.active_demand_response(now_seconds()))

    @property
    def extra_state_attributes(self) -> dict[str, Any] | None:
        """The event in force (the one ending last, when several overlap)."""
        active = self.coordinator.data.active_demand_response(now_seconds())
        if not active:
            return None
        event = max(active, key=lambda e: e.end)
        return {
            "event_id": event.event_id,
            "signal": str(event.signal),
            "start": dt_util.utc_from_timestamp(event.start).isoformat(),
            "end": dt_util.utc_from_timestamp(event.end).isoformat(),
        }


class GridSupply(MeterEntity, BinarySensorEntity):
    """On while the meter sees the grid's supply (off during a service cut)."""

    _attr_device_class = BinarySensorDeviceClass.POWER

    def __init__(self, coordinator: MeterCoordinator, node: TransactivaCoordinator) -> None:
        super().__init__(coordinator, node, "grid_supply", "meter_grid_supply")

    @property
    def is_on(self) -> bool | None:
        """Whether the grid supplies the home (None when the meter does not say)."""
        return self.reading.service
