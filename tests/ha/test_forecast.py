"""Forecast totals, the forecast series and advice from a real node's analytics.

The node's home holds 16 days of a simulated household's history in ``analytics.db`` before it
starts (written with the node's own store, as the meter role would have kept it), so its models
are fitted at start; a node without that history is covered in ``test_meter.py``.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import itertools
import logging
import time
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import voluptuous as vol
from conftest import (
    RealNode,
    StartNode,
    call_action,
    entity_id,
    node_get,
    setup_entry,
    wait_until,
)
from homeassistant.core import HomeAssistant
from homeassistant.util import dt as dt_util

from ledger_core.analytics.store import Interval, ReadingStore
from ledger_core.analytics.synthetic import simulate

DAYS = 16


def _history(home: Path) -> None:
    today = dt.datetime.now(dt.UTC).date()
    household = simulate(today - dt.timedelta(days=DAYS), DAYS, seed=3)
    with contextlib.closing(ReadingStore(home / "analytics.db")) as store:
        store.add_intervals(household.interval_rows())
        store.add_temperatures(
            (int(t), float(c))
            for t, c in zip(household.interval_times, household.temperature, strict=True)
        )


@pytest.fixture
def forecast_node(start_node: StartNode) -> RealNode:
    return start_node("node", meter=True, before_start=_history)


async def _fitted(hass: HomeAssistant, node: RealNode) -> dict[str, Any]:
    """The node's analytics summary, once its model is fitted (within 40 s)."""
    summary: dict[str, Any] = {}
    deadline = time.monotonic() + 40
    while True:
        status, summary = await node_get(hass, node, "local/analytics/summary")
        if status == 200 and summary["ready"] is True:
            return summary
        assert time.monotonic() < deadline, summary
        await wait_until(lambda: True, "a pause", step=0.2)


async def test_forecast_totals_series_and_advice(
    hass: HomeAssistant, forecast_node: RealNode
) -> None:
    node = forecast_node
    summary = await _fitted(hass, node)
    entry = await setup_entry(hass, node.url, node)
    ready = hass.states.get(entity_id(hass, "sensor", node, "meter_forecast_status"))
    assert ready is not None
    assert (ready.state, ready.attributes["message"]) == ("ready", None)

    for key in ("consumption_today", "production_today", "consumption_tomorrow"):
        state = hass.states.get(entity_id(hass, "sensor", node, f"meter_forecast_{key}"))
        assert state is not None
        assert float(state.state) == pytest.approx(summary[f"{key}_wh"] / 1000, abs=0.01)
        assert state.attributes["unit_of_measurement"] == "kWh"
        assert state.attributes["device_class"] == "energy"
        assert "state_class" not in state.attributes  # expectations are not measurements
    today = hass.states.get(entity_id(hass, "sensor", node, "meter_forecast_consumption_today"))
    assert today is not None
    assert today.attributes["date"] == summary["date"]
    assert today.attributes["measured_wh"] == summary["measured_consumption_wh"]
    tomorrow = hass.states.get(
        entity_id(hass, "sensor", node, "meter_forecast_production_tomorrow")
    )
    assert tomorrow is not None
    day_after = dt.date.fromisoformat(summary["date"]) + dt.timedelta(days=1)
    assert tomorrow.attributes == tomorrow.attributes | {"date": day_after.isoformat()}
    assert set(tomorrow.attributes) <= {"date", "unit_of_measurement", "device_class",
                                        "friendly_name", "icon"}  # fmt: skip

    forecast = await call_action(hass, "get_forecast", entry, hours=2)
    intervals = forecast["intervals"]
    assert len(intervals) == 8
    first = dt_util.parse_datetime(intervals[0]["start"])
    assert first is not None
    assert first.timestamp() == time.time() // 900 * 900
    for row, following in itertools.pairwise(intervals):
        assert row["end"] == following["start"]
    for row in intervals:
        assert 0 <= row["consumption_p10"] <= row["consumption"] <= row["consumption_p90"]
        assert row["production_mean"] >= 0
    assert forecast["unit"] == "kWh"
    assert forecast["fitted_at"] is not None
    with pytest.raises(vol.Invalid):
        await call_action(hass, "get_forecast", entry, hours=49)

    advice = await call_action(hass, "get_advice", entry)
    assert advice["currency"] == "MXN"
    ids = [item["id"] for item in advice["items"]]
    assert "standby" in ids
    standby = advice["items"][ids.index("standby")]
    assert standby["title"].endswith("MXN a year")  # Home Assistant's language: English
    assert standby["period_days"] == 365
    assert standby["savings"] > 0
    # Ranked by the money at stake per 30 days.
    monthly = [item["savings"] * 30 / item["period_days"] for item in advice["items"]]
    assert monthly == sorted(monthly, reverse=True)


