"""Today's and tomorrow's forecast totals from the node's analytics, polled.

A node with a meter runs analytics beside it (``docs/analytics.md``): it learns
the home's consumption and production from the meter's history and answers
``GET /api/v1/local/analytics/summary``::

    {"date": "2026-11-24", "ready": true, "message": null, "fitted_at": s,
     "measured_consumption_wh": Wh, "measured_production_wh": Wh,
     "consumption_today_wh": Wh, "production_today_wh": Wh,
     "consumption_tomorrow_wh": Wh, "production_tomorrow_wh": Wh, ...}

Today's totals are what was measured since local midnight plus what is expected
for the rest of the day. These are not live data (the models are refitted once
a day), so the summary is read at setup and then every
:data:`UPDATE_INTERVAL`; while the node is not ``ready`` (less than 14 days of
history) the forecast sensors are unavailable and ``message`` says why. The
series themselves are never put in states or attributes: the
``transactiva.get_forecast`` action returns them.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Final

from homeassistant.core import HomeAssistant
from homeassistant.helpers.update_coordinator import DataUpdateCoordinator, UpdateFailed

from .api import TransactivaClient, TransactivaError
from .const import DOMAIN
from .events import EventError, integer

if TYPE_CHECKING:
    from . import TransactivaConfigEntry

LOGGER = logging.getLogger(__package__)
UPDATE_INTERVAL: Final = dt.timedelta(minutes=15)
TOTALS: Final = (
    "consumption_today_wh",
    "production_today_wh",
    "consumption_tomorrow_wh",
    "production_tomorrow_wh",
)
MAX_WH: Final = 10**9


@dataclass(frozen=True, slots=True)
class ForecastSummary:
    """The node's forecast totals (Wh); ``totals`` is empty while it is not ready."""

    date: dt.date  # the node's local date of "today"
    ready: bool
    message: str | None
    measured_consumption_wh: int
    measured_production_wh: int
    totals: dict[str, int]


def parse_summary(body: object) -> ForecastSummary:
    """A ForecastSummary from the node's JSON, or EventError."""
    if not isinstance(body, dict):
        raise EventError("a forecast summary is a JSON object")
    ready = body.get("ready")
    if not isinstance(ready, bool):
        raise EventError("ready must be true or false")
    message = body.get("message")
    raw_date = body.get("date")
    try:
        day = dt.date.fromisoformat(raw_date) if isinstance(raw_date, str) else None
    except ValueError:
        day = None
    if day is None:
        raise EventError("date must be an ISO date")
    return ForecastSummary(
        date=day,
        ready=ready,
        message=message[:500] if isinstance(message, str) else None,
        measured_consumption_wh=integer(body, "measured_consumption_wh", 0, MAX_WH),
        measured_production_wh=integer(body, "measured_production_wh", 0, MAX_WH),
        totals={key: integer(body, key, 0, MAX_WH) for key in TOTALS} if ready else {},
    )


class AnalyticsCoordinator(DataUpdateCoordinator[ForecastSummary | None]):
    """Reads the forecast summary every 15 minutes (None until it is first read)."""

    config_entry: TransactivaConfigEntry

    def __init__(
        self, hass: HomeAssistant, entry: TransactivaConfigEntry, client: TransactivaClient
    ) -> None:
        super().__init__(
            hass,
            LOGGER,
            config_entry=entry,
            name=f"{DOMAIN} forecast",
            update_interval=UPDATE_INTERVAL,
        )
        self.client = client

    async def _async_update_data(self) -> ForecastSummary | None:
        try:
            body: Any = await self.client.analytics("summary")
            return parse_summary(body)
        except (TransactivaError, EventError) as err:
            raise UpdateFailed(f"cannot read the forecast: {err}") from err
