"""A loopback HTTP and WebSocket proxy in front of a real node that can claim another API
version: what the integration sees when the node it talks to is updated (or not) to an
incompatible version.

Every request is forwarded to the node as it came; ``GET /api/v1/status`` answers with
``api_version`` replaced by :attr:`VersionProxy.api_version` (left out when it is
None). :meth:`VersionProxy.drop_streams` closes every open WebSocket, as a node that
restarts does.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import aiohttp
from aiohttp import web
from aiohttp.test_utils import TestServer

KEEP = object()  # api_version: the node's own


class VersionProxy:
    """Forwards to ``target`` (``http://host:port``) and rewrites the status's version."""

    def __init__(self, target: str) -> None:
        self.target = target
        self.api_version: object = KEEP
        self._sockets: set[web.WebSocketResponse] = set()
        self._session: aiohttp.ClientSession | None = None
        app = web.Application()
        app.router.add_route("*", "/{path:.*}", self._forward)
        self._server = TestServer(app, host="127.0.0.1")

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.port}"

    async def start(self) -> None:
        self._session = aiohttp.ClientSession()
        await self._server.start_server()

    async def close(self) -> None:
        await self.drop_streams()
        await self._server.close()
        if self._session is not None:
            await self._session.close()

    @property
    def open_streams(self) -> int:
        """How many WebSockets pass through the proxy now."""
        return len(self._sockets)

    async def drop_streams(self) -> None:
        """Close every open WebSocket (the integration reconnects, as after a restart)."""
        for socket in list(self._sockets):
            await socket.close(code=aiohttp.WSCloseCode.GOING_AWAY)

    async def _forward(self, request: web.Request) -> web.StreamResponse:
        assert self._session is not None
        headers = {k: v for k, v in request.headers.items() if k.lower() == "authorization"}
        url = self.target + request.path_qs
        if request.headers.get("Upgrade", "").lower() == "websocket":
            return await self._websocket(request, url, headers)
        async with self._session.request(
            request.method, url, headers=headers, data=await request.read()
        ) as answer:
            body = await answer.read()
            if request.path == "/api/v1/status" and self.api_version is not KEEP:
                status: dict[str, Any] = await answer.json()
                status.pop("api_version", None)
                if self.api_version is not None:
                    status["api_version"] = self.api_version
                return web.json_response(status, status=answer.status)
            return web.Response(body=body, status=answer.status, content_type=answer.content_type)

    async def _websocket(
        self, request: web.Request, url: str, headers: dict[str, str]
    ) -> web.StreamResponse:
        assert self._session is not None
        async with self._session.ws_connect(url, headers=headers) as upstream:
            socket = web.WebSocketResponse()
            await socket.prepare(request)
            self._sockets.add(socket)
            try:
                down = asyncio.ensure_future(_pump(upstream, socket))
                up = asyncio.ensure_future(_pump(socket, upstream))
                await asyncio.wait({down, up}, return_when=asyncio.FIRST_COMPLETED)
                for task in (down, up):
                    task.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await task
            finally:
                self._sockets.discard(socket)
                await socket.close()
        return socket


async def _pump(
    source: aiohttp.ClientWebSocketResponse | web.WebSocketResponse,
    sink: aiohttp.ClientWebSocketResponse | web.WebSocketResponse,
) -> None:
    async for message in source:
        if message.type is not aiohttp.WSMsgType.TEXT:
            return
        await sink.send_str(message.data)
