"""Relaying a queue to a WebSocket client: what every streaming route of the node does.

The node's streams (ledger events, the home's local events, meter readings)
all wait on two things at once -- the next item of a subscriber queue and the
client's next message -- send each item, stop when the client closes, and
leave no task behind. :func:`relay` is that loop, once.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from typing import Any, Final

from aiohttp import WSMsgType, web

from ledger_core.api.server import Fail, error

HEARTBEAT_SECONDS: Final = 30
CLOSING: Final = frozenset({WSMsgType.CLOSE, WSMsgType.CLOSING, WSMsgType.CLOSED, WSMsgType.ERROR})


async def open_socket(request: web.Request) -> web.WebSocketResponse:
    """The WebSocket of ``request``, prepared; a 400 (JSON) when the request is not a
    WebSocket handshake."""
    socket = web.WebSocketResponse(heartbeat=HEARTBEAT_SECONDS)
    if not socket.can_prepare(request).ok:
        raise Fail(error(400, "malformed", "open this route as a WebSocket (Upgrade: websocket)"))
    await socket.prepare(request)
    return socket


async def relay[T](
    socket: web.WebSocketResponse,
    queue: asyncio.Queue[T],
    send: Callable[[T], Awaitable[None]],
) -> None:
    """Hand every queued item to ``send`` until the client closes ``socket``, then close it."""
    get: asyncio.Future[T] = asyncio.ensure_future(queue.get())
    receive: asyncio.Future[Any] = asyncio.ensure_future(socket.receive())
    try:
        while not socket.closed:
            done, _ = await asyncio.wait({get, receive}, return_when=asyncio.FIRST_COMPLETED)
            if receive in done:
                if receive.result().type in CLOSING:
                    break
                receive = asyncio.ensure_future(socket.receive())
            if get in done:
                await send(get.result())
                get = asyncio.ensure_future(queue.get())
    finally:
        for future in (get, receive):
            future.cancel()
        await asyncio.gather(get, receive, return_exceptions=True)
        with contextlib.suppress(Exception):
            await socket.close()
