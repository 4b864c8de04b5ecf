"""The meter's routes in the node API (all need the API token):

- ``GET /api/v1/local/meter``: the latest reading with lifetime totals, the last
  interval report and the supply state (503 ``no_reading`` before the first);
- ``GET /api/v1/local/meter/stream``: a WebSocket pushing that same JSON at
  every reading;
- ``POST /api/v1/local/meter/readings``: a reading for a pushed source
  (``{"time"?, "power"?, "import_kwh_total"?, "export_kwh_total"?, "voltage"?}``),
  202 when queued; 409 ``not_pushed`` when the meter reads its own device;
- ``GET /api/v1/local/meter/proof?from=&to=``: the openings (readings and salts)
  of the meter's reports in the range, as a proof to hand over in a dispute
  (docs/privacy.md).

The feature also lets ``/reports/{meter}`` show this meter's own readings.

The node's ``make_app`` does not know about the meter; whoever runs the meter
role adds :func:`meter_feature` to it.
"""

from __future__ import annotations

import contextlib
from datetime import datetime
from typing import Final

from aiohttp import WSCloseCode, web

from ledger_core.api.openapi import (
    ANY_OBJECT,
    NUMBER,
    RANGE,
    TEXT,
    array,
    enum,
    nullable,
    obj,
    operation,
    websocket,
)
from ledger_core.api.server import Access, Feature, Route, error, read_json, time_range
from ledger_core.api.signals import hold_readings
from ledger_core.api.wsutil import open_socket, relay
from ledger_core.meter.reading import MeterDataError
from ledger_core.meter.service import MeterService
from ledger_core.meter.sources import PushedSource

MAX_PUSH_BYTES: Final = 4096
SERVICE_KEY: Final = web.AppKey("meter_service", MeterService)
METER_SOCKETS_KEY: Final[web.AppKey[set[web.WebSocketResponse]]] = web.AppKey("meter_sockets")
PUSH_FIELDS: Final = ("time", "power", "import_kwh_total", "export_kwh_total", "voltage")
READING: Final = obj(
    {
        "time": TEXT,
        "source": TEXT,
        "phases": array(ANY_OBJECT),
        "neutral_current": nullable(NUMBER),
        "power": nullable(NUMBER),
        "import_wh_total": NUMBER,
        "export_wh_total": NUMBER,
        "last_interval": nullable(ANY_OBJECT),
        "service": TEXT,
    }
)


def meter_feature(service: MeterService) -> Feature:
    """The meter's routes, for the node's application."""

    def setup(app: web.Application) -> None:
        app[SERVICE_KEY] = service
        app[METER_SOCKETS_KEY] = set()
        app.on_shutdown.append(_close_sockets)  # type: ignore[arg-type]

        def own(meter: str, start: int, end: int, limit: int) -> dict[int, tuple[int, int, str]]:
            if meter != service.meter or service.closed:
                return {}
            chain_id = service.outbox.chain_id
            return {
                o.interval_start: (o.import_wh, o.export_wh, o.commitment(chain_id))
                for o in service.outbox.openings(start, end, limit)
            }

        hold_readings(app, own)

    return Feature(
        "meter",
        (
            Route(
                "GET",
                "/local/meter",
                get_meter,
                Access.TOKEN,
                operation(
                    "The meter's latest reading, lifetime counters and last interval (503 "
                    "no_reading before the first reading)",
                    answers={200: READING},
                    refusals=(503,),
                ),
            ),
            Route(
                "GET",
                "/local/meter/stream",
                stream,
                Access.STREAM,
                websocket("WebSocket: the meter's readings as they come", READING),
            ),
            Route(
                "POST",
                "/local/meter/readings",
                push_reading,
                Access.TOKEN,
                operation(
                    "A reading pushed by Home Assistant (power in W, lifetime kWh counters, "
                    "voltage); 409 not_pushed when the meter reads its own device",
                    answers={202: obj({"status": enum(["queued"]), "time": TEXT})},
                    refusals=(400, 409),
                    body=obj(
                        {
                            "time": nullable({"type": "string", "format": "date-time"}),
                            **{name: nullable(NUMBER) for name in PUSH_FIELDS[1:]},
                        },
                        optional=PUSH_FIELDS,
                        closed=True,
                    ),
                ),
            ),
            Route(
                "GET",
                "/local/meter/proof",
                get_proof,
                Access.TOKEN,
                operation(
                    "The openings (readings and salts) of the meter's reports with "
                    "from <= interval_start < to: a proof against their commitments on chain",
                    params=RANGE,
                    answers={200: obj({"chain_id": TEXT, "openings": array(ANY_OBJECT)})},
                    refusals=(400,),
                ),
            ),
        ),
        setup,
    )


