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
ledger's: growing pauses between reconnections, one log line when it goes, one
when the first reading after that arrives. :func:`parse_reading` accepts
exactly that shape and raises EventError for anything else (the reading is
skipped).
"""

from __future__ import annotations

import asyncio
import logging
import math
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Final

import aiohttp
from homeassistant.core import HomeAssistant
from homeassistant.helpers.update_coordinator import DataUpdateCoordinator, UpdateFailed
from homeassistant.util import dt as dt_util

from .api import TransactivaClient, TransactivaError, TransactivaNotReadyError
from .const import DOMAIN
from .events import EventError, integer

if TYPE_CHECKING:
    from . import TransactivaConfigEntry

LOGGER = logging.getLogger(__package__)
RETRY_SECONDS: Final = (1, 2, 5, 10, 30)
PHASE_QUANTITIES: Final = ("voltage", "current", "power", "power_factor", "frequency")


@dataclass(frozen=True, slots=True)
class Phase:
    """One phase's instantaneous values (None when the meter does not measure it)."""

    phase: str
    voltage: float | None
    current: float | None
    power: float | None
    power_factor: float | None
    frequency: float | None


@dataclass(frozen=True, slots=True)
class Interval:
    """The last complete interval's energy."""

    start: int
    import_wh: int
    export_wh: int


@dataclass(frozen=True, slots=True)
class MeterReading:
    """One reading of the node's meter."""

    time: datetime | None
    source: str
    phases: tuple[Phase, ...]
    neutral_current: float | None
    power: float | None
    import_wh_total: float | None
    export_wh_total: float | None
    last_interval: Interval | None
    service: bool | None


def _number(data: dict[str, Any], key: str) -> float | None:
    value = data.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise EventError(f"{key} must be a number")
    if isinstance(value, int) and abs(value) > 10**15:
        raise EventError(f"{key} is out of range")
    number = float(value)
    if not math.isfinite(number) or abs(number) > 1e15:
        raise EventError(f"{key} must be a finite number")
    return number


def _counter(data: dict[str, Any], key: str) -> float | None:
    value = _number(data, key)
    if value is not None and value < 0:
        raise EventError(f"{key} never goes below zero")
    return value


def parse_reading(body: object) -> MeterReading:
    """A MeterReading from the node's JSON, or EventError saying what is wrong."""
    if not isinstance(body, dict):
        raise EventError("a meter reading is a JSON object")
    raw_phases = body.get("phases", [])
    if not isinstance(raw_phases, list) or len(raw_phases) > 3:
        raise EventError("phases must be a list of at most 3 phases")
    phases: list[Phase] = []
    for raw in raw_phases:
        if not isinstance(raw, dict):
            raise EventError("each phase is an object")
        name = raw.get("phase")
        if isinstance(name, bool) or not isinstance(name, int | str) or not str(name).strip():
            raise EventError("each phase has a name or number")
        values = [_number(raw, key) for key in PHASE_QUANTITIES]
        phases.append(Phase(str(name).strip()[:8], *values))
    if len({phase.phase for phase in phases}) != len(phases):
        raise EventError("phase names repeat")
    interval = body.get("last_interval")
    last: Interval | None = None
    if interval is not None:
        if not isinstance(interval, dict):
            raise EventError("last_interval is an object or null")
        last = Interval(
            integer(interval, "interval_start", 0, 2**40),
            integer(interval, "import_wh", 0, 10**12),
            integer(interval, "export_wh", 0, 10**12),
        )
    service = body.get("service")
    if service not in (None, True, False, "connected", "cut", "unknown"):
        raise EventError("service is connected, cut, unknown, true, false or null")
    raw_time = body.get("time")
    moment = dt_util.parse_datetime(raw_time) if isinstance(raw_time, str) else None
    source = body.get("source", "")
    return MeterReading(
        time=moment,
        source=source[:64] if isinstance(source, str) else "",
        phases=tuple(phases),
        neutral_current=_number(body, "neutral_current"),
        power=_number(body, "power"),
        import_wh_total=_counter(body, "import_wh_total"),
        export_wh_total=_counter(body, "export_wh_total"),
        last_interval=last,
        service=None if service in (None, "unknown") else service in (True, "connected"),
    )


class MeterCoordinator(DataUpdateCoordinator[MeterReading | None]):
    """Holds the meter's latest reading (None before the first) and follows its stream."""

    config_entry: TransactivaConfigEntry

    def __init__(
        self,
        hass: HomeAssistant,
        entry: TransactivaConfigEntry,
        client: TransactivaClient,
        first: MeterReading | None,
    ) -> None:
        super().__init__(
            hass, LOGGER, config_entry=entry, name=f"{DOMAIN} meter", update_interval=None
        )
        self.client = client
        self.async_set_updated_data(first)
        self.connected = False  # while a stream connection is open
        self._lost = False

    async def _async_update_data(self) -> MeterReading | None:
        """A reading on request (``homeassistant.update_entity``); the stream pushes the rest."""
        try:
            body = await self.client.meter()
        except TransactivaNotReadyError:
            return self.data
        except TransactivaError as err:
            raise UpdateFailed(f"cannot read the meter: {err}") from err
        if body is None:
            raise UpdateFailed("the node no longer has a meter")
        try:
            return parse_reading(body)
        except EventError as err:
            raise UpdateFailed(f"the meter's reading is not understood: {err}") from err

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
            except (aiohttp.ClientError, TransactivaError, TimeoutError) as err:
                error = str(err) or type(err).__name__
            if received:
                attempt = 0
            if not self._lost:
                LOGGER.warning("Transactiva meter unavailable: %s", error)
                self._lost = True
            self.async_set_update_error(UpdateFailed(error))
            await asyncio.sleep(RETRY_SECONDS[min(attempt, len(RETRY_SECONDS) - 1)])
            attempt += 1

    async def _stream(self) -> bool:
        """Follow one connection; whether it delivered a reading."""
        async with self.client.meter_stream() as socket:
            self.connected = True
            try:
                return await self._read(socket)
            finally:
                self.connected = False

    async def _read(self, socket: aiohttp.ClientWebSocketResponse) -> bool:
        received = False
        async for message in socket:
            if message.type is not aiohttp.WSMsgType.TEXT:
                break
            try:
                reading = parse_reading(message.json())
            except (EventError, ValueError) as err:
                LOGGER.debug("Skipping a meter reading: %s", err)
                continue
            received = True
            if self._lost:
                LOGGER.info("Transactiva meter available again")
                self._lost = False
            self.async_set_updated_data(reading)
        return received
