"""``transactiva testnet run`` shows the fault tolerance it has: four validators as real
processes; one is killed with SIGKILL and the run says so while the other three keep
committing (three of four is more than two thirds of the power); ``--restart`` starts it
again and it catches up; ``testnet restart NODE`` restarts another on request. No token is
ever printed: only where each one is."""

from __future__ import annotations

import argparse
import asyncio
import io
import os
import signal
import socket
import subprocess
import time
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from ledger_core.cli.testnet import MAX_QUICK_EXITS, Member, Supervisor, stop_all
from ledger_core.demo.chain import free_port_run
from ledger_core.node.home import Home
from ledger_core.types.crypto import SigningKey
from ledger_core.types.tx import Tx, TxType, sign
from tests.api.node import PYTHON, cli

VALIDATORS = 4
RESTART_DELAY = 8  # seconds node3 stays down: the others commit meanwhile


class Run:
    """A ``testnet run --restart`` process and the lines it printed."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.process = subprocess.Popen(
            [
                *(PYTHON, "-m", "ledger_core", "testnet", "run", "--dir", str(root)),
                *("--restart", "--restart-delay", str(RESTART_DELAY)),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.lines: list[str] = []
        self.nodes: dict[str, tuple[str, int]] = {}  # name: (API URL, pid)

    def read_until(self, needle: str, seconds: float = 60) -> str:
        """Lines until one holds ``needle`` (bounded); that line."""
        assert self.process.stdout is not None
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            line = self.process.stdout.readline()
            assert line, "testnet run ended:\n" + "".join(self.lines)
            self.lines.append(line)
            words = line.split()
            if len(words) > 9 and words[2] == "API":
                self.nodes[words[0]] = (words[3], int(words[9]))
            if needle in line:
                return line
        raise AssertionError(f"no line with {needle!r} in {seconds:g} s:\n" + "".join(self.lines))


def _token(root: Path, name: str) -> str:
    return Home(root / name).token()


async def _get(url: str, token: str, path: str) -> tuple[int, Any]:
    async with (
        aiohttp.ClientSession() as session,
        session.get(url + path, headers={"Authorization": f"Bearer {token}"}) as response,
    ):
        return response.status, await response.json()


async def _height(url: str, token: str) -> int:
    """The node's height once it answers (bounded)."""
    deadline = time.monotonic() + 60
    while True:
        try:
            status, body = await _get(url, token, "/status")
            if status == 200:
                return int(body["height"])
        except aiohttp.ClientError:
            pass
        assert time.monotonic() < deadline, f"{url} does not answer"
        await asyncio.sleep(0.2)


async def _commit(url: str, token: str, tx: Tx) -> int:
    """Submit ``tx`` and wait for it to commit (bounded); its height."""
    async with (
        aiohttp.ClientSession() as session,
        session.post(
            f"{url}/txs?wait=true",
            data=tx.wire(),
            headers={"Authorization": f"Bearer {token}"},
            timeout=aiohttp.ClientTimeout(total=60),
        ) as response,
    ):
        body = await response.json()
    assert response.status == 200, body
    assert body["code"] == "ok", body
    return int(body["height"])


async def _down(url: str) -> bool:
    """Whether nothing answers at ``url``."""
    try:
        async with aiohttp.ClientSession() as session, session.get(url + "/status"):
            return False
    except aiohttp.ClientConnectionError:
        return True


async def _reaches(url: str, token: str, height: int, seconds: float = 90) -> None:
    deadline = time.monotonic() + seconds
    while await _height(url, token) < height:
        assert time.monotonic() < deadline, f"{url} did not reach height {height}"
        await asyncio.sleep(0.3)


