"""Where readings come from: the :class:`MeterSource` protocol and its implementations.

- :class:`~ledger_core.meter.smartpi.SmartPiClient`: a SmartPi over its REST API
  (polled).
- :class:`HttpJsonSource`: any meter that answers JSON over HTTP, with the JSON
  paths of its values configured (polled).
- :class:`PushedSource`: readings POSTed to the node, typically by Home
  Assistant from whatever power and energy sensors the home has (self-paced:
  :meth:`~PushedSource.read` waits for the next push).
- :class:`MqttSource`: a SmartPi publishing over MQTT (``P1..P3``, ``V1..V3``,
  ``I1..I4``, ``F1..F3``, ``COS1..COS3`` every sample and lifetime ``EcTot`` /
  ``EpTot`` every minute, under a base topic that is empty by default, so
  topics look like ``/P1``) (self-paced).

:func:`source_from_config` builds any of them from a JSON object, with errors
that name the offending field.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, fields
from typing import Any, Final, Protocol

import aiohttp
import aiomqtt

from ledger_core.clock import SYSTEM_CLOCK, Clock, utc
from ledger_core.meter.reading import (
    MAX_ABS_CURRENT_A,
    MAX_ABS_POWER_W,
    MAX_ENERGY_WH,
    MAX_FREQUENCY_HZ,
    MAX_VOLTAGE_V,
    MeterDataError,
    MeterUnreachable,
    PhaseReading,
    Reading,
    check_number,
)
from ledger_core.meter.smartpi import SmartPiClient, parse_json, read_limited

LOG: Final = logging.getLogger(__name__)


class MeterSource(Protocol):
    """Anything that gives readings.

    ``self_paced`` sources wait inside :meth:`read` for the device's next reading
    (pushes, MQTT); the service polls the others every sample period.
    """

    name: str
    self_paced: bool

    async def read(self) -> Reading:
        """The next reading, or MeterUnreachable / MeterDataError."""

    async def close(self) -> None:
        """Release connections and tasks."""


class MeterConfigError(ValueError):
    """A source configuration that cannot work; ``field`` names where."""

    def __init__(self, field: str, message: str) -> None:
        self.field = field
        self.message = message
        super().__init__(f"{field}: {message}")


# -- generic HTTP/JSON ----------------------------------------------------------------

_PATH_PART: Final = re.compile(r"([^.\[\]]+)|\[(\d+)\]")


def parse_path(path: str) -> tuple[str | int, ...]:
    """``"data.phases[1].power"`` as ``("data", "phases", 1, "power")``."""
    parts: list[str | int] = []
    position = 0
    while position < len(path):
        if path[position] == "." and parts and position + 1 < len(path):
            position += 1
        match = _PATH_PART.match(path, position)
        if match is None:
            raise ValueError(f"cannot read {path!r} at character {position + 1}")
        parts.append(match.group(1) if match.group(1) is not None else int(match.group(2)))
        position = match.end()
    if not parts:
        raise ValueError("an empty path")
    return tuple(parts)


def lookup(document: object, path: tuple[str | int, ...], where: str) -> object:
    """The value at ``path``, or MeterDataError naming the first step that is missing."""
    value = document
    walked = ""
    for part in path:
        walked += f"[{part}]" if isinstance(part, int) else (f".{part}" if walked else part)
        if isinstance(part, int):
            if not isinstance(value, list) or part >= len(value):
                raise MeterDataError("is missing", f"{where} {walked}")
            value = value[part]
        else:
            if not isinstance(value, dict) or part not in value:
                raise MeterDataError("is missing", f"{where} {walked}")
            value = value[part]
    return value


def _number(value: object, where: str, low: float, high: float) -> float:
    if isinstance(value, str):  # many devices send numbers as text
        text = value
        try:
            value = float(text)
        except ValueError:
            raise MeterDataError(f"{text[:32]!r} is not a number", where) from None
    return check_number(value, where, low, high)


@dataclass(frozen=True, slots=True)
class JsonPaths:
    """Where an HTTP/JSON meter keeps its values (``None``: it does not have that value).

    ``power`` is the net power; or give ``phase_power`` (and ``phase_voltage``)
    per phase and the net is their sum. ``power_scale`` converts to W (1000 for
    kW), ``energy_scale`` the lifetime counters to Wh (1000 for kWh); ``invert``
    flips the sign of power for meters that count export as positive.
    """

    power: str | None = "power"
    voltage: str | None = None
    current: str | None = None
    frequency: str | None = None
    power_factor: str | None = None
    import_total: str | None = None
    export_total: str | None = None
    phase_power: tuple[str, ...] = ()
    phase_voltage: tuple[str, ...] = ()
    power_scale: float = 1.0
    energy_scale: float = 1.0
    invert: bool = False

    def __post_init__(self) -> None:
        counters = (self.import_total, self.export_total)
        if self.power is None and not self.phase_power and counters == (None, None):
            raise ValueError("give power, phase_power or the energy counters")
        if len(self.phase_power) > 3 or len(self.phase_voltage) > 3:
            raise ValueError("at most three phases")
        if self.phase_voltage and len(self.phase_voltage) != len(self.phase_power):
            raise ValueError("phase_voltage lists as many phases as phase_power")
        if not (self.power_scale > 0 and self.energy_scale > 0):
            raise ValueError("scales are positive")
        for name in ("power", "voltage", "current", "frequency", "power_factor"):
            value = getattr(self, name)
            if value is not None:
                parse_path(value)
        for name in ("import_total", "export_total"):
            value = getattr(self, name)
            if value is not None:
                parse_path(value)
        for path in (*self.phase_power, *self.phase_voltage):
            parse_path(path)


class HttpJsonSource:
    """Polls ``url`` and reads values from its JSON answer at configured paths."""

    self_paced = False

    def __init__(
        self,
        url: str,
        paths: JsonPaths,
        *,
        name: str = "http",
        session: aiohttp.ClientSession | None = None,
        headers: Mapping[str, str] | None = None,
        timeout: float = 5.0,
        retries: int = 2,
        backoff: float = 0.25,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        if not url.startswith(("http://", "https://")):
            raise ValueError(f"{url!r}: the URL starts with http:// or https://")
        self.url = url
        self.paths = paths
        self.name = name
        self.headers = dict(headers or {})
        self.timeout = timeout
        self.retries = max(0, retries)
        self.backoff = backoff
        self.clock = clock
        self._session = session
        self._own_session = session is None

    async def close(self) -> None:
        if self._own_session and self._session is not None:
            await self._session.close()
            self._session = None

    async def read(self) -> Reading:
        attempt = 0
        while True:
            try:
                body, time = await self._get()
                break
            except MeterUnreachable:
                if attempt >= self.retries:
                    raise
            await asyncio.sleep(self.backoff * 2**attempt)
            attempt += 1
        return self.decode(body, time)

    async def _get(self) -> tuple[bytes, float]:
        if self._session is None:
            self._session = aiohttp.ClientSession()
        try:
            async with self._session.get(
                self.url, headers=self.headers, timeout=aiohttp.ClientTimeout(total=self.timeout)
            ) as response:
                body = await read_limited(response)
                status = response.status
        except TimeoutError:
            raise MeterUnreachable(f"no answer within {self.timeout:g} s", self.url) from None
        except aiohttp.ClientError as err:
            raise MeterUnreachable(
                f"cannot read: {str(err) or type(err).__name__}", self.url
            ) from None
        if status >= 500:
            raise MeterUnreachable(f"answered HTTP {status}", self.url)
        if status != 200:
            raise MeterDataError(f"answered HTTP {status}", self.url)
        return body, self.clock.now()

    def decode(self, body: bytes, time: float) -> Reading:
        """A reading from one JSON answer."""
        p = self.paths
        document = parse_json(body, self.url)
        sign = -1.0 if p.invert else 1.0

        def value(path: str | None, low: float, high: float, scale: float = 1.0) -> float | None:
            if path is None:
                return None
            raw = lookup(document, parse_path(path), self.url)
            return _number(raw, f"{self.url} {path}", low / scale, high / scale) * scale

        limit = MAX_ABS_POWER_W
        phases: list[PhaseReading] = []
        for i, path in enumerate(p.phase_power):
            power = value(path, -limit, limit, p.power_scale)
            voltage = value(p.phase_voltage[i], 0, MAX_VOLTAGE_V) if p.phase_voltage else None
            phases.append(
                PhaseReading(
                    phase=i + 1, voltage=voltage, power=None if power is None else sign * power
                )
            )
        net = value(p.power, -limit, limit, p.power_scale)
        if net is not None:
            net *= sign
        elif phases:
            net = math.fsum(ph.power or 0.0 for ph in phases)
        if not phases:
            phases.append(
                PhaseReading(
                    phase=1,
                    voltage=value(p.voltage, 0, MAX_VOLTAGE_V),
                    current=value(p.current, -MAX_ABS_CURRENT_A, MAX_ABS_CURRENT_A),
                    power=net,
                    power_factor=value(p.power_factor, -1, 1),
                    frequency=value(p.frequency, 0, MAX_FREQUENCY_HZ) or None,
                )
            )
        return Reading(
            time=utc(time),
            phases=tuple(phases),
            power=net,
            source=self.name,
            import_wh_total=value(p.import_total, 0, MAX_ENERGY_WH, p.energy_scale),
            export_wh_total=value(p.export_total, 0, MAX_ENERGY_WH, p.energy_scale),
        )


# -- pushed readings ----------------------------------------------------------------------


class PushedSource:
    """Readings pushed to the node (``POST /api/v1/local/meter/readings``).

    :meth:`push` queues a reading; :meth:`read` returns queued readings in
    order, waiting up to ``timeout`` real seconds for one (then the meter is
    unreachable). A push must be later than the previous one and not more
    than ``max_ahead`` seconds ahead of the clock.
    """

    self_paced = True

    def __init__(
        self,
        name: str = "pushed",
        *,
        clock: Clock = SYSTEM_CLOCK,
        timeout: float = 120.0,
        max_ahead: float = 60.0,
        maxsize: int = 1000,
    ) -> None:
        self.name = name
        self.clock = clock
        self.timeout = timeout
        self.max_ahead = max_ahead
        self._queue: asyncio.Queue[Reading] = asyncio.Queue(maxsize)
        self._last: float | None = None
        self.dropped = 0

    def push(
        self,
        *,
        time: float | None = None,
        power: float | None = None,
        import_kwh_total: float | None = None,
        export_kwh_total: float | None = None,
        voltage: float | None = None,
    ) -> Reading:
        """Queue one reading; MeterDataError (naming the field) if it cannot be one."""
        if (power, import_kwh_total, export_kwh_total, voltage) == (None, None, None, None):
            raise MeterDataError(
                "give at least one of power, import_kwh_total, export_kwh_total, voltage", "body"
            )
        now = self.clock.now()
        at = now if time is None else time
        if at > now + self.max_ahead:
            raise MeterDataError(f"is more than {self.max_ahead:g} s in the future", "time")
        if self._last is not None and at <= self._last:
            raise MeterDataError("must be later than the previous reading's", "time")
        checked = {
            "power": None
            if power is None
            else _number(power, "power", -MAX_ABS_POWER_W, MAX_ABS_POWER_W),
            "voltage": None if voltage is None else _number(voltage, "voltage", 0, MAX_VOLTAGE_V),
            "import": None
            if import_kwh_total is None
            else _number(import_kwh_total, "import_kwh_total", 0, MAX_ENERGY_WH / 1000) * 1000,
            "export": None
            if export_kwh_total is None
            else _number(export_kwh_total, "export_kwh_total", 0, MAX_ENERGY_WH / 1000) * 1000,
        }
        phase = PhaseReading(phase=1, voltage=checked["voltage"], power=checked["power"])
        reading = Reading(
            time=utc(at),
            phases=(phase,),
            power=checked["power"],
            source=self.name,
            import_wh_total=checked["import"],
            export_wh_total=checked["export"],
        )
        if self._queue.full():
            self._queue.get_nowait()
            self.dropped += 1
        self._queue.put_nowait(reading)
        self._last = at
        return reading

    async def read(self) -> Reading:
        try:
            return await asyncio.wait_for(self._queue.get(), self.timeout)
        except TimeoutError:
            raise MeterUnreachable(f"nothing pushed for {self.timeout:g} s", self.name) from None

    async def close(self) -> None:
        return None


# -- MQTT ----------------------------------------------------------------------------------

MQTT_TOPICS: Final = frozenset(
    [f"P{i}" for i in (1, 2, 3)]
    + [f"V{i}" for i in (1, 2, 3)]
    + [f"I{i}" for i in (1, 2, 3, 4)]
    + [f"F{i}" for i in (1, 2, 3)]
    + [f"COS{i}" for i in (1, 2, 3)]
    + ["EcTot", "EpTot"]
)
_MQTT_LIMITS: Final = {
    "P": (-MAX_ABS_POWER_W, MAX_ABS_POWER_W),
    "V": (0.0, MAX_VOLTAGE_V),
    "I": (-MAX_ABS_CURRENT_A, MAX_ABS_CURRENT_A),
    "F": (0.0, MAX_FREQUENCY_HZ),
    "C": (-1e6, 1e6),
    "E": (0.0, MAX_ENERGY_WH),
}


def parse_mqtt_number(name: str, payload: bytes) -> float:
    """A SmartPi MQTT payload (plain ASCII number) for topic ``name``, or MeterDataError."""
    if len(payload) > 64:
        raise MeterDataError("is longer than 64 bytes", name)
    try:
        text = payload.decode("ascii").strip()
        value = float(text)
    except (UnicodeDecodeError, ValueError):
        raise MeterDataError(f"{payload[:32]!r} is not a number", name) from None
    low, high = _MQTT_LIMITS[name[0]]
    return check_number(value, name, low, high)


class MqttSource:
    """A SmartPi publishing over MQTT; :meth:`read` gives one reading per sample.

    A reading is complete when ``P1``, ``P2`` and ``P3`` have all arrived since
    the last one; voltages, currents, frequencies and power factors are the
    latest seen. ``EcTot`` / ``EpTot`` (lifetime Wh, net over the phases) ride
    along only on the first reading after they arrive, so that the accounting
    dates each counter value correctly.
    """

    self_paced = True

    def __init__(
        self,
        host: str,
        port: int = 1883,
        *,
        base_topic: str = "",
        username: str | None = None,
        password: str | None = None,
        name: str = "smartpi-mqtt",
        invert: Iterable[int] = (),
        timeout: float = 10.0,
        reconnect: float = 2.0,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        self.host = host
        self.port = port
        self.base_topic = base_topic.rstrip("/")
        self.username = username
        self.password = password
        self.name = name
        self.invert = frozenset(invert)
        self.timeout = timeout
        self.reconnect = reconnect
        self.clock = clock
        self.connected = asyncio.Event()
        self._latest: dict[str, float] = {}
        self._fresh: set[str] = set()
        self._queue: asyncio.Queue[Reading] = asyncio.Queue(100)
        self._task: asyncio.Task[None] | None = None
        self._bad: dict[str, str] = {}

    @property
    def topic_filter(self) -> str:
        return f"{self.base_topic}/+"

    def start(self) -> None:
        """Connect in the background (``read`` does this itself)."""
        if self._task is None:
            self._task = asyncio.create_task(self._listen())

    async def _listen(self) -> None:
        while True:
            try:
                async with aiomqtt.Client(
                    self.host, self.port, username=self.username, password=self.password
                ) as client:
                    await client.subscribe(self.topic_filter)
                    self.connected.set()
                    LOG.info(
                        "MQTT: subscribed to %s on %s:%d", self.topic_filter, self.host, self.port
                    )
                    async for message in client.messages:
                        payload = message.payload
                        if isinstance(payload, bytes | bytearray):
                            self.handle(message.topic.value, bytes(payload))
            except aiomqtt.MqttError as err:
                self.connected.clear()
                LOG.warning("MQTT %s:%d: %s; reconnecting", self.host, self.port, err)
            await asyncio.sleep(self.reconnect)

    def handle(self, topic: str, payload: bytes) -> Reading | None:
        """Take one message; the reading it completes, if any (also queued for :meth:`read`)."""
        prefix = self.base_topic + "/"
        if not topic.startswith(prefix) or topic[len(prefix) :] not in MQTT_TOPICS:
            return None
        name = topic[len(prefix) :]
        try:
            value = parse_mqtt_number(name, payload)
        except MeterDataError as err:
            if self._bad.get(name) != err.message:  # say it once per topic and problem
                self._bad[name] = err.message
                LOG.warning("MQTT %s: %s", topic, err.message)
            return None
        if name[0] in "PC" and name[-1].isdigit() and int(name[-1]) in self.invert:
            value = -value
        self._latest[name] = value
        self._fresh.add(name)
        if not {"P1", "P2", "P3"} <= self._fresh:
            return None
        reading = self._reading()
        if self._queue.full():
            self._queue.get_nowait()
        self._queue.put_nowait(reading)
        return reading

    def _reading(self) -> Reading:
        latest = self._latest
        phases = tuple(
            PhaseReading(
                phase=i,
                voltage=latest.get(f"V{i}"),
                current=latest.get(f"I{i}"),
                power=latest[f"P{i}"],
                power_factor=_clamp_pf(latest.get(f"COS{i}")),
                frequency=latest.get(f"F{i}") or None,
            )
            for i in (1, 2, 3)
        )
        reading = Reading(
            time=utc(self.clock.now()),
            phases=phases,
            power=math.fsum(p.power or 0.0 for p in phases),
            source=self.name,
            neutral_current=latest.get("I4"),
            import_wh_total=latest["EcTot"] if "EcTot" in self._fresh else None,
            export_wh_total=latest["EpTot"] if "EpTot" in self._fresh else None,
        )
        self._fresh.clear()
        return reading

    async def read(self) -> Reading:
        self.start()
        try:
            return await asyncio.wait_for(self._queue.get(), self.timeout)
        except TimeoutError:
            state = "connected" if self.connected.is_set() else "not connected"
            raise MeterUnreachable(
                f"no complete reading on {self.topic_filter} for {self.timeout:g} s ({state})",
                f"mqtt://{self.host}:{self.port}",
            ) from None

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None


def _clamp_pf(value: float | None) -> float | None:
    if value is None or abs(value) > 1.001:
        return None
    return max(-1.0, min(1.0, value))


# -- configuration ---------------------------------------------------------------------------

SOURCE_TYPES: Final = ("smartpi", "http_json", "pushed", "mqtt")


class _Settings:
    """Typed access to one source's JSON settings, with field-named errors."""

    def __init__(self, config: Mapping[str, Any], field: str) -> None:
        self.config = config
        self.field = field

    def _get(self, key: str, kinds: tuple[type, ...], required: bool) -> object:
        if key not in self.config:
            if required:
                raise MeterConfigError(f"{self.field}.{key}", "is missing")
            return None
        value = self.config[key]
        if not isinstance(value, kinds) or (isinstance(value, bool) and bool not in kinds):
            names = " or ".join(k.__name__ for k in kinds)
            raise MeterConfigError(f"{self.field}.{key}", f"must be {names}")
        return value

    def text(self, key: str, default: str | None = None, *, required: bool = False) -> str | None:
        value = self._get(key, (str,), required)
        return default if value is None else str(value)

    def number(self, key: str, default: float) -> float:
        value = self._get(key, (int, float), required=False)
        return default if value is None else float(value)  # type: ignore[arg-type]

    def integer(self, key: str, default: int) -> int:
        value = self._get(key, (int,), required=False)
        return default if value is None else int(value)  # type: ignore[call-overload]

    def mapping(self, key: str, *, required: bool = False) -> dict[str, Any]:
        value = self._get(key, (dict,), required)
        return {} if value is None else dict(value)  # type: ignore[call-overload]

    def phases(self, key: str) -> list[int]:
        value = self._get(key, (list,), required=False) or []
        assert isinstance(value, list)
        if not all(isinstance(v, int) and not isinstance(v, bool) and 1 <= v <= 3 for v in value):
            raise MeterConfigError(f"{self.field}.{key}", "lists phases 1, 2 or 3")
        return list(value)


