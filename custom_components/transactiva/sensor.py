"""Sensors: the wallet balance and the node's chain height."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal

from homeassistant.components.sensor import (
    SensorDeviceClass,
    SensorEntity,
    SensorEntityDescription,
)
from homeassistant.const import EntityCategory
from homeassistant.core import HomeAssistant
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback

from . import TransactivaConfigEntry
from .coordinator import NodeData, TransactivaCoordinator
from .entity import TransactivaEntity

PARALLEL_UPDATES = 0  # pushed by the coordinator; nothing to throttle


@dataclass(frozen=True, kw_only=True)
class TransactivaSensorDescription(SensorEntityDescription):
    """How a sensor reads its value from the node data."""

    value: Callable[[NodeData], Decimal | int]


SENSORS: tuple[TransactivaSensorDescription, ...] = (
    TransactivaSensorDescription(
        key="wallet_balance",
        device_class=SensorDeviceClass.MONETARY,
        native_unit_of_measurement="MXN",
        suggested_display_precision=2,
        value=lambda data: Decimal(data.balance) / 100,
    ),
    TransactivaSensorDescription(
        key="height",
        entity_category=EntityCategory.DIAGNOSTIC,
        value=lambda data: data.height,
    ),
)


async def async_setup_entry(
    hass: HomeAssistant,
    entry: TransactivaConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Add the node's sensors."""
    coordinator = entry.runtime_data.coordinator
    async_add_entities(TransactivaSensor(coordinator, description) for description in SENSORS)


class TransactivaSensor(TransactivaEntity, SensorEntity):
    """A sensor of the node's device."""

    entity_description: TransactivaSensorDescription

    def __init__(
        self, coordinator: TransactivaCoordinator, description: TransactivaSensorDescription
    ) -> None:
        super().__init__(coordinator, description.key)
        self.entity_description = description

    @property
    def native_value(self) -> Decimal | int:
        """The current value."""
        return self.entity_description.value(self.coordinator.data)
