"""OpenAPI 3.1 paths of the market routes, to merge into ``ledger_core.openapi.SPEC["paths"]``.

Kept apart (and free of imports from ``ledger_core``) so that the node's spec
can include it without an import cycle: ``SPEC["paths"] |= MARKET_PATHS``.
"""

from __future__ import annotations

from typing import Any, Final

_ERROR: Final = {
    "description": "Refused; the body says why",
    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
}
_JSON: Final = {
    "description": "OK",
    "content": {"application/json": {"schema": {"type": "object"}}},
}
_RANGE: Final[list[dict[str, Any]]] = [
    {"name": name, "in": "query", "required": False, "schema": {"type": "integer"}}
    for name in ("from", "to", "limit")
]
_ADDRESS: Final = {
    "name": "address",
    "in": "path",
    "required": True,
    "schema": {"type": "string", "pattern": "^tv[0-9a-f]{40}$"},
}


def _get(summary: str, *, secured: bool, by_address: bool) -> dict[str, Any]:
    operation: dict[str, Any] = {
        "summary": summary,
        "parameters": [_ADDRESS, *_RANGE] if by_address else list(_RANGE),
        "responses": {"200": _JSON, "400": _ERROR, "401": _ERROR, "404": _ERROR},
    }
    if secured:
        operation["security"] = [{"bearer": []}]
    return {"get": operation}


MARKET_PATHS: Final[dict[str, Any]] = {
    "/market/intervals": _get(
        "Interval results: status, clearing price, volume, order counts, backstop prices "
        "(?from=&to= interval starts, ?limit=)",
        secured=False,
        by_address=False,
    ),
    "/market/orders/{address}": _get(
        "A participant's orders by interval (?from=&to=, ?limit=)", secured=True, by_address=True
    ),
    "/market/trades/{address}": _get(
        "A participant's trades by interval, with its side (?from=&to=, ?limit=)",
        secured=True,
        by_address=True,
    ),
    "/market/settlements/{address}": _get(
        "A participant's settlements by interval and its debt (?from=&to=, ?limit=)",
        secured=True,
        by_address=True,
    ),
}
