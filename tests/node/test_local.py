"""The home's own events and action log, through the node's API."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import sqlite3
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from aiohttp import WSCloseCode, WSMsgType
from aiohttp.test_utils import TestClient, TestServer

from contracts.model import ActionKind
from ledger_core.agent.execution import ActionRecord, ContractExecutor
from ledger_core.agent.home_agent import NO_HOME_ASSISTANT, HomeAgent, NodeSigner
from ledger_core.api.core import make_app
from ledger_core.client import NodeClient
from ledger_core.node.host import Node
from ledger_core.node.local import STATUSES, ActionLog, LocalEvents
from ledger_core.node.storage import open_storage
from ledger_core.state.machine import StateMachine
from tests.state.chain import Chain

TOKEN = "t" * 32
AUTH = {"Authorization": f"Bearer {TOKEN}"}
NOW = int(datetime(2026, 11, 24, 16, tzinfo=UTC).timestamp())


def _action(device: str = "Lavadora") -> ActionRecord:
    return ActionRecord(
        time=NOW,
        event="price_signal",  # type: ignore[arg-type]
        contract_id="c" * 64,
        short_id="0xCCCCCCCCCC",
        contract_name="prueba",
        kind=ActionKind.TURN_ON,
        reason="line 7: IF Price < 3 THEN",
        description=f"turn on {device!r}",
        device=device,
    )


@pytest.fixture
async def served(
    tmp_path: Path,
) -> AsyncIterator[tuple[TestClient[Any, Any], LocalEvents, ActionLog]]:
    chain = Chain()
    node = Node(
        chain.genesis,
        chain.validator,
        open_storage(tmp_path, chain.genesis),
        app_factory=StateMachine.restore,
    )
    events, log = LocalEvents(), ActionLog(tmp_path / "local.db")
    app = make_app(node, TOKEN, chain.iso, local_events=events, action_log=log)
    client: TestClient[Any, Any] = TestClient(TestServer(app))
    await client.start_server()
    try:
        yield client, events, log
    finally:
        await client.close()
        log.close()
        node.close()


def test_local_events_are_numbered_and_resumable() -> None:
    events = LocalEvents(buffer=3)
    for i in range(5):
        assert events.publish({"type": "x", "i": i}) == i + 1
    assert [seq for seq, _ in events.since(0)] == [3, 4, 5]  # only the newest are kept
    assert events.since(5) == []


def test_action_log_survives_reopening(tmp_path: Path) -> None:
    log = ActionLog(tmp_path / "local.db")
    action_id = log.record(_action())
    assert log.set_result(action_id, "ok")
    assert not log.set_result(action_id + 1, "ok")
    with pytest.raises(ValueError, match="result must be one of"):
        log.set_result(action_id, "maybe")
    log.close()
    reopened = ActionLog(tmp_path / "local.db")
    try:
        (row,) = reopened.recent()
        assert row["device"] == "Lavadora"
        assert row["result"] == "ok"
        assert row["action_id"] == action_id
        assert reopened.recent(contract_id="d" * 64) == []
        assert reopened.recent(since=NOW + 1) == []
    finally:
        reopened.close()


async def test_actions_and_results_over_http(served: Any) -> None:
    client, events, log = served
    action_id = log.record(_action())
    response = await client.get("/api/v1/local/actions")
    assert response.status == 401
    response = await client.get("/api/v1/local/actions?limit=5000", headers=AUTH)
    assert response.status == 400
    assert (await response.json())["error"]["field"] == "limit"
    response = await client.get("/api/v1/local/actions", headers=AUTH)
    (row,) = (await response.json())["actions"]
    assert row["result"] is None
    bad = await client.post(
        f"/api/v1/local/actions/{action_id}/result", json={"result": "maybe"}, headers=AUTH
    )
    assert bad.status == 400
    assert (await bad.json())["error"]["field"] == "result"
    missing = await client.post(
        "/api/v1/local/actions/999/result", json={"result": "ok"}, headers=AUTH
    )
    assert missing.status == 404
    done = await client.post(
        f"/api/v1/local/actions/{action_id}/result",
        json={"result": "failed", "detail": "switch.lavadora unavailable"},
        headers=AUTH,
    )
    assert done.status == 200
    (row,) = log.recent()
    assert (row["result"], row["detail"]) == ("failed", "switch.lavadora unavailable")
    assert events.since(0)[-1][1] == {
        "type": "contract_action_result",
        "action_id": action_id,
        "result": "failed",
    }


async def test_local_event_stream_replays_then_pushes(served: Any) -> None:
    client, events, _ = served
    events.publish(_action().to_event())
    socket = await client.ws_connect("/api/v1/local/events?after=0", headers=AUTH)
    try:
        first = await asyncio.wait_for(socket.receive_json(), 5)
        assert first["lseq"] == 1
        assert first["event"]["device"] == "Lavadora"
        events.publish(_action("Bomba").to_event())
        second = await asyncio.wait_for(socket.receive_json(), 5)
        assert (second["lseq"], second["event"]["device"]) == (2, "Bomba")
    finally:
        await socket.close()


async def test_the_node_closes_local_streams_when_it_shuts_down(served: Any) -> None:
    """A connected client must not hold the node's stop (aiohttp waits for open handlers)."""
    client, _, _ = served
    socket = await client.ws_connect("/api/v1/local/events", headers=AUTH)
    try:
        started = asyncio.get_running_loop().time()
        await client.app.shutdown()
        message = await asyncio.wait_for(socket.receive(), 5)
        assert message.type is WSMsgType.CLOSE
        assert message.data == WSCloseCode.GOING_AWAY
        assert asyncio.get_running_loop().time() - started < 5
    finally:
        await socket.close()


