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

The forecast sensors are unavailable while the node is: when the ledger's event
stream or this poll cannot reach it (told once, ``availability.py``), and read
again as soon as the ledger's stream is back. An answer that is not a summary is
an error of its own (logged once by Home Assistant's coordinator).
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import TYPE_CHECKING, Final

from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers.update_coordinator import DataUpdateCoordinator, UpdateFailed

from transactiva_client import (
    TransactivaClient,
    TransactivaConnectionError,
    TransactivaError,
    UnexpectedAnswerError,
)
from transactiva_client.models import ForecastSummary

from .availability import FORECAST, LEDGER, NodeAvailability, set_unavailable
from .const import DOMAIN

if TYPE_CHECKING:
    from . import TransactivaConfigEntry

LOGGER = logging.getLogger(__package__)
UPDATE_INTERVAL: Final = dt.timedelta(minutes=15)


class AnalyticsCoordinator(DataUpdateCoordinator[ForecastSummary | None]):
    """Reads the forecast summary every 15 minutes (None until it is first read)."""

    config_entry: TransactivaConfigEntry

    def __init__(
        self,
        hass: HomeAssistant,
        entry: TransactivaConfigEntry,
        client: TransactivaClient,
        availability: NodeAvailability,
    ) -> None:
        super().__init__(
            hass,
            LOGGER,
            config_entry=entry,
            name=f"{DOMAIN} forecast",
            update_interval=UPDATE_INTERVAL,
        )
        self.client = client
        self.availability = availability
        entry.async_on_unload(availability.listen(self._ledger))

    @callback
    def _ledger(self, connection: str, up: bool) -> None:
        """Follow the node: unavailable with the ledger's stream, read again when it is back."""
        if connection != LEDGER:
            return
        if not up:
            self.availability.lost(FORECAST, "the node is unavailable")
            set_unavailable(self, self._unreachable("the node is unavailable"))
        elif self.availability.is_down(FORECAST):
            self.config_entry.async_create_background_task(
                self.hass, self.async_refresh(), f"{DOMAIN} forecast after the node came back"
            )

    def _unreachable(self, error: str) -> UpdateFailed:
        return UpdateFailed(
            translation_domain=DOMAIN,
            translation_key="cannot_connect",
            translation_placeholders={"url": self.availability.url, "error": error},
        )

    async def _async_update_data(self) -> ForecastSummary | None:
        try:
            summary = await self.client.forecast_summary()
        except (TransactivaConnectionError, TimeoutError) as err:
            if isinstance(err, UnexpectedAnswerError):
                raise self._not_understood(str(err)) from err
            # Told once for the node; unavailable already, so the coordinator logs nothing.
            self.availability.lost(FORECAST, str(err))
            set_unavailable(self, self._unreachable(str(err)))
            raise self._unreachable(str(err)) from err
        except TransactivaError as err:
            raise self._not_understood(str(err)) from err
        if self.availability.is_down(FORECAST):
            self.availability.back(FORECAST)
            # Back: the node's log line said so; the coordinator need not say it again.
            self.last_update_success = True
        return summary

    @staticmethod
    def _not_understood(error: str) -> UpdateFailed:
        return UpdateFailed(
            translation_domain=DOMAIN,
            translation_key="forecast_failed",
            translation_placeholders={"error": error},
        )
