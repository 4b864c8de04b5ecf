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
history) the forecast sensors are unavailable and ``message`` says why
(``ForecastSummary`` of ``transactiva_client``). The series themselves are never
put in states or attributes: the ``transactiva.get_forecast`` action returns them.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import TYPE_CHECKING, Final

from homeassistant.core import HomeAssistant
from homeassistant.helpers.update_coordinator import DataUpdateCoordinator, UpdateFailed

from transactiva_client import TransactivaClient, TransactivaError
from transactiva_client.models import ForecastSummary

from .const import DOMAIN

if TYPE_CHECKING:
    from . import TransactivaConfigEntry

LOGGER = logging.getLogger(__package__)
UPDATE_INTERVAL: Final = dt.timedelta(minutes=15)


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
            return await self.client.forecast_summary()
        except TransactivaError as err:
            raise UpdateFailed(f"cannot read the forecast: {err}") from err
