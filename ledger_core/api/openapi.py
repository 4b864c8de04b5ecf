"""The OpenAPI 3.1 document of the node API (``/api/v1/openapi.json``): its frame and the
helpers every feature uses to describe its routes next to them."""

from __future__ import annotations

from typing import Any, Final

from transactiva_client.protocol import API_VERSION

ERROR_REF: Final = {"$ref": "#/components/schemas/Error"}
_ERROR: Final = {
    "description": "Refused; the body says why",
    "content": {"application/json": {"schema": ERROR_REF}},
}
_JSON: Final = {
    "description": "OK",
    "content": {"application/json": {"schema": {"type": "object"}}},
}
INT: Final = {"type": "integer"}

WAIT: Final = {
    "name": "wait",
    "in": "query",
    "required": False,
    "schema": {"type": "string", "enum": ["true", "1"]},
    "description": "Answer when the transaction is committed (up to 30 s) instead of at once",
}

RANGE: Final[list[dict[str, Any]]] = [
    {"name": name, "in": "query", "required": False, "schema": {"type": "integer"}}
    for name in ("from", "to", "limit")
]


def operation(
    summary: str, *, params: list[dict[str, Any]] | None = None, **extra: object
) -> dict[str, Any]:
    """An operation answering JSON, refusing with the node's error body."""
    result: dict[str, Any] = {
        "summary": summary,
        "responses": {"200": _JSON, "400": _ERROR, "401": _ERROR, "404": _ERROR},
    }
    if params:
        result["parameters"] = params
    result.update(extra)
    return result


def path_param(name: str, pattern: str) -> dict[str, Any]:
    """A required path parameter matching ``pattern``."""
    return {
        "name": name,
        "in": "path",
        "required": True,
        "schema": {"type": "string", "pattern": pattern},
    }


def query_param(name: str, schema: dict[str, Any], *, required: bool = False) -> dict[str, Any]:
    """A query parameter."""
    return {"name": name, "in": "query", "required": required, "schema": schema}


def json_body(schema: dict[str, Any] | None = None) -> dict[str, Any]:
    """A required JSON request body."""
    return {
        "required": True,
        "content": {"application/json": {"schema": schema or {"type": "object"}}},
    }


ADDRESS: Final = path_param("address", "^(tv[0-9a-f]{40}|[A-Za-z0-9][A-Za-z0-9._-]{0,31})$")
"""An address, or a participant's name (resolved to its address)."""

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
    "paths": {},
}
