"""The OpenAPI 3.1 description of the node API, served at ``/api/v1/openapi.json``."""

from __future__ import annotations

from typing import Any, Final

from ledger_core.market.openapi import MARKET_PATHS
from ledger_core.tx import TxType
from transactiva_client.protocol import API_VERSION

_ERROR: Final = {
    "description": "Refused; the body says why",
    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
}
_JSON: Final = {
    "description": "OK",
    "content": {"application/json": {"schema": {"type": "object"}}},
}
_SECURED: Final[list[dict[str, list[str]]]] = [{"bearer": []}]


def _op(
    summary: str, *, secured: bool, params: list[dict[str, Any]] | None = None, **extra: object
) -> dict[str, Any]:
    operation: dict[str, Any] = {
        "summary": summary,
        "responses": {"200": _JSON, "400": _ERROR, "401": _ERROR, "404": _ERROR},
    }
    if secured:
        operation["security"] = _SECURED
    if params:
        operation["parameters"] = params
    operation.update(extra)
    return operation


def _path_param(name: str, pattern: str) -> dict[str, Any]:
    return {
        "name": name,
        "in": "path",
        "required": True,
        "schema": {"type": "string", "pattern": pattern},
    }


_WAIT: Final = {
    "name": "wait",
    "in": "query",
    "required": False,
    "schema": {"type": "string", "enum": ["true", "1"]},
    "description": "Answer when the transaction is committed (up to 30 s) instead of at once",
}

_RANGE: Final[list[dict[str, Any]]] = [
    {"name": name, "in": "query", "required": False, "schema": {"type": "integer"}}
    for name in ("from", "to", "limit")
]

