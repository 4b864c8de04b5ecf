"""The node's HTTP/WebSocket API (aiohttp), under ``/api/v1``.

Every request that writes, and every read of private data (balances, wallet
requests, contracts, reports, raw state), needs ``Authorization: Bearer
<token>`` with the token in the node's home. Errors are JSON:
``{"error": {"code": "...", "message": "...", "field": "..."}}`` with a 4xx
status; no input can crash the node. ``docs/api.md`` describes every endpoint;
``/api/v1/openapi.json`` serves the same as OpenAPI 3.1.
"""

from __future__ import annotations

import asyncio
import contextlib
import copy
import hmac
import json
import logging
import secrets
import time
from collections.abc import Awaitable, Callable
from typing import Any, Final

from aiohttp import WSCloseCode, web

from contracts import check, content_hash, format_contract, parse, receipt, short_id
from ledger_core import codec, merkle
from ledger_core.crypto import ADDRESS_RE, SigningKey
from ledger_core.local import ActionLog, LocalEvents
from ledger_core.local_api import add_local_routes
from ledger_core.market.api import add_market_routes
from ledger_core.node import Node, Submitted
from ledger_core.openapi import SPEC
from ledger_core.storage import StoredTx
from ledger_core.tx import MAX_TX_BYTES, TX_ID_RE, TxError, TxType, sign
from ledger_core.wsutil import relay
from transactiva_client.protocol import API_VERSION

LOG: Final = logging.getLogger(__name__)
PREFIX: Final = "/api/v1"
MAX_WAIT_SECONDS: Final = 30.0
NODE_KEY: Final = web.AppKey("node", Node)
TOKEN_KEY: Final = web.AppKey("token", str)
LOCAL_KEY: Final = web.AppKey("local", SigningKey)
SOCKETS_KEY: Final[web.AppKey[set[web.WebSocketResponse]]] = web.AppKey("sockets")
SPEC_KEY: Final[web.AppKey[dict[str, Any]]] = web.AppKey("spec")
TRUSTED_PROXY_KEY: Final = web.AppKey("trusted_proxy", str)
TICKETS_KEY: Final[web.AppKey[dict[str, float]]] = web.AppKey("tickets")
TICKET_SECONDS: Final = 60.0
MAX_TICKETS: Final = 1000
PEERS_KEY: Final[web.AppKey[Callable[[], list[dict[str, Any]]]]] = web.AppKey("peers")

type Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

_STATUS_FOR_CODE: Final[dict[str, int]] = {
    "malformed": 400,
    "duplicate": 409,
    "already_committed": 409,
    "mempool_full": 503,
}


def error(status: int, code: str, message: str, field: str | None = None) -> web.Response:
    """A JSON error response."""
    body: dict[str, Any] = {"code": code, "message": message}
    if field is not None:
        body["field"] = field
    return web.json_response({"error": body}, status=status)


class _Fail(Exception):  # noqa: N818 - control flow inside handlers
    def __init__(self, response: web.Response) -> None:
        self.response = response


@web.middleware
async def _errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except _Fail as fail:
        return fail.response
    except web.HTTPException as exc:
        if exc.status >= 400:
            return error(exc.status, exc.reason.lower().replace(" ", "_"), exc.reason)
        raise
    except Exception:
        LOG.exception("unexpected error in %s %s", request.method, request.path)
        return error(500, "internal_error", "the node could not answer; see its log")


def _authorised(request: web.Request) -> bool:
    if from_ingress(request):
        return True
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    expected = request.app[TOKEN_KEY]
    if scheme.lower() == "bearer" and hmac.compare_digest(token.strip(), expected):
        return True
    return _ticket_accepted(request)


def from_ingress(request: web.Request) -> bool:
    """True for a request Home Assistant's ingress proxy forwarded, when the node trusts one.

    The proxy (the Supervisor) is the only host with its address on the app
    network and marks what it forwards with ``X-Ingress-Path``; Home Assistant
    has authenticated the user before forwarding.
    """
    proxy = request.app.get(TRUSTED_PROXY_KEY)
    return proxy is not None and request.remote == proxy and "X-Ingress-Path" in request.headers