async def test_a_node_dies_the_others_commit_and_restart_brings_it_back(tmp_path: Path) -> None:
    root = tmp_path / "red"
    base = free_port_run(2 * VALIDATORS)
    made = cli("testnet", "init", "--validators", str(VALIDATORS), "--dir", str(root),
               "--base-port", str(base))  # fmt: skip
    assert made.returncode == 0, made.stderr
    tokens = {f"node{i}": _token(root, f"node{i}") for i in range(VALIDATORS)}
    operator = Home(root / "node0").participant_key()
    chain_id = Home(root / "node0").genesis().chain_id
    run = Run(root)
    try:
        run.read_until("testnet of 4 node(s) running")
        assert sorted(run.nodes) == sorted(tokens)
        url0 = run.nodes["node0"][0]
        people = [SigningKey.generate() for _ in range(3)]

        def register(n: int) -> Tx:
            body = {"public_key": people[n - 1].public_key.hex(), "role": "prosumer"}
            return sign(operator, chain_id, TxType.REGISTER, n, body)

        for name, (url, _pid) in run.nodes.items():
            await _height(url, tokens[name])
        first = await _commit(url0, tokens["node0"], register(1))

        # node3 dies: the run says so, the other three go on committing.
        os.kill(run.nodes["node3"][1], signal.SIGKILL)
        said = run.read_until("node3 exited with status -9")
        assert "the others keep running: 3 of 4 node(s) running" in said
        assert await _down(run.nodes["node3"][0])
        second = await _commit(url0, tokens["node0"], register(2))
        assert second > first
        # --restart: it comes back, with a new process, and catches up.
        back = run.read_until("node3 restarted")
        assert "4 of 4 node(s) running" in back
        await _reaches(run.nodes["node3"][0], tokens["node3"], second)

        # On request: node1 is stopped and started again; the network commits meanwhile.
        asked = await asyncio.to_thread(cli, "testnet", "restart", "--dir", str(root), "node1")
        assert asked.returncode == 0, asked.stderr
        assert "node1 restarted" in asked.stdout
        third = await _commit(url0, tokens["node0"], register(3))
        await _reaches(run.nodes["node1"][0], tokens["node1"], third)
        unknown = await asyncio.to_thread(cli, "testnet", "restart", "--dir", str(root), "node9")
        assert unknown.returncode == 2
        assert "no node node9" in unknown.stderr

        run.process.send_signal(signal.SIGINT)
        out, _ = run.process.communicate(timeout=60)
        run.lines.append(out)
    finally:
        if run.process.poll() is None:
            run.process.kill()
            run.process.communicate()
    printed = "".join(run.lines)
    assert run.process.returncode == 0, printed  # every node up (restarted ones count), clean
    assert "testnet stopped" in printed
    for name, token in tokens.items():
        assert token not in printed, f"{name}'s token was printed"
        assert f"token-file {root / name / 'api-token'}" in printed


def test_the_supervisor_restarts_gives_up_on_a_node_that_cannot_start_and_obeys_requests(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The supervisor of ``testnet run``, in this process, over a real node process: a node
    whose token others can read exits at once; it is restarted with a growing delay, then
    given up; once fixed, a restart request brings it up; Ctrl-C's stop ends it cleanly."""
    root = tmp_path / "uno"
    made = cli("testnet", "init", "--validators", "1", "--dir", str(root),
               "--base-port", str(free_port_run(2)))  # fmt: skip
    assert made.returncode == 0, made.stderr
    home = Home(root / "node0")
    home.token_file.chmod(0o644)  # the node refuses to start
    member = Member(home, home.config())
    out = io.StringIO()
    args = argparse.Namespace(restart=True, restart_delay=0.1, stop_timeout=20.0)
    supervisor = Supervisor(root, [member], args)
    supervisor.out = out
    member.start(time.monotonic())
    deadline = time.monotonic() + 180
    while not member.given_up:
        assert time.monotonic() < deadline, out.getvalue() + capsys.readouterr().err
        supervisor.poll(time.monotonic())
        time.sleep(0.05)
    err = capsys.readouterr().err
    assert err.count("node0 exited with status 2") == MAX_QUICK_EXITS
    assert "node0 failed 5 times within 10 s of starting; not restarting it again" in err
    said = out.getvalue()
    assert "node0 will be restarted in 0.1 s" in said
    assert "node0 will be restarted in 0.8 s" in said  # doubling while it keeps failing
    assert said.count("node0 restarted (pid") == MAX_QUICK_EXITS - 1
    assert supervisor.all_gone()
    # Fixed, and asked for: it runs again.
    home.token_file.chmod(0o600)
    requests = root / ".requests"
    requests.mkdir()
    (requests / "restart-node0").touch()
    supervisor.poll(time.monotonic())
    assert not (requests / "restart-node0").exists()
    assert member.running
    assert "restarting node0 as asked" in out.getvalue()
    deadline = time.monotonic() + 90
    while True:  # its API listens again
        assert member.running
        try:
            socket.create_connection(("127.0.0.1", member.config.api_port), 0.5).close()
            break
        except OSError:
            assert time.monotonic() < deadline, "node0 did not listen again"
            time.sleep(0.1)
    assert stop_all([member], 30)
    assert not member.running
