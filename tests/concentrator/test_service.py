"""The concentrator service on a hand-driven clock against a real node, and the clocks."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import socket
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from ledger_core.client import NodeClient
from ledger_core.clock import ManualClock, ScaledClock, SystemClock
from ledger_core.concentrator.dr import DrSignal
from ledger_core.concentrator.ledger import HttpLedger
from ledger_core.concentrator.rules import LoadRule
from ledger_core.concentrator.service import Concentrator, Neighbourhood
from ledger_core.concentrator.tariff import load_tariff
from tests.concentrator.harness import BLOCK, TOU, Live, live_node, mx
from tests.state.chain import key

NOON = mx(2026, 3, 10, 12)


async def until(check: Callable[[], bool], seconds: float = 10.0) -> None:
    """Wait (bounded) until ``check()`` holds."""
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.01)


async def prices_between(live: Live, start: int, end: int) -> int:
    body = await live.client.get(f"/signals/prices?from={start}&to={end}")
    return len(body["prices"])


PEAK_RULE = LoadRule(
    name="neighbourhood-peak",
    above_w=10_000,
    for_intervals=2,
    release_w=6_000,
    signal=DrSignal.simple(2),
    duration=1800,
    cooldown=3600,
)


async def test_prices_on_start_and_day_ahead_at_noon(tmp_path: Path) -> None:
    async with live_node(tmp_path, mx(2026, 3, 10, 11, 50)) as live:
        concentrator = Concentrator(load_tariff(TOU), live.http(), live.clock, report_delay=60)
        await concentrator.start()
        try:
            await asyncio.wait_for(concentrator.started.wait(), 30)
            # Before noon: the rest of today, from the current interval (11:45).
            assert await prices_between(live, mx(2026, 3, 10, 0), mx(2026, 3, 12, 0)) == 49
            live.clock.set(mx(2026, 3, 10, 12))
            deadline = time.monotonic() + 30
            while await prices_between(live, mx(2026, 3, 11, 0), mx(2026, 3, 12, 0)) < 96:
                assert time.monotonic() < deadline
                await asyncio.sleep(0.05)
            # The next day's publication comes at noon tomorrow; the follower saw the prices.
            await until(lambda: len(concentrator.prices) == 49 + 96)
            view = concentrator.neighbourhood()
            assert view["price"]["interval_start"] == mx(2026, 3, 10, 12)
            assert view["price"]["on_chain"]["import_price"] == 20_480
            assert view["price"]["scheduled"]["period"] == "intermediate"
        finally:
            await concentrator.stop()
        assert not concentrator.running


async def test_a_sustained_neighbourhood_peak_issues_a_dr_event(tmp_path: Path) -> None:
    start = mx(2026, 3, 10, 18, 0, 5)
    async with live_node(tmp_path, start) as live:
        meters = await live.register_meters(3)
        readings = live.meter_data(live.http())
        concentrator = Concentrator(
            load_tariff(TOU),
            live.http(),
            live.clock,
            rules=[PEAK_RULE],
            report_delay=60,
            meter_data=readings,
        )
        async with concentrator:
            await asyncio.wait_for(concentrator.started.wait(), 30)
            t = mx(2026, 3, 10, 18)
            for i, per_meter in enumerate([1000, 1100, 800]):  # 12.0 kW, 13.2 kW, 9.6 kW
                interval = t + i * 900
                live.tick(interval + 900 + 10)
                for meter in meters:
                    await live.report(meter, interval, per_meter, 0, share=readings)
                await until(lambda: concentrator.area.latest_interval() == interval)  # noqa: B023
                live.clock.set(interval + 900 + 60)
                await until(lambda: concentrator._last_rule_interval == interval)  # noqa: B023
            assert len(concentrator.decisions) == 1
            decision, event_id = concentrator.decisions[0]
            assert (decision.interval_start, decision.load_w) == (t + 900, 13_200)
            record = await live.client.get(f"/signals/dr/{event_id}")
            assert record["signal"] == {"name": "SIMPLE", "level": 2}
            assert (record["start"], record["duration"]) == (t + 2700, 1800)
            await until(lambda: event_id in concentrator.dr.known)
            view = concentrator.neighbourhood()
            assert view["load"]["latest"] == {
                "interval_start": t + 1800,
                "meters": 3,
                "import_wh": 2400,
                "export_wh": 0,
                "net_import_w": 9_600,
            }
            assert [r["net_import_w"] for r in view["load"]["recent"][:4]] == [
                9_600,
                13_200,
                12_000,
                None,
            ]
            assert set(view["load"]["meters"]) == {m.address for m in meters}
            assert view["dr_events"][0]["event_id"] == event_id
            assert view["dr_events"][0]["status"] == "active"  # it started at t + 2700
            assert view["rules"][0]["state"] == "latched"
            assert view["rules"][0]["last_event"] == event_id


async def test_stop_is_bounded_when_the_node_is_gone_or_hangs() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    ledger = HttpLedger(NodeClient(f"http://127.0.0.1:{port}", "t", timeout=2))
    concentrator = Concentrator(load_tariff(TOU), ledger, ManualClock(NOON))
    await concentrator.start()
    with pytest.raises(RuntimeError, match="already running"):
        await concentrator.start()
    await asyncio.wait_for(concentrator.started.wait(), 10)  # the failed catch-up is logged
    assert concentrator.running
    began = time.monotonic()
    await concentrator.stop(grace=1.0)
    assert time.monotonic() - began < 2.0
    assert not concentrator.running
    await concentrator.stop()  # twice is harmless

    # A node that accepts connections and never answers: the catch-up hangs in a request.
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        url = f"http://127.0.0.1:{silent.getsockname()[1]}"
        hanging = Concentrator(
            load_tariff(TOU), HttpLedger(NodeClient(url, "t")), ManualClock(NOON)
        )
        await hanging.start()
        await asyncio.sleep(0.2)
        assert not hanging.started.is_set()
        began = time.monotonic()
        await hanging.stop(grace=0.3)
        assert time.monotonic() - began < 1.5
        assert not hanging.running


def test_the_neighbourhood_view_sums_reports_once_and_forgets_old_intervals() -> None:
    area = Neighbourhood(keep=4)
    assert area.to_json() == {"latest": None, "recent": [], "meters": {}}
    area.add_report("a", NOON, 500, 100)
    area.add_report("a", NOON, 500, 100)  # the same report again
    area.add_report("b", NOON, 250, 0)
    assert area.load_w(NOON) == (650 * 4)
    assert area.interval_json(NOON)["meters"] == 2
    area.add_report("a", NOON + 3600, 0, 400)
    assert area.load_w(NOON) is None  # four intervals kept: 12:00 is gone
    assert area.load_w(NOON + 3600) == -1600
    area.add_report("b", NOON - 900, 1, 0)  # too old to matter
    assert area.load_w(NOON - 900) is None
    assert area.meters["b"]["interval_start"] == NOON
    area.add_report("b", NOON + 2700, 10, 0)
    assert area.meters["b"]["interval_start"] == NOON + 2700
    assert area.latest_interval() == NOON + 3600


async def test_clocks() -> None:
    manual = ManualClock(100.0)
    woke: list[float] = []

    async def sleeper() -> None:
        await manual.sleep_until(160.0)
        woke.append(manual.now())

    task = asyncio.create_task(sleeper())
    await asyncio.sleep(0.01)
    manual.advance(30)
    await asyncio.sleep(0.01)
    assert woke == []
    manual.set(160)
    await asyncio.wait_for(task, 1)
    assert woke == [160.0]
    with pytest.raises(ValueError, match="backwards"):
        manual.set(10)

    fast = ScaledClock(900.0, start=NOON)
    began = time.monotonic()
    await fast.sleep_until(NOON + 450)  # half an interval: half a second
    assert 0.4 < time.monotonic() - began < 2.0
    assert fast.now() >= NOON + 450
    with pytest.raises(ValueError, match="positive"):
        ScaledClock(0)
    wall = SystemClock()
    assert abs(wall.now() - time.time()) < 1
    await asyncio.wait_for(wall.sleep_until(wall.now() + 0.05), 1)
    await asyncio.wait_for(wall.sleep_until(0), 1)


async def test_in_process_the_follower_is_live_and_a_refused_event_is_retried(
    tmp_path: Path,
) -> None:
    start = mx(2026, 3, 10, 18, 0, 5)
    async with live_node(tmp_path, start) as live:
        meters = await live.register_meters(2)
        stranger = key("not-registered").address
        rule = dataclasses.replace(PEAK_RULE, for_intervals=1, targets=(stranger,))
        readings = live.meter_data(live.local())
        concentrator = Concentrator(
            load_tariff(TOU),
            live.local(),
            live.clock,
            rules=[rule],
            report_delay=60,
            meter_data=readings,
        )
        async with concentrator:
            await asyncio.wait_for(concentrator.started.wait(), 30)
            t = mx(2026, 3, 10, 18)
            for i in range(2):
                interval = t + i * 900
                live.tick(interval + 900 + 10)
                for meter in meters:
                    await live.report(meter, interval, 2000, 0, share=readings)  # 16 kW in all
                await until(lambda: concentrator.area.load_w(interval) == 16_000)  # noqa: B023
                live.clock.set(interval + 900 + 60)
                await until(lambda: concentrator._last_rule_interval == interval)  # noqa: B023
                # The ledger refuses the target, so the rule is armed again, count intact.
                state = concentrator.rules.to_json()[0]
                assert (state["state"], state["count"]) == ("armed", 1)
            assert concentrator.decisions == []
            assert concentrator.neighbourhood()["load"]["latest"]["meters"] == 2


def test_market_clearing_prices_move_the_scheduled_import_price_within_the_band() -> None:
    unused = HttpLedger(NodeClient("http://127.0.0.1:9", "t"))  # nothing is sent here
    concentrator = Concentrator(load_tariff(TOU), unused, ManualClock(NOON))
    assert concentrator.schedule.price(NOON).prices.import_price == 20_480
    concentrator.observe_clearing_price(30_000)
    assert concentrator.schedule.price(NOON).prices.import_price == 28_480  # +0.80 at most
    concentrator.observe_clearing_price(19_000)
    assert concentrator.schedule.price(NOON).prices.import_price == 19_000
    concentrator.observe_clearing_price(1_000)
    assert concentrator.neighbourhood()["price"]["scheduled"]["import_price"] == 15_480
    flat = Concentrator(load_tariff(BLOCK), unused, ManualClock(NOON))  # no band in this tariff
    flat.observe_clearing_price(1_000)
    assert flat.schedule.price(NOON).prices.import_price == 13_180


async def test_a_failed_day_ahead_publication_is_retried_at_the_next_boundary(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="ledger_core.concentrator.service")
    async with live_node(tmp_path, mx(2026, 3, 10, 11, 50)) as live:
        concentrator = Concentrator(load_tariff(TOU), live.local(), live.clock)
        async with concentrator:
            await asyncio.wait_for(concentrator.started.wait(), 30)
            live.node.max_mempool_txs = 0  # the node is busy at noon
            live.clock.set(mx(2026, 3, 10, 12))
            await until(lambda: "intervals failed (mempool_full" in caplog.text)
            assert await prices_between(live, mx(2026, 3, 11, 0), mx(2026, 3, 12, 0)) == 0
            live.node.max_mempool_txs = 20_000
            live.clock.set(mx(2026, 3, 10, 12, 15))
            deadline = time.monotonic() + 30
            while await prices_between(live, mx(2026, 3, 11, 0), mx(2026, 3, 12, 0)) < 96:
                assert time.monotonic() < deadline
                await asyncio.sleep(0.05)
            await until(lambda: "day-ahead prices for 2026-03-11: 96 published" in caplog.text)


def test_cleared_intervals_on_the_chain_feed_the_band() -> None:
    unused = HttpLedger(NodeClient("http://127.0.0.1:9", "t"))  # nothing is sent here
    concentrator = Concentrator(load_tariff(TOU), unused, ManualClock(NOON))
    concentrator.ingest({"type": "interval_cleared", "status": "unpriced", "interval_start": NOON})
    concentrator.ingest({"type": "interval_cleared", "status": "cleared", "price": True})
    assert concentrator.schedule.price(NOON).prices.import_price == 20_480
    concentrator.ingest(
        {"type": "interval_cleared", "status": "cleared", "interval_start": NOON, "price": 19_000}
    )
    assert concentrator.schedule.price(NOON).prices.import_price == 19_000
