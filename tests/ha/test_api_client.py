"""The integration's client against servers that are not (working) Transactiva nodes."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from homeassistant.core import HomeAssistant
from homeassistant.helpers.aiohttp_client import async_get_clientsession
from yarl import URL

from custom_components.transactiva.api import (
    Balance,
    TransactivaClient,
    TransactivaConnectionError,
)

ADDRESS = "tv" + "1" * 40

type Handler = Callable[[web.Request], Awaitable[web.Response]]


def _app(status: Handler, balance: Handler) -> web.Application:
    app = web.Application()
    app.router.add_get("/api/v1/status", status)
    app.router.add_get(f"/api/v1/balances/{ADDRESS}", balance)
    return app


def _json(body: object, status: int = 200) -> Handler:
    async def handler(request: web.Request) -> web.Response:
        return web.json_response(body, status=status)

    return handler


GOOD_STATUS = {"chain_id": "c", "height": 1, "participant": ADDRESS, "validator": ADDRESS}


@pytest.fixture
async def serve(socket_enabled: None) -> AsyncIterator[Callable[[web.Application], TestServer]]:
    servers: list[TestServer] = []

    def start(app: web.Application) -> TestServer:
        server = TestServer(app, host="127.0.0.1")
        servers.append(server)
        return server

    yield start
    for server in servers:
        await server.close()


@pytest.mark.parametrize(
    ("status", "balance", "message"),
    [
        (_json({"error": "boom"}, 500), _json({}), "HTTP 500"),
        (_json(["not", "an", "object"]), _json({}), "not a Transactiva node's"),
        (_json({"chain_id": "c"}), _json({}), "not a Transactiva node's"),
        (_json(GOOD_STATUS), _json({"balance": "lots"}), "not a Transactiva node's"),
        (_json(GOOD_STATUS), _json({"balance": 1}, 404), "HTTP 404"),
    ],
)
async def test_answers_that_are_not_a_nodes_are_connection_errors(
    hass: HomeAssistant,
    serve: Callable[[web.Application], TestServer],
    status: Handler,
    balance: Handler,
    message: str,
) -> None:
    server = serve(_app(status, balance))
    await server.start_server()
    client = TransactivaClient(
        async_get_clientsession(hass), URL(f"http://127.0.0.1:{server.port}"), "token"
    )
    with pytest.raises(TransactivaConnectionError, match=message):
        await client.check()


async def test_a_working_node_answers_status_and_balance(
    hass: HomeAssistant, serve: Callable[[web.Application], TestServer]
) -> None:
    server = serve(_app(_json(GOOD_STATUS), _json({"balance": 1250})))
    await server.start_server()
    client = TransactivaClient(
        async_get_clientsession(hass), URL(f"http://127.0.0.1:{server.port}"), "token"
    )
    status = await client.check()
    assert (status.chain_id, status.height, status.participant) == ("c", 1, ADDRESS)
    assert await client.balance(ADDRESS) == Balance(balance=1250, held=0)
