"""An async client of the SmartPi 2.0 REST API, and the decoder of its answers.

Routes (``docs/meters.md`` and ``/work/shared/reference/smartpi.md`` list the facts):

- ``GET /api/v1/smartpiac/livedata`` on current firmware;
- ``GET /api/all/all/now``, the legacy route, which both old and current
  firmware answer with the same body. The client tries ``livedata`` first,
  falls back to the legacy route, and remembers the one that worked (asking
  again if it stops working, e.g. after a firmware update).

The smartpiserver answers **200 with its web page** for any path it does not
know, so a client that only checks the status would try to parse HTML. Every
answer is checked by content type and by its first byte; when both routes
give the page the URL points at the GUI, not the API, and the error says so.

Body shape: ``datasets[0].phases[]``, each with ``phase`` (1-3, or 4 = the
neutral, whose current alone is kept) and ``values[]`` of ``{"type": ...,
"data": ...}``. Values are found by ``type``, never by position; the old
``/api/{phase}/{value}/now`` bodies carry a subset of the types and decode the
same way. The per-sample energy values (``energyconsumed`` ...) are the Wh of
the SmartPi's last one-second sample, not totals, and are ignored: the meter
role integrates power itself (``accounting.py``).

Sign: positive power is import, negative export, as the SmartPi reports it;
``invert`` flips chosen phases (a current clamp mounted the other way round).
"""

from __future__ import annotations

import asyncio
import json
import math
from collections.abc import Iterable
from typing import Any, Final

import aiohttp

from ledger_core.clock import SYSTEM_CLOCK, Clock, utc
from ledger_core.meter.reading import (
    MAX_ABS_CURRENT_A,
    MAX_ABS_POWER_W,
    MAX_FREQUENCY_HZ,
    MAX_VOLTAGE_V,
    MeterDataError,
    MeterError,
    MeterUnreachable,
    PhaseReading,
    Reading,
    check_number,
)

LIVEDATA: Final = "/api/v1/smartpiac/livedata"
LEGACY: Final = "/api/all/all/now"
ROUTES: Final = (LIVEDATA, LEGACY)
DEFAULT_PORT: Final = 1080
MAX_BODY_BYTES: Final = 1 << 20
GUI_PAGE: Final = (
    "this URL answers with the SmartPi web page, not the API; check the port (1080 by default)"
)
# Which reading field each SmartPi value type fills; other types are ignored.
_FIELDS: Final = {
    "voltage": "voltage",
    "current": "current",
    "power": "power",
    "cosphi": "power_factor",
    "frequency": "frequency",
}
_LIMITS: Final = {
    "voltage": (0.0, MAX_VOLTAGE_V),
    "current": (-MAX_ABS_CURRENT_A, MAX_ABS_CURRENT_A),
    "power": (-MAX_ABS_POWER_W, MAX_ABS_POWER_W),
    "cosphi": (-1e6, 1e6),
    "frequency": (0.0, MAX_FREQUENCY_HZ),
}


def _reject_constant(name: str) -> float:
    raise ValueError(f"{name} is not a JSON number")


def parse_json(body: bytes, where: str) -> object:
    """JSON from ``body``, or MeterDataError saying what is wrong and where."""
    if len(body) > MAX_BODY_BYTES:
        raise MeterDataError(f"the body is larger than {MAX_BODY_BYTES} bytes", where)
    try:
        return json.loads(body, parse_constant=_reject_constant)
    except json.JSONDecodeError as err:
        raise MeterDataError(
            f"not JSON: {err.msg} at line {err.lineno} column {err.colno}", where
        ) from None
    except UnicodeDecodeError:
        raise MeterDataError("not JSON: the body is not UTF-8 text", where) from None
    except ValueError as err:
        raise MeterDataError(f"not JSON: {err}", where) from None
    except RecursionError:
        raise MeterDataError("not JSON a meter sends: nested too deeply", where) from None


def _power_factor(value: float) -> float | None:
    # At (almost) no load the chip's cos phi is noise; outside [-1, 1] it means nothing.
    if abs(value) > 1.001:
        return None
    return max(-1.0, min(1.0, value))


