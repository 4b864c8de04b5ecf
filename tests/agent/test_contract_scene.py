"""The scene of issue 16 on a real node process: two contracts of one home, demand response.

The home has the paper's contract (Fig. 7: ``IF Price < 3 THEN TURN ON DEVICE 'Lavadora'``,
``DemandResponse false``) and its demand-response variant (``DemandResponse true shed
'Lavadora'``), both submitted with ``transactiva contract submit``. A level-3 event turns the
washer off; a low price during the event and a later price signal do not turn it back on;
when the event ends the washer goes back to how it was before (on). The node's own home agent
decides, as in production (``execute_contracts``); its action log answers over the API: the
actions carried out by default, every decision with ``?status=all``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from ledger_core.agent.home_agent import NO_HOME_ASSISTANT
from ledger_core.client import NodeClient
from ledger_core.demo.chain import NodeProcess
from ledger_core.node.home import Home
from tests.node.test_process import cli, free_port

WINDOW = "Valid from 2020/01/01 00:00:00 to 2040/12/31 23:59:59\n"
PAPER = (
    "Contract 'prueba'\n" + WINDOW + "Consumption true\nProduction true and sell\nStore false\n"
    "DemandRespose false\nIF Price < 3 THEN\nTURN ON DEVICE 'Lavadora'\nENDIF\nParties: ISO\n"
)
PAPER_DR = PAPER.replace("'prueba'", "'prueba dr'").replace(
    "DemandRespose false", "DemandResponse true shed 'Lavadora'"
)
UTC_OFFSET = timedelta(minutes=-360)  # the chain's default market time (Mexico City)


@pytest.fixture
async def node(tmp_path: Path) -> AsyncIterator[tuple[NodeProcess, NodeClient]]:
    home = tmp_path / "casa"
    made = cli("init", "--dir", str(home), "--chain-id", "escena-1", "--api-port", str(free_port()))
    assert made.returncode == 0, made.stderr
    config = Home(home).config()
    url = f"http://{config.api_host}:{config.api_port}"
    process = await NodeProcess.start(home, url, Home(home).token())
    try:
        yield process, NodeClient(url, process.token)
    finally:
        process.stop()


async def _prices(client: NodeClient, import_price: int) -> None:
    """The operator's price for the interval in force and the next (a boundary may pass)."""
    start = int(time.time()) // 900 * 900
    for interval in (start, start + 900):
        body = {
            "interval_start": interval,
            "import_price": import_price,
            "export_price": 10_000,
            "network_fee": 0,
        }
        answer = await client.local("price_signal", body)
        assert answer["code"] == "ok", answer


async def _actions(client: NodeClient, status: str = "effective") -> list[dict[str, Any]]:
    rows = (await client.get(f"/local/actions?limit=1000&status={status}"))["actions"]
    return list(reversed(rows))  # oldest first


async def _until(client: NodeClient, count: int, what: str) -> list[dict[str, Any]]:
    """Every decision, once there are ``count`` of them (generous bound)."""
    deadline = time.monotonic() + 60
    while len(rows := await _actions(client, "all")) < count:
        assert time.monotonic() < deadline, f"{what}: {rows}"
        await asyncio.sleep(0.1)
    return rows


def held_off_why(event_id: str, until: int, at: int, offset: timedelta) -> str:
    """Why a device is held off, as a person reads it at ``at``: the event's end in market
    time, with its date when that is another day (a run may cross local midnight)."""
    end, now = (datetime.fromtimestamp(t, UTC) + offset for t in (until, at))
    shown = f"{end:%H:%M}" if end.date() == now.date() else f"{end:%Y/%m/%d %H:%M}"
    return f"held off by DR event {event_id} until {shown}"


def _whys(rows: list[dict[str, Any]], event_id: str, until: int) -> tuple[list[str], list[str]]:
    """The rows' whys, and the ones expected at each row's own time."""
    expected = [held_off_why(event_id, until, r["time"], UTC_OFFSET) for r in rows]
    return [r["why"] for r in rows], expected


def _seen(rows: list[dict[str, Any]]) -> list[tuple[str, str, str]]:
    return [(r["status"], r["action"], r["contract"]) for r in rows]


