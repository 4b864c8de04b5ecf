"""The node API over a real loopback socket: auth, errors, local signing, proofs, events."""

from __future__ import annotations

import asyncio
import io
import json
import random
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from ledger_core.api.core import make_app
from ledger_core.api.openapi import SPEC
from ledger_core.consensus.light import verify_commit
from ledger_core.node.host import Node
from ledger_core.node.local import ActionLog, LocalEvents
from ledger_core.node.storage import open_storage
from ledger_core.state.machine import StateMachine
from ledger_core.types import merkle
from ledger_core.types.block import Header
from ledger_core.types.commitment import Proof, verify_proof
from ledger_core.types.tx import TxType
from ledger_core.types.vote import Commit
from tests.state.chain import CHAIN_ID, Chain, key
from transactiva_client.protocol import API_VERSION

TOKEN = "t" * 64
AUTH = {"Authorization": f"Bearer {TOKEN}"}

CONTRACT = """\
Contract 'concentrador'
Valid from 2026/01/01 00:00:00 to 2027/01/01 00:00:00
Consumption true
Production true
Store false
DemandResponse false
Parties: ISO
"""


class Api:
    def __init__(self, client: TestClient[Any, Any], node: Node, chain: Chain) -> None:
        self.client = client
        self.node = node
        self.chain = chain

    async def get(self, path: str, auth: bool = True) -> tuple[int, Any]:
        response = await self.client.get("/api/v1" + path, headers=AUTH if auth else {})
        return response.status, await response.json()

    async def post(
        self, path: str, body: bytes | dict[str, Any], auth: bool = True
    ) -> tuple[int, Any]:
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        response = await self.client.post("/api/v1" + path, data=data, headers=AUTH if auth else {})
        return response.status, await response.json()

    async def local(self, tx_type: str, **body: Any) -> Any:
        status, result = await self.post(f"/local/{tx_type}?wait=true", body)
        assert status == 200, result
        assert result["code"] == "ok", result
        return result


@pytest.fixture
async def api(tmp_path: Path) -> AsyncIterator[Api]:
    chain = Chain()
    node = Node(
        chain.genesis,
        key("validator"),
        open_storage(tmp_path, chain.genesis),
        app_factory=StateMachine.restore,
    )
    stop = asyncio.Event()
    runner = asyncio.create_task(node.run(stop, block_interval=0.01, empty_block_every=3600))
    log = ActionLog(tmp_path / "local.db")
    app = make_app(node, TOKEN, chain.iso, local_events=LocalEvents(), action_log=log)
    client: TestClient[Any, Any] = TestClient(TestServer(app))
    await client.start_server()
    try:
        yield Api(client, node, chain)
    finally:
        await client.close()
        log.close()
        stop.set()
        node._wake.set()
        await asyncio.wait_for(runner, 5)
        node.close()


async def test_status_is_public(api: Api) -> None:
    status, body = await api.get("/status", auth=False)
    assert status == 200
    assert body["chain_id"] == "transactiva-test-1"
    assert body["api_version"] == API_VERSION
    assert body["participant"] == api.chain.iso.address
    assert body["validator"] == key("validator").address
    assert body["height"] == 0


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/txs"),
        ("POST", "/local/transfer"),
        ("POST", "/contracts/check"),
        ("GET", "/balances/tv" + "0" * 40),
        ("GET", "/contracts/" + "0" * 64),
        ("GET", "/state/total/deposits"),
        ("GET", "/events"),
    ],
)
async def test_writes_and_private_reads_need_the_token(api: Api, method: str, path: str) -> None:
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": f"Basic {TOKEN}"}):
        response = await api.client.request(method, "/api/v1" + path, headers=headers, data=b"{}")
        assert response.status == 401
        assert (await response.json())["error"]["code"] == "unauthorized"