def decode_smartpi(
    body: bytes,
    *,
    time: float,
    source: str = "smartpi",
    invert: Iterable[int] = (),
    where: str = "body",
) -> Reading:
    """A :class:`Reading` from a SmartPi live-data body (any of its route shapes).

    ``time`` (Unix seconds) stamps the reading: the body's own ``time`` is the
    device's local wall clock without a zone, so the receiver's clock is used.
    Raises :class:`MeterDataError` naming the JSON path of anything wrong.
    """
    flipped = set(invert)
    root = parse_json(body, where)
    if not isinstance(root, dict):
        raise MeterDataError("must be a JSON object with 'datasets'", where)
    datasets = root.get("datasets")
    if not isinstance(datasets, list) or not datasets:
        raise MeterDataError("must be a non-empty list", f"{where}.datasets")
    dataset = datasets[0]
    path = f"{where}.datasets[0]"
    if not isinstance(dataset, dict):
        raise MeterDataError("must be an object", path)
    phases = dataset.get("phases")
    if not isinstance(phases, list):
        raise MeterDataError("must be a list", f"{path}.phases")
    found: dict[int, dict[str, float]] = {}
    for i, raw_phase in enumerate(phases):
        at = f"{path}.phases[{i}]"
        if not isinstance(raw_phase, dict):
            raise MeterDataError("must be an object", at)
        number = raw_phase.get("phase")
        if isinstance(number, bool) or not isinstance(number, int) or not 1 <= number <= 4:
            raise MeterDataError("must be 1, 2, 3 or 4", f"{at}.phase")
        if number in found:
            raise MeterDataError(f"phase {number} appears twice", f"{at}.phase")
        values = raw_phase.get("values")
        if not isinstance(values, list):
            raise MeterDataError("must be a list", f"{at}.values")
        found[number] = _phase_values(values, number, f"{at}.values")
    if not any(n in found for n in (1, 2, 3)):
        raise MeterDataError("holds none of phases 1, 2 and 3", f"{path}.phases")
    readings: list[PhaseReading] = []
    for number in (1, 2, 3):
        if number not in found:
            continue
        values = found[number]
        sign = -1.0 if number in flipped else 1.0
        power = values.get("power")
        pf = values.get("cosphi")
        frequency = values.get("frequency")
        readings.append(
            PhaseReading(
                phase=number,
                voltage=values.get("voltage"),
                current=values.get("current"),
                power=None if power is None else sign * power,
                power_factor=None if pf is None else _power_factor(sign * pf),
                # The chip does not measure frequency above 4 samples/s; it then reads 0.
                frequency=frequency if frequency else None,
            )
        )
    powers = [r.power for r in readings if r.power is not None]
    if powers and len(powers) != len(readings):
        missing = next(r.phase for r in readings if r.power is None)
        raise MeterDataError(f"phase {missing} has no power value but others do", path)
    return Reading(
        time=utc(time),
        phases=tuple(readings),
        power=math.fsum(powers) if powers else None,
        source=source,
        neutral_current=found.get(4, {}).get("current"),
    )


def _phase_values(values: list[Any], phase: int, at: str) -> dict[str, float]:
    out: dict[str, float] = {}
    for j, item in enumerate(values):
        where = f"{at}[{j}]"
        if not isinstance(item, dict):
            raise MeterDataError("must be an object", where)
        kind = item.get("type")
        if not isinstance(kind, str):
            raise MeterDataError("must be a string", f"{where}.type")
        if kind not in _FIELDS or (phase == 4 and kind != "current"):
            continue
        if kind in out:
            raise MeterDataError(f"type {kind!r} appears twice", f"{where}.type")
        if "data" not in item:
            raise MeterDataError("is missing", f"{where}.data")
        low, high = _LIMITS[kind]
        out[kind] = check_number(item["data"], f"{where}.data", low, high)
    return out


def looks_like_html(content_type: str, body: bytes) -> bool:
    """Whether an answer is a web page rather than the API's JSON."""
    if content_type.lower().startswith(("text/html", "application/xhtml")):
        return True
    head = body[:64].lstrip().lower()
    return head.startswith((b"<!doctype", b"<html", b"<head", b"<body"))


