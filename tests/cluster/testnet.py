"""A network of real node processes on 127.0.0.1, with a fault proxy on every link.

:class:`LocalNet` writes the homes with ``transactiva testnet init``, then
rewrites each ``config.json`` so that every node reaches every other node
through a :class:`~ledger_core.p2p.faultproxy.FaultProxy` run by the test (one
per directed link: node ``a`` dials ``b`` at proxy ``(a, b)``; peer exchange
off, so nobody learns a direct address). Cutting the link ``{a, b}`` sets both
proxies to drop every message; the connections stay open, so healing is
immediate. Each node is ``python -m ledger_core node --dir HOME`` in its own
process (log in ``HOME/node.log``); the test can kill it with SIGKILL, pause
it with SIGSTOP, restart it with extra environment, or wipe its files.

The checks read every node over its HTTP API: :meth:`LocalNet.check` fetches
``/api/v1/blocks/{h}`` from each running node and asserts that they hold the
same block (hash recomputed from the header) and app hash at every height,
that each block's commit carries valid precommits of more than two thirds of
the genesis power, and that every transaction a client was told had
committed is in the block it was told, on every node.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import aiohttp

from ledger_core.cli import main
from ledger_core.consensus.light import commit_power
from ledger_core.demo.chain import free_port_run
from ledger_core.node.home import Config, Home, write_config
from ledger_core.p2p.faultproxy import FaultProxy
from ledger_core.types import codec
from ledger_core.types.block import Header
from ledger_core.types.crypto import SigningKey
from ledger_core.types.genesis import Genesis
from ledger_core.types.tx import Tx, TxType, decode, sign
from ledger_core.types.validators import ValidatorSet
from ledger_core.types.vote import Commit

PYTHON: Final = sys.executable
# Waits are generous on a loaded machine: every deadline below is multiplied by this
# (a passing test does not wait longer; a stuck one fails later).
SLACK = 3.0

# Short timeouts: rounds of a second or two, so faults resolve within a test.
FAST: Final[dict[str, int]] = {
    "propose_ms": 1000,
    "propose_delta_ms": 500,
    "prevote_ms": 500,
    "prevote_delta_ms": 250,
    "precommit_ms": 500,
    "precommit_delta_ms": 250,
    "rebroadcast_ms": 1000,
    "status_every_ms": 1000,
    "sync_timeout_ms": 2000,
}
# The longest any single step waits in round 0 (propose + prevote + precommit).
ROUND_SECONDS: Final = 2.0
START_SECONDS: Final = 40.0


@dataclass
class NodeProcess:
    """One node's home and, while it runs, its process."""

    name: str
    home: Home
    role: str
    api: str
    token: str
    node_id: str
    validator: str | None = None
    module: str = "ledger_core"
    process: subprocess.Popen[bytes] | None = None
    paused: bool = False

    @property
    def log(self) -> Path:
        return self.home.path / "node.log"

    def start(self, env: dict[str, str] | None = None) -> None:
        assert self.process is None or self.process.poll() is not None, f"{self.name} runs"
        command = [PYTHON, "-m", self.module, "--dir", str(self.home.path)]
        if self.module == "ledger_core":
            command.insert(3, "node")
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                command,
                stdout=log,
                stderr=subprocess.STDOUT,
                env={**os.environ, **(env or {})},
            )
        self.paused = False

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def kill(self) -> None:
        """SIGKILL: no goodbye of any kind."""
        if self.process is not None:
            if self.paused:
                self.resume()
            with contextlib.suppress(ProcessLookupError):
                self.process.kill()
            self.process.wait(15)

    def pause(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGSTOP)
        self.paused = True

    def resume(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGCONT)
        self.paused = False

    def stop(self, seconds: float = 15) -> int | None:
        """SIGINT, then SIGKILL after ``seconds``; the exit status (None: killed)."""
        if self.process is None or self.process.poll() is not None:
            return None if self.process is None else self.process.returncode
        if self.paused:
            self.resume()
        self.process.send_signal(signal.SIGINT)
        try:
            return self.process.wait(seconds)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(15)
            return None

    def wipe(self) -> None:
        """Delete the ledger, the write-ahead log and the private validator's state."""
        assert not self.running
        for name in ("ledger.db", "ledger.db-wal", "ledger.db-shm", "local.db"):
            (self.home.path / name).unlink(missing_ok=True)
        shutil.rmtree(self.home.path / "consensus", ignore_errors=True)

    def log_text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""


LOG_TAIL_LINES = 25  # of each node's log, in a report of a goal not reached


