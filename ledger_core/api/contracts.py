"""Contracts: a contract's record with its receipt and proof, and checking a text.

Checking warns where a new contract contradicts the home's active ones (same
device, opposite actions on conditions that can hold together), naming the
other contract and its line; the warnings never block a submission.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from typing import Any, Final

from aiohttp import web

from contracts import (
    Contract,
    ContractError,
    check,
    content_hash,
    find_conflicts,
    format_contract,
    parse,
    receipt,
    short_id,
)
from contracts.canonical import quote
from contracts.conflicts import to_diagnostic
from ledger_core.api.openapi import (
    ADDRESS_SCHEMA,
    BOOL,
    HASH_SCHEMA,
    TEXT,
    array,
    nullable,
    obj,
    operation,
    path_param,
    ref,
)
from ledger_core.api.server import (
    LOCAL_KEY,
    Access,
    Feature,
    Route,
    error,
    node_of,
    read_json,
    view,
)
from ledger_core.state import keys
from ledger_core.types.tx import MAX_TX_BYTES, TX_ID_RE


def home_contracts(
    contracts: Iterable[tuple[str, keys.Contract]], participant: str
) -> list[tuple[str, Contract]]:
    """A participant's active contracts, by activation height then id (the home's order
    of precedence)."""
    found: list[tuple[int, str, Contract]] = []
    for contract_id, record in contracts:
        if record["status"] != "active" or participant not in record["signers"]:
            continue
        try:
            contract = parse(record["source"])
        except ContractError:  # the ledger only activates valid contracts
            continue
        found.append((record.get("activated_height", 0), contract_id, contract))
    return [
        (contract_id, contract) for _h, contract_id, contract in sorted(found, key=lambda f: f[:2])
    ]


def conflict_diagnostics(
    new: Contract, active: list[tuple[str, Contract]]
) -> list[dict[str, object]]:
    """Warnings where ``new`` contradicts the home's active contracts, as the API's
    diagnostics: line, column and message in ``new``, and the other contract's id, short
    id, name and place. The new contract itself (same id) is left out."""
    new_id = content_hash(new)
    others = [(cid, c) for cid, c in active if cid != new_id]
    out: list[dict[str, object]] = []
    for conflict in find_conflicts(new, [c for _cid, c in others]):
        cid, other = others[conflict.other]
        label = f"{quote(other.name)} [{short_id(other)}]"
        diagnostic = to_diagnostic(
            conflict, f"{label}:{conflict.other_line}:{conflict.other_column}"
        )
        out.append(
            {
                "severity": str(diagnostic.severity),
                "line": diagnostic.line,
                "column": diagnostic.column,
                "message": diagnostic.message,
                "expected": None,
                "hint": diagnostic.hint,
                "kind": str(conflict.kind),
                "contract_id": cid,
                "short_id": short_id(other),
                "contract": other.name,
                "other_line": conflict.other_line,
                "other_column": conflict.other_column,
            }
        )
    return out


_OWN: Final = object()


def _active_contracts(
    request: web.Request, given: object
) -> list[tuple[str, Contract]] | web.Response:
    """The home's active contracts for conflict warnings: the texts given, or the local
    participant's active contracts on the ledger."""
    if given is _OWN:
        return home_contracts(view(request).contracts(), request.app[LOCAL_KEY].address)
    if not isinstance(given, list) or not all(isinstance(g, str) for g in given):
        return error(400, "malformed", "must be a list of contract texts", "active")
    found: list[tuple[str, Contract]] = []
    for index, text in enumerate(given):
        checked = check(text)
        if checked.contract is None:
            return error(400, "malformed", f"active contract {index} is not valid", "active")
        found.append((content_hash(checked.contract), checked.contract))
    return found


