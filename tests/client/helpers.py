"""Handlers for the loopback servers of the wire contract's tests."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web

from transactiva_client import TransactivaClient

type Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
type Serve = Callable[[dict[str, Handler]], Awaitable[TransactivaClient]]


def answer(body: object, status: int = 200) -> Handler:
    """A handler answering ``body`` as JSON."""

    async def handler(request: web.Request) -> web.Response:
        return web.json_response(body, status=status)

    return handler


def text(body: str, status: int) -> Handler:
    """A handler answering plain text."""

    async def handler(request: web.Request) -> web.Response:
        return web.Response(text=body, status=status)

    return handler
