"""Accounts: participants' records and names, and wallets (balance, held, debt) with proofs.

All need the token: a record links an address to its role, status, registration and (for
a meter) its home; a name links it to a person's choice of name; a wallet is money.
Wherever a route takes an address it also takes a participant's name (any case).
"""

from __future__ import annotations

from typing import Final

from aiohttp import web

from ledger_core.api.openapi import (
    ADDRESS,
    ADDRESS_SCHEMA,
    HASH_SCHEMA,
    INT,
    TEXT,
    array,
    nullable,
    obj,
    operation,
    path_param,
    ref,
)
from ledger_core.api.server import (
    Access,
    Feature,
    Route,
    address_param,
    error,
    node_of,
    resolve_address,
    view,
)
from ledger_core.state import keys
from ledger_core.types.names import checked_name

MAX_BALANCES: Final = 200
MAX_PARTICIPANTS: Final = 100_000
_MONEY: Final = {"balance": INT, "held": INT, "debt": INT}
_PARTICIPANT: Final = obj(
    {
        "address": ADDRESS_SCHEMA,
        "public_key": HASH_SCHEMA,
        "role": TEXT,
        "status": TEXT,
        "since": INT,
        "name": TEXT,
        "owner": ADDRESS_SCHEMA,
        "roles": array(TEXT),
        "service_connected": {"type": "boolean"},
    },
    optional=("name", "owner", "roles"),
)


async def get_participant(request: web.Request) -> web.Response:
    address = address_param(request)
    state = view(request)
    account = state.account(address)
    if account is None:
        return error(404, "not_found", f"{address} is not registered")
    return web.json_response(
        {"address": address, **account, "service_connected": state.service_connected(address)}
    )


async def get_balance(request: web.Request) -> web.Response:
    node = node_of(request)
    state = view(request)
    address = address_param(request)
    if state.account(address) is None:
        return error(404, "not_found", f"{address} is not registered")
    balance, proof = node.app.query(keys.balance(address))
    return web.json_response(
        {
            "address": address,
            "balance": balance or 0,
            "held": state.held(address),
            "debt": state.debt(address),
            "height": node.height,
            "app_hash": node.app.app_hash.hex(),
            "proof": proof.to_json() if proof else None,
        }
    )


async def get_balances(request: web.Request) -> web.Response:
    """Several accounts' money read at one height: ``?address=tv...&address=tv...``."""
    node = node_of(request)
    state = view(request)
    addresses = request.query.getall("address", [])
    if not addresses:
        return error(400, "malformed", "give one or more ?address=", "address")
    if len(addresses) > MAX_BALANCES:
        return error(400, "malformed", f"at most {MAX_BALANCES} addresses", "address")
    rows = []
    for i, given in enumerate(addresses):
        address = resolve_address(state, given, f"address[{i}]")
        if state.account(address) is None:
            return error(404, "not_found", f"{address} is not registered", f"address[{i}]")
        rows.append(
            {
                "address": address,
                "balance": state.balance(address),
                "held": state.held(address),
                "debt": state.debt(address),
            }
        )
    return web.json_response(
        {"height": node.height, "app_hash": node.app.app_hash.hex(), "balances": rows}
    )


async def list_participants(request: web.Request) -> web.Response:
    """Every participant and operator with its name and meter (meters are not listed)."""
    state = view(request)
    accounts = list(state.accounts(MAX_PARTICIPANTS))
    meters = {
        str(record["owner"]): address
        for address, record in accounts
        if record["role"] == "meter" and "owner" in record and record["status"] == "active"
    }
    rows = [
        {
            "address": address,
            "name": record.get("name"),
            "role": record["role"],
            "status": record["status"],
            "since": record["since"],
            "meter": meters.get(address),
        }
        for address, record in accounts
        if record["role"] != "meter"
    ]
    return web.json_response({"participants": rows})


async def get_name(request: web.Request) -> web.Response:
    """Who holds a name: its address, role and status."""
    given = request.match_info["name"]
    try:
        name = checked_name(given)
    except ValueError as err:
        return error(400, "malformed", str(err), "name")
    state = view(request)
    address = state.name_holder(name)
    account = state.account(address) if address is not None else None
    if address is None or account is None:
        return error(404, "unknown_name", f"no participant is named {name!r}", "name")
    return web.json_response(
        {"name": name, "address": address, "role": account["role"], "status": account["status"]}
    )


FEATURE: Final = Feature(
    "accounts",
    (
        Route(
            "GET",
            "/participants",
            list_participants,
            Access.TOKEN,
            operation(
                "Every participant and operator: address, name, role, status, meter",
                answers={
                    200: obj(
                        {
                            "participants": array(
                                obj(
                                    {
                                        "address": ADDRESS_SCHEMA,
                                        "name": nullable(TEXT),
                                        "role": TEXT,
                                        "status": TEXT,
                                        "since": INT,
                                        "meter": nullable(ADDRESS_SCHEMA),
                                    }
                                )
                            )
                        }
                    )
                },
            ),
        ),
        Route(
            "GET",
            "/names/{name}",
            get_name,
            Access.TOKEN,
            operation(
                "Who holds a participant's name (names are compared in lower case)",
                params=[path_param("name", "^[A-Za-z0-9][A-Za-z0-9._-]{0,31}$")],
                answers={
                    200: obj(
                        {"name": TEXT, "address": ADDRESS_SCHEMA, "role": TEXT, "status": TEXT}
                    )
                },
                refusals=(400, 404),
            ),
        ),
        Route(
            "GET",
            "/participants/{address}",
            get_participant,
            Access.TOKEN,
            operation(
                "A registered participant's record: public key, role, status, since (meters: "
                "owner; operators: roles), and whether its supply is connected",
                params=[ADDRESS],
                answers={200: _PARTICIPANT},
                refusals=(400, 404),
            ),
        ),
        Route(
            "GET",
            "/balances",
            get_balances,
            Access.TOKEN,
            operation(
                "Several accounts' balance, held funds and debt, all at one height",
                params=[
                    {
                        "name": "address",
                        "in": "query",
                        "required": True,
                        "schema": {
                            "type": "array",
                            "items": ADDRESS_SCHEMA,
                            "minItems": 1,
                            "maxItems": MAX_BALANCES,
                        },
                        "style": "form",
                        "explode": True,
                    }
                ],
                answers={
                    200: obj(
                        {
                            "height": INT,
                            "app_hash": HASH_SCHEMA,
                            "balances": array(
                                obj({"address": ADDRESS_SCHEMA, **_MONEY}),
                            ),
                        }
                    )
                },
                refusals=(400, 404),
            ),
        ),
        Route(
            "GET",
            "/balances/{address}",
            get_balance,
            Access.TOKEN,
            operation(
                "A wallet balance and held amount, with a proof against the app hash",
                params=[ADDRESS],
                answers={
                    200: obj(
                        {
                            "address": ADDRESS_SCHEMA,
                            **_MONEY,
                            "height": INT,
                            "app_hash": HASH_SCHEMA,
                            "proof": nullable(ref("Proof")),
                        }
                    )
                },
                refusals=(400, 404),
            ),
        ),
    ),
)
