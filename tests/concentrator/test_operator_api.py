"""The operator routes on a real node API: token, publication, overrides, DR, bad inputs."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from ledger_core.api.server import add_feature
from ledger_core.concentrator.api import OPERATOR_PATHS, concentrator_feature
from ledger_core.concentrator.ledger import NodeLedger
from ledger_core.concentrator.service import Concentrator
from ledger_core.concentrator.tariff import load_tariff
from tests.concentrator.harness import TOKEN, TOU, Live, live_node, mx
from tests.state.chain import key

NOON = mx(2026, 3, 10, 12, 0, 5)
AUTH = {"Authorization": f"Bearer {TOKEN}"}
ALICE = key("home-0").address


class Operator:
    """HTTP calls to the node that serves the operator routes."""

    def __init__(self, live: Live, concentrator: Concentrator, session: aiohttp.ClientSession):
        self.live = live
        self.concentrator = concentrator
        self.session = session

    async def call(
        self,
        method: str,
        path: str,
        body: Any = None,
        headers: dict[str, str] | None = None,
    ) -> tuple[int, Any]:
        data = None if body is None else body if isinstance(body, bytes) else json.dumps(body)
        async with self.session.request(
            method,
            f"{self.live.client.base_url}/api/v1{path}",
            data=data,
            headers=AUTH if headers is None else headers,
        ) as answer:
            return answer.status, await answer.json()

    async def error(self, method: str, path: str, body: Any = None) -> tuple[int, str, Any]:
        status, answer = await self.call(method, path, body)
        assert status >= 400, answer
        return status, answer["error"]["code"], answer["error"].get("field")


@pytest.fixture
async def operator(tmp_path: Path) -> AsyncIterator[Operator]:
    made: list[Concentrator] = []

    def install(app: web.Application, live: Live) -> None:
        concentrator = Concentrator(
            load_tariff(TOU), live.local(), live.clock, meter_data=live.meter_data(live.local())
        )
        add_feature(app, concentrator_feature(concentrator))
        made.append(concentrator)

    async with live_node(tmp_path, NOON, install) as live, aiohttp.ClientSession() as session:
        yield Operator(live, made[0], session)


async def test_every_operator_route_needs_the_token_and_is_described(operator: Operator) -> None:
    app = operator.live.app
    routes = {
        (route.method, route.resource.canonical.removeprefix("/api/v1"))
        for route in app.router.routes()
        if route.resource is not None and "/operator/" in route.resource.canonical
    }
    assert routes == {
        (method.upper(), path) for path, item in OPERATOR_PATHS.items() for method in item
    } | {("HEAD", "/operator/neighbourhood"), ("HEAD", "/operator/tariff")}
    for method, path in routes:
        if method == "HEAD":
            continue
        concrete = path.replace("{event_id}", "dr-1")
        for headers in ({}, {"Authorization": "Bearer nope"}):
            status, body = await operator.call(method, concrete, {}, headers=headers)
            assert (status, body["error"]["code"]) == (401, "unauthorized"), path


async def test_publish_the_schedule_then_override(operator: Operator) -> None:
    start = mx(2026, 3, 10, 18)
    status, body = await operator.call(
        "POST", "/operator/prices", {"from": start, "to": start + 3600}
    )
    assert status == 200
    assert body["mode"] == "schedule"
    assert body["published"] == [start + i * 900 for i in range(4)]
    status, body = await operator.call(
        "POST", "/operator/prices", {"from": start, "to": start + 3600}
    )
    assert (status, body["published"], len(body["already_on_chain"])) == (200, [], 4)

    status, body = await operator.call(
        "POST", "/operator/prices", {"from": start + 900, "import_price": 25_000}
    )
    assert (status, body["mode"], body["published"]) == (200, "override", [start + 900])
    status, body = await operator.call("GET", f"/signals/prices?from={start}&to={start + 3600}")
    rows = {row["interval_start"]: row for row in body["prices"]}
    assert rows[start + 900]["import_price"] == 25_000
    assert rows[start + 900]["network_fee"] == 4_130  # the schedule's
    assert rows[start]["import_price"] == 34_520

    # The past is skipped, not refused.
    status, body = await operator.call("POST", "/operator/prices", {"from": mx(2026, 3, 10, 9)})
    assert (status, body["published"], body["past"]) == (200, [], [mx(2026, 3, 10, 9)])

    # When nothing at all could be published the answer is the ledger's refusal.
    operator.concentrator.publisher.ledger = NodeLedger(operator.live.node, key("outsider"))
    assert await operator.error("POST", "/operator/prices", {"from": start + 7200}) == (
        422,
        "unknown_signer",
        None,
    )


@pytest.mark.parametrize(
    ("body", "status", "code", "field"),
    [
        ({}, 400, "malformed", "from"),
        ({"from": mx(2026, 3, 10, 18, 5)}, 400, "malformed", "from"),
        ({"from": "today"}, 400, "malformed", "from"),
        ({"from": -900}, 400, "malformed", "from"),
        ({"from": mx(2026, 3, 10, 18), "to": mx(2026, 3, 10, 18)}, 400, "malformed", "to"),
        ({"from": mx(2026, 3, 10, 18), "to": mx(2026, 3, 30, 18)}, 400, "malformed", "to"),
        ({"from": mx(2026, 3, 10, 18), "import_price": 2.5}, 400, "malformed", "import_price"),
        ({"from": mx(2026, 3, 10, 18), "import_price": True}, 400, "malformed", "import_price"),
        ({"from": mx(2026, 3, 10, 18), "network_fee": -1}, 400, "malformed", "network_fee"),
        ({"from": mx(2026, 3, 10, 18), "export_price": 10**10}, 400, "malformed", "export_price"),
        ({"from": mx(2026, 3, 10, 18), "price": 1}, 400, "malformed", "price"),
        (b"{not json", 400, "malformed", "body"),
        (b"[1, 2]", 400, "malformed", "body"),
        (b"\xff\xfe", 400, "malformed", "body"),
        (b" " * (70 * 1024), 413, "too_large", "body"),
    ],
)
async def test_bad_price_requests_are_4xx_json_naming_the_field(
    operator: Operator, body: Any, status: int, code: str, field: str
) -> None:
    assert await operator.error("POST", "/operator/prices", body) == (status, code, field)


async def test_dr_issue_modify_cancel(operator: Operator) -> None:
    await operator.live.register_meters(1)
    start = mx(2026, 3, 10, 18)
    status, issued = await operator.call(
        "POST",
        "/operator/dr",
        {"signal": {"name": "SIMPLE", "level": 2}, "start": start, "duration": 1800,
         "targets": [ALICE], "ramp_up": 600},
    )  # fmt: skip
    assert status == 201
    assert (issued["action"], issued["modification_number"], issued["status"]) == (
        "issued",
        0,
        "far",
    )
    event_id = issued["event_id"]
    assert (issued["ramp_up"], issued["recovery"], issued["targets"]) == (600, 0, [ALICE])

    status, modified = await operator.call(
        "POST",
        "/operator/dr",
        {"event_id": event_id, "signal": {"name": "LOAD_DISPATCH", "delta_w": -2000}},
    )
    assert (status, modified["action"], modified["modification_number"]) == (200, "modified", 1)
    assert modified["signal"] == {"name": "LOAD_DISPATCH", "delta_w": -2000}
    assert modified["start"] == start  # unchanged fields are kept
    status, same = await operator.call("POST", "/operator/dr", {"event_id": event_id})
    assert (status, same["action"], same["modification_number"]) == (200, "unchanged", 1)

    status, named = await operator.call(
        "POST",
        "/operator/dr",
        {"event_id": "apagon-1", "signal": {"name": "ELECTRICITY_PRICE", "price": 60_000},
         "start": start, "duration": 900},
    )  # fmt: skip
    assert (status, named["event_id"], named["describe"]) == (
        201,
        "apagon-1",
        "ELECTRICITY_PRICE 60000 (10^-4 MXN/kWh)",
    )

    status, cancelled = await operator.call("POST", f"/operator/dr/{event_id}/cancel")
    assert (status, cancelled["action"], cancelled["modification_number"]) == (
        200,
        "cancelled",
        2,
    )
    assert cancelled["status"] == "cancelled"
    status, record = await operator.call("GET", f"/signals/dr/{event_id}")
    assert (record["cancelled"], record["modification_number"]) == (True, 2)
    assert await operator.error("POST", f"/operator/dr/{event_id}/cancel") == (
        409,
        "cancelled_event",
        None,
    )
    assert await operator.error("POST", "/operator/dr/dr-unknown/cancel") == (
        404,
        "unknown_event",
        None,
    )
    assert await operator.error("POST", "/operator/dr/bad%20id/cancel") == (
        400,
        "malformed",
        "event_id",
    )
    assert await operator.error("POST", "/operator/dr", {"event_id": event_id, "duration": 60}) == (
        409,
        "cancelled_event",
        None,
    )

    status, view = await operator.call("GET", "/operator/neighbourhood")
    assert status == 200
    assert [e["event_id"] for e in view["dr_events"]] == ["apagon-1"]
    assert view["price"]["scheduled"]["period"] == "intermediate"
    assert view["load"] == {"latest": None, "recent": [], "meters": {}}


SIMPLE = {"name": "SIMPLE", "level": 1}


@pytest.mark.parametrize(
    ("body", "status", "code", "field"),
    [
        ({"start": NOON + 900, "duration": 900}, 400, "malformed", "signal"),
        ({"signal": SIMPLE, "duration": 900}, 400, "malformed", "start"),
        ({"signal": SIMPLE, "start": NOON + 900}, 400, "malformed", "duration"),
        ({"signal": {"name": "SIMPLE", "level": 7}, "start": NOON, "duration": 900}, 400,
         "malformed", "signal.level"),
        ({"signal": [], "start": NOON, "duration": 900}, 400, "malformed", "signal"),
        ({"signal": SIMPLE, "start": NOON, "duration": 0}, 400, "malformed", "duration"),
        ({"signal": SIMPLE, "start": NOON, "duration": 900, "ramp_up": 86401}, 400, "malformed",
         "ramp_up"),
        ({"signal": SIMPLE, "start": NOON, "duration": 900, "targets": "all"}, 400, "malformed",
         "targets"),
        ({"signal": SIMPLE, "start": NOON, "duration": 900, "targets": ["nobody"]}, 400,
         "malformed", "targets[0]"),
        ({"signal": SIMPLE, "start": NOON, "duration": 900, "targets": [ALICE]}, 422,
         "unknown_account", None),
        ({"signal": SIMPLE, "start": NOON - 3600, "duration": 900}, 400, "past_event", "start"),
        ({"signal": SIMPLE, "start": NOON, "duration": 900, "event_id": "x y"}, 400, "malformed",
         "event_id"),
        ({"signal": SIMPLE, "start": NOON, "duration": 900, "event_id": 5}, 400, "malformed",
         "event_id"),
        ({"signal": SIMPLE, "start": NOON, "duration": 900, "level": 2}, 400, "malformed", "level"),
        (b"nope", 400, "malformed", "body"),
    ],
)  # fmt: skip
async def test_bad_dr_requests_are_4xx_json_naming_the_field(
    operator: Operator, body: Any, status: int, code: str, field: str | None
) -> None:
    assert await operator.error("POST", "/operator/dr", body) == (status, code, field)


async def test_the_tariff_route_publishes_the_table_and_todays_schedule(operator: Operator) -> None:
    status, body = await operator.call("GET", "/operator/tariff")
    assert status == 200
    assert body["tariff"]["name"] == "Residential TOU, central region (example, 2026)"
    assert body["tariff"]["periods"]["peak"]["import_price"] == 34_520
    assert (body["interval"], body["publish_at"], body["day"]) == (900, "12:00", "2026-03-10")
    assert len(body["schedule"]) == 96
    assert body["schedule"][72] == {
        "interval_start": mx(2026, 3, 10, 18),
        "season": "winter",
        "period": "peak",
        "import_price": 34_520,
        "export_price": 10_500,
        "network_fee": 4_130,
    }