async def test_submission_errors_are_json_and_name_the_field(api: Api) -> None:
    status, body = await api.post("/txs", b"not json")
    assert (status, body["error"]["code"], body["error"]["field"]) == (
        400,
        "malformed",
        "transaction",
    )
    stranger = api.chain.tx(key("stranger"), TxType.DEPOSIT_REQUEST, amount=5)
    status, body = await api.post("/txs", stranger.wire())
    assert (status, body["error"]["code"]) == (422, "unknown_signer")
    status, body = await api.post("/txs", b"x" * 20_000)
    assert (status, body["error"]["code"]) == (413, "too_large")
    status, body = await api.post("/local/transfer", {"to": "no body!", "amount": 5})
    assert (status, body["error"]["field"]) == (400, "body.to")
    # A name (which nobody holds) where the transaction takes an address.
    status, body = await api.post("/local/transfer", {"to": "Nobody", "amount": 5})
    assert (status, body["error"]["code"], body["error"]["field"]) == (
        404,
        "unknown_name",
        "body.to",
    )
    assert "'nobody'" in body["error"]["message"]
    status, body = await api.post("/local/transfer", b"[1,2]")
    assert (status, body["error"]["field"]) == (400, "body")
    status, body = await api.post("/local/transfer", b"{nope")
    assert (status, body["error"]["field"]) == (400, "body")
    status, body = await api.post("/local/mint", {})
    assert status == 404
    status, body = await api.get("/txs/abc")
    assert (status, body["error"]["field"]) == (400, "tx_id")
    status, body = await api.get("/txs/xyz")  # no route has this path: not hex
    assert (status, body["error"]["code"]) == (404, "not_found")
    status, body = await api.get("/participants/bob")
    assert (status, body["error"]["code"], body["error"]["field"]) == (
        404,
        "unknown_name",
        "address",
    )
    status, body = await api.get("/participants/b%C3%B6b")
    assert (status, body["error"]["field"]) == (400, "address")
    status, body = await api.get("/nowhere")
    assert (status, body["error"]["code"]) == (404, "not_found")


async def test_signed_submission_waits_for_commit_with_an_inclusion_proof(api: Api) -> None:
    alice = key("alice")
    tx = api.chain.tx(
        api.chain.iso, TxType.REGISTER, public_key=alice.public_key.hex(), role="prosumer"
    )
    status, body = await api.post("/txs?wait=true", tx.wire())
    assert status == 200
    assert (body["status"], body["code"], body["id"]) == ("committed", "ok", tx.id)
    proof = body["proof"]
    assert merkle.verify(
        tx.wire(), body["index"], proof["size"], [bytes.fromhex(h) for h in proof["path"]],
        bytes.fromhex(proof["txs_root"]),
    )  # fmt: skip
    status, again = await api.get(f"/txs/{tx.id}")
    assert (status, again["height"]) == (200, body["height"])
    assert (await api.get(f"/txs/{tx.id}", auth=False))[0] == 401  # it carries the body
    status, duplicate = await api.post("/txs", tx.wire())
    assert (status, duplicate["error"]["code"]) == (409, "already_committed")
    status, _ = await api.get("/txs/" + "0" * 64)
    assert status == 404
    status, block = await api.get(f"/blocks/{body['height']}")
    assert status == 200
    assert (await api.get(f"/blocks/{body['height']}", auth=False))[0] == 401
    assert block["header"]["txs_root"] == proof["txs_root"]
    # A light client checks the block's commit against the validator set it trusts.
    header = Header.from_json(block["header"])
    verify_commit(
        CHAIN_ID, api.node.app.validator_set(1), header, Commit.from_json(block["commit"])
    )
    status, latest = await api.get("/blocks/latest")
    assert latest["hash"] == api.node.last_hash
    assert (await api.get("/blocks/999"))[0] == 404
    assert (await api.get("/blocks/one"))[0] == 400