SPEC: Final[dict[str, Any]] = {
    "openapi": "3.1.0",
    "info": {
        "title": "Transactiva node API",
        "version": API_VERSION,
        "description": (
            "A node of a Transactiva permissioned ledger. See docs/api.md. The API version "
            "(MAJOR.MINOR) is also in GET /status as api_version: a client works with a node "
            "of its own major version and at least its minor version."
        ),
    },
    "servers": [{"url": "/api/v1"}],
    "components": {
        "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        "schemas": {
            "Error": {
                "type": "object",
                "required": ["error"],
                "properties": {
                    "error": {
                        "type": "object",
                        "required": ["code", "message"],
                        "properties": {
                            "code": {
                                "type": "string",
                                "description": (
                                    "stable; transactiva_client.protocol.ErrorCode lists them "
                                    "(a newer minor version may add codes)"
                                ),
                            },
                            "message": {"type": "string"},
                            "field": {"type": "string"},
                        },
                    }
                },
            }
        },
    },
    "paths": {
        "/status": {
            "get": _op(
                "The API version (api_version, MAJOR.MINOR), chain id, height, app hash, "
                "addresses, mempool size, catching up, peers (listed with the token), the "
                "validator set",
                secured=False,
            )
        },
        "/openapi.json": {"get": _op("This document", secured=False)},
        "/txs": {
            "post": _op(
                "Submit a signed transaction (canonical JSON wire bytes)",
                secured=True,
                params=[_WAIT],
                requestBody={
                    "required": True,
                    "content": {"application/json": {"schema": {"type": "object"}}},
                },
            )
        },
        "/txs/batch": {
            "post": _op(
                "Submit up to 1,000 signed transactions, one wire transaction per line",
                secured=True,
                params=[_WAIT],
                requestBody={
                    "required": True,
                    "content": {"application/x-ndjson": {"schema": {"type": "string"}}},
                },
            )
        },
        "/txs/{tx_id}": {
            "get": _op(
                "A transaction: pending, or committed with its result and inclusion proof",
                secured=False,
                params=[_path_param("tx_id", "^[0-9a-f]{64}$")],
            )
        },
        "/blocks/{height}": {
            "get": _op(
                "A block (or 'latest'): header, hash, proposer signature, transactions, "
                "the last commit and evidence it carries, and the commit that decided it",
                secured=False,
                params=[_path_param("height", "^([0-9]+|latest)$")],
            )
        },
        "/participants/{address}": {
            "get": _op(
                "A registered participant's public record",
                secured=False,
                params=[_path_param("address", "^tv[0-9a-f]{40}$")],
            )
        },
        "/balances": {
            "get": _op(
                "Several accounts' balance, held funds and debt, all at one height",
                secured=True,
                params=[
                    {
                        "name": "address",
                        "in": "query",
                        "required": True,
                        "schema": {"type": "array", "items": {"type": "string"}},
                        "style": "form",
                        "explode": True,
                    }
                ],
            )
        },
        "/balances/{address}": {
            "get": _op(
                "A wallet balance and held amount, with a proof against the app hash",
                secured=True,
                params=[_path_param("address", "^tv[0-9a-f]{40}$")],
            )
        },
        "/contracts/check": {
            "post": _op(
                "Check a contract's text without submitting it: diagnostics with line and "
                "column, or its id, short id and canonical text",
                secured=True,
                requestBody={
                    "required": True,
                    "content": {
                        "application/json": {
                            "schema": {
                                "type": "object",
                                "required": ["source"],
                                "properties": {"source": {"type": "string"}},
                            }
                        }
                    },
                },
            )
        },
        "/contracts/{contract_id}": {
            "get": _op(
                "A contract: source, parties, signatures, state, receipt and proof",
                secured=True,
                params=[_path_param("contract_id", "^[0-9a-f]{64}$")],
            )
        },
        "/state/{key}": {
            "get": _op(
                "Any state entry by key, with a proof against the app hash",
                secured=True,
                params=[_path_param("key", ".+")],
            )
        },
        "/reports/{address}": {
            "get": _op(
                "A meter's interval reports (?from=&to= interval starts, ?limit=)",
                secured=True,
                params=[_path_param("address", "^tv[0-9a-f]{40}$"), *_RANGE],
            )
        },
        "/signals/prices": {
            "get": _op(
                "Price signals (?from=&to= interval starts, ?limit=)", secured=False, params=_RANGE
            )
        },
        "/signals/dr/{event_id}": {
            "get": _op(
                "A demand-response event in its latest modification",
                secured=False,
                params=[_path_param("event_id", "^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$")],
            )
        },
        "/local/{tx_type}": {
            "post": _op(
                "Sign the body with the node's local participant key and submit it",
                secured=True,
                params=[
                    {
                        "name": "tx_type",
                        "in": "path",
                        "required": True,
                        "schema": {"type": "string", "enum": [t.value for t in TxType]},
                    },
                    _WAIT,
                ],
                requestBody={
                    "required": True,
                    "content": {"application/json": {"schema": {"type": "object"}}},
                },
            )
        },
        "/events": {
            "get": _op(
                "WebSocket stream of events; resume with ?after=<seq> or ?from_height=<h>",
                secured=True,
                params=[
                    {
                        "name": "after",
                        "in": "query",
                        "required": False,
                        "schema": {"type": "integer"},
                    },
                    {
                        "name": "from_height",
                        "in": "query",
                        "required": False,
                        "schema": {"type": "integer"},
                    },
                ],
            )
        },
    },
}

_INT: Final = {"type": "integer"}

_LOCAL_PATHS: Final[dict[str, Any]] = {
    "/local/events": {
        "get": _op(
            "WebSocket stream of this home's own events (contract actions and results); "
            "resume with ?after=<lseq>",
            secured=True,
            params=[{"name": "after", "in": "query", "required": False, "schema": _INT}],
        )
    },
    "/local/actions": {
        "get": _op(
            "The home's contract actions, newest first, with their results",
            secured=True,
            params=[
                {"name": name, "in": "query", "required": False, "schema": schema}
                for name, schema in (
                    ("limit", _INT),
                    ("since", _INT),
                    ("contract_id", {"type": "string"}),
                )
            ],
        )
    },
    "/local/actions/{action_id}/result": {
        "post": _op(
            "Record what became of an action: ok, failed, unmapped or skipped",
            secured=True,
            params=[_path_param("action_id", "^[0-9]+$")],
        )
    },
}

SPEC["paths"] |= MARKET_PATHS | _LOCAL_PATHS
