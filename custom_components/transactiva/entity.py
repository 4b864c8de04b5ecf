"""The bases of Transactiva entities: coordinator-driven, grouped in the node's devices."""

from __future__ import annotations

from typing import Any

from homeassistant.helpers.update_coordinator import CoordinatorEntity, DataUpdateCoordinator

from transactiva_client.models import ForecastSummary, MeterReading

from .analytics import AnalyticsCoordinator
from .coordinator import TransactivaCoordinator
from .devices import Group, device_info
from .meter import MeterCoordinator


class _Base[C: DataUpdateCoordinator[Any]](CoordinatorEntity[C]):
    _attr_has_entity_name = True

    def __init__(
        self,
        coordinator: C,
        node: TransactivaCoordinator,
        group: Group,
        key: str,
        unique_key: str | None = None,
    ) -> None:
        super().__init__(coordinator)
        participant = node.data.participant
        self._attr_unique_id = f"{participant}_{unique_key or key}"
        self._attr_translation_key = key
        self._attr_device_info = device_info(
            participant,
            group,
            str(node.config_entry.runtime_data.node_url),
        )


class TransactivaEntity(_Base[TransactivaCoordinator]):
    """An entity whose data come from the node's ledger event stream."""

    def __init__(
        self,
        coordinator: TransactivaCoordinator,
        group: Group,
        key: str,
        unique_key: str | None = None,
    ) -> None:
        super().__init__(coordinator, coordinator, group, key, unique_key)


class MeterEntity(_Base[MeterCoordinator]):
    """An entity of the node's meter, pushed by the meter stream."""

    def __init__(
        self,
        coordinator: MeterCoordinator,
        node: TransactivaCoordinator,
        key: str,
        unique_key: str | None = None,
    ) -> None:
        super().__init__(coordinator, node, Group.METER, key, unique_key)

    @property
    def available(self) -> bool:
        """Available while the stream is up and the meter has been read."""
        return super().available and self.coordinator.data is not None

    @property
    def reading(self) -> MeterReading:
        """The latest reading (only asked for while available)."""
        reading = self.coordinator.data
        assert reading is not None
        return reading


class ForecastEntity(_Base[AnalyticsCoordinator]):
    """A forecast total of the meter's analytics (a device of the meter)."""

    def __init__(
        self, coordinator: AnalyticsCoordinator, node: TransactivaCoordinator, key: str
    ) -> None:
        super().__init__(coordinator, node, Group.METER, key, f"meter_{key}")

    @property
    def available(self) -> bool:
        """Available once the node's models are fitted (14 days of history)."""
        summary = self.coordinator.data
        return super().available and summary is not None and summary.ready

    @property
    def summary(self) -> ForecastSummary:
        """The latest summary (only asked for while available)."""
        summary = self.coordinator.data
        assert summary is not None
        return summary