async def test_batch_submission_answers_line_by_line(api: Api) -> None:
    chain = api.chain
    txs = [
        chain.tx(chain.iso, TxType.REGISTER, public_key=key(n).public_key.hex(), role="consumer")
        for n in ("a", "b", "c")
    ]
    stranger = chain.tx(key("stranger"), TxType.DEPOSIT_REQUEST, amount=5)
    body = b"\n".join([txs[0].wire(), b"garbage", txs[1].wire(), stranger.wire(), txs[2].wire()])
    status, result = await api.post("/txs/batch?wait=true", body + b"\n")
    assert status == 200
    assert result["accepted"] == 3
    codes = [r["code"] for r in result["results"]]
    assert codes == ["ok", "malformed", "ok", "unknown_signer", "ok"]
    assert result["results"][1]["field"] == "transaction"
    assert result["results"][0]["height"] >= 1
    status, result = await api.post("/txs/batch", b"garbage")
    assert (status, result["accepted"]) == (422, 0)
    assert (await api.post("/txs/batch", b"\n\n"))[0] == 400
    assert (await api.post("/txs/batch", b"x\n" * 1001))[0] == 413
    response = await api.client.post(
        "/api/v1/txs/batch", data=io.BytesIO(b"x" * (5 * 1024 * 1024)), headers=AUTH
    )
    assert response.status == 413


async def test_local_signing_wallet_balances_and_proofs(api: Api) -> None:
    iso = api.chain.iso
    await api.local("register", public_key=key("alice").public_key.hex(), role="prosumer")
    request = await api.local("deposit_request", amount=50_000, reference="spei-1")
    await api.local("deposit_confirm", request=request["id"])
    await api.local("transfer", to=key("alice").address, amount=12_345, memo="prueba")
    status, body = await api.get(f"/balances/{key('alice').address}")
    assert (status, body["balance"], body["held"]) == (200, 12_345, 0)
    proof = Proof.from_json(body["proof"])
    assert verify_proof(proof, bytes.fromhex(body["app_hash"]))
    status, mine = await api.get(f"/balances/{iso.address}")
    assert mine["balance"] == 50_000 - 12_345
    status, participant = await api.get(f"/participants/{key('alice').address}")
    assert (status, participant["role"]) == (200, "prosumer")
    assert (await api.get(f"/participants/{key('alice').address}", auth=False))[0] == 401
    status, state = await api.get("/state/total/deposits")
    assert (status, state["value"]) == (200, 50_000)
    assert (await api.get("/state/nothing/here"))[0] == 404
    assert (await api.get("/balances/tv" + "1" * 40))[0] == 404
    # A refused body comes back as 422 after waiting.
    status, body = await api.post(
        "/local/transfer?wait=true", {"to": key("alice").address, "amount": 10**9}
    )
    assert (status, body["error"]["code"]) == (422, "insufficient_funds")


async def test_contract_receipt(api: Api) -> None:
    proposed = await api.local("contract_propose", source=CONTRACT)
    contract_id = proposed["events"][0]["contract_id"]
    status, body = await api.get(f"/contracts/{contract_id}")
    assert status == 200
    assert body["status"] == "active"
    assert body["receipt"].endswith(f"to 'concentrador' [{body['short_id']}]")
    assert body["receipt"].startswith("Timestamp 20")
    assert (await api.get("/contracts/" + "a" * 64))[0] == 404
    assert (await api.get("/contracts/abc"))[0] == 400  # hex, but not an id
    assert (await api.get("/contracts/zz"))[0] == 404  # not hex: no such route


async def test_contract_check_reports_positions_or_the_canonical_contract(api: Api) -> None:
    messy = CONTRACT.replace("Consumption true", "consumption   TRUE  # always")
    status, body = await api.post("/contracts/check", {"source": messy})
    assert status == 200
    assert body["valid"] is True
    assert body["canonical"] == CONTRACT
    assert body["name"] == "concentrador"
    assert body["short_id"] == "0x" + body["id"][:10].upper()
    proposed = await api.local("contract_propose", source=body["canonical"])
    assert proposed["events"][0]["contract_id"] == body["id"]

    status, body = await api.post(
        "/contracts/check", {"source": CONTRACT.replace("2027/01/01", "2027/02/30")}
    )
    assert status == 200
    assert body["valid"] is False
    assert "id" not in body
    (first,) = body["diagnostics"]
    assert (first["severity"], first["line"], first["column"]) == ("error", 2, 35)
    assert "February 2027 has 28 days" in first["message"]

    for bad in (b"not json", b'["source"]', b'{"source": 7}'):
        status, body = await api.post("/contracts/check", bad)
        assert (status, body["error"]["code"]) == (400, "malformed")
    # Checking stores nothing: the one contract is the one proposed above.
    assert sum(1 for key in api.node.app.state if key.startswith("contract/")) == 1


