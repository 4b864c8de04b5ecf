"""The node's HTTP/WebSocket API: features, access, errors, and the application that serves them.

Every route belongs to a :class:`Feature` (the ledger's chain, accounts,
contracts, signals, state, the home's local routes, the market; and the roles'
own: meter, analytics, operator, web) and declares its :class:`Access`:

- ``public``: anyone (what the ledger announces: status, prices, DR events);
- ``token``: ``Authorization: Bearer <token>`` with the token in the node's home,
  or a request Home Assistant's ingress proxy forwarded (:func:`from_ingress`);
- ``stream``: a WebSocket that also opens with a ticket (browsers cannot set
  headers on a WebSocket; :func:`issue_ticket`): single-use, valid for
  :data:`TICKET_SECONDS`, and bound to the one stream route it was asked for; a
  ticket authorises nothing else.

:func:`add_feature` is the one way routes are registered: it enforces the
access before the handler runs and adds the route's OpenAPI operation (built
from the same declaration) to ``/api/v1/openapi.json``. Errors are JSON,
``{"error": {"code": "...", "message": "...", "field": "..."}}`` with a 4xx
status (a 405 keeps its ``Allow`` header); no input makes the node answer a
5xx with a traceback. Handlers read JSON bodies with :func:`read_json`, which
answers a 400 for anything :mod:`json` would choke on (nesting too deep, text
that is not Unicode, NaN) and a 413 past the route's limit.
"""

from __future__ import annotations

import copy
import hmac
import json
import logging
import re
import secrets
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Final

from aiohttp import WSCloseCode, web

from ledger_core.api.openapi import add_refusals
from ledger_core.node.host import Node
from ledger_core.state.keys import StateView
from ledger_core.types.crypto import ADDRESS_RE, SigningKey
from ledger_core.types.names import checked_name

LOG: Final = logging.getLogger(__name__)
PREFIX: Final = "/api/v1"
NODE_KEY: Final = web.AppKey("node", Node)
TOKEN_KEY: Final = web.AppKey("token", str)
LOCAL_KEY: Final = web.AppKey("local", SigningKey)
SOCKETS_KEY: Final[web.AppKey[set[web.WebSocketResponse]]] = web.AppKey("sockets")
SPEC_KEY: Final[web.AppKey[dict[str, Any]]] = web.AppKey("spec")
TRUSTED_PROXY_KEY: Final = web.AppKey("trusted_proxy", str)
TICKETS_KEY: Final[web.AppKey[dict[str, tuple[float, str]]]] = web.AppKey("tickets")
STREAMS_KEY: Final[web.AppKey[set[str]]] = web.AppKey("streams")
TICKET_SECONDS: Final = 30
MAX_TICKETS: Final = 1000
# The highest height, action id or sequence number a request may name (SQLite's INTEGER).
MAX_INT64: Final = 2**63 - 1

type Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class Access(StrEnum):
    """Who may call a route."""

    PUBLIC = "public"
    TOKEN = "token"  # noqa: S105 - the name of an access level, not a secret
    STREAM = "stream"


@dataclass(frozen=True, slots=True)
class Route:
    """One route: method, path (under :data:`PREFIX` unless ``absolute``), handler, access,
    and its OpenAPI operation (None: not in the document, e.g. the web pages)."""

    method: str
    path: str
    handler: Handler
    access: Access
    doc: dict[str, Any] | None = None
    absolute: bool = False

    @property
    def url(self) -> str:
        """The path the router matches."""
        return self.path if self.absolute else PREFIX + self.path


@dataclass(frozen=True, slots=True)
class Feature:
    """A part of the API: its routes, and what it sets up on the application."""

    name: str
    routes: Sequence[Route]
    setup: Callable[[web.Application], None] | None = field(default=None)


# -- errors ------------------------------------------------------------------------------


def error(status: int, code: str, message: str, field: str | None = None) -> web.Response:
    """A JSON error response."""
    body: dict[str, Any] = {"code": code, "message": message}
    if field is not None:
        body["field"] = field
    return web.json_response({"error": body}, status=status)


