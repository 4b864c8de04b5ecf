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
from pathlib import Path

from ledger_core.consensus.runtime import Outbound, Scheduler
from ledger_core.node.networked import CONSENSUS, ConsensusNode
from ledger_core.serve import serve
from ledger_core.types.proposal import Proposal, decode_message
from tests.consensus.equivocation import conflicting


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
        # Votes split only after a split proposal: double votes get the validator jailed,
        # and a jailed validator proposes nothing more.
        return conflicting(payload, self.node, self.node.key, split_votes=self.proposed_two)


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
