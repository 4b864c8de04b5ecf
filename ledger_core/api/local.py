"""The home's own routes: signing with the node's local participant key, local events and
the contract-action log.

``POST /local/{tx_type}`` signs a transaction body with the local participant's
key and submits it (what Home Assistant and the web interface use, so they
never hold a key). The local event stream and the action log are
:mod:`ledger_core.local_api`'s, registered through :func:`local_feature`.
"""

from __future__ import annotations

import json
from typing import Any, Final

from aiohttp import web

from ledger_core.api.chain import submit_and_maybe_wait
from ledger_core.api.openapi import INT, WAIT, json_body, operation, path_param, query_param
from ledger_core.api.server import (
    LOCAL_KEY,
    SPEC_KEY,
    Access,
    Feature,
    Route,
    error,
    node_of,
    read_body,
    require_token,
)
from ledger_core.local_api import add_local_routes
from ledger_core.node.local import ActionLog, LocalEvents
from ledger_core.types.fields import FieldError
from ledger_core.types.tx import MAX_TX_BYTES, TxType, sign


async def local_sign(request: web.Request) -> web.Response:
    """Sign a transaction body with the local participant's key and submit it."""
    node = node_of(request)
    try:
        tx_type = TxType(request.match_info["tx_type"])
    except ValueError:
        return error(404, "not_found", "no such transaction type")
    raw = await read_body(request, MAX_TX_BYTES, "a transaction body")
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        return error(400, "malformed", "the body is not JSON", "body")
    if not isinstance(body, dict):
        return error(
            400, "malformed", "the body is a JSON object of the transaction's fields", "body"
        )
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


SIGN: Final = Feature(
    "local-sign",
    (
        Route(
            "POST",
            "/local/{tx_type}",
            local_sign,
            Access.TOKEN,
            operation(
                "Sign the body with the node's local participant key and submit it",
                params=[
                    {
                        "name": "tx_type",
                        "in": "path",
                        "required": True,
                        "schema": {"type": "string", "enum": [t.value for t in TxType]},
                    },
                    WAIT,
                ],
                requestBody=json_body(),
            ),
        ),
    ),
)

_LOCAL_PATHS: Final[dict[str, Any]] = {
    "/local/events": {
        "get": operation(
            "WebSocket stream of this home's own events (contract actions and results); "
            "resume with ?after=<lseq>",
            params=[query_param("after", INT)],
            security=[{"bearer": []}],
        )
    },
    "/local/actions": {
        "get": operation(
            "The home's contract actions, newest first, with their results",
            params=[
                query_param(name, schema)
                for name, schema in (
                    ("limit", INT),
                    ("since", INT),
                    ("contract_id", {"type": "string"}),
                )
            ],
            security=[{"bearer": []}],
        )
    },
    "/local/actions/{action_id}/result": {
        "post": operation(
            "Record what became of an action: ok, failed, unmapped or skipped",
            params=[path_param("action_id", "^[0-9]+$")],
            security=[{"bearer": []}],
        )
    },
}


def local_feature(events: LocalEvents, log: ActionLog) -> Feature:
    """The home's local event stream and action log."""

    def setup(app: web.Application) -> None:
        add_local_routes(app, events, log, require_token, error)
        app[SPEC_KEY]["paths"].update(_LOCAL_PATHS)

    return Feature("local", (), setup)
