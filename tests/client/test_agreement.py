"""The node and the wire contract agree: every code and event kind in the node's source is a
member of the contract's enumerations, and every member is something the node produces.

The node's source is read, not imported (``ast`` over every ``ledger_core/**/*.py``), so
the proof holds wherever the node's modules move. What is scanned:

- error codes: the first snake_case string argument of every call to the API's ``error``,
  the rules' ``Rejected`` (and the market's ``_reject``), the operator routes' ``DrError``
  and ``_Bad``, and the mempool's ``Submitted``, and every ``{"error": {"code": ...}}``;
- event kinds: every string ``"type"`` of a dict literal that is not one of the few other
  things the node calls a type (below);
- transaction types and action kinds: the members of the node's ``TxType`` and the
  contract language's ``ActionKind`` (by their class definitions).

A few event kinds are built from a variable (``f"{kind}_requested"``, the service event),
so they cannot appear as literals: ``tests/client/test_node.py`` receives them from a
real node.
"""

from __future__ import annotations

import ast
import functools
import re
from enum import StrEnum
from pathlib import Path
from typing import Final

from transactiva_client.protocol import (
    ActionKind,
    ActionResult,
    ActionTrigger,
    ErrorCode,
    EventKind,
    LocalEventKind,
    TxType,
    WalletReason,
)

REPO: Final = Path(__file__).resolve().parents[2]
NODE: Final = REPO / "ledger_core"
SNAKE: Final = re.compile(r"[a-z][a-z0-9]*(_[a-z0-9]+)*")
CODE_CALLS: Final = frozenset({"error", "Rejected", "_reject", "DrError", "_Bad", "Submitted"})

# Codes those calls pass that are not answers of the node's API, and why.
NOT_API_CODES: Final = {
    "accepted": "the mempool's success, answered as 202 pending, not an error",
    "not_websocket": "the P2P listener's answer to plain HTTP, not the API's",
    "partitioned": "the test fault proxy (p2p/faultproxy.py), not the node",
    "unreachable": "the test fault proxy, not the node",
    "gone": "the test fault proxy, not the node",
}
# Error codes the node names at run time, never as a literal.
DERIVED_CODES: Final = {
    ErrorCode.METHOD_NOT_ALLOWED: "aiohttp's 405, named by the error middleware",
    ErrorCode.CONTENT_TOO_LARGE: "aiohttp's 413 (client_max_size), named by the middleware",
}
# String "type"s of dict literals that are not events, and why.
NOT_EVENT_TYPES: Final = {
    "hello": "a P2P handshake message",
    "auth": "a P2P handshake message",
    "refuse": "a P2P handshake message",
    "pushed": "a meter source's configuration",
    "smartpi": "a meter source's configuration",
    "mqtt": "a meter source's configuration",
    "object": "an OpenAPI schema",
    "string": "an OpenAPI schema",
    "integer": "an OpenAPI schema",
    "array": "an OpenAPI schema",
    "boolean": "an OpenAPI schema",
    "number": "an OpenAPI schema",
    "null": "an OpenAPI schema",
    "http": "an OpenAPI security scheme",
}
# Event kinds built from a variable, received from a real node in test_node.py instead.
BUILT_KINDS: Final = {
    EventKind.DEPOSIT_REQUESTED: 'f"{kind}_requested" in the wallet handler',
    EventKind.WITHDRAWAL_REQUESTED: 'f"{kind}_requested" in the wallet handler',
}


@functools.cache
def _trees(root: Path) -> tuple[tuple[Path, ast.Module], ...]:
    paths = sorted(root.rglob("*.py"))
    assert len(paths) > 5, f"the source is not where this test looks ({root})"
    return tuple((path, ast.parse(path.read_text(encoding="utf-8"), str(path))) for path in paths)


def _name(call: ast.Call) -> str | None:
    if isinstance(call.func, ast.Name):
        return call.func.id
    if isinstance(call.func, ast.Attribute):
        return call.func.attr
    return None


def _codes() -> dict[str, set[str]]:
    """Every error code in the node's source, with where it is."""
    found: dict[str, set[str]] = {}
    for path, tree in _trees(NODE):
        where = str(path.relative_to(REPO))
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and _name(node) in CODE_CALLS:
                for arg in node.args[:3]:
                    if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                        if SNAKE.fullmatch(arg.value):
                            found.setdefault(arg.value, set()).add(f"{where}:{node.lineno}")
                        break
            elif isinstance(node, ast.Dict):
                body = _entry(node, "error")
                code = _entry(body, "code") if isinstance(body, ast.Dict) else None
                if isinstance(code, ast.Constant) and isinstance(code.value, str):
                    found.setdefault(code.value, set()).add(f"{where}:{node.lineno}")
    return found


