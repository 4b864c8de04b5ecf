"""Demand-response events: status and phases by time, and the lifecycle through a real node."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ledger_core.client import NodeClient
from ledger_core.clock import ManualClock
from ledger_core.concentrator.dr import (
    DrError,
    DrEvent,
    DrManager,
    DrSignal,
    Phase,
    SignalName,
    Status,
    dr_level_at,
    new_event_id,
)
from ledger_core.concentrator.ledger import HttpLedger
from tests.concentrator.harness import live_node, mx
from tests.state.chain import key

NOON = mx(2026, 3, 10, 12)
ALICE = key("home-0").address
BOB = key("home-1").address


def event(**changes: object) -> DrEvent:
    base: dict[str, object] = {
        "event_id": "dr-a",
        "modification_number": 0,
        "signal": DrSignal.simple(2),
        "start": NOON + 3600,
        "duration": 1800,
    }
    base.update(changes)
    return DrEvent(**base)  # type: ignore[arg-type]


def test_status_and_phase_follow_the_clock_with_ramp_up_and_recovery() -> None:
    e = event(ramp_up=5400, recovery=600)
    start, end = e.start, e.end
    assert end == start + 1800
    timeline = [
        (start - 5401, Status.FAR, Phase.PENDING),
        (start - 5400, Status.NEAR, Phase.RAMP_UP),  # the ramp-up is longer than an hour
        (start - 1, Status.NEAR, Phase.RAMP_UP),
        (start, Status.ACTIVE, Phase.ACTIVE),
        (end - 1, Status.ACTIVE, Phase.ACTIVE),
        (end, Status.COMPLETED, Phase.RECOVERY),
        (end + 599, Status.COMPLETED, Phase.RECOVERY),
        (end + 600, Status.COMPLETED, Phase.OVER),
    ]
    for now, status, phase in timeline:
        assert (e.status(now), e.phase(now)) == (status, phase), now
    plain = event()
    assert plain.status(plain.start - 3601) is Status.FAR
    assert plain.status(plain.start - 3600) is Status.NEAR
    assert plain.status(plain.start - 601, near_seconds=600) is Status.FAR
    assert plain.phase(plain.start - 1) is Phase.PENDING  # no ramp-up
    cancelled = event(cancelled=True, modification_number=3)
    assert {cancelled.status(t) for t in (0, cancelled.start, cancelled.end)} == {Status.CANCELLED}
    assert cancelled.phase(cancelled.start) is Phase.CANCELLED
    shown = e.to_json(start)
    assert (shown["status"], shown["phase"], shown["end"]) == ("active", "active", end)
    assert (shown["ramp_up"], shown["recovery"], shown["describe"]) == (
        5400,
        600,
        "SIMPLE level 2",
    )


ORDER = [Status.FAR, Status.NEAR, Status.ACTIVE, Status.COMPLETED]
PHASES = [Phase.PENDING, Phase.RAMP_UP, Phase.ACTIVE, Phase.RECOVERY, Phase.OVER]


@given(
    st.integers(0, 10**6),
    st.integers(1, 7 * 86400),
    st.integers(0, 86400),
    st.integers(0, 86400),
    st.integers(0, 7200),
    st.lists(st.integers(-(10**6), 3 * 10**6), min_size=2, max_size=6),
)
def test_status_and_phase_only_move_forward(
    start: int, duration: int, ramp: int, recovery: int, near: int, moments: list[int]
) -> None:
    e = event(start=start, duration=duration, ramp_up=ramp, recovery=recovery)
    moments.sort()
    statuses = [ORDER.index(e.status(t, near)) for t in moments]
    phases = [PHASES.index(e.phase(t)) for t in moments]
    assert statuses == sorted(statuses)
    assert phases == sorted(phases)
    for t in moments:
        assert (e.status(t, near) is Status.ACTIVE) == (e.phase(t) is Phase.ACTIVE)


def test_the_simple_level_in_force_for_a_participant() -> None:
    events = [
        event(event_id="a", signal=DrSignal.simple(1)),
        event(event_id="b", signal=DrSignal.simple(3), targets=(BOB,)),
        event(event_id="c", signal=DrSignal.simple(2), start=NOON + 3600 + 900),
        event(event_id="d", signal=DrSignal.delta(-500)),
        event(event_id="e", signal=DrSignal.simple(3), cancelled=True),
    ]
    inside = NOON + 3600 + 1000
    assert dr_level_at(events, ALICE, inside) == 2
    assert dr_level_at(events, BOB, inside) == 3
    assert dr_level_at(events, ALICE, NOON + 3600) == 1
    assert dr_level_at(events, ALICE, NOON) == 0
    assert dr_level_at(events, ALICE, NOON + 3600 + 2700) == 0


@pytest.mark.parametrize(
    ("value", "field", "message"),
    [
        ("SIMPLE", "signal", "must be an object"),
        ({"name": "SIMPLE", "level": 4}, "signal.level", "between 0 and 3"),
        ({"name": "SIMPLE"}, "signal.level", "is missing"),
        ({"name": "BID_LOAD"}, "signal.name", "SIMPLE, ELECTRICITY_PRICE or LOAD_DISPATCH"),
        ({"name": "LOAD_DISPATCH", "setpoint_w": 1, "delta_w": 2}, "signal", "exactly one"),
        ({"name": "ELECTRICITY_PRICE", "price": "3"}, "signal.price", "must be an integer"),
    ],
)
def test_signals_are_checked_as_the_ledger_checks_them(
    value: object, field: str, message: str
) -> None:
    with pytest.raises(DrError) as info:
        DrSignal.from_json(value)
    assert (info.value.status, info.value.code, info.value.field) == (400, "malformed", field)
    assert message in info.value.message


def test_signal_round_trips_and_descriptions() -> None:
    for signal, text in [
        (DrSignal.simple(0), "SIMPLE level 0"),
        (DrSignal.electricity_price(45_000), "ELECTRICITY_PRICE 45000 (10^-4 MXN/kWh)"),
        (DrSignal.setpoint(1500), "LOAD_DISPATCH setpoint 1500 W"),
        (DrSignal.delta(-800), "LOAD_DISPATCH delta -800 W"),
    ]:
        assert DrSignal.from_json(signal.to_json()) == signal
        assert signal.describe() == text
    assert DrSignal.delta(-800).to_json() == {"name": "LOAD_DISPATCH", "delta_w": -800}
    assert DrSignal.simple(1).name is SignalName.SIMPLE
    with pytest.raises(ValueError, match="id_prefix"):
        DrManager(
            HttpLedger(NodeClient("http://127.0.0.1:9", "t")), ManualClock(0), id_prefix="a b"
        )


async def test_issue_modify_cancel_through_the_node_api(tmp_path: Path) -> None:
    async with live_node(tmp_path, NOON) as live:
        await live.register_meters(2)
        manager = DrManager(live.http(), live.clock)
        issued = await manager.issue(
            DrSignal.simple(2),
            NOON + 1800,
            3600,
            targets=[ALICE],
            ramp_up=300,
            recovery=600,
        )
        assert re.fullmatch(r"dr-20260310T180000Z-[0-9a-f]{12}", issued.event_id)
        assert issued.modification_number == 0
        record = await live.client.get(f"/signals/dr/{issued.event_id}")
        assert record["signal"] == {"name": "SIMPLE", "level": 2}
        assert (record["ramp_up"], record["recovery"], record["targets"]) == (300, 600, [ALICE])
        assert issued.status(live.clock.now()) is Status.NEAR

        second = await manager.issue(DrSignal.delta(-1500), NOON + 900, 900)
        assert second.event_id.startswith("dr-20260310T180000Z-")
        assert second.event_id != issued.event_id, "the same second, another event"
        assert "ramp_up" not in await live.client.get(f"/signals/dr/{second.event_id}")

        moved = await manager.modify(
            issued.event_id, start=NOON + 2700, signal=DrSignal.simple(3), targets=[ALICE, BOB]
        )
        assert (moved.modification_number, moved.start, moved.signal.level) == (1, NOON + 2700, 3)
        assert moved.ramp_up == 300  # kept from the last modification
        same = await manager.modify(issued.event_id, start=NOON + 2700)
        assert same == moved  # nothing changed: nothing sent, no new number
        record = await live.client.get(f"/signals/dr/{issued.event_id}")
        assert (record["modification_number"], record["targets"]) == (1, [ALICE, BOB])

        live.clock.set(NOON + 2700)
        assert (await manager.current(issued.event_id)).status(live.clock.now()) is (  # type: ignore[union-attr]
            Status.ACTIVE
        )
        cancelled = await manager.cancel(issued.event_id)
        assert (cancelled.modification_number, cancelled.cancelled) == (2, True)
        record = await live.client.get(f"/signals/dr/{issued.event_id}")
        assert (record["modification_number"], record["cancelled"]) == (2, True)
        assert cancelled.status(live.clock.now()) is Status.CANCELLED
        assert [e.event_id for e in manager.events()] == []  # second has completed
        assert len(manager.events(include_finished=True)) == 2

        failures = [
            (manager.cancel(issued.event_id), 409, "cancelled_event", None),
            (manager.modify(issued.event_id, duration=60), 409, "cancelled_event", None),
            (manager.cancel(second.event_id), 409, "completed_event", None),
            (manager.cancel("dr-nothing"), 404, "unknown_event", None),
            (manager.cancel("bad id"), 400, "malformed", "event_id"),
            (
                manager.issue(DrSignal.simple(1), NOON + 3600, 60, event_id=issued.event_id),
                409,
                "event_exists",
                "event_id",
            ),
            (manager.issue(DrSignal.simple(1), NOON, 60), 400, "past_event", "start"),
            (
                manager.issue(DrSignal.simple(1), NOON + 3600, 60, ramp_up=90_000),
                400,
                "malformed",
                "ramp_up",
            ),
            (
                manager.issue(DrSignal.simple(1), NOON + 3600, 60, targets=[key("x").address]),
                422,
                "unknown_account",
                None,
            ),
        ]
        for call, status, code, field in failures:
            with pytest.raises(DrError) as info:
                await call
            assert (info.value.status, info.value.code, info.value.field) == (status, code, field)

        third = await manager.issue(
            DrSignal.electricity_price(60_000), NOON + 3600, 900, event_id="pico-1"
        )
        with pytest.raises(DrError) as info:
            await manager.modify(third.event_id, start=NOON, duration=60)
        assert (info.value.code, info.value.field) == ("past_event", "start")
        assert (await manager.current("pico-1")).modification_number == 0  # type: ignore[union-attr]


async def test_the_manager_learns_events_from_the_stream_and_reads_the_chain_first(
    tmp_path: Path,
) -> None:
    async with live_node(tmp_path, NOON) as live:
        operator = DrManager(live.local(), live.clock)
        issued = await operator.issue(DrSignal.setpoint(2000), NOON + 900, 900)
        # Another manager (another process, or the CLI) modifies the same event ...
        other = DrManager(live.http(), live.clock)
        await other.modify(issued.event_id, duration=1800)
        # ... and the first one still numbers its change correctly: it reads the chain first.
        stale = operator.known[issued.event_id]
        assert stale.modification_number == 0
        cancelled = await operator.cancel(issued.event_id)
        assert (cancelled.modification_number, cancelled.duration) == (2, 1800)

        follower = DrManager(live.local(), live.clock)
        stream = live.local().events(0)
        seen = []
        async for _seq, _height, item in stream:
            if item["type"] == "dr_event":
                seen.append(follower.observe(item).modification_number)
            if len(seen) == 3:
                break
        await stream.aclose()
        assert seen == [0, 1, 2]
        assert follower.known[issued.event_id].cancelled
        # An older modification arriving late does not replace a newer one.
        older = follower.observe({**issued.body(), "type": "dr_event"})
        assert older.modification_number == 2


def test_event_ids_carry_the_time_of_issue_and_48_random_bits() -> None:
    ids = {new_event_id("dr", NOON) for _ in range(1000)}
    assert len(ids) == 1000
    assert all(re.fullmatch(r"dr-20260310T180000Z-[0-9a-f]{12}", i) for i in ids)
    assert new_event_id("demo", 0).startswith("demo-19700101T000000Z-")


async def test_two_issuers_in_the_same_second_make_two_events(tmp_path: Path) -> None:
    async with live_node(tmp_path, NOON) as live:
        # The concentrator's manager and the CLI's (another process, the same node),
        # with an id source that hands both the same first id: the ledger refuses the
        # second issue of it and that manager draws another id.
        def colliding() -> Iterator[str]:
            yield "dr-same"
            while True:
                yield new_event_id("dr", NOON)

        sources = [colliding(), colliding()]
        managers = [
            DrManager(live.http(), live.clock, new_id=lambda p, t, s=s: next(s)) for s in sources
        ]
        first, second = await asyncio.gather(
            managers[0].issue(DrSignal.simple(3), NOON + 900, 1800),
            managers[1].issue(DrSignal.simple(1), NOON + 900, 1800),
        )
        assert first.event_id != second.event_id
        assert "dr-same" in (first.event_id, second.event_id)
        for issued in (first, second):
            record = await live.client.get(f"/signals/dr/{issued.event_id}")
            assert record["signal"] == issued.signal.to_json()
            assert record["modification_number"] == 0
        # Two changes made from the same reading: one is modification 1, the other is
        # refused, and the refusal says which number the ledger has and why.
        changes = await asyncio.gather(
            managers[0].modify(first.event_id, duration=900),
            managers[1].modify(first.event_id, duration=1200),
            return_exceptions=True,
        )
        [done] = [c for c in changes if isinstance(c, DrEvent)]
        [refused] = [c for c in changes if isinstance(c, DrError)]
        assert done.modification_number == 1
        assert (refused.status, refused.code) == (409, "stale_modification")
        assert f"event {first.event_id} is at modification 1" in refused.message
        assert "normally 2" in refused.message