PAPER = """\
Contract 'prueba'
Valid from 2026/01/01 00:00:00 to 2036/12/31 23:59:59
Consumption true
Production true and sell
Store false
DemandResponse false
IF Price < 3 THEN
  TURN ON DEVICE 'Lavadora'
ENDIF
Parties: ISO
"""
PAPER_DR = PAPER.replace("'prueba'", "'prueba dr'").replace(
    "DemandResponse false", "DemandResponse true shed 'Lavadora'"
)


async def test_contract_check_warns_where_it_contradicts_the_homes_active_contracts(
    api: Api,
) -> None:
    # Nothing active yet: no warning.
    status, body = await api.post("/contracts/check", {"source": PAPER_DR})
    assert (status, body["diagnostics"]) == (200, [])
    proposed = await api.local("contract_propose", source=PAPER)
    paper_id = proposed["events"][0]["contract_id"]
    # The node's participant has the paper's contract active: checking the DR variant warns
    # at its DemandResponse line and names the paper's TURN ON.
    status, body = await api.post("/contracts/check", {"source": PAPER_DR})
    assert status == 200
    assert body["valid"] is True
    (warning,) = body["diagnostics"]
    paper_short = (await api.get(f"/contracts/{paper_id}"))[1]["short_id"]
    assert warning == {
        "severity": "warning",
        "line": 6,
        "column": 1,
        "message": "demand response sheds 'Lavadora', which TURN ON DEVICE 'Lavadora' at "
        f"'prueba' [{paper_short}]:8:3 turns on: during an event that TURN ON is suppressed "
        "(e.g. when Price 2 MXN/kWh, DRLevel 1)",
        "expected": None,
        "hint": "the device stays off until the event ends, then goes back to how it was",
        "kind": "sheds",
        "contract_id": paper_id,
        "short_id": paper_short,
        "contract": "prueba",
        "other_line": 8,
        "other_column": 3,
    }
    # The contract itself is not compared with itself.
    status, body = await api.post("/contracts/check", {"source": PAPER})
    assert body["diagnostics"] == []
    # Active contracts given in the request replace the ledger's.
    status, body = await api.post("/contracts/check", {"source": PAPER_DR, "active": []})
    assert body["diagnostics"] == []
    status, body = await api.post("/contracts/check", {"source": PAPER, "active": [PAPER_DR]})
    assert [d["kind"] for d in body["diagnostics"]] == ["held_by_dr"]
    for bad in ("x", ["Contract 'x'\n"], [7]):
        status, body = await api.post("/contracts/check", {"source": PAPER, "active": bad})
        assert (status, body["error"]["field"]) == (400, "active")


async def test_event_stream_replays_and_resumes(api: Api) -> None:
    await api.local("register", public_key=key("alice").public_key.hex(), role="prosumer")
    socket = await api.client.ws_connect("/api/v1/events?from_height=1", headers=AUTH)
    first = await asyncio.wait_for(socket.receive_json(), 5)
    assert first["event"]["type"] == "participant_registered"
    assert first["height"] == 1
    block = await asyncio.wait_for(socket.receive_json(), 5)
    assert block["event"]["type"] == "new_block"
    assert block["event"]["hash"] == (await api.get("/blocks/1"))[1]["hash"]
    await api.local("register", public_key=key("bob").public_key.hex(), role="consumer")
    live = await asyncio.wait_for(socket.receive_json(), 5)
    assert live["event"]["address"] == key("bob").address
    await socket.close()

    resumed = await api.client.ws_connect(f"/api/v1/events?after={block['seq']}", headers=AUTH)
    again = await asyncio.wait_for(resumed.receive_json(), 5)
    assert again == live
    await resumed.close()
    bad = await api.client.get("/api/v1/events?after=x", headers=AUTH)
    assert bad.status == 400


