"""The home's own routes: signing with the node's local participant key, local events and
the contract-action log.

- ``POST /local/{tx_type}``: sign a transaction body with the local participant's
  key and submit it (what Home Assistant and the web interface use, so they never
  hold a key); a participant's name where the body takes an address is signed as
  the address that holds it;
- ``GET /local/events?after=N`` (WebSocket): local events numbered ``lseq`` --
  ``contract_action`` and the like -- those kept after ``N``, then live ones; a
  client resumes with the last ``lseq`` it saw;
- ``GET /local/actions?limit=&since=&contract_id=&status=``: the action log,
  newest first, with results. By default the actions carried out
  (``status=effective``); ``status=all``, or a comma-separated choice of
  ``effective``, ``unchanged``, ``suppressed``, ``superseded``, adds those not
  carried out, each with ``why``;
- ``POST /local/actions/{action_id}/result``: ``{"result": "ok" | "failed" |
  "unmapped" | "skipped", "detail": "..."}`` -- what Home Assistant did with an
  action.

All need the API token. On shutdown the node closes the event streams (going
away), so a connected client never holds the node's stop.
"""

from __future__ import annotations

import contextlib
import re
from typing import Final

from aiohttp import web

from ledger_core.api.chain import SUBMIT_REFUSALS, SUBMITTED, submit_and_maybe_wait
from ledger_core.api.openapi import (
    ANY_OBJECT,
    INT,
    TEXT,
    WAIT,
    array,
    enum,
    nullable,
    obj,
    operation,
    path_param,
    query_param,
    ref,
    websocket,
)
from ledger_core.api.server import (
    LOCAL_KEY,
    MAX_INT64,
    Access,
    Feature,
    Route,
    error,
    fail,
    forget_socket,
    node_of,
    read_json,
    resolve_address,
    track_socket,
    view,
)
from ledger_core.api.wsutil import open_socket, relay
from ledger_core.node.local import RESULTS, STATUSES, ActionLog, LocalEvent, LocalEvents
from ledger_core.types.fields import FieldError
from ledger_core.types.tx import MAX_TX_BYTES, TxType, sign


async def local_sign(request: web.Request) -> web.Response:
    """Sign a transaction body with the local participant's key and submit it."""
    node = node_of(request)
    try:
        tx_type = TxType(request.match_info["tx_type"])
    except ValueError:
        return error(404, "not_found", "no such transaction type")
    body = await read_json(request, MAX_TX_BYTES, "a transaction body")
    if not isinstance(body, dict):
        return error(
            400, "malformed", "the body is a JSON object of the transaction's fields", "body"
        )
    _resolve_names(request, tx_type, body)
    key = request.app[LOCAL_KEY]
    # No await between choosing the nonce and entering the mempool (Node.next_nonce).
    nonce = node.next_nonce(key.address)
    try:
        tx = sign(key, node.genesis.chain_id, tx_type, nonce, body)
    except FieldError as err:
        return error(400, "malformed", err.message, err.field.removeprefix("tx."))
    except TypeError as err:
        return error(400, "malformed", str(err), "body")
    return await submit_and_maybe_wait(request, tx.wire())


ADDRESS_FIELDS: Final[dict[TxType, tuple[str, ...]]] = {
    TxType.TRANSFER: ("to",),
    TxType.REVOKE: ("address",),
    TxType.SET_NAME: ("address",),
    TxType.BIND_METER: ("participant",),
    TxType.SERVICE: ("participant",),
}


def _resolve_names(request: web.Request, tx_type: TxType, body: dict[str, object]) -> None:
    """A participant's name where the transaction takes an address (``to`` of a transfer,
    the targets of a DR event, ...) becomes the address that holds it now: what is signed
    is the address, so the transaction means the same whoever holds the name later."""
    state = view(request)
    for name in ADDRESS_FIELDS.get(tx_type, ()):
        value = body.get(name)
        if isinstance(value, str):
            body[name] = resolve_address(state, value, f"body.{name}")
    targets = body.get("targets")
    if tx_type is TxType.DR_EVENT and isinstance(targets, list):
        body["targets"] = [
            resolve_address(state, t, f"body.targets[{i}]") if isinstance(t, str) else t
            for i, t in enumerate(targets)
        ]


SIGN: Final = Feature(
    "local-sign",
    (
        Route(
            "POST",
            # Only the transaction types: a POST to /local/actions or /local/meter is a 405.
            "/local/{tx_type:" + "|".join(t.value for t in TxType) + "}",
            local_sign,
            Access.TOKEN,
            operation(
                "Sign the body (the transaction's fields, see docs/api.md) with the node's "
                "local participant key and submit it",
                params=[
                    {
                        "name": "tx_type",
                        "in": "path",
                        "required": True,
                        "schema": {"type": "string", "enum": [t.value for t in TxType]},
                    },
                    WAIT,
                ],
                answers=SUBMITTED,
                refusals=(*SUBMIT_REFUSALS, 404),
                body=ANY_OBJECT,
            ),
        ),
    ),
)

