"""Sensors: market prices and results, wallet, node, contracts and, when the node has one,
the meter and its forecast totals.

Prices are in ``MXN/kWh`` with no device class (``monetary`` is for amounts),
so the Energy dashboard accepts them as price entities. Prices already
announced, and the last clearing results, stay available while the node is
unreachable: they do not change because the connection dropped. Meter counters
are ``energy`` / ``total_increasing`` in kWh, the Energy dashboard's grid
consumption and return; phase sensors appear as the meter reports phases. No
forecast series is put in a state or attribute (``transactiva.get_prices`` and
``transactiva.get_forecast`` return them); the forecast sensors hold only
today's and tomorrow's totals.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from homeassistant.components.sensor import (
    SensorDeviceClass,
    SensorEntity,
    SensorEntityDescription,
    SensorStateClass,
)
from homeassistant.const import (
    EntityCategory,
    UnitOfElectricCurrent,
    UnitOfElectricPotential,
    UnitOfEnergy,
    UnitOfFrequency,
    UnitOfPower,
)
from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers.entity_platform import AddConfigEntryEntitiesCallback
from homeassistant.util import dt as dt_util

from transactiva_client.models import (
    ContractAction,
    MarketResult,
    MeterReading,
    Phase,
    PriceSignal,
)
from transactiva_client.units import money, price

from . import TransactivaConfigEntry
from . import admission as admission_issue
from .analytics import AnalyticsCoordinator
from .const import CONTRACT_STATES, CURRENCY, PRICE_UNIT
from .coordinator import ContractInfo, NodeState, TransactivaCoordinator, now_seconds
from .devices import Group
from .entity import ForecastEntity, MeterEntity, TransactivaEntity
from .meter import MeterCoordinator

PARALLEL_UPDATES = 0  # pushed by the coordinators; nothing to throttle

type Value = Decimal | int | float | str | None


def _price(field: str, next_interval: bool = False) -> Callable[[NodeState, int], Value]:
    def value(state: NodeState, now: int) -> Value:
        moment = state.next_interval_start(now) if next_interval else now
        row: PriceSignal | None = state.price_at(moment)
        return None if row is None else price(getattr(row, field))

    return value


def _dr_level(state: NodeState, now: int) -> Value:
    active = state.active_demand_response(now)
    levels = [event.level for event in active if event.level is not None]
    if levels:
        return max(levels)
    return None if active else 0


def _sync(state: NodeState, now: int) -> Value:
    return "catching_up" if state.replaying or state.status.catching_up else "synced"


def _clearing_price(state: NodeState, now: int) -> Value:
    return None if state.last_priced is None else price(int(state.last_priced.price or 0))


def _traded_energy(state: NodeState, now: int) -> Value:
    cleared = state.last_cleared
    return None if cleared is None else cleared.volume_wh


def _market_attributes(result: MarketResult | None, *, counts: bool) -> dict[str, Any] | None:
    if result is None:
        return None
    attributes: dict[str, Any] = {
        "interval_start": dt_util.utc_from_timestamp(result.start).isoformat()
    }
    if counts:
        attributes |= {"bids": result.bids, "offers": result.offers, "trades": result.trades}
    return attributes


def _action_attributes(state: NodeState) -> dict[str, Any] | None:
    action: ContractAction | None = state.last_action
    if action is None:
        return None
    result = state.last_action_result
    return {
        "action_id": action.action_id,
        "contract_id": action.contract_id,
        "short_id": action.short_id,
        "contract": action.contract,
        "device": action.device,
        "trigger": str(action.trigger),
        "reason": action.reason,
        "description": action.description,
        "text": action.text,
        "status": str(action.status),
        "why": action.why or None,
        "to": None if action.restore_to is None else ("on" if action.restore_to else "off"),
        "time": dt_util.utc_from_timestamp(action.time).isoformat(),
        "result": None if result is None else str(result),
        "detail": state.last_action_detail,
        "carried_out": {"ok": True, "failed": False, "unmapped": False}.get(str(result)),
    }


@dataclass(frozen=True, kw_only=True)
class NodeSensorDescription(SensorEntityDescription):
    """A sensor of the ledger data: its device, value, and whether it outlives the node."""

    group: Group
    value: Callable[[NodeState, int], Value]
    kept_while_unreachable: bool = False
    daily: bool = False
    attributes: Callable[[NodeState], dict[str, Any] | None] | None = None


def _price_sensor(
    key: str, value: Callable[[NodeState, int], Value], enabled: bool = True
) -> NodeSensorDescription:
    return NodeSensorDescription(
        key=key,
        group=Group.MARKET,
        native_unit_of_measurement=PRICE_UNIT,
        state_class=SensorStateClass.MEASUREMENT,
        suggested_display_precision=4,
        kept_while_unreachable=True,
        entity_registry_enabled_default=enabled,
        value=value,
    )


def _money_sensor(
    key: str, value: Callable[[NodeState, int], Value], *, daily: bool = False, enabled: bool = True
) -> NodeSensorDescription:
    return NodeSensorDescription(
        key=key,
        group=Group.WALLET,
        device_class=SensorDeviceClass.MONETARY,
        native_unit_of_measurement=CURRENCY,
        suggested_display_precision=2,
        state_class=SensorStateClass.TOTAL if daily else None,
        daily=daily,
        entity_registry_enabled_default=enabled,
        value=value,
    )


NODE_SENSORS: tuple[NodeSensorDescription, ...] = (
    _price_sensor("import_price", _price("import_price")),
    _price_sensor("export_price", _price("export_price")),
    _price_sensor("network_fee", _price("network_fee"), enabled=False),
    _price_sensor("next_import_price", _price("import_price", next_interval=True)),
    _price_sensor("next_export_price", _price("export_price", next_interval=True), enabled=False),
    NodeSensorDescription(
        key="clearing_price",
        group=Group.MARKET,
        native_unit_of_measurement=PRICE_UNIT,
        state_class=SensorStateClass.MEASUREMENT,
        suggested_display_precision=4,
        kept_while_unreachable=True,
        value=_clearing_price,
        attributes=lambda state: _market_attributes(state.last_priced, counts=False),
    ),
    NodeSensorDescription(
        key="traded_energy",
        group=Group.MARKET,
        device_class=SensorDeviceClass.ENERGY,
        native_unit_of_measurement=UnitOfEnergy.WATT_HOUR,
        suggested_unit_of_measurement=UnitOfEnergy.KILO_WATT_HOUR,
        suggested_display_precision=3,
        kept_while_unreachable=True,
        value=_traded_energy,
        attributes=lambda state: _market_attributes(state.last_cleared, counts=True),
    ),
    NodeSensorDescription(key="demand_response_level", group=Group.MARKET, value=_dr_level),
    NodeSensorDescription(
        key="service_status",
        group=Group.MARKET,
        device_class=SensorDeviceClass.ENUM,
        options=["connected", "cut"],
        value=lambda state, now: "connected" if state.service_connected else "cut",
    ),
    _money_sensor("wallet_balance", lambda state, now: money(state.balance.balance)),
    _money_sensor("wallet_held", lambda state, now: money(state.balance.held), enabled=False),
    _money_sensor("earnings_today", lambda state, now: money(state.earnings), daily=True),
    _money_sensor("spending_today", lambda state, now: money(state.spending), daily=True),
    NodeSensorDescription(
        key="last_contract_action",
        group=Group.CONTRACTS,
        value=lambda state, now: (
            None if state.last_action is None else str(state.last_action.action)
        ),
        attributes=_action_attributes,
    ),
    NodeSensorDescription(
        key="height",
        group=Group.NODE,
        entity_category=EntityCategory.DIAGNOSTIC,
        value=lambda state, now: state.height,
    ),
    NodeSensorDescription(
        key="sync_status",
        group=Group.NODE,
        device_class=SensorDeviceClass.ENUM,
        options=["synced", "catching_up"],
        entity_category=EntityCategory.DIAGNOSTIC,
        value=_sync,
    ),
)
PEERS = NodeSensorDescription(
    key="peers",
    group=Group.NODE,
    state_class=SensorStateClass.MEASUREMENT,
    entity_category=EntityCategory.DIAGNOSTIC,
    value=lambda state, now: state.status.peers,
)


def _awaiting(state: NodeState) -> list[ContractInfo]:
    """This home's proposed contracts that wait for its signature, in the order seen."""
    return [info for info in state.contracts.values() if info.awaits(state.participant)]


