"""FUTURE node routes, served on loopback in front of a real node until the node has them.

The node does not serve these routes yet:

- ``GET  /api/v1/local/meter``           the meter's latest reading
- ``GET  /api/v1/local/meter/stream``    WebSocket, one reading per message
- ``POST /api/v1/local/meter/readings``  Home Assistant's sensors as the node's meter
- ``POST /api/v1/local/actions/result``  how a contract action went on its appliance
- ``peers`` and ``catching_up`` in ``GET /api/v1/status`` (added to the real node's answer)

Until it does, :class:`FutureRoutes` serves exactly that JSON contract on
loopback and forwards every other request (the event stream included) to a real
node process, so only those four routes are stand-ins. Once the node has them,
replace ``FutureRoutes`` with the real node (``transactiva_node.url``) and
push readings through the node's meter source instead of ``push``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from copy import deepcopy
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from conftest import RealNode
from homeassistant.core import HomeAssistant

from custom_components.transactiva.const import DOMAIN

READING: dict[str, Any] = {
    "time": "2026-11-24T10:00:00+00:00",
    "source": "smartpi",
    "phases": [
        {
            "phase": str(n),
            "voltage": 127.1 + n,
            "current": 5.2,
            "power": 640.5,
            "power_factor": 0.97,
            "frequency": 60.01,
        }
        for n in (1, 2, 3)
    ],
    "neutral_current": 0.4,
    "power": 1921.5,
    "import_wh_total": 1234567,
    "export_wh_total": 89012,
    "last_interval": {"interval_start": 1795515300, "import_wh": 310, "export_wh": 0},
    "service": "connected",
}


class FutureRoutes:
    """Loopback stand-in for the node routes above; everything else goes to ``node``."""

    def __init__(self, node: RealNode, reading: dict[str, Any] | None) -> None:
        self.node = node
        self.reading = reading
        self.readings_received: list[dict[str, Any]] = []
        self.results_received: list[dict[str, Any]] = []
        self.status_extra: dict[str, Any] = {}
        self.stream_open = True
        self.streams: set[web.WebSocketResponse] = set()
        self.upstreams: set[aiohttp.ClientWebSocketResponse] = set()
        self.session = aiohttp.ClientSession()
        app = web.Application()
        app.router.add_get("/api/v1/status", self._status)
        app.router.add_get("/api/v1/local/meter", self._meter)
        app.router.add_get("/api/v1/local/meter/stream", self._meter_stream)
        app.router.add_post("/api/v1/local/meter/readings", self._readings)
        app.router.add_post("/api/v1/local/actions/result", self._result)
        app.router.add_route("*", "/{tail:.*}", self._forward)
        self.runner = web.AppRunner(app)
        self.url = ""

    async def start(self) -> str:
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        port = self.runner.addresses[0][1]
        self.url = f"http://127.0.0.1:{port}"
        return self.url

    async def close(self) -> None:
        await self.drop_streams()
        for upstream in list(self.upstreams):
            await upstream.close()
        await self.runner.cleanup()
        await self.session.close()

    def _authorised(self, request: web.Request) -> None:
        if request.headers.get("Authorization") != f"Bearer {self.node.token}":
            raise web.HTTPUnauthorized

    async def _status(self, request: web.Request) -> web.Response:
        async with self.session.get(self.node.url + "/api/v1/status") as answer:
            return web.json_response(await answer.json() | self.status_extra)

    async def _meter(self, request: web.Request) -> web.Response:
        self._authorised(request)
        if self.reading is None:
            raise web.HTTPNotFound
        return web.json_response(self.reading)

    async def _meter_stream(self, request: web.Request) -> web.WebSocketResponse:
        self._authorised(request)
        if not self.stream_open:
            raise web.HTTPServiceUnavailable
        socket = web.WebSocketResponse()
        await socket.prepare(request)
        self.streams.add(socket)
        with contextlib.suppress(asyncio.CancelledError):
            async for _ in socket:
                pass
        self.streams.discard(socket)
        return socket

    async def _readings(self, request: web.Request) -> web.Response:
        self._authorised(request)
        self.readings_received.append(await request.json())
        return web.json_response({"accepted": True})

    async def _result(self, request: web.Request) -> web.Response:
        self._authorised(request)
        self.results_received.append(await request.json())
        return web.json_response({"accepted": True})

    async def push(self, reading: dict[str, Any] | str) -> None:
        """Send a reading (or any text) to every meter stream client."""
        if isinstance(reading, dict):
            self.reading = reading
        text = reading if isinstance(reading, str) else json.dumps(reading)
        for socket in list(self.streams):
            await socket.send_str(text)

    async def drop_streams(self) -> None:
        for socket in list(self.streams):
            await socket.close()

    async def _forward(self, request: web.Request) -> web.StreamResponse:
        target = self.node.url + request.path_qs
        headers = {k: v for k, v in request.headers.items() if k in ("Authorization",)}
        if request.headers.get("Upgrade", "").lower() == "websocket":
            return await self._forward_socket(request, target, headers)
        body = await request.read()
        async with self.session.request(
            request.method, target, data=body or None, headers=headers
        ) as answer:
            return web.Response(
                status=answer.status, body=await answer.read(), content_type=answer.content_type
            )

    async def _forward_socket(
        self, request: web.Request, target: str, headers: dict[str, str]
    ) -> web.WebSocketResponse:
        downstream = web.WebSocketResponse()
        await downstream.prepare(request)

        async def pump(upstream: aiohttp.ClientWebSocketResponse) -> None:
            async for message in upstream:
                if message.type is not aiohttp.WSMsgType.TEXT:
                    break
                await downstream.send_str(message.data)

        async def drain() -> None:
            async for _ in downstream:
                pass

        try:
            async with self.session.ws_connect(target, headers=headers) as upstream:
                self.upstreams.add(upstream)
                tasks = {asyncio.ensure_future(pump(upstream)), asyncio.ensure_future(drain())}
                _, pending = await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
                for task in pending:
                    task.cancel()
                await asyncio.gather(*pending, return_exceptions=True)
        except aiohttp.ClientError:
            pass
        finally:
            self.upstreams = {u for u in self.upstreams if not u.closed}
        await downstream.close()
        return downstream


@pytest.fixture
async def future_routes(
    hass: HomeAssistant, transactiva_node: RealNode
) -> AsyncIterator[FutureRoutes]:
    routes = FutureRoutes(transactiva_node, deepcopy(READING))
    await routes.start()
    yield routes
    # Entries stop following the streams before the stand-in goes away.
    for entry in hass.config_entries.async_entries(DOMAIN):
        await hass.config_entries.async_unload(entry.entry_id)
    await routes.close()
