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
  from the meter's committed reports, demand-response events in force or coming,
  validators, peers, sync state);
- ``GET /web/contracts``: the local participant's contracts, newest first, with
  state and receipt;
- ``GET /web/participants``: registered participants and meters (operator page);
- ``POST /web/ticket``: a WebSocket ticket.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from aiohttp import web

from contracts import check, receipt, short_id
from ledger_core.api import (
    LOCAL_KEY,
    NODE_KEY,
    PREFIX,
    error,
    extend_spec,
    issue_ticket,
    require_token,
)
from ledger_core.concentrator.dr import DrEvent
from ledger_core.node import Node
from ledger_core.p2p.network import Network
from ledger_core.types.crypto import address_of

STATIC: Final = Path(__file__).parent / "static"
MAX_CONTRACTS: Final = 200
MAX_PARTICIPANTS: Final = 1000
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
    concentrator: bool = False
    execute_contracts: bool = False
    network: Network | None = None


WEB_KEY: Final = web.AppKey("web", WebContext)


def add_web_routes(app: web.Application, context: WebContext | None = None) -> None:
    """Serve the pages at ``/`` and add the routes above to a node application."""
    app[WEB_KEY] = context if context is not None else WebContext()
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

    app.add_routes(
        [
            web.get("/", page),
            web.get("/static/{name:.+}", static),
            web.get(f"{PREFIX}/web/summary", summary),
            web.get(f"{PREFIX}/web/contracts", contracts),
            web.get(f"{PREFIX}/web/participants", participants),
            web.post(f"{PREFIX}/web/ticket", ticket),
        ]
    )
    extend_spec(app, WEB_PATHS)


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


async def _json_body(request: web.Request, limit: int) -> dict[str, Any] | web.Response:
    raw = await request.content.read(limit + 1)
    if len(raw) > limit:
        return error(413, "too_large", f"the body is at most {limit} bytes", "body")
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        return error(400, "malformed", "the body is not JSON", "body")
    if not isinstance(body, dict):
        return error(400, "malformed", "the body is a JSON object", "body")
    return body


def _local_midnight(node: Node, now: float) -> int:
    """Unix time of the market's local midnight that began the current day."""
    offset = node.genesis.params.utc_offset_minutes * 60
    local = int(now) + offset
    return local - local % DAY - offset


def _today(node: Node, meter: str, start: int) -> dict[str, int]:
    rows = node.storage.range(f"report/{meter}/", f"{start:012d}", f"{start + DAY:012d}", 200)
    imported = exported = 0
    for _key, value in rows:
        assert isinstance(value, dict)
        imported += _int(value.get("import_wh"))
        exported += _int(value.get("export_wh"))
    return {"from": start, "import_wh": imported, "export_wh": exported, "reports": len(rows)}


def _int(value: object) -> int:
    return value if isinstance(value, int) else 0


def dr_events(node: Node, now: float, participant: str | None) -> list[dict[str, Any]]:
    """Demand-response events not over yet (for ``participant`` when given), soonest first."""
    found: list[dict[str, Any]] = []
    for _key, record in node.storage.range("dr/", "", "\x7f", 500):
        assert isinstance(record, dict)  # the ledger checked the event on the way in
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
    require_token(request)
    node = request.app[NODE_KEY]
    context = request.app[WEB_KEY]
    participant = request.app[LOCAL_KEY].address
    now = node.clock()
    state = node.app.state
    header = node.storage.header(node.height) if node.height else None
    last_time = header.time if header else node.genesis.genesis_time
    midnight = _local_midnight(node, now)
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
                "balance": state.get(f"bal/{participant}", 0),
                "held": state.get(f"held/{participant}", 0),
                "debt": state.get(f"debt/{participant}", 0),
            },
            "today": _today(node, meter, midnight) if meter is not None else None,
            "dr_events": dr_events(node, now, participant),
            "validators": [
                {"address": address_of(v.public_key), "power": v.power}
                for v in node.genesis.validators
            ],
            "peers": _peers(network),
            "p2p": network.listen_address if network is not None else None,
            "sync": {
                "last_block_time": last_time,
                "behind_seconds": max(0, int(now) - last_time),
                "mempool": len(node.mempool),
            },
        }
    )


def _is_operator(node: Node, address: str) -> bool:
    return any(address_of(op.public_key) == address for op in node.genesis.operators)


async def contracts(request: web.Request) -> web.Response:
    """``GET /web/contracts``: contracts the local participant is a party to, newest first."""
    require_token(request)
    node = request.app[NODE_KEY]
    participant = request.app[LOCAL_KEY].address
    rows: list[dict[str, Any]] = []
    for key, record in node.app.state.items():
        if not key.startswith("contract/") or not isinstance(record, dict):
            continue
        signers = record.get("signers")
        if not isinstance(signers, list) or participant not in signers:
            continue
        rows.append({"id": key.removeprefix("contract/"), **record})
    rows.sort(key=lambda r: (-int(r.get("proposed_height", 0)), r["id"]))
    out = []
    for row in rows[:MAX_CONTRACTS]:
        check_result = check(str(row["source"]))
        contract = check_result.contract
        entry = {
            "id": row["id"],
            "name": row.get("name"),
            "status": row.get("status"),
            "proposer": row.get("proposer"),
            "signers": row.get("signers"),
            "signed": row.get("signed"),
            "proposed_height": row.get("proposed_height"),
            "activated_time": row.get("activated_time"),
            "short_id": short_id(contract) if contract is not None else None,
            "source": row["source"],
        }
        if contract is not None and "activated_time" in row:
            entry["receipt"] = receipt(
                contract,
                node.app.local_datetime(int(row["activated_time"])),
            )
        out.append(entry)
    return web.json_response({"participant": participant, "contracts": out})


async def participants(request: web.Request) -> web.Response:
    """``GET /web/participants``: every registered account (meters with their owner)."""
    require_token(request)
    node = request.app[NODE_KEY]
    rows = []
    for key, record in node.storage.range("acct/", "", "\x7f", MAX_PARTICIPANTS):
        assert isinstance(record, dict)
        address = key.removeprefix("acct/")
        rows.append(
            {
                "address": address,
                "role": record.get("role"),
                "status": record.get("status"),
                "owner": record.get("owner"),
                "since": record.get("since"),
                "balance": node.app.state.get(f"bal/{address}"),
            }
        )
    return web.json_response({"participants": rows})


async def ticket(request: web.Request) -> web.Response:
    """``POST /web/ticket``: a single-use WebSocket ticket, valid for a minute."""
    require_token(request)
    return web.json_response({"ticket": issue_ticket(request.app), "expires_in": 60})


_OK: Final = {"200": {"description": "JSON", "content": {"application/json": {}}}}
WEB_PATHS: Final[dict[str, Any]] = {
    "/web/summary": {
        "get": {
            "summary": "The home at a glance for the web interface",
            "security": [{"bearer": []}],
            "responses": _OK,
        }
    },
    "/web/contracts": {
        "get": {
            "summary": "The local participant's contracts with state and receipt",
            "security": [{"bearer": []}],
            "responses": _OK,
        }
    },
    "/web/participants": {
        "get": {
            "summary": "Registered participants and meters",
            "security": [{"bearer": []}],
            "responses": _OK,
        }
    },
    "/web/ticket": {
        "post": {
            "summary": "A single-use ticket that opens one WebSocket (?ticket=) within a minute",
            "security": [{"bearer": []}],
            "responses": _OK,
        }
    },
}
