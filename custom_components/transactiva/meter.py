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
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Final

from homeassistant.core import HomeAssistant
from homeassistant.helpers.update_coordinator import DataUpdateCoordinator, UpdateFailed

from transactiva_client import TransactivaClient, TransactivaError, TransactivaNotReadyError
from transactiva_client.models import MeterReading

from .availability import METER, NodeAvailability, set_unavailable
from .const import DOMAIN

if TYPE_CHECKING:
    from transactiva_client.client import Stream

    from . import TransactivaConfigEntry

LOGGER = logging.getLogger(__package__)
RETRY_SECONDS: Final = (1, 2, 5, 10, 30)


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
        self.async_set_updated_data(first)
        self.connected = False  # while a stream connection is open

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
