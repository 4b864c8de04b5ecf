"""The membership routes of the node API.

On every node (``local`` access, the token):

- ``GET /local/admission``: whether this home is a participant yet -- ``status`` one of
  ``member``, ``revoked``, ``joining`` (asking, or its registration being committed),
  ``awaiting_approval`` (the operator approves by hand), ``refused`` (``message`` says
  why) or ``not_invited`` (no code and not registered); with ``participant``, ``name``,
  ``role``, ``message`` and, while joining, what the ``invitation`` grants.

On the operator's node (its local participant is a genesis operator; the token):

- ``POST /operator/invitations`` ``{"name", "role"?, "expires_in"?, "approve"?}``: a new
  invitation (201), with its ``code``;
- ``GET /operator/invitations``: every invitation, newest first, with its code and status;
- ``POST /operator/invitations/{id}/cancel``: withdraw one not used yet;
- ``GET /operator/participants``: members and invitations not yet admitted (``name``,
  ``address``, ``role``, ``status``, ``meter``, ``meter_bound``, ``since``);
- ``POST /operator/participants/{who}/admit``: approve a request held for approval;
- ``POST /operator/participants/{who}/revoke``: revoke a member and its meter on the
  chain, or cancel an invitation not used yet;
- ``POST /operator/participants/{who}/rename`` ``{"name"}``: give a member another name;
- ``GET /operator/refusals``: every refused code or request, newest first, with the
  P2P handshakes this node refused to nodes of another chain.

``who`` is a name or an address.
"""

from __future__ import annotations

from typing import Any, Final

from aiohttp import web

from ledger_core.api.openapi import (
    ANY_OBJECT,
    NUMBER,
    TEXT,
    array,
    enum,
    nullable,
    obj,
    operation,
    path_param,
    query_param,
)
from ledger_core.api.server import (
    LOCAL_KEY,
    Access,
    Feature,
    Route,
    error,
    fail,
    read_json,
    view,
)
from ledger_core.membership.admission import DEFAULT_EXPIRY, AdmissionError, Admissions
from ledger_core.membership.joining import JoinStatus, admission_of
from ledger_core.p2p.network import Network

ADMISSIONS_KEY: Final = web.AppKey("admissions", Admissions)
JOIN_KEY: Final = web.AppKey("joining", JoinStatus)
NETWORK_KEY: Final = web.AppKey("membership_network", Network)
MAX_BODY: Final = 4096
WHO: Final = path_param("who", "^[A-Za-z0-9._-]{1,42}$")
_TEXT_OR_NULL: Final = nullable(TEXT)
LIMIT: Final = {"type": "integer", "minimum": 1, "maximum": 10_000}
_ENTRY: Final = obj(
    {
        "id": TEXT,
        "name": TEXT,
        "role": TEXT,
        "approve": enum(["auto", "manual"]),
        "expires": NUMBER,
        "issued": NUMBER,
        "status": TEXT,
        "address": _TEXT_OR_NULL,
        "message": _TEXT_OR_NULL,
        "code": TEXT,
    },
    optional=("code",),
)
_MEMBER: Final = obj({"name": _TEXT_OR_NULL, "status": TEXT, "address": _TEXT_OR_NULL})
_REFUSALS: Final = (400, 404, 409, 413, 422, 503)


async def _json(request: web.Request) -> dict[str, Any]:
    """The JSON object in the body; an empty body is an empty object."""
    if request.content_length == 0 or not request.can_read_body:
        return {}
    body = await read_json(request, MAX_BODY, "the body")
    if not isinstance(body, dict):
        raise fail(400, "malformed", "the body is a JSON object", "body")
    return body


def _refused(err: AdmissionError) -> web.Response:
    return error(err.status, err.code, err.message, err.field)


async def get_admission(request: web.Request) -> web.Response:
    joining = request.app.get(JOIN_KEY)
    return web.json_response(admission_of(view(request), request.app[LOCAL_KEY].address, joining))


