"""The API's edge against a real node process on loopback: the inputs that used to crash it,
405 with ``Allow``, which routes need the token (and that docs/api.md says the same), and
WebSocket tickets that open one stream once and nothing else."""

from __future__ import annotations

import re
from typing import Any

import aiohttp
import pytest

from tests.api.node import REPO, NodeProcess

DOCS = REPO / "docs" / "api.md"


def _error(status: int, body: Any) -> tuple[int, str]:
    assert isinstance(body, dict), body
    assert isinstance(body.get("error"), dict), body
    assert isinstance(body["error"]["message"], str)
    assert body["error"]["message"]
    return status, body["error"]["code"]


async def test_what_used_to_crash_the_node_is_a_4xx_json_error(node: NodeProcess) -> None:
    huge = "/blocks/9223372036854775808"
    status, body, _ = await node.request("GET", huge, auth=False)
    assert _error(status, body) == (401, "unauthorized")  # a block's body is private
    status, body, _ = await node.request("GET", huge)
    assert _error(status, body) == (404, "not_found")
    status, body, _ = await node.request("GET", "/blocks/" + "9" * 5000)
    assert _error(status, body) == (404, "not_found")
    status, body, _ = await node.request(
        "POST", "/local/actions/99999999999999999999/result", json={"result": "ok"}
    )
    assert _error(status, body) == (404, "not_found")
    status, body, _ = await node.request("POST", "/local/actions/%C2%B2/result", json={})
    assert _error(status, body) == (400, "malformed")  # a Unicode digit is not a number
    status, body, _ = await node.request("GET", "/local/actions?limit=%C2%B2")
    assert _error(status, body) == (400, "malformed")
    memo = b'{"to": "tv' + b"0" * 40 + b'", "amount": 1, "memo": "\\ud800"}'
    status, body, _ = await node.request("POST", "/local/transfer", data=memo)
    assert _error(status, body) == (400, "malformed")
    assert body["error"]["field"] == "body.memo"
    nested = b'{"source": ' + b"[" * 16_000 + b"]" * 16_000 + b"}"
    assert 32_000 <= len(nested) <= 32 * 1024
    status, body, _ = await node.request("POST", "/contracts/check", data=nested)
    assert _error(status, body) == (400, "malformed")
    assert "nested too deeply" in body["error"]["message"]
    status, body, _ = await node.request("POST", "/operator/dr", data=b'{"targets": ["\\udfff"]}')
    assert _error(status, body) == (400, "malformed")
    status, body, _ = await node.request("POST", "/local/deposit_request", data=b'{"amount": NaN}')
    assert _error(status, body) == (400, "malformed")
    assert node.errors_logged() == []


async def test_a_405_says_which_methods_the_path_has(node: NodeProcess) -> None:
    for method, path, allowed in (
        ("DELETE", "/status", "GET,HEAD"),
        ("GET", "/txs/batch", "POST"),
        ("GET", "/contracts/check", "POST"),
        ("POST", "/local/actions", "GET,HEAD"),
        ("PUT", "/web/ticket", "POST"),
    ):
        status, body, headers = await node.request(method, path)
        assert _error(status, body) == (405, "method_not_allowed"), (method, path)
        assert headers.get("Allow") == allowed, (method, path, headers)
        assert method in body["error"]["message"]


def _documented_access() -> dict[str, str]:
    """docs/api.md's access table: ``METHOD /path`` -> public, token or stream."""
    rows = re.findall(
        r"^\| `(GET|POST) (/[^`]*)` \| (public|token|stream) \|", DOCS.read_text(), re.M
    )
    return {f"{method} {path}": access for method, path, access in rows}


_SAMPLE: dict[str, str] = {
    "height": "1",
    "tx_id": "0" * 64,
    "contract_id": "0" * 64,
    "address": "tv" + "0" * 40,
    "event_id": "pico-1",
    "key": "total/deposits",
    "action_id": "1",
    "tx_type": "transfer",
    "name": "casa-1",
    "invitation_id": "0" * 64,
    "who": "casa-1",
}


async def test_every_route_needs_the_token_but_the_public_ones_in_the_docs_table(
    node: NodeProcess,
) -> None:
    status, spec, _ = await node.request("GET", "/openapi.json", auth=False)
    assert status == 200
    documented = _documented_access()
    seen = {}
    async with aiohttp.ClientSession() as session:
        for path, methods in spec["paths"].items():
            url = node.url + re.sub(r"\{(\w+)\}", lambda m: _SAMPLE[m.group(1)], path)
            for method, operation in methods.items():
                name = f"{method.upper()} {path}"
                assert name in documented, f"{name} is not in docs/api.md's access table"
                async with session.request(method.upper(), url, data=b"{}") as response:
                    status = response.status
                    body = await response.json(content_type=None)
                private = "security" in operation
                assert (status == 401) is private, (name, status)
                if private:
                    assert body["error"]["code"] == "unauthorized"
                seen[name] = "public" if not private else documented[name]
                assert (documented[name] == "public") is (not private), name
    public = sorted(name for name, access in seen.items() if access == "public")
    # POST /readings: a concentrator's node takes the meters' shared readings, which a
    # meter's signature authenticates (a meter holds no token); it answers about no one.
    assert public == [
        "GET /market/intervals",
        "GET /openapi.json",
        "GET /signals/dr/{event_id}",
        "GET /signals/prices",
        "GET /status",
        "POST /readings",
    ]
    streams = sorted(name for name, access in seen.items() if access == "stream")
    assert streams == ["GET /events", "GET /local/events", "GET /local/meter/stream"]
    # The status is public; its peers' addresses are not.
    status, body, _ = await node.request("GET", "/status", auth=False)
    assert status == 200
    assert body["peers"]["list"] is None


