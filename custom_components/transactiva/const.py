"""Constants of the Transactiva integration."""

from __future__ import annotations

from typing import Final

from transactiva_client import units
from transactiva_client.protocol import ContractStatus

DOMAIN: Final = "transactiva"
CURRENCY: Final = units.CURRENCY
PRICE_UNIT: Final = units.PRICE_UNIT

# Options (the options flow writes them; see config_flow.py).
CONF_APPLIANCES: Final = "appliances"  # {contract device name: entity id}
CONF_BLUETOOTH: Final = "bluetooth"  # [{name, address, characteristic, on_payload, off_payload}]
CONF_POWER_SENSOR: Final = "power_sensor"
CONF_IMPORT_SENSOR: Final = "import_energy_sensor"
CONF_EXPORT_SENSOR: Final = "export_energy_sensor"
CONF_DEVICE: Final = "device"
CONF_ENTITY: Final = "entity"
CONF_ADDRESS: Final = "address"
CONF_CHARACTERISTIC: Final = "characteristic"
CONF_ON_PAYLOAD: Final = "on_payload"
CONF_OFF_PAYLOAD: Final = "off_payload"
# Seconds between publications of the meter's states (0: every reading; see meter.py).
CONF_METER_INTERVAL: Final = "meter_update_interval"
DEFAULT_METER_INTERVAL: Final = 10
MAX_METER_INTERVAL: Final = 300

# Home Assistant domains whose entities a contract device may be mapped to.
APPLIANCE_DOMAINS: Final = (
    "switch",
    "light",
    "climate",
    "water_heater",
    "fan",
    "input_boolean",
)

# Events fired on Home Assistant's bus (and offered as device triggers).
EVENT_PRICE_SIGNAL: Final = f"{DOMAIN}_price_signal"
EVENT_DEMAND_RESPONSE: Final = f"{DOMAIN}_demand_response"
EVENT_CONTRACT_ACTION: Final = f"{DOMAIN}_contract_action"
EVENT_SERVICE_STATUS: Final = f"{DOMAIN}_service_status"

# Contract states as the node names them; "proposed" waits for signatures.
CONTRACT_STATES: Final = tuple(str(status) for status in ContractStatus)