class Fail(Exception):  # noqa: N818 - control flow inside handlers
    """Raised by a handler's helpers: answer ``response`` instead."""

    def __init__(self, response: web.Response) -> None:
        self.response = response


def fail(status: int, code: str, message: str, field: str | None = None) -> Fail:
    """A :class:`Fail` carrying a JSON error (``raise fail(...)``)."""
    return Fail(error(status, code, message, field))


@web.middleware
async def _errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except Fail as failure:
        return failure.response
    except web.HTTPException as exc:
        if isinstance(exc, web.HTTPMethodNotAllowed):
            allowed = ", ".join(sorted(exc.allowed_methods))
            response = error(
                405, "method_not_allowed", f"{exc.method} is not allowed here; use {allowed}"
            )
            response.headers["Allow"] = exc.headers["Allow"]  # which methods the path has
            return response
        if exc.status >= 400:
            return error(exc.status, exc.reason.lower().replace(" ", "_"), exc.reason)
        raise
    except Exception:
        LOG.exception("unexpected error in %s %s", request.method, request.path)
        return error(500, "internal_error", "the node could not answer; see its log")


# -- access ------------------------------------------------------------------------------


def from_ingress(request: web.Request) -> bool:
    """True for a request Home Assistant's ingress proxy forwarded, when the node trusts one.

    The proxy (the Supervisor) is the only host with its address on the app
    network and marks what it forwards with ``X-Ingress-Path``; Home Assistant
    has authenticated the user before forwarding.
    """
    proxy = request.app.get(TRUSTED_PROXY_KEY)
    return proxy is not None and request.remote == proxy and "X-Ingress-Path" in request.headers


def authorised(request: web.Request) -> bool:
    """Whether the request carries the API token (or comes through the ingress proxy)."""
    if from_ingress(request):
        return True
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    expected = request.app[TOKEN_KEY]
    return scheme.lower() == "bearer" and hmac.compare_digest(token.strip(), expected)


def stream_paths(app: web.Application) -> list[str]:
    """The paths of the application's stream routes (what a ticket may be bound to)."""
    streams: set[str] = app[STREAMS_KEY]
    return sorted(streams)


def issue_ticket(app: web.Application, path: str) -> str:
    """A ticket that opens one WebSocket on the stream route ``path`` (``?ticket=``).

    It is used up by the first request to a route that is not public that
    presents it; it opens only a WebSocket handshake of the route it names, within
    :data:`TICKET_SECONDS`. Browsers cannot set ``Authorization`` on a
    WebSocket; a ticket keeps the token itself out of URLs and logs. ValueError
    when ``path`` is not a stream route.
    """
    if path not in app[STREAMS_KEY]:
        raise ValueError(f"{path!r} is not a stream route; one of {', '.join(stream_paths(app))}")
    tickets = app[TICKETS_KEY]
    now = time.monotonic()
    for stale in [t for t, (expiry, _path) in tickets.items() if expiry < now]:
        del tickets[stale]
    while len(tickets) >= MAX_TICKETS:
        del tickets[next(iter(tickets))]
    ticket = secrets.token_urlsafe(32)
    tickets[ticket] = (now + TICKET_SECONDS, path)
    return ticket


def _ticket_accepted(request: web.Request, path: str) -> bool:
    """A WebSocket handshake on ``path`` with a live ticket bound to it.

    Any ticket presented to a guarded route is used up, accepted or not, so a
    ticket shown anywhere else cannot be tried again on its own route.
    """
    ticket = request.query.get("ticket")
    if ticket is None:
        return False
    issued = request.app[TICKETS_KEY].pop(ticket, None)
    if issued is None:
        return False
    expiry, bound = issued
    handshake = (
        request.method == "GET"
        and request.headers.get("Upgrade", "").lower() == "websocket"
        and "upgrade" in request.headers.get("Connection", "").lower()
    )
    return handshake and bound == path and time.monotonic() <= expiry