async def test_reports_prices_and_dr_events(api: Api) -> None:
    chain = api.chain
    alice = key("alice")
    meter = key("meter-alice")
    await api.local("register", public_key=alice.public_key.hex(), role="prosumer")
    await api.local(
        "bind_meter", meter_public_key=meter.public_key.hex(), participant=alice.address
    )
    node_time = api.node.app.last_block_time
    interval = chain.genesis.params.interval_seconds
    closed = node_time // interval * interval - interval
    for start in (closed - interval, closed):
        tx = chain.report(meter, start, 100, 7)
        assert (await api.post("/txs?wait=true", tx.wire()))[0] == 200
    status, body = await api.get(f"/reports/{meter.address}?from={closed}")
    assert status == 200
    # A node that is neither the home nor the concentrator holds the commitment only.
    assert body["reports"] == [
        {
            "interval_start": closed,
            "on_chain": True,
            "commitment": chain.openings[meter.address, closed].commitment(CHAIN_ID),
            "height": body["reports"][0]["height"],
            "held": False,
        }
    ]
    status, body = await api.get(f"/reports/{meter.address}")
    assert [r["interval_start"] for r in body["reports"]] == [closed - interval, closed]
    assert (await api.get(f"/reports/{meter.address}?from=x"))[0] == 400
    assert (await api.get(f"/reports/{meter.address}", auth=False))[0] == 401

    upcoming = closed + 2 * interval
    await api.local(
        "price_signal",
        interval_start=upcoming,
        import_price=25_000,
        export_price=9_000,
        network_fee=2_000,
    )
    status, body = await api.get(f"/signals/prices?from={upcoming}&to={upcoming + 1}", auth=False)
    assert status == 200
    assert body["prices"][0]["import_price"] == 25_000
    await api.local(
        "dr_event", event_id="dr-1", modification_number=0, signal={"name": "SIMPLE", "level": 2},
        start=node_time + 600, duration=3600, targets=[], cancelled=False,
    )  # fmt: skip
    status, body = await api.get("/signals/dr/dr-1", auth=False)
    assert (status, body["signal"]["level"]) == (200, 2)
    assert (await api.get("/signals/dr/none", auth=False))[0] == 404

    # Any node checks a proof of the readings against the commitments it holds.
    opened = chain.openings[meter.address, closed]
    proof = {"chain_id": CHAIN_ID, "openings": [opened.to_json()]}
    forged = {**opened.to_json(), "import_wh": 99}
    status, body = await api.post("/proofs/check", proof)
    assert (status, body["valid"], body["agrees"], body["statements"]) == (200, 1, True, [])
    stranger = {**opened.to_json(), "interval_start": closed - 5 * interval}
    status, body = await api.post(
        "/proofs/check", {"chain_id": CHAIN_ID, "openings": [forged, stranger]}
    )
    assert [(r["valid"], r.get("reason")) for r in body["openings"]] == [
        (False, "mismatch"),
        (False, "no_report"),
    ]
    assert body["agrees"] is False
    for bad, code, field in (
        ({**proof, "chain_id": "another-chain"}, 422, "chain_id"),
        ({**proof, "openings": [{**opened.to_json(), "salt": "00"}]}, 400, "openings[0].salt"),
        ({"chain_id": CHAIN_ID}, 400, "openings"),
    ):
        status, body = await api.post("/proofs/check", bad)
        assert (status, body["error"]["field"]) == (code, field)
    assert (await api.post("/proofs/check", proof, auth=False))[0] == 401


async def test_openapi_lists_every_route(api: Api) -> None:
    status, spec = await api.get("/openapi.json", auth=False)
    assert status == 200
    assert {k: v for k, v in spec.items() if k != "paths"} == json.loads(
        json.dumps({k: v for k, v in SPEC.items() if k != "paths"})
    )
    app = api.client.app
    assert app is not None
    routes = {
        route.resource.canonical.removeprefix("/api/v1")
        for route in app.router.routes()
        if route.resource is not None and route.method != "HEAD"
    }
    assert routes == set(spec["paths"])


