"""Validators and followers in simulated time: agreement, validity and liveness under faults.

Every scenario ends with :meth:`Cluster.check`: identical block and app hashes
at every height on every node, a commit with more than 2/3 of the height's
validator power for every stored block, and every transaction seen committed
still in its block on every node that reached that height.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from ledger_core.consensus.light import LightClient
from ledger_core.consensus.wal import frame, read_records
from ledger_core.types.proposal import decode_message
from ledger_core.types.tx import TxType
from ledger_core.types.vote import Vote
from tests.consensus.cluster import PACING, Cluster
from tests.consensus.equivocation import conflicting
from tests.state.chain import key


class Crash(BaseException):
    """Raised by a crash hook."""


@pytest.fixture
def cluster(homes: Path) -> Iterator[Cluster]:
    network = Cluster(homes, validators=4, followers=1)
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
    commit = cluster.node(via).storage.commit(cluster.node(via).height)
    assert commit is not None
    assert commit.round >= 1, "round 0 had the isolated proposer; a later round decided"
    cluster.net.heal()
    assert cluster.run_until(cluster.committed(tx.id), 60)
    cluster.check()


class Equivocator:
    """Validator ``name`` turned Byzantine: whatever it proposes or votes, it also signs a
    conflicting proposal or vote, and sends each version to half of its peers."""

    def __init__(self, cluster: Cluster, name: str) -> None:
        self.cluster = cluster
        self.node = cluster.node(name)
        self.key = cluster.members[name].key
        assert self.node.transport is not None
        self.inner = self.node.transport
        self.node.transport = self  # type: ignore[assignment]
        self.equivocations = 0

    def peers(self) -> list[str]:
        return self.inner.peers()

    def send(self, peer_id: str, channel: str, payload: bytes) -> None:
        self.inner.send(peer_id, channel, payload)

    def broadcast(self, channel: str, payload: bytes) -> None:
        other = conflicting(payload, self.node, self.key) if channel == "consensus" else None
        if other is None:
            self.inner.broadcast(channel, payload)
            return
        self.equivocations += 1
        for i, peer in enumerate(self.peers()):
            self.inner.send(peer, channel, payload if i % 2 else other)


def test_an_equivocating_validator_cannot_fork_and_its_evidence_is_committed(
    cluster: Cluster,
) -> None:
    fund_people(cluster, 4)
    byzantine = Equivocator(cluster, "v3")
    offender = cluster.members["v3"].key.address
    for round_ in range(12):
        tx = cluster.tx(key(f"person-{round_ % 4}"), TxType.DEPOSIT_REQUEST, amount=11)
        assert cluster.node(f"v{round_ % 3}").submit(tx.wire()).accepted
        assert cluster.run_until(cluster.committed(tx.id), 60)
    assert byzantine.equivocations > 0

    def punished() -> bool:
        return all(
            any(k.startswith(f"evidence/{offender}/") for k in n.app.state)
            and n.app.validator_set().get(offender) is None
            for n in cluster.running()
        )

    assert cluster.run_until(punished, 60)
    node = cluster.node("v0")
    events = [e for _, _, e in node.storage.events(0, limit=100_000)]
    committed = [e for e in events if isinstance(e, dict) and e["type"] == "evidence_committed"]
    assert committed
    assert all(e["validator"] == offender for e in committed)
    assert committed[0]["jailed"] is True
    tx = cluster.tx(key("person-0"), TxType.DEPOSIT_REQUEST, amount=12)
    assert cluster.node("v1").submit(tx.wire()).accepted
    assert cluster.run_until(cluster.committed(tx.id), 60), "three honest validators go on"
    cluster.check()


def test_a_corrupt_wal_tail_is_cut_off_and_the_validator_goes_on(
    cluster: Cluster, caplog: pytest.LogCaptureFixture
) -> None:
    fund_people(cluster, 2)
    others = {n for n in cluster.members if n != "v1"}
    home = cluster.members["v1"].home
    damages = {
        "cut short": lambda data: data + frame(b'{"vote":{}}')[:-3],  # a write cut by a crash
        "fails its CRC": lambda data: data[:-1] + bytes([data[-1] ^ 0xFF]),  # a damaged disk
    }
    for person, (problem, damage) in enumerate(damages.items()):
        caplog.clear()
        # Kill v1 in the middle of a height and keep it alone after the restart, so that
        # it opens that height's log again instead of syncing past it.
        cluster.net.partition({"v1"}, others)
        tx = cluster.tx(key(f"person-{person}"), TxType.DEPOSIT_REQUEST, amount=3)
        assert cluster.node("v1").submit(tx.wire()).accepted
        cluster.run_for(5)
        height = cluster.node("v1").height + 1
        cluster.crash("v1")
        wal = home / "consensus" / "wal" / f"{height:012d}.wal"
        whole = wal.read_bytes()
        assert whole, "the validator logged its own votes"
        damaged = damage(whole)
        wal.write_bytes(damaged)
        _, good, found = read_records(damaged)
        assert problem in found
        restarted = cluster.start("v1")
        assert restarted.submit(tx.wire()).accepted
        cluster.run_for(5)
        assert problem in caplog.text
        after = wal.read_bytes()
        assert after[:good] == damaged[:good], "the whole records stay"
        assert read_records(after)[2] == "", "the damaged tail is gone, new records follow"
        cluster.net.heal()
        assert cluster.run_until(cluster.committed(tx.id), 60)
    cluster.check()


def test_a_wiped_follower_catches_up_by_block_sync(cluster: Cluster) -> None:
    fund_people(cluster, 2)
    cluster.wipe("f0")
    target = cluster.node("v0").height + 8
    assert cluster.run_until(cluster.all_at_least(target), 120)
    follower = cluster.start("f0")
    assert follower.height == 0
    assert cluster.run_until(cluster.all_at_least(target + 1), 60)
    assert follower.storage.base == 0
    assert follower.storage.block(1) is not None
    cluster.check()


def test_a_wiped_validator_restores_a_snapshot_and_votes_again(homes: Path) -> None:
    cluster = Cluster(homes, validators=4, config=replace(PACING, snapshot_threshold=5))
    try:
        fund_people(cluster, 2)
        cluster.wipe("v3")
        target = cluster.node("v0").height + 10
        assert cluster.run_until(cluster.all_at_least(target), 120)
        restored = cluster.start("v3")
        assert cluster.run_until(cluster.all_at_least(target + 1), 60)
        base = restored.storage.base
        assert base >= target - 1
        assert restored.storage.block(base) is None
        assert restored.storage.header(base) == cluster.node("v0").storage.header(base)
        address = cluster.members["v3"].key.address

        def v3_signs() -> bool:
            commit = cluster.node("v0").storage.commit(cluster.node("v0").height)
            return commit is not None and any(s.validator == address for s in commit.signatures)

        tx = cluster.tx(key("person-1"), TxType.DEPOSIT_REQUEST, amount=4)
        assert restored.submit(tx.wire()).accepted
        assert cluster.run_until(cluster.committed(tx.id), 60)
        assert cluster.run_until(v3_signs, 60)
        cluster.check()
    finally:
        cluster.close()


def _restored_validator_and_wiped_follower(homes: Path) -> tuple[Cluster, int]:
    """v3 restored from a snapshot (so it lacks the early blocks) and f0 wiped, set to
    replay every block; the height the others reached."""
    cluster = Cluster(
        homes,
        validators=4,
        followers=1,
        config=replace(PACING, snapshot_threshold=5),
        configs={"f0": replace(PACING, snapshot_threshold=10**9)},
    )
    fund_people(cluster, 2)
    cluster.wipe("v3")
    cluster.wipe("f0")
    target = cluster.node("v0").height + 10
    assert cluster.run_until(cluster.all_at_least(target), 120)
    restored = cluster.start("v3")
    assert cluster.run_until(cluster.all_at_least(target + 1), 60)
    assert restored.storage.base > 1
    return cluster, target


def test_a_follower_replays_blocks_from_a_peer_that_has_them_not_a_restored_one(
    homes: Path,
) -> None:
    cluster, target = _restored_validator_and_wiped_follower(homes)
    try:
        # f0 first hears only from v3, which cannot serve block 1.
        cluster.net.partition({"f0", "v3"}, {"v0", "v1", "v2", "v3"})
        follower = cluster.start("f0")
        cluster.run_for(PACING.sync_timeout_ms / 1000 / 2)
        assert follower.height == 0, "it neither took v3's snapshot nor found blocks"
        cluster.net.heal()
        for peer in ("v0", "v1", "v2"):  # as a transport tells it of new connections
            follower.peer_connected(peer)
        assert cluster.run_until(cluster.all_at_least(target + 1), 60)
        assert follower.storage.base == 0
        assert follower.storage.block(1) is not None
        cluster.check()
    finally:
        cluster.close()


def test_a_follower_takes_a_snapshot_when_no_peer_holds_the_blocks(homes: Path) -> None:
    cluster, target = _restored_validator_and_wiped_follower(homes)
    try:
        cluster.net.partition({"f0", "v3"}, {"v0", "v1", "v2", "v3"})
        follower = cluster.start("f0")
        assert cluster.run_until(lambda: follower.height >= target, 60)
        assert follower.storage.base > 1, "restored from v3's snapshot"
        assert follower.storage.block(1) is None
        cluster.net.heal()
        assert cluster.run_until(cluster.all_at_least(cluster.node("v0").height + 1), 60)
        cluster.check()
    finally:
        cluster.close()


def test_validators_join_and_leave_by_operator_transaction_under_load(cluster: Cluster) -> None:
    people = 3
    fund_people(cluster, people)
    joiner = cluster.members["f0"].key
    leaver = cluster.members["v0"].key
    update = cluster.tx(key("iso"), TxType.VALIDATOR_UPDATE, public_key=joiner.public_key.hex(),
                        power=10)  # fmt: skip
    assert cluster.node("v1").submit(update.wire()).accepted
    for i in range(6):
        tx = cluster.tx(key(f"person-{i % people}"), TxType.DEPOSIT_REQUEST, amount=1 + i)
        assert cluster.node(f"v{1 + i % 3}").submit(tx.wire()).accepted
        assert cluster.run_until(cluster.committed(tx.id), 60)
    assert cluster.run_until(cluster.committed(update.id), 60)
    stored = cluster.node("v1").storage.tx(update.id)
    assert stored is not None
    assert stored.code == "ok", stored.message
    removal = cluster.tx(key("iso"), TxType.VALIDATOR_UPDATE, public_key=leaver.public_key.hex(),
                         power=0)  # fmt: skip
    assert cluster.node("v2").submit(removal.wire()).accepted
    assert cluster.run_until(cluster.committed(removal.id), 60)
    removed_at = cluster.node("v2").height + 2
    assert cluster.run_until(cluster.all_at_least(removed_at + 3), 60)
    node = cluster.node("v1")
    validators = node.app.validator_set()
    assert validators.get(joiner.address) is not None
    assert validators.get(leaver.address) is None
    recent = [node.storage.commit(h) for h in range(removed_at, node.height + 1)]
    signers = {s.validator for c in recent if c is not None for s in c.signatures}
    assert leaver.address not in signers
    assert joiner.address in signers
    client = LightClient(cluster.genesis.chain_id, node.app.validator_set(1))
    for height in range(1, node.height + 1):
        header, commit = node.storage.header(height), node.storage.commit(height)
        assert header is not None
        assert commit is not None
        client.update(header, commit, node.app.validator_set(height),
                      node.app.validator_set(height + 1))  # fmt: skip
    cluster.check()
