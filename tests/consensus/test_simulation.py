"""Randomised runs in simulated time: faults chosen by a seed, invariants checked at the end.

Each seed drives four validators and a follower through drops, duplicates,
reordering and delays, crashes and restarts of one validator at a time
(``f = 1``), and partitions of any shape; transactions arrive throughout. At the
end the network heals and every node must reach the same height, with the same
blocks and app hashes, valid commits on every block and no committed
transaction lost. The default run covers a few seeds;
``TRANSACTIVA_LONG=1`` runs many more, for longer.
"""

from __future__ import annotations

import os
import random
from pathlib import Path

import pytest

from ledger_core.consensus.loopback import Faults
from ledger_core.types.tx import TxType
from tests.consensus.cluster import Cluster
from tests.state.chain import key

LONG = os.environ.get("TRANSACTIVA_LONG") == "1"
SEEDS = range(40) if LONG else range(3)
STEPS = 60 if LONG else 16
PEOPLE = 3


def simulate(root: Path, seed: int) -> tuple[int, int, str]:
    """Run one seed; the final common height, the number of committed transactions and
    the hash of the block at that height."""
    rng = random.Random(seed)  # noqa: S311 - a reproducible schedule of faults
    cluster = Cluster(root, validators=4, followers=1, seed=seed)
    try:
        for i in range(PEOPLE):
            tx = cluster.register("v0", f"sim-{i}")
            assert cluster.run_until(cluster.committed(tx.id), 60)
        validators = [f"v{i}" for i in range(4)]
        down: str | None = None
        pending: dict[str, str] = {}
        accepted: list[str] = []
        for _ in range(STEPS):
            cluster.net.set_faults(
                Faults(
                    drop=rng.choice([0.0, 0.02, 0.1]),
                    duplicate=rng.choice([0.0, 0.05]),
                    delay_ms=rng.choice([(1, 10), (5, 80), (20, 400)]),
                    reorder=rng.random() < 0.5,
                )
            )
            event = rng.random()
            if event < 0.2 and down is None:
                down = rng.choice(validators)
                cluster.crash(down)
            elif event < 0.35 and down is not None:
                cluster.start(down)
                down = None
            elif event < 0.5:
                names = sorted(cluster.members)
                rng.shuffle(names)
                cut = rng.randint(1, len(names) - 1)
                cluster.net.partition(set(names[:cut]), set(names[cut:]))
            elif event < 0.65:
                cluster.net.heal()
            for i in range(PEOPLE):
                person = f"sim-{i}"
                previous = pending.get(person)
                live = [n for n in validators if n != down]
                if (
                    previous is not None
                    and not any(cluster.node(n).storage.tx(previous) for n in live)
                    and any(previous in cluster.node(n).mempool for n in live)
                ):
                    continue  # one transaction of a signer at a time
                tx = cluster.tx(key(person), TxType.DEPOSIT_REQUEST, amount=1 + rng.randrange(99))
                if cluster.node(rng.choice(live)).submit(tx.wire()).accepted:
                    pending[person] = tx.id
                    accepted.append(tx.id)
            cluster.run_for(rng.uniform(0.5, 6.0))
            cluster.check()
        cluster.net.heal()
        cluster.net.set_faults(Faults())
        if down is not None:
            cluster.start(down)
        top = max(n.height for n in cluster.running())
        assert cluster.run_until(cluster.all_at_least(top + 2), 180), "liveness after healing"
        height = cluster.check()
        committed = sum(1 for tx_id in accepted if cluster.node("v0").storage.tx(tx_id))
        header = cluster.node("v0").storage.header(height)
        assert header is not None
        return height, committed, header.hash
    finally:
        cluster.close()


@pytest.mark.parametrize("seed", SEEDS)
def test_random_faults_never_fork_and_the_chain_recovers(homes: Path, seed: int) -> None:
    height, committed, _ = simulate(homes, seed)
    assert height > PEOPLE
    assert committed > 0


def test_a_seed_replays_exactly(homes: Path) -> None:
    first = simulate(homes / "a", 7)
    second = simulate(homes / "b", 7)
    assert first == second
