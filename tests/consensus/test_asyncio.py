"""Four validators on a real asyncio loop, in real time, sending through a queued adapter.

``connect`` wires a node to an asynchronous network shaped like
``ledger_core.p2p.Network`` (channel handlers, ``await broadcast`` / ``await
send``, ``peers()``) through a queued outbound adapter; here that network is the
loopback one behind such an interface.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

from ledger_core.consensus.engine import Timeouts
from ledger_core.consensus.loopback import Faults, LoopbackNetwork
from ledger_core.node.networked import ConsensusNode, NodeConfig, connect
from ledger_core.node.storage import StoredTx, open_storage
from ledger_core.state.machine import StateMachine
from ledger_core.types.tx import TxType, sign
from tests.consensus.cluster import make_genesis
from tests.state.chain import CHAIN_ID, key


class Accused(Exception):  # noqa: N818 - what a handler raises to accuse a peer
    """A peer sent a malformed message."""


class AsyncEndpoint:
    """An asynchronous network over a loopback endpoint, shaped like ``ledger_core.p2p``:
    ``on(channel, handler)``, ``await broadcast``, ``await send``, ``peers()``; handlers
    run in arrival order from a queue, and an accusation is recorded."""

    def __init__(self, network: LoopbackNetwork, name: str) -> None:
        self.endpoint = network.join(name, self._arrive)
        self.handlers: dict[str, Callable[[str, bytes], Awaitable[None]]] = {}
        self.inbox: asyncio.Queue[tuple[str, str, bytes]] = asyncio.Queue()
        self.accused: list[str] = []
        self.sent = 0
        self.task = asyncio.get_running_loop().create_task(self._dispatch())

    def on(self, channel: str, handler: Callable[[str, bytes], Awaitable[None]]) -> None:
        self.handlers[channel] = handler

    def _arrive(self, peer: str, channel: str, payload: bytes) -> None:
        self.inbox.put_nowait((peer, channel, payload))

    async def _dispatch(self) -> None:
        while True:
            peer, channel, payload = await self.inbox.get()
            try:
                await self.handlers[channel](peer, payload)
            except Accused:
                self.accused.append(peer)

    async def broadcast(self, channel: str, payload: bytes) -> int:
        await asyncio.sleep(0)
        self.sent += 1
        self.endpoint.broadcast(channel, payload)
        return len(self.endpoint.peers())

    async def send(self, peer_id: str, channel: str, payload: bytes) -> bool:
        await asyncio.sleep(0)
        self.sent += 1
        self.endpoint.send(peer_id, channel, payload)
        return True

    def peers(self) -> list[str]:
        return self.endpoint.peers()

    async def close(self) -> None:
        self.task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self.task


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
        node = ConsensusNode(
            genesis,
            validator,
            open_storage(home, genesis),
            home=home,
            timeouts=timeouts,
            config=config,
            app_factory=StateMachine.restore,
        )
        adapter = AsyncEndpoint(network, f"n{i}")
        outbounds.append(connect(node, adapter, Accused))
        nodes.append(node)
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
        adapters[0].endpoint.send("n1", "consensus", b"{}")  # n0 misbehaves once
        height = max(n.height for n in nodes)
        for _ in range(600):  # at most 30 s
            if min(n.height for n in nodes) >= height and adapters[1].accused:
                break
            await asyncio.sleep(0.05)
        assert min(n.height for n in nodes) >= height
        assert adapters[1].accused == ["n0"]
        for h in range(1, height + 1):
            assert len({n.storage.header(h) for n in nodes}) == 1
    finally:
        stop.set()
        await asyncio.gather(*tasks)
        for outbound in outbounds:
            await outbound.close()
        for adapter in adapters:
            await adapter.close()
        for node in nodes:
            node.close()
    assert all(adapter.sent > 0 for adapter in adapters)


async def test_running_needs_a_transport(homes: Path) -> None:
    genesis = make_genesis([key("lonely")])
    node = ConsensusNode(
        genesis,
        key("lonely"),
        open_storage(homes, genesis),
        home=homes,
        app_factory=StateMachine.restore,
    )
    try:
        with pytest.raises(RuntimeError, match="attach a transport"):
            await node.run(asyncio.Event())
    finally:
        node.close()