def issue_ticket(app: web.Application) -> str:
    """A single-use ticket that opens one WebSocket within a minute (``?ticket=``).

    Browsers cannot set ``Authorization`` on a WebSocket; a ticket keeps the
    token itself out of URLs.
    """
    tickets = app[TICKETS_KEY]
    now = time.monotonic()
    for stale in [t for t, expiry in tickets.items() if expiry < now]:
        del tickets[stale]
    while len(tickets) >= MAX_TICKETS:
        del tickets[next(iter(tickets))]
    ticket = secrets.token_urlsafe(24)
    tickets[ticket] = now + TICKET_SECONDS
    return ticket


def _ticket_accepted(request: web.Request) -> bool:
    """A WebSocket upgrade with a live ticket (which is used up)."""
    ticket = request.query.get("ticket")
    if ticket is None or request.headers.get("Upgrade", "").lower() != "websocket":
        return False
    expiry = request.app[TICKETS_KEY].pop(ticket, None)
    return expiry is not None and expiry >= time.monotonic()


def require_token(request: web.Request) -> None:
    """Raise (answered as a 401 JSON error) unless the request carries the API token."""
    _require_token(request)


def _require_token(request: web.Request) -> None:
    if not _authorised(request):
        raise _Fail(
            error(401, "unauthorized", "send Authorization: Bearer <token from the node's home>")
        )


def _address(request: web.Request) -> str:
    address = request.match_info["address"]
    if not ADDRESS_RE.fullmatch(address):
        raise _Fail(error(400, "malformed", "not an address (tv + 40 hex digits)", "address"))
    return address


def _int_query(request: web.Request, name: str, default: int, low: int, high: int) -> int:
    raw = request.query.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise _Fail(error(400, "malformed", "must be an integer", name)) from None
    if not low <= value <= high:
        raise _Fail(error(400, "malformed", f"must be between {low} and {high}", name))
    return value


def _stored_json(node: Node, stored: StoredTx) -> dict[str, Any]:
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


async def _read_body(request: web.Request, limit: int, what: str) -> bytes:
    """The whole request body, or a 413 as soon as it grows past ``limit`` bytes."""
    if request.content_length is not None and request.content_length > limit:
        raise _Fail(error(413, "too_large", f"{what} is at most {limit} bytes", "body"))
    chunks: list[bytes] = []
    size = 0
    while True:
        chunk = await request.content.read(65536)
        if not chunk:
            return b"".join(chunks)
        size += len(chunk)
        if size > limit:
            raise _Fail(error(413, "too_large", f"{what} is at most {limit} bytes", "body"))
        chunks.append(chunk)


def _submitted_json(result: Submitted) -> web.Response:
    if result.accepted:
        return web.json_response({"id": result.tx_id, "status": "pending"}, status=202)
    status = _STATUS_FOR_CODE.get(result.code, 422)
    return error(status, result.code, result.message, result.field)


async def _submit_and_maybe_wait(request: web.Request, wire: bytes) -> web.Response:
    node = request.app[NODE_KEY]
    result = node.submit(wire)
    if not result.accepted or request.query.get("wait") not in ("1", "true"):
        return _submitted_json(result)
    assert result.tx_id is not None
    try:
        outcome = await asyncio.wait_for(node.wait_for(result.tx_id), MAX_WAIT_SECONDS)
    except TimeoutError:
        return web.json_response({"id": result.tx_id, "status": "pending"}, status=202)
    if isinstance(outcome, StoredTx):
        return web.json_response(_stored_json(node, outcome))
    return error(422, outcome.code, outcome.message)


# -- handlers -------------------------------------------------------------------------


async def status(request: web.Request) -> web.Response:
    node = request.app[NODE_KEY]
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
            "peers": {"count": len(peers), "list": peers if _authorised(request) else None},
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


async def submit_tx(request: web.Request) -> web.Response:
    _require_token(request)
    wire = await _read_body(request, MAX_TX_BYTES, "a transaction")
    return await _submit_and_maybe_wait(request, wire)


MAX_BATCH_TXS: Final = 1000
MAX_BATCH_BYTES: Final = 4 * 1024 * 1024


