"""``transactiva testnet init`` + ``testnet run`` end to end: real processes, configs as written.

A transaction submitted to the last node (an observer, or a validator that is
not node0) reaches the proposer by gossip, commits, and every node serves it;
each node's status reports its height, whether it is catching up, its peers
and the validator set. Ctrl-C stops the whole network cleanly.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from ledger_core.cli import main
from ledger_core.demo.chain import free_port_run
from ledger_core.node.home import Home
from ledger_core.types.crypto import SigningKey
from ledger_core.types.tx import TxType, sign

SIZES = [(4, 1), (1, 1), (7, 0)]


@contextlib.contextmanager
def running_testnet(
    root: Path,
) -> Iterator[tuple[subprocess.Popen[str], dict[str, tuple[str, str]]]]:
    """``transactiva testnet run`` in its own process; the API URL and token of each node."""
    process = subprocess.Popen(
        [sys.executable, "-m", "ledger_core", "testnet", "run", "--dir", str(root)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # its nodes share its process group (see finally)
    )
    try:
        nodes: dict[str, tuple[str, str]] = {}
        assert process.stdout is not None
        for _ in range(100):
            line = process.stdout.readline()
            if not line or line.startswith("testnet of"):
                break
            words = line.split()  # NAME (ROLE): API URL token-file PATH ...: never the token
            assert words[4] == "token-file", line
            nodes[words[0]] = (words[3], Path(words[5]).read_text().strip())
        yield process, nodes
    finally:
        if process.poll() is None:  # the test failed: stop it as Ctrl-C would (its nodes too)
            process.terminate()
            try:
                process.communicate(timeout=60)
            except subprocess.TimeoutExpired:
                process.kill()
        process.communicate(timeout=30)
        # Nothing it started may outlive the test (a killed runner would orphan its nodes).
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)


async def answer(session: aiohttp.ClientSession, url: str, token: str) -> dict[str, Any]:
    """The status of a node, once it answers (bounded)."""
    deadline = time.monotonic() + 40
    while True:
        with contextlib.suppress(aiohttp.ClientError, OSError):
            async with session.get(
                f"{url}/status", headers={"Authorization": f"Bearer {token}"}
            ) as response:
                if response.status == 200:
                    body: dict[str, Any] = await response.json()
                    return body
        assert time.monotonic() < deadline, f"{url} did not answer"
        await asyncio.sleep(0.2)


@pytest.mark.parametrize(("validators", "observers"), SIZES)
async def test_a_testnet_commits_what_any_node_is_given(
    homes: Path, validators: int, observers: int
) -> None:
    root = homes / "red"
    total = validators + observers
    out = io.StringIO()
    args = ["testnet", "init", "--validators", str(validators), "--observers", str(observers)]
    args += ["--dir", str(root), "--base-port", str(free_port_run(2 * total))]
    assert main(args, out=out) == 0
    operator = Home(root / "node0").participant_key()
    chain_id = Home(root / "node0").genesis().chain_id
    person = SigningKey.generate()
    tx = sign(operator, chain_id, TxType.REGISTER, 1,
              {"public_key": person.public_key.hex(), "role": "prosumer"})  # fmt: skip
    with running_testnet(root) as (process, nodes):
        assert len(nodes) == total
        async with aiohttp.ClientSession() as session:
            for url, token in nodes.values():
                await answer(session, url, token)
            last_url, last_token = nodes[f"node{total - 1}"]
            headers = {"Authorization": f"Bearer {last_token}"}
            deadline = time.monotonic() + 60
            while True:  # until the last node has a peer to gossip to
                status = await answer(session, last_url, last_token)
                if status["peers"]["count"] >= min(1, total - 1) and not status["catching_up"]:
                    break
                assert time.monotonic() < deadline, status
                await asyncio.sleep(0.2)
            async with session.post(
                f"{last_url}/txs?wait=true", data=tx.wire(), headers=headers
            ) as response:
                body = await response.json()
                assert response.status == 200, body
                assert body["code"] == "ok"
            height = body["height"]
            for name, (url, token) in nodes.items():
                deadline = time.monotonic() + 30
                while True:
                    async with session.get(
                        f"{url}/txs/{tx.id}", headers={"Authorization": f"Bearer {token}"}
                    ) as response:
                        found = await response.json() if response.status == 200 else {}
                    # A node that has it in its mempool answers "pending" until it commits
                    # the block.
                    if found.get("status") == "committed":
                        assert found["height"] == height
                        break
                    assert time.monotonic() < deadline, f"{name} has not committed it: {found}"
                    await asyncio.sleep(0.2)
                status = await answer(session, url, token)
                assert status["height"] >= height
                assert status["catching_up"] is False
                assert status["peers"]["count"] == len(status["peers"]["list"])
                assert status["peers"]["count"] >= 1
                assert len(status["validators"]["list"]) == validators
                assert status["validators"]["total_power"] == 10 * validators
                is_validator = int(name[4:]) < validators
                assert (status["validator"] is not None) is is_validator
            async with session.get(f"{last_url}/status") as response:
                public = await response.json()
                assert public["peers"]["list"] is None, "peer addresses need the token"
                assert public["peers"]["count"] >= 1
        process.send_signal(signal.SIGINT)
        stdout, stderr = process.communicate(timeout=40)
        assert process.returncode == 0, stderr
        assert "testnet stopped" in stdout
