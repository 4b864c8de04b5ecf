"""Randomised faults on a network of real node processes, with the invariants after each step.

    .venv/bin/python -m tests.cluster.chaos [--seeds 1,2,3] [--steps 12] [--dir DIR]

Four validators and an observer (``tests/cluster/testnet.py``: processes on
127.0.0.1, a fault proxy on every link) carry a steady load — each participant
posts deposit requests, one at a time, to the node it is bound to, waiting for
each to commit. Each step draws a perturbation from a seeded generator:

* ``kill``: kill -9 of a validator, restarted after 1 to 4 s, sometimes with the
  test crash hook (``TRANSACTIVA_CRASH_AT``) so that it dies again at its next
  signature, before or after the write-ahead-log fsync;
* ``restart``: a graceful stop and start of any node;
* ``pause``: SIGSTOP of any node for 3 to 8 s (longer than the round timeouts), then SIGCONT;
* ``isolate``: every link of one node cut for 2 to 6 s;
* ``split``: the validators split two and two (the observer on either side) for
  3 to 6 s — the chain must halt, never fork;
* ``links``: every link drops 5 to 20 % of messages, duplicates, delays, jitters
  and reorders for 4 to 8 s;
* ``wipe``: the observer's ledger deleted; it catches up by block sync.

After each step everything is healed, and once a new transaction commits on
every node the checks of :meth:`LocalNet.check` run: the same block and app hash
at every height on every node, valid commits, no committed transaction missing,
no evidence (nobody here signs twice). The seed and step are printed, so a
failure can be replayed; process timing makes runs similar, not identical.

This is the long randomised version (minutes) and is run by hand, not by
``./scripts/test``, whose fault tests (``tests/cluster/test_faults.py``) cover
each perturbation once.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import random
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

import aiohttp

from ledger_core.serve import CRASH_ENV
from tests.cluster.testnet import LocalNet, started

PERTURBATIONS = ("kill", "restart", "pause", "isolate", "split", "links", "wipe")


class Load:
    """Participants posting deposit requests, each to its own node, one at a time."""

    def __init__(self, net: LocalNet) -> None:
        self.net = net
        self.stop = asyncio.Event()
        self.tasks: list[asyncio.Task[None]] = []
        self.committed = 0
        self.unknown = 0

    def start(self) -> None:
        for person in range(len(self.net.people) - 1):  # the last one is for probes
            self.tasks.append(asyncio.create_task(self._lane(person)))

    async def _lane(self, person: int) -> None:
        node = self.net.nodes[person % len(self.net.nodes)]
        while not self.stop.is_set():
            if not node.running or node.paused:
                await asyncio.sleep(0.2)
                continue
            tx = self.net.deposits(1, person)[0]
            try:
                async with asyncio.timeout(40):
                    results = await self.net.submit(node, [tx], wait=True)
                self.committed += 1
                assert results[0]["code"] == "ok"
            except (aiohttp.ClientError, OSError, TimeoutError, AssertionError, KeyError):
                # Not told it committed: it may or may not, and is not counted on.
                self.unknown += 1
                self.net.committed.pop(tx.id, None)
                await asyncio.sleep(0.3)

    async def close(self) -> None:
        self.stop.set()
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)


async def perturb(net: LocalNet, rng: random.Random, kind: str, say: Callable[[str], None]) -> None:
    """One perturbation, left in place for its duration, then undone."""
    validators = net.nodes[: net.validators]
    if kind == "kill":
        victim = rng.choice(validators)
        hook = rng.choice([None, "signed", "wal_synced"])
        say(f"kill -9 {victim.name}" + (f", restart with {CRASH_ENV}={hook}" if hook else ""))
        victim.kill()
        await asyncio.sleep(rng.uniform(1, 4))
        height = max((await net.heights()).values())
        victim.start({CRASH_ENV: f"{hook}@{height + 1}"} if hook else None)
        if hook:
            # It dies at its next signature (empty blocks keep the chain moving); a node
            # that did not is stopped. Either way it comes back without the hook.
            for _ in range(75):  # 15 s at most
                if not victim.running:
                    break
                await asyncio.sleep(0.2)
            say(f"{victim.name} " + ("still running" if victim.running else "died at its hook"))
            victim.kill()
            victim.start()
        await asyncio.sleep(rng.uniform(2, 5))
    elif kind == "restart":
        node = rng.choice(net.nodes)
        say(f"graceful restart of {node.name}")
        node.stop()
        node.start()
    elif kind == "pause":
        node = rng.choice(net.nodes)
        seconds = rng.uniform(3, 8)
        say(f"SIGSTOP {node.name} for {seconds:.1f} s")
        node.pause()
        await asyncio.sleep(seconds)
        node.resume()
    elif kind == "isolate":
        index = rng.randrange(len(net.nodes))
        seconds = rng.uniform(2, 6)
        say(f"isolate {net.nodes[index].name} for {seconds:.1f} s")
        net.isolate(index)
        await asyncio.sleep(seconds)
    elif kind == "split":
        order = list(range(net.validators))
        rng.shuffle(order)
        left, right = order[:2], order[2:]
        (left if rng.random() < 0.5 else right).extend(range(net.validators, len(net.nodes)))
        seconds = rng.uniform(3, 6)
        say(f"split {left} | {right} for {seconds:.1f} s")
        net.cut(left, right)
        await asyncio.sleep(1.0)
        halted = await net.heights(validators)
        await asyncio.sleep(seconds)
        assert await net.heights(validators) == halted, "two of four validators decided a block"
    elif kind == "links":
        faults: dict[str, object] = {
            "drop": round(rng.uniform(0.05, 0.2), 2),
            "duplicate": round(rng.uniform(0, 0.1), 2),
            "delay": round(rng.uniform(0, 0.1), 3),
            "jitter": round(rng.uniform(0, 0.05), 3),
            "reorder": rng.choice([0, 2, 4]),
        }
        seconds = rng.uniform(4, 8)
        say(f"every link {faults} for {seconds:.1f} s")
        for proxy in net.proxies.values():
            proxy.set("both", **faults)
        await asyncio.sleep(seconds)
    else:
        observer = net.nodes[-1]
        say(f"wipe {observer.name}")
        observer.kill()
        observer.wipe()
        observer.start()
    net.heal()


async def recover(net: LocalNet) -> None:
    """Undo what is left: resume, restart the dead, and wait until all move together."""
    for node in net.nodes:
        if node.paused:
            node.resume()
        if not node.running:
            node.start()
    for node in net.nodes:
        await net.wait_answering(node)
    probe = net.deposits(1, len(net.people) - 1)[0]
    await net.submit(net.nodes[0], [probe], wait=False)
    await net.wait_for(lambda: net.committed_on_all(probe.id), 60, "a new transaction everywhere")


def _tell(say: Callable[[str], None], prefix: str, text: str) -> None:
    say(prefix + text)


async def run_seed(root: Path, seed: int, steps: int, say: Callable[[str], None]) -> None:
    rng = random.Random(seed)  # noqa: S311 - choosing faults, not keys
    net = await started(root, 4, 1, participants=9)
    load = Load(net)
    try:
        await net.register_people()
        load.start()
        for step in range(steps):
            kind = rng.choice(PERTURBATIONS)
            await perturb(net, rng, kind, partial(_tell, say, f"seed {seed} step {step}: "))
            await recover(net)
            await net.check()
            assert net.evidence == [], f"seed {seed} step {step}: evidence {net.evidence}"
        assert load.committed > 0
        say(f"seed {seed}: {load.committed} committed, {load.unknown} not known to commit")
    finally:
        net.kill_all()
        await load.close()
        await net.close()


def say(text: str) -> None:
    sys.stdout.write(text + "\n")
    sys.stdout.flush()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", default="1,2,3")
    parser.add_argument("--steps", type=int, default=12)
    parser.add_argument("--dir", type=Path, default=None)
    args = parser.parse_args()
    for seed in (int(s) for s in args.seeds.split(",")):
        root = Path(tempfile.mkdtemp(prefix=f"chaos-{seed}-", dir=args.dir))
        started_at = time.monotonic()
        try:
            asyncio.run(run_seed(root, seed, args.steps, say))
        finally:
            with contextlib.suppress(OSError):
                shutil.rmtree(root)
        say(f"seed {seed}: ok in {time.monotonic() - started_at:.0f} s")


if __name__ == "__main__":
    main()