async def submit_batch(request: web.Request) -> web.Response:
    """Several signed transactions, one wire transaction per line (NDJSON).

    The answer lists one result per line, in order; with ``?wait=true`` it comes
    once every accepted transaction is committed or dropped (up to 30 s).
    """
    _require_token(request)
    data = await _read_body(request, MAX_BATCH_BYTES, "a batch")
    lines = [line for line in data.split(b"\n") if line.strip()]
    if not lines:
        return error(400, "malformed", "no transactions; send one per line", "body")
    if len(lines) > MAX_BATCH_TXS:
        return error(
            413, "too_large", f"a batch holds at most {MAX_BATCH_TXS} transactions", "body"
        )
    node = request.app[NODE_KEY]
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
    node = request.app[NODE_KEY]
    tx_id = request.match_info["tx_id"]
    if not TX_ID_RE.fullmatch(tx_id):
        return error(400, "malformed", "not a transaction id (64 hex digits)", "tx_id")
    stored = node.storage.tx(tx_id)
    if stored is not None:
        return web.json_response(_stored_json(node, stored))
    if node.is_pending(tx_id):
        return web.json_response({"id": tx_id, "status": "pending"})
    return error(404, "not_found", f"no transaction {tx_id}")


async def get_block(request: web.Request) -> web.Response:
    node = request.app[NODE_KEY]
    raw = request.match_info["height"]
    if raw == "latest":
        height = node.height
    else:
        try:
            height = int(raw)
        except ValueError:
            return error(400, "malformed", "a height or 'latest'", "height")
    block = node.storage.block(height) if height > 0 else None
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


async def get_participant(request: web.Request) -> web.Response:
    node = request.app[NODE_KEY]
    address = _address(request)
    account = node.app.state.get(f"acct/{address}")
    if account is None:
        return error(404, "not_found", f"{address} is not registered")
    return web.json_response({"address": address, **account})  # type: ignore[dict-item]


async def get_balance(request: web.Request) -> web.Response:
    _require_token(request)
    node = request.app[NODE_KEY]
    address = _address(request)
    if node.app.state.get(f"acct/{address}") is None:
        return error(404, "not_found", f"{address} is not registered")
    balance, proof = node.app.query(f"bal/{address}")
    held = node.app.state.get(f"held/{address}", 0)
    return web.json_response(
        {
            "address": address,
            "balance": balance or 0,
            "held": held,
            "debt": node.app.state.get(f"debt/{address}", 0),
            "height": node.height,
            "app_hash": node.app.app_hash.hex(),
            "proof": proof.to_json() if proof else None,
        }
    )


MAX_BALANCES: Final = 200


async def get_balances(request: web.Request) -> web.Response:
    """Several accounts' money read at one height: ``?address=tv...&address=tv...``."""
    _require_token(request)
    node = request.app[NODE_KEY]
    addresses = request.query.getall("address", [])
    if not addresses:
        return error(400, "malformed", "give one or more ?address=", "address")
    if len(addresses) > MAX_BALANCES:
        return error(400, "malformed", f"at most {MAX_BALANCES} addresses", "address")
    rows = []
    for i, address in enumerate(addresses):
        if not ADDRESS_RE.fullmatch(address):
            return error(400, "malformed", "an address is tv and 40 hex digits", f"address[{i}]")
        if node.app.state.get(f"acct/{address}") is None:
            return error(404, "not_found", f"{address} is not registered", f"address[{i}]")
        state = node.app.state
        rows.append(
            {
                "address": address,
                "balance": state.get(f"bal/{address}", 0),
                "held": state.get(f"held/{address}", 0),
                "debt": state.get(f"debt/{address}", 0),
            }
        )
    return web.json_response(
        {"height": node.height, "app_hash": node.app.app_hash.hex(), "balances": rows}
    )


async def get_contract(request: web.Request) -> web.Response:
    _require_token(request)
    node = request.app[NODE_KEY]
    contract_id = request.match_info["contract_id"]
    if not TX_ID_RE.fullmatch(contract_id):
        return error(400, "malformed", "a contract id is 64 hex digits", "contract_id")
    record, proof = node.app.query(f"contract/{contract_id}")
    if not isinstance(record, dict):
        return error(404, "not_found", f"no contract {contract_id}")
    body: dict[str, Any] = {
        "id": contract_id,
        **record,
        "proof": proof.to_json() if proof else None,
    }
    contract = parse(str(record["source"]))
    body["short_id"] = short_id(contract)
    if "activated_time" in record:
        body["receipt"] = receipt(contract, node.app.local_datetime(int(record["activated_time"])))  # type: ignore[arg-type]
    return web.json_response(body)


