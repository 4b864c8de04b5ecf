"""Validators and followers in simulated time: agreement, validity and liveness under faults.

Every scenario ends with :meth:`Cluster.check`: identical block and app hashes
at every height on every node, a commit with more than 2/3 of the height's
validator power for every stored block, and every transaction seen committed
still in its block on every node that reached that height.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from ledger_core.consensus.types import Vote, decode_message
from ledger_core.tx import TxType
from tests.consensus.cluster import Cluster
from tests.ledger_core.chain import key


class Crash(BaseException):  # noqa: N818 - stands for kill -9 at a chosen instant
    """Raised by a crash hook."""


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    network = Cluster(tmp_path, validators=4, followers=1)
    yield network
    network.close()


def fund_people(cluster: Cluster, count: int) -> list[str]:
    """Register ``count`` participants through v0; each then asks a different validator
    for a deposit. Returns the deposit transaction ids."""
    for i in range(count):  # one signer: in order, one after the other
        registration = cluster.register("v0", f"person-{i}")
        assert cluster.run_until(cluster.committed(registration.id), 60)
    ids = []
    for i in range(count):
        tx = cluster.tx(key(f"person-{i}"), TxType.DEPOSIT_REQUEST, amount=100 + i)
        assert cluster.node(f"v{i % cluster.validators}").submit(tx.wire()).accepted
        ids.append(tx.id)
    return ids


def test_four_validators_and_a_follower_commit_transactions(cluster: Cluster) -> None:
    ids = fund_people(cluster, 8)
    for tx_id in ids:
        assert cluster.run_until(cluster.committed(tx_id), 60), tx_id
    follower = cluster.node("f0")
    stored = follower.storage.tx(ids[0])
    assert stored is not None
    assert stored.code == "ok"
    assert not follower.engine.is_validator
    assert cluster.check() >= 2


def votes_by(cluster: Cluster, name: str) -> dict[tuple[int, int, str], set[str | None]]:
    """Record every vote ``name`` puts on the wire, by height, round and type."""
    signed: dict[tuple[int, int, str], set[str | None]] = {}
    address = cluster.members[name].key.address

    def tap(source: str, target: str, channel: str, payload: bytes) -> None:
        if channel != "consensus":
            return
        message = decode_message(payload)
        if isinstance(message, Vote) and message.validator == address:
            signed.setdefault((message.height, message.round, message.type), set()).add(
                message.block_hash
            )

    cluster.net.taps.append(tap)
    return signed


@pytest.mark.parametrize("point", ["signed", "wal_synced"])
def test_a_validator_killed_around_its_wal_fsync_restarts_without_double_signing(
    cluster: Cluster, point: str
) -> None:
    signed = votes_by(cluster, "v2")
    ids = fund_people(cluster, 4)
    assert cluster.run_until(cluster.committed(ids[-1]), 60)
    height = cluster.node("v2").height
    calls = {"n": 0}

    def hook(where: str) -> None:
        if where == point:
            calls["n"] += 1
            if calls["n"] == 3:
                raise Crash(where)

    cluster.crash("v2")
    cluster.start("v2", crash_hook=hook)
    with pytest.raises(Crash):
        cluster.run_until(cluster.all_at_least(height + 5), 60)
    cluster.crash("v2")
    cluster.run_for(3)
    restarted = cluster.start("v2")
    assert cluster.run_until(cluster.all_at_least(restarted.height + 3), 60)
    more = [cluster.tx(key("person-0"), TxType.DEPOSIT_REQUEST, amount=7)]
    assert cluster.node("v2").submit(more[0].wire()).accepted
    assert cluster.run_until(cluster.committed(more[0].id), 60)
    cluster.check()
    assert signed, "v2 voted"
    double = {k: v for k, v in signed.items() if len(v) > 1}
    assert not double, f"v2 signed conflicting votes: {double}"
    for node in cluster.running():
        assert not node.evidence_pool


def test_a_two_two_split_halts_without_a_fork_and_resumes_when_healed(cluster: Cluster) -> None:
    ids = fund_people(cluster, 2)
    assert cluster.run_until(cluster.committed(ids[-1]), 60)
    cluster.net.partition({"v0", "v1", "f0"}, {"v2", "v3"})
    cluster.run_for(2)
    stuck = {n.key.address: n.height for n in cluster.running()}
    tx = cluster.tx(key("person-0"), TxType.DEPOSIT_REQUEST, amount=5)
    assert cluster.node("v0").submit(tx.wire()).accepted
    cluster.run_for(40)
    for node in cluster.running():
        assert node.height == stuck[node.key.address], "no quorum, no block"
        assert node.storage.tx(tx.id) is None
    cluster.check()
    cluster.net.heal()
    assert cluster.run_until(cluster.committed(tx.id), 120)
    assert cluster.run_until(cluster.all_at_least(max(stuck.values()) + 2), 60)
    cluster.check()


def test_an_isolated_proposer_does_not_stop_the_others(cluster: Cluster) -> None:
    ids = fund_people(cluster, 1)
    assert cluster.run_until(cluster.committed(ids[-1]), 60)
    node = cluster.node("v0")
    proposer = node.app.validator_set().proposer(0).address
    name = next(n for n, m in cluster.members.items() if m.key.address == proposer)
    others = {n for n in cluster.members if n != name}
    cluster.net.partition(others, {name})
    via = sorted(others - {"f0"})[0]
    tx = cluster.tx(key("person-0"), TxType.DEPOSIT_REQUEST, amount=9)
    assert cluster.node(via).submit(tx.wire()).accepted
    assert cluster.run_until(cluster.committed_on(tx.id, sorted(others)), 60)
    rounds = [cluster.node(n).storage.commit(cluster.node(n).height) for n in sorted(others)]
    assert all(c is not None for c in rounds)
    cluster.net.heal()
    assert cluster.run_until(cluster.committed(tx.id), 60)
    cluster.check()