async def post_invitation(request: web.Request) -> web.Response:
    body = await _json(request)
    unknown = set(body) - {"name", "role", "expires_in", "approve"}
    if unknown:
        return error(400, "malformed", "not a field of an invitation", sorted(unknown)[0])
    name, role = body.get("name"), body.get("role", "consumer")
    expires_in, approve = body.get("expires_in", DEFAULT_EXPIRY), body.get("approve", "auto")
    if not isinstance(name, str):
        return error(400, "malformed", "the name the home is given is required", "name")
    if not isinstance(role, str):
        return error(400, "malformed", "must be a role", "role")
    if type(expires_in) is not int:
        return error(400, "malformed", "must be whole seconds", "expires_in")
    if not isinstance(approve, str):
        return error(400, "malformed", "must be auto or manual", "approve")
    try:
        entry = request.app[ADMISSIONS_KEY].invite(name, role, expires_in, approve)
    except AdmissionError as err:
        return _refused(err)
    return web.json_response(entry.to_json(), status=201)


async def get_invitations(request: web.Request) -> web.Response:
    entries = request.app[ADMISSIONS_KEY].book.all()
    return web.json_response({"invitations": [e.to_json() for e in entries]})


async def cancel_invitation(request: web.Request) -> web.Response:
    admissions = request.app[ADMISSIONS_KEY]
    entry = admissions.book.get(request.match_info["invitation_id"])
    if entry is None:
        return error(404, "not_found", "no such invitation", "invitation_id")
    try:
        return web.json_response(admissions.cancel(entry).to_json())
    except AdmissionError as err:
        return _refused(err)


async def get_participants(request: web.Request) -> web.Response:
    return web.json_response({"participants": request.app[ADMISSIONS_KEY].participants()})


async def admit(request: web.Request) -> web.Response:
    try:
        entry = request.app[ADMISSIONS_KEY].admit(request.match_info["who"])
    except AdmissionError as err:
        return _refused(err)
    return web.json_response(entry.to_json(with_code=False))


async def revoke(request: web.Request) -> web.Response:
    try:
        return web.json_response(
            await request.app[ADMISSIONS_KEY].revoke(request.match_info["who"])
        )
    except AdmissionError as err:
        return _refused(err)


async def rename(request: web.Request) -> web.Response:
    body = await _json(request)
    new = body.get("name")
    if not isinstance(new, str):
        return error(400, "malformed", "the new name is required", "name")
    try:
        return web.json_response(
            await request.app[ADMISSIONS_KEY].rename(request.match_info["who"], new)
        )
    except AdmissionError as err:
        return _refused(err)


def handshake_refusals(network: Network | None) -> list[dict[str, Any]]:
    """P2P connections this node refused because the peer is on another chain."""
    if network is None:
        return []
    return [
        {
            "seq": None,
            "at": record.at,
            "stage": "handshake",
            "reason": "other_chain",
            "message": record.reason,
            "invitation": None,
            "name": None,
            "peer": record.address,
        }
        for record in network.recent_disconnects()
        if "chain_id:" in record.reason or "genesis_hash:" in record.reason
    ]


async def get_refusals(request: web.Request) -> web.Response:
    raw = request.query.get("limit", "200")
    if not raw.isdigit() or not 1 <= int(raw) <= 10_000:
        return error(400, "malformed", "must be an integer from 1 to 10000", "limit")
    kept = [r.to_json() for r in request.app[ADMISSIONS_KEY].book.refusals(int(raw))]
    refused = kept + handshake_refusals(request.app.get(NETWORK_KEY))
    refused.sort(key=lambda r: -float(r["at"]))
    return web.json_response({"refusals": refused[: int(raw)]})


def admission_feature(joining: JoinStatus | None) -> Feature:
    """``GET /local/admission`` (every node)."""

    def setup(app: web.Application) -> None:
        if joining is not None:
            app[JOIN_KEY] = joining

    return Feature(
        "admission",
        (
            Route(
                "GET",
                "/local/admission",
                get_admission,
                Access.TOKEN,
                operation(
                    "Whether this home is a participant yet: member, revoked, joining, "
                    "awaiting_approval, refused or not_invited, with its name and role",
                    answers={
                        200: obj(
                            {
                                "participant": TEXT,
                                "status": enum(
                                    [
                                        "member",
                                        "revoked",
                                        "joining",
                                        "awaiting_approval",
                                        "refused",
                                        "not_invited",
                                    ]
                                ),
                                "name": _TEXT_OR_NULL,
                                "role": _TEXT_OR_NULL,
                                "message": _TEXT_OR_NULL,
                                "invitation": nullable(ANY_OBJECT),
                            }
                        )
                    },
                ),
            ),
        ),
        setup,
    )


