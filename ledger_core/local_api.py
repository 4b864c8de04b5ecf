"""The home's own routes: local events, contract actions and their results.

- ``GET /api/v1/local/events?after=N`` (WebSocket): local events numbered
  ``lseq`` -- ``contract_action`` and the like -- those kept after ``N``, then
  live ones; a client resumes with the last ``lseq`` it saw.
- ``GET /api/v1/local/actions?limit=&since=&contract_id=&status=``: the action
  log, newest first, with results. By default the actions carried out
  (``status=effective``); ``status=all``, or a comma-separated choice of
  ``effective``, ``unchanged``, ``suppressed``, ``superseded``, adds those not
  carried out, each with ``why``.
- ``POST /api/v1/local/actions/{action_id}/result``: ``{"result": "ok" |
  "failed" | "unmapped" | "skipped", "detail": "..."}`` -- what Home Assistant
  did with an action.

All need the API token. On shutdown the node closes the event streams (going
away), so a connected client never holds the node's stop.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable
from typing import Final

from aiohttp import WSCloseCode, web

from ledger_core.local import RESULTS, STATUSES, ActionLog, LocalEvent, LocalEvents
from ledger_core.wsutil import relay

LOCAL_EVENTS_KEY: Final = web.AppKey("local_events", LocalEvents)
ACTION_LOG_KEY: Final = web.AppKey("action_log", ActionLog)
LOCAL_SOCKETS_KEY: Final[web.AppKey[set[web.WebSocketResponse]]] = web.AppKey("local_sockets")

type Guard = Callable[[web.Request], None]


def add_local_routes(  # noqa: PLR0915 - the handlers are closures over the injected parts
    app: web.Application,
    events: LocalEvents,
    log: ActionLog,
    require_token: Guard,
    error: Callable[..., web.Response],
) -> None:
    """Register the local routes on ``app``."""
    app[LOCAL_EVENTS_KEY] = events
    app[ACTION_LOG_KEY] = log
    app[LOCAL_SOCKETS_KEY] = set()
    app.on_shutdown.append(_close_sockets)  # type: ignore[arg-type]

    def _int(request: web.Request, name: str, default: int, high: int) -> int | web.Response:
        raw = request.query.get(name)
        if raw is None:
            return default
        if not raw.isdigit() or int(raw) > high:
            return error(400, "malformed", f"must be an integer from 0 to {high}", name)
        return int(raw)

    async def list_actions(request: web.Request) -> web.Response:
        require_token(request)
        limit = _int(request, "limit", 100, 1000)
        since = _int(request, "since", 0, 2**40)
        if isinstance(limit, web.Response):
            return limit
        if isinstance(since, web.Response):
            return since
        contract_id = request.query.get("contract_id")
        raw = request.query.get("status", "effective")
        statuses = STATUSES if raw == "all" else tuple(raw.split(","))
        if not statuses or any(s not in STATUSES for s in statuses):
            choices = ", ".join(STATUSES)
            return error(400, "malformed", f"must be all, or some of {choices}", "status")
        rows = log.recent(limit=limit, since=since, contract_id=contract_id, statuses=statuses)
        return web.json_response({"actions": rows})

    async def set_result(request: web.Request) -> web.Response:
        require_token(request)
        raw_id = request.match_info["action_id"]
        if not raw_id.isdigit():
            return error(400, "malformed", "an action id is a number", "action_id")
        try:
            body = json.loads(await request.read())
        except (ValueError, UnicodeDecodeError):
            return error(400, "malformed", "the body is not JSON", "body")
        if not isinstance(body, dict):
            return error(400, "malformed", "the body is a JSON object", "body")
        result, detail = body.get("result"), body.get("detail", "")
        if result not in RESULTS:
            return error(400, "malformed", "must be one of " + ", ".join(RESULTS), "result")
        if not isinstance(detail, str) or len(detail) > 500:
            return error(400, "malformed", "must be text of at most 500 characters", "detail")
        if not log.set_result(int(raw_id), str(result), detail):
            return error(404, "not_found", f"no action {raw_id}")
        events.publish(
            {"type": "contract_action_result", "action_id": int(raw_id), "result": result}
        )
        return web.json_response({"action_id": int(raw_id), "result": result})

    async def stream(request: web.Request) -> web.StreamResponse:
        require_token(request)
        after = _int(request, "after", events.last_seq, 2**62)
        if isinstance(after, web.Response):
            return after
        socket = web.WebSocketResponse(heartbeat=30)
        await socket.prepare(request)
        request.app[LOCAL_SOCKETS_KEY].add(socket)
        queue = events.subscribe()
        last = after
        try:
            for seq, event in events.since(after):
                await socket.send_json({"lseq": seq, "event": event})
                last = seq

            async def send(item: tuple[int, LocalEvent]) -> None:
                nonlocal last
                seq, event = item
                if seq > last:
                    await socket.send_json({"lseq": seq, "event": event})
                    last = seq

            await relay(socket, queue, send)
        finally:
            request.app[LOCAL_SOCKETS_KEY].discard(socket)
            events.unsubscribe(queue)
            with contextlib.suppress(Exception):
                await socket.close()
        return socket

    app.add_routes(
        [
            web.get("/api/v1/local/events", stream),
            web.get("/api/v1/local/actions", list_actions),
            web.post("/api/v1/local/actions/{action_id}/result", set_result),
        ]
    )


async def _close_sockets(app: web.Application) -> None:
    """On shutdown, tell local-stream clients the node is going away."""
    sockets: set[web.WebSocketResponse] = app[LOCAL_SOCKETS_KEY]
    for socket in list(sockets):
        await socket.close(code=WSCloseCode.GOING_AWAY, message=b"node shutting down")
