"""Ledger entities follow a real node's event stream: wallet, prices, demand response, service."""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta

from conftest import (
    RealNode,
    entity_id,
    local,
    node_device,
    register_neighbour,
    setup_entry,
    wait_for_state,
    wait_until,
)
from homeassistant.const import STATE_UNAVAILABLE, STATE_UNKNOWN
from homeassistant.core import HomeAssistant
from homeassistant.helpers import entity_registry as er
from homeassistant.util import dt as dt_util
from pytest_homeassistant_custom_component.common import async_capture_events

from custom_components.transactiva.const import (
    EVENT_DEMAND_RESPONSE,
    EVENT_PRICE_SIGNAL,
    EVENT_SERVICE_STATUS,
)


def _market_device(hass: HomeAssistant, node: RealNode) -> str:
    return node_device(hass, node, "market").id


async def test_balance_and_height_are_pushed_and_survive_a_node_restart(
    hass: HomeAssistant, transactiva_node: RealNode, entity_registry: er.EntityRegistry
) -> None:
    node = transactiva_node
    await setup_entry(hass, node.url, node)
    balance_id = entity_id(hass, "sensor", node, "wallet_balance")
    height_id = entity_id(hass, "sensor", node, "height")
    assert balance_id == "sensor.transactiva_wallet_balance"
    balance = hass.states.get(balance_id)
    assert balance is not None
    assert balance.state == "0.00"
    assert balance.attributes["unit_of_measurement"] == "MXN"
    assert balance.attributes["device_class"] == "monetary"
    height_entry = entity_registry.async_get(height_id)
    assert height_entry is not None
    assert height_entry.entity_category == "diagnostic"

    request = await local(hass, node, "deposit_request", {"amount": 15050})
    await local(hass, node, "deposit_confirm", {"request": request["id"]})
    await wait_for_state(hass, balance_id, "150.50")
    height = hass.states.get(height_id)
    assert height is not None
    assert int(height.state) >= 2

    # The node goes away: entities become unavailable; it comes back: they recover.
    await hass.async_add_executor_job(node.stop)
    await wait_for_state(hass, balance_id, STATE_UNAVAILABLE)
    await hass.async_add_executor_job(node.restart)
    await wait_for_state(hass, balance_id, "150.50", seconds=40)


async def test_prices_are_pushed_fire_events_and_stay_while_the_node_is_away(
    hass: HomeAssistant, transactiva_node: RealNode, entity_registry: er.EntityRegistry
) -> None:
    node = transactiva_node
    await setup_entry(hass, node.url, node)
    events = async_capture_events(hass, EVENT_PRICE_SIGNAL)
    import_id = entity_id(hass, "sensor", node, "import_price")
    export_id = entity_id(hass, "sensor", node, "export_price")
    next_id = entity_id(hass, "sensor", node, "next_import_price")
    assert hass.states.get(import_id).state == STATE_UNAVAILABLE  # type: ignore[union-attr]

    start = int(time.time()) // 900 * 900
    await local(
        hass,
        node,
        "price_signal",
        {"interval_start": start, "import_price": 25000, "export_price": 8000, "network_fee": 5000},
    )
    await local(
        hass,
        node,
        "price_signal",
        {
            "interval_start": start + 900,
            "import_price": 12345,
            "export_price": -100,
            "network_fee": 5000,
        },
    )
    state = await wait_for_state(hass, import_id, "2.5000")
    assert state.attributes["unit_of_measurement"] == "MXN/kWh"
    assert state.attributes["state_class"] == "measurement"
    assert "device_class" not in state.attributes
    assert hass.states.get(export_id).state == "0.8000"  # type: ignore[union-attr]
    await wait_for_state(hass, next_id, "1.2345")
    for key in ("network_fee", "next_export_price"):
        registry_entry = entity_registry.async_get(entity_id(hass, "sensor", node, key))
        assert registry_entry is not None
        assert registry_entry.disabled_by is er.RegistryEntryDisabler.INTEGRATION

    assert [e.data["import_price"] for e in events] == [2.5, 1.2345]
    assert events[1].data["export_price"] == -0.01
    assert events[0].data["interval_start"] == dt_util.utc_from_timestamp(start).isoformat()
    assert {e.data["device_id"] for e in events} == {_market_device(hass, node)}

    # Announced prices stay meaningful while the node is unreachable (and stays so
    # through the first reconnection attempts).
    await hass.async_add_executor_job(node.stop)
    await wait_for_state(hass, entity_id(hass, "sensor", node, "wallet_balance"), STATE_UNAVAILABLE)
    await asyncio.sleep(1.5)
    assert hass.states.get(import_id).state == "2.5000"  # type: ignore[union-attr]