def _unauthorised() -> web.Response:
    return error(401, "unauthorized", "send Authorization: Bearer <token from the node's home>")


def require_token(request: web.Request) -> None:
    """Raise (answered as a 401) unless the request carries the API token: for the few
    routes registered outside :func:`add_feature`."""
    if not authorised(request):
        raise Fail(_unauthorised())


def _guard(handler: Handler, access: Access, path: str) -> Handler:
    if access is Access.PUBLIC:
        return handler

    async def guarded(request: web.Request) -> web.StreamResponse:
        by_ticket = _ticket_accepted(request, path)  # a ticket shown is used up, wherever
        if authorised(request) or (access is Access.STREAM and by_ticket):
            return await handler(request)
        return _unauthorised()

    guarded.__name__ = getattr(handler, "__name__", "handler")
    guarded.__doc__ = handler.__doc__
    return guarded


def add_feature(app: web.Application, feature: Feature) -> None:
    """Register a feature's routes (guarded by their access) and document them."""
    if feature.setup is not None:
        feature.setup(app)
    paths = app[SPEC_KEY]["paths"]
    for route in feature.routes:
        handler = _guard(route.handler, route.access, route.url)
        if route.access is Access.STREAM:
            app[STREAMS_KEY].add(route.url)
        if route.method == "GET":  # HEAD too, as aiohttp does for web.get
            app.router.add_get(route.url, handler)
        else:
            app.router.add_route(route.method, route.url, handler)
        if route.doc is not None:
            operation = copy.deepcopy(route.doc)
            if route.access is not Access.PUBLIC:
                operation["security"] = [{"bearer": []}]
                add_refusals(operation, [401])  # the guard answers it
            if "requestBody" in operation:
                add_refusals(operation, [400, 413])  # read_json / read_body answer them
            path = re.sub(r"\{(\w+):[^}]+\}", r"{\1}", route.path)
            paths.setdefault(path, {})[route.method.lower()] = operation


# -- request helpers ---------------------------------------------------------------------


def node_of(request: web.Request) -> Node:
    """The node the application serves."""
    return request.app[NODE_KEY]


def view(request: web.Request) -> StateView:
    """Typed reads of the node's committed state."""
    return StateView(request.app[NODE_KEY].committed)


def address_param(request: web.Request, name: str = "address") -> str:
    """The path's address -- or a participant's name, resolved to its address -- or a 4xx."""
    return resolve_address(view(request), request.match_info[name], name)


def resolve_address(state: StateView, text: str, field: str) -> str:
    """An address as given, or the address holding the participant name ``text`` (any
    case); a 400 for neither, a 404 for a name nobody holds."""
    if ADDRESS_RE.fullmatch(text):
        return text
    try:
        name = checked_name(text)
    except ValueError:
        raise fail(
            400, "malformed", "not an address (tv + 40 hex digits) nor a participant's name", field
        ) from None
    holder = state.name_holder(name)
    if holder is None:
        raise fail(404, "unknown_name", f"no participant is named {name!r}", field)
    return holder


def int_query(request: web.Request, name: str, default: int, low: int, high: int) -> int:
    """An integer query parameter in ``[low, high]``, or a 400."""
    raw = request.query.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise fail(400, "malformed", "must be an integer", name) from None
    if not low <= value <= high:
        raise fail(400, "malformed", f"must be between {low} and {high}", name)
    return value


def time_range(request: web.Request) -> tuple[int, int, int]:
    """``?from=&to=&limit=``: interval starts (``from`` included, ``to`` excluded)."""
    start = int_query(request, "from", 0, 0, 2**40)
    end = int_query(request, "to", 2**40, 0, 2**40)
    limit = int_query(request, "limit", 1000, 1, 10_000)
    return start, end, limit