def _awaiting_attributes(state: NodeState) -> dict[str, Any]:
    """What each contract awaiting this home's signature is, by whom, and who is missing."""
    return {
        "contracts": [
            {
                "contract_id": info.contract_id,
                "short_id": info.short_id,
                "name": info.name,
                "proposer": info.party_name(info.proposer),
                "parties": [info.party_name(party) for party in info.signers],
                "missing": [
                    info.party_name(party) for party in info.signers if party not in info.signed
                ],
                "valid_from": info.valid_from,
                "valid_to": info.valid_to,
            }
            for info in _awaiting(state)
        ]
    }


def _admission(state: NodeState, now: int) -> Value:
    admission = state.admission
    if admission is None or str(admission.status) not in admission_issue.STATES:
        return None
    return str(admission.status)


def _admission_attributes(state: NodeState) -> dict[str, Any] | None:
    admission = state.admission
    if admission is None:
        return None
    return {
        "name": admission.name,
        "role": None if admission.role is None else str(admission.role),
        "message": admission.message,
    }


# Membership: contracts that await this home's signature, and whether it is a member.
MEMBERSHIP_SENSORS: tuple[NodeSensorDescription, ...] = (
    NodeSensorDescription(
        key="awaiting_signature",
        group=Group.CONTRACTS,
        value=lambda state, now: len(_awaiting(state)),
        attributes=_awaiting_attributes,
    ),
    NodeSensorDescription(
        key="admission",
        group=Group.NODE,
        device_class=SensorDeviceClass.ENUM,
        options=list(admission_issue.STATES),
        value=_admission,
        attributes=_admission_attributes,
    ),
)