def _json_paths(raw: Mapping[str, Any], field: str) -> JsonPaths:
    known = {f.name for f in fields(JsonPaths)}
    for key in raw:
        if key not in known:
            raise MeterConfigError(f"{field}.paths.{key}", "is not a JSON path setting")
    values: dict[str, Any] = {k: tuple(v) if isinstance(v, list) else v for k, v in raw.items()}
    try:
        return JsonPaths(**values)
    except (TypeError, ValueError) as err:
        raise MeterConfigError(f"{field}.paths", str(err)) from None


def source_from_config(
    config: Mapping[str, Any],
    *,
    clock: Clock = SYSTEM_CLOCK,
    session: aiohttp.ClientSession | None = None,
    field: str = "source",
) -> MeterSource:
    """A source from JSON, e.g. ``{"type": "smartpi", "url": "http://192.168.1.50:1080"}``.

    ``smartpi``: ``url``, optional ``timeout``, ``retries``, ``invert`` (phases);
    ``http_json``: ``url``, ``paths`` (the fields of :class:`JsonPaths`), optional
    ``headers``, ``timeout``, ``retries``; ``pushed``: optional ``timeout``;
    ``mqtt``: ``host``, optional ``port``, ``base_topic``, ``username``,
    ``password``, ``invert``, ``timeout``. Every source takes an optional ``name``.
    """
    if not isinstance(config, Mapping):
        raise MeterConfigError(field, "must be an object")
    kind = config.get("type")
    if kind not in SOURCE_TYPES:
        raise MeterConfigError(f"{field}.type", "must be one of " + ", ".join(SOURCE_TYPES))
    allowed = {
        "smartpi": {"url", "timeout", "retries", "invert"},
        "http_json": {"url", "paths", "headers", "timeout", "retries"},
        "pushed": {"timeout"},
        "mqtt": {"host", "port", "base_topic", "username", "password", "invert", "timeout"},
    }[kind] | {"type", "name"}
    for key in config:
        if key not in allowed:
            raise MeterConfigError(f"{field}.{key}", f"is not a setting of a {kind} source")
    get = _Settings(config, field)
    name = get.text("name", kind) or kind
    try:
        return _build(kind, get, name, clock, session)
    except ValueError as err:
        if isinstance(err, MeterConfigError):
            raise
        raise MeterConfigError(field, str(err)) from None


def _build(
    kind: str,
    get: _Settings,
    name: str,
    clock: Clock,
    session: aiohttp.ClientSession | None,
) -> MeterSource:
    if kind == "smartpi":
        return SmartPiClient(
            get.text("url", required=True) or "",
            session=session,
            name=name,
            timeout=get.number("timeout", 3.0),
            retries=get.integer("retries", 2),
            invert=get.phases("invert"),
            clock=clock,
        )
    if kind == "http_json":
        headers = get.mapping("headers")
        return HttpJsonSource(
            get.text("url", required=True) or "",
            _json_paths(get.mapping("paths", required=True), get.field),
            name=name,
            session=session,
            headers={str(k): str(v) for k, v in headers.items()},
            timeout=get.number("timeout", 5.0),
            retries=get.integer("retries", 2),
            clock=clock,
        )
    if kind == "pushed":
        return PushedSource(name, clock=clock, timeout=get.number("timeout", 120.0))
    return MqttSource(
        get.text("host", required=True) or "",
        get.integer("port", 1883),
        base_topic=get.text("base_topic", "") or "",
        username=get.text("username"),
        password=get.text("password"),
        name=name,
        invert=get.phases("invert"),
        timeout=get.number("timeout", 10.0),
        clock=clock,
    )
