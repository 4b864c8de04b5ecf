"""Setting up a neighbourhood for the demo: the chain, its homes, their money and contracts.

Everything here goes through the node's API and P2P network with keys held by the
caller, exactly as separate homes would do it: the operator (concentrator) invites
each home (``POST /operator/invitations``, what ``transactiva operator invite``
does); the home checks its code with the operator and fetches the genesis (what
``transactiva join`` does) and asks for admission with its participant and meter
keys (what a joining home's node does), and the operator's node registers it under
its name and binds its meter; the home asks to deposit and the operator confirms;
the home proposes its contracts and the operator signs those that name the ISO.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import signal
import socket
import subprocess
import sys
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any, Final

from contracts import format_contract, parse
from ledger_core.agent.home_agent import NodeSigner, Signer
from ledger_core.client import ApiError, NodeClient
from ledger_core.membership.joining import check_with_operator, read_code
from ledger_core.node.files import private_file
from ledger_core.types.crypto import SigningKey
from ledger_core.types.invitation import AdmissionRequest
from ledger_core.types.tx import TxType

STARTUP_SECONDS: Final = 30.0


class DemoError(RuntimeError):
    """The demo cannot go on: what went wrong, in one line for people."""


# Ports handed out to be bound later (by a node process) come from below the kernel's
# ephemeral range (32768-60999 on Linux): an outgoing connection's local port is taken from
# that range, and could otherwise take the port in the moment before the node binds it.
PORT_RANGE: Final = (20000, 32000)
PORTS_VARIABLE: Final = "TRANSACTIVA_PORTS"  # LOW-HIGH: another window (LOW included, HIGH not)
_MIN_WINDOW: Final = 64
_PORTS: Final = random.Random()  # noqa: S311 - not a secret; seeded by the OS, so two processes pick apart


_GIVEN: Final[set[int]] = set()  # handed out by this process: not handed out again


def port_range() -> tuple[int, int]:
    """The window ports are handed out from: ``TRANSACTIVA_PORTS=LOW-HIGH`` if it is set
    (for example one window per test worker, so that two workers never pick the same
    port in the moment before a node binds it), else :data:`PORT_RANGE`."""
    text = os.environ.get(PORTS_VARIABLE, "").strip()
    if not text:
        return PORT_RANGE
    low_text, dash, high_text = (part.strip() for part in text.partition("-"))
    if dash and all(part.isascii() and part.isdigit() for part in (low_text, high_text)):
        low, high = int(low_text), int(high_text)
        if low >= 1024 and low + _MIN_WINDOW <= high <= 65536:
            return low, high
    raise DemoError(
        f"{PORTS_VARIABLE}={text!r}: expected LOW-HIGH, ports from LOW up to HIGH "
        f"(not included), 1024 <= LOW, at least {_MIN_WINDOW} ports, HIGH <= 65536"
    )


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now (checked, not reserved),
    and that this process has not handed out before."""
    low, high = port_range()
    for _ in range(200):
        port = _PORTS.randrange(low, high)
        if port not in _GIVEN and port_is_free(port):
            _GIVEN.add(port)
            return port
    with contextlib.closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as probe:
        probe.bind(("127.0.0.1", 0))  # the range is full: any port the kernel gives
        return int(probe.getsockname()[1])


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
    low, high = port_range()
    if count >= high - low:
        raise DemoError(f"no run of {count} free ports fits in {low}-{high}")
    for _ in range(200):
        base = _PORTS.randrange(low, high - count)
        run = range(base, base + count)
        if _GIVEN.isdisjoint(run) and all(port_is_free(p) for p in run):
            _GIVEN.update(run)
            return base
    raise DemoError(f"no run of {count} free ports found")


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
                raise DemoError(f"the node exited at start; see {log_path}")
            with contextlib.suppress(OSError, ApiError, TimeoutError):
                await client.status()
                return node
            if loop.time() > deadline:
                node.stop()
                raise DemoError(f"the node did not answer within {STARTUP_SECONDS} s")
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


