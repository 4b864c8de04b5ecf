"""Operator routes of the node API for the concentrator, under ``/api/v1/operator``.

:func:`concentrator_feature` adds them to the node's aiohttp application
(built by :func:`ledger_core.api.make_app`, whose middleware turns anything
unexpected into a JSON 500). Every route needs the node's bearer token;
errors are ``{"error": {"code", "message", "field"}}`` as everywhere else.
Prices in bodies and answers are integers of 10^-4 MXN/kWh, times Unix
seconds, power W:

* ``POST /operator/prices``: ``{"from", "to"?, "import_price"?, "export_price"?,
  "network_fee"?}``. Without prices: publish the schedule's prices for the
  intervals in ``[from, to)`` that have none on chain. With any price: an
  override of every interval in the range (unset fields from the schedule).
* ``POST /operator/dr``: issue (``signal``, ``start``, ``duration``, optional
  ``targets``, ``ramp_up``, ``recovery``, ``event_id``) or, when ``event_id``
  names an existing event, modify it with the fields given.
* ``POST /operator/dr/{event_id}/cancel``.
* ``GET /operator/neighbourhood``: :meth:`Concentrator.neighbourhood`.
* ``GET /operator/tariff``: the tariff's metadata and today's schedule.
* ``POST /operator/readings/erase``: ``{"participant", "force"?}``: delete a
  departed participant's readings from the concentrator's private store
  (docs/privacy.md).

With the concentrator's private store of readings, one more route, without the
token: ``POST /readings`` is how meters share their readings
(``{"report": wire text, "import_wh", "export_wh", "salt"}``); the reading is
kept only if the report is signed by a meter bound on the chain and the
reading and salt open its commitment, so the meter's own key authenticates it.
The store also lets ``/reports/{meter}`` show the readings it holds.

:data:`OPERATOR_PATHS` describes them in OpenAPI 3.1 for ``/openapi.json``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any, Final

from aiohttp import web

from ledger_core.api.openapi import (
    ADDRESS_SCHEMA,
    ANY_OBJECT,
    INT,
    TEXT,
    array,
    enum,
    obj,
    operation,
    path_param,
    ref,
)
from ledger_core.api.server import Access, Feature, Route, error, read_json
from ledger_core.api.signals import hold_readings
from ledger_core.concentrator.dr import MAX_DURATION, DrError, DrSignal
from ledger_core.concentrator.metering import MAX_SHARE_BYTES, MeterData, MeteringError
from ledger_core.concentrator.prices import MAX_PUBLISH_INTERVALS, PublishReport
from ledger_core.concentrator.service import Concentrator
from ledger_core.types.crypto import ADDRESS_RE
from ledger_core.types.tx import EVENT_ID_RE, MAX_DR_PERIOD, MAX_PRICE, MAX_TIME

CONCENTRATOR_KEY: Final = web.AppKey("concentrator", Concentrator)
MAX_BODY_BYTES: Final = 64 * 1024


class _Bad(Exception):  # noqa: N818 - control flow inside handlers
    def __init__(self, status: int, code: str, message: str, field: str | None = None) -> None:
        self.response = error(status, code, message, field)


async def _body(request: web.Request) -> dict[str, Any]:
    body = await read_json(request, MAX_BODY_BYTES, "the body", parse_float=Decimal)
    if not isinstance(body, dict):
        raise _Bad(400, "malformed", "the body is a JSON object", "body")
    return body


def _int(body: Mapping[str, Any], name: str, low: int, high: int, unit: str = "") -> int | None:
    if name not in body:
        return None
    value = body[name]
    if isinstance(value, bool) or not isinstance(value, int):
        raise _Bad(400, "malformed", f"must be an integer{unit}", name)
    if not low <= value <= high:
        raise _Bad(400, "malformed", f"must be between {low} and {high}", name)
    return value


def _required(value: int | None, name: str) -> int:
    if value is None:
        raise _Bad(400, "malformed", "is missing", name)
    return value


def _known(body: Mapping[str, Any], allowed: set[str]) -> None:
    extra = sorted(set(body) - allowed)
    if extra:
        raise _Bad(400, "malformed", "is not a known field", extra[0])


def _report_response(mode: str, report: PublishReport) -> web.Response:
    attempted = len(report.published) + len(report.failed)
    if attempted and not report.published:
        _, first = report.failed[0]
        status = 503 if first.code == "unavailable" else 422
        return error(status, first.code, f"no price was published: {first.message}")
    return web.json_response({"mode": mode, **report.to_json()})


_PRICE_FIELDS: Final = ("import_price", "export_price", "network_fee")


@dataclass(frozen=True, slots=True)
class _PriceRequest:
    start: int
    end: int
    prices: dict[str, int | None]


def _price_request(body: Mapping[str, Any], interval: int) -> _PriceRequest:
    _known(body, {"from", "to", *_PRICE_FIELDS})
    start = _required(_int(body, "from", 0, MAX_TIME), "from")
    end = _int(body, "to", 0, MAX_TIME)
    end = start + interval if end is None else end
    if start % interval:
        raise _Bad(400, "malformed", f"must be a multiple of {interval} s", "from")
    if end <= start:
        raise _Bad(400, "malformed", "must be after from", "to")
    if (end - start) // interval > MAX_PUBLISH_INTERVALS:
        raise _Bad(400, "malformed", f"at most {MAX_PUBLISH_INTERVALS} intervals at once", "to")
    prices = {name: _int(body, name, 0, MAX_PRICE, " in 10^-4 MXN/kWh") for name in _PRICE_FIELDS}
    return _PriceRequest(start, end, prices)


@dataclass(frozen=True, slots=True)
class _DrRequest:
    event_id: str | None
    signal: DrSignal | None
    start: int | None
    duration: int | None
    targets: list[str] | None
    ramp_up: int | None
    recovery: int | None


def _dr_request(body: Mapping[str, Any]) -> _DrRequest:
    _known(body, {"event_id", "signal", "start", "duration", "targets", "ramp_up", "recovery"})
    event_id = body.get("event_id")
    if event_id is not None and (
        not isinstance(event_id, str) or not EVENT_ID_RE.fullmatch(event_id)
    ):
        raise _Bad(400, "malformed", f"must match {EVENT_ID_RE.pattern}", "event_id")
    targets = body.get("targets")
    if targets is not None and (
        not isinstance(targets, list) or not all(isinstance(t, str) for t in targets)
    ):
        raise _Bad(400, "malformed", "must be a list of addresses", "targets")
    return _DrRequest(
        event_id=event_id,
        signal=DrSignal.from_json(body["signal"]) if "signal" in body else None,
        start=_int(body, "start", 0, MAX_TIME),
        duration=_int(body, "duration", 1, MAX_DURATION),
        targets=targets,
        ramp_up=_int(body, "ramp_up", 0, MAX_DR_PERIOD),
        recovery=_int(body, "recovery", 0, MAX_DR_PERIOD),
    )


type _Handler = Callable[[web.Request, Concentrator], Awaitable[web.Response]]


def _route(handler: _Handler) -> Callable[[web.Request], Awaitable[web.Response]]:
    """The token check, the concentrator, and refusals as JSON errors around a handler."""

    async def wrapped(request: web.Request) -> web.Response:
        try:
            return await handler(request, request.app[CONCENTRATOR_KEY])
        except _Bad as bad:
            return bad.response
        except (DrError, MeteringError) as err:
            return error(err.status, err.code, err.message, err.field)

    return wrapped


def _meter_data(concentrator: Concentrator) -> MeterData:
    if concentrator.meter_data is None:  # the routes exist only with the store
        raise _Bad(503, "unavailable", "this concentrator keeps no readings")
    return concentrator.meter_data


async def post_reading(request: web.Request, concentrator: Concentrator) -> web.Response:
    """A meter shares a reading: kept if its signed report's commitment opens with it."""
    body = await read_json(request, MAX_SHARE_BYTES, "a reading")
    received = await _meter_data(concentrator).receive(body)
    return web.json_response(
        {
            "status": received.status,
            "meter": received.meter,
            "interval_start": received.interval_start,
        }
    )


