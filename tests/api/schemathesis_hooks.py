"""Schemathesis hooks for tests/api/test_schemathesis.py (loaded by schemathesis itself, in
its own environment, through ``SCHEMATHESIS_HOOKS``; nothing of the project imports it).

``POST /txs/batch`` takes NDJSON: one wire transaction per line. Its document describes
the body as a list of signed transactions; this writes a generated list as those lines
(and any other generated value as text), so the batch route is fuzzed like the rest.
"""

from __future__ import annotations

import json
from typing import Any

import schemathesis


@schemathesis.serializer("application/x-ndjson")
def ndjson(_context: Any, value: Any) -> dict[str, bytes]:
    """One JSON value per line for a list; bytes as they are; anything else as its text."""
    if isinstance(value, bytes):
        return {"data": value}
    if isinstance(value, list):
        text = "\n".join(json.dumps(item, ensure_ascii=False) for item in value)
    else:
        text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    return {"data": text.encode("utf-8", "surrogatepass")}
