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
from tests.state.chain import START, Chain, key
from tests.state.market_chain import INTERVAL, PRICES, T

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
        self.node.produce_block()  # stamped ``when``: the market clears and settles first
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


def _run_worked_example(market: Market, beto_delivered: int = 1_234) -> dict[str, str]:
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
        *(chain.report(meters[n], T, imp, exp) for n, (imp, exp) in readings.items()),
    )
    market.block(T + INTERVAL + 3600)
    # The concentrator's inputs, from the readings it holds (docs/privacy.md).
    seller = {"ana": 1_800, "beto": beto_delivered}
    delivery = chain.tx(
        chain.dso,
        TxType.DELIVERY,
        interval_start=T,
        sellers=sorted(
            (
                {"participant": people[n].address, "delivered_wh": e,
                 "meters": [meters[n].address]}
                for n, e in seller.items()
            ),
            key=lambda entry: str(entry["participant"]),
        ),
    )  # fmt: skip
    market.block(T + INTERVAL + 3605, delivery)
    lines = {"beto": (100, 0, 266), "carla": (166, 0, 0), "diego": (0, 100, 0)}
    lines |= {"elena": (500, 0, 0), "ana": None}
    bills = [
        chain.tx(
            chain.dso,
            TxType.BILL,
            participant=people[n].address,
            day=DAY,
            reports=[{"meter": meters[n].address, "intervals": [T]}],
            lines=[] if line is None else [dict(zip(LINE, (25_000, 9_000, *line), strict=True))],  # type: ignore[arg-type]
        )
        for n, line in lines.items()
    ]
    market.block(DAY + 86400 + 3600, *bills)
    return {name: person.address for name, person in people.items()}


DAY = START - 12 * 3600
LINE = ("import_price", "export_price", "import_wh", "unused_wh", "export_wh")


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
    # Elena has no orders: her day's bill, as a settlement row of the day.
    assert (bill["kind"], bill["interval_start"], bill["import_wh"], bill["amount"]) == (
        "bill",
        DAY,
        500,
        -125,
    )
    assert (bill["supplier_import_wh"], bill["bought_wh"], bill["import_price"]) == (
        500,
        0,
        25_000,
    )
    assert bill["lines"] == {"import": -125}
    status, body = await market.get(f"/market/settlements/{who['beto']}")
    rows = {row["kind"]: row for row in body["settlements"]}
    # Beto's trade in the interval (its supplier energy: 0 there), and his day's bill.
    assert (rows["interval"]["interval_start"], rows["interval"]["delivered_wh"]) == (T, 1_234)
    assert (rows["interval"]["import_wh"], rows["interval"]["amount"]) == (0, 222)
    assert (rows["bill"]["import_wh"], rows["bill"]["export_wh"], rows["bill"]["amount"]) == (
        100,
        1_500,
        -25 + 23,
    )
    status, body = await market.get(f"/market/settlements/{who['ana']}?from={T}")
    assert (body["debt"], body["settlements"][0]["delivered_wh"]) == (0, 1_800)

    # The node's stored events include the market's.
    events = [event for _, _, event in market.node.storage.events(0, limit=10_000)]
    kinds = {event["type"] for event in events if isinstance(event, dict)}
    assert {"order_placed", "trade", "interval_cleared", "settlement", "interval_settled"} <= kinds
    assert "bill" in kinds


async def test_a_home_proves_its_readings_and_a_wrong_delivery_shows(market: Market) -> None:
    # The concentrator states that Beto delivered 1,000 Wh; his meter exported 1,500.
    who = _run_worked_example(market, beto_delivered=1_000)
    openings = market.chain.openings

    async def check(name: str) -> dict[str, Any]:
        proof = {
            "chain_id": market.chain.genesis.chain_id,
            "openings": [openings[key(f"meter-{name}").address, T].to_json()],
        }
        assert market.client is not None
        answer = await market.client.post("/api/v1/proofs/check", json=proof, headers=AUTH)
        assert answer.status == 200
        result: dict[str, Any] = await answer.json()
        return result

    ana = await check("ana")
    assert ana["agrees"] is True
    assert [(s["kind"], s["complete"], s["agrees"]) for s in ana["statements"]] == [
        ("delivery", True, True),
        ("bill", True, True),
    ]
    beto = await check("beto")
    assert beto["agrees"] is False
    [delivery] = [s for s in beto["statements"] if s["kind"] == "delivery"]
    assert (delivery["participant"], delivery["interval_start"]) == (who["beto"], T)
    assert (delivery["on_chain"]["delivered_wh"], delivery["expected"]["delivered_wh"]) == (
        1_000,
        1_234,
    )
    # His bill was computed from his readings: it agrees with them.
    [bill] = [s for s in beto["statements"] if s["kind"] == "bill"]
    assert (bill["agrees"], bill["on_chain"]["by_price"][0]["export_wh"]) == (True, 266)
    elena = await check("elena")
    assert [(s["kind"], s["agrees"], s["on_chain"]["amount"]) for s in elena["statements"]] == [
        ("bill", True, -125)
    ]


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