def _zone_past_midnight() -> str:
    """A time zone in which the local day started at least two hours ago and ends in more than
    an hour (of three zones 6 to 15 hours apart, one always is)."""
    now = dt.datetime.now(dt.UTC)
    for zone in ("America/Mexico_City", "Asia/Tokyo", "Europe/London"):
        if 2 <= now.astimezone(ZoneInfo(zone)).hour <= 22:
            return zone
    raise AssertionError("no zone between 02:00 and 23:00")


async def test_a_home_that_exports_without_measured_pv_gets_its_totals(
    hass: HomeAssistant, start_node: StartNode, caplog: pytest.LogCaptureFixture
) -> None:
    """A net meter with PV it does not measure: the grid's import and export only. Today the
    home exported more than it imported (40 Wh in and 217 Wh out in its first interval, more
    out than in since), which made import - export, its consumption so far, negative: a total
    the integration refused (no forecast totals, an error at every setup). Consumption is what
    came from the grid, production what went to it."""
    zone = _zone_past_midnight()
    local = ZoneInfo(zone)
    midnight = int(
        dt.datetime.now(local).replace(hour=0, minute=0, second=0, microsecond=0).timestamp()
    )
    origin = int(time.time()) // 900 * 900
    today = [
        Interval(t, 40, 217) if i == 0 else Interval(t, 25, 60 * (i % 2))
        for i, t in enumerate(range(midnight, origin, 900))
    ]

    def history(home: Path) -> None:
        first = dt.datetime.fromtimestamp(midnight, local).date() - dt.timedelta(days=DAYS)
        household = simulate(first, DAYS, seed=5)
        past = [
            Interval(row.t, row.import_wh, row.export_wh)  # the PV is not measured
            for row in household.interval_rows()
            if row.t < midnight
        ]
        assert sum(row.export_wh for row in past) > 0  # it exports on sunny days
        with contextlib.closing(ReadingStore(home / "analytics.db")) as store:
            store.add_intervals(past + today)

    node = start_node(
        "node",
        meter=True,
        config={"analytics": {"site": {"timezone": zone}}},
        before_start=history,
    )
    summary = await _fitted(hass, node)
    assert summary["measured_consumption_wh"] == sum(row.import_wh for row in today)
    assert summary["measured_production_wh"] == sum(row.export_wh for row in today)

    caplog.set_level(logging.INFO)
    await setup_entry(hass, node.url, node)
    state = hass.states.get(entity_id(hass, "sensor", node, "meter_forecast_consumption_today"))
    assert state is not None
    assert state.attributes["measured_wh"] == summary["measured_consumption_wh"]
    assert float(state.state) == pytest.approx(summary["consumption_today_wh"] / 1000, abs=0.01)
    produced = hass.states.get(entity_id(hass, "sensor", node, "meter_forecast_production_today"))
    assert produced is not None
    assert produced.attributes["measured_wh"] == summary["measured_production_wh"]
    complaints = [
        record.getMessage()
        for record in caplog.records
        if record.name.startswith("custom_components.transactiva")
        and record.levelno >= logging.WARNING
    ]
    assert complaints == []