async def get_contract(request: web.Request) -> web.Response:
    node = node_of(request)
    contract_id = request.match_info["contract_id"]
    if not TX_ID_RE.fullmatch(contract_id):
        return error(400, "malformed", "a contract id is 64 hex digits", "contract_id")
    record, proof = node.app.query(keys.contract(contract_id))
    if not isinstance(record, dict):
        return error(404, "not_found", f"no contract {contract_id}")
    body: dict[str, Any] = {
        "id": contract_id,
        **record,
        "proof": proof.to_json() if proof else None,
    }
    contract = parse(str(record["source"]))
    body["short_id"] = short_id(contract)
    activated = record.get("activated_time")
    if isinstance(activated, int):
        body["receipt"] = receipt(contract, node.genesis.params.local_datetime(activated))
    return web.json_response(body)


async def check_contract(request: web.Request) -> web.Response:
    """Check a contract's text without submitting it (nothing is signed or stored).

    The body is ``{"source": "..."}``. The answer is 200 either way: ``valid``
    (also as ``ok``), every diagnostic with its line and column, and for a valid contract its id,
    short id, name and canonical text (what ``contract_propose`` needs). The diagnostics include
    warnings where it contradicts the home's active contracts (``"active": [texts]`` in the body,
    else the local participant's on the ledger), with the other contract's id and place.
    """
    body = await read_json(request, MAX_TX_BYTES * 2, "a contract check")
    if not isinstance(body, dict):
        return error(400, "malformed", 'send {"source": "<contract text>"}', "body")
    unknown = sorted(set(body) - {"source", "active"})
    if unknown:
        return error(400, "malformed", "is not a field of a contract check", str(unknown[0]))
    source = body.get("source")
    if not isinstance(source, str):
        return error(400, "malformed", "must be the contract's text", "source")
    # Absent: the local participant's active contracts; null is not a list of texts.
    active = _active_contracts(request, body.get("active", _OWN))
    if isinstance(active, web.Response):
        return active
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
        # A pure, bounded search; off the event loop so a large contract cannot stall it.
        answer["diagnostics"] += await asyncio.to_thread(
            conflict_diagnostics, result.contract, active
        )
    return web.json_response(answer)


_CHECKED: Final = obj(
    {
        "valid": BOOL,
        "ok": BOOL,
        "diagnostics": array(ref("Diagnostic")),
        "id": HASH_SCHEMA,
        "short_id": TEXT,
        "name": TEXT,
        "parties": array(TEXT),
        "canonical": TEXT,
    },
    optional=("id", "short_id", "name", "parties", "canonical"),
)
_RECORD: Final = obj(
    {
        "id": HASH_SCHEMA,
        "name": TEXT,
        "source": TEXT,
        "proposer": ADDRESS_SCHEMA,
        "signers": array(ADDRESS_SCHEMA),
        "signed": array(ADDRESS_SCHEMA),
        "status": TEXT,
        "short_id": TEXT,
        "receipt": TEXT,
        "proof": nullable(ref("Proof")),
    },
    optional=("receipt",),
)

FEATURE: Final = Feature(
    "contracts",
    (
        Route(
            "POST",
            "/contracts/check",
            check_contract,
            Access.TOKEN,
            operation(
                "Check a contract's text without submitting it: diagnostics with line and "
                "column (warnings included where it contradicts the home's active contracts: "
                "those given as active, else the local participant's), or its id, short id "
                "and canonical text",
                answers={200: _CHECKED},
                refusals=(400,),
                body=obj(
                    {"source": TEXT, "active": array(TEXT)}, optional=("active",), closed=True
                ),
            ),
        ),
        Route(
            "GET",
            "/contracts/{contract_id:[0-9a-f]+}",  # hex only: GET /contracts/check is a 405
            get_contract,
            Access.TOKEN,
            operation(
                "A contract: source, parties, signatures, state, receipt and proof",
                params=[path_param("contract_id", "^[0-9a-f]{64}$")],
                answers={200: _RECORD},
                refusals=(400, 404),
            ),
        ),
    ),
)