_COUNT: Final = {"type": "integer", "minimum": 0, "maximum": 2**62}
_STATUS_WORDS: Final = "|".join(STATUSES)
_ACTION: Final = obj(
    {"action_id": INT, "status": enum(STATUSES), "result": nullable(TEXT), "detail": TEXT}
)
LOCAL_EVENTS_KEY: Final = web.AppKey("local_events", LocalEvents)
DIGITS_RE: Final = re.compile(r"[0-9]+")
ACTION_LOG_KEY: Final = web.AppKey("action_log", ActionLog)


def _count(request: web.Request, name: str, default: int, high: int) -> int:
    """A non-negative integer query parameter up to ``high``, or a 400."""
    raw = request.query.get(name)
    if raw is None:
        return default
    if not DIGITS_RE.fullmatch(raw) or len(raw) > len(str(high)) or int(raw) > high:
        raise fail(400, "malformed", f"must be an integer from 0 to {high}", name)
    return int(raw)


async def list_actions(request: web.Request) -> web.Response:
    limit = _count(request, "limit", 100, 1000)
    since = _count(request, "since", 0, 2**40)
    contract_id = request.query.get("contract_id")
    raw = request.query.get("status", "effective")
    statuses = STATUSES if raw == "all" else tuple(raw.split(","))
    if not statuses or any(s not in STATUSES for s in statuses):
        choices = ", ".join(STATUSES)
        return error(400, "malformed", f"must be all, or some of {choices}", "status")
    log = request.app[ACTION_LOG_KEY]
    rows = log.recent(limit=limit, since=since, contract_id=contract_id, statuses=statuses)
    return web.json_response({"actions": rows})


async def set_result(request: web.Request) -> web.Response:
    raw_id = request.match_info["action_id"]
    if not DIGITS_RE.fullmatch(raw_id):
        return error(400, "malformed", "an action id is a number", "action_id")
    body = await read_json(request, MAX_TX_BYTES, "a result")
    if not isinstance(body, dict):
        return error(400, "malformed", "the body is a JSON object", "body")
    result, detail = body.get("result"), body.get("detail", "")
    if result not in RESULTS:
        return error(400, "malformed", "must be one of " + ", ".join(RESULTS), "result")
    if not isinstance(detail, str) or len(detail) > 500:
        return error(400, "malformed", "must be text of at most 500 characters", "detail")
    action_id = int(raw_id) if len(raw_id) <= len(str(MAX_INT64)) else MAX_INT64 + 1
    if action_id > MAX_INT64 or not request.app[ACTION_LOG_KEY].set_result(
        action_id, str(result), detail
    ):
        return error(404, "not_found", f"no action {raw_id}")
    request.app[LOCAL_EVENTS_KEY].publish(
        {"type": "contract_action_result", "action_id": action_id, "result": result}
    )
    return web.json_response({"action_id": action_id, "result": result})


async def stream(request: web.Request) -> web.StreamResponse:
    events = request.app[LOCAL_EVENTS_KEY]
    after = _count(request, "after", events.last_seq, 2**62)
    socket = await open_socket(request)
    track_socket(request, socket)
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
        forget_socket(request, socket)
        events.unsubscribe(queue)
        with contextlib.suppress(Exception):
            await socket.close()
    return socket


def local_feature(events: LocalEvents, log: ActionLog) -> Feature:
    """The home's local event stream and action log."""

    def setup(app: web.Application) -> None:
        app[LOCAL_EVENTS_KEY] = events
        app[ACTION_LOG_KEY] = log

    return Feature(
        "local",
        (
            Route(
                "GET",
                "/local/events",
                stream,
                Access.STREAM,
                websocket(
                    "WebSocket stream of this home's own events (contract actions and results); "
                    "resume with ?after=<lseq>",
                    obj({"lseq": INT, "event": ref("Event")}),
                    params=[query_param("after", _COUNT)],
                ),
            ),
            Route(
                "GET",
                "/local/actions",
                list_actions,
                Access.TOKEN,
                operation(
                    "The home's contract actions, newest first, with their results: those "
                    "carried out, or with ?status=all (or a comma-separated choice of effective, "
                    "unchanged, suppressed, superseded) also those that were not, each with why",
                    params=[
                        query_param("limit", {"type": "integer", "minimum": 0, "maximum": 1000}),
                        query_param("since", {"type": "integer", "minimum": 0, "maximum": 2**40}),
                        query_param("contract_id", TEXT),
                        query_param(
                            "status",
                            {
                                "type": "string",
                                "pattern": f"^(all|({_STATUS_WORDS})(,({_STATUS_WORDS}))*)$",
                                "default": "effective",
                            },
                        ),
                    ],
                    answers={200: obj({"actions": array(_ACTION)})},
                    refusals=(400,),
                ),
            ),
            Route(
                "POST",
                "/local/actions/{action_id}/result",
                set_result,
                Access.TOKEN,
                operation(
                    "Record what became of an action: ok, failed, unmapped or skipped",
                    params=[path_param("action_id", "^[0-9]+$")],
                    answers={200: obj({"action_id": INT, "result": enum(RESULTS)})},
                    refusals=(400, 404),
                    body=obj(
                        {"result": enum(RESULTS), "detail": {"type": "string", "maxLength": 500}},
                        optional=("detail",),
                    ),
                ),
            ),
        ),
        setup,
    )
