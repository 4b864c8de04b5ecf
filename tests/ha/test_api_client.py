"""The integration's client against servers that are not (working) Transactiva nodes."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from homeassistant.core import HomeAssistant
from homeassistant.helpers.aiohttp_client import async_get_clientsession
from yarl import URL

from custom_components.transactiva.api import (
    Balance,
    TransactivaAuthError,
    TransactivaClient,
    TransactivaConnectionError,
    TransactivaNotReadyError,
    TransactivaRequestError,
    parse_status,
)

ADDRESS = "tv" + "1" * 40

type Handler = Callable[[web.Request], Awaitable[web.Response]]


def _json(body: object, status: int = 200) -> Handler:
    async def handler(request: web.Request) -> web.Response:
        return web.json_response(body, status=status)

    return handler


def _text(body: str, status: int) -> Handler:
    async def handler(request: web.Request) -> web.Response:
        return web.Response(text=body, status=status)

    return handler


GOOD_STATUS = {"chain_id": "c", "height": 1, "participant": ADDRESS, "validator": ADDRESS}


@pytest.fixture
async def serve(
    hass: HomeAssistant, socket_enabled: None
) -> AsyncIterator[Callable[[dict[str, Handler]], Awaitable[TransactivaClient]]]:
    servers: list[TestServer] = []

    async def start(routes: dict[str, Handler]) -> TransactivaClient:
        app = web.Application()
        for path, handler in routes.items():
            method, _, route = path.partition(" ")
            app.router.add_route(method, f"/api/v1/{route}", handler)
        server = TestServer(app, host="127.0.0.1")
        servers.append(server)
        await server.start_server()
        return TransactivaClient(
            async_get_clientsession(hass), URL(f"http://127.0.0.1:{server.port}"), "token"
        )

    yield start
    for server in servers:
        await server.close()


type Serve = Callable[[dict[str, Handler]], Awaitable[TransactivaClient]]


@pytest.mark.parametrize(
    ("status", "balance", "message"),
    [
        (_json({"error": "boom"}, 500), _json({}), "HTTP 500"),
        (_json(["not", "an", "object"]), _json({}), "not a Transactiva node's"),
        (_json({"chain_id": "c"}), _json({}), "not a Transactiva node's"),
        (_json(GOOD_STATUS), _json({"balance": "lots"}), "not a Transactiva node's"),
        (_json(GOOD_STATUS), _json({"balance": 1}, 404), "HTTP 404"),
        (_text("<html>a router</html>", 200), _json({}), "not a Transactiva node's"),
    ],
)
async def test_answers_that_are_not_a_nodes_are_connection_errors(
    serve: Serve, status: Handler, balance: Handler, message: str
) -> None:
    client = await serve({"GET status": status, f"GET balances/{ADDRESS}": balance})
    with pytest.raises(TransactivaConnectionError, match=message):
        await client.check()


async def test_a_working_node_answers_status_and_balance(serve: Serve) -> None:
    client = await serve(
        {
            "GET status": _json(
                GOOD_STATUS | {"peers": {"count": 3, "list": None}, "catching_up": True}
            ),
            f"GET balances/{ADDRESS}": _json({"balance": 1250, "held": 50}),
        }
    )
    status = await client.check()
    assert (status.chain_id, status.height, status.participant) == ("c", 1, ADDRESS)
    assert (status.peers, status.catching_up, status.interval_seconds) == (3, True, 900)
    assert await client.balance(ADDRESS) == Balance(balance=1250, held=50)


async def test_refusals_keep_the_nodes_reason(serve: Serve) -> None:
    refusal = {
        "error": {"code": "insufficient_funds", "message": "balance 1", "field": "body.amount"}
    }
    client = await serve(
        {
            "POST local/transfer": _json(refusal, 422),
            "POST local/deposit_request": _json(
                {"id": "x", "status": "committed", "code": "late", "message": "too late"}
            ),
            "POST local/withdraw_request": _json({"id": "y", "status": "pending"}, 202),
            "GET state/a": _json({"error": {"code": "not_found"}}, 404),
            "GET state/b": _json({"error": "no object"}, 400),
            "GET state/c": _json({"key": "c", "value": 7}),
            "GET balances/x": _json({}, 401),
            "GET signals/prices": _json({"prices": "none"}),
        }
    )
    with pytest.raises(TransactivaRequestError) as refused:
        await client.local("transfer", {"amount": 1})
    assert (refused.value.status, refused.value.code, refused.value.field) == (
        422,
        "insufficient_funds",
        "body.amount",
    )
    assert str(refused.value) == "insufficient_funds: balance 1 (body.amount)"
    with pytest.raises(TransactivaRequestError) as refused:
        await client.local("deposit_request", {"amount": 1})
    assert (refused.value.code, refused.value.message) == ("late", "too late")
    assert (await client.local("withdraw_request", {"amount": 1}))["status"] == "pending"
    assert await client.state("a") is None
    with pytest.raises(TransactivaRequestError) as refused:
        await client.state("b")
    assert (refused.value.code, refused.value.message) == ("http_400", "HTTP 400")
    assert await client.state("c") == 7
    with pytest.raises(TransactivaAuthError):
        await client.balance("x")
    with pytest.raises(TransactivaConnectionError):
        await client.prices(0, 1)


@pytest.mark.parametrize(("status", "found"), [(404, False), (405, False), (200, True)])
async def test_a_meter_route_is_told_apart_from_its_absence(
    serve: Serve, status: int, found: bool
) -> None:
    body: dict[str, Any] = {"power": 1} if status == 200 else {"error": {"code": "x"}}
    client = await serve({"GET local/meter": _json(body, status)})
    assert (await client.meter() is not None) is found


async def test_a_meter_route_that_fails_is_an_error(serve: Serve) -> None:
    client = await serve({"GET local/meter": _json({"error": {"code": "busy"}}, 409)})
    with pytest.raises(TransactivaRequestError):
        await client.meter()


async def test_a_503_with_the_nodes_error_is_not_ready_and_any_other_is_unreachable(
    serve: Serve,
) -> None:
    client = await serve(
        {
            "GET local/meter": _json(
                {"error": {"code": "no_reading", "message": "not read yet"}}, 503
            ),
            "GET local/analytics/summary": _json({"error": "overloaded"}, 503),
        }
    )
    with pytest.raises(TransactivaNotReadyError) as waiting:
        await client.meter()
    assert (waiting.value.code, waiting.value.message) == ("no_reading", "not read yet")
    with pytest.raises(TransactivaConnectionError, match="HTTP 503"):
        await client.analytics("summary")


@pytest.mark.parametrize(
    ("route", "call"),
    [
        ("GET local/actions", lambda c: c.actions(10)),
        ("GET market/intervals", lambda c: c.market_intervals(0, 1)),
        (f"GET market/trades/{ADDRESS}", lambda c: c.trades(ADDRESS, 0, 1)),
        (f"GET market/settlements/{ADDRESS}", lambda c: c.settlements(ADDRESS, 0, 1)),
    ],
)
async def test_lists_that_are_not_lists_are_not_a_nodes(
    serve: Serve, route: str, call: Callable[[TransactivaClient], Awaitable[Any]]
) -> None:
    body = {"actions": {}, "intervals": 1, "trades": None, "settlements": "none", "debt": 0}
    client = await serve({route: _json(body)})
    with pytest.raises(TransactivaConnectionError, match="not a Transactiva node's"):
        await call(client)


async def test_a_debt_that_is_not_a_number_is_not_a_nodes(serve: Serve) -> None:
    route = f"GET market/settlements/{ADDRESS}"
    client = await serve({route: _json({"debt": "mucho", "settlements": []})})
    with pytest.raises(TransactivaConnectionError):
        await client.settlements(ADDRESS, 0, 1)


def test_a_status_that_is_not_an_object_is_not_a_nodes() -> None:
    with pytest.raises(TransactivaConnectionError):
        parse_status(["chain_id"])


@pytest.mark.parametrize(
    ("extra", "peers", "catching_up", "interval", "offset"),
    [
        ({}, None, None, 900, 0),
        ({"peers": -1, "catching_up": "yes", "interval_seconds": 30}, None, None, 900, 0),
        ({"peers": True, "interval_seconds": 3600}, None, None, 3600, 0),
        ({"utc_offset_minutes": -360}, None, None, 900, -360),
        ({"peers": 0, "catching_up": False, "interval_seconds": 300}, 0, False, 300, 0),
        ({"peers": {"count": 2, "list": [{"id": "p"}]}}, 2, None, 900, 0),
        ({"peers": {"count": -2, "list": None}}, None, None, 900, 0),
        ({"peers": {"list": []}}, None, None, 900, 0),
        ({"utc_offset_minutes": 15 * 60}, None, None, 900, 0),
        ({"utc_offset_minutes": "-06:00"}, None, None, 900, 0),
    ],
)  # fmt: skip
def test_optional_status_fields_are_used_only_when_sound(
    extra: dict[str, Any], peers: int | None, catching_up: bool | None, interval: int, offset: int
) -> None:
    status = parse_status(GOOD_STATUS | extra)
    assert (status.peers, status.catching_up, status.interval_seconds) == (
        peers,
        catching_up,
        interval,
    )
    assert status.utc_offset_minutes == offset
