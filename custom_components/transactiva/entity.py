"""The base of every Transactiva entity: one device per node, coordinator-driven."""

from __future__ import annotations

from homeassistant.helpers.device_registry import DeviceEntryType, DeviceInfo
from homeassistant.helpers.update_coordinator import CoordinatorEntity

from .const import DOMAIN
from .coordinator import TransactivaCoordinator


class TransactivaEntity(CoordinatorEntity[TransactivaCoordinator]):
    """An entity of the node's device."""

    _attr_has_entity_name = True

    def __init__(self, coordinator: TransactivaCoordinator, key: str) -> None:
        super().__init__(coordinator)
        participant = coordinator.data.status.participant
        self._attr_unique_id = f"{participant}_{key}"
        self._attr_translation_key = key
        self._attr_device_info = DeviceInfo(
            identifiers={(DOMAIN, participant)},
            name=f"Transactiva {coordinator.data.status.chain_id}",
            manufacturer="Transactiva",
            model="Ledger node",
            entry_type=DeviceEntryType.SERVICE,
            configuration_url=str(coordinator.config_entry.runtime_data.node_url),
        )