def membership_feature(admissions: Admissions, network: Network | None) -> Feature:
    """The operator's invitation and participant routes."""

    def setup(app: web.Application) -> None:
        app[ADMISSIONS_KEY] = admissions
        if network is not None:
            app[NETWORK_KEY] = network

    invitation_body = obj(
        {
            "name": TEXT,
            "role": {"type": "string", "default": "consumer"},
            "expires_in": {"type": "integer", "default": DEFAULT_EXPIRY},
            "approve": enum(["auto", "manual"]),
        },
        optional=("role", "expires_in", "approve"),
        closed=True,
    )
    return Feature(
        "membership",
        (
            Route(
                "POST",
                "/operator/invitations",
                post_invitation,
                Access.TOKEN,
                operation(
                    "Invite a home: a single-use code granting a name and a role until it expires",
                    answers={201: _ENTRY},
                    refusals=_REFUSALS,
                    body=invitation_body,
                ),
            ),
            Route(
                "GET",
                "/operator/invitations",
                get_invitations,
                Access.TOKEN,
                operation(
                    "Every invitation, newest first, with its code and status",
                    answers={200: obj({"invitations": array(_ENTRY)})},
                ),
            ),
            Route(
                "POST",
                "/operator/invitations/{invitation_id}/cancel",
                cancel_invitation,
                Access.TOKEN,
                operation(
                    "Withdraw an invitation not used yet",
                    params=[path_param("invitation_id", "^[0-9a-f]{64}$")],
                    answers={200: _ENTRY},
                    refusals=_REFUSALS,
                ),
            ),
            Route(
                "GET",
                "/operator/participants",
                get_participants,
                Access.TOKEN,
                operation(
                    "Members (name, address, role, status, meter) and invitations not admitted yet",
                    answers={200: obj({"participants": array(ANY_OBJECT)})},
                ),
            ),
            Route(
                "POST",
                "/operator/participants/{who}/admit",
                admit,
                Access.TOKEN,
                operation(
                    "Admit a home whose invitation awaits approval",
                    params=[WHO],
                    answers={200: _ENTRY},
                    refusals=_REFUSALS,
                ),
            ),
            Route(
                "POST",
                "/operator/participants/{who}/revoke",
                revoke,
                Access.TOKEN,
                operation(
                    "Revoke a participant and its meter, or cancel its unused invitation",
                    params=[WHO],
                    answers={200: _MEMBER},
                    refusals=_REFUSALS,
                ),
            ),
            Route(
                "POST",
                "/operator/participants/{who}/rename",
                rename,
                Access.TOKEN,
                operation(
                    "Give a participant another name (the old one is freed)",
                    params=[WHO],
                    answers={200: obj({"name": TEXT, "address": TEXT})},
                    refusals=_REFUSALS,
                    body=obj({"name": TEXT}),
                ),
            ),
            Route(
                "GET",
                "/operator/refusals",
                get_refusals,
                Access.TOKEN,
                operation(
                    "Every refused invitation code or request, and handshakes refused to "
                    "nodes of another chain, newest first",
                    params=[
                        query_param("limit", {"type": "integer", "minimum": 1, "maximum": 10_000})
                    ],
                    answers={
                        200: obj(
                            {
                                "refusals": array(
                                    obj(
                                        {
                                            "at": NUMBER,
                                            "stage": TEXT,
                                            "reason": TEXT,
                                            "message": TEXT,
                                            "name": _TEXT_OR_NULL,
                                        }
                                    )
                                )
                            }
                        )
                    },
                    refusals=(400,),
                ),
            ),
        ),
        setup,
    )