@dataclass(frozen=True, kw_only=True)
class MeterSensorDescription(SensorEntityDescription):
    """A meter sensor and how it reads a reading."""

    value: Callable[[MeterReading], Value]


def _kwh(wh: float | None) -> Value:
    """A lifetime counter in kWh, to the Wh the ledger counts in (no state per fraction)."""
    return None if wh is None else Decimal(round(wh)) / 1000


METER_SENSORS: tuple[MeterSensorDescription, ...] = (
    MeterSensorDescription(
        key="power",
        device_class=SensorDeviceClass.POWER,
        native_unit_of_measurement=UnitOfPower.WATT,
        state_class=SensorStateClass.MEASUREMENT,
        value=lambda reading: reading.power,
    ),
    MeterSensorDescription(
        key="energy_import",
        device_class=SensorDeviceClass.ENERGY,
        native_unit_of_measurement=UnitOfEnergy.KILO_WATT_HOUR,
        state_class=SensorStateClass.TOTAL_INCREASING,
        suggested_display_precision=3,
        value=lambda reading: _kwh(reading.import_wh_total),
    ),
    MeterSensorDescription(
        key="energy_export",
        device_class=SensorDeviceClass.ENERGY,
        native_unit_of_measurement=UnitOfEnergy.KILO_WATT_HOUR,
        state_class=SensorStateClass.TOTAL_INCREASING,
        suggested_display_precision=3,
        value=lambda reading: _kwh(reading.export_wh_total),
    ),
    MeterSensorDescription(
        key="last_interval_import",
        device_class=SensorDeviceClass.ENERGY,
        native_unit_of_measurement=UnitOfEnergy.WATT_HOUR,
        value=lambda reading: (
            None if reading.last_interval is None else reading.last_interval.import_wh
        ),
    ),
    MeterSensorDescription(
        key="last_interval_export",
        device_class=SensorDeviceClass.ENERGY,
        native_unit_of_measurement=UnitOfEnergy.WATT_HOUR,
        value=lambda reading: (
            None if reading.last_interval is None else reading.last_interval.export_wh
        ),
    ),
    MeterSensorDescription(
        key="neutral_current",
        device_class=SensorDeviceClass.CURRENT,
        native_unit_of_measurement=UnitOfElectricCurrent.AMPERE,
        state_class=SensorStateClass.MEASUREMENT,
        entity_registry_enabled_default=False,
        value=lambda reading: reading.neutral_current,
    ),
)