async def test_random_inputs_never_crash_the_node(api: Api) -> None:
    valid = api.chain.tx(api.chain.iso, TxType.DEPOSIT_REQUEST, amount=5).wire()
    rng = random.Random(1234)  # noqa: S311 - reproducible fuzzing, not cryptography
    pieces = [b"{", b"}", b'"', b":", b",", b"[", b"]", b"1", b"-", b"\\u0000", b"\xff", b"null"]
    for _ in range(300):
        data = bytearray(valid)
        for _ in range(rng.randint(1, 4)):
            at = rng.randrange(len(data) + 1)
            data[at : at + rng.randint(0, 3)] = rng.choice(pieces)
        status, body = await api.post("/txs", bytes(data))
        assert status < 500, body
        assert ("error" in body) == (status >= 400)
        local = {
            "to": rng.choice([None, 1, "x", key("x").address]),
            "amount": rng.choice([0, -1, "5", 2**70, 5]),
        }
        status, body = await api.post("/local/transfer", local)
        assert status < 500, body
    assert (await api.get("/status", auth=False))[0] == 200


async def test_several_balances_at_one_height(api: Api) -> None:
    iso = api.chain.iso.address
    status, body = await api.get(f"/balances?address={iso}&address={iso}")
    assert status == 200
    assert body["height"] == api.node.height
    assert [row["address"] for row in body["balances"]] == [iso, iso]
    assert set(body["balances"][0]) == {"address", "balance", "held", "debt"}
    status, body = await api.get("/balances")
    assert (status, body["error"]["field"]) == (400, "address")
    status, body = await api.get(f"/balances?address={iso}&address=no%20pe")
    assert (status, body["error"]["field"]) == (400, "address[1]")
    status, body = await api.get(f"/balances?address={iso}&address=nope")
    assert (status, body["error"]["code"], body["error"]["field"]) == (
        404,
        "unknown_name",
        "address[1]",
    )
    status, body = await api.get(f"/balances?address=tv{'0' * 40}")
    assert status == 404
    status, _ = await api.get(f"/balances?address={iso}", auth=False)
    assert status == 401
    many = "&".join("address=x" for _ in range(201))
    status, body = await api.get(f"/balances?{many}")
    assert (status, body["error"]["message"]) == (400, "at most 200 addresses")


async def test_inputs_that_used_to_crash_the_node_are_4xx(api: Api) -> None:
    """The cases of issue 17 in process (tests/api/test_edge.py has them on a real node)."""
    assert (await api.get("/blocks/9223372036854775808"))[0] == 404
    assert (await api.get("/blocks/" + "7" * 5000))[0] == 404
    status, body = await api.post("/local/actions/99999999999999999999/result", {"result": "ok"})
    assert (status, body["error"]["code"]) == (404, "not_found")
    status, body = await api.post("/local/actions/%C2%B2/result", {"result": "ok"})
    assert (status, body["error"]["field"]) == (400, "action_id")
    status, body = await api.get("/local/actions?since=%C2%B2")
    assert (status, body["error"]["field"]) == (400, "since")
    status, body = await api.get("/local/actions?limit=" + "9" * 50)
    assert (status, body["error"]["field"]) == (400, "limit")
    memo = b'{"to": "tv' + b"1" * 40 + b'", "amount": 1, "memo": "\\ud800"}'
    status, body = await api.post("/local/transfer", memo)
    assert (status, body["error"]["field"]) == (400, "body.memo")
    status, body = await api.post("/local/transfer", b'{"\\udc00": 1}')
    assert (status, body["error"]["field"]) == (400, "body")
    status, body = await api.post(
        "/contracts/check", b'{"source": ' + b"[" * 16_000 + b"]" * 16_000 + b"}"
    )
    assert (status, body["error"]["field"]) == (400, "body")
    status, body = await api.post("/local/deposit_request", b'{"amount": NaN}')
    assert (status, body["error"]["code"]) == (400, "malformed")
    status, body = await api.post("/contracts/check", {"source": "", "active": None})
    assert (status, body["error"]["field"]) == (400, "active")
    status, body = await api.post("/contracts/check", {"source": "", "sourse": ""})
    assert (status, body["error"]["field"]) == (400, "sourse")
    response = await api.client.delete("/api/v1/status")
    assert response.status == 405
    assert response.headers["Allow"] == "GET,HEAD"
    response = await api.client.get("/api/v1/events", headers=AUTH)  # not a WebSocket
    assert (response.status, (await response.json())["error"]["code"]) == (400, "malformed")
