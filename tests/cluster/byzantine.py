"""A Byzantine validator for the process tests: ``python -m tests.cluster.byzantine --dir HOME``.

It runs the ordinary node (``ledger_core.runner.serve``) with a
:class:`ConsensusNode` whose transport is two-faced: whatever the node signs as a
proposal or vote, it also signs a conflicting version with the same validator
key — bypassing its private validator — and sends each version to half of its
peers. Conflicting votes are a vote for the block and one for nil (or for nil
and for a block that does not exist); the conflicting proposal is another valid
block for the same height (one transaction fewer). It starts with proposals: its
votes split only after it has sent two proposals for one round (double votes get
it jailed, and then it proposes nothing). Honest peers relay both versions, so
every honest validator sees the equivocation.

Each equivocation is written to ``HOME/equivocations`` (``proposal H`` or
``vote H``, a line per message) so the test can see what happened.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
from dataclasses import replace
from pathlib import Path

from ledger_core.app import BlockContext
from ledger_core.block import Block, make_block
from ledger_core.consensus.node import CONSENSUS, ConsensusNode
from ledger_core.consensus.runtime import Outbound, Scheduler
from ledger_core.consensus.types import Proposal, Vote, decode_message, encode_message
from ledger_core.runner import serve
from ledger_core.tx import decode


class TwoFaced:
    """An outbound transport that splits the node's own consensus messages in two."""

    def __init__(self, node: ConsensusNode, inner: Outbound, record: Path) -> None:
        self.node = node
        self.inner = inner
        self.record = record
        self.proposed_two = False

    def peers(self) -> list[str]:
        return self.inner.peers()

    def send(self, peer_id: str, channel: str, payload: bytes) -> None:
        self.inner.send(peer_id, channel, payload)

    def broadcast(self, channel: str, payload: bytes) -> None:
        other = self._conflicting(payload) if channel == CONSENSUS else None
        peers = self.peers()
        if other is None or len(peers) < 2:
            self.inner.broadcast(channel, payload)
            return
        message = decode_message(payload)
        kind = "proposal" if isinstance(message, Proposal) else "vote"
        self.proposed_two |= kind == "proposal"
        with self.record.open("a", encoding="utf-8") as out:
            out.write(f"{kind} {message.height}\n")
        for i, peer in enumerate(peers):
            self.inner.send(peer, channel, payload if i % 2 else other)

    def _conflicting(self, payload: bytes) -> bytes | None:
        node = self.node
        chain_id = node.genesis.chain_id
        message = decode_message(payload)
        # Votes split only after a split proposal: double votes get the validator jailed,
        # and a jailed validator proposes nothing more.
        if isinstance(message, Vote) and message.validator == node.key.address:
            if not self.proposed_two:
                return None
            twin = replace(message, block_hash=None if message.block_hash else "ab" * 32)
            return encode_message(twin.signed(node.key, chain_id))
        if isinstance(message, Proposal) and message.proposer == node.key.address:
            block = self._other_block(message.block)
            if block is None:
                return None
            return encode_message(replace(message, block=block).signed(node.key, chain_id))
        return None

    def _other_block(self, block: Block) -> Block | None:
        """A different valid block for the same height: one transaction fewer."""
        if not block.txs:
            return None
        node = self.node
        header = block.header
        txs = [decode(wire) for wire in block.txs[:-1]]
        execution = node.app.execute(BlockContext(header.height, header.time), txs, block.evidence)
        return make_block(
            node.key,
            chain_id=header.chain_id,
            height=header.height,
            time=header.time,
            previous_hash=header.previous_hash,
            txs=list(block.txs[:-1]),
            app_hash=execution.app_hash,
            validators_hash=header.validators_hash,
            next_validators_hash=header.next_validators_hash,
            last_commit=block.last_commit,
            evidence=block.evidence,
        )


class Equivocating(ConsensusNode):
    """A consensus node whose transport is :class:`TwoFaced`."""

    def attach(self, transport: Outbound, scheduler: Scheduler) -> None:
        assert self.storage.path is not None
        record = self.storage.path.parent / "equivocations"
        super().attach(TwoFaced(self, transport, record), scheduler)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--dir", type=Path, required=True)
    args = parser.parse_args()
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )

    async def run() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await serve(args.dir, stop, node_class=Equivocating)

    asyncio.run(run())


if __name__ == "__main__":
    main()