def buyer_contract(
    name: str,
    valid_from: datetime,
    valid_to: datetime,
    at_least: Decimal = Decimal(2),
    at_most: Decimal = Decimal("2.2"),
) -> str:
    """A household without panels buying from neighbours when the tariff is at least
    ``at_least`` MXN/kWh, paying at most ``at_most``."""
    source = (
        f"Contract {name!r}\n"
        f"Valid from {valid_from:%Y/%m/%d %H:%M:%S} to {valid_to:%Y/%m/%d %H:%M:%S}\n"
        f"IF Price >= {at_least} THEN\n  BUY 400 Wh AT MAX {at_most} MXN/kWh\nENDIF\n"
        "Parties: ISO\n"
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
        """Invite the home, let it join (its participant registered under its name, its
        meter bound) and fund its wallet."""
        role = "prosumer" if home.pv_kwp > 0 else "consumer"
        entry = await self.client.post(
            "/operator/invitations", {"name": home.name, "role": role, "approve": "auto"}
        )
        invitation = read_code(str(entry["code"]))
        # What transactiva join sends (genesis, check), then what the home's node sends
        # (admission), on one connection.
        admission = AdmissionRequest.make(invitation, home.participant, home.meter.public_key)
        _genesis, [answer] = await check_with_operator(
            invitation, SigningKey.generate(), [admission.encode()]
        )
        try:
            verdict = json.loads(answer)
        except ValueError:
            verdict = None
        if not isinstance(verdict, dict) or verdict.get("ok") is not True:
            raise DemoError(f"{home.name} was not admitted: {answer.decode(errors='replace')}")
        await self._registered(home)
        signer = Signer(self.client, home.participant, self.chain_id)
        request = await signer.submit(
            TxType.DEPOSIT_REQUEST,
            {"amount": home.deposit, "reference": f"demo-{home.index}"},
            wait=True,
        )
        await self.operator.submit(TxType.DEPOSIT_CONFIRM, {"request": str(request["id"])})
        self.homes.append(home)

    async def _registered(self, home: Household) -> None:
        """Wait (bounded) until the home's participant and meter are on the ledger."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + STARTUP_SECONDS
        while True:
            with contextlib.suppress(ApiError):
                await self.client.get(f"/participants/{home.meter.address}")
                return
            if loop.time() > deadline:
                raise DemoError(f"{home.name} was not registered within {STARTUP_SECONDS} s")
            await asyncio.sleep(0.05)

    async def contract(self, home: Household, source: str) -> str:
        """Propose ``source`` as the home and sign it as the ISO; the contract id."""
        signer = Signer(self.client, home.participant, self.chain_id)
        proposed = await signer.submit(TxType.CONTRACT_PROPOSE, {"source": source}, wait=True)
        contract_id = _contract_id(proposed)
        await self.operator.submit(TxType.CONTRACT_SIGN, {"contract_id": contract_id}, wait=True)
        record = await self.client.get(f"/contracts/{contract_id}")
        if record.get("status") != "active":
            raise DemoError(f"contract {contract_id[:10]} is {record.get('status')}")
        home.contracts.append(contract_id)
        home.short_ids[contract_id] = str(record["short_id"])
        return contract_id


def _contract_id(stored: dict[str, Any]) -> str:
    for event in stored.get("events", []):
        if isinstance(event, dict) and event.get("type") == "contract_proposed":
            return str(event["contract_id"])
    raise DemoError(f"no contract_proposed event in {stored.get('result')}")


def local_midnight(day: datetime, utc_offset_minutes: int) -> int:
    """Unix seconds of 00:00 local time on ``day`` (a naive date)."""
    midnight = datetime(day.year, day.month, day.day)  # noqa: DTZ001 - local civil time
    epoch = datetime(1970, 1, 1)  # noqa: DTZ001
    return int((midnight - epoch - timedelta(minutes=utc_offset_minutes)).total_seconds())
