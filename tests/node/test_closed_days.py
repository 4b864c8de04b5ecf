"""A node whose closed days leave the live state: its SQLite state table and the state it
loads at start-up lose them, its history keeps them, and the API still serves them, each
with a proof against the current app hash; a node restarted on the same folder does the
same."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from ledger_core.api.core import make_app
from ledger_core.node.host import Node
from ledger_core.node.local import ActionLog, LocalEvents
from ledger_core.node.storage import open_storage
from ledger_core.state import keys
from ledger_core.state.machine import StateMachine
from ledger_core.types import codec
from ledger_core.types.commitment import HistoryProof, verify_history_proof
from ledger_core.types.crypto import SigningKey
from ledger_core.types.tx import TxType
from tests.state.chain import START, Chain, key

TOKEN = "h" * 64
AUTH = {"Authorization": f"Bearer {TOKEN}"}
INTERVAL = 900
DAY = START - 12 * 3600  # the local midnight of START's day (UTC-6)
INTERVALS = (DAY + 8 * 3600, DAY + 8 * 3600 + INTERVAL, DAY + 20 * 3600)


class Neighbourhood:
    """A node on a folder with a clock the test moves; two homes with a meter each."""

    def __init__(self, folder: Path) -> None:
        self.chain = Chain()
        self.folder = folder
        self.now = float(START)
        self.node = self.open()
        self.meters: list[SigningKey] = []

    def open(self) -> Node:
        return Node(
            self.chain.genesis,
            key("validator"),
            open_storage(self.folder, self.chain.genesis),
            clock=lambda: self.now,
            app_factory=StateMachine.restore,
        )

    def commit(self, *txs: bytes) -> None:
        for wire in txs:
            submitted = self.node.submit(wire)
            assert submitted.accepted, submitted
        self.node.produce_block()

    def homes(self) -> None:
        txs = []
        for name in ("ana", "beto"):
            person, meter = key(name), key(f"meter-{name}")
            txs.append(
                self.chain.tx(
                    self.chain.iso,
                    TxType.REGISTER,
                    public_key=person.public_key.hex(),
                    role="prosumer",
                ).wire()
            )
            txs.append(
                self.chain.tx(
                    self.chain.iso,
                    TxType.BIND_METER,
                    meter_public_key=meter.public_key.hex(),
                    participant=person.address,
                ).wire()
            )
            self.meters.append(meter)
        self.commit(*txs)

    def report_the_day(self) -> set[str]:
        """Each meter reports each of :data:`INTERVALS`; their keys."""
        self.now = INTERVALS[-1] + INTERVAL + 1
        self.node.produce_block()  # the mempool checks reports at the last block's time
        self.commit(
            *(
                self.chain.report(meter, start, 100 + i, 7).wire()
                for i, start in enumerate(INTERVALS)
                for meter in self.meters
            )
        )
        return {keys.report(m.address, t) for m in self.meters for t in INTERVALS}

    def close_the_day(self) -> None:
        self.now = self.chain.genesis.params.day_closes(DAY)
        self.node.produce_block()


@pytest.fixture
def hood(tmp_path: Path) -> Neighbourhood:
    found = Neighbourhood(tmp_path)
    found.homes()
    return found


def stored_state_keys(folder: Path) -> set[str]:
    storage = open_storage(folder, Chain().genesis)
    try:
        return set(storage.load_state())
    finally:
        storage.close()


def test_a_closed_day_leaves_the_stored_state_and_a_restarted_node_still_serves_it(
    hood: Neighbourhood,
) -> None:
    reported = hood.report_the_day()
    assert reported <= stored_state_keys(hood.folder)
    before = {k: hood.node.committed.get(k) for k in reported}
    listed = hood.node.committed.range(keys.reports(hood.meters[0].address), "", "~", 100)

    hood.close_the_day()
    assert hood.node.storage.history_count() == len(reported)
    assert reported.isdisjoint(stored_state_keys(hood.folder))
    assert all(hood.node.app.get(k) is None for k in reported)
    assert {k: hood.node.committed.get(k) for k in reported} == before
    prefix = keys.reports(hood.meters[0].address)
    assert hood.node.committed.range(prefix, "", "~", 100) == listed

    app_hash, height = hood.node.app.app_hash, hood.node.height
    hood.node.close()
    hood.node = hood.open()
    assert (hood.node.height, hood.node.app.app_hash) == (height, app_hash)
    assert all(hood.node.app.get(k) is None for k in reported)
    assert {k: hood.node.committed.get(k) for k in reported} == before
    # The day's reports are no longer accepted (past the grace) and the chain goes on.
    late = hood.chain.report(hood.meters[0], INTERVALS[0], 1, 1).wire()
    assert hood.node.submit(late).code == "late_report"
    hood.now += 60
    hood.node.produce_block()
    hood.node.close()


@pytest.fixture
async def client(hood: Neighbourhood, tmp_path: Path) -> AsyncIterator[TestClient[Any, Any]]:
    log = ActionLog(tmp_path / "local.db")
    app = make_app(hood.node, TOKEN, hood.chain.iso, local_events=LocalEvents(), action_log=log)
    found: TestClient[Any, Any] = TestClient(TestServer(app))
    await found.start_server()
    try:
        yield found
    finally:
        await found.close()
        log.close()
        hood.node.close()


async def test_the_api_serves_a_retired_record_with_a_proof_against_the_app_hash(
    hood: Neighbourhood, client: TestClient[Any, Any]
) -> None:
    reported = hood.report_the_day()
    meter = hood.meters[1].address
    reports_path = f"/api/v1/reports/{meter}?from={DAY}&to={DAY + 86400}"
    before = await (await client.get(reports_path, headers=AUTH)).json()
    assert len(before["reports"]) == len(INTERVALS)
    one = keys.report(meter, INTERVALS[1])
    live = await (await client.get(f"/api/v1/state/{one}", headers=AUTH)).json()
    assert (live["retired"], live["history_proof"]) == (False, None)

    hood.close_the_day()
    closing_height = hood.node.height
    # A later block: the proof holds against any later app hash.
    hood.now += 60
    hood.node.produce_block()
    for key_ in sorted(reported):
        response = await client.get(f"/api/v1/state/{key_}", headers=AUTH)
        assert response.status == 200
        body = await response.json()
        assert (body["retired"], body["proof"]) == (True, None)
        if key_ == live["key"]:
            assert body["value"] == live["value"]
        proof = HistoryProof.from_json(body["history_proof"])
        assert proof.height == closing_height
        root = bytes.fromhex(body["app_hash"])
        assert root == hood.node.app.app_hash
        assert verify_history_proof(proof, root, keys.retired(proof.height))
        assert proof.to_json() == body["history_proof"]
        forged = dataclasses.replace(proof, value={**_dict(proof.value), "billed": 1})
        assert not verify_history_proof(forged, root, keys.retired(proof.height))
        assert not verify_history_proof(proof, root, keys.retired(proof.height + 1))
    after = await (await client.get(reports_path, headers=AUTH)).json()
    assert after == before
    missing = await client.get(f"/api/v1/state/{keys.report(meter, DAY)}", headers=AUTH)
    assert missing.status == 404
    assert (await missing.json())["error"]["code"] == "not_found"


def _dict(value: codec.Value) -> dict[str, codec.Value]:
    assert isinstance(value, dict)
    return value
