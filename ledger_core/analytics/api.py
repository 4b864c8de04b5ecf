"""The home's analytics routes (all need the API token: readings are personal data).

- ``GET /api/v1/local/analytics/forecast?hours=48`` -- 15-minute forecast from
  the current interval: per interval ``start``, ``consumption_wh`` (median),
  ``consumption_p10``, ``consumption_p90``, ``consumption_mean`` and the same
  for ``production``; ``hours`` is 1-48 (default 48).
- ``GET /api/v1/local/analytics/history?from=&to=&resolution=15m|1h|1d`` --
  stored energy per 15 minutes, local hour or local day over ``[from, to)``
  (Unix seconds; defaults: ``to`` now, ``from`` one day, week or year before,
  at a quarter-hour).
  At most 31 days at 15m, 366 days at 1h, 3,660 days at 1d.
- ``GET /api/v1/local/analytics/advice`` -- ranked advice, English and Spanish.
- ``GET /api/v1/local/analytics/summary`` -- today's and tomorrow's totals, for
  Home Assistant's sensors (no series).

Errors are the node's JSON errors; ``503 not_ready`` while there is too little
history to forecast (the message says how much there is).
"""

from __future__ import annotations

import asyncio
from typing import Final

from aiohttp import web

from ledger_core.analytics.forecast import MAX_STEPS
from ledger_core.analytics.localtime import DAY, SLOT
from ledger_core.analytics.service import AnalyticsService, NotReady
from ledger_core.analytics.store import RESOLUTIONS
from ledger_core.api.openapi import (
    ANY_OBJECT,
    BOOL,
    INT,
    NUMBER,
    TEXT,
    array,
    enum,
    nullable,
    obj,
    operation,
    query_param,
)
from ledger_core.api.server import Access, Feature, Route, error

ANALYTICS_KEY: Final = web.AppKey("analytics", AnalyticsService)
MAX_TIME: Final = 2**40
# Longest range and default span per resolution, in seconds.
LIMITS: Final[dict[str, tuple[int, int]]] = {
    "15m": (31 * DAY, DAY),
    "1h": (366 * DAY, 7 * DAY),
    "1d": (3660 * DAY, 365 * DAY),
}


class _BadRequest(Exception):  # noqa: N818 - control flow inside handlers
    def __init__(self, field: str, message: str) -> None:
        self.field = field
        self.message = message


def _integer(request: web.Request, name: str, default: int, low: int, high: int) -> int:
    raw = request.query.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise _BadRequest(name, "must be an integer") from None
    if not low <= value <= high:
        raise _BadRequest(name, f"must be between {low} and {high}")
    return value


def analytics_feature(service: AnalyticsService) -> Feature:
    """The analytics routes, for the node's application."""

    def setup(app: web.Application) -> None:
        app[ANALYTICS_KEY] = service

    def bad(err: _BadRequest) -> web.Response:
        return error(400, "malformed", err.message, err.field)

    async def forecast(request: web.Request) -> web.Response:
        try:
            hours = _integer(request, "hours", MAX_STEPS // 4, 1, MAX_STEPS // 4)
        except _BadRequest as err:
            return bad(err)
        try:
            result = await asyncio.get_running_loop().run_in_executor(
                None, service.forecast, hours * 4
            )
        except NotReady as err:
            return error(503, "not_ready", str(err))
        model = service.model
        production = None if model is None else model.production
        return web.json_response(
            {
                "origin": int(result.start[0]),
                "interval_seconds": SLOT,
                "fitted_at": service.fitted_at,
                "kwp": None if production is None else round(production.kwp, 2),
                "series": result.rows(),
            }
        )

    async def history(request: web.Request) -> web.Response:
        resolution = request.query.get("resolution", "15m")
        if resolution not in RESOLUTIONS:
            return error(400, "malformed", "must be one of " + ", ".join(RESOLUTIONS), "resolution")
        longest, span = LIMITS[resolution]
        try:
            end = _integer(request, "to", service.now(), 0, MAX_TIME)
            default_start = max(0, end - span)
            start = _integer(request, "from", default_start - default_start % SLOT, 0, MAX_TIME)
        except _BadRequest as err:
            return bad(err)
        if start >= end:
            return error(400, "malformed", "must be before 'to'", "from")
        if end - start > longest:
            days = longest // DAY
            return error(
                400, "malformed", f"at most {days} days at resolution {resolution}", "from"
            )
        rows = service.history(start, end, resolution)
        return web.json_response({"from": start, "to": end, "resolution": resolution, "rows": rows})

    async def advice(request: web.Request) -> web.Response:
        items = await asyncio.get_running_loop().run_in_executor(None, service.advice)
        return web.json_response(
            {"generated_at": service.now(), "items": [item.to_json() for item in items]}
        )

    async def summary(request: web.Request) -> web.Response:
        body = await asyncio.get_running_loop().run_in_executor(None, service.summary)
        return web.json_response(body)

    return Feature(
        "analytics",
        tuple(
            Route("GET", f"/local/analytics/{name}", handler, Access.TOKEN, doc)
            for name, handler, doc in (
                (
                    "forecast",
                    forecast,
                    operation(
                        "Consumption and production forecast, 15-minute steps, with p10/p90 "
                        "(?hours=); 503 not_ready while there is too little history",
                        params=[query_param("hours", _HOURS)],
                        answers={200: _FORECAST},
                        refusals=(400, 503),
                    ),
                ),
                (
                    "history",
                    history,
                    operation(
                        "Energy history by 15m, 1h or 1d (?from=&to=&resolution=)",
                        params=[
                            query_param("from", _TIME),
                            query_param("to", _TIME),
                            query_param("resolution", enum(RESOLUTIONS)),
                        ],
                        answers={200: _HISTORY},
                        refusals=(400,),
                    ),
                ),
                (
                    "advice",
                    advice,
                    operation(
                        "Ranked advice with the money at stake",
                        answers={200: obj({"generated_at": INT, "items": array(_ADVICE)})},
                    ),
                ),
                (
                    "summary",
                    summary,
                    operation(
                        "Today's and tomorrow's forecast totals",
                        answers={200: _SUMMARY},
                    ),
                ),
            )
        ),
        setup,
    )


_HOURS: Final = {"type": "integer", "minimum": 1, "maximum": MAX_STEPS // 4}
_TIME: Final = {"type": "integer", "minimum": 0, "maximum": MAX_TIME}
_FORECAST: Final = obj(
    {
        "origin": INT,
        "interval_seconds": INT,
        "fitted_at": nullable(NUMBER),
        "kwp": nullable(NUMBER),
        "series": array(obj({"start": INT, "consumption_wh": INT, "production_wh": INT})),
    }
)
_HISTORY: Final = obj(
    {"from": INT, "to": INT, "resolution": enum(RESOLUTIONS), "rows": array(ANY_OBJECT)}
)
_ADVICE: Final = obj(
    {
        "id": TEXT,
        "title": obj({"en": TEXT, "es": TEXT}),
        "detail": obj({"en": TEXT, "es": TEXT}),
        "centavos": INT,
    }
)
_SUMMARY: Final = obj(
    {
        "date": TEXT,
        "measured_consumption_wh": NUMBER,
        "measured_production_wh": NUMBER,
        "fitted_at": nullable(NUMBER),
        "ready": BOOL,
        "message": nullable(TEXT),
    }
)
