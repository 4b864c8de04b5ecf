"""The meter routes inside the node's API, over a real loopback socket."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp import WSMsgType
from aiohttp.test_utils import TestClient, TestServer

from ledger_core.api.core import make_app
from ledger_core.api.server import add_feature
from ledger_core.meter.api import meter_feature
from ledger_core.meter.household import Household
from ledger_core.meter.outbox import node_submitter
from ledger_core.meter.service import MeterConfig, MeterService
from ledger_core.meter.simulator import SmartPiSimulator
from ledger_core.meter.smartpi import SmartPiClient
from ledger_core.meter.sources import MeterSource, PushedSource
from tests.meter.helpers import NOON, TOKEN, Ledger, ManualClock
from tests.state.chain import CHAIN_ID

AUTH = {"Authorization": f"Bearer {TOKEN}"}
METER = "/api/v1/local/meter"


class Node:
    """A node API with the meter routes, its meter service and its clock."""

    def __init__(self, client: TestClient[Any, Any], service: MeterService, clock: ManualClock):
        self.client = client
        self.service = service
        self.clock = clock

    async def get(self, path: str, auth: bool = True) -> tuple[int, Any]:
        response = await self.client.get(path, headers=AUTH if auth else {})
        return response.status, await response.json()

    async def push(self, body: bytes | dict[str, Any]) -> tuple[int, Any]:
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        response = await self.client.post(f"{METER}/readings", data=data, headers=AUTH)
        return response.status, await response.json()


async def node_with(tmp_path: Path, source: MeterSource, clock: ManualClock) -> AsyncIterator[Node]:
    ledger = Ledger(tmp_path / "node", clock)
    service = MeterService(
        source,
        tmp_path / "meter.db",
        ledger.meter,
        CHAIN_ID,
        node_submitter(ledger.node),
        config=MeterConfig(report_delay=60),
        clock=clock,
    )
    app = make_app(ledger.node, TOKEN, ledger.chain.iso)
    add_feature(app, meter_feature(service))
    client: TestClient[Any, Any] = TestClient(TestServer(app))
    await client.start_server()
    try:
        yield Node(client, service, clock)
    finally:
        await client.close()
        await service.stop()
        ledger.close()


@pytest.fixture
async def smartpi_node(tmp_path: Path) -> AsyncIterator[Node]:
    clock = ManualClock(NOON + 890)
    sim = SmartPiSimulator(Household(seed=4), clock=clock)
    url = await sim.start()
    try:
        async for node in node_with(tmp_path, SmartPiClient(url, clock=clock), clock):
            yield node
    finally:
        await sim.stop()


@pytest.fixture
async def pushed_node(tmp_path: Path) -> AsyncIterator[Node]:
    clock = ManualClock(NOON)
    async for node in node_with(tmp_path, PushedSource(clock=clock, timeout=1), clock):
        yield node


async def test_the_latest_reading_with_totals_and_the_last_interval(smartpi_node: Node) -> None:
    status, body = await smartpi_node.get(METER, auth=False)
    assert (status, body["error"]["code"]) == (401, "unauthorized")
    status, body = await smartpi_node.get(METER)
    assert (status, body["error"]["code"]) == (503, "no_reading")
    for _ in range(3):
        await smartpi_node.service.step()
        smartpi_node.clock.time += 10  # crosses 12:15, closing the 12:00 interval
    status, body = await smartpi_node.get(METER)
    assert status == 200
    assert set(body) == {
        "time",
        "source",
        "phases",
        "neutral_current",
        "power",
        "import_wh_total",
        "export_wh_total",
        "last_interval",
        "service",
    }
    assert body["time"] == "2026-03-10T18:15:10Z"  # the last reading, 12:15:10 local
    assert body["source"] == "smartpi"
    assert [p["phase"] for p in body["phases"]] == [1, 2, 3]
    assert set(body["phases"][0]) == {
        "phase",
        "voltage",
        "current",
        "power",
        "power_factor",
        "frequency",
    }
    assert body["power"] == pytest.approx(sum(p["power"] for p in body["phases"]))
    assert body["export_wh_total"] > 0
    assert body["last_interval"]["interval_start"] == NOON
    assert body["last_interval"]["export_wh"] >= 1
    assert body["service"] == "connected"
    # The node's own routes are untouched.
    status, body = await smartpi_node.get("/api/v1/status")
    assert status == 200
    response = await smartpi_node.client.post(f"{METER}/readings", data=b"{}", headers=AUTH)
    assert response.status == 409
    assert (await response.json())["error"]["code"] == "not_pushed"


async def test_the_stream_pushes_each_reading(smartpi_node: Node) -> None:
    await smartpi_node.service.step()
    async with smartpi_node.client.ws_connect(f"{METER}/stream", headers=AUTH) as socket:
        first = await asyncio.wait_for(socket.receive_json(), 5)
        assert first["time"] == "2026-03-10T18:14:50Z"
        for _ in range(2):
            smartpi_node.clock.time += 1
            await smartpi_node.service.step()
            message = await asyncio.wait_for(socket.receive(), 5)
            assert message.type == WSMsgType.TEXT
            pushed = json.loads(message.data)
            assert pushed["time"] < "2026-03-10T18:15:00Z"
            assert pushed["service"] == "connected"
        await socket.send_str("the server ignores what clients say")
        smartpi_node.clock.time += 1
        await smartpi_node.service.step()
        assert (await asyncio.wait_for(socket.receive_json(), 5))["service"] == "connected"
    response = await smartpi_node.client.get(f"{METER}/stream")
    assert response.status == 401


async def test_pushed_readings_through_the_api(pushed_node: Node) -> None:
    status, body = await pushed_node.push(
        {"time": "2026-03-10T12:00:00-06:00", "power": 250.5, "voltage": 126.5}
    )
    assert (status, body) == (202, {"status": "queued", "time": "2026-03-10T18:00:00Z"})
    status, _ = await pushed_node.push(
        {"time": "2026-03-10T18:00:30Z", "import_kwh_total": 1.5, "export_kwh_total": 0}
    )
    assert status == 202
    await pushed_node.service.step()
    await pushed_node.service.step()
    status, body = await pushed_node.get(METER)
    assert status == 200
    assert body["source"] == "pushed"
    assert body["time"] == "2026-03-10T18:00:30Z"
    assert body["service"] == "connected"  # the first push carried a voltage


@pytest.mark.parametrize(
    ("body", "status", "field", "message"),
    [
        (b"not json", 400, "body", "not JSON"),
        (b'{"power": NaN}', 400, "body", "not JSON"),
        (b"[1]", 400, "body", "JSON object"),
        (b"{}", 400, "body", "at least one of"),
        ({"power": "5"}, 400, "power", "must be a number"),
        ({"power": True}, 400, "power", "must be a number"),
        (b'{"power": 1' + b"0" * 400 + b"}", 400, "power", "too large"),
        (b'{"power": 1e400}', 400, "power", "finite"),
        ({"import_kwh_total": -1}, 400, "import_kwh_total", "outside"),
        ({"watts": 5}, 400, "watts", "not a reading field"),
        ({"time": 5, "power": 1}, 400, "time", "ISO 8601"),
        ({"time": "yesterday", "power": 1}, 400, "time", "ISO 8601"),
        ({"time": "2026-03-10T12:00:00", "power": 1}, 400, "time", "UTC offset"),
        ({"time": "2027-01-01T00:00:00Z", "power": 1}, 400, "time", "in the future"),
        (b'{"power": 1' + b" " * 5000 + b"}", 413, "body", "at most"),
    ],
)
async def test_bad_pushes_name_the_field(
    pushed_node: Node, body: bytes | dict[str, Any], status: int, field: str, message: str
) -> None:
    got, answer = await pushed_node.push(body)
    assert got == status
    assert answer["error"]["field"] == field
    assert message in answer["error"]["message"]


async def test_a_push_must_be_later_than_the_last(pushed_node: Node) -> None:
    assert (await pushed_node.push({"power": 1.0}))[0] == 202
    status, body = await pushed_node.push({"power": 2.0})  # the same clock time again
    assert status == 400
    assert body["error"]["field"] == "time"