async def erase_readings(request: web.Request, concentrator: Concentrator) -> web.Response:
    """Delete a departed participant's readings."""
    body = await _body(request)
    _known(body, {"participant", "force"})
    participant = body.get("participant")
    if not isinstance(participant, str) or not ADDRESS_RE.fullmatch(participant):
        raise _Bad(400, "malformed", "must be a participant's address", "participant")
    force = body.get("force", False)
    if not isinstance(force, bool):
        raise _Bad(400, "malformed", "must be true or false", "force")
    erasure = await _meter_data(concentrator).erase(participant, force=force)
    return web.json_response(
        {
            "participant": erasure.participant,
            "meters": list(erasure.meters),
            "erased": erasure.readings,
            "erased_at": erasure.erased_at,
        }
    )


async def post_prices(request: web.Request, concentrator: Concentrator) -> web.Response:
    """Publish missing prices from the schedule, or override a range."""
    wanted = _price_request(await _body(request), concentrator.interval)
    if all(value is None for value in wanted.prices.values()):
        report = await concentrator.publisher.publish(wanted.start, wanted.end)
        return _report_response("schedule", report)
    report = await concentrator.publisher.override(wanted.start, wanted.end, **wanted.prices)
    return _report_response("override", report)


async def post_dr(request: web.Request, concentrator: Concentrator) -> web.Response:
    """Issue an event, or modify the one ``event_id`` names."""
    wanted = _dr_request(await _body(request))
    existing = (
        await concentrator.dr.current(wanted.event_id) if wanted.event_id is not None else None
    )
    now = concentrator.clock.now()
    if existing is not None:
        event = await concentrator.dr.modify(
            existing.event_id,
            signal=wanted.signal,
            start=wanted.start,
            duration=wanted.duration,
            targets=wanted.targets,
            ramp_up=wanted.ramp_up,
            recovery=wanted.recovery,
        )
        changed = event.modification_number > existing.modification_number
        action = "modified" if changed else "unchanged"
        return web.json_response({"action": action, **event.to_json(now)})
    event = await concentrator.dr.issue(
        _required_signal(wanted.signal),
        _required(wanted.start, "start"),
        _required(wanted.duration, "duration"),
        targets=wanted.targets or (),
        ramp_up=wanted.ramp_up or 0,
        recovery=wanted.recovery or 0,
        event_id=wanted.event_id,
    )
    return web.json_response({"action": "issued", **event.to_json(now)}, status=201)