async def check_contract(request: web.Request) -> web.Response:
    """Check a contract's text without submitting it (nothing is signed or stored).

    The body is ``{"source": "..."}``. The answer is 200 either way: ``valid``
    (also as ``ok``), every diagnostic with its line and column, and for a valid contract its id,
    short id, name and canonical text (what ``contract_propose`` needs).
    """
    _require_token(request)
    raw = await _read_body(request, MAX_TX_BYTES * 2, "a contract check")
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        return error(400, "malformed", "the body is not JSON", "body")
    if not isinstance(body, dict):
        return error(400, "malformed", 'send {"source": "<contract text>"}', "body")
    source = body.get("source")
    if not isinstance(source, str):
        return error(400, "malformed", "must be the contract's text", "source")
    result = check(source)
    answer: dict[str, Any] = {
        "valid": result.ok,
        "ok": result.ok,
        "diagnostics": [
            {
                "severity": str(d.severity),
                "line": d.line,
                "column": d.column,
                "message": d.message,
                "expected": d.expected,
                "hint": d.hint,
            }
            for d in result.diagnostics
        ],
    }
    if result.contract is not None:
        answer |= {
            "id": content_hash(result.contract),
            "short_id": short_id(result.contract),
            "name": result.contract.name,
            "parties": [p.name for p in result.contract.parties],
            "canonical": format_contract(result.contract),
        }
    return web.json_response(answer)


async def get_state(request: web.Request) -> web.Response:
    _require_token(request)
    node = request.app[NODE_KEY]
    key = request.match_info["key"]
    value, proof = node.app.query(key)
    if value is None:
        return error(404, "not_found", f"no state entry {key!r}")
    return web.json_response(
        {
            "key": key,
            "value": value,
            "height": node.height,
            "app_hash": node.app.app_hash.hex(),
            "proof": proof.to_json() if proof else None,
        }
    )


def _time_range(request: web.Request) -> tuple[int, int, int]:
    start = _int_query(request, "from", 0, 0, 2**40)
    end = _int_query(request, "to", 2**40, 0, 2**40)
    limit = _int_query(request, "limit", 1000, 1, 10_000)
    return start, end, limit


def _interval_rows(node: Node, request: web.Request, prefix: str) -> list[dict[str, codec.Value]]:
    """State entries ``<prefix><interval start>`` in the query's range, start included."""
    start, end, limit = _time_range(request)
    rows = node.storage.range(prefix, f"{start:012d}", f"{end:012d}", limit)
    return [
        {"interval_start": int(key.rsplit("/", 1)[1]), **value}  # type: ignore[dict-item]
        for key, value in rows
    ]


async def get_reports(request: web.Request) -> web.Response:
    """A meter's interval reports with ``from <= interval_start < to``."""
    _require_token(request)
    node = request.app[NODE_KEY]
    meter = _address(request)
    return web.json_response(
        {"meter": meter, "reports": _interval_rows(node, request, f"report/{meter}/")}
    )


async def get_prices(request: web.Request) -> web.Response:
    """Price signals with ``from <= interval_start < to`` (public: prices are announced)."""
    node = request.app[NODE_KEY]
    return web.json_response({"prices": _interval_rows(node, request, "price/")})


async def get_dr_event(request: web.Request) -> web.Response:
    """A demand-response event in its latest modification (public)."""
    node = request.app[NODE_KEY]
    event_id = request.match_info["event_id"]
    record = node.app.state.get(f"dr/{event_id}")
    if record is None:
        return error(404, "not_found", f"no demand-response event {event_id!r}")
    return web.json_response({"event_id": event_id, **record})  # type: ignore[dict-item]


async def local_sign(request: web.Request) -> web.Response:
    """Sign a transaction body with the local participant's key and submit it."""
    _require_token(request)
    node = request.app[NODE_KEY]
    try:
        tx_type = TxType(request.match_info["tx_type"])
    except ValueError:
        return error(404, "not_found", "no such transaction type")
    raw = await _read_body(request, MAX_TX_BYTES, "a transaction body")
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        return error(400, "malformed", "the body is not JSON", "body")
    if not isinstance(body, dict):
        return error(
            400, "malformed", "the body is a JSON object of the transaction's fields", "body"
        )
    key = request.app[LOCAL_KEY]
    # No await between choosing the nonce and entering the mempool: concurrent
    # requests get consecutive nonces without a lock.
    last = node.app.state.get(f"nonce/{key.address}", 0)
    pending = [t.nonce for t in node.mempool.values() if t.signer == key.address]
    nonce = max([last if isinstance(last, int) else 0, *pending]) + 1
    try:
        tx = sign(key, node.genesis.chain_id, tx_type, nonce, body)
    except TxError as err:
        return error(400, "malformed", err.message, err.field.removeprefix("tx."))
    except TypeError as err:
        return error(400, "malformed", str(err), "body")
    return await _submit_and_maybe_wait(request, tx.wire())