async def test_demand_response_for_this_home_is_on_while_in_force(
    hass: HomeAssistant, transactiva_node: RealNode
) -> None:
    node = transactiva_node
    neighbour = await register_neighbour(hass, node, "vecino")
    await setup_entry(hass, node.url, node)
    events = async_capture_events(hass, EVENT_DEMAND_RESPONSE)
    active_id = entity_id(hass, "binary_sensor", node, "demand_response_active")
    level_id = entity_id(hass, "sensor", node, "demand_response_level")
    assert hass.states.get(active_id).state == "off"  # type: ignore[union-attr]
    assert hass.states.get(level_id).state == "0"  # type: ignore[union-attr]

    now = int(time.time())
    signal = {"name": "SIMPLE", "level": 3}
    # An event for another home only is not this home's.
    await local(
        hass,
        node,
        "dr_event",
        {
            "event_id": "otro",
            "modification_number": 0,
            "signal": signal,
            "start": now - 5,
            "duration": 600,
            "targets": [neighbour.address],
            "cancelled": False,
        },
    )
    await local(
        hass,
        node,
        "dr_event",
        {
            "event_id": "pico",
            "modification_number": 0,
            "signal": {"name": "SIMPLE", "level": 2},
            "start": now - 1,
            "duration": 5,
            "targets": [],
            "cancelled": False,
        },
    )
    state = await wait_for_state(hass, active_id, "on")
    assert state.attributes["event_id"] == "pico"
    assert hass.states.get(level_id).state == "2"  # type: ignore[union-attr]
    assert [e.data["event_id"] for e in events] == ["pico"]
    assert events[0].data["level"] == 2
    assert events[0].data["device_id"] == _market_device(hass, node)

    # The coordinator's timer ends the event on time, without any message from the node.
    await wait_for_state(hass, active_id, "off", seconds=15)
    assert hass.states.get(level_id).state == "0"  # type: ignore[union-attr]

    # A price-type event has no SIMPLE level: the level is unknown while it is in force.
    await local(
        hass,
        node,
        "dr_event",
        {
            "event_id": "precio",
            "modification_number": 0,
            "signal": {"name": "ELECTRICITY_PRICE", "price": 90000},
            "start": int(time.time()) - 1,
            "duration": 600,
            "targets": [node.participant],
            "cancelled": False,
        },
    )
    await wait_for_state(hass, active_id, "on")
    assert hass.states.get(level_id).state == STATE_UNKNOWN  # type: ignore[union-attr]
    assert events[-1].data["price"] == 9.0


async def test_service_cut_and_reconnection_of_this_home(
    hass: HomeAssistant, transactiva_node: RealNode
) -> None:
    node = transactiva_node
    await setup_entry(hass, node.url, node)
    events = async_capture_events(hass, EVENT_SERVICE_STATUS)
    service_id = entity_id(hass, "sensor", node, "service_status")
    assert hass.states.get(service_id).state == "connected"  # type: ignore[union-attr]
    await local(hass, node, "service", {"participant": node.participant, "connected": False})
    await wait_for_state(hass, service_id, "cut")
    await local(hass, node, "service", {"participant": node.participant, "connected": True})
    await wait_for_state(hass, service_id, "connected")
    assert [e.data["connected"] for e in events] == [False, True]


