"""The OpenAPI 3.1 document of the node API (``/api/v1/openapi.json``): its frame and the
helpers every feature uses to describe its routes next to them.

Every operation says what the node really answers: each success status with the schema
of its body (:func:`operation`'s ``answers``; never a bare object), and each refusal
status (``refusals``), all with the node's error body. :func:`ledger_core.api.server.
add_feature` adds what the access and the request body imply -- 401 for a route that
needs the token, 400 and 413 for one that reads a body -- so a new route declares only
what its own handler decides. ``./scripts/test`` runs schemathesis against a node with
this document (tests/api/test_schemathesis.py): a status or a field the document does
not describe fails it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Final

from transactiva_client.protocol import API_VERSION

type Schema = dict[str, Any]

ERROR_REF: Final = {"$ref": "#/components/schemas/Error"}
_REASONS: Final = {
    400: "Malformed input (the body's field says where)",
    401: "Missing or wrong token",
    403: "Not from Home Assistant's ingress proxy",
    404: "Not found",
    409: "Duplicate, already committed, or not possible in this state",
    413: "The body is too large",
    422: "Refused by the ledger's rules (the code is the rule)",
    503: "Not ready, or the mempool is full; try again",
    504: "The ledger did not answer in time",
}

# -- schema helpers ----------------------------------------------------------------------

INT: Final[Schema] = {"type": "integer"}
NUMBER: Final[Schema] = {"type": "number"}
TEXT: Final[Schema] = {"type": "string"}
BOOL: Final[Schema] = {"type": "boolean"}
ANY_OBJECT: Final[Schema] = {"type": "object"}
ADDRESS_SCHEMA: Final[Schema] = {"type": "string", "pattern": "^tv[0-9a-f]{40}$"}
HASH_SCHEMA: Final[Schema] = {"type": "string", "pattern": "^[0-9a-f]{64}$"}
HEX: Final[Schema] = {"type": "string", "pattern": "^([0-9a-f]{2})*$"}


def ref(name: str) -> Schema:
    """A reference to a schema of ``components.schemas``."""
    return {"$ref": f"#/components/schemas/{name}"}


def nullable(schema: Schema) -> Schema:
    """``schema`` or null."""
    return {"anyOf": [schema, {"type": "null"}]}


def array(items: Schema) -> Schema:
    """A list of ``items``."""
    return {"type": "array", "items": items}


def obj(
    properties: Mapping[str, Schema],
    *,
    optional: Iterable[str] = (),
    closed: bool = False,
) -> Schema:
    """An object of ``properties``; all are required but those ``optional``. An answer
    may carry more fields (a newer minor version adds some); a request body that is
    ``closed`` may not."""
    left_out = set(optional)
    schema: Schema = {
        "type": "object",
        "required": [name for name in properties if name not in left_out],
        "properties": dict(properties),
    }
    if closed:
        schema["additionalProperties"] = False
    return schema


def enum(values: Iterable[str]) -> Schema:
    """One of ``values``."""
    return {"type": "string", "enum": list(values)}


# -- operations --------------------------------------------------------------------------


def _error(status: int) -> Schema:
    return {
        "description": _REASONS.get(status, "Refused; the body says why"),
        "content": {"application/json": {"schema": ERROR_REF}},
    }


def answer(schema: Schema, description: str = "OK") -> Schema:
    """A JSON response of ``schema``."""
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def operation(
    summary: str,
    *,
    params: list[Schema] | None = None,
    answers: Mapping[int, Schema] | None = None,
    refusals: Iterable[int] = (),
    body: Schema | None = None,
    **extra: object,
) -> Schema:
    """An operation: its success ``answers`` (status: schema of the JSON body) and the
    ``refusals`` its handler sends, each with the node's error body. ``body`` is the
    schema of a required JSON request body. Without ``answers`` the answer is any object
    (tests/api/test_openapi.py refuses that: say what the route answers)."""
    responses: dict[str, Schema] = {
        str(status): answer(schema) for status, schema in (answers or {200: ANY_OBJECT}).items()
    }
    for status in refusals:
        responses[str(status)] = _error(status)
    result: Schema = {"summary": summary, "responses": responses}
    if params:
        result["parameters"] = params
    if body is not None:
        result["requestBody"] = json_body(body)
    result.update(extra)
    return result


def websocket(summary: str, message: Schema, *, params: list[Schema] | None = None) -> Schema:
    """A WebSocket route: 101 and then one JSON text message of ``message`` per item
    (``x-message``; OpenAPI has no words for a socket's messages); a request that is not a
    WebSocket handshake is refused with 400."""
    result = operation(summary, params=params, refusals=(400,))
    result["responses"] = {
        "101": {
            "description": "Switching Protocols; then one JSON message per item",
            "x-message": message,
        },
        **{k: v for k, v in result["responses"].items() if k != "200"},
    }
    return result


def add_refusals(operation_doc: Schema, statuses: Iterable[int]) -> None:
    """Add refusal statuses (with the error body) an operation does not list yet."""
    responses = operation_doc.setdefault("responses", {})
    for status in statuses:
        responses.setdefault(str(status), _error(status))


def path_param(name: str, pattern: str) -> Schema:
    """A required path parameter matching ``pattern``."""
    return {
        "name": name,
        "in": "path",
        "required": True,
        "schema": {"type": "string", "pattern": pattern},
    }


def query_param(name: str, schema: Schema, *, required: bool = False) -> Schema:
    """A query parameter."""
    return {"name": name, "in": "query", "required": required, "schema": schema}


def json_body(schema: Schema | None = None) -> Schema:
    """A required JSON request body."""
    return {
        "required": True,
        "content": {"application/json": {"schema": schema or {"type": "object"}}},
    }


WAIT: Final = {
    "name": "wait",
    "in": "query",
    "required": False,
    "schema": {"type": "string", "enum": ["true", "1"]},
    "description": "Answer when the transaction is committed (up to 30 s) instead of at once",
}

MAX_RANGE_TIME: Final = 2**40
RANGE: Final[list[Schema]] = [
    query_param("from", {"type": "integer", "minimum": 0, "maximum": MAX_RANGE_TIME}),
    query_param("to", {"type": "integer", "minimum": 0, "maximum": MAX_RANGE_TIME}),
    query_param("limit", {"type": "integer", "minimum": 1, "maximum": 10_000}),
]

NAME_PATTERN: Final = "[A-Za-z0-9](?:[A-Za-z0-9._-]{0,30}[A-Za-z0-9])?"
"""A participant's name as a path takes it (any case; types/names.py has the rules)."""
ADDRESS: Final = path_param("address", f"^(tv[0-9a-f]{{40}}|{NAME_PATTERN})$")
"""An address, or a participant's name (resolved to its address)."""

# -- the schemas the features share ------------------------------------------------------

_PROOF: Final = obj(
    {
        "key": TEXT,
        "value": {},
        "bucket": INT,
        "index": INT,
        "bucket_size": INT,
        "bucket_path": array(HASH_SCHEMA),
        "top_path": array(HASH_SCHEMA),
    }
)
_HISTORY_PROOF: Final = obj(
    {
        "key": TEXT,
        "value": {},
        "height": INT,
        "index": INT,
        "count": INT,
        "path": array(HASH_SCHEMA),
        "anchor": _PROOF,
    }
)
_SIGNED_TX: Final = obj(
    {
        "signature": {"type": "string", "pattern": "^[0-9a-f]{128}$"},
        "tx": obj(
            {
                "body": ANY_OBJECT,
                "chain_id": TEXT,
                "nonce": {"type": "integer", "minimum": 1},
                "signer": ADDRESS_SCHEMA,
                "type": TEXT,
            },
            closed=True,
        ),
    },
    closed=True,
)
_EVENT: Final = obj({"type": TEXT})
_COMMIT: Final = obj(
    {
        "height": INT,
        "round": INT,
        "block_hash": nullable(HASH_SCHEMA),
        "signatures": array({"type": "array", "items": {"type": ["string", "integer"]}}),
    }
)
_HEADER: Final = obj(
    {
        "chain_id": TEXT,
        "height": INT,
        "time": INT,
        "previous_hash": HASH_SCHEMA,
        "txs_root": HASH_SCHEMA,
        "tx_count": INT,
        "app_hash": HASH_SCHEMA,
        "proposer": ADDRESS_SCHEMA,
        "validators_hash": HASH_SCHEMA,
        "next_validators_hash": HASH_SCHEMA,
        "last_commit_hash": HASH_SCHEMA,
        "evidence_hash": HASH_SCHEMA,
    }
)
_TX_PENDING: Final = obj({"id": HASH_SCHEMA, "status": enum(["pending"])})
_TX_COMMITTED: Final = obj(
    {
        "id": HASH_SCHEMA,
        "status": enum(["committed"]),
        "height": INT,
        "index": INT,
        "code": TEXT,
        "message": TEXT,
        "events": array(ref("Event")),
        "tx": ref("SignedTx"),
        "proof": obj({"txs_root": HASH_SCHEMA, "size": INT, "path": array(HASH_SCHEMA)}),
    }
)
_DIAGNOSTIC: Final = obj(
    {
        "severity": enum(["error", "warning"]),
        "line": INT,
        "column": INT,
        "message": TEXT,
        "expected": nullable(TEXT),
        "hint": nullable(TEXT),
    }
)
_DR_SIGNAL: Final = {
    "oneOf": [
        obj(
            {"name": enum(["SIMPLE"]), "level": {"type": "integer", "minimum": 0, "maximum": 3}},
            closed=True,
        ),
        obj({"name": enum(["ELECTRICITY_PRICE"]), "price": INT}, closed=True),
        obj({"name": enum(["LOAD_DISPATCH"]), "setpoint_w": INT}, closed=True),
        obj({"name": enum(["LOAD_DISPATCH"]), "delta_w": INT}, closed=True),
    ]
}
_DR_EVENT: Final = obj(
    {
        "event_id": TEXT,
        "modification_number": INT,
        "signal": ref("DrSignal"),
        "start": INT,
        "duration": INT,
        "targets": array(ADDRESS_SCHEMA),
        "cancelled": BOOL,
    }
)

SCHEMAS: Final[dict[str, Schema]] = {
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
    },
    "Proof": _PROOF,
    "HistoryProof": _HISTORY_PROOF,
    "SignedTx": _SIGNED_TX,
    "Event": _EVENT,
    "Commit": _COMMIT,
    "Header": _HEADER,
    "TxPending": _TX_PENDING,
    "TxCommitted": _TX_COMMITTED,
    "Diagnostic": _DIAGNOSTIC,
    "DrSignal": _DR_SIGNAL,
    "DrEvent": _DR_EVENT,
}

SPEC: Final[dict[str, Any]] = {
    "openapi": "3.1.0",
    "info": {
        "title": "Transactiva node API",
        "version": API_VERSION,
        "description": (
            "A node of a Transactiva permissioned ledger. See docs/api.md. The API version "
            "(MAJOR.MINOR) is also in GET /status as api_version: a client works with a node "
            "of its own major version and at least its minor version. A method a path does "
            "not have is answered 405 with an Allow header; every refusal is a JSON Error."
        ),
    },
    "servers": [{"url": "/api/v1"}],
    "components": {
        "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
        "schemas": SCHEMAS,
    },
    "paths": {},
}
