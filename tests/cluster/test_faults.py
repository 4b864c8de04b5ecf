"""Fault tests with real node processes on 127.0.0.1, every link through a fault proxy.

Each test starts its own network (``tests/cluster/testnet.py``), perturbs it —
kill -9 at a chosen signing point, SIGSTOP, cut links, a Byzantine validator,
wiped homes — and afterwards checks, through every node's API, that all honest
nodes hold the same block and app hash at every height, that every block
carries valid precommits of more than two thirds of the power, and that no
transaction a client was told had committed is missing. Every process is killed
in ``finally``. ``TRANSACTIVA_LONG=1`` adds the other crash point; the
randomised version is ``python -m tests.cluster.chaos`` (run by hand).
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from functools import partial
from pathlib import Path
from typing import Any

import pytest

from ledger_core.consensus.wal import frame
from ledger_core.serve import CRASH_ENV
from tests.cluster.testnet import ROUND_SECONDS, SLACK, LocalNet, last_signed, started, wal_files

LONG = os.environ.get("TRANSACTIVA_LONG") == "1"
CRASH_POINTS = ["signed", "wal_synced"] if LONG else ["signed"]


@asynccontextmanager
async def running_net(
    root: Path,
    validators: int,
    observers: int = 0,
    **kwargs: Any,
) -> AsyncIterator[LocalNet]:
    net = await started(root, validators, observers, **kwargs)
    try:
        yield net
    finally:
        await net.close()


async def until(predicate: Callable[[], bool], seconds: float, what: str) -> None:
    seconds *= SLACK
    deadline = time.monotonic() + seconds
    while not predicate():
        assert time.monotonic() < deadline, f"{what}: not within {seconds} s"
        await asyncio.sleep(0.1)


@pytest.mark.parametrize("point", CRASH_POINTS)
async def test_a_validator_killed_at_a_signature_restarts_without_signing_twice(
    homes: Path, point: str
) -> None:
    async with running_net(homes, 4) as net:
        await net.register_people()
        spare, victim = net.nodes[3], net.nodes[1]
        spare.stop()  # the other three are all needed now: the crash halts the chain
        victim.stop()
        crash_at = max((await net.heights()).values()) + 2
        victim.start({CRASH_ENV: f"{point}@{crash_at}"})
        await net.wait_answering(victim)
        pending = []
        for _ in range(100):  # the victim dies at its first signature at crash_at
            if not victim.running:
                break
            sent = await net.offer(net.nodes[0], net.deposits(1, 0))
            if sent is not None:  # else the halting chain's node pushed back: not taken
                assert sent[0]["code"] == "pending", sent  # taken: it must commit later
                pending.append(sent[0]["id"])
            await asyncio.sleep(0.2)
        assert victim.process is not None
        assert victim.process.wait(10) == -9, "killed by its own SIGKILL"
        assert f"{CRASH_ENV}: killing this process at '{point}'" in victim.log_text()
        signed = last_signed(victim)
        assert signed["height"] == crash_at
        await asyncio.sleep(ROUND_SECONDS)
        halted = await net.heights()
        assert set(halted.values()) == {crash_at - 1}, "two of four validators decide nothing"
        # A torn write at the end of the log, as a crash in the middle of a record leaves.
        newest = wal_files(victim)[-1]
        assert newest.name == f"{crash_at:012d}.wal"
        with newest.open("ab") as log:
            log.write(frame(b'{"vote":{"torn":true}}')[:-5])
        victim.start()
        await net.wait_answering(victim)
        for tx_id in pending:
            try:
                await net.wait_for(partial(net.committed_on_all, tx_id), 40, "committed")
            except AssertionError as err:
                # This test failed twice in CI with the chain moving on and one of these
                # transactions not committed everywhere: say where each node has it.
                seen = {n.name: await net.get(n, f"/txs/{tx_id}") for n in net.running()}
                statuses = {n.name: (await net.status(n)).get("mempool") for n in net.running()}
                order = pending.index(tx_id)
                raise AssertionError(
                    f"transaction {order + 1} of {len(pending)} ({tx_id}): {seen}; "
                    f"mempools: {statuses}\n{err}"
                ) from None
        assert "dropping" in victim.log_text(), "the torn record was cut off at restart"
        spare.start()
        await net.wait_answering(spare)
        await net.wait_height(max((await net.heights()).values()), [spare])
        await net.submit(victim, net.deposits(2, 2))  # it gossips and commits again
        await net.check()
        assert net.evidence == [], "no validator signed conflicting votes"
        for node in net.nodes:
            assert "signed conflicting votes" not in node.log_text()


async def test_a_validator_stopped_longer_than_every_timeout_catches_up(homes: Path) -> None:
    async with running_net(homes, 4) as net:
        await net.register_people()
        sleeper = net.nodes[2]
        sleeper.pause()
        paused_at = time.monotonic()
        before = max((await net.heights()).values())
        for i in range(3):
            await net.submit(net.nodes[i % 2], net.deposits(1, 0))
        # Longer than the timeouts of the first rounds together.
        await asyncio.sleep(max(0.0, 4 * ROUND_SECONDS - (time.monotonic() - paused_at)))
        assert max((await net.heights()).values()) > before, "three validators went on"
        sleeper.resume()
        top = max((await net.heights()).values())
        await net.wait_height(top, [sleeper])
        await net.submit(sleeper, net.deposits(2, 1))
        await net.check()
        assert net.evidence == []


async def test_an_isolated_proposer_is_replaced_by_the_next_round(homes: Path) -> None:
    # No empty blocks: the chain moves only for the test's transactions, so the
    # proposer of the next height is known before it starts.
    async with running_net(homes, 4, empty_block_every=120.0) as net:
        await net.register_people()
        status = await net.status(net.nodes[0])
        proposer = net.by_validator(status["validators"]["proposer"])
        index = net.nodes.index(proposer)
        net.isolate(index)
        others = [n for n in net.nodes if n is not proposer]
        height = status["height"]
        await net.submit(others[0], net.deposits(1, 0))
        # others[0] answered once it stored the block; others[1] may store it a moment later
        await net.wait_height(height + 1, [others[1]])
        code, block = await net.get(others[1], f"/blocks/{height + 1}")
        assert code == 200
        assert block["commit"]["round"] >= 1, "round 0 belonged to the isolated proposer"
        assert block["header"]["proposer"] != proposer.validator
        assert (await net.heights([proposer]))[proposer.name] == height, "alone it decides nothing"
        net.heal()
        top = max((await net.heights(others)).values())
        await net.wait_height(top, [proposer])
        await net.submit(proposer, net.deposits(1, 1))
        await net.check()


async def test_a_two_two_split_halts_without_forking_and_resumes_when_healed(
    homes: Path,
) -> None:
    async with running_net(homes, 4) as net:
        await net.register_people()
        net.cut([0, 1], [2, 3])
        await asyncio.sleep(ROUND_SECONDS)  # a height being decided may still finish
        halted = await net.heights()
        left = (await net.submit(net.nodes[0], net.deposits(1, 0), wait=False))[0]
        right = (await net.submit(net.nodes[3], net.deposits(1, 1), wait=False))[0]
        assert left["code"] == right["code"] == "pending"
        await asyncio.sleep(3 * ROUND_SECONDS)
        assert await net.heights() == halted, "neither side has more than two thirds"
        net.heal()
        for tx_id in (left["id"], right["id"]):
            await net.wait_for(partial(net.committed_on_all, tx_id), 40, "committed")
        await net.check()
        assert net.evidence == []


async def test_an_equivocating_validator_forks_nothing_and_is_jailed(homes: Path) -> None:
    async with running_net(homes, 4, modules={3: "tests.cluster.byzantine"}) as net:
        await net.register_people()
        byzantine = net.nodes[3]
        honest = net.nodes[:3]
        record = byzantine.home.path / "equivocations"

        async def jailed() -> bool:
            statuses = [await net.status(n) for n in honest]
            return all(
                byzantine.validator not in [v["address"] for v in s["validators"]["list"]]
                for s in statuses
            )

        for i in range(80):  # at least one proposal of the Byzantine validator has transactions
            if record.exists() and await jailed():
                break
            await net.submit(honest[i % 3], net.deposits(2, i % 4))
        lines = record.read_text().split()
        assert "proposal" in lines, "it sent two different proposals for one round"
        assert "vote" in lines, "and conflicting votes"
        await net.wait_for(jailed, 30, "the equivocating validator jailed")
        await net.submit(honest[1], net.deposits(2, 5))  # three honest validators go on
        await net.check(honest)
        assert net.evidence, "the evidence is in a block"
        assert {e["vote_a"]["validator"] for e in net.evidence} == {byzantine.validator}


async def test_wiped_nodes_catch_up_by_block_sync_and_by_snapshot(homes: Path) -> None:
    # Node 3 restores from a snapshot beyond 8 blocks; the observer (node 4) always syncs
    # blocks, however long the chain grows while the test runs on a busy machine.
    overrides = {
        3: {"consensus": {"snapshot_threshold": 8}},
        4: {"consensus": {"snapshot_threshold": 10**9}},
    }
    async with running_net(homes, 4, 1, overrides=overrides) as net:
        await net.register_people()
        first = net.deposits(2, 0)
        await net.submit(net.nodes[4], first)
        validator, observer = net.nodes[3], net.nodes[4]
        validator.kill()
        observer.kill()
        privval = (validator.home.path / "consensus" / "privval.json").read_bytes()
        validator.wipe()
        observer.wipe()
        # A validator keeps what it signed: without it, it could sign twice.
        (validator.home.path / "consensus").mkdir()
        (validator.home.path / "consensus" / "privval.json").write_bytes(privval)
        base = max((await net.heights()).values())
        for i in range(4):
            await net.submit(net.nodes[i % 3], net.deposits(1, 1))
        # Blocks larger than a small message: sync answers and snapshots are large too.
        await net.submit(net.nodes[0], net.deposits(400, 5))
        await net.wait_height(base + 10, net.nodes[:3])
        validator.start()
        observer.start()
        await net.wait_answering(validator)
        await net.wait_answering(observer)
        top = max((await net.heights(net.nodes[:3])).values())
        await net.wait_height(top, [validator, observer])
        assert "restored the state at height" in validator.log_text()
        assert "restored the state" not in observer.log_text(), "the observer synced blocks"
        code, _ = await net.get(validator, "/blocks/1")
        assert code == 404, "a node restored from a snapshot keeps no older blocks"
        await net.submit(validator, net.deposits(2, 2))
        await net.submit(observer, net.deposits(1, 3))
        # The restored validator votes again: its private validator signs at new heights.
        await net.submit(net.nodes[0], net.deposits(1, 4))
        assert last_signed(validator)["height"] > top
        # Replays are refused everywhere, whether the node has the block or only the state.
        replay = first[0].wire()
        async with net.session.post(  # type: ignore[union-attr]
            f"{net.nodes[1].api}/txs",
            data=replay,
            headers={"Authorization": f"Bearer {net.nodes[1].token}"},
        ) as answer:
            assert answer.status == 409
            assert (await answer.json())["error"]["code"] == "already_committed"
        async with net.session.post(  # type: ignore[union-attr]
            f"{validator.api}/txs",
            data=replay,
            headers={"Authorization": f"Bearer {validator.token}"},
        ) as answer:
            assert answer.status == 422
            assert (await answer.json())["error"]["code"] == "stale_nonce"
        async with net.session.post(  # type: ignore[union-attr]
            f"{observer.api}/txs",
            data=b"{" + b" " * 20_000 + b"}",
            headers={"Authorization": f"Bearer {observer.token}"},
        ) as answer:
            assert answer.status == 413
        await net.check()
