"""Ledger time against the wall clock: how far a transaction's block time is from the
moment its commit is answered, on an idle chain and under steady load.

    .venv/bin/python -m bench.block_time [--validators 1,4] [--idle 30] [--pause 3]
        [--rate 50] [--seconds 10] [--dir DIR]

For each network size N: ``transactiva testnet init --validators N`` in a fresh
folder, every node started as ``python -m ledger_core node`` (real SQLite files,
WAL and private-validator fsyncs, WebSocket P2P on 127.0.0.1, default timeouts and
pacing: ``block_interval`` 0.2 s and an empty block only every 60 s, so between the
test's transactions the chain is idle). Set-up, not measured: participants are
registered.

* ``idle``: ``--idle`` transactions, one at a time, each after a pause of 0.3 s to
  ``--pause`` seconds (uniform) with nothing else pending (the chain is idle: no
  block in progress), each to the next node in turn with ``POST /txs?wait=true``.
* ``load``: ``--rate`` transactions per second for ``--seconds`` (open loop, one
  transaction per request, spread over the nodes).

For every transaction: ``latency`` is from sending the request to its answer (the
transaction committed on that node); ``error`` is the wall clock when the answer
arrived minus the time of the block holding the transaction (``header.time_ms``),
i.e. how far the ledger's time of the commit is behind the wall clock at the commit
(an upper bound: the answer comes after the commit; against a node from before
proposer-based timestamps, whose headers have whole seconds, it includes up to
a second of rounding). Every transaction must commit
with code ``ok``, and every node must end with the same height and app hash.
The nodes and this process read the same clock. Percentiles are nearest-rank
(with 30 samples p99 is the largest). About a minute and a quarter per network size.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import io
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp

from ledger_core.cli import main as cli
from ledger_core.demo.chain import free_port_run
from ledger_core.node.home import Config, Home, write_config
from ledger_core.types.crypto import SigningKey
from ledger_core.types.tx import Tx, TxType, sign

PEOPLE = 64


@dataclass
class Node:
    name: str
    home: Home
    api: str
    token: str
    process: subprocess.Popen[bytes] | None = None


@dataclass
class Samples:
    """Per transaction: latency and error, in seconds."""

    latency: list[float] = field(default_factory=list)
    error: list[float] = field(default_factory=list)


def _person(i: int) -> SigningKey:
    return SigningKey.from_seed(f"block time bench {i}".encode().ljust(32, b".")[:32])


def _init(root: Path, validators: int) -> list[Node]:
    out = io.StringIO()
    args = ["testnet", "init", "--validators", str(validators), "--dir", str(root)]
    args += ["--base-port", str(free_port_run(2 * validators)), "--chain-id", "bench-time"]
    if cli(args, out=out) != 0:
        raise RuntimeError(out.getvalue())
    nodes = []
    for i in range(validators):
        home = Home(root / f"node{i}")
        config = home.config()
        write_config(home, Config.from_json({**config.to_json(), "execute_contracts": False}))
        api = f"http://127.0.0.1:{config.api_port}/api/v1"
        nodes.append(Node(f"node{i}", home, api, home.token()))
    return nodes


def _start(node: Node) -> None:
    command = [sys.executable, "-m", "ledger_core", "node", "--dir", str(node.home.path)]
    with (node.home.path / "node.log").open("ab") as log:
        node.process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)  # noqa: S603


def _stop(nodes: list[Node]) -> None:
    for node in nodes:
        if node.process is not None and node.process.poll() is None:
            node.process.send_signal(signal.SIGINT)
    for node in nodes:
        if node.process is not None:
            try:
                node.process.wait(30)
            except subprocess.TimeoutExpired:
                node.process.kill()
                node.process.wait(10)


class Bench:
    """One network's session: submissions, block headers, checks."""

    def __init__(self, session: aiohttp.ClientSession, nodes: list[Node]) -> None:
        self.session = session
        self.nodes = nodes
        self.chain = nodes[0].home.genesis().chain_id
        self.nonces: dict[str, int] = {}
        self.times: dict[int, int] = {}

    async def get(self, node: Node, path: str) -> dict[str, Any]:
        headers = {"Authorization": f"Bearer {node.token}"}
        async with self.session.get(node.api + path, headers=headers) as answer:
            body: dict[str, Any] = await answer.json()
            return body

    async def ready(self) -> None:
        deadline = time.monotonic() + 60
        for node in self.nodes:
            while True:
                with contextlib.suppress(aiohttp.ClientError, OSError):
                    status = await self.get(node, "/status")
                    if status["peers"]["count"] >= len(self.nodes) - 1:
                        break
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{node.name} is not up; see {node.home.path}/node.log")
                await asyncio.sleep(0.2)

    def signed(self, signer: SigningKey, tx_type: TxType, body: dict[str, Any]) -> Tx:
        nonce = self.nonces.get(signer.address, 0) + 1
        self.nonces[signer.address] = nonce
        return sign(signer, self.chain, tx_type, nonce, body)

    async def submit(self, node: Node, tx: Tx) -> tuple[float, float, int]:
        """Post with ``wait=true``: (sent, answered) wall-clock times and the height."""
        headers = {"Authorization": f"Bearer {node.token}"}
        sent = time.time()
        async with self.session.post(
            f"{node.api}/txs?wait=true", data=tx.wire(), headers=headers
        ) as answer:
            body = await answer.json()
        answered = time.time()
        if body.get("status") != "committed" or body.get("code") != "ok":
            raise RuntimeError(f"not committed with ok: {body}")
        return sent, answered, int(body["height"])

    async def block_time_ms(self, node: Node, height: int) -> int:
        if height not in self.times:
            header = (await self.get(node, f"/blocks/{height}"))["header"]
            # A node from before proposer-based timestamps has whole seconds only.
            self.times[height] = int(header.get("time_ms", header["time"] * 1000))
        return self.times[height]

    async def setup(self) -> None:
        await self.ready()
        operator = self.nodes[0].home.participant_key()
        for i in range(PEOPLE):
            body = {"public_key": _person(i).public_key.hex(), "role": "prosumer"}
            tx = self.signed(operator, TxType.REGISTER, body)
            if i < PEOPLE - 1:
                headers = {"Authorization": f"Bearer {self.nodes[0].token}"}
                async with self.session.post(
                    f"{self.nodes[0].api}/txs", data=tx.wire(), headers=headers
                ) as answer:
                    await answer.read()
            else:
                _, _, height = await self.submit(self.nodes[0], tx)
        for node in self.nodes:  # every node has the participants
            deadline = time.monotonic() + 60
            while (await self.get(node, "/status"))["height"] < height:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{node.name} is behind after set-up")
                await asyncio.sleep(0.1)

    def deposit(self, i: int) -> Tx:
        return self.signed(_person(i % PEOPLE), TxType.DEPOSIT_REQUEST, {"amount": 100})

    async def one(self, node: Node, tx: Tx, into: Samples) -> None:
        sent, answered, height = await self.submit(node, tx)
        stamp = await self.block_time_ms(node, height) / 1000
        into.latency.append(answered - sent)
        into.error.append(answered - stamp)

    async def idle(self, count: int, pause: float, rng: random.Random) -> Samples:
        samples = Samples()
        for i in range(count):
            await asyncio.sleep(rng.uniform(0.3, max(0.3, pause)))
            await self.one(self.nodes[i % len(self.nodes)], self.deposit(i), samples)
        return samples

    async def load(self, rate: float, seconds: float) -> Samples:
        samples = Samples()
        count = int(rate * seconds)
        start = time.monotonic()
        tasks = []
        for i in range(count):
            delay = start + i / rate - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            # One participant's transactions go to one node, in nonce order.
            person = i % PEOPLE
            node = self.nodes[person % len(self.nodes)]
            tasks.append(asyncio.create_task(self.one(node, self.deposit(person), samples)))
        await asyncio.gather(*tasks)
        return samples

    async def agree(self) -> None:
        top = max([(await self.get(n, "/status"))["height"] for n in self.nodes])
        deadline = time.monotonic() + 60
        while True:
            statuses = [await self.get(n, "/status") for n in self.nodes]
            if all(s["height"] >= top for s in statuses):
                break
            if time.monotonic() > deadline:
                raise RuntimeError("the nodes did not reach the same height")
            await asyncio.sleep(0.1)
        hashes = set()
        for node in self.nodes:
            block = await self.get(node, f"/blocks/{top}")
            hashes.add((block["hash"], block["header"]["app_hash"]))
        if len(hashes) != 1:
            raise RuntimeError(f"the nodes disagree at height {top}: {hashes}")


