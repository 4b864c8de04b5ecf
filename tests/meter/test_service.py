"""The meter service end to end: simulator over HTTP -> accounting -> reports on a real node."""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web

from ledger_core.clock import AcceleratedClock
from ledger_core.meter.accounting import trapezoid
from ledger_core.meter.household import Household
from ledger_core.meter.intervals import IntervalReport
from ledger_core.meter.outbox import Outcome, node_chain_nonce, node_submitter
from ledger_core.meter.reading import Reading
from ledger_core.meter.service import MeterConfig, MeterService
from ledger_core.meter.simulator import SmartPiSimulator
from ledger_core.meter.smartpi import SmartPiClient
from ledger_core.meter.sources import MeterConfigError, PushedSource
from tests.meter.helpers import NOON, Ledger, ManualClock, serve
from tests.state.chain import CHAIN_ID


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(NOON - 60)


@pytest.fixture
async def ledger(tmp_path: Path, clock: ManualClock) -> AsyncIterator[Ledger]:
    ledger = Ledger(tmp_path / "node", clock)
    try:
        yield ledger
    finally:
        ledger.close()


@pytest.fixture
async def simulator(clock: ManualClock) -> AsyncIterator[SmartPiSimulator]:
    sim = SmartPiSimulator(Household(seed=5), clock=clock)
    await sim.start()
    try:
        yield sim
    finally:
        await sim.stop()


def make_service(
    tmp_path: Path, ledger: Ledger, sim: SmartPiSimulator, clock: ManualClock, **config: float
) -> MeterService:
    assert sim.url is not None
    settings = {"sample_period": 10.0, "report_delay": 60.0} | config
    return MeterService(
        SmartPiClient(sim.url, clock=clock, retries=0, timeout=1.0),
        tmp_path / "meter.db",
        ledger.meter,
        CHAIN_ID,
        node_submitter(ledger.node),
        config=MeterConfig(**settings),  # type: ignore[arg-type]
        clock=clock,
        chain_nonce=node_chain_nonce(ledger.node, ledger.meter.address),
    )


async def test_readings_become_signed_reports_on_the_ledger(
    tmp_path: Path, ledger: Ledger, simulator: SmartPiSimulator, clock: ManualClock
) -> None:
    service = make_service(tmp_path, ledger, simulator, clock)
    readings = service.subscribe(maxsize=1000)
    events = service.subscribe_events()
    try:
        for _ in range(6 * 20 + 1):  # 11:59 to 12:19, every 10 s
            assert await service.step() is not None
            clock.time += 10
        reports = service.intervals.reports()
        assert [r.interval_start for r in reports] == [NOON - 900, NOON]
        # The ledger judges against its last block's time: until a block is past the
        # intervals' end they are "future" and the outbox keeps them.
        assert not await service.outbox.flush()
        assert service.outbox.status(int(NOON) - 900) == ("pending", "future_interval")
        ledger.node.produce_block()  # stamped now: the ledger's time is the clock's
        assert await service.outbox.flush()
        ledger.node.produce_block()
        on_ledger = ledger.reports()
        for report in reports:
            # The ledger has the commitment; the reading and its salt stay in meter.db.
            stored = on_ledger[report.interval_start]
            opening = service.outbox.opening(report.interval_start)
            assert opening is not None
            assert (opening.import_wh, opening.export_wh) == (report.import_wh, report.export_wh)
            assert stored["commitment"] == opening.commitment(CHAIN_ID)
            assert "import_wh" not in stored
        # The 12:00 interval holds the integral of what the meter read from 12:00 to 12:15.
        seen: list[Reading] = [readings.get_nowait() for _ in range(readings.qsize())]
        inside = [r for r in seen if NOON <= r.timestamp <= NOON + 900]
        imported = exported = 0.0
        for a, b in itertools.pairwise(inside):
            assert a.power is not None
            assert b.power is not None
            part = trapezoid(a.power, b.power, b.timestamp - a.timestamp)
            imported += part[0]
            exported += part[1]
        noon_report = reports[1]
        assert noon_report.export_wh > 0  # PV at noon in March
        assert abs(noon_report.export_wh - exported / 3600) <= 2
        assert abs(noon_report.import_wh - imported / 3600) <= 2
        # Nothing is lost: reports + carried rest + open intervals = the lifetime counters.
        counter = service.accountant.counters["net"]
        open_import, open_export = service.intervals.open_energy()
        total_import = sum(r.import_wh for r in reports) * 1000 + service.intervals.carry_import
        total_export = sum(r.export_wh for r in reports) * 1000 + service.intervals.carry_export
        assert total_import + open_import == counter.import_mwh
        assert total_export + open_export == counter.export_mwh
        published = [events.get_nowait() for _ in range(events.qsize())]
        assert [e.type for e in published].count("interval_report") == 2
        assert published[-1].to_json() == {
            "type": "interval_report",
            "time": "2026-03-10T18:15:00+00:00",  # when the data passed 12:15
            **reports[-1].body(),
        }
        snapshot = service.snapshot()
        assert snapshot is not None
        assert snapshot["last_interval"] == reports[-1].body()
        assert snapshot["service"] == "connected"
        service.unsubscribe(readings)
        service.unsubscribe_events(events)
        assert service.meter == ledger.meter.address
    finally:
        await service.stop()