async def _ticket(node: NodeProcess, path: str) -> str:
    status, body, _ = await node.request("POST", "/web/ticket", json={"path": path})
    assert status == 200, body
    assert body["path"] == path
    assert 0 < body["expires_in"] <= 60
    ticket: str = body["ticket"]
    return ticket


async def _opens(node: NodeProcess, path: str, ticket: str) -> int:
    """101 when a WebSocket on ``path`` opens with ``ticket`` (and no token), else the
    handshake's status."""
    base = node.url.removesuffix("/api/v1")
    async with aiohttp.ClientSession() as session:
        try:
            async with session.ws_connect(f"{base}{path}", params={"ticket": ticket}):
                return 101
        except aiohttp.WSServerHandshakeError as refused:
            return refused.status


async def test_a_ticket_opens_its_one_stream_once_and_nothing_else(node: NodeProcess) -> None:
    events, local = "/api/v1/events", "/api/v1/local/events"
    ticket = await _ticket(node, events)
    assert await _opens(node, events, ticket) == 101
    assert await _opens(node, events, ticket) == 401  # used up
    # Bound to its route: on another stream it is refused, and used up by trying.
    ticket = await _ticket(node, events)
    assert await _opens(node, local, ticket) == 401
    assert await _opens(node, events, ticket) == 401
    ticket = await _ticket(node, local)
    assert await _opens(node, local, ticket) == 101
    # Never a token: not as a query of another route, not as a bearer, not for more tickets.
    ticket = await _ticket(node, events)
    for method, path, kwargs in (
        ("GET", f"/web/summary?ticket={ticket}", {}),
        ("GET", f"/blocks/1?ticket={ticket}", {}),
        ("POST", f"/local/deposit_request?ticket={ticket}", {"json": {"amount": 1}}),
        ("POST", f"/web/ticket?ticket={ticket}", {"json": {"path": events}}),
        ("GET", "/web/summary", {"headers": {"Authorization": f"Bearer {ticket}"}}),
    ):
        status, body, _ = await node.request(method, path, auth=False, **kwargs)
        assert _error(status, body) == (401, "unauthorized"), (method, path)
    assert await _opens(node, events, ticket) == 401  # shown elsewhere: used up
    # A ticket is asked for one stream route by its path.
    for asked in ({}, {"path": "/api/v1/status"}, {"path": "/events"}, {"path": events, "x": 1}):
        status, body, _ = await node.request("POST", "/web/ticket", json=asked)
        assert _error(status, body) == (400, "malformed"), asked


@pytest.mark.parametrize("path", ["/api/v1/events", "/api/v1/local/meter/stream"])
async def test_a_stream_opened_as_a_plain_request_is_refused_with_json(
    node: NodeProcess, path: str
) -> None:
    status, body, _ = await node.request("GET", path.removeprefix("/api/v1"))
    assert _error(status, body) == (400, "malformed")
    assert "WebSocket" in body["error"]["message"]


async def test_the_document_says_what_every_operation_answers(node: NodeProcess) -> None:
    """No bare objects, no catch-all: each operation lists its statuses with their bodies,
    the 401 of a route that needs the token, and the 400 and 413 of one that reads a body."""
    status, spec, _ = await node.request("GET", "/openapi.json", auth=False)
    assert status == 200
    schemas = spec["components"]["schemas"]
    for path, methods in spec["paths"].items():
        for method, operation in methods.items():
            name = f"{method.upper()} {path}"
            responses = operation["responses"]
            assert "default" not in responses, name
            successes = [code for code in responses if code.startswith("2") or code == "101"]
            assert successes, name
            for code in successes:
                if code == "101":
                    assert operation["responses"]["101"]["x-message"]["properties"], name
                    continue
                schema = responses[code]["content"]["application/json"]["schema"]
                while "$ref" in schema:
                    schema = schemas[schema["$ref"].rsplit("/", 1)[1]]
                assert schema.get("properties") or schema.get("oneOf"), f"{name} {code}: bare"
            for code, response in responses.items():
                if code.startswith(("4", "5")):
                    refusal = response["content"]["application/json"]["schema"]
                    # The Error body; POST /txs/batch's 422 is its per-line results.
                    assert refusal == {"$ref": "#/components/schemas/Error"} or (
                        name == "POST /txs/batch" and code == "422"
                    ), (name, code)
            if "security" in operation:
                assert "401" in responses, name
            if "requestBody" in operation:
                assert {"400", "413"} <= set(responses), name