def _required_signal(signal: DrSignal | None) -> DrSignal:
    if signal is None:
        raise _Bad(400, "malformed", "is missing", "signal")
    return signal


async def cancel_dr(request: web.Request, concentrator: Concentrator) -> web.Response:
    """Cancel an event."""
    event = await concentrator.dr.cancel(request.match_info["event_id"])
    return web.json_response({"action": "cancelled", **event.to_json(concentrator.clock.now())})


async def get_neighbourhood(request: web.Request, concentrator: Concentrator) -> web.Response:
    """Load, prices, DR events and rules."""
    return web.json_response(concentrator.neighbourhood())


async def get_tariff(request: web.Request, concentrator: Concentrator) -> web.Response:
    """The tariff's metadata and today's schedule."""
    schedule = concentrator.schedule
    today = schedule.local_day(concentrator.clock.now())
    prices = schedule.between(*schedule.tariff.day_bounds(today))
    return web.json_response(
        {
            "tariff": concentrator.tariff.to_json(),
            "interval": concentrator.interval,
            "publish_at": schedule.publish_at.strftime("%H:%M"),
            "day": today.isoformat(),
            "schedule": [p.to_json() for p in prices],
        }
    )


def concentrator_feature(concentrator: Concentrator) -> Feature:
    """The operator routes, for the node's application (every one needs the token), and
    with the private store of readings, the meters' route to share them."""
    meter_data = concentrator.meter_data

    def setup(app: web.Application) -> None:
        app[CONCENTRATOR_KEY] = concentrator
        if meter_data is not None:
            hold_readings(app, meter_data.held)

    handlers = {
        ("/operator/prices", "post"): post_prices,
        ("/operator/dr", "post"): post_dr,
        ("/operator/dr/{event_id}/cancel", "post"): cancel_dr,
        ("/operator/neighbourhood", "get"): get_neighbourhood,
        ("/operator/tariff", "get"): get_tariff,
    }
    if meter_data is not None:
        handlers[("/operator/readings/erase", "post")] = erase_readings
    routes = [
        Route(method.upper(), path, _route(handler), Access.TOKEN, OPERATOR_PATHS[path][method])
        for (path, method), handler in handlers.items()
    ]
    if meter_data is not None:
        # No token: a meter holds none; its signature on the report authenticates the reading.
        routes.append(
            Route("POST", "/readings", _route(post_reading), Access.PUBLIC, READINGS_OPERATION)
        )
    return Feature("operator", tuple(routes), setup)