async def read_limited(response: aiohttp.ClientResponse, limit: int = MAX_BODY_BYTES) -> bytes:
    """The response body, refusing to hold more than ``limit`` bytes."""
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.content.iter_chunked(65536):
        size += len(chunk)
        if size > limit:
            raise MeterDataError(f"the answer is larger than {limit} bytes", str(response.url))
        chunks.append(chunk)
    return b"".join(chunks)


class SmartPiClient:
    """Reads one SmartPi; a :class:`~ledger_core.meter.sources.MeterSource`.

    ``base_url`` is ``http://host:port`` (port 1080 by default on the device).
    Each :meth:`read` makes at most ``retries + 1`` attempts, each bounded by
    ``timeout`` seconds, waiting ``backoff``, ``2 * backoff``, ... between them;
    only unreachability is retried (a malformed answer would be again).
    """

    self_paced = False

    def __init__(
        self,
        base_url: str,
        *,
        session: aiohttp.ClientSession | None = None,
        name: str = "smartpi",
        timeout: float = 3.0,
        retries: int = 2,
        backoff: float = 0.25,
        invert: Iterable[int] = (),
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        if not base_url.startswith(("http://", "https://")):
            raise ValueError(f"{base_url!r}: the SmartPi URL starts with http:// or https://")
        flipped = frozenset(invert)
        if not flipped <= {1, 2, 3}:
            raise ValueError("invert lists phases 1, 2 or 3")
        self.base_url = base_url.rstrip("/")
        self.name = name
        self.timeout = timeout
        self.retries = max(0, retries)
        self.backoff = backoff
        self.invert = flipped
        self.clock = clock
        self.route: str | None = None
        self._session = session
        self._own_session = session is None

    async def close(self) -> None:
        """Close the HTTP session if this client opened it."""
        if self._own_session and self._session is not None:
            await self._session.close()
            self._session = None

    def _http(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession()
        return self._session

    async def read(self) -> Reading:
        """The SmartPi's live data now."""
        attempt = 0
        while True:
            try:
                return await self._read_once()
            except MeterUnreachable:
                if attempt >= self.retries:
                    raise
            await asyncio.sleep(self.backoff * 2**attempt)
            attempt += 1

    async def _read_once(self) -> Reading:
        remembered = self.route
        candidates = [remembered] if remembered else list(ROUTES)
        pages = 0
        missing = 0
        for route in candidates:
            status, content_type, body, time = await self._get(route)
            url = self.base_url + route
            if status == 404 or (status == 200 and looks_like_html(content_type, body)):
                pages += status == 200
                missing += status == 404
                continue
            if status >= 500:
                raise MeterUnreachable(f"the SmartPi answered HTTP {status}", url)
            if status != 200:
                raise MeterDataError(f"the SmartPi answered HTTP {status}", url)
            reading = decode_smartpi(
                body, time=time, source=self.name, invert=self.invert, where=url
            )
            self.route = route
            return reading
        if remembered is not None:
            # The route that worked no longer does (firmware changed?): look again.
            self.route = None
            return await self._read_once()
        if pages:
            raise MeterDataError(GUI_PAGE, self.base_url)
        raise MeterDataError(
            f"neither {LIVEDATA} nor {LEGACY} exists here; is this a SmartPi?", self.base_url
        )

    async def _get(self, route: str) -> tuple[int, str, bytes, float]:
        url = self.base_url + route
        try:
            async with self._http().get(
                url, timeout=aiohttp.ClientTimeout(total=self.timeout)
            ) as response:
                body = await read_limited(response)
                return response.status, response.content_type, body, self.clock.now()
        except TimeoutError:
            raise MeterUnreachable(f"no answer within {self.timeout:g} s", url) from None
        except aiohttp.ClientError as err:
            raise MeterUnreachable(f"cannot read: {str(err) or type(err).__name__}", url) from None


__all__ = [
    "GUI_PAGE",
    "LEGACY",
    "LIVEDATA",
    "MeterDataError",
    "MeterError",
    "MeterUnreachable",
    "Reading",
    "SmartPiClient",
    "decode_smartpi",
]
