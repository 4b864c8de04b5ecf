"""The chain: status, submitting transactions, transactions and blocks, the event stream.

``GET /status`` and the OpenAPI document are public: the status is the chain's
head (height, hashes, validators) that a client checks before anything else.
Transactions and blocks need the token: their bodies carry every transfer,
memo, deposit reference, interval report and contract text (see the access
table in docs/api.md). Submitting needs it, and so does the event stream (or a
WebSocket ticket bound to it).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import re
from collections.abc import Callable
from typing import Any, Final

from aiohttp import web

from ledger_core.api.openapi import (
    ADDRESS_SCHEMA,
    ANY_OBJECT,
    BOOL,
    HASH_SCHEMA,
    INT,
    TEXT,
    WAIT,
    array,
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
    SPEC_KEY,
    Access,
    Feature,
    Route,
    authorised,
    error,
    forget_socket,
    int_query,
    node_of,
    read_body,
    track_socket,
)
from ledger_core.api.wsutil import open_socket, relay
from ledger_core.node.host import Node, Submitted
from ledger_core.node.storage import StoredTx
from ledger_core.types import codec, merkle
from ledger_core.types.tx import MAX_TX_BYTES, TX_ID_RE
from transactiva_client.protocol import API_VERSION

MAX_WAIT_SECONDS: Final = 30.0
DIGITS_RE: Final = re.compile(r"[0-9]+")
MAX_BATCH_TXS: Final = 1000
MAX_BATCH_BYTES: Final = 4 * 1024 * 1024
PEERS_KEY: Final[web.AppKey[Callable[[], list[dict[str, Any]]]]] = web.AppKey("peers")

_STATUS_FOR_CODE: Final[dict[str, int]] = {
    "malformed": 400,
    "duplicate": 409,
    "already_committed": 409,
    "mempool_full": 503,
}


def stored_json(node: Node, stored: StoredTx) -> dict[str, Any]:
    """A committed transaction with its result and inclusion proof."""
    block = node.storage.block(stored.height)
    assert block is not None
    hashes = [merkle.leaf_hash(wire) for wire in block.txs]
    return {
        "id": stored.id,
        "status": "committed",
        "height": stored.height,
        "index": stored.index,
        "code": stored.code,
        "message": stored.message,
        "events": stored.events,
        "tx": json.loads(stored.wire),
        "proof": {
            "txs_root": block.header.txs_root,
            "size": len(block.txs),
            "path": [h.hex() for h in merkle.proof(hashes, stored.index)],
        },
    }


def _submitted_json(result: Submitted) -> web.Response:
    if result.accepted:
        return web.json_response({"id": result.tx_id, "status": "pending"}, status=202)
    status = _STATUS_FOR_CODE.get(result.code, 422)
    response = error(status, result.code, result.message, result.field)
    if status == 503:
        response.headers["Retry-After"] = "1"
    return response


def overloaded(node: Node, count: int) -> web.Response | None:
    """503 ``overloaded`` with a Retry-After when the node takes no more transactions from
    clients for now (:meth:`Node.busy_for`); None when it takes ``count`` more."""
    wait = node.busy_for(count)
    if wait is None:
        return None
    seconds = math.ceil(wait)
    response = error(
        503,
        "overloaded",
        f"the node has more transactions waiting than it commits in "
        f"{node.max_queue_seconds:g} s; try again in {seconds} s",
    )
    response.headers["Retry-After"] = str(seconds)
    return response


async def submit_and_maybe_wait(request: web.Request, wire: bytes) -> web.Response:
    """Submit ``wire``; with ``?wait=true`` answer once it is committed or dropped."""
    node = node_of(request)
    busy = overloaded(node, 1)
    if busy is not None:
        return busy
    result = node.submit(wire)
    if not result.accepted or request.query.get("wait") not in ("1", "true"):
        return _submitted_json(result)
    assert result.tx_id is not None
    try:
        outcome = await asyncio.wait_for(node.wait_for(result.tx_id), MAX_WAIT_SECONDS)
    except TimeoutError:
        return web.json_response({"id": result.tx_id, "status": "pending"}, status=202)
    if isinstance(outcome, StoredTx):
        return web.json_response(stored_json(node, outcome))
    return error(422, outcome.code, outcome.message)


async def status(request: web.Request) -> web.Response:
    node = node_of(request)
    header = node.storage.header(node.height) if node.height else None
    validators = node.app.validator_set()
    peers = request.app[PEERS_KEY]()
    voting = validators.get(node.key.address) is not None
    return web.json_response(
        {
            "api_version": API_VERSION,
            "chain_id": node.genesis.chain_id,
            "height": node.height,
            "app_hash": node.app.app_hash.hex(),
            "last_block_hash": node.last_hash,
            "last_block_time": header.time if header else node.genesis.genesis_time,
            "validator": node.key.address if voting else None,
            "participant": request.app[LOCAL_KEY].address,
            "mempool": len(node.mempool),
            "interval_seconds": node.genesis.params.interval_seconds,
            "utc_offset_minutes": node.genesis.params.utc_offset_minutes,
            "catching_up": node.catching_up,
            # Peers' network addresses are for the operator: listed with the token only.
            "peers": {"count": len(peers), "list": peers if authorised(request) else None},
            "validators": {
                "height": node.height + 1,
                "hash": validators.hash,
                "total_power": validators.total,
                "proposer": validators.proposer(0).address,
                "list": [
                    {"address": m.address, "public_key": m.public_key.hex(), "power": m.power}
                    for m in validators.members
                ],
            },
        }
    )


async def openapi(request: web.Request) -> web.Response:
    return web.json_response(request.app[SPEC_KEY])


async def submit_tx(request: web.Request) -> web.Response:
    wire = await read_body(request, MAX_TX_BYTES, "a transaction")
    return await submit_and_maybe_wait(request, wire)


async def submit_batch(request: web.Request) -> web.Response:
    """Several signed transactions, one wire transaction per line (NDJSON).

    The answer lists one result per line, in order; with ``?wait=true`` it comes
    once every accepted transaction is committed or dropped (up to 30 s).
    """
    data = await read_body(request, MAX_BATCH_BYTES, "a batch")
    lines = [line for line in data.split(b"\n") if line.strip()]
    if not lines:
        return error(400, "malformed", "no transactions; send one per line", "body")
    if len(lines) > MAX_BATCH_TXS:
        return error(
            413, "too_large", f"a batch holds at most {MAX_BATCH_TXS} transactions", "body"
        )
    node = node_of(request)
    busy = overloaded(node, len(lines))
    if busy is not None:
        return busy
    submitted = [node.submit(line) for line in lines]
    results: list[dict[str, Any]] = [
        {"id": s.tx_id, "code": "pending" if s.accepted else s.code, "message": s.message}
        | ({"field": s.field} if s.field else {})
        for s in submitted
    ]
    if request.query.get("wait") in ("1", "true"):
        waits = {
            i: node.wait_for(s.tx_id)
            for i, s in enumerate(submitted)
            if s.accepted and s.tx_id is not None
        }
        if waits:
            done, _ = await asyncio.wait(waits.values(), timeout=MAX_WAIT_SECONDS)
            for i, future in waits.items():
                if future not in done:
                    continue
                outcome = future.result()
                if isinstance(outcome, StoredTx):
                    results[i] = {
                        "id": outcome.id,
                        "code": outcome.code,
                        "message": outcome.message,
                        "height": outcome.height,
                    }
                else:
                    results[i] = {
                        "id": outcome.tx_id,
                        "code": outcome.code,
                        "message": outcome.message,
                    }
    accepted = sum(1 for s in submitted if s.accepted)
    return web.json_response(
        {"accepted": accepted, "results": results}, status=200 if accepted else 422
    )


async def get_tx(request: web.Request) -> web.Response:
    node = node_of(request)
    tx_id = request.match_info["tx_id"]
    if not TX_ID_RE.fullmatch(tx_id):
        return error(400, "malformed", "not a transaction id (64 hex digits)", "tx_id")
    stored = node.storage.tx(tx_id)
    if stored is not None:
        return web.json_response(stored_json(node, stored))
    if node.is_pending(tx_id):
        return web.json_response({"id": tx_id, "status": "pending"})
    return error(404, "not_found", f"no transaction {tx_id}")


async def get_block(request: web.Request) -> web.Response:
    node = node_of(request)
    raw = request.match_info["height"]
    if raw == "latest":
        height = node.height
    elif DIGITS_RE.fullmatch(raw):
        # Past the chain's height (or past any SQLite integer, however long): not found.
        height = int(raw) if len(raw) <= len(str(MAX_INT64)) else MAX_INT64 + 1
    else:
        return error(400, "malformed", "a height (digits) or 'latest'", "height")
    block = node.storage.block(height) if 0 < height <= node.height else None
    if block is None:
        return error(404, "not_found", f"no block at height {raw}")
    commit = node.storage.commit(height)
    return web.json_response(
        {
            "hash": block.header.hash,
            "header": block.header.to_json(),
            "signature": block.signature.hex(),
            "txs": [json.loads(wire) for wire in block.txs],
            "last_commit": None if block.last_commit is None else block.last_commit.to_json(),
            "evidence": [e.to_json() for e in block.evidence],
            "commit": None if commit is None else commit.to_json(),
        }
    )


async def events(request: web.Request) -> web.StreamResponse:
    """WebSocket: stored events after ``after`` (or from ``from_height``), then live ones."""
    node = node_of(request)
    after = int_query(request, "after", -1, -1, 2**62)
    if after < 0:
        from_height = int_query(request, "from_height", node.height + 1, 1, 2**62)
        after = node.storage.first_event_at(from_height)
    socket = await open_socket(request)
    track_socket(request, socket)
    queue = node.subscribe()
    try:
        last = after
        while True:
            backlog = list(node.storage.events(last, limit=500))
            for seq, height, event in backlog:
                await socket.send_json({"seq": seq, "height": height, "event": event})
                last = seq
            if len(backlog) < 500:
                break

        async def send(item: tuple[int, int, codec.Value]) -> None:
            nonlocal last
            seq, height, event = item
            if seq > last:
                await socket.send_json({"seq": seq, "height": height, "event": event})
                last = seq

        await relay(socket, queue, send)
    finally:
        forget_socket(request, socket)
        node.unsubscribe(queue)
        with contextlib.suppress(Exception):
            await socket.close()
    return socket


_STATUS: Final = obj(
    {
        "api_version": {"type": "string", "pattern": "^[0-9]+\\.[0-9]+$"},
        "chain_id": TEXT,
        "height": INT,
        "app_hash": HASH_SCHEMA,
        "last_block_hash": HASH_SCHEMA,
        "last_block_time": INT,
        "validator": nullable(ADDRESS_SCHEMA),
        "participant": ADDRESS_SCHEMA,
        "mempool": INT,
        "interval_seconds": INT,
        "utc_offset_minutes": INT,
        "catching_up": BOOL,
        "peers": obj({"count": INT, "list": nullable(array(ANY_OBJECT))}),
        "validators": obj(
            {
                "height": INT,
                "hash": HASH_SCHEMA,
                "total_power": INT,
                "proposer": ADDRESS_SCHEMA,
                "list": array(
                    obj({"address": ADDRESS_SCHEMA, "public_key": HASH_SCHEMA, "power": INT})
                ),
            }
        ),
    }
)
_SPEC_DOC: Final = obj({"openapi": TEXT, "info": ANY_OBJECT, "paths": ANY_OBJECT})
# What a submission answers: at once 202 pending; with ?wait=true 200 once committed (or
# 202 still pending after 30 s); refusals with the code that says why.
SUBMITTED: Final = {200: ref("TxCommitted"), 202: ref("TxPending")}
SUBMIT_REFUSALS: Final = (400, 409, 422, 503)
_BATCH: Final = obj(
    {
        "accepted": INT,
        "results": array(
            obj(
                {
                    "id": nullable(HASH_SCHEMA),
                    "code": TEXT,
                    "message": TEXT,
                    "height": INT,
                    "field": TEXT,
                },
                optional=("height", "field"),
            )
        ),
    }
)
_BLOCK: Final = obj(
    {
        "hash": HASH_SCHEMA,
        "header": ref("Header"),
        "signature": {"type": "string", "pattern": "^[0-9a-f]{128}$"},
        "txs": array(ref("SignedTx")),
        "last_commit": nullable(ref("Commit")),
        "evidence": array(ANY_OBJECT),
        "commit": nullable(ref("Commit")),
    }
)

ROUTES: Final = (
    Route(
        "GET",
        "/status",
        status,
        Access.PUBLIC,
        operation(
            "The API version (api_version, MAJOR.MINOR), chain id, height, app hash, "
            "addresses, mempool size, catching up, peers (listed with the token), the "
            "validator set",
            answers={200: _STATUS},
        ),
    ),
    Route(
        "GET",
        "/openapi.json",
        openapi,
        Access.PUBLIC,
        operation("This document", answers={200: _SPEC_DOC}),
    ),
    Route(
        "POST",
        "/txs",
        submit_tx,
        Access.TOKEN,
        operation(
            "Submit a signed transaction (its canonical JSON wire bytes: keys sorted, no "
            "spaces; anything else is refused as malformed)",
            params=[WAIT],
            answers=SUBMITTED,
            refusals=SUBMIT_REFUSALS,
            body=ref("SignedTx"),
        ),
    ),
    Route(
        "POST",
        "/txs/batch",
        submit_batch,
        Access.TOKEN,
        operation(
            "Submit up to 1,000 signed transactions, one wire transaction per line; 200 when "
            "any was accepted, 422 with every line's result when none was, 503 overloaded "
            "(with Retry-After) when the node takes none for now",
            params=[WAIT],
            answers={200: _BATCH, 422: _BATCH},
            refusals=(400, 413, 503),
            requestBody={
                "required": True,
                "description": "NDJSON: one signed transaction's wire bytes per line",
                "content": {
                    "application/x-ndjson": {
                        "schema": {
                            "type": "array",
                            "items": ref("SignedTx"),
                            "minItems": 1,
                            "maxItems": MAX_BATCH_TXS,
                        }
                    }
                },
            },
        ),
    ),
    Route(
        "GET",
        "/txs/{tx_id:[0-9a-f]+}",  # hex only: GET /txs/batch is a 405, not an id
        get_tx,
        Access.TOKEN,
        operation(
            "A transaction: pending, or committed with its result and inclusion proof",
            params=[path_param("tx_id", "^[0-9a-f]{64}$")],
            answers={200: {"oneOf": [ref("TxCommitted"), ref("TxPending")]}},
            refusals=(400, 404),
        ),
    ),
    Route(
        "GET",
        "/blocks/{height}",
        get_block,
        Access.TOKEN,
        operation(
            "A block (or 'latest'): header, hash, proposer signature, transactions, "
            "the last commit and evidence it carries, and the commit that decided it",
            params=[path_param("height", "^([0-9]+|latest)$")],
            answers={200: _BLOCK},
            refusals=(400, 404),
        ),
    ),
    Route(
        "GET",
        "/events",
        events,
        Access.STREAM,
        websocket(
            "WebSocket stream of events; resume with ?after=<seq> or ?from_height=<h>",
            obj({"seq": INT, "height": INT, "event": ref("Event")}),
            params=[
                query_param("after", {"type": "integer", "minimum": -1, "maximum": 2**62}),
                query_param("from_height", {"type": "integer", "minimum": 1, "maximum": 2**62}),
            ],
        ),
    ),
)


def chain_feature(peers: Callable[[], list[dict[str, Any]]] | None = None) -> Feature:
    """The chain's routes; ``peers`` lists the connected peers for the status."""

    def setup(app: web.Application) -> None:
        app[PEERS_KEY] = peers if peers is not None else list

    return Feature("chain", ROUTES, setup)
