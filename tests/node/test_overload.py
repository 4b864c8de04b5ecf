"""An overloaded node says so: 503 ``overloaded`` with a Retry-After, not ever longer waits.

The node takes clients' transactions while what waits fits in the next block, or its oldest
waiting transaction has waited less than ``max_queue_seconds`` and what waits commits within
that at the chain's throughput (learnt from full blocks); past it ``POST /txs`` and
``/txs/batch`` answer 503 with the ``overloaded`` code and a Retry-After in seconds, which
the wire contract's client hands to its caller. Gossiped transactions are not held to it,
and the node takes clients' transactions again once the backlog is committed.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestClient, TestServer

from ledger_core.api.core import make_app
from ledger_core.node.host import Node
from ledger_core.node.storage import open_storage
from ledger_core.state.machine import StateMachine
from ledger_core.types.genesis import Params
from ledger_core.types.tx import Tx, TxType
from tests.state.chain import Chain, key
from transactiva_client.client import TransactivaClient
from transactiva_client.errors import TransactivaNotReadyError
from transactiva_client.protocol import ErrorCode

TOKEN = "t" * 64
AUTH = {"Authorization": f"Bearer {TOKEN}"}


class Setup:
    def __init__(self, client: TestClient[Any, Any], node: Node, chain: Chain) -> None:
        self.client = client
        self.node = node
        self.chain = chain
        self.people = [key(f"p{i}") for i in range(3)]

    def transfer(self, who: int = 0) -> Tx:
        sender, receiver = self.people[who], self.people[(who + 1) % len(self.people)]
        return self.chain.tx(sender, TxType.TRANSFER, to=receiver.address, amount=1)


@pytest.fixture
async def setup(tmp_path: Path) -> AsyncIterator[Setup]:
    chain = Chain()
    genesis = replace(chain.genesis, params=replace(Params(), max_block_txs=4))
    chain.genesis = genesis
    chain.app = StateMachine(genesis)
    node = Node(
        genesis, key("validator"), open_storage(tmp_path, genesis), app_factory=StateMachine.restore
    )
    app = make_app(node, TOKEN, chain.iso)
    client: TestClient[Any, Any] = TestClient(TestServer(app))
    await client.start_server()
    found = Setup(client, node, chain)
    for person in found.people:  # registered and funded, one block per step
        public_key = person.public_key.hex()
        register = chain.tx(chain.iso, TxType.REGISTER, public_key=public_key, role="prosumer")
        request = chain.tx(person, TxType.DEPOSIT_REQUEST, amount=10_000)
        confirm = chain.tx(chain.iso, TxType.DEPOSIT_CONFIRM, request=request.id)
        for tx in (register, request, confirm):
            assert node.submit(tx.wire()).accepted
            node.produce_block()
    try:
        yield found
    finally:
        await client.close()
        node.close()


async def _post(setup: Setup, path: str, data: bytes) -> tuple[int, Any, str | None]:
    response = await setup.client.post("/api/v1" + path, data=data, headers=AUTH)
    return response.status, await response.json(), response.headers.get("Retry-After")


def test_a_fresh_queue_without_an_estimate_is_not_refused(setup: Setup) -> None:
    assert setup.node.throughput is None
    for _ in range(10):
        assert setup.node.submit(setup.transfer().wire()).accepted
    assert setup.node.busy_for(1000) is None


async def test_a_queue_that_does_not_drain_in_time_is_refused(setup: Setup) -> None:
    node = setup.node
    node.max_queue_seconds = 0.05
    for _ in range(4):  # what the next block takes (max_block_txs) is never refused
        assert node.submit(setup.transfer().wire()).accepted
    assert node.busy_for(0) is None
    deadline = asyncio.get_running_loop().time() + 10
    while node.busy_for(1) is None:  # the oldest transaction waits past the bound
        assert asyncio.get_running_loop().time() < deadline
        await asyncio.sleep(0.01)
    wait = node.busy_for(1)
    assert wait is not None
    assert wait >= 1
    node.produce_block()
    assert node.busy_for(1) is None


def test_a_slow_chain_with_less_than_a_block_waiting_is_not_overloaded(setup: Setup) -> None:
    node = setup.node
    node.max_queue_seconds = 0.0  # every waiting transaction is "late" at once
    node.throughput = 0.1  # and the chain commits next to nothing, as with a validator away
    for _ in range(3):
        assert node.submit(setup.transfer().wire()).accepted
    assert node.busy_for(1) is None  # four fit in the next block (max_block_txs)
    assert node.busy_for(2) is not None


def test_the_throughput_is_learnt_from_full_blocks(setup: Setup) -> None:
    node = setup.node
    assert node.submit(setup.transfer().wire()).accepted
    node.produce_block()  # not full: says nothing of what the chain can do
    assert node.throughput is None
    for _ in range(12):  # three full blocks
        assert node.submit(setup.transfer().wire()).accepted
    for _ in range(3):
        node.produce_block()
    assert node.throughput is not None
    assert node.throughput > 0
    assert not node.mempool


async def test_clients_get_503_overloaded_with_a_retry_hint(setup: Setup) -> None:
    node = setup.node
    node.throughput = 5.0  # transactions per second, as if measured
    node.max_queue_seconds = 1.0
    for _ in range(5):
        assert node.submit(setup.transfer().wire()).accepted
    status, body, retry = await _post(setup, "/txs", setup.transfer(1).wire())
    assert status == 503
    assert body["error"]["code"] == "overloaded"
    assert retry is not None
    assert int(retry) >= 1
    batch = b"\n".join(setup.transfer(2).wire() for _ in range(3))
    status, body, retry = await _post(setup, "/txs/batch", batch)
    assert (status, body["error"]["code"]) == (503, "overloaded")
    assert retry is not None
    assert int(retry) >= 1
    assert len(node.mempool) == 5  # nothing of the refused requests was taken

    async with aiohttp.ClientSession() as session:
        client = TransactivaClient(session, str(setup.client.make_url("")), TOKEN)
        with pytest.raises(TransactivaNotReadyError) as refused:
            await client.submit(setup.transfer(1).wire())
    assert refused.value.code is ErrorCode.OVERLOADED
    assert refused.value.retry_after is not None
    assert refused.value.retry_after >= 1

    while node.mempool:  # the backlog commits; clients are taken again
        node.produce_block()
    status, body, retry = await _post(setup, "/txs", setup.transfer(1).wire())
    assert (status, body["status"], retry) == (202, "pending", None)


def test_gossip_is_not_held_back(setup: Setup) -> None:
    node = setup.node
    node.throughput = 1.0
    for _ in range(6):
        assert node.submit(setup.transfer().wire()).accepted  # as the network delivers them
    assert node.busy_for(1) is not None
