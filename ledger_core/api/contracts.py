"""Contracts: a contract's record with its receipt and proof, and checking a text."""

from __future__ import annotations

import json
from typing import Any, Final

from aiohttp import web

from contracts import check, content_hash, format_contract, parse, receipt, short_id
from ledger_core.api.openapi import json_body, operation, path_param
from ledger_core.api.server import Access, Feature, Route, error, node_of, read_body
from ledger_core.state import keys
from ledger_core.types.tx import MAX_TX_BYTES, TX_ID_RE


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
    short id, name and canonical text (what ``contract_propose`` needs).
    """
    raw = await read_body(request, MAX_TX_BYTES * 2, "a contract check")
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
                "column, or its id, short id and canonical text",
                requestBody=json_body(
                    {
                        "type": "object",
                        "required": ["source"],
                        "properties": {"source": {"type": "string"}},
                    }
                ),
            ),
        ),
        Route(
            "GET",
            "/contracts/{contract_id}",
            get_contract,
            Access.TOKEN,
            operation(
                "A contract: source, parties, signatures, state, receipt and proof",
                params=[path_param("contract_id", "^[0-9a-f]{64}$")],
            ),
        ),
    ),
)
