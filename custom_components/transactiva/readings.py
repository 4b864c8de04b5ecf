"""Home Assistant's own sensors as the node's meter (for homes without a SmartPi).

The options flow picks a power sensor (W or kW) and lifetime energy counters
for import and export (kWh, ``total_increasing``). On every state change of
any of them, the integration sends the node one reading::

    POST /api/v1/local/meter/readings
    {"time": ISO 8601, "power": W, "import_kwh_total": kWh, "export_kwh_total": kWh}

with each value converted to those units (exactly the fields the node's
``pushed`` meter source takes, ``ledger_core/meter/api.py``); a key is left out
while its sensor is not picked or has no numeric state, and nothing is sent
while none has one. The node keeps its own lifetime counters from the
differences of the energy counters (a counter that goes down is taken as
replaced, not as negative energy) and integrates power where no counter is
given. Changes that arrive while a reading is being sent are coalesced into the
next one (the latest state wins). A refusal is logged as a warning the first
time for each reason (a node without the meter role answers 404; one whose
meter reads its own device, 409 ``not_pushed``), then at debug level.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, Final

from homeassistant.const import STATE_UNAVAILABLE, STATE_UNKNOWN
from homeassistant.core import Event, EventStateChangedData, HomeAssistant, State, callback
from homeassistant.exceptions import HomeAssistantError
from homeassistant.helpers.event import async_track_state_change_event
from homeassistant.util import dt as dt_util
from homeassistant.util.unit_conversion import EnergyConverter, PowerConverter

from transactiva_client import TransactivaClient, TransactivaError, TransactivaRequestError
from transactiva_client.models import PushedReading

from .const import CONF_EXPORT_SENSOR, CONF_IMPORT_SENSOR, CONF_POWER_SENSOR, DOMAIN

if TYPE_CHECKING:
    from . import TransactivaConfigEntry

LOGGER = logging.getLogger(__package__)
FIELDS: Final = (
    (CONF_POWER_SENSOR, "power", PowerConverter, "W"),
    (CONF_IMPORT_SENSOR, "import_kwh_total", EnergyConverter, "kWh"),
    (CONF_EXPORT_SENSOR, "export_kwh_total", EnergyConverter, "kWh"),
)


def convert(
    state: State | None, converter: type[PowerConverter | EnergyConverter], unit: str
) -> float | None:
    """A sensor's state in ``unit``, or None when it has no usable number."""
    if state is None or state.state in (STATE_UNKNOWN, STATE_UNAVAILABLE):
        return None
    try:
        value = float(state.state)
    except ValueError:
        return None
    from_unit = state.attributes.get("unit_of_measurement")
    if from_unit not in converter.VALID_UNITS:
        return None
    try:
        return float(converter.convert(value, from_unit, unit))
    except HomeAssistantError:
        return None


class ReadingForwarder:
    """Sends Home Assistant's meter sensors to the node on every change."""

    def __init__(
        self,
        hass: HomeAssistant,
        entry: TransactivaConfigEntry,
        client: TransactivaClient,
        sensors: dict[str, str],
    ) -> None:
        self.hass = hass
        self.entry = entry
        self.client = client
        self.sensors = sensors  # option key -> entity id
        self.sent = 0
        self._pending = False
        self._sending = False
        self._warned: set[str] = set()  # refusal codes already logged as warnings

    @classmethod
    def from_options(
        cls,
        hass: HomeAssistant,
        entry: TransactivaConfigEntry,
        client: TransactivaClient,
    ) -> ReadingForwarder | None:
        """A forwarder for the sensors picked in the options, or None when none is."""
        sensors = {key: str(entry.options[key]) for key, *_ in FIELDS if entry.options.get(key)}
        return cls(hass, entry, client, sensors) if sensors else None

    @callback
    def start(self) -> None:
        """Listen to the sensors until the entry unloads."""
        self.entry.async_on_unload(
            async_track_state_change_event(self.hass, list(self.sensors.values()), self._changed)
        )

    def current(self) -> PushedReading:
        """The current reading of the picked sensors, in the node's units."""
        values: dict[str, float] = {}
        for key, name, converter, unit in FIELDS:
            if key in self.sensors:
                value = convert(self.hass.states.get(self.sensors[key]), converter, unit)
                if value is not None:
                    values[name] = value
        return PushedReading(dt_util.utcnow(), **values)

    def reading(self) -> dict[str, Any]:
        """The current reading as the node takes it (a sensor without a number is left out)."""
        return self.current().to_json()

    @callback
    def _changed(self, event: Event[EventStateChangedData]) -> None:
        self._pending = True
        if not self._sending:
            self._sending = True
            self.entry.async_create_background_task(
                self.hass, self._send_pending(), f"{DOMAIN} meter reading"
            )

    async def _send_pending(self) -> None:
        try:
            while self._pending:
                self._pending = False
                reading = self.current()
                if not reading.empty:
                    await self._send(reading)
        finally:
            self._sending = False

    async def _send(self, reading: PushedReading) -> None:
        try:
            await self.client.post_meter_reading(reading)
        except TransactivaRequestError as err:
            log = LOGGER.debug if err.code in self._warned else LOGGER.warning
            self._warned.add(err.code)
            if err.status == 404:
                log(
                    "The Transactiva node has no meter to send readings to; give it the "
                    'meter role with "meter": {"source": {"type": "pushed"}} in its config.json'
                )
            else:
                log("The Transactiva node refused a meter reading: %s", err)
        except TransactivaError as err:
            LOGGER.debug("Cannot send a meter reading: %s", err)
        else:
            self.sent += 1
