"""What a node refuses: proposed blocks that are not the valid next block, synced blocks
and snapshots that do not prove themselves, messages that are not what they claim."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from ledger_core.consensus.runtime import Outbound
from ledger_core.consensus.sync import Snapshot
from ledger_core.node.host import BlockRejected
from ledger_core.node.networked import TX_BATCH_BYTES
from ledger_core.types import merkle
from ledger_core.types.block import Block, evidence_root, last_commit_hash
from ledger_core.types.crypto import SigningKey
from ledger_core.types.tx import TxType
from ledger_core.types.vote import PREVOTE, Commit, DuplicateVoteEvidence
from tests.consensus.cluster import Cluster
from tests.consensus.keys import vote
from tests.state.chain import key


@pytest.fixture
def cluster(homes: Path) -> Iterator[Cluster]:
    network = Cluster(homes, validators=4)
    assert network.run_until(network.all_at_least(3), 60)
    yield network
    network.close()


def resign(block: Block, signer: SigningKey, **changes: object) -> Block:
    header = replace(block.header, **changes)  # type: ignore[arg-type]
    return Block(header, signer.sign(header.encode()), block.txs, block.last_commit,
                 block.evidence)  # fmt: skip


def test_a_proposed_block_is_checked_before_anyone_votes_for_it(cluster: Cluster) -> None:
    node = cluster.node("v0")
    for other in cluster.running():
        other.halt()  # freeze the network at this height
    signer = cluster.members["v0"].key
    height = node.height + 1
    good = node.propose_block(height, 0)
    assert good is not None
    node._executions.clear()
    assert node.validate_block(good)
    assert good.last_commit is not None
    weak = Commit(good.last_commit.height, good.last_commit.round, good.last_commit.block_hash,
                  good.last_commit.signatures[:2])  # fmt: skip
    forged = DuplicateVoteEvidence.of(
        vote(key("stranger"), PREVOTE, 1, 0, "aa" * 32), vote(key("stranger"), PREVOTE, 1, 0, None)
    )
    garbage = (b'{"not":"a transaction"}',)
    cases = {
        "chain id": resign(good, signer, chain_id="another-chain"),
        "height": resign(good, signer, height=height + 1),
        "does not follow": resign(good, signer, previous_hash="00" * 32),
        "wrong validators_hash": resign(good, signer, validators_hash="00" * 32),
        "wrong next_validators_hash": resign(good, signer, next_validators_hash="00" * 32),
        "not signed by a validator": resign(good, key("stranger"),
                                            proposer=key("stranger").address),
        "last commit is missing": resign(
            replace(good, last_commit=None), signer, last_commit_hash=last_commit_hash(None)
        ),
        "last commit: the commit carries": resign(
            replace(good, last_commit=weak), signer, last_commit_hash=weak.hash
        ),
        "not after the last block's": resign(good, signer, time_ms=node.previous_time_ms),
        "transaction 0": resign(
            replace(good, txs=garbage), signer, txs_root=merkle.root(list(garbage)).hex(),
            tx_count=1,
        ),
        "app hash": resign(good, signer, app_hash="00" * 32),
        "evidence[0]": resign(
            replace(good, evidence=(forged,)), signer, evidence_hash=evidence_root((forged,))
        ),
    }  # fmt: skip
    for reason, block in cases.items():
        with pytest.raises(BlockRejected, match=reason.replace("[", r"\[").replace("]", r"\]")):
            node.execute_block(block)
        assert not node.validate_block(block)


def test_synced_blocks_and_snapshots_must_prove_themselves(
    cluster: Cluster, caplog: pytest.LogCaptureFixture
) -> None:
    source = cluster.node("v0")
    cluster.wipe("v3")
    fresh = cluster.start("v3")
    fresh.halt()  # apply by hand, nothing from the network
    block, commit = source.storage.block(1), source.storage.commit(1)
    assert block is not None
    assert commit is not None
    outsiders = [key(f"outsider-{i}") for i in range(4)]
    fake = Commit.from_votes([vote(k, "precommit", 1, 0, block.header.hash) for k in outsiders])
    with caplog.at_level(logging.WARNING):
        assert not fresh.apply_synced(block, fake)
    assert "refused" in caplog.text
    assert not fresh.apply_synced(replace(block, txs=(b"{}",)), commit), "the body must match"
    snapshot = source.snapshot()
    assert snapshot is not None
    extra = replace(snapshot, state=(*snapshot.state, ("zz/extra", 1)))
    assert not fresh.install_snapshot(extra)
    assert "does not hash" in caplog.text
    unsigned = replace(snapshot, commit=fake)
    assert not fresh.install_snapshot(unsigned)
    assert fresh.height == 0
    assert fresh.apply_synced(block, commit)
    assert fresh.height == 1
    assert fresh.install_snapshot(snapshot)
    assert fresh.height == source.height
    assert fresh.app.app_hash == source.app.app_hash
    assert not fresh.install_snapshot(snapshot), "not above the current height"
    assert isinstance(snapshot, Snapshot)


def test_malformed_messages_are_ignored_with_a_log_line(
    cluster: Cluster, caplog: pytest.LogCaptureFixture
) -> None:
    node = cluster.node("v1")
    height = node.height
    with caplog.at_level(logging.INFO):
        node.deliver("v0", "consensus", b"{}")
        node.deliver("v0", "blocks", b'{"snapshot": 1}')
        node.deliver("v0", "tx", b"not json")
        node.deliver("v0", "unknown-channel", b"")
    assert caplog.text.count("ignoring") == 3
    assert node.height == height
    assert cluster.run_until(cluster.all_at_least(height + 2), 60), "and it goes on"


class Recorder:
    """An outbound transport that keeps a copy of every ``tx`` message."""

    def __init__(self, inner: Outbound) -> None:
        self.inner = inner
        self.txs: list[bytes] = []

    def peers(self) -> list[str]:
        return self.inner.peers()

    def send(self, peer_id: str, channel: str, payload: bytes) -> None:
        self.inner.send(peer_id, channel, payload)

    def broadcast(self, channel: str, payload: bytes) -> None:
        if channel == "tx":
            self.txs.append(payload)
        self.inner.broadcast(channel, payload)


def test_transactions_accepted_together_leave_in_few_gossip_messages(cluster: Cluster) -> None:
    node = cluster.node("v1")
    assert node.transport is not None
    recorder = Recorder(node.transport)
    node.transport = recorder
    txs = [
        cluster.tx(key("iso"), TxType.REGISTER, public_key=key(f"batch-{i}").public_key.hex(),
                   role="prosumer")
        for i in range(120)
    ]  # fmt: skip
    for tx in txs:
        assert node.submit(tx.wire()).accepted
    full = len(recorder.txs)
    assert full >= 2, "a message leaves as soon as it is full"
    assert all(len(m) > TX_BATCH_BYTES - len(txs[0].wire()) - 1 for m in recorder.txs)
    cluster.run_for(0.0)
    assert len(recorder.txs) == full + 1, "the rest at the end of the loop's turn"
    assert all(len(message) <= TX_BATCH_BYTES for message in recorder.txs)
    assert b"\n".join(recorder.txs).split(b"\n") == [tx.wire() for tx in txs], "all, in order"
    assert cluster.run_until(lambda: all(cluster.committed(tx.id)() for tx in txs), 60)
    cluster.check()
    other = cluster.node("v2")
    assert not other.deliver("v1", "tx", txs[0].wire() + b"\nnot a transaction"), "malformed"
    assert other.deliver("v1", "tx", txs[0].wire()), "a known transaction is no offence"