def _overruled(status: str, why: str) -> ActionRecord:
    return dataclasses.replace(_action(), status=status, why=why)


def test_the_log_keeps_overruled_actions_and_shows_them_on_request(tmp_path: Path) -> None:
    log = ActionLog(tmp_path / "local.db")
    try:
        done = log.record(_action())
        held = log.record(_overruled("suppressed", "held off by DR event pico-1 until 13:30"))
        same = log.record(_overruled("unchanged", "no change: 'Lavadora' is already on"))
        assert [r["action_id"] for r in log.recent()] == [done]
        rows = log.recent(statuses=STATUSES)
        assert [(r["action_id"], r["status"]) for r in rows] == [
            (same, "unchanged"),
            (held, "suppressed"),
            (done, "effective"),
        ]
        assert rows[1]["why"] == "held off by DR event pico-1 until 13:30"
        assert log.recent(statuses=("suppressed",))[0]["action_id"] == held
        assert log.recent(statuses=()) == []
    finally:
        log.close()


def test_an_older_log_without_statuses_is_upgraded(tmp_path: Path) -> None:
    path = tmp_path / "local.db"
    with contextlib.closing(sqlite3.connect(path)) as db:
        db.executescript(
            "CREATE TABLE actions (id INTEGER PRIMARY KEY, time INTEGER NOT NULL, "
            "contract_id TEXT NOT NULL, event TEXT NOT NULL, result TEXT, detail TEXT);"
        )
        db.execute(
            "INSERT INTO actions (time, contract_id, event, result) VALUES (?, ?, ?, 'ok')",
            (NOW, "c" * 64, json.dumps({"type": "contract_action", "action": "turn_on"})),
        )
        db.commit()
    log = ActionLog(path)
    try:
        (row,) = log.recent()
        assert (row["status"], row["result"]) == ("effective", "ok")
        log.record(_overruled("superseded", "superseded by line 9: ELSE of IF Price < 3 THEN"))
        assert len(log.recent(statuses=STATUSES)) == 2
    finally:
        log.close()


async def test_actions_by_status_over_http(served: Any) -> None:
    client, _events, log = served
    done = log.record(_action())
    held = log.record(_overruled("suppressed", "held off by DR event pico-1 until 13:30"))
    response = await client.get("/api/v1/local/actions", headers=AUTH)
    assert [r["action_id"] for r in (await response.json())["actions"]] == [done]
    response = await client.get("/api/v1/local/actions?status=all", headers=AUTH)
    rows = (await response.json())["actions"]
    assert [(r["action_id"], r["status"]) for r in rows] == [
        (held, "suppressed"),
        (done, "effective"),
    ]
    assert rows[0]["why"] == "held off by DR event pico-1 until 13:30"
    response = await client.get("/api/v1/local/actions?status=suppressed,superseded", headers=AUTH)
    assert [r["action_id"] for r in (await response.json())["actions"]] == [held]
    for bad in ("maybe", "", "effective,,"):
        response = await client.get(f"/api/v1/local/actions?status={bad}", headers=AUTH)
        assert response.status == 400
        body = await response.json()
        assert body["error"]["field"] == "status"
        assert "effective, unchanged, suppressed, superseded" in body["error"]["message"]


async def test_the_agent_publishes_only_what_it_carries_out_and_says_why_not(
    tmp_path: Path,
) -> None:
    events, log = LocalEvents(), ActionLog(tmp_path / "local.db")
    client = NodeClient("http://127.0.0.1:9", "t")
    agent = HomeAgent(
        client=client,
        signer=NodeSigner(client),
        executor=ContractExecutor("tv" + "a" * 40, None),
        clock=lambda: float(NOW),
        log=log,
        local_events=events,
    )
    try:
        held = _overruled("suppressed", "held off by DR event pico-1 until 13:30")
        await agent.act([held, _action()])
        # Only the effective action went out; nobody listens, so it waits for Home Assistant.
        ((_, published),) = events.since(0)
        assert (published["action"], published["status"]) == ("turn_on", "effective")
        (row,) = log.recent()
        assert (row["result"], row["detail"]) == ("skipped", NO_HOME_ASSISTANT)
        assert [r["status"] for r in log.recent(statuses=STATUSES)] == ["effective", "suppressed"]
        # With Home Assistant following the stream the node leaves the result to it.
        queue = events.subscribe()
        await agent.act([_action("Bomba")])
        assert queue.get_nowait()[1]["device"] == "Bomba"
        assert log.recent(limit=1)[0]["detail"] == ""

        # An actuator (the demo's simulator) that knows no such device.
        async def unmapped(action: ActionRecord) -> str:
            return "unmapped"

        agent.actuator = unmapped
        await agent.act([_action("Secadora")])
        assert log.recent(limit=1)[0]["detail"] == "no actuator is mapped to 'Secadora'"
    finally:
        log.close()