@dataclass
class LocalNet:
    """Node processes and the proxies between them."""

    root: Path
    validators: int
    observers: int = 0
    consensus: dict[str, int] = field(default_factory=lambda: dict(FAST))
    block_interval: float = 0.2
    empty_block_every: float = 1.0
    participants: int = 8
    nodes: list[NodeProcess] = field(default_factory=list)
    proxies: dict[tuple[int, int], FaultProxy] = field(default_factory=dict)
    committed: dict[str, int] = field(default_factory=dict)
    nonces: dict[str, int] = field(default_factory=dict)
    modules: dict[int, str] = field(default_factory=dict)
    overrides: dict[int, dict[str, Any]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.session: aiohttp.ClientSession | None = None
        self.genesis: Genesis | None = None
        self.evidence: list[dict[str, Any]] = []
        self.people = [
            SigningKey.from_seed(f"cluster participant {i}".encode().ljust(32, b".")[:32])
            for i in range(self.participants)
        ]

    # -- set-up -----------------------------------------------------------------------

    async def create(self) -> None:
        """Write the homes, start the proxies and every node; wait until all answer."""
        total = self.validators + self.observers
        # One checked run of ports for the nodes (API, P2P) and then every proxy: a proxy
        # bound to any free port could take a node's port before the node starts.
        base = free_port_run(2 * total + total * self.validators)
        proxy_ports = iter(range(base + 2 * total, base + 2 * total + total * self.validators))
        out = io.StringIO()
        status = main(
            [
                "testnet", "init", "--validators", str(self.validators),
                "--observers", str(self.observers), "--dir", str(self.root),
                "--base-port", str(base), "--chain-id", "cluster-test",
            ],
            out=out,
        )  # fmt: skip
        assert status == 0, out.getvalue()
        homes = [Home(self.root / f"node{i}") for i in range(total)]
        configs = [home.config() for home in homes]
        self.genesis = homes[0].genesis()
        for i, (home, config) in enumerate(zip(homes, configs, strict=True)):
            self.nodes.append(
                NodeProcess(
                    name=home.path.name,
                    home=home,
                    role=config.role,
                    api=f"http://127.0.0.1:{config.api_port}/api/v1",
                    token=home.token(),
                    node_id=home.node_key(config).address,
                    validator=(
                        home.validator_key().address if home.validator_key_file.exists() else None
                    ),
                    module=self.modules.get(i, "ledger_core"),
                )
            )
        for a in range(total):
            for b in range(self.validators):
                if a != b:
                    proxy = FaultProxy(
                        f"127.0.0.1:{configs[b].p2p_port}",
                        port=next(proxy_ports),
                        seed=100 * a + b,
                    )
                    await proxy.start()
                    self.proxies[(a, b)] = proxy
        for a, (home, config) in enumerate(zip(homes, configs, strict=True)):
            peers = [
                f"{self.nodes[b].node_id}@{self.proxies[(a, b)].address}"
                for b in range(self.validators)
                if b != a
            ]
            raw = {
                **config.to_json(),
                "seeds": [],
                "persistent_peers": peers,
                "pex": False,
                "block_interval": self.block_interval,
                "empty_block_every": self.empty_block_every,
                "consensus": dict(self.consensus),
                "execute_contracts": False,
                **self.overrides.get(a, {}),
            }
            write_config(home, Config.from_json(raw))
        self.session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=40))
        for node in self.nodes:
            node.start()
        for node in self.nodes:
            await self.wait_answering(node)

    def kill_all(self) -> None:
        """SIGKILL every node process (nothing to await: safe in any ``finally``)."""
        for node in self.nodes:
            with contextlib.suppress(Exception):
                node.kill()

    async def close(self) -> None:
        """Kill every node, stop every proxy, close the HTTP session."""
        self.kill_all()
        for proxy in self.proxies.values():
            with contextlib.suppress(Exception):
                await proxy.stop()
        if self.session is not None:
            await self.session.close()

    @property
    def operator(self) -> SigningKey:
        return self.nodes[0].home.participant_key()

    # -- talking to nodes ---------------------------------------------------------------

    def _session(self) -> aiohttp.ClientSession:
        assert self.session is not None
        return self.session

    def _headers(self, node: NodeProcess) -> dict[str, str]:
        return {"Authorization": f"Bearer {node.token}"}

    async def get(self, node: NodeProcess, path: str) -> tuple[int, Any]:
        async with self._session().get(node.api + path, headers=self._headers(node)) as answer:
            return answer.status, await answer.json()

    async def status(self, node: NodeProcess) -> dict[str, Any]:
        code, body = await self.get(node, "/status")
        assert code == 200, body
        assert isinstance(body, dict)
        return body

    async def wait_answering(self, node: NodeProcess, seconds: float = START_SECONDS) -> None:
        deadline = time.monotonic() + seconds
        while True:
            if not node.running:
                raise AssertionError(f"{node.name} exited:\n{node.log_text()[-3000:]}")
            with contextlib.suppress(aiohttp.ClientError, OSError):
                await self.status(node)
                return
            if time.monotonic() > deadline:
                raise AssertionError(f"{node.name} did not answer within {seconds} s")
            await asyncio.sleep(0.1)

    def running(self) -> list[NodeProcess]:
        return [n for n in self.nodes if n.running and not n.paused]

    async def heights(self, nodes: Iterable[NodeProcess] | None = None) -> dict[str, int]:
        chosen = list(self.running() if nodes is None else nodes)
        statuses = await asyncio.gather(*(self.status(n) for n in chosen))
        return {n.name: int(s["height"]) for n, s in zip(chosen, statuses, strict=True)}

    async def wait_for(
        self,
        goal: Callable[[], Awaitable[bool]],
        seconds: float,
        what: str,
    ) -> None:
        """Poll ``goal`` until it holds; AssertionError after ``seconds`` (times SLACK)."""
        seconds *= SLACK
        deadline = time.monotonic() + seconds
        while not await goal():
            if time.monotonic() > deadline:
                raise AssertionError(f"{what}: not within {seconds} s ({await self._where()})")
            await asyncio.sleep(0.2)

    async def _where(self) -> str:
        """Heights, and the last lines each node logged: what a failure report needs."""
        where = "heights unknown"
        with contextlib.suppress(Exception):
            where = str(await self.heights())
        for node in self.nodes:
            tail = node.log_text().splitlines()[-LOG_TAIL_LINES:]
            where += f"\n--- {node.name} ({'running' if node.running else 'stopped'}):\n"
            where += "\n".join(tail)
        return where

    async def wait_height(
        self, height: int, nodes: Iterable[NodeProcess] | None = None, seconds: float = 40
    ) -> None:
        chosen = list(self.running() if nodes is None else nodes)

        async def reached() -> bool:
            return min((await self.heights(chosen)).values()) >= height

        await self.wait_for(reached, seconds, f"height {height} on {[n.name for n in chosen]}")

    # -- transactions -------------------------------------------------------------------

    def signed(self, signer: SigningKey, tx_type: TxType, body: dict[str, codec.Value]) -> Tx:
        assert self.genesis is not None
        nonce = self.nonces.get(signer.address, 0) + 1
        self.nonces[signer.address] = nonce
        return sign(signer, self.genesis.chain_id, tx_type, nonce, body)

    def deposits(self, count: int, person: int = 0) -> list[Tx]:
        """``count`` deposit requests of participant ``person`` (valid once registered)."""
        return [
            self.signed(self.people[person], TxType.DEPOSIT_REQUEST, {"amount": 100 + i})
            for i in range(count)
        ]

    async def submit(
        self, node: NodeProcess, txs: list[Tx], *, wait: bool = True
    ) -> list[dict[str, Any]]:
        """Post a batch; with ``wait``, every transaction must commit with code ok (and is
        remembered as committed)."""
        answer, body = await self._post_batch(node, txs, "?wait=true" if wait else "")
        results = self._results(node, answer.status, body)
        if wait:
            for tx, result in zip(txs, results, strict=True):
                assert result.get("code") == "ok", (node.name, result)
                self.committed[tx.id] = int(result["height"])
        return results

    async def offer(self, node: NodeProcess, txs: list[Tx]) -> list[dict[str, Any]] | None:
        """Post a batch without waiting; None when the node pushes back (503 overloaded: a
        chain that decides nothing fills its mempool's time budget), else the results."""
        answer, body = await self._post_batch(node, txs)
        if answer.status == 503:
            assert body["error"]["code"] == "overloaded", (node.name, body)
            assert answer.headers.get("Retry-After"), (node.name, dict(answer.headers))
            # Not taken: their nonces are free again, or every later transaction of these
            # signers would wait in the mempools for a nonce that never comes.
            for tx in reversed(txs):
                if self.nonces.get(tx.signer) == tx.nonce:
                    self.nonces[tx.signer] = tx.nonce - 1
            return None
        return self._results(node, answer.status, body)

    async def _post_batch(
        self, node: NodeProcess, txs: list[Tx], query: str = ""
    ) -> tuple[aiohttp.ClientResponse, dict[str, Any]]:
        """POST ``txs`` to ``node``'s batch route: the answer and its JSON body."""
        async with self._session().post(
            f"{node.api}/txs/batch{query}",
            data=b"\n".join(tx.wire() for tx in txs),
            headers=self._headers(node),
        ) as answer:
            body: dict[str, Any] = await answer.json()
        return answer, body

    @staticmethod
    def _results(node: NodeProcess, status: int, body: dict[str, Any]) -> list[dict[str, Any]]:
        """A batch answer's per-transaction results (which it must have)."""
        assert "results" in body, (node.name, status, body)
        results: list[dict[str, Any]] = body["results"]
        return results

    async def register_people(self) -> None:
        """Register the participants (one batch to node0, waited for)."""
        txs = [
            self.signed(self.operator, TxType.REGISTER,
                        {"public_key": p.public_key.hex(), "role": "prosumer"})
            for p in self.people
        ]  # fmt: skip
        await self.submit(self.nodes[0], txs)
        await self.wait_height(max(self.committed.values()))

    async def committed_on_all(
        self, tx_id: str, nodes: Iterable[NodeProcess] | None = None
    ) -> bool:
        for node in self.running() if nodes is None else nodes:
            code, body = await self.get(node, f"/txs/{tx_id}")
            if code != 200 or body.get("status") != "committed":
                return False
            self.committed[tx_id] = int(body["height"])
        return True

    # -- faults -------------------------------------------------------------------------

    def link(self, a: int, b: int) -> list[FaultProxy]:
        """The proxies carrying the link between nodes ``a`` and ``b`` (both ways)."""
        return [p for key, p in self.proxies.items() if key in ((a, b), (b, a))]

    def cut(self, side_a: Iterable[int], side_b: Iterable[int]) -> None:
        """Drop every message between the two groups."""
        for a in side_a:
            for b in side_b:
                for proxy in self.link(a, b):
                    proxy.set(partition="drop")

    def by_validator(self, address: str) -> NodeProcess:
        return next(n for n in self.nodes if n.validator == address)

    def isolate(self, index: int) -> None:
        self.cut([index], [i for i in range(len(self.nodes)) if i != index])

    def heal(self) -> None:
        for proxy in self.proxies.values():
            proxy.heal()

    # -- invariants ---------------------------------------------------------------------

    async def check(self, nodes: Iterable[NodeProcess] | None = None) -> int:
        """Agreement, validity and durability over ``nodes`` (default: the running ones);
        the lowest height among them."""
        assert self.genesis is not None
        chosen = list(self.running() if nodes is None else nodes)
        heights = await self.heights(chosen)
        genesis_set = ValidatorSet((v.public_key, v.power) for v in self.genesis.validators)
        found: dict[str, int] = {}
        self.evidence = []
        for height in range(1, max(heights.values()) + 1):
            seen: set[tuple[str, str]] = set()
            for node in chosen:
                if heights[node.name] < height:
                    continue
                code, block = await self.get(node, f"/blocks/{height}")
                if code == 404 and block["error"]["code"] == "not_found":
                    continue  # below the base of a node restored from a snapshot
                assert code == 200, (node.name, height, block)
                header = Header.from_json(block["header"])
                assert header.hash == block["hash"], f"{node.name}: a header that is not its hash"
                commit = Commit.from_json(block["commit"])
                assert (commit.block_hash, commit.height) == (header.hash, height)
                power = commit_power(header.chain_id, genesis_set, commit, strict=False)
                assert genesis_set.has_quorum(power), f"{node.name} {height}: commit power {power}"
                if not seen:
                    for raw in block["txs"]:
                        found.setdefault(decode(codec.encode(raw)).id, height)
                    self.evidence.extend(block["evidence"])
                seen.add((header.hash, header.app_hash))
            assert len(seen) <= 1, f"nodes disagree at height {height}: {seen}"
        top = min(heights.values())
        for tx_id, height in self.committed.items():
            if height <= max(heights.values()):
                assert found.get(tx_id) == height, f"committed tx {tx_id[:12]} lost at {height}"
        return top


async def started(root: Path, validators: int, observers: int = 0, **kwargs: Any) -> LocalNet:
    """A created testnet (closed on failure)."""
    net = LocalNet(root, validators, observers, **kwargs)
    try:
        await net.create()
    except BaseException:
        await net.close()
        raise
    return net


def wal_files(node: NodeProcess) -> list[Path]:
    return sorted((node.home.path / "consensus" / "wal").glob("*.wal"))


def last_signed(node: NodeProcess) -> dict[str, Any]:
    """The private validator's record of what it signed last."""
    value = json.loads((node.home.path / "consensus" / "privval.json").read_text())
    assert isinstance(value, dict)
    return value
