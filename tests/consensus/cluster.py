"""Validators and followers in one process, in simulated time, with the invariants to check.

Each node is a real :class:`ConsensusNode` with its own home (SQLite file, WAL,
private validator state) under the test's temporary folder. The network is
:class:`LoopbackNetwork` on a :class:`VirtualScheduler`: seeded delays, drops,
duplicates and partitions, and no real sleeping, so a run is repeatable.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from ledger_core.consensus.engine import Timeouts
from ledger_core.consensus.light import verify_commit
from ledger_core.consensus.loopback import Faults, LoopbackNetwork
from ledger_core.consensus.runtime import VirtualScheduler
from ledger_core.node.networked import ConsensusNode, NodeConfig
from ledger_core.node.storage import open_storage
from ledger_core.state.machine import StateMachine
from ledger_core.types.crypto import SigningKey
from ledger_core.types.genesis import Genesis, Operator, Params, Validator
from ledger_core.types.tx import Tx, TxType, sign
from tests.state.chain import CHAIN_ID, START, key

FAST = Timeouts(
    propose_ms=1000,
    propose_delta_ms=500,
    prevote_ms=500,
    prevote_delta_ms=250,
    precommit_ms=500,
    precommit_delta_ms=250,
)
PACING = NodeConfig(
    timeout_commit_ms=200,
    empty_block_every_ms=5000,
    rebroadcast_ms=1000,
    status_every_ms=2000,
    sync_timeout_ms=2000,
    snapshot_threshold=1000,
)


def make_genesis(validators: list[SigningKey], powers: list[int] | None = None) -> Genesis:
    powers = powers or [10] * len(validators)
    return Genesis(
        chain_id=CHAIN_ID,
        genesis_time=START - 3600,
        operators=(
            Operator(key("iso").public_key, ("ISO", "SUPPLIER")),
            Operator(key("dso").public_key, ("DSO",)),
        ),
        validators=tuple(
            Validator(v.public_key, p) for v, p in zip(validators, powers, strict=True)
        ),
        params=Params(),
    )


@dataclass
class Member:
    """One node's identity, home and (while it runs) its node."""

    name: str
    key: SigningKey
    home: Path
    node: ConsensusNode | None = None


