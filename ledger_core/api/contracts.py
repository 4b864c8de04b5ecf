"""Contracts: a contract's record with its receipt and proof, checking a text, and the
contracts that await this home's signature (``/local/contracts/awaiting``, and
``/local/contracts/{id}/sign`` to countersign one with the local key).

Checking warns where a new contract contradicts the home's active ones (same
device, opposite actions on conditions that can hold together), naming the
other contract and its line; the warnings never block a submission.
"""

from __future__ import annotations

import asyncio
import re
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
    ANY_OBJECT,
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
    fail,
    node_of,
    read_json,
    view,
)
from ledger_core.state import keys
from ledger_core.types.tx import MAX_TX_BYTES, TX_ID_RE, TxType, sign

SIGN_WAIT_SECONDS: Final = 30.0


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


def contract_json(
    request: web.Request, contract_id: str, record: keys.Contract | dict[str, Any]
) -> dict[str, Any]:
    """A contract's record for people and clients: with its short id, the receipt once
    active, the parties still to sign (``missing``) and every party's name (``names``)."""
    node = node_of(request)
    state = view(request)
    contract = parse(str(record["source"]))
    signers = [str(s) for s in record["signers"]]
    signed = [str(s) for s in record["signed"]]
    names: dict[str, str | None] = {}
    for address in signers:
        account = state.account(address)
        names[address] = account.get("name") if account is not None else None
    body: dict[str, Any] = {
        "id": contract_id,
        **record,
        "short_id": short_id(contract),
        "missing": [s for s in signers if s not in signed],
        "names": names,
    }
    activated = record.get("activated_time")
    if isinstance(activated, int):
        body["receipt"] = receipt(contract, node.genesis.params.local_datetime(activated))
    return body


async def get_contract(request: web.Request) -> web.Response:
    node = node_of(request)
    contract_id = request.match_info["contract_id"]
    if not TX_ID_RE.fullmatch(contract_id):
        return error(400, "malformed", "a contract id is 64 hex digits", "contract_id")
    record, proof = node.app.query(keys.contract(contract_id))
    if not isinstance(record, dict):
        return error(404, "not_found", f"no contract {contract_id}")
    body = contract_json(request, contract_id, record)
    body["proof"] = proof.to_json() if proof else None
    return web.json_response(body)


def awaiting(request: web.Request, participant: str) -> list[dict[str, Any]]:
    """Proposed contracts that name ``participant`` and wait for its signature, oldest
    proposal first."""
    rows = [
        (record["proposed_height"], contract_id, record)
        for contract_id, record in view(request).contracts()
        if record["status"] == "proposed"
        and participant in record["signers"]
        and participant not in record["signed"]
    ]
    return [
        contract_json(request, cid, record) for _h, cid, record in sorted(rows, key=lambda r: r[:2])
    ]


async def get_awaiting(request: web.Request) -> web.Response:
    """``GET /local/contracts/awaiting``: what waits for this home's signature."""
    participant = request.app[LOCAL_KEY].address
    return web.json_response(
        {"participant": participant, "contracts": awaiting(request, participant)}
    )


def find_contract(request: web.Request, given: str) -> str:
    """A contract id from its 64 hex digits or its short id (``0x`` and 10 hex digits,
    any case), or a 4xx."""
    text = given.strip().lower()
    if TX_ID_RE.fullmatch(text):
        return text
    digits = text.removeprefix("0x")
    if not re.fullmatch(r"[0-9a-f]{10}", digits):
        raise fail(
            400,
            "malformed",
            "a contract id is 64 hex digits, or its short id 0x + 10",
            "contract_id",
        )
    found = [
        contract_id
        for contract_id, _record in view(request).contracts()
        if contract_id.startswith(digits)
    ]
    if not found:
        raise fail(404, "unknown_contract", f"no contract {given}", "contract_id")
    if len(found) > 1:
        raise fail(
            409,
            "ambiguous_id",
            f"{given} is the short id of {len(found)} contracts; give the full id",
            "contract_id",
        )
    return found[0]


async def sign_contract(request: web.Request) -> web.Response:
    """``POST /local/contracts/{contract_id}/sign``: countersign with the local key, wait
    until it is committed; the contract (with its receipt once active)."""
    node = node_of(request)
    contract_id = find_contract(request, request.match_info["contract_id"])
    if view(request).contract(contract_id) is None:
        return error(404, "unknown_contract", f"no contract {contract_id}", "contract_id")
    key = request.app[LOCAL_KEY]
    # No await between choosing the nonce and entering the mempool (Node.next_nonce).
    nonce = node.next_nonce(key.address)
    tx = sign(key, node.genesis.chain_id, TxType.CONTRACT_SIGN, nonce, {"contract_id": contract_id})
    submitted = node.submit(tx.wire())
    if not submitted.accepted:
        status = 503 if submitted.code == "mempool_full" else 422
        return error(status, submitted.code, submitted.message)
    try:
        outcome = await asyncio.wait_for(node.wait_for(tx.id), SIGN_WAIT_SECONDS)
    except TimeoutError:
        return error(503, "pending", "the signature is not committed yet; ask again later")
    if outcome.code != "ok":
        return error(422, outcome.code, outcome.message)
    record = view(request).contract(contract_id)
    assert record is not None
    return web.json_response(
        {"tx_id": tx.id, "contract": contract_json(request, contract_id, record)}
    )


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
            "/local/contracts/awaiting",
            get_awaiting,
            Access.TOKEN,
            operation(
                "Proposed contracts that name this home's participant and await its signature, "
                "with every party's name and who has not signed yet",
                answers={200: obj({"participant": ADDRESS_SCHEMA, "contracts": array(ANY_OBJECT)})},
            ),
        ),
        Route(
            "POST",
            "/local/contracts/{contract_id}/sign",
            sign_contract,
            Access.TOKEN,
            operation(
                "Countersign a contract with this home's participant key and wait until it is "
                "committed; the contract, with its receipt once every party has signed",
                params=[path_param("contract_id", "^([0-9a-f]{64}|0[xX][0-9a-fA-F]{10})$")],
                answers={200: obj({"tx_id": HASH_SCHEMA, "contract": ANY_OBJECT})},
                refusals=(400, 404, 409, 422, 503),
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
