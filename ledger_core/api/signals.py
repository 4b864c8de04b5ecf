"""Meter reports and the operators' signals: a meter's interval reports, prices, DR events.

Prices and DR events are public (they are announced to everyone); reports need
the token. The chain holds a report's commitment, never its reading
(docs/privacy.md): ``/reports/{meter}`` shows the commitments, and the
readings only where this node holds them -- the home's own meter (the meter
role) and, at the concentrator, every meter that shared its readings. Those
roles register a :data:`PrivateReadings` source with :func:`hold_readings`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Final

from aiohttp import web

from ledger_core.api.openapi import (
    ADDRESS,
    ADDRESS_SCHEMA,
    INT,
    RANGE,
    array,
    obj,
    operation,
    path_param,
    ref,
)
from ledger_core.api.server import (
    Access,
    Feature,
    Route,
    address_param,
    error,
    time_range,
    view,
)
from ledger_core.state import keys
from ledger_core.types import codec

INTERVAL_ROW: Final = obj({"interval_start": INT})


def interval_rows(request: web.Request, prefix: str) -> list[dict[str, codec.Value]]:
    """State entries ``<prefix><interval start>`` in the query's range, start included."""
    start, end, limit = time_range(request)
    return [
        {"interval_start": interval_start, **record}
        for interval_start, record in view(request).by_interval(prefix, start, end, limit)
    ]


type PrivateReadings = Callable[[str, int, int, int], Mapping[int, tuple[int, int, str]]]
"""``(meter, start, end, limit) -> {interval start: (import_wh, export_wh, commitment)}``: the
readings this node holds of ``meter`` with ``start <= T < end``."""

PRIVATE_KEY: Final[web.AppKey[list[PrivateReadings]]] = web.AppKey("private_readings")


def hold_readings(app: web.Application, source: PrivateReadings) -> None:
    """Let ``/reports/{meter}`` show the readings ``source`` holds (a feature's setup)."""
    if PRIVATE_KEY not in app:
        app[PRIVATE_KEY] = []
    app[PRIVATE_KEY].append(source)


async def get_reports(request: web.Request) -> web.Response:
    """A meter's interval reports with ``from <= interval_start < to``: each commitment on
    chain, and the reading where this node holds one that opens it (``held``)."""
    meter = address_param(request)
    start, end, limit = time_range(request)
    rows: dict[int, dict[str, codec.Value]] = {
        interval_start: {"interval_start": interval_start, "on_chain": True, **record}
        for interval_start, record in view(request).by_interval(
            keys.reports(meter), start, end, limit
        )
    }
    held: dict[int, tuple[int, int, str]] = {}
    for source in request.app.get(PRIVATE_KEY, []):
        held.update(source(meter, start, end, limit))
    for interval_start, (imported, exported, commitment) in sorted(held.items()):
        row = rows.get(interval_start)
        if row is None:
            if len(rows) >= limit:
                continue
            row = rows[interval_start] = {
                "interval_start": interval_start,
                "on_chain": False,
                "commitment": commitment,
            }
        if row["commitment"] == commitment:
            row.update(import_wh=imported, export_wh=exported, held=True)
    for row in rows.values():
        row.setdefault("held", False)
    return web.json_response({"meter": meter, "reports": [rows[t] for t in sorted(rows)][:limit]})


async def get_prices(request: web.Request) -> web.Response:
    """Price signals with ``from <= interval_start < to`` (public: prices are announced)."""
    return web.json_response({"prices": interval_rows(request, keys.PRICES)})


async def get_dr_event(request: web.Request) -> web.Response:
    """A demand-response event in its latest modification (public)."""
    event_id = request.match_info["event_id"]
    record = view(request).dr_event(event_id)
    if record is None:
        return error(404, "not_found", f"no demand-response event {event_id!r}")
    return web.json_response({"event_id": event_id, **record})


FEATURE: Final = Feature(
    "signals",
    (
        Route(
            "GET",
            "/reports/{address}",
            get_reports,
            Access.TOKEN,
            operation(
                "A meter's interval reports: the commitments on chain, and the readings where "
                "this node holds them (?from=&to= interval starts, ?limit=)",
                params=[ADDRESS, *RANGE],
                answers={200: obj({"meter": ADDRESS_SCHEMA, "reports": array(INTERVAL_ROW)})},
                refusals=(400,),
            ),
        ),
        Route(
            "GET",
            "/signals/prices",
            get_prices,
            Access.PUBLIC,
            operation(
                "Price signals (?from=&to= interval starts, ?limit=)",
                params=RANGE,
                answers={
                    200: obj(
                        {
                            "prices": array(
                                obj(
                                    {
                                        "interval_start": INT,
                                        "import_price": INT,
                                        "export_price": INT,
                                        "network_fee": INT,
                                        "height": INT,
                                    }
                                )
                            )
                        }
                    )
                },
                refusals=(400,),
            ),
        ),
        Route(
            "GET",
            "/signals/dr/{event_id}",
            get_dr_event,
            Access.PUBLIC,
            operation(
                "A demand-response event in its latest modification",
                params=[path_param("event_id", "^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$")],
                answers={200: ref("DrEvent")},
                refusals=(404,),
            ),
        ),
    ),
)
