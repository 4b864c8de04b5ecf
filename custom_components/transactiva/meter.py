"""The node's meter as a push source: ``GET /local/meter`` and its stream.

A node with the meter role (a SmartPi, a generic HTTP or MQTT meter, or readings
pushed by Home Assistant; ``ledger_core/meter/api.py``) serves its latest reading
at ``GET /api/v1/local/meter`` and pushes it again at every reading on the
WebSocket ``/api/v1/local/meter/stream`` (the latest one first, on connection)::

    {"time": ISO 8601, "source": "smartpi",
     "phases": [{"phase": 1, "voltage": V, "current": A, "power": W,
                 "power_factor": -1..1, "frequency": Hz}, ...],
     "neutral_current": A, "power": W (+ import, - export),
     "import_wh_total": Wh, "export_wh_total": Wh,
     "last_interval": {"interval_start": s, "import_wh": Wh, "export_wh": Wh} | null,
     "service": "connected" | "cut" | "unknown"}

The lifetime totals are the meter role's own counters (kept in its ``meter.db``
across restarts). A node without the role answers 404: no meter entities.
Before its first reading it answers 503 ``no_reading``: the entities exist and
are unavailable until a reading comes. The stream is followed like the
ledger's: growing pauses between reconnections; its going and coming back count
towards the node's one log line each way (``availability.py``). ``MeterReading``
of ``transactiva_client`` accepts exactly that shape; anything else is skipped.

The meter reads every second, and each state Home Assistant writes is a row of its
recorder. So the entities are told of a reading at most every
``meter_update_interval`` seconds of the meter's time (an option, 10 by default; 0
tells every reading), and at once when it matters: the total power moved by at least
50 W and 10 % since the last reading told, the supply went on or off, a new interval
closed, or a quantity appeared or went. A reading held back is told when its time
comes even if no other follows. The latest reading is always the coordinator's data.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime
from typing import TYPE_CHECKING, Final

from homeassistant.core import CALLBACK_TYPE, HomeAssistant, callback
from homeassistant.helpers.event import async_call_later
from homeassistant.helpers.update_coordinator import DataUpdateCoordinator, UpdateFailed

from transactiva_client import TransactivaClient, TransactivaError, TransactivaNotReadyError
from transactiva_client.models import MeterReading

from .availability import METER, NodeAvailability, set_unavailable
from .const import CONF_METER_INTERVAL, DEFAULT_METER_INTERVAL, DOMAIN

if TYPE_CHECKING:
    from transactiva_client.client import Stream

    from . import TransactivaConfigEntry

LOGGER = logging.getLogger(__package__)
RETRY_SECONDS: Final = (1, 2, 5, 10, 30)
# A change of the total power told at once: at least this many W and this share of the last.
SIGNIFICANT_W: Final = 50.0
SIGNIFICANT_SHARE: Final = 0.1


class MeterCoordinator(DataUpdateCoordinator[MeterReading | None]):
    """Holds the meter's latest reading (None before the first) and follows its stream."""

    config_entry: TransactivaConfigEntry

    def __init__(
        self,
        hass: HomeAssistant,
        entry: TransactivaConfigEntry,
        client: TransactivaClient,
        first: MeterReading | None,
        availability: NodeAvailability,
    ) -> None:
        super().__init__(
            hass, LOGGER, config_entry=entry, name=f"{DOMAIN} meter", update_interval=None
        )
        self.client = client
        self.availability = availability
        self.interval = float(entry.options.get(CONF_METER_INTERVAL, DEFAULT_METER_INTERVAL))
        self.told: MeterReading | None = None  # the last reading the entities were told of
        self._held: CALLBACK_TYPE | None = None  # the timer that tells a held-back reading
        entry.async_on_unload(self._cancel_held)
        self.async_set_updated_data(first)
        self.connected = False  # while a stream connection is open

    @callback
    def async_set_updated_data(self, data: MeterReading | None) -> None:
        """Tell the entities of ``data``, now or, when nothing in it matters yet, once
        ``interval`` seconds have passed since the last reading told."""
        wait = self._wait(data)
        if wait <= 0:
            self._cancel_held()
            self.told = data
            super().async_set_updated_data(data)
            return
        self.data = data
        if self._held is None:
            self._held = async_call_later(self.hass, wait, self._tell_held)

    @callback
    def _tell_held(self, _now: datetime) -> None:
        self._held = None
        if self.data is not self.told and self.last_update_success:
            # Its time has come on the clock: no later reading moved the meter's time on.
            self.told = self.data
            super().async_set_updated_data(self.data)

    @callback
    def _cancel_held(self) -> None:
        if self._held is not None:
            self._held()
            self._held = None

    def _wait(self, new: MeterReading | None) -> float:
        """Seconds until ``new`` may be told (0 or less: now)."""
        old = self.told
        if self.interval <= 0 or old is None or new is None or not self.last_update_success:
            return 0
        if old.time is None or new.time is None:
            return 0
        if significant(old, new):
            return 0
        return self.interval - (new.time - old.time).total_seconds()

    async def _async_update_data(self) -> MeterReading | None:
        """A reading on request (``homeassistant.update_entity``); the stream pushes the rest."""
        try:
            reading = await self.client.meter()
        except TransactivaNotReadyError:
            return self.data
        except TransactivaError as err:
            raise self._failed("cannot_connect", error=str(err)) from err
        if reading is None:
            raise self._failed("no_meter_any_more")
        return reading

    def _failed(self, key: str, **placeholders: str) -> UpdateFailed:
        return UpdateFailed(
            translation_domain=DOMAIN,
            translation_key=key,
            translation_placeholders={"url": self.availability.url} | placeholders,
        )

    def start(self) -> None:
        """Follow the meter stream until the entry unloads."""
        self.config_entry.async_create_background_task(
            self.hass, self._follow(), f"{DOMAIN} meter stream"
        )

    async def _follow(self) -> None:
        attempt = 0
        while True:
            received = False
            try:
                received = await self._stream()
                error = "the node closed the meter stream"
            except (TransactivaError, TimeoutError) as err:
                error = str(err) or type(err).__name__
            if received:
                attempt = 0
            self.availability.lost(METER, error)
            set_unavailable(self, self._failed("cannot_connect", error=error))
            await asyncio.sleep(RETRY_SECONDS[min(attempt, len(RETRY_SECONDS) - 1)])
            attempt += 1

    async def _stream(self) -> bool:
        """Follow one connection; whether it delivered a reading."""
        async with self.client.meter_readings() as stream:
            self.connected = True
            self.availability.back(METER)
            try:
                return await self._read(stream)
            finally:
                self.connected = False

    async def _read(self, stream: Stream[MeterReading]) -> bool:
        received = False
        async for reading in stream:
            received = True
            self.async_set_updated_data(reading)
        return received


def significant(old: MeterReading, new: MeterReading) -> bool:
    """Whether ``new`` is worth a state at once after ``old`` (the last told)."""
    if (old.service, old.last_interval, len(old.phases)) != (
        new.service,
        new.last_interval,
        len(new.phases),
    ):
        return True
    pairs = [(old.power, new.power), (old.import_wh_total, new.import_wh_total)]
    pairs += [
        (old.export_wh_total, new.export_wh_total),
        (old.neutral_current, new.neutral_current),
    ]
    pairs += [(a.power, b.power) for a, b in zip(old.phases, new.phases, strict=True)]
    if any((a is None) != (b is None) for a, b in pairs):
        return True
    if old.power is None or new.power is None:
        return False
    change = abs(new.power - old.power)
    return change >= SIGNIFICANT_W and change >= SIGNIFICANT_SHARE * abs(old.power)