async def test_cut_and_reconnection_are_not_an_unreachable_meter(
    tmp_path: Path, ledger: Ledger, simulator: SmartPiSimulator, clock: ManualClock
) -> None:
    service = make_service(tmp_path, ledger, simulator, clock, cut_samples=3, unreachable_after=3)
    events = service.subscribe_events()
    assert simulator.url is not None

    async def steps(count: int) -> list[str]:
        for _ in range(count):
            await service.step()
            clock.time += 1
        return [e.type for e in (events.get_nowait() for _ in range(events.qsize()))]

    try:
        assert service.snapshot() is None
        assert await steps(2) == []
        assert service.service == "connected"
        async with aiohttp.ClientSession() as session:
            async with session.post(
                simulator.url + "/sim/service", json={"connected": False}
            ) as response:
                assert (await response.json()) == {"service": "cut"}
            assert await steps(2) == []  # not yet: three samples in a row
            assert service.service == "connected"
            assert await steps(1) == ["service_cut"]
            assert service.service == "cut"
            latest = service.latest()
            assert latest is not None
            assert latest.power == 0
            async with session.post(
                simulator.url + "/sim/service", json={"connected": True}
            ) as answer:
                assert answer.status == 200
            assert await steps(3) == ["service_reconnected"]
        # The meter stops answering: unknown, never a cut.
        port = int(simulator.url.rsplit(":", 1)[1])
        await simulator.stop()
        assert await steps(2) == []
        assert await steps(1) == ["meter_unreachable"]
        assert service.service == "unknown"
        assert await steps(5) == []
        await simulator.start(port=port)
        assert await steps(1) == ["meter_reachable"]
        assert service.service == "connected"
    finally:
        await service.stop()


async def test_the_loop_runs_on_an_accelerated_clock_and_stops_in_bounded_time(
    tmp_path: Path,
) -> None:
    clock = AcceleratedClock(NOON, speed=100)
    ledger = Ledger(tmp_path / "node", ManualClock(NOON))
    sim = SmartPiSimulator(Household(seed=9), clock=clock)
    url = await sim.start()
    service = MeterService(
        SmartPiClient(url, clock=clock, timeout=30.0, retries=0),
        tmp_path / "meter.db",
        ledger.meter,
        CHAIN_ID,
        node_submitter(ledger.node),
        config=MeterConfig(sample_period=1.0, shutdown_timeout=0.5),
        clock=clock,
    )
    readings = service.subscribe()
    try:
        await service.start()
        await service.start()  # idempotent
        times = []
        for _ in range(5):
            reading = await asyncio.wait_for(readings.get(), 5)
            times.append(reading.timestamp)
        assert all(b > a for a, b in itertools.pairwise(times))
        assert times[-1] - times[0] < 30  # about one simulated second apart
        # A meter that hangs does not hold up the shutdown.
        sim.delay = 20.0
        await asyncio.sleep(0.05)
        started = time.monotonic()
        await service.stop()
        assert time.monotonic() - started < 2.0
        assert service.closed
        await service.stop()  # twice is fine
    finally:
        await sim.stop()
        ledger.close()