async def test_daily_earnings_and_spending_count_wallet_changes_but_not_deposits(
    hass: HomeAssistant, transactiva_node: RealNode
) -> None:
    node = transactiva_node
    neighbour = await register_neighbour(hass, node, "vecino", money=5000)
    entry = await setup_entry(hass, node.url, node)
    earnings_id = entity_id(hass, "sensor", node, "earnings_today")
    spending_id = entity_id(hass, "sensor", node, "spending_today")
    balance_id = entity_id(hass, "sensor", node, "wallet_balance")

    request = await local(hass, node, "deposit_request", {"amount": 10000})
    await local(hass, node, "deposit_confirm", {"request": request["id"]})
    await wait_for_state(hass, balance_id, "100.00")
    # The neighbour's own wallet requests are not this home's.
    theirs = await neighbour.send(hass, node, "deposit_request", {"amount": 1})
    await neighbour.send(hass, node, "wallet_cancel", {"request": theirs["id"]})
    assert hass.states.get(earnings_id).state == "0.00"  # type: ignore[union-attr]

    await local(hass, node, "transfer", {"to": neighbour.address, "amount": 1234})
    await neighbour.send(hass, node, "transfer", {"to": node.participant, "amount": 500})
    await wait_for_state(hass, earnings_id, "5.00")
    spending = await wait_for_state(hass, spending_id, "12.34")
    assert spending.attributes["state_class"] == "total"
    assert spending.attributes["last_reset"] == dt_util.start_of_local_day().isoformat()
    await wait_for_state(hass, balance_id, "92.66")

    # A held withdrawal leaves the balance; cancelling it brings it back.
    held = await local(hass, node, "withdraw_request", {"amount": 2000})
    await wait_for_state(hass, balance_id, "72.66")
    await local(hass, node, "wallet_cancel", {"request": held["id"]})
    await wait_for_state(hass, balance_id, "92.66")

    # At local midnight the totals start again.
    coordinator = entry.runtime_data.coordinator
    coordinator.data.day -= timedelta(days=1)
    coordinator._wake(dt_util.utcnow())
    await wait_for_state(hass, earnings_id, "0.00")
    assert hass.states.get(spending_id).state == "0.00"  # type: ignore[union-attr]
    assert coordinator.data.day == dt_util.now().date()


async def test_the_timer_wakes_at_boundaries_events_and_midnight(
    hass: HomeAssistant, transactiva_node: RealNode
) -> None:
    node = transactiva_node
    entry = await setup_entry(hass, node.url, node)
    coordinator = entry.runtime_data.coordinator
    moment = 1_800_000_000  # a multiple of 900 plus 0
    assert coordinator.next_wakeup(moment) == moment + 900
    assert coordinator.next_wakeup(moment + 899) == moment + 900
    midnight = dt_util.start_of_local_day(
        dt_util.as_local(dt_util.utc_from_timestamp(moment)) + timedelta(days=1)
    )
    assert coordinator.next_wakeup(int(midnight.timestamp()) - 10) == int(midnight.timestamp())
    await local(
        hass,
        node,
        "dr_event",
        {
            "event_id": "lejano",
            "modification_number": 0,
            "signal": {"name": "SIMPLE", "level": 1},
            "start": moment + 100,
            "duration": 200,
            "targets": [],
            "cancelled": False,
        },
    )
    now = int(time.time()) // 900 * 900
    for start in (now, now + 900):
        await local(
            hass,
            node,
            "price_signal",
            {"interval_start": start, "import_price": 1, "export_price": 1, "network_fee": 0},
        )
    await wait_until(lambda: "lejano" in coordinator.data.demand_response, "the DR event")
    await wait_until(lambda: len(coordinator.data.prices) == 2, "the prices")
    coordinator.prune(now + 901)
    assert list(coordinator.data.prices) == [now + 900]
    assert coordinator.next_wakeup(moment) == moment + 100
    assert coordinator.next_wakeup(moment + 100) == moment + 300
    # Prices superseded before now and events over for a day are forgotten.
    coordinator.prune(moment + 86400 + 301)
    assert "lejano" not in coordinator.data.demand_response