def _entry(node: ast.Dict, key: str) -> ast.expr | None:
    for k, v in zip(node.keys, node.values, strict=True):
        if isinstance(k, ast.Constant) and k.value == key:
            return v
    return None


def _types() -> dict[str, set[str]]:
    """Every string ``"type"`` of a dict literal in the node's source, with where it is."""
    found: dict[str, set[str]] = {}
    for path, tree in _trees(NODE):
        for node in ast.walk(tree):
            if isinstance(node, ast.Dict):
                value = _entry(node, "type")
                if isinstance(value, ast.Constant) and isinstance(value.value, str):
                    found.setdefault(value.value, set()).add(
                        f"{path.relative_to(REPO)}:{node.lineno}"
                    )
    return found


@functools.cache
def _strings() -> frozenset[str]:
    """Every string constant of the node's source."""
    return frozenset(
        node.value
        for _, tree in _trees(NODE)
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant) and isinstance(node.value, str)
    )


def _members(class_name: str, root: Path) -> set[str]:
    """The string values assigned in a class named ``class_name`` under ``root``."""
    for _, tree in _trees(root):
        for node in ast.walk(tree):
            if isinstance(node, ast.ClassDef) and node.name == class_name:
                return {
                    statement.value.value
                    for statement in node.body
                    if isinstance(statement, ast.Assign)
                    and isinstance(statement.value, ast.Constant)
                    and isinstance(statement.value.value, str)
                }
    raise AssertionError(f"no class {class_name} under {root}")


def _values(enum: type[StrEnum]) -> set[str]:
    return {member.value for member in enum}


def test_every_error_code_the_node_answers_is_an_error_code() -> None:
    codes = _codes()
    unknown = {
        code: sorted(where)
        for code, where in codes.items()
        if code not in _values(ErrorCode) and code not in NOT_API_CODES
    }
    assert not unknown, f"add these to ErrorCode (client/transactiva_client): {unknown}"
    # The exceptions are still real: a stale one would hide a code.
    assert set(NOT_API_CODES) <= set(codes)


def test_every_error_code_is_one_the_node_answers() -> None:
    strings = _strings()
    stale = _values(ErrorCode) - strings - {str(code) for code in DERIVED_CODES}
    assert not stale, f"ErrorCode members the node never uses: {sorted(stale)}"
    reasons = {str(http).replace("_", " ") for http in DERIVED_CODES}
    assert reasons == {"method not allowed", "content too large"}


def test_every_refusal_of_the_rules_is_an_error_code() -> None:
    """The rules' codes on their own (``raise Rejected(code, message)`` in the state
    machine), so that another way of refusing is noticed."""
    found = set()
    for _, tree in _trees(NODE):
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and _name(node) == "Rejected" and len(node.args) >= 2:
                first = node.args[0]
                if isinstance(first, ast.Constant) and isinstance(first.value, str):
                    found.add(first.value)
    assert len(found) >= 40, "Rejected is no longer how the rules refuse"
    assert found <= _values(ErrorCode), sorted(found - _values(ErrorCode))


def test_every_event_type_in_the_node_is_an_event_kind() -> None:
    types = _types()
    kinds = _values(EventKind) | _values(LocalEventKind)
    unknown = {
        kind: sorted(where)
        for kind, where in types.items()
        if kind not in kinds and kind not in NOT_EVENT_TYPES
    }
    assert not unknown, f"add these to EventKind or LocalEventKind: {unknown}"
    assert {"hello", "pushed", "object"} <= set(types), "the exceptions no longer apply"


def test_every_event_kind_is_one_the_node_emits() -> None:
    strings = _strings()
    literal_types = set(_types())
    for kind in (*EventKind, *LocalEventKind):
        if kind in BUILT_KINDS:
            prefix = kind.value.removesuffix("_requested")
            assert prefix in strings, kind
            continue
        # A "type" literal, or a value the node picks from (service_cut and its pair).
        assert kind.value in literal_types or kind.value in strings, kind


def test_transaction_types_and_action_kinds_are_the_nodes() -> None:
    assert _members("TxType", NODE) == _values(TxType)
    assert _members("ActionKind", REPO / "contracts") == _values(ActionKind)
    assert _members("Event", REPO / "contracts") | {"day_ahead"} == _values(ActionTrigger)
    assert "day_ahead" in _strings()


def test_results_and_wallet_reasons_are_the_nodes() -> None:
    strings = _strings()
    assert _values(ActionResult) <= strings
    assert _values(WalletReason) <= strings
