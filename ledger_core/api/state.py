"""The raw state: any entry by key, with its proof against the app hash (token only)."""

from __future__ import annotations

from typing import Final

from aiohttp import web

from ledger_core.api.openapi import (
    HASH_SCHEMA,
    INT,
    TEXT,
    nullable,
    obj,
    operation,
    path_param,
    ref,
)
from ledger_core.api.server import Access, Feature, Route, error, node_of


async def get_state(request: web.Request) -> web.Response:
    node = node_of(request)
    key = request.match_info["key"]
    value, proof = node.app.query(key)
    if value is None:
        return error(404, "not_found", f"no state entry {key!r}")
    return web.json_response(
        {
            "key": key,
            "value": value,
            "height": node.height,
            "app_hash": node.app.app_hash.hex(),
            "proof": proof.to_json() if proof else None,
        }
    )


FEATURE: Final = Feature(
    "state",
    (
        Route(
            "GET",
            "/state/{key:.+}",
            get_state,
            Access.TOKEN,
            operation(
                "Any state entry by key, with a proof against the app hash",
                params=[path_param("key", ".+")],
                answers={
                    200: obj(
                        {
                            "key": TEXT,
                            "value": {},
                            "height": INT,
                            "app_hash": HASH_SCHEMA,
                            "proof": nullable(ref("Proof")),
                        }
                    )
                },
                refusals=(404,),
            ),
        ),
    ),
)
