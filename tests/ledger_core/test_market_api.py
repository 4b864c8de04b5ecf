"""The market routes over a real loopback socket, on a node that ran the worked example."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from ledger_core.api.core import make_app
from ledger_core.api.server import SPEC_KEY
from ledger_core.node.host import Node
from ledger_core.node.storage import open_storage
from ledger_core.state.machine import StateMachine
from ledger_core.types.tx import Tx, TxType
from tests.ledger_core.chain import START, Chain, key
from tests.ledger_core.market_chain import INTERVAL, PRICES, T

TOKEN = "m" * 64
AUTH = {"Authorization": f"Bearer {TOKEN}"}
NAMES = ("ana", "beto", "carla", "diego", "elena")


class Market:
    """A node driven block by block at chosen times, serving the API with the market routes."""

    def __init__(self, node: Node, chain: Chain, clock: list[float]) -> None:
        self.node = node
        self.chain = chain
        self.clock = clock
        self.client: TestClient[Any, Any] | None = None

    def block(self, when: int, *txs: Tx) -> None:
        self.clock[0] = when
        # BFT time: the second empty block is the first stamped with ``when``.
        self.node.produce_block()
        self.node.produce_block()
        for tx in txs:
            submitted = self.node.submit(tx.wire())
            assert submitted.accepted, submitted
        self.node.produce_block()
        for tx in txs:
            stored = self.node.storage.tx(tx.id)
            assert stored is not None
            assert stored.code == "ok", (tx.type, stored.message)

    async def get(self, path: str, auth: bool = True) -> tuple[int, Any]:
        assert self.client is not None
        response = await self.client.get("/api/v1" + path, headers=AUTH if auth else {})
        return response.status, await response.json()


def _run_worked_example(market: Market) -> dict[str, str]:
    chain = market.chain
    people = {name: key(name) for name in NAMES}
    meters = {name: key(f"meter-{name}") for name in NAMES}
    setup = []
    for name in NAMES:
        setup.append(
            chain.tx(
                chain.iso,
                TxType.REGISTER,
                public_key=people[name].public_key.hex(),
                role="prosumer",
            )
        )
        setup.append(
            chain.tx(
                chain.iso,
                TxType.BIND_METER,
                meter_public_key=meters[name].public_key.hex(),
                participant=people[name].address,
            )
        )
    market.block(START + 5, *setup)
    funds = {"carla": 1_000, "diego": 1_000, "elena": 100}
    requests = [chain.tx(people[n], TxType.DEPOSIT_REQUEST, amount=a) for n, a in funds.items()]
    signal = chain.tx(chain.iso, TxType.PRICE_SIGNAL, interval_start=T, **PRICES)
    market.block(START + 10, *requests, signal)
    market.block(
        START + 15, *(chain.tx(chain.iso, TxType.DEPOSIT_CONFIRM, request=r.id) for r in requests)
    )
    orders = [
        ("ana", "sell", 2_000, 10_000),
        ("beto", "sell", 1_234, 15_000),
        ("carla", "buy", 1_500, 24_000),
        ("diego", "buy", 2_000, 30_000),
    ]
    market.block(
        START + 20,
        *(
            chain.tx(
                people[n],
                TxType.ORDER,
                interval_start=T,
                side=side,
                energy_wh=energy,
                limit_price=limit,
                ref=f"{n}-1",
            )
            for n, side, energy, limit in orders
        ),
    )
    market.block(T)
    market.block(T + INTERVAL)
    readings = {"ana": (0, 1_800), "beto": (100, 1_500), "carla": (1_400, 0)}
    readings |= {"diego": (1_900, 0), "elena": (500, 0)}
    market.block(
        T + INTERVAL + 5,
        *(
            chain.tx(meters[n], TxType.REPORT, interval_start=T, import_wh=imp, export_wh=exp)
            for n, (imp, exp) in readings.items()
        ),
    )
    market.block(T + INTERVAL + 3600)
    return {name: person.address for name, person in people.items()}


@pytest.fixture
async def market(tmp_path: Path) -> AsyncIterator[Market]:
    chain = Chain()
    clock = [float(START)]
    node = Node(
        chain.genesis,
        key("validator"),
        open_storage(tmp_path, chain.genesis),
        clock=lambda: clock[0],
        app_factory=StateMachine.restore,
    )
    app = make_app(node, TOKEN, chain.iso)
    market = Market(node, chain, clock)
    market.client = TestClient(TestServer(app))
    await market.client.start_server()
    try:
        yield market
    finally:
        await market.client.close()
        node.close()


async def test_intervals_orders_trades_and_settlements(market: Market) -> None:
    who = _run_worked_example(market)

    status, body = await market.get(f"/market/intervals?from={T}&to={T + 1}", auth=False)
    assert status == 200
    [interval] = body["intervals"]
    assert {k: interval[k] for k in ("interval_start", "status", "price", "volume_wh")} == {
        "interval_start": T,
        "status": "settled",
        "price": 18_000,
        "volume_wh": 3_234,
    }
    assert (interval["bids"], interval["offers"], interval["import_price"]) == (2, 2, 25_000)
    status, body = await market.get(f"/market/intervals?to={T}", auth=False)
    assert (status, body) == (200, {"intervals": []})

    status, body = await market.get(f"/market/orders/{who['carla']}")
    assert status == 200
    [order] = body["orders"]
    assert (order["status"], order["traded_wh"], order["ref"], order["limit_price"]) == (
        "cleared",
        1_234,
        "carla-1",
        24_000,
    )
    assert len(order["id"]) == 64

    status, body = await market.get(f"/market/trades/{who['ana']}?from={T}")
    assert status == 200
    [trade] = body["trades"]
    assert (trade["side"], trade["buyer"], trade["energy_wh"], trade["payment"]) == (
        "sell",
        who["diego"],
        2_000,
        360,
    )
    status, body = await market.get(f"/market/trades/{who['diego']}")
    assert body["trades"][0]["side"] == "buy"
    status, body = await market.get(f"/market/trades/{who['elena']}")
    assert (status, body["trades"]) == (200, [])

    status, body = await market.get(f"/market/settlements/{who['elena']}")
    assert status == 200
    assert body["debt"] == 25
    [bill] = body["settlements"]
    assert (bill["interval_start"], bill["import_wh"], bill["amount"]) == (T, 500, -125)
    assert bill["lines"] == {"import": -125}
    status, body = await market.get(f"/market/settlements/{who['ana']}")
    assert (body["debt"], body["settlements"][0]["delivered_wh"]) == (0, 1_800)

    # The node's stored events include the market's.
    events = [event for _, _, event in market.node.storage.events(0, limit=10_000)]
    kinds = {event["type"] for event in events if isinstance(event, dict)}
    assert {"order_placed", "trade", "interval_cleared", "settlement", "interval_settled"} <= kinds


async def test_private_routes_need_the_token_and_a_valid_address(market: Market) -> None:
    address = key("ana").address
    for route in ("orders", "trades", "settlements"):
        status, body = await market.get(f"/market/{route}/{address}", auth=False)
        assert (status, body["error"]["code"]) == (401, "unauthorized")
        status, body = await market.get(f"/market/{route}/no%20body")
        assert (status, body["error"]["field"]) == (400, "address")
        status, body = await market.get(f"/market/{route}/nobody")  # a name nobody holds
        assert (status, body["error"]["code"], body["error"]["field"]) == (
            404,
            "unknown_name",
            "address",
        )
        status, body = await market.get(f"/market/{route}/{address}?from=x")
        assert (status, body["error"]["field"]) == (400, "from")
        status, body = await market.get(f"/market/{route}/{address}")
        assert status == 200
    status, body = await market.get("/market/intervals?limit=0", auth=False)
    assert (status, body["error"]["field"]) == (400, "limit")


async def test_openapi_paths_cover_the_market_routes(market: Market) -> None:
    assert market.client is not None
    app = market.client.app
    assert app is not None
    routes = {
        route.resource.canonical.removeprefix("/api/v1")
        for route in app.router.routes()
        if route.resource is not None and route.method != "HEAD"
    }
    market_routes = {r for r in routes if r.startswith("/market/")}
    documented = {p for p in app[SPEC_KEY]["paths"] if p.startswith("/market/")}
    assert market_routes == documented
    assert len(documented) == 4
    json.dumps(app[SPEC_KEY])  # plain JSON
