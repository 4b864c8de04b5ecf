"""The raw state: any entry by key, with its proof against the app hash (token only).

A record that left the live state (``ledger_core/state/history.py``) is answered from
the node's history with ``retired: true`` and a history proof instead: its path among
what its block took out, and the proof of that block's ``retired/<height>`` entry under
the current app hash. A node restored from a snapshot holds no history from before it.
"""

from __future__ import annotations

import bisect
from typing import Final

from aiohttp import web

from ledger_core.api.openapi import (
    BOOL,
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
from ledger_core.node.storage import Storage
from ledger_core.state import keys
from ledger_core.types import merkle
from ledger_core.types.abci import Application
from ledger_core.types.commitment import HistoryProof, retired_leaves


async def get_state(request: web.Request) -> web.Response:
    node = node_of(request)
    key = request.match_info["key"]
    value, proof = node.app.query(key)
    if value is None:
        history = _history_proof(node.storage, node.app, key)
        if history is None:
            return error(404, "not_found", f"no state entry {key!r}")
        return web.json_response(
            {
                "key": key,
                "value": history.value,
                "height": node.height,
                "app_hash": node.app.app_hash.hex(),
                "proof": None,
                "retired": True,
                "history_proof": history.to_json(),
            }
        )
    return web.json_response(
        {
            "key": key,
            "value": value,
            "height": node.height,
            "app_hash": node.app.app_hash.hex(),
            "proof": proof.to_json() if proof else None,
            "retired": False,
            "history_proof": None,
        }
    )


def _history_proof(storage: Storage, app: Application, key: str) -> HistoryProof | None:
    """The proof of a record this node holds in its history, against the app hash."""
    found = storage.history_value(key)
    if found is None:
        return None
    value, height = found
    _, anchor = app.query(keys.retired(height))
    if anchor is None:
        return None
    entries = storage.history_at(height)
    names = [name for name, _ in entries]
    index = bisect.bisect_left(names, key)
    path = tuple(merkle.proof(retired_leaves(entries), index))
    return HistoryProof(key, value, height, index, len(entries), path, anchor)


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
                            "retired": BOOL,
                            "history_proof": nullable(ref("HistoryProof")),
                        }
                    )
                },
                refusals=(404,),
            ),
        ),
    ),
)