@dataclass(frozen=True, kw_only=True)
class PhaseSensorDescription(SensorEntityDescription):
    """A per-phase meter quantity."""

    quantity: str


PHASE_SENSORS: tuple[PhaseSensorDescription, ...] = (
    PhaseSensorDescription(
        key="phase_power",
        quantity="power",
        device_class=SensorDeviceClass.POWER,
        native_unit_of_measurement=UnitOfPower.WATT,
        state_class=SensorStateClass.MEASUREMENT,
    ),
    PhaseSensorDescription(
        key="phase_voltage",
        quantity="voltage",
        device_class=SensorDeviceClass.VOLTAGE,
        native_unit_of_measurement=UnitOfElectricPotential.VOLT,
        state_class=SensorStateClass.MEASUREMENT,
        entity_registry_enabled_default=False,
    ),
    PhaseSensorDescription(
        key="phase_current",
        quantity="current",
        device_class=SensorDeviceClass.CURRENT,
        native_unit_of_measurement=UnitOfElectricCurrent.AMPERE,
        state_class=SensorStateClass.MEASUREMENT,
        entity_registry_enabled_default=False,
    ),
    PhaseSensorDescription(
        key="phase_power_factor",
        quantity="power_factor",
        device_class=SensorDeviceClass.POWER_FACTOR,
        state_class=SensorStateClass.MEASUREMENT,
        entity_registry_enabled_default=False,
    ),
    PhaseSensorDescription(
        key="phase_frequency",
        quantity="frequency",
        device_class=SensorDeviceClass.FREQUENCY,
        native_unit_of_measurement=UnitOfFrequency.HERTZ,
        state_class=SensorStateClass.MEASUREMENT,
        entity_registry_enabled_default=False,
    ),
)


@dataclass(frozen=True, kw_only=True)
class ForecastSensorDescription(SensorEntityDescription):
    """A forecast total of the node's analytics (the summary's key)."""

    total: str
    measured: str | None = None  # today's: what was measured so far
    days_ahead: int = 0


def _forecast(key: str, measured: str | None = None) -> ForecastSensorDescription:
    return ForecastSensorDescription(
        key=f"forecast_{key}",
        total=f"{key}_wh",
        measured=measured,
        days_ahead=0 if measured else 1,
        device_class=SensorDeviceClass.ENERGY,
        native_unit_of_measurement=UnitOfEnergy.WATT_HOUR,
        suggested_unit_of_measurement=UnitOfEnergy.KILO_WATT_HOUR,
        suggested_display_precision=2,
    )


FORECAST_SENSORS: tuple[ForecastSensorDescription, ...] = (
    _forecast("consumption_today", "measured_consumption_wh"),
    _forecast("production_today", "measured_production_wh"),
    _forecast("consumption_tomorrow"),
    _forecast("production_tomorrow"),
)
# Whether the node's models are fitted (translated states); ``message`` says why not.
FORECAST_STATUS = SensorEntityDescription(
    key="forecast_status",
    device_class=SensorDeviceClass.ENUM,
    options=["ready", "learning"],
    entity_category=EntityCategory.DIAGNOSTIC,
)


