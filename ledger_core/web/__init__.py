"""The node's web interface: pages at ``/`` and the few API routes they need.

The pages are hand-written ES modules and CSS under ``static/`` -- no build
step, nothing fetched from a CDN -- served with a strict Content-Security-Policy
(``'self'`` only). They talk to the same ``/api/v1`` the integration and the
command line use, with relative URLs, so they work at ``/`` of a standalone
node and under Home Assistant's ingress path alike.

Two ways in:

- **Standalone**: a login page asks for the node's API token, keeps it in the
  tab's ``sessionStorage`` and sends it as ``Authorization: Bearer``. Browsers
  cannot put headers on a WebSocket, so the pages first get a single-use ticket
  (``POST /api/v1/web/ticket``) and open ``...?ticket=``.
- **Home Assistant ingress** (``ingress_proxy`` set): the pages answer only
  requests from the proxy's address (172.30.32.2 on the Supervisor's network),
  and API requests it forwards need no token: Home Assistant authenticated the
  user (see :func:`ledger_core.api.from_ingress`).

Routes added here, all under ``/api/v1`` and all needing the token (or the
ingress proxy); the editor's live validation uses the API's own
``POST /contracts/check``:

- ``GET /web/summary``: the home at a glance (roles, balance, today's energy
  from the home's own meter -- the chain holds only commitments to its readings,
  docs/privacy.md --, demand-response events in force or coming, validators,
  peers, sync state);
- ``GET /web/contracts``: the local participant's contracts, newest first, with
  state and receipt;
- ``GET /web/participants``: registered participants and meters (operator page);
- ``POST /web/ticket`` ``{"path": "/api/v1/events"}``: a ticket for one WebSocket of
  that stream route (single-use, short-lived, good for nothing else).
- ``POST /web/qr``: ``{"text"}`` as a QR code's SVG (an invitation code to scan).

Invitations, admission and countersigning use the API's own routes
(``/operator/invitations``, ``/operator/participants``, ``/operator/refusals``,
``/local/contracts/awaiting``, ``/local/contracts/{id}/sign``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from aiohttp import web

from contracts import check, receipt, short_id
from ledger_core.api.openapi import (
    ADDRESS_SCHEMA,
    ANY_OBJECT,
    BOOL,
    HASH_SCHEMA,
    INT,
    TEXT,
    array,
    nullable,
    obj,
    operation,
)
from ledger_core.api.server import (
    LOCAL_KEY,
    NODE_KEY,
    TICKET_SECONDS,
    Access,
    Feature,
    Route,
    error,
    issue_ticket,
    read_json,
    stream_paths,
)
from ledger_core.concentrator.dr import DrEvent
from ledger_core.meter.service import MeterService
from ledger_core.node.host import Node
from ledger_core.p2p.network import Network
from ledger_core.state.keys import StateView
from ledger_core.types.crypto import address_of
from ledger_core.web.qr import QrError, svg

STATIC: Final = Path(__file__).parent / "static"
MAX_CONTRACTS: Final = 200
MAX_PARTICIPANTS: Final = 1000
MAX_TICKET_BODY: Final = 1024
MAX_QR_BODY: Final = 4096
DAY: Final = 86400
CONTENT_TYPES: Final = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
}
SECURITY_HEADERS: Final = {
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; frame-ancestors 'self'; base-uri 'self'; form-action 'self'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
}


@dataclass(frozen=True, slots=True)
class WebContext:
    """What the pages need to know about the node beyond its ledger."""

    ingress_proxy: str | None = None
    meter_address: str | None = None
    meter: MeterService | None = None
    concentrator: bool = False
    execute_contracts: bool = False
    network: Network | None = None


WEB_KEY: Final = web.AppKey("web", WebContext)


def web_feature(context: WebContext | None = None) -> Feature:
    """The pages at ``/`` and the routes above, for a node application."""
    files = {
        path.relative_to(STATIC).as_posix(): path
        for path in STATIC.rglob("*")
        if path.is_file() and path.suffix in CONTENT_TYPES
    }

    async def page(request: web.Request) -> web.StreamResponse:
        refused = _refused(request)
        return refused if refused is not None else _file(files["index.html"])

    async def static(request: web.Request) -> web.StreamResponse:
        refused = _refused(request)
        if refused is not None:
            return refused
        path = files.get(request.match_info["name"])
        if path is None:
            return error(404, "not_found", "no such file")
        return _file(path)

    def setup(app: web.Application) -> None:
        app[WEB_KEY] = context if context is not None else WebContext()

    return Feature(
        "web",
        (
            Route("GET", "/", page, Access.PUBLIC, absolute=True),
            Route("GET", "/static/{name:.+}", static, Access.PUBLIC, absolute=True),
            *(
                Route(method.upper(), path, handler, Access.TOKEN, WEB_PATHS[path][method])
                for path, method, handler in (
                    ("/web/summary", "get", summary),
                    ("/web/contracts", "get", contracts),
                    ("/web/participants", "get", participants),
                    ("/web/ticket", "post", ticket),
                    ("/web/qr", "post", qr_code),
                )
            ),
        ),
        setup,
    )


def _refused(request: web.Request) -> web.Response | None:
    """Behind ingress, the pages answer the proxy only."""
    proxy = request.app[WEB_KEY].ingress_proxy
    if proxy is not None and request.remote != proxy:
        return error(
            403,
            "forbidden",
            "this node's web interface opens from Home Assistant (the app's panel)",
        )
    return None


def _file(path: Path) -> web.Response:
    return web.Response(
        body=path.read_bytes(),
        headers={"Content-Type": CONTENT_TYPES[path.suffix], **SECURITY_HEADERS},
    )


def _today(meter: MeterService, start: int) -> dict[str, int]:
    """Today's energy from the interval reports the home's meter closed (its own readings)."""
    rows = [r for r in meter.intervals.reports(start, 200) if r.interval_start < start + DAY]
    return {
        "from": start,
        "import_wh": sum(r.import_wh for r in rows),
        "export_wh": sum(r.export_wh for r in rows),
        "reports": len(rows),
    }


def dr_events(node: Node, now: float, participant: str | None) -> list[dict[str, Any]]:
    """Demand-response events not over yet (for ``participant`` when given), soonest first."""
    found: list[dict[str, Any]] = []
    for _event_id, record in StateView(node.committed).dr_events(500):
        event = DrEvent.from_record(record)
        if event.cancelled or now >= event.end + event.recovery:
            continue
        if participant is not None and not event.applies_to(participant):
            continue
        found.append(event.to_json(now))
    return sorted(found, key=lambda e: (e["start"], e["event_id"]))


def _peers(network: Network | None) -> list[dict[str, Any]] | None:
    if network is None:
        return None
    return [
        {
            "id": peer.id,
            "address": peer.address,
            "direction": str(peer.direction),
            "connected_since": peer.connected_since,
            "rtt": peer.rtt,
        }
        for peer in network.peers()
    ]


async def summary(request: web.Request) -> web.Response:
    """``GET /web/summary``."""
    node = request.app[NODE_KEY]
    context = request.app[WEB_KEY]
    participant = request.app[LOCAL_KEY].address
    now = node.clock()
    view = StateView(node.committed)
    header = node.storage.header(node.height) if node.height else None
    last_time = header.time if header else node.genesis.genesis_time
    midnight = node.genesis.params.day_of(int(now))  # the local midnight that began today
    meter = context.meter_address
    network = context.network
    return web.json_response(
        {
            "chain_id": node.genesis.chain_id,
            "height": node.height,
            "now": int(now),
            "participant": participant,
            "validator": node.key.address,
            "utc_offset_minutes": node.genesis.params.utc_offset_minutes,
            "interval_seconds": node.genesis.params.interval_seconds,
            "day_start": midnight,
            "roles": {
                "meter": meter is not None,
                "concentrator": context.concentrator,
                "execute_contracts": context.execute_contracts,
                "operator": _is_operator(node, participant),
            },
            "ingress": context.ingress_proxy is not None,
            "meter": meter,
            "wallet": {
                "balance": view.balance(participant),
                "held": view.held(participant),
                "debt": view.debt(participant),
            },
            "today": _today(context.meter, midnight)
            if context.meter is not None and not context.meter.closed
            else None,
            "dr_events": dr_events(node, now, participant),
            "validators": [
                {"address": address_of(v.public_key), "power": v.power}
                for v in node.genesis.validators
            ],
            "peers": _peers(network),
            "p2p": network.listen_address if network is not None else None,
            "sync": {
                "last_block_time": last_time,
                # How far the ledger's time lags the clock for what waits: with
                # proposer-based timestamps an idle chain is not behind (its next block
                # is stamped when it is made), a chain with waiting transactions is.
                "behind_seconds": max(0, int(now) - last_time) if node.mempool else 0,
                "mempool": len(node.mempool),
            },
        }
    )


def _is_operator(node: Node, address: str) -> bool:
    return any(address_of(op.public_key) == address for op in node.genesis.operators)


async def contracts(request: web.Request) -> web.Response:
    """``GET /web/contracts``: contracts the local participant is a party to, newest first."""
    node = request.app[NODE_KEY]
    participant = request.app[LOCAL_KEY].address
    rows: list[dict[str, Any]] = [
        {"id": contract_id, **record}
        for contract_id, record in StateView(node.committed).contracts()
        if participant in record["signers"]
    ]
    view = StateView(node.committed)
    rows.sort(key=lambda r: (-int(r.get("proposed_height", 0)), r["id"]))
    out = []
    for row in rows[:MAX_CONTRACTS]:
        check_result = check(str(row["source"]))
        contract = check_result.contract
        signers = [str(a) for a in row["signers"]]
        entry = {
            "id": row["id"],
            "name": row.get("name"),
            "status": row.get("status"),
            "proposer": row.get("proposer"),
            "signers": signers,
            "signed": row.get("signed"),
            "missing": [a for a in signers if a not in row["signed"]],
            "names": {a: _name(view, a) for a in signers},
            "proposed_height": row.get("proposed_height"),
            "activated_time": row.get("activated_time"),
            "short_id": short_id(contract) if contract is not None else None,
            "source": row["source"],
        }
        if contract is not None and "activated_time" in row:
            entry["receipt"] = receipt(
                contract,
                node.genesis.params.local_datetime(int(row["activated_time"])),
            )
        out.append(entry)
    return web.json_response({"participant": participant, "contracts": out})


async def participants(request: web.Request) -> web.Response:
    """``GET /web/participants``: every registered account (meters with their owner)."""
    node = request.app[NODE_KEY]
    rows = []
    view = StateView(node.committed)
    for address, record in view.accounts(MAX_PARTICIPANTS):
        rows.append(
            {
                "address": address,
                "name": record.get("name"),
                "role": record.get("role"),
                "status": record.get("status"),
                "owner": record.get("owner"),
                "since": record.get("since"),
                "balance": view.balance(address) if record["role"] != "meter" else None,
            }
        )
    return web.json_response({"participants": rows})


def _name(view: StateView, address: str) -> str | None:
    account = view.account(address)
    return account.get("name") if account is not None else None


async def qr_code(request: web.Request) -> web.Response:
    """``POST /web/qr``: ``{"text": "..."}`` as the SVG of its QR code."""
    body = await read_json(request, MAX_QR_BODY, "the text")
    text = body.get("text") if isinstance(body, dict) else None
    if not isinstance(text, str) or not text:
        return error(400, "malformed", "the text to draw is required", "text")
    try:
        drawing = svg(text)
    except QrError as err:
        return error(400, "too_large", str(err), "text")
    return web.json_response({"svg": drawing})


async def ticket(request: web.Request) -> web.Response:
    """``POST /web/ticket`` ``{"path": "/api/v1/events"}``: a single-use ticket that opens
    one WebSocket on that stream route within :data:`TICKET_SECONDS` seconds."""
    body = await read_json(request, MAX_TICKET_BODY, "a ticket request")
    path = body.get("path") if isinstance(body, dict) else None
    if isinstance(body, dict) and set(body) - {"path"}:
        return error(400, "malformed", "a ticket request has one field, path", "body")
    if not isinstance(path, str):
        choices = ", ".join(stream_paths(request.app))
        return error(400, "malformed", f"name the stream route to open: one of {choices}", "path")
    try:
        issued = issue_ticket(request.app, path)
    except ValueError as err:
        return error(400, "malformed", str(err), "path")
    return web.json_response({"ticket": issued, "path": path, "expires_in": TICKET_SECONDS})


WEB_PATHS: Final[dict[str, Any]] = {
    "/web/summary": {
        "get": operation(
            "The home at a glance for the web interface",
            answers={
                200: obj(
                    {
                        "chain_id": TEXT,
                        "height": INT,
                        "now": INT,
                        "participant": ADDRESS_SCHEMA,
                        "validator": ADDRESS_SCHEMA,
                        "utc_offset_minutes": INT,
                        "interval_seconds": INT,
                        "day_start": INT,
                        "roles": obj(
                            {
                                "meter": BOOL,
                                "concentrator": BOOL,
                                "execute_contracts": BOOL,
                                "operator": BOOL,
                            }
                        ),
                        "ingress": BOOL,
                        "meter": nullable(ADDRESS_SCHEMA),
                        "wallet": obj({"balance": INT, "held": INT, "debt": INT}),
                        "today": nullable(ANY_OBJECT),
                        "dr_events": array(ANY_OBJECT),
                        "validators": array(obj({"address": ADDRESS_SCHEMA, "power": INT})),
                        "peers": nullable(array(ANY_OBJECT)),
                        "p2p": nullable(TEXT),
                        "sync": obj(
                            {"last_block_time": INT, "behind_seconds": INT, "mempool": INT}
                        ),
                    }
                )
            },
        )
    },
    "/web/contracts": {
        "get": operation(
            "The local participant's contracts with state and receipt",
            answers={
                200: obj(
                    {
                        "participant": ADDRESS_SCHEMA,
                        "contracts": array(
                            obj({"id": HASH_SCHEMA, "name": nullable(TEXT), "source": TEXT})
                        ),
                    }
                )
            },
        )
    },
    "/web/participants": {
        "get": operation(
            "Registered participants and meters",
            answers={
                200: obj(
                    {
                        "participants": array(
                            obj(
                                {
                                    "address": ADDRESS_SCHEMA,
                                    "name": nullable(TEXT),
                                    "role": nullable(TEXT),
                                    "status": nullable(TEXT),
                                    "owner": nullable(ADDRESS_SCHEMA),
                                    "since": nullable(INT),
                                    "balance": nullable(INT),
                                }
                            )
                        )
                    }
                )
            },
        )
    },
    "/web/qr": {
        "post": operation(
            "A text (an invitation code) as the SVG of its QR code",
            answers={200: obj({"svg": TEXT})},
            refusals=(400, 413),
            body=obj({"text": TEXT}, closed=True),
        )
    },
    "/web/ticket": {
        "post": operation(
            "A ticket that opens one WebSocket of the stream route it names (?ticket=): "
            "single-use, short-lived, good for nothing else",
            answers={200: obj({"ticket": TEXT, "path": TEXT, "expires_in": INT})},
            refusals=(400,),
            body=obj({"path": TEXT}, closed=True),
        )
    },
}