async def test_a_restart_continues_the_counters(
    tmp_path: Path, ledger: Ledger, simulator: SmartPiSimulator, clock: ManualClock
) -> None:
    service = make_service(tmp_path, ledger, simulator, clock)
    for _ in range(10):
        await service.step()
        clock.time += 10
    before = service.accountant.counters["net"]
    snapshot = (before.import_mwh, before.export_mwh)
    await service.stop()
    clock.time += 5  # back within max_gap
    again = make_service(tmp_path, ledger, simulator, clock)
    try:
        await again.step()
        after = again.accountant.counters["net"]
        assert (after.import_mwh, after.export_mwh) >= snapshot
        assert after.export_mwh > snapshot[1]  # the restart's 15 s were integrated
        assert again.accountant.gaps == 0
    finally:
        await again.stop()


async def test_a_pushed_source_is_self_paced(tmp_path: Path, ledger: Ledger) -> None:
    clock = ManualClock(NOON)
    source = PushedSource(clock=clock, timeout=5)
    service = MeterService(
        source,
        tmp_path / "meter.db",
        ledger.meter,
        CHAIN_ID,
        node_submitter(ledger.node),
        clock=clock,
    )
    readings = service.subscribe()
    await service.start()
    try:
        source.push(time=NOON, import_kwh_total=10.0, export_kwh_total=2.0, power=300.0)
        source.push(time=NOON + 30, import_kwh_total=10.5, export_kwh_total=2.0, power=320.0)
        for _ in range(2):
            await asyncio.wait_for(readings.get(), 5)
        counter = service.accountant.counters["net"]
        assert (counter.import_mwh, counter.export_mwh) == (500_000, 0)
    finally:
        await service.stop()


async def test_a_wrong_url_is_reported_and_does_not_stop_the_service(
    tmp_path: Path, ledger: Ledger, clock: ManualClock, caplog: pytest.LogCaptureFixture
) -> None:
    async def page(request: web.Request) -> web.Response:
        return web.Response(text="<html>SmartPi</html>", content_type="text/html")

    app = web.Application()
    app.router.add_get("/{tail:.*}", page)
    async with serve(app) as url:
        service = MeterService(
            SmartPiClient(url, clock=clock),
            tmp_path / "meter.db",
            ledger.meter,
            CHAIN_ID,
            node_submitter(ledger.node),
            clock=clock,
        )
        try:
            with caplog.at_level(logging.WARNING, logger="ledger_core.meter.service"):
                for _ in range(3):
                    assert await service.step() is None
            assert caplog.text.count("check the port (1080 by default)") == 1  # said once
            assert service.service == "unknown"
        finally:
            await service.stop()


async def test_a_submit_that_never_returns_does_not_hold_up_the_shutdown(
    tmp_path: Path, ledger: Ledger, clock: ManualClock
) -> None:
    hang = asyncio.Event()

    async def stuck(wire: bytes) -> Outcome:
        await hang.wait()
        return Outcome("accepted")

    source = PushedSource(clock=clock, timeout=5)
    service = MeterService(
        source,
        tmp_path / "meter.db",
        ledger.meter,
        CHAIN_ID,
        stuck,
        config=MeterConfig(shutdown_timeout=0.2),
        clock=clock,
    )
    with service.store.transaction():
        service.outbox.add(IntervalReport(int(NOON), 1, 0))
    await service.start()
    await asyncio.sleep(0.05)  # the outbox is now waiting on the node
    started = time.monotonic()
    await service.stop()
    assert time.monotonic() - started < 1.5
    assert service.closed


def test_config_from_json_names_the_field() -> None:
    config = MeterConfig.from_json({"sample_period": 2, "timezone": "Asia/Kolkata"})
    assert (config.sample_period, config.timezone) == (2, "Asia/Kolkata")
    assert MeterConfig.from_json(config.to_json()) == config
    for value, field in (
        ([], "meter"),
        ({"sample_rate": 1}, "meter.sample_rate"),
        ({"interval_seconds": 900.5}, "meter.interval_seconds"),
        ({"max_gap": "30"}, "meter.max_gap"),
        ({"max_gap": True}, "meter.max_gap"),
        ({"max_gap": -1}, "meter.max_gap"),
        ({"interval_seconds": 7 * 60}, "meter.interval_seconds"),
        ({"timezone": "Mars/Olympus_Mons"}, "meter.timezone"),
        ({"timezone": 5}, "meter.timezone"),
    ):
        with pytest.raises(MeterConfigError) as caught:
            MeterConfig.from_json(value)
        assert caught.value.field == field