async def async_setup_entry(
    hass: HomeAssistant,
    entry: TransactivaConfigEntry,
    async_add_entities: AddConfigEntryEntitiesCallback,
) -> None:
    """Add the node's sensors, one per contract as contracts appear, and one per meter
    quantity of each phase as the meter reports phases."""
    runtime = entry.runtime_data
    node = runtime.coordinator
    descriptions = [*NODE_SENSORS, *MEMBERSHIP_SENSORS]
    if node.data.status.peers is not None:
        descriptions.append(PEERS)
    entities: list[SensorEntity] = [NodeSensor(node, d) for d in descriptions]
    meter = runtime.meter
    if meter is not None:
        entities.extend(MeterSensor(meter, node, d) for d in METER_SENSORS)
    if runtime.analytics is not None:
        entities.extend(ForecastSensor(runtime.analytics, node, d) for d in FORECAST_SENSORS)
        entities.append(ForecastStatusSensor(runtime.analytics, node))
    async_add_entities(entities)

    known: set[str] = set()

    @callback
    def add_new_contracts() -> None:
        new = [cid for cid in node.data.contracts if cid not in known]
        known.update(new)
        if new:
            async_add_entities(ContractSensor(node, cid) for cid in new)

    add_new_contracts()
    entry.async_on_unload(node.async_add_listener(add_new_contracts))
    if meter is None:
        return
    phases: set[str] = set()

    @callback
    def add_new_phases() -> None:
        reading = meter.data
        new = [p.phase for p in reading.phases if p.phase not in phases] if reading else []
        phases.update(new)
        if new:
            async_add_entities(
                PhaseSensor(meter, node, d, phase) for phase in new for d in PHASE_SENSORS
            )

    add_new_phases()
    entry.async_on_unload(meter.async_add_listener(add_new_phases))


class NodeSensor(TransactivaEntity, SensorEntity):
    """A sensor of the ledger data."""

    entity_description: NodeSensorDescription

    def __init__(
        self, coordinator: TransactivaCoordinator, description: NodeSensorDescription
    ) -> None:
        super().__init__(coordinator, description.group, description.key)
        self.entity_description = description

    @property
    def available(self) -> bool:
        """Unavailable with the node, except values that stay meaningful (announced prices)."""
        if self.entity_description.kept_while_unreachable:
            return self.native_value is not None
        return super().available

    @property
    def native_value(self) -> Value:
        """The current value."""
        return self.entity_description.value(self.coordinator.data, now_seconds())

    @property
    def last_reset(self) -> datetime | None:
        """Local midnight of the day that daily totals count."""
        if not self.entity_description.daily:
            return None
        return dt_util.start_of_local_day(self.coordinator.data.day)

    @property
    def extra_state_attributes(self) -> dict[str, Any] | None:
        """Details: of the last contract action, of the interval a market result is for."""
        attributes = self.entity_description.attributes
        return None if attributes is None else attributes(self.coordinator.data)


class ContractSensor(TransactivaEntity, SensorEntity):
    """One of the local participant's contracts: its state and details."""

    _attr_device_class = SensorDeviceClass.ENUM

    def __init__(self, coordinator: TransactivaCoordinator, contract_id: str) -> None:
        super().__init__(coordinator, Group.CONTRACTS, "contract", f"contract_{contract_id}")
        self._attr_options = list(CONTRACT_STATES)
        self.contract_id = contract_id
        info = coordinator.data.contracts[contract_id]
        self._attr_translation_placeholders = {"name": info.name, "short_id": info.short_id}

    @property
    def available(self) -> bool:
        """Available while the node is and the contract is known."""
        return super().available and self.contract_id in self.coordinator.data.contracts

    @property
    def native_value(self) -> str | None:
        """The contract's state (proposed means waiting for signatures)."""
        info = self.coordinator.data.contracts.get(self.contract_id)
        return None if info is None else info.status

    @property
    def extra_state_attributes(self) -> dict[str, Any] | None:
        """Short id, validity, signatures and the latest action with its reason."""
        info = self.coordinator.data.contracts.get(self.contract_id)
        if info is None:
            return None
        action = info.last_action
        return {
            "contract_id": info.contract_id,
            "short_id": info.short_id,
            "name": info.name,
            "valid_from": info.valid_from,
            "valid_to": info.valid_to,
            "role": "proposer" if info.proposer == self.coordinator.data.participant else "party",
            "signatures": f"{len(info.signed)}/{len(info.signers)}",
            "last_action": None if action is None else str(action.action),
            "last_action_device": None if action is None else action.device,
            "last_action_reason": None if action is None else action.reason,
        }