def _percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    rank = max(1, -(-len(ordered) * share // 1))  # nearest rank, ceil
    return ordered[int(rank) - 1]


async def _measure(
    nodes: list[Node], idle: int, pause: float, rate: float, seconds: float
) -> dict[str, Samples]:
    timeout = aiohttp.ClientTimeout(total=120)
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(timeout=timeout, connector=connector) as session:
        bench = Bench(session, nodes)
        await bench.setup()
        await asyncio.sleep(1.0)  # idle before the first measurement
        results = {"idle": await bench.idle(idle, pause, random.Random(len(nodes)))}
        results["load"] = await bench.load(rate, seconds)
        await bench.agree()
        return results


def _run(root: Path, validators: int, args: argparse.Namespace) -> dict[str, Samples]:
    nodes = _init(root, validators)
    try:
        for node in nodes:
            _start(node)
        return asyncio.run(_measure(nodes, args.idle, args.pause, args.rate, args.seconds))
    finally:
        _stop(nodes)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--validators", default="1,4", help="network sizes, e.g. 1,4")
    parser.add_argument("--idle", type=int, default=30, help="transactions to an idle chain")
    parser.add_argument("--pause", type=float, default=3.0, help="idle: longest pause, s")
    parser.add_argument("--rate", type=float, default=50.0, help="load: transactions/s")
    parser.add_argument("--seconds", type=float, default=10.0, help="load: how long")
    parser.add_argument("--dir", type=Path, help="where the homes go (default: a temp dir)")
    args = parser.parse_args(argv)
    sizes = [int(n) for n in args.validators.split(",")]
    before = os.getloadavg()
    print(f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {os.cpu_count()} CPUs, load average "
          f"{before[0]:.2f} {before[1]:.2f} {before[2]:.2f}")  # fmt: skip
    header = (
        f"{'validators':>10} {'phase':>5} {'txs':>5} {'latency p50':>12} {'p99':>7} "
        f"{'error p50':>10} {'p99':>7} {'max':>7} {'min':>7}"
    )
    print(header)
    for size in sizes:
        base = args.dir if args.dir is not None else Path(tempfile.mkdtemp(prefix="bench-time-"))
        root = base / f"net{size}"
        if root.exists():
            shutil.rmtree(root)
        try:
            results = _run(root, size, args)
        finally:
            if args.dir is None:
                shutil.rmtree(base, ignore_errors=True)
        for phase, samples in results.items():
            lat, err = samples.latency, samples.error
            print(
                f"{size:>10} {phase:>5} {len(lat):>5} {_percentile(lat, 0.5):>11.3f}s "
                f"{_percentile(lat, 0.99):>6.3f}s {_percentile(err, 0.5):>9.3f}s "
                f"{_percentile(err, 0.99):>6.3f}s {max(err):>6.3f}s {min(err):>6.3f}s",
                flush=True,
            )
    after = os.getloadavg()
    print(f"load average after: {after[0]:.2f} {after[1]:.2f} {after[2]:.2f}")


if __name__ == "__main__":
    main()
