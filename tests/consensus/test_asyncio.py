"""Four validators on a real asyncio loop, in real time, sending through a queued adapter.

The adapter (:class:`QueuedOutbound`) is what connects a node to an asynchronous
network such as ``ledger_core.p2p``; here the network is the loopback one,
behind ``await broadcast`` / ``await send`` as the real one is.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from ledger_core.consensus.engine import Timeouts
from ledger_core.consensus.loopback import Endpoint, Faults, LoopbackNetwork
from ledger_core.consensus.node import ConsensusNode, NodeConfig
from ledger_core.consensus.runtime import QueuedOutbound
from ledger_core.node import open_storage
from ledger_core.storage import StoredTx
from ledger_core.tx import TxType, sign
from tests.consensus.cluster import make_genesis
from tests.ledger_core.chain import CHAIN_ID, key


class AsyncEndpoint:
    """An asynchronous network interface over a loopback endpoint."""

    def __init__(self, endpoint: Endpoint) -> None:
        self.endpoint = endpoint
        self.sent = 0

    async def broadcast(self, channel: str, payload: bytes) -> None:
        await asyncio.sleep(0)
        self.sent += 1
        self.endpoint.broadcast(channel, payload)

    async def send(self, peer_id: str, channel: str, payload: bytes) -> None:
        await asyncio.sleep(0)
        self.sent += 1
        self.endpoint.send(peer_id, channel, payload)

    def peers(self) -> list[str]:
        return self.endpoint.peers()


async def test_four_validators_commit_on_an_event_loop(homes: Path) -> None:
    loop = asyncio.get_running_loop()
    network = LoopbackNetwork(loop, seed=3, faults=Faults(drop=0.02, delay_ms=(1, 4)))
    keys = [key(f"async-{i}") for i in range(4)]
    genesis = make_genesis(keys)
    timeouts = Timeouts(400, 100, 200, 100, 200, 100)
    config = NodeConfig(timeout_commit_ms=20, empty_block_every_ms=1000, rebroadcast_ms=300,
                        status_every_ms=1000, sync_timeout_ms=300)  # fmt: skip
    nodes, outbounds, adapters = [], [], []
    for i, validator in enumerate(keys):
        home = homes / f"n{i}"
        home.mkdir()
        node = ConsensusNode(genesis, validator, open_storage(home, genesis), home=home,
                             timeouts=timeouts, config=config)  # fmt: skip
        adapter = AsyncEndpoint(network.join(f"n{i}", node.deliver))
        outbound = QueuedOutbound(adapter)
        node.attach(outbound, loop)
        outbound.start()
        nodes.append(node)
        outbounds.append(outbound)
        adapters.append(adapter)
    stop = asyncio.Event()
    tasks = [asyncio.create_task(node.run(stop)) for node in nodes]
    try:
        txs = [
            sign(key("iso"), CHAIN_ID, TxType.REGISTER, 1,
                 {"public_key": key("async-alice").public_key.hex(), "role": "consumer"}),
            sign(key("dso"), CHAIN_ID, TxType.SERVICE, 1,
                 {"participant": key("async-alice").address, "connected": False}),
        ]  # fmt: skip
        for tx, via in zip(txs, (nodes[1], nodes[2]), strict=True):
            assert via.submit(tx.wire()).accepted
            result = await asyncio.wait_for(via.wait_for(tx.id), 30)
            assert isinstance(result, StoredTx)
            assert result.code == "ok", result.message
        height = max(n.height for n in nodes)
        for _ in range(600):  # at most 30 s
            if min(n.height for n in nodes) >= height:
                break
            await asyncio.sleep(0.05)
        assert min(n.height for n in nodes) >= height
        for h in range(1, height + 1):
            assert len({n.storage.header(h) for n in nodes}) == 1
    finally:
        stop.set()
        await asyncio.gather(*tasks)
        for outbound in outbounds:
            await outbound.close()
        for node in nodes:
            node.close()
    assert all(adapter.sent > 0 for adapter in adapters)


async def test_running_needs_a_transport(homes: Path) -> None:
    genesis = make_genesis([key("lonely")])
    node = ConsensusNode(genesis, key("lonely"), open_storage(homes, genesis), home=homes)
    try:
        with pytest.raises(RuntimeError, match="attach a transport"):
            await node.run(asyncio.Event())
    finally:
        node.close()