class MeterSensor(MeterEntity, SensorEntity):
    """A whole-meter quantity."""

    entity_description: MeterSensorDescription

    def __init__(
        self,
        coordinator: MeterCoordinator,
        node: TransactivaCoordinator,
        description: MeterSensorDescription,
    ) -> None:
        super().__init__(coordinator, node, description.key, f"meter_{description.key}")
        self.entity_description = description

    @property
    def native_value(self) -> Value:
        """The current value."""
        return self.entity_description.value(self.reading)

    @property
    def extra_state_attributes(self) -> dict[str, Any] | None:
        """For the last interval's energy: when that interval started."""
        interval = self.reading.last_interval
        if not self.entity_description.key.startswith("last_interval") or interval is None:
            return None
        return {"interval_start": dt_util.utc_from_timestamp(interval.start).isoformat()}


class PhaseSensor(MeterEntity, SensorEntity):
    """A per-phase meter quantity."""

    entity_description: PhaseSensorDescription

    def __init__(
        self,
        coordinator: MeterCoordinator,
        node: TransactivaCoordinator,
        description: PhaseSensorDescription,
        phase: str,
    ) -> None:
        super().__init__(coordinator, node, description.key, f"meter_{phase}_{description.key}")
        self.entity_description = description
        self.phase = phase
        self._attr_translation_placeholders = {"phase": phase}

    @property
    def native_value(self) -> Value:
        """The phase's value, None while the meter does not report this phase."""
        found: Phase | None = next((p for p in self.reading.phases if p.phase == self.phase), None)
        return None if found is None else getattr(found, self.entity_description.quantity)


class ForecastStatusSensor(ForecastEntity, SensorEntity):
    """Whether the forecast is ready, or still learning from the home's history (the node's
    models need 14 days): the forecast totals are unavailable meanwhile."""

    entity_description = FORECAST_STATUS

    def __init__(self, coordinator: AnalyticsCoordinator, node: TransactivaCoordinator) -> None:
        super().__init__(coordinator, node, FORECAST_STATUS.key)

    @property
    def available(self) -> bool:
        """Available whenever the node's summary could be read."""
        return self.coordinator.last_update_success and self.coordinator.data is not None

    @property
    def native_value(self) -> str:
        """``ready`` or ``learning``."""
        return "ready" if self.summary.ready else "learning"

    @property
    def extra_state_attributes(self) -> dict[str, Any]:
        """The node's own words on why it is not ready (None when it is)."""
        return {"message": None if self.summary.ready else self.summary.message}


class ForecastSensor(ForecastEntity, SensorEntity):
    """Today's or tomorrow's expected energy (today's: measured so far plus the rest)."""

    entity_description: ForecastSensorDescription

    def __init__(
        self,
        coordinator: AnalyticsCoordinator,
        node: TransactivaCoordinator,
        description: ForecastSensorDescription,
    ) -> None:
        super().__init__(coordinator, node, description.key)
        self.entity_description = description

    @property
    def native_value(self) -> int | None:
        """The total in Wh."""
        return self.summary.totals.get(self.entity_description.total)

    @property
    def extra_state_attributes(self) -> dict[str, Any]:
        """The day it is for (the node's local date) and, for today, what was measured."""
        summary = self.summary
        day = summary.date + timedelta(days=self.entity_description.days_ahead)
        attributes: dict[str, Any] = {"date": day.isoformat()}
        if self.entity_description.measured is not None:
            attributes["measured_wh"] = getattr(summary, self.entity_description.measured)
        return attributes