async def events(request: web.Request) -> web.StreamResponse:
    """WebSocket: stored events after ``after`` (or from ``from_height``), then live ones."""
    _require_token(request)
    node = request.app[NODE_KEY]
    after = _int_query(request, "after", -1, -1, 2**62)
    if after < 0:
        from_height = _int_query(request, "from_height", node.height + 1, 1, 2**62)
        after = node.storage.first_event_at(from_height)
    socket = web.WebSocketResponse(heartbeat=30)
    await socket.prepare(request)
    request.app[SOCKETS_KEY].add(socket)
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
        request.app[SOCKETS_KEY].discard(socket)
        node.unsubscribe(queue)
        with contextlib.suppress(Exception):
            await socket.close()
    return socket


async def openapi(request: web.Request) -> web.Response:
    return web.json_response(request.app[SPEC_KEY])


def extend_spec(app: web.Application, paths: dict[str, Any]) -> None:
    """Describe routes another module added to ``app`` in its ``/openapi.json``."""
    app[SPEC_KEY]["paths"] = {**app[SPEC_KEY]["paths"], **paths}


async def _close_sockets(app: web.Application) -> None:
    """On shutdown, tell event-stream clients the node is going away (they will resume)."""
    sockets: set[web.WebSocketResponse] = app[SOCKETS_KEY]
    for socket in list(sockets):
        await socket.close(code=WSCloseCode.GOING_AWAY, message=b"node shutting down")


def make_app(
    node: Node,
    token: str,
    local_key: SigningKey,
    *,
    local_events: LocalEvents | None = None,
    action_log: ActionLog | None = None,
    trusted_proxy: str | None = None,
    peers: Callable[[], list[dict[str, Any]]] | None = None,
) -> web.Application:
    """The aiohttp application serving ``node`` (and, given them, the home's local
    events and action log, and the connected peers for the status).

    ``trusted_proxy`` is the address of Home Assistant's ingress proxy, whose
    forwarded requests need no token (see :func:`from_ingress`).
    """
    app = web.Application(middlewares=[_errors], client_max_size=MAX_TX_BYTES * 2)
    app[NODE_KEY] = node
    app[TOKEN_KEY] = token
    app[LOCAL_KEY] = local_key
    app[SOCKETS_KEY] = set()
    app[SPEC_KEY] = copy.deepcopy(SPEC)
    app[TICKETS_KEY] = {}
    if trusted_proxy is not None:
        app[TRUSTED_PROXY_KEY] = trusted_proxy
    app[PEERS_KEY] = peers if peers is not None else list
    # aiohttp 3.11's annotation of Signal.append does not accept a plain handler.
    app.on_shutdown.append(_close_sockets)  # type: ignore[arg-type]
    app.add_routes(
        [
            web.get(f"{PREFIX}/status", status),
            web.get(f"{PREFIX}/openapi.json", openapi),
            web.post(f"{PREFIX}/txs", submit_tx),
            web.post(f"{PREFIX}/txs/batch", submit_batch),
            web.get(f"{PREFIX}/txs/{{tx_id}}", get_tx),
            web.get(f"{PREFIX}/blocks/{{height}}", get_block),
            web.get(f"{PREFIX}/participants/{{address}}", get_participant),
            web.get(f"{PREFIX}/balances", get_balances),
            web.get(f"{PREFIX}/balances/{{address}}", get_balance),
            web.post(f"{PREFIX}/contracts/check", check_contract),
            web.get(f"{PREFIX}/contracts/{{contract_id}}", get_contract),
            web.get(f"{PREFIX}/state/{{key:.+}}", get_state),
            web.get(f"{PREFIX}/reports/{{address}}", get_reports),
            web.get(f"{PREFIX}/signals/prices", get_prices),
            web.get(f"{PREFIX}/signals/dr/{{event_id}}", get_dr_event),
            web.post(f"{PREFIX}/local/{{tx_type}}", local_sign),
            web.get(f"{PREFIX}/events", events),
        ]
    )
    add_market_routes(app)
    if local_events is not None and action_log is not None:
        add_local_routes(app, local_events, action_log, _require_token, error)
    return app
