"""Setting up a neighbourhood for the demo: the chain, its homes, their money and contracts.

Everything here goes through the node's public API with keys held by the
caller, exactly as separate homes would do it: the operator (concentrator)
registers each participant and binds its meter, the home asks to deposit and
the operator confirms, the home proposes its contracts and the operator signs
those that name the ISO as a party.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Final

from contracts import format_contract, parse
from ledger_core.agent.home_agent import NodeSigner, Signer
from ledger_core.client import ApiError, NodeClient
from ledger_core.node.files import private_file
from ledger_core.types.crypto import SigningKey
from ledger_core.types.tx import TxType

STARTUP_SECONDS: Final = 30.0


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with contextlib.closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def port_is_free(port: int) -> bool:
    """Whether a TCP port on 127.0.0.1 can be bound right now."""
    with contextlib.closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def free_port_run(count: int) -> int:
    """A base port with ``count`` free ports from it on (checked, not reserved), as
    ``transactiva testnet init --base-port`` takes it."""
    for _ in range(100):
        base = free_port()
        if base + count <= 65000 and all(port_is_free(p) for p in range(base, base + count)):
            return base
    raise RuntimeError(f"no run of {count} free ports found")


def _spawn_node(home: Path, log_path: Path) -> subprocess.Popen[bytes]:
    with private_file(log_path).open("ab") as log:  # the node's home is its alone
        return subprocess.Popen(  # noqa: S603 - our own interpreter and module
            [sys.executable, "-m", "ledger_core", "node", "--dir", str(home)],
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )


@dataclass
class NodeProcess:
    """A ``transactiva node`` process and its API."""

    home: Path
    url: str
    token: str
    process: subprocess.Popen[bytes]
    log_path: Path

    @classmethod
    async def start(cls, home: Path, url: str, token: str) -> NodeProcess:
        """Start the node in ``home`` and wait until its API answers."""
        log_path = home / "node.log"
        process = _spawn_node(home, log_path)
        node = cls(home, url, token, process, log_path)
        client = NodeClient(url, token, timeout=2.0)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + STARTUP_SECONDS
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"the node exited at start; see {log_path}")
            with contextlib.suppress(OSError, ApiError, TimeoutError):
                await client.status()
                return node
            if loop.time() > deadline:
                node.stop()
                raise RuntimeError(f"the node did not answer within {STARTUP_SECONDS} s")
            await asyncio.sleep(0.1)

    def stop(self, timeout: float = 10.0) -> int:
        """SIGTERM, wait, then kill; the exit status."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.process.returncode


@dataclass
class Household:
    """One home of the demo: its keys and what it signed up for."""

    index: int
    name: str
    participant: SigningKey
    meter: SigningKey
    pv_kwp: float
    deposit: int  # centavos
    contracts: list[str] = field(default_factory=list)  # contract ids
    short_ids: dict[str, str] = field(default_factory=dict)

    @property
    def address(self) -> str:
        """The participant's address."""
        return self.participant.address


def paper_contract(name: str, valid_from: datetime, valid_to: datetime) -> str:
    """The paper's example (Fig. 7) with a valid date, DR shedding the washing machine,
    and an ELSE that switches it off when the price is high."""
    source = (
        f"Contract {name!r}\n"
        f"Valid from {valid_from:%Y/%m/%d %H:%M:%S} to {valid_to:%Y/%m/%d %H:%M:%S}\n"
        "Consumption true\nProduction true and sell\nStore false\n"
        "DemandResponse true shed 'Lavadora'\n"
        "IF Price < 3 THEN\n  TURN ON DEVICE 'Lavadora'\nELSE\n  TURN OFF DEVICE 'Lavadora'\n"
        "ENDIF\nParties: ISO\n"
    )
    return format_contract(parse(source, name))


def buyer_contract(name: str, valid_from: datetime, valid_to: datetime) -> str:
    """A household without panels buying from neighbours when the tariff is high."""
    source = (
        f"Contract {name!r}\n"
        f"Valid from {valid_from:%Y/%m/%d %H:%M:%S} to {valid_to:%Y/%m/%d %H:%M:%S}\n"
        "IF Price >= 2 THEN\n  BUY 400 Wh AT MAX 2.2 MXN/kWh\nENDIF\nParties: ISO\n"
    )
    return format_contract(parse(source, name))


@dataclass
class Neighbourhood:
    """The operator's view of the demo chain."""

    client: NodeClient
    operator: NodeSigner
    chain_id: str
    homes: list[Household] = field(default_factory=list)

    async def enrol(self, home: Household) -> None:
        """Register the participant, bind its meter and fund its wallet."""
        role = "prosumer" if home.pv_kwp > 0 else "consumer"
        await self.operator.submit(
            TxType.REGISTER,
            {"public_key": home.participant.public_key.hex(), "role": role},
        )
        await self.operator.submit(
            TxType.BIND_METER,
            {"meter_public_key": home.meter.public_key.hex(), "participant": home.address},
            wait=True,
        )
        signer = Signer(self.client, home.participant, self.chain_id)
        request = await signer.submit(
            TxType.DEPOSIT_REQUEST,
            {"amount": home.deposit, "reference": f"demo-{home.index}"},
            wait=True,
        )
        await self.operator.submit(TxType.DEPOSIT_CONFIRM, {"request": str(request["id"])})
        self.homes.append(home)

    async def contract(self, home: Household, source: str) -> str:
        """Propose ``source`` as the home and sign it as the ISO; the contract id."""
        signer = Signer(self.client, home.participant, self.chain_id)
        proposed = await signer.submit(TxType.CONTRACT_PROPOSE, {"source": source}, wait=True)
        contract_id = _contract_id(proposed)
        await self.operator.submit(TxType.CONTRACT_SIGN, {"contract_id": contract_id}, wait=True)
        record = await self.client.get(f"/contracts/{contract_id}")
        if record.get("status") != "active":
            raise RuntimeError(f"contract {contract_id[:10]} is {record.get('status')}")
        home.contracts.append(contract_id)
        home.short_ids[contract_id] = str(record["short_id"])
        return contract_id


def _contract_id(stored: dict[str, Any]) -> str:
    for event in stored.get("events", []):
        if isinstance(event, dict) and event.get("type") == "contract_proposed":
            return str(event["contract_id"])
    raise RuntimeError(f"no contract_proposed event in {stored.get('result')}")


def local_midnight(day: datetime, utc_offset_minutes: int) -> int:
    """Unix seconds of 00:00 local time on ``day`` (a naive date)."""
    midnight = datetime(day.year, day.month, day.day)  # noqa: DTZ001 - local civil time
    epoch = datetime(1970, 1, 1)  # noqa: DTZ001
    return int((midnight - epoch - timedelta(minutes=utc_offset_minutes)).total_seconds())