@dataclass
class Cluster:
    """A network of nodes sharing one simulated clock."""

    root: Path
    validators: int = 4
    followers: int = 0
    seed: int = 0
    faults: Faults = field(default_factory=Faults)
    powers: list[int] | None = None
    config: NodeConfig = PACING
    # A node's own settings, where they differ from ``config``.
    configs: dict[str, NodeConfig] = field(default_factory=dict)
    timeouts: Timeouts = FAST
    # A node's clock reads the shared simulated time plus this many seconds.
    clock_offsets: dict[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.scheduler = VirtualScheduler(float(START))
        self.net = LoopbackNetwork(self.scheduler, self.seed, self.faults)
        names = [f"v{i}" for i in range(self.validators)]
        names += [f"f{i}" for i in range(self.followers)]
        self.members = {n: Member(n, key(f"node-{n}"), self.root / n) for n in names}
        self.genesis = make_genesis([self.members[n].key for n in names[: self.validators]],
                                    self.powers)  # fmt: skip
        self.nonces: dict[str, int] = {}
        self.seen_committed: dict[str, int] = {}
        for name in names:
            self.start(name)

    # -- nodes --------------------------------------------------------------------------

    def start(self, name: str, crash_hook: Callable[[str], None] | None = None) -> ConsensusNode:
        member = self.members[name]
        member.home.mkdir(parents=True, exist_ok=True)
        offset = self.clock_offsets.get(name, 0.0)
        node = ConsensusNode(
            self.genesis,
            member.key,
            open_storage(member.home, self.genesis),
            clock=(lambda: self.scheduler.time() + offset) if offset else self.scheduler.time,
            home=member.home,
            timeouts=self.timeouts,
            crash_hook=crash_hook,
            config=self.configs.get(name, self.config),
            app_factory=StateMachine.restore,
        )
        node.attach(self.net.join(name, node.deliver), self.scheduler)
        node.begin()
        member.node = node
        return node

    def crash(self, name: str) -> None:
        """Stop a node as kill -9 would: no goodbye, files as they are."""
        member = self.members[name]
        assert member.node is not None
        self.net.leave(name)
        member.node.halt()
        member.node.close()
        member.node = None

    def wipe(self, name: str) -> None:
        """Crash a node and delete its home."""
        self.crash(name)
        shutil.rmtree(self.members[name].home)

    def close(self) -> None:
        for name, member in self.members.items():
            if member.node is not None:
                self.crash(name)

    def node(self, name: str) -> ConsensusNode:
        found = self.members[name].node
        assert found is not None, f"{name} is not running"
        return found

    def running(self) -> list[ConsensusNode]:
        return [m.node for m in self.members.values() if m.node is not None]

    # -- time and transactions ------------------------------------------------------------

    def run_until(self, goal: Callable[[], bool], limit: float = 120.0) -> bool:
        """Run simulated time until ``goal()`` or ``limit`` seconds pass."""
        return self.scheduler.run(goal, limit)

    def run_for(self, seconds: float) -> None:
        self.scheduler.run(lambda: False, seconds)

    def all_at_least(self, height: int, names: list[str] | None = None) -> Callable[[], bool]:
        def goal() -> bool:
            nodes = self.running() if names is None else [self.node(n) for n in names]
            return all(n.height >= height for n in nodes)

        return goal

    def tx(self, signer: SigningKey, tx_type: TxType, **body: object) -> Tx:
        nonce = self.nonces.get(signer.address, 0) + 1
        self.nonces[signer.address] = nonce
        return sign(signer, CHAIN_ID, tx_type, nonce, dict(body))  # type: ignore[arg-type]

    def register(self, via: str, name: str) -> Tx:
        """Submit a registration of participant ``name`` (signed by the ISO) to ``via``."""
        participant = key(name)
        tx = self.tx(key("iso"), TxType.REGISTER, public_key=participant.public_key.hex(),
                     role="prosumer")  # fmt: skip
        result = self.node(via).submit(tx.wire())
        assert result.accepted, result
        return tx

    def committed(self, tx_id: str) -> Callable[[], bool]:
        def goal() -> bool:
            return all(n.storage.tx(tx_id) is not None for n in self.running())

        return goal

    def committed_on(self, tx_id: str, names: list[str]) -> Callable[[], bool]:
        def goal() -> bool:
            return all(self.node(n).storage.tx(tx_id) is not None for n in names)

        return goal

    # -- invariants -----------------------------------------------------------------------

    def check(self, names: list[str] | None = None) -> int:
        """Agreement, validity and durability over the given (default: running) nodes;
        the highest height they share."""
        nodes = self.running() if names is None else [self.node(n) for n in names]
        assert nodes
        top = max(n.height for n in nodes)
        for height in range(1, top + 1):
            hashes = set()
            for node in nodes:
                header = node.storage.header(height)
                if header is None:
                    continue
                hashes.add((header.hash, header.app_hash))
                commit = node.storage.commit(height)
                assert commit is not None, f"{height}: no commit stored"
                verify_commit(self.genesis.chain_id, node.app.validator_set(height), header,
                              commit)  # fmt: skip
                block = node.storage.block(height)
                if block is not None:
                    assert block.header == header
                    for wire in block.txs:
                        self.seen_committed.setdefault(wire.hex(), height)
            assert len(hashes) <= 1, f"nodes disagree at height {height}: {hashes}"
        for wire_hex, height in self.seen_committed.items():
            for node in nodes:
                if node.height >= height and node.storage.base < height:
                    block = node.storage.block(height)
                    assert block is not None
                    assert bytes.fromhex(wire_hex) in block.txs, f"tx lost at {height}"
        return min(n.height for n in nodes)
