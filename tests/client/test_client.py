"""The client against servers that are not (working, or compatible) Transactiva nodes:
loopback aiohttp servers answering what a test gives them."""

from __future__ import annotations

import socket
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from tests.client.helpers import Handler, Serve, answer, text
from transactiva_client import (
    API_VERSION,
    IncompatibleNodeError,
    TransactivaAuthError,
    TransactivaClient,
    TransactivaConnectionError,
    TransactivaNotReadyError,
    TransactivaRequestError,
    UnexpectedAnswerError,
    Update,
)
from transactiva_client.models import Balance, PushedReading
from transactiva_client.protocol import ActionResult, ErrorCode

ADDRESS = "tv" + "1" * 40
TX = "cd" * 32
GOOD_STATUS = {
    "api_version": API_VERSION,
    "chain_id": "c",
    "height": 1,
    "participant": ADDRESS,
    "validator": ADDRESS,
}


@pytest.mark.parametrize(
    ("status", "balance", "message"),
    [
        (answer({"error": "boom"}, 500), answer({}), "HTTP 500"),
        (answer(["not", "an", "object"]), answer({}), "not a Transactiva node's"),
        (answer({"chain_id": "c"}), answer({}), "not a Transactiva node's: height"),
        (answer(GOOD_STATUS), answer({"balance": "lots"}), "not a Transactiva node's: balance"),
        (answer(GOOD_STATUS), answer({"balance": 1}, 404), "HTTP 404"),
        (text("<html>a router</html>", 200), answer({}), "not a Transactiva node's"),
    ],
)
async def test_answers_that_are_not_a_nodes_are_connection_errors(
    serve: Serve, status: Handler, balance: Handler, message: str
) -> None:
    client = await serve({"GET status": status, f"GET balances/{ADDRESS}": balance})
    with pytest.raises(TransactivaConnectionError, match=message) as failed:
        await client.connect()
    # Something answered, but not as a node: told apart from a node that cannot be reached.
    assert isinstance(failed.value, UnexpectedAnswerError) == ("not a" in message)


async def test_a_working_node_answers_status_and_balance(serve: Serve) -> None:
    client = await serve(
        {
            "GET status": answer(
                GOOD_STATUS | {"peers": {"count": 3, "list": None}, "catching_up": True}
            ),
            f"GET balances/{ADDRESS}": answer({"balance": 1250, "held": 50}),
        }
    )
    status = await client.connect()
    assert (status.chain_id, status.height, status.participant) == ("c", 1, ADDRESS)
    assert (status.peers, status.catching_up, status.interval_seconds) == (3, True, 900)
    assert await client.balance(ADDRESS) == Balance(balance=1250, held=50)


@pytest.mark.parametrize(
    ("version", "update", "said"),
    [
        ("99.0", Update.CLIENT, "serves API 99.0"),
        ("0.9", Update.NODE, "serves API 0.9"),
        (None, Update.NODE, "does not say its API version"),
    ],
)
async def test_an_incompatible_node_is_refused_saying_what_to_update(
    serve: Serve, version: str | None, update: Update, said: str
) -> None:
    status = {k: v for k, v in GOOD_STATUS.items() if k != "api_version"}
    if version is not None:
        status["api_version"] = version
    client = await serve(
        {"GET status": answer(status), f"GET balances/{ADDRESS}": answer({"balance": 1})}
    )
    with pytest.raises(IncompatibleNodeError) as refused:
        await client.connect()
    assert (refused.value.node_version, refused.value.update) == (version, update)
    assert said in str(refused.value)
    assert client.url in str(refused.value)
    # The status itself is still readable without the check (to show what the node is).
    unchecked = await client.status(check=False)
    assert unchecked.api_version is None or str(unchecked.api_version) == version


async def test_refusals_keep_the_nodes_reason(serve: Serve) -> None:
    refusal = {
        "error": {"code": "insufficient_funds", "message": "balance 1", "field": "body.amount"}
    }
    client = await serve(
        {
            "POST local/transfer": answer(refusal, 422),
            "POST local/deposit_request": answer(
                {"id": TX, "status": "committed", "code": "late", "message": "too late"}
            ),
            "POST local/withdraw_request": answer({"id": TX, "status": "pending"}, 202),
            "GET state/a": answer({"error": {"code": "not_found"}}, 404),
            "GET state/b": answer({"error": "no object"}, 400),
            "GET state/c": answer({"key": "c", "value": 7}),
            "GET balances/x": answer({}, 401),
            "GET signals/prices": answer({"prices": "none"}),
        }
    )
    with pytest.raises(TransactivaRequestError) as refused:
        await client.submit_local("transfer", {"amount": 1})
    assert (refused.value.status, refused.value.code, refused.value.field) == (
        422,
        "insufficient_funds",
        "body.amount",
    )
    assert refused.value.code is ErrorCode.INSUFFICIENT_FUNDS
    assert str(refused.value) == "insufficient_funds: balance 1 (body.amount)"
    with pytest.raises(TransactivaRequestError) as refused:
        await client.submit_local("deposit_request", {"amount": 1})
    assert (refused.value.code, refused.value.message) == ("late", "too late")
    pending = await client.submit_local("withdraw_request", {"amount": 1})
    assert (pending.status, pending.tx_id, pending.ok) == ("pending", TX, False)
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
    client = await serve({"GET local/meter": answer(body, status)})
    reading = await client.meter()
    assert (reading is not None) is found
    if reading is not None:
        assert reading.power == 1.0