async def read_body(request: web.Request, limit: int, what: str) -> bytes:
    """The whole request body, or a 413 as soon as it grows past ``limit`` bytes."""
    if request.content_length is not None and request.content_length > limit:
        raise fail(413, "too_large", f"{what} is at most {limit} bytes", "body")
    chunks: list[bytes] = []
    size = 0
    while True:
        chunk = await request.content.read(65536)
        if not chunk:
            return b"".join(chunks)
        size += len(chunk)
        if size > limit:
            raise fail(413, "too_large", f"{what} is at most {limit} bytes", "body")
        chunks.append(chunk)


async def read_json(
    request: web.Request,
    limit: int,
    what: str,
    *,
    parse_float: Callable[[str], object] | None = None,
) -> object:
    """The request's JSON body: a 413 past ``limit`` bytes, a 400 for what is not JSON,
    is nested too deeply for the parser, holds NaN or infinities, or text that is not
    Unicode (a lone surrogate such as ``"\\ud800"``). ``parse_float`` as for
    :func:`json.loads` (e.g. :class:`decimal.Decimal`)."""
    raw = await read_body(request, limit, what)
    try:
        value: object = json.loads(raw, parse_float=parse_float, parse_constant=_no_constant)
    except RecursionError:
        raise fail(400, "malformed", f"{what} is nested too deeply", "body") from None
    except (ValueError, UnicodeDecodeError):
        raise fail(400, "malformed", f"{what} is not JSON", "body") from None
    where = _not_unicode(value)
    if where is not None:
        raise fail(400, "malformed", "holds text that is not Unicode (a lone surrogate)", where)
    return value


def _no_constant(name: str) -> object:
    raise ValueError(f"{name} is not a number")


def _not_unicode(value: object) -> str | None:
    """Where ``value`` holds a string that cannot be UTF-8 (``body.memo``), or None."""
    stack: list[tuple[object, str]] = [(value, "body")]
    while stack:
        item, where = stack.pop()
        if isinstance(item, str):
            try:
                item.encode("utf-8")
            except UnicodeEncodeError:
                return where
        elif isinstance(item, dict):
            for key, child in item.items():
                place = f"{where}.{key}" if _unicode(key) else where
                stack.append((key, where))
                stack.append((child, place))
        elif isinstance(item, list):
            stack.extend((child, f"{where}[{i}]") for i, child in enumerate(item))
    return None


def _unicode(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def track_socket(request: web.Request, socket: web.WebSocketResponse) -> None:
    """Close ``socket`` with the others when the node shuts down."""
    request.app[SOCKETS_KEY].add(socket)


def forget_socket(request: web.Request, socket: web.WebSocketResponse) -> None:
    """``socket`` has closed."""
    request.app[SOCKETS_KEY].discard(socket)


async def _close_sockets(app: web.Application) -> None:
    """On shutdown, tell stream clients the node is going away (they will resume)."""
    sockets: set[web.WebSocketResponse] = app[SOCKETS_KEY]
    for socket in list(sockets):
        await socket.close(code=WSCloseCode.GOING_AWAY, message=b"node shutting down")


# -- the application ---------------------------------------------------------------------


def make_server(
    node: Node,
    token: str,
    local_key: SigningKey,
    spec: dict[str, Any],
    features: Sequence[Feature],
    *,
    trusted_proxy: str | None = None,
    client_max_size: int,
) -> web.Application:
    """An aiohttp application serving ``features`` of ``node``; ``spec`` is the OpenAPI
    document the features' operations are added to."""
    app = web.Application(middlewares=[_errors], client_max_size=client_max_size)
    app[NODE_KEY] = node
    app[TOKEN_KEY] = token
    app[LOCAL_KEY] = local_key
    app[SOCKETS_KEY] = set()
    app[SPEC_KEY] = copy.deepcopy(spec)
    app[TICKETS_KEY] = {}
    app[STREAMS_KEY] = set()
    if trusted_proxy is not None:
        app[TRUSTED_PROXY_KEY] = trusted_proxy
    # aiohttp 3.11's annotation of Signal.append does not accept a plain handler.
    app.on_shutdown.append(_close_sockets)  # type: ignore[arg-type]
    for feature in features:
        add_feature(app, feature)
    return app