def _service(request: web.Request) -> MeterService:
    return request.app[SERVICE_KEY]


async def get_meter(request: web.Request) -> web.Response:
    """``GET /api/v1/local/meter``."""
    snapshot = _service(request).snapshot()
    if snapshot is None:
        return error(503, "no_reading", "the meter has not been read yet; try again shortly")
    return web.json_response(snapshot)


async def get_proof(request: web.Request) -> web.Response:
    """``GET /api/v1/local/meter/proof?from=&to=&limit=``."""
    start, end, limit = time_range(request)
    outbox = _service(request).outbox
    openings = outbox.openings(start, end, limit)
    return web.json_response(
        {"chain_id": outbox.chain_id, "openings": [o.to_json() for o in openings]}
    )


async def stream(request: web.Request) -> web.StreamResponse:
    """``GET /api/v1/local/meter/stream``: the snapshot now and at every reading."""
    service = _service(request)
    socket = await open_socket(request)
    sockets: set[web.WebSocketResponse] = request.app[METER_SOCKETS_KEY]
    sockets.add(socket)
    queue = service.subscribe()
    try:
        snapshot = service.snapshot()
        if snapshot is not None:
            await socket.send_json(snapshot)

        async def send(_reading: object) -> None:
            latest = service.snapshot()
            if latest is not None:
                await socket.send_json(latest)

        await relay(socket, queue, send)
    finally:
        sockets.discard(socket)
        service.unsubscribe(queue)
        with contextlib.suppress(Exception):
            await socket.close()
    return socket


async def push_reading(request: web.Request) -> web.Response:
    """``POST /api/v1/local/meter/readings``: one reading for a pushed source."""
    service = _service(request)
    source = service.source
    if not isinstance(source, PushedSource):
        return error(
            409,
            "not_pushed",
            f"this meter reads its {source.name} source; readings are not pushed to it",
        )
    body = await read_json(request, MAX_PUSH_BYTES, "a reading")
    if not isinstance(body, dict):
        return error(400, "malformed", "the body is a JSON object", "body")
    for key in body:
        if key not in PUSH_FIELDS:
            return error(400, "malformed", "is not a reading field", str(key))
    values: dict[str, float | None] = {}
    for key in PUSH_FIELDS[1:]:
        value = body.get(key)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int | float)):
            return error(400, "malformed", "must be a number", key)
        try:
            values[key] = None if value is None else float(value)
        except OverflowError:
            return error(400, "malformed", "is too large", key)
    at = _push_time(body.get("time"))
    if isinstance(at, web.Response):
        return at
    try:
        reading = source.push(time=at, **values)
    except MeterDataError as err:
        return error(400, "malformed", err.message, err.where)
    return web.json_response(
        {"status": "queued", "time": reading.time.isoformat().replace("+00:00", "Z")},
        status=202,
    )


def _push_time(stamp: object) -> float | web.Response | None:
    if stamp is None:
        return None
    if not isinstance(stamp, str):
        return error(400, "malformed", "must be an ISO 8601 string", "time")
    try:
        moment = datetime.fromisoformat(stamp)
    except ValueError:
        return error(400, "malformed", "is not an ISO 8601 date and time", "time")
    if moment.tzinfo is None:
        return error(400, "malformed", "needs a UTC offset (e.g. Z or -06:00)", "time")
    return moment.timestamp()


async def _close_sockets(app: web.Application) -> None:
    """On shutdown, tell stream clients the node is going away."""
    sockets: set[web.WebSocketResponse] = app[METER_SOCKETS_KEY]
    for socket in list(sockets):
        await socket.close(code=WSCloseCode.GOING_AWAY, message=b"node shutting down")