_REFUSALS: Final = (400, 404, 409, 422, 503, 504)
_DR_ANSWER: Final = obj(
    {
        "action": enum(["issued", "modified", "unchanged", "cancelled"]),
        "event_id": TEXT,
        "modification_number": INT,
        "signal": ref("DrSignal"),
        "start": INT,
        "duration": INT,
        "end": INT,
        "status": TEXT,
        "phase": TEXT,
    }
)
_PRICE_FIELD: Final = {"type": "integer", "minimum": 0, "maximum": MAX_PRICE}
_TIME_FIELD: Final = {"type": "integer", "minimum": 0, "maximum": MAX_TIME}

OPERATOR_PATHS: Final[dict[str, Any]] = {
    "/operator/prices": {
        "post": operation(
            "Publish the schedule's missing prices for [from, to), or override them",
            answers={
                200: obj(
                    {
                        "mode": enum(["schedule", "override"]),
                        "published": array(INT),
                        "already_on_chain": array(INT),
                        "past": array(INT),
                        "failed": array(ANY_OBJECT),
                    }
                )
            },
            refusals=(400, 422, 503),
            body=obj(
                {
                    "from": _TIME_FIELD,
                    "to": _TIME_FIELD,
                    **dict.fromkeys(_PRICE_FIELDS, _PRICE_FIELD),
                },
                optional=("to", *_PRICE_FIELDS),
                closed=True,
            ),
        )
    },
    "/operator/dr": {
        "post": operation(
            "Issue a demand-response event (201), or modify the one event_id names (200)",
            answers={200: _DR_ANSWER, 201: _DR_ANSWER},
            refusals=_REFUSALS,
            body=obj(
                {
                    "event_id": {"type": "string", "pattern": f"^{EVENT_ID_RE.pattern}$"},
                    "signal": ref("DrSignal"),
                    "start": _TIME_FIELD,
                    "duration": {"type": "integer", "minimum": 1, "maximum": MAX_DURATION},
                    "targets": array(ADDRESS_SCHEMA),
                    "ramp_up": {"type": "integer", "minimum": 0, "maximum": MAX_DR_PERIOD},
                    "recovery": {"type": "integer", "minimum": 0, "maximum": MAX_DR_PERIOD},
                },
                optional=(
                    "event_id",
                    "signal",
                    "start",
                    "duration",
                    "targets",
                    "ramp_up",
                    "recovery",
                ),
                closed=True,
            ),
        )
    },
    "/operator/dr/{event_id}/cancel": {
        "post": operation(
            "Cancel a demand-response event (a new modification)",
            params=[path_param("event_id", f"^{EVENT_ID_RE.pattern}$")],
            answers={200: _DR_ANSWER},
            refusals=_REFUSALS,
        )
    },
    "/operator/neighbourhood": {
        "get": operation(
            "The neighbourhood's load, prices, DR events and rules",
            answers={
                200: obj(
                    {
                        "now": INT,
                        "interval": INT,
                        "load": ANY_OBJECT,
                        "price": ANY_OBJECT,
                        "dr_events": array(ANY_OBJECT),
                        "rules": array(ANY_OBJECT),
                    }
                )
            },
        )
    },
    "/operator/tariff": {
        "get": operation(
            "The tariff's metadata and today's schedule",
            answers={
                200: obj(
                    {
                        "tariff": ANY_OBJECT,
                        "interval": INT,
                        "publish_at": TEXT,
                        "day": TEXT,
                        "schedule": array(ANY_OBJECT),
                    }
                )
            },
        )
    },
    "/operator/readings/erase": {
        "post": operation(
            "Delete a departed participant's readings from the concentrator's private store",
            answers={
                200: obj(
                    {
                        "participant": ADDRESS_SCHEMA,
                        "meters": array(ADDRESS_SCHEMA),
                        "erased": INT,
                        "erased_at": {"type": "number"},
                    }
                )
            },
            refusals=(400, 404, 409, 413),
            body=obj(
                {"participant": ADDRESS_SCHEMA, "force": {"type": "boolean"}},
                optional=("force",),
                closed=True,
            ),
        )
    },
}
READINGS_OPERATION: Final = operation(
    "A meter shares a reading with the concentrator: its signed report and the reading and "
    "salt that open the report's commitment (no token: the meter's signature authenticates it)",
    answers={200: obj({"status": TEXT, "meter": ADDRESS_SCHEMA, "interval_start": INT})},
    refusals=(400, 413, 422),
    body=obj(
        {
            "report": TEXT,
            "import_wh": {"type": "integer", "minimum": 0},
            "export_wh": {"type": "integer", "minimum": 0},
            "salt": TEXT,
        },
        closed=True,
    ),
)