async def test_a_meter_route_that_fails_is_an_error(serve: Serve) -> None:
    client = await serve({"GET local/meter": answer({"error": {"code": "busy"}}, 409)})
    with pytest.raises(TransactivaRequestError):
        await client.meter()


async def test_a_503_with_the_nodes_error_is_not_ready_and_any_other_is_unreachable(
    serve: Serve,
) -> None:
    client = await serve(
        {
            "GET local/meter": answer(
                {"error": {"code": "no_reading", "message": "not read yet"}}, 503
            ),
            "GET local/analytics/summary": answer({"error": "overloaded"}, 503),
        }
    )
    with pytest.raises(TransactivaNotReadyError) as waiting:
        await client.meter()
    assert (waiting.value.code, waiting.value.message) == ("no_reading", "not read yet")
    assert waiting.value.code is ErrorCode.NO_READING
    with pytest.raises(TransactivaConnectionError, match="HTTP 503"):
        await client.forecast_summary()


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
    client = await serve({route: answer(body)})
    with pytest.raises(TransactivaConnectionError, match="not a Transactiva node's"):
        await call(client)


async def test_a_debt_that_is_not_a_number_is_not_a_nodes(serve: Serve) -> None:
    route = f"GET market/settlements/{ADDRESS}"
    client = await serve({route: answer({"debt": "mucho", "settlements": []})})
    with pytest.raises(TransactivaConnectionError, match="debt"):
        await client.settlements(ADDRESS, 0, 1)


async def test_an_action_log_row_that_does_not_decode_is_left_out(serve: Serve) -> None:
    row = {
        "type": "contract_action",
        "action_id": 3,
        "time": 100,
        "trigger": "price_signal",
        "contract_id": TX,
        "short_id": "0xCDCDCDCDCD",
        "contract": "c",
        "action": "notify",
        "device": None,
        "reason": "r",
        "description": "d",
        "result": "ok",
        "detail": "",
    }
    client = await serve({"GET local/actions": answer({"actions": [row, row | {"time": -1}]})})
    (entry,) = await client.actions(10)
    assert (entry.action.action_id, entry.result) == (3, ActionResult.OK)


async def test_what_the_client_sends(serve: Serve) -> None:
    """Results and pushed readings go out in the node's shape."""
    received: list[tuple[str, Any]] = []

    def keep(status: int) -> Handler:
        async def handler(request: web.Request) -> web.Response:
            received.append((request.path, await request.json()))
            return web.json_response({}, status=status)

        return handler

    client = await serve(
        {"POST local/actions/{id}/result": keep(200), "POST local/meter/readings": keep(202)}
    )
    await client.post_action_result(4, ActionResult.UNMAPPED, "x" * 600)
    reading = PushedReading(datetime(2026, 11, 24, 12, tzinfo=UTC), power=5.0)
    await client.post_meter_reading(reading)
    assert received == [
        ("/api/v1/local/actions/4/result", {"result": "unmapped", "detail": "x" * 500}),
        ("/api/v1/local/meter/readings", {"time": "2026-11-24T12:00:00+00:00", "power": 5.0}),
    ]


async def test_a_node_that_cannot_be_reached_is_a_connection_error(
    session: aiohttp.ClientSession,
) -> None:
    with socket.socket() as probe:  # a port that was free a moment ago: nothing listens
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    client = TransactivaClient(session, f"http://127.0.0.1:{port}", "token")
    with pytest.raises(TransactivaConnectionError):
        await client.status()
    with pytest.raises(TransactivaConnectionError):
        async with client.ledger_events():
            pass


async def test_websocket_refusals_are_the_clients_errors(serve: Serve) -> None:
    client = await serve(
        {
            "GET events": answer({"error": {"code": "unauthorized"}}, 401),
            "GET local/events": answer({"error": {"code": "not_found"}}, 404),
            "GET local/meter/stream": answer({"error": "down"}, 502),
        }
    )
    with pytest.raises(TransactivaAuthError):
        async with client.ledger_events(after=3):
            pass
    with pytest.raises(TransactivaRequestError) as missing:
        async with client.local_events():
            pass
    assert missing.value.status == 404
    with pytest.raises(TransactivaConnectionError, match="HTTP 502"):
        async with client.meter_readings():
            pass


async def test_a_stream_skips_what_does_not_decode_and_ends_when_closed(serve: Serve) -> None:
    async def stream(request: web.Request) -> web.WebSocketResponse:
        socket = web.WebSocketResponse()
        await socket.prepare(request)
        assert request.query.get("after") == "4"
        await socket.send_str("not json")
        await socket.send_json({"seq": 5, "height": 2, "event": {"type": "new_block"}})
        await socket.send_json({"seq": 6, "height": 2, "event": {"kind": "no type"}})
        await socket.send_json({"seq": 7, "height": 3, "event": {"type": "a_future_event"}})
        await socket.close()
        return socket

    client = await serve({"GET events": stream})
    async with client.ledger_events(after=4) as messages:
        assert messages.position is None
        received = [message async for message in messages]
    assert [(m.seq, m.event.kind) for m in received] == [(5, "new_block"), (7, "a_future_event")]
    assert (messages.position, messages.skipped) == (7, 2)
