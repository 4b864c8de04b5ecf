"""The market through Home Assistant, on a real node whose home is a prosumer's: an order
placed with the action clears against a neighbour's, the clearing entities show the result,
and the trades and the settlement come back from the node's market routes.

The node's clock runs 120 times faster than real time (a demonstration setting of the node)
and its market has 5-minute intervals settled as soon as they end (genesis parameters), so an
interval's gate and its settlement come within seconds.
"""

from __future__ import annotations

import time
from typing import Any

import pytest
from conftest import (
    RealNode,
    StartNode,
    call_action,
    entity_id,
    node_get,
    operate,
    register_local_prosumer,
    register_neighbour,
    setup_entry,
    wait_for_state,
    wait_until,
)
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import ServiceValidationError
from homeassistant.util import dt as dt_util

SPEED = 120.0
INTERVAL = 300


@pytest.fixture
def market_node(start_node: StartNode) -> RealNode:
    now = time.time()
    return start_node(
        "node",
        prosumer=True,
        config={
            "clock_epoch": now,
            "clock_start": int(now),
            "clock_speed": SPEED,
            "empty_block_every": 0.5,
        },
        params={"interval_seconds": INTERVAL, "settlement_delay_seconds": 0},
    )


def _iso(seconds: int) -> str:
    return dt_util.utc_from_timestamp(seconds).isoformat()


async def test_an_order_clears_trades_and_settles(
    hass: HomeAssistant, market_node: RealNode
) -> None:
    node = market_node
    await register_local_prosumer(hass, node)
    seller = await register_neighbour(hass, node, "vecina")
    entry = await setup_entry(hass, node.url, node)
    client = entry.runtime_data.client
    price_id = entity_id(hass, "sensor", node, "clearing_price")
    energy_id = entity_id(hass, "sensor", node, "traded_energy")
    assert hass.states.get(price_id).state == "unavailable"  # type: ignore[union-attr]

    # Money for the bid's hold; the supplier's prices from the next interval on (this one
    # may end before the signal commits: a 300 s interval lasts 5 real seconds here).
    deposit = await call_action(hass, "deposit", entry, amount=100)
    await operate(hass, node, "deposit_confirm", {"request": deposit["transaction"]})
    node_now = (await client.status()).last_block_time
    signal = {"import_price": 25000, "export_price": 9000, "network_fee": 3000}
    following = (node_now // INTERVAL + 1) * INTERVAL
    await operate(hass, node, "price_signal", {"interval_start": following} | signal)

    # An interval whose gate is 2.5 to 5 real seconds away: a bid here, an offer next door.
    node_now = (await client.status()).last_block_time
    start = ((node_now + 300) // INTERVAL + 1) * INTERVAL
    with pytest.raises(ServiceValidationError) as refused:
        await call_action(
            hass, "place_order", entry, interval_start=_iso(start + 1), side="buy", energy=1,
            limit_price=3,
        )  # fmt: skip
    assert refused.value.translation_placeholders["code"] == "misaligned_interval"
    order = await call_action(
        hass, "place_order", entry, interval_start=_iso(start), side="buy", energy=2,
        limit_price=3,
    )  # fmt: skip
    assert order["status"] == "committed"
    offer = {"interval_start": start, "side": "sell", "energy_wh": 2000, "limit_price": 10000}
    await seller.send(hass, node, "order", offer)

    # At the gate the auction clears: min(3.00, 2.50) - 0.30 against max(1.00, 0.90) meet
    # at 1.60 MXN/kWh for the 2 kWh.
    state = await wait_for_state(hass, price_id, "1.6000", seconds=40)
    assert state.attributes["unit_of_measurement"] == "MXN/kWh"
    assert state.attributes["interval_start"] == _iso(start)
    energy = hass.states.get(energy_id)
    assert energy is not None
    assert (float(energy.state), energy.attributes["unit_of_measurement"]) == (2.0, "kWh")
    assert energy.attributes["device_class"] == "energy"
    assert (energy.attributes["bids"], energy.attributes["offers"]) == (1, 1)
    assert energy.attributes["trades"] == 1

    trades = await call_action(
        hass, "get_trades", entry, start=_iso(start), end=_iso(start + INTERVAL)
    )
    (trade,) = trades["trades"]
    assert trade == {
        "start": _iso(start),
        "end": _iso(start + INTERVAL),
        "side": "buy",
        "energy": 2.0,
        "price": 1.6,
        "payment": 3.2,  # cost(2000 Wh, 1.60) in MXN
        "fee": 0.6,
    }

    # After the interval its trade waits for the concentrator's delivery (docs/privacy.md):
    # here the operator states it. The seller has no meter: it delivered nothing, so the
    # buyer's payment goes to the supplier, who delivered instead; the trade and its fee are
    # paid in full. Without a reading, the buyer's interval has nothing else to bill.
    async def awaiting() -> bool:
        _, body = await node_get(hass, node, f"market/intervals?from={start}&to={start + 1}")
        return [i.get("settlement") for i in body["intervals"]] == ["awaiting_delivery"]

    deadline = time.monotonic() + 40
    while not await awaiting():
        assert time.monotonic() < deadline, "the interval did not close"
        await wait_until(lambda: True, "a pause", step=0.5)
    nothing = {"participant": seller.address, "delivered_wh": 0, "meters": []}
    await operate(hass, node, "delivery", {"interval_start": start, "sellers": [nothing]})

    async def settled() -> list[Any]:
        answer = await call_action(
            hass, "get_settlements", entry, start=_iso(start), end=_iso(start + INTERVAL)
        )
        return list(answer["settlements"])

    deadline = time.monotonic() + 40
    while not (rows := await settled()):
        assert time.monotonic() < deadline, "no settlement"
        await wait_until(lambda: True, "a pause", step=0.5)
    (row,) = rows
    assert (row["kind"], row["end"]) == ("interval", _iso(start + INTERVAL))
    assert (row["start"], row["bought_energy"], row["import_energy"]) == (_iso(start), 2.0, 0.0)
    assert (row["delivered_energy"], row["unused_energy"]) == (0.0, 0.0)
    assert row["lines"] == {"network_fee": -0.6, "shortfall_cover": -3.2}
    assert row["amount"] == round(sum(row["lines"].values()), 2) == -3.8
    assert (row["import_price"], row["export_price"]) == (2.5, 0.9)
    answer = await call_action(
        hass, "get_settlements", entry, start=_iso(start), end=_iso(start + INTERVAL)
    )
    assert (answer["currency"], answer["total"], answer["debt"]) == ("MXN", -3.8, 0.0)

    # After a restart the last results are read from the node's market intervals at once.
    await hass.config_entries.async_reload(entry.entry_id)
    assert hass.states.get(price_id).state == "1.6000"  # type: ignore[union-attr]
    assert float(hass.states.get(energy_id).state) == 2.0  # type: ignore[union-attr]
