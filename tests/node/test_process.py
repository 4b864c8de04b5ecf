"""Real node processes on loopback: the command line end to end, and kill -9 under load."""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest

from ledger_core.demo.chain import free_port
from ledger_core.node.home import Home

PYTHON = sys.executable


def cli(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [PYTHON, "-m", "ledger_core", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


class NodeProcess:
    """A ``transactiva node`` process and where its API listens."""

    def __init__(self, home: Path) -> None:
        self.home = home
        config = Home(home).config()
        self.url = f"http://{config.api_host}:{config.api_port}/api/v1"
        self.token = Home(home).token()
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        log = (self.home / "node.log").open("ab")
        self.process = subprocess.Popen(
            [PYTHON, "-m", "ledger_core", "node", "--dir", str(self.home)],
            stdout=log,
            stderr=log,
        )
        log.close()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError((self.home / "node.log").read_text())
            with (
                contextlib.suppress(OSError),
                socket.create_connection(
                    ("127.0.0.1", int(self.url.split(":")[2].split("/")[0])), 0.2
                ),
            ):
                return
            time.sleep(0.05)
        raise AssertionError("the node did not start listening within 30 s")

    def kill(self) -> None:
        assert self.process is not None
        self.process.kill()  # SIGKILL: no cleanup of any kind
        self.process.wait(10)

    def stop(self) -> int:
        assert self.process is not None
        self.process.send_signal(signal.SIGINT)
        return self.process.wait(20)


@pytest.fixture
def node_home(tmp_path: Path) -> Path:
    home = tmp_path / "node"
    result = cli(
        "init", "--dir", str(home), "--chain-id", "prueba-1", "--api-port", str(free_port())
    )
    assert result.returncode == 0, result.stderr
    assert "initialised a one-validator network 'prueba-1'" in result.stdout
    return home


@pytest.fixture
def running(node_home: Path) -> Iterator[NodeProcess]:
    node = NodeProcess(node_home)
    node.start()
    try:
        yield node
    finally:
        assert node.process is not None
        if node.process.poll() is None:
            node.kill()


def test_init_writes_private_keys_and_refuses_to_overwrite(node_home: Path) -> None:
    for name in ("keys/validator.key", "keys/participant.key", "api-token"):
        assert (node_home / name).stat().st_mode & 0o777 == 0o600, name
    config = json.loads((node_home / "config.json").read_text())
    assert config["api_host"] == "127.0.0.1"
    again = cli("init", "--dir", str(node_home))
    assert again.returncode == 1
    assert "already holds a node" in again.stderr


def test_wallet_and_contract_commands_against_a_running_node(
    running: NodeProcess, tmp_path: Path
) -> None:
    home = str(running.home)
    deposit = cli("wallet", "deposit", "150.50", "--reference", "spei-7", "--dir", home)
    assert deposit.returncode == 0, deposit.stderr
    request = deposit.stdout.strip().rsplit("transaction ", 1)[1].rstrip(")")
    confirm = cli("wallet", "confirm-deposit", request, "--dir", home)
    assert confirm.returncode == 0, confirm.stderr
    balance = cli("wallet", "balance", "--dir", home)
    assert balance.returncode == 0, balance.stderr
    assert ": 150.50 MXN (held for withdrawals: 0.00 MXN)" in balance.stdout
    refused = cli("wallet", "transfer", "tv" + "0" * 40, "10", "--dir", home)
    assert refused.returncode == 1
    assert "unknown_account" in refused.stderr
    bad_amount = cli("wallet", "deposit", "1.234", "--dir", home)
    assert bad_amount.returncode == 2
    assert "at most 2 decimals" in bad_amount.stderr

    contract = tmp_path / "nodo.contract"
    contract.write_text(
        "Contract 'concentrador'\nValid from 2026/01/01 00:00:00 to 2036/01/01 00:00:00\n"
        "Parties: ISO\n"
    )
    submitted = cli("contract", "submit", str(contract), "--dir", home)
    assert submitted.returncode == 0, submitted.stderr
    assert submitted.stdout.startswith("Timestamp ")
    assert "to 'concentrador' [0x" in submitted.stdout
    invalid = tmp_path / "bad.contract"
    invalid.write_text("Contract 'x'\n")
    failed = cli("contract", "submit", str(invalid), "--dir", home)
    assert failed.returncode == 1
    assert "missing Valid clause" in failed.stderr

    assert running.stop() == 0


def test_commands_say_when_no_node_runs(node_home: Path, tmp_path: Path) -> None:
    down = cli("wallet", "balance", "--dir", str(node_home))
    assert down.returncode == 2
    assert "cannot reach the node" in down.stderr
    missing = cli("wallet", "balance", "--dir", str(tmp_path / "nowhere"))
    assert missing.returncode == 2
    assert "run 'transactiva init" in missing.stderr


async def _load(url: str, token: str, acknowledged: list[str], stop: asyncio.Event) -> None:
    """Deposit requests, each waited for; remember the ones the node said committed."""
    headers = {"Authorization": f"Bearer {token}"}
    timeout = aiohttp.ClientTimeout(total=10)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        n = 0
        while not stop.is_set() and n < 2000:
            n += 1
            try:
                async with session.post(
                    f"{url}/local/deposit_request?wait=true",
                    data=json.dumps({"amount": n}).encode(),
                    headers=headers,
                ) as response:
                    body = await response.json()
            except (aiohttp.ClientError, TimeoutError, ValueError):
                await asyncio.sleep(0.02)
                continue
            if response.status == 200 and body.get("status") == "committed":
                acknowledged.append(body["id"])


async def _committed(url: str, token: str, ids: list[str]) -> list[str]:
    missing = []
    async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {token}"}) as session:
        for tx_id in ids:
            async with session.get(f"{url}/txs/{tx_id}") as response:
                body = await response.json()
                if body.get("status") != "committed":
                    missing.append(tx_id)
    return missing


async def test_kill_9_under_load_loses_nothing_that_was_acknowledged(running: NodeProcess) -> None:
    acknowledged: list[str] = []
    rounds = 5

    async def round_of_load(seconds: float) -> None:
        stop = asyncio.Event()
        tasks = [
            asyncio.create_task(_load(running.url, running.token, acknowledged, stop))
            for _ in range(32)
        ]
        await asyncio.sleep(seconds)
        running.kill()  # mid-load: requests in flight, blocks being written
        stop.set()
        await asyncio.gather(*tasks)

    for i in range(rounds):
        await round_of_load(0.6 + 0.2 * i)
        running.start()  # refuses to start if the stored state and chain disagree
    missing = await _committed(running.url, running.token, acknowledged)
    assert len(acknowledged) > 100, f"the load reached the node: {len(acknowledged)}"
    assert missing == []
    log = (running.home / "node.log").read_text()
    assert "IntegrityError" not in log
    assert running.stop() == 0
    assert (running.home / "ledger.db").stat().st_size > 0