async def test_the_washer_is_held_off_for_the_whole_event_and_restored(
    node: tuple[NodeProcess, NodeClient], tmp_path: Path
) -> None:
    process, client = node
    folder = str(process.home)
    paper, variant = tmp_path / "prueba.contract", tmp_path / "prueba-dr.contract"
    paper.write_text(PAPER, encoding="utf-8")
    variant.write_text(PAPER_DR, encoding="utf-8")

    # Cheap energy, then the paper's contract: the washer goes on.
    await _prices(client, 20_000)
    submitted = cli("contract", "submit", str(paper), "--dir", folder)
    assert submitted.returncode == 0, submitted.stderr
    assert "misspelling of DemandResponse" in submitted.stderr
    assert "warning: demand response" not in submitted.stderr
    rows = await _until(client, 1, "the paper's contract")
    assert _seen(rows) == [("effective", "turn_on", "prueba")]

    # The variant: its shedding contradicts the paper's TURN ON, and the submission says so,
    # at the file's own line, naming the paper's line; it is submitted all the same.
    submitted = cli("contract", "submit", str(variant), "--dir", folder)
    assert submitted.returncode == 0, submitted.stderr
    assert f"{variant}:6:1: warning: demand response sheds 'Lavadora', which TURN ON " in (
        submitted.stderr
    )
    # The paper's contract as the ledger keeps it (canonical: its TURN ON indented).
    assert "'Lavadora' at 'prueba' [0x" in submitted.stderr
    assert "]:8:3 turns on: during an event that TURN ON is suppressed" in submitted.stderr
    assert submitted.stdout.startswith("Timestamp ")
    rows = await _until(client, 2, "the variant's contract")
    assert _seen(rows)[1] == ("unchanged", "turn_on", "prueba dr")

    # A level-3 event from now, for ten minutes.
    start = int(time.time())
    event = {
        "event_id": "pico-1",
        "modification_number": 0,
        "signal": {"name": "SIMPLE", "level": 3},
        "start": start,
        "duration": 600,
        "targets": [],
        "cancelled": False,
    }
    assert (await client.local("dr_event", event))["code"] == "ok"
    rows = await _until(client, 5, "the shedding")
    assert _seen(rows[2:5]) == [
        ("suppressed", "turn_on", "prueba"),
        ("effective", "turn_off", "prueba dr"),
        ("suppressed", "turn_on", "prueba dr"),
    ]
    seen, expected = _whys([rows[2], rows[4]], "pico-1", start + 600)
    assert seen == expected

    # A low price during the event, then a later price signal: the washer stays off.
    await _prices(client, 15_000)
    rows = await _until(client, 7, "the low price during the event")
    await _prices(client, 10_000)
    rows = await _until(client, 9, "the later price signal")
    assert (
        _seen(rows[5:9])
        == [
            ("suppressed", "turn_on", "prueba"),
            ("suppressed", "turn_on", "prueba dr"),
        ]
        * 2
    )
    seen, expected = _whys(rows[5:9], "pico-1", start + 600)
    assert seen == expected
    # Dear energy: the rules say nothing (nothing is logged); the washer stays off.
    await _prices(client, 45_000)

    # The event ends early (a modification): the washer is restored to how it was before.
    ended = {**event, "modification_number": 1, "duration": int(time.time()) + 1 - start}
    assert (await client.local("dr_event", ended))["code"] == "ok"
    rows = await _until(client, 10, "the restore")
    (restore,) = rows[9:]
    assert (restore["status"], restore["action"], restore["to"]) == ("effective", "restore", "on")
    assert restore["description"] == (
        "restore 'Lavadora' to on (line 6: DemandResponse true shed 'Lavadora')"
    )
    # Nobody carries actions out here: the log says why.
    assert (restore["result"], restore["detail"]) == ("skipped", NO_HOME_ASSISTANT)

    # By default the log shows what was carried out: on, off for the event, back on.
    effective = await _actions(client)
    assert [(r["action"], r["contract"], r["trigger"]) for r in effective] == [
        ("turn_on", "prueba", "price_signal"),
        ("turn_off", "prueba dr", "dr_signal"),
        ("restore", "prueba dr", "dr_signal"),
    ]
    held_rows = await _actions(client, "suppressed")
    assert len(held_rows) == 6
    assert all(r["device"] == "Lavadora" for r in held_rows)
    assert process.stop() == 0
