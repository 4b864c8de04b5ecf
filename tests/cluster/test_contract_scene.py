"""The scene of issue 16 on four validators: the same decisions from every validator's events.

Four real validator processes; the home's contracts, prices and demand-response event are
transactions committed by the network. One home agent (the production ``HomeAgent``, with
its own action log) follows each validator's event stream. Their clock is one the test
moves by hand, in the future of the ledger's (so every price is for an interval still
open), and it moves only once each agent has folded every event in: then all four see the
same events at the same times, and must log the same decisions, row for row, whichever
validator they follow. The decisions are the scene's: the washer held off for the whole
event against the price contract and a later price signal, and restored after it.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from contracts import content_hash, format_contract, parse
from ledger_core.agent.execution import ContractExecutor
from ledger_core.agent.home_agent import HomeAgent, Signer
from ledger_core.client import NodeClient
from ledger_core.node.local import STATUSES, ActionLog, LocalEvents
from ledger_core.types.crypto import SigningKey
from ledger_core.types.tx import TxType
from tests.agent.test_contract_scene import held_off_why
from tests.cluster.testnet import SLACK, LocalNet, started

WINDOW = "Valid from 2020/01/01 00:00:00 to 2040/12/31 23:59:59\n"
PAPER = format_contract(
    parse(
        "Contract 'prueba'\n" + WINDOW + "Consumption true\nProduction true and sell\n"
        "Store false\nDemandRespose false\nIF Price < 3 THEN\nTURN ON DEVICE 'Lavadora'\n"
        "ENDIF\nParties: ISO\n"
    )
)
PAPER_DR = PAPER.replace("'prueba'", "'prueba dr'").replace(
    "DemandResponse false", "DemandResponse true shed 'Lavadora'"
)


class Hand:
    """A clock moved by the test."""

    def __init__(self, now: int) -> None:
        self.now = now

    def __call__(self) -> float:
        return float(self.now)


@pytest.fixture
async def net(homes: Path) -> AsyncIterator[LocalNet]:
    network = await started(homes, 4, participants=1)
    try:
        await network.register_people()
        yield network
    finally:
        await network.close()


async def _wait(goal: Callable[[], bool], what: str, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds * SLACK
    while not goal():
        assert time.monotonic() < deadline, what
        await asyncio.sleep(0.05)


def _decisions(log: ActionLog) -> list[dict[str, Any]]:
    return list(reversed(log.recent(limit=1000, statuses=STATUSES)))


async def test_four_validators_give_the_home_the_same_decisions(
    net: LocalNet, tmp_path: Path
) -> None:
    home = net.people[0]
    operator = net.operator
    assert net.genesis is not None
    # The agents' clock: the start of an interval well ahead of the ledger's time.
    t0 = (int(time.time()) // 900 + 2) * 900
    clock = Hand(t0)
    agents: list[HomeAgent] = []
    logs: list[ActionLog] = []
    for index, node in enumerate(net.nodes):
        client = NodeClient(node.api.removesuffix("/api/v1"), node.token)
        log = ActionLog(tmp_path / f"local-{index}.db")
        logs.append(log)
        agents.append(
            HomeAgent(
                client=client,
                signer=Signer(client, home, net.genesis.chain_id),
                executor=ContractExecutor(home.address, None),
                clock=clock,
                log=log,
                local_events=LocalEvents(),
            )
        )
    stop = asyncio.Event()
    runs = [asyncio.create_task(agent.run(stop, tick_every=0.05)) for agent in agents]

    async def commit(
        signer: SigningKey, tx_type: TxType, body: dict[str, Any], node: int = 0
    ) -> None:
        await net.submit(net.nodes[node], [net.signed(signer, tx_type, body)])

    async def price(start: int, import_price: int) -> None:
        body = {
            "interval_start": start,
            "import_price": import_price,
            "export_price": 10_000,
            "network_fee": 0,
        }
        await commit(operator, TxType.PRICE_SIGNAL, body, node=2)
        await _wait(
            lambda: all(a.executor.prices.get(start, (0,))[0] == import_price for a in agents),
            f"the price {import_price} for {start} on every agent",
        )

    async def dr(number: int, duration: int) -> None:
        body = {
            "event_id": "pico-1",
            "modification_number": number,
            "signal": {"name": "SIMPLE", "level": 3},
            "start": t0 + 100,
            "duration": duration,
            "targets": [],
            "cancelled": False,
        }
        await commit(operator, TxType.DR_EVENT, body, node=1)
        await _wait(
            lambda: (
                all(a.executor.dr_level_at(t0 + 100 + duration - 1) == 3 for a in agents)
                and all(a.executor.dr_level_at(t0 + 100 + duration) == 0 for a in agents)
            ),
            f"modification {number} of the event on every agent",
        )

    async def contract(source: str) -> None:
        contract_id = content_hash(parse(source))
        await commit(home, TxType.CONTRACT_PROPOSE, {"source": source}, node=3)
        await commit(operator, TxType.CONTRACT_SIGN, {"contract_id": contract_id})
        await _wait(
            lambda: all(contract_id in a.executor.programs for a in agents),
            "the contract on every agent",
        )

    async def at(moment: int, rows: int) -> None:
        """Move the clock; wait until every agent has logged ``rows`` decisions."""
        clock.now = moment
        await _wait(
            lambda: all(len(_decisions(log)) >= rows for log in logs),
            f"{rows} decisions at {moment - t0} s on every agent",
        )

    try:
        await price(t0, 20_000)
        await contract(PAPER)
        await at(t0 + 10, 1)
        await contract(PAPER_DR)
        await at(t0 + 20, 2)
        await dr(0, 1200)  # from t0 + 100 for 20 minutes
        await at(t0 + 100, 5)  # the event starts
        clock.now = t0 + 300
        await price(t0, 15_000)  # a low price during the event
        await at(t0 + 300, 7)
        await price(t0 + 900, 10_000)  # a later price signal, for the next interval
        await at(t0 + 900, 9)
        await price(t0 + 900, 45_000)  # dear: the rules say nothing
        await dr(1, 1000)  # the event is shortened: it ends at t0 + 1100
        await at(t0 + 1100, 10)
        decisions = [_decisions(log) for log in logs]
    finally:
        stop.set()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(asyncio.gather(*runs), 30)
        for log in logs:
            log.close()

    # Row for row the same on every agent, whichever validator it followed.
    assert all(d == decisions[0] for d in decisions[1:])
    rows = decisions[0]
    offset = timedelta(minutes=net.genesis.params.utc_offset_minutes)
    assert [(r["status"], r["action"], r["contract"], r["time"] - t0) for r in rows] == [
        ("effective", "turn_on", "prueba", 0),
        ("unchanged", "turn_on", "prueba dr", 10),
        ("suppressed", "turn_on", "prueba", 100),
        ("effective", "turn_off", "prueba dr", 100),
        ("suppressed", "turn_on", "prueba dr", 100),
        ("suppressed", "turn_on", "prueba", 300),
        ("suppressed", "turn_on", "prueba dr", 300),
        ("suppressed", "turn_on", "prueba", 900),
        ("suppressed", "turn_on", "prueba dr", 900),
        ("effective", "restore", "prueba dr", 1100),
    ]
    suppressed = [r for r in rows if r["status"] == "suppressed"]
    assert [r["why"] for r in suppressed] == [
        held_off_why("pico-1", t0 + 1300, r["time"], offset) for r in suppressed
    ]
    assert rows[-1]["to"] == "on"
    await net.check()
