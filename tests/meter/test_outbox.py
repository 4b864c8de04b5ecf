"""The outbox against a real node: buffering offline, draining, codes, nonces."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest

from ledger_core.api.core import make_app
from ledger_core.meter.intervals import IntervalReport
from ledger_core.meter.outbox import (
    Outbox,
    Outcome,
    http_chain_nonce,
    http_submitter,
    node_chain_nonce,
    node_submitter,
)
from ledger_core.meter.simulator import SmartPiSimulator
from ledger_core.meter.store import MeterStore
from tests.meter.helpers import NOON, TOKEN, Ledger, ManualClock, free_port, serve
from tests.state.chain import CHAIN_ID

DAY = 86400


@pytest.fixture
def clock() -> ManualClock:
    # A day and two minutes after the first interval we report.
    return ManualClock(NOON + DAY + 120)


@pytest.fixture
def ledger(tmp_path: Path, clock: ManualClock) -> Iterator[Ledger]:
    ledger = Ledger(tmp_path / "node", clock)
    try:
        yield ledger
    finally:
        ledger.close()


@contextlib.contextmanager
def meter_store(path: Path, ledger: Ledger) -> Iterator[MeterStore]:
    store = MeterStore(path, ledger.meter.address, CHAIN_ID)
    try:
        yield store
    finally:
        store.close()


def day_of_reports(outbox: Outbox) -> list[IntervalReport]:
    reports = [IntervalReport(int(NOON) + 900 * i, 100 + i, i % 7) for i in range(96)]
    with outbox.store.transaction():
        for report in reports:
            outbox.add(report)
    return reports


async def test_a_day_offline_is_buffered_then_drained_over_http(
    tmp_path: Path, ledger: Ledger, clock: ManualClock
) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    async with aiohttp.ClientSession() as session:
        with meter_store(tmp_path / "meter.db", ledger) as store:
            outbox = Outbox(
                store,
                ledger.meter,
                CHAIN_ID,
                http_submitter(session, url, TOKEN),
                chain_nonce=http_chain_nonce(session, url, TOKEN, ledger.meter.address),
                clock=clock,
                backoff=2.0,
            )
            reports = day_of_reports(outbox)
            # The node is down: nothing listens on its port.
            assert not await outbox.flush()
            assert outbox.counts()["pending"] == 96
            assert outbox.failures == 1
            assert not await outbox.flush()
            assert outbox.retry_delay() == 4.0  # backing off: 2 s, then 4 s
            assert outbox.status(reports[0].interval_start) == ("pending", "unreachable")
        # The meter restarts while the node is still down: the reports were on disk.
        with meter_store(tmp_path / "meter.db", ledger) as store:
            outbox = Outbox(
                store,
                ledger.meter,
                CHAIN_ID,
                http_submitter(session, url, TOKEN),
                chain_nonce=http_chain_nonce(session, url, TOKEN, ledger.meter.address),
                clock=clock,
            )
            assert outbox.next_nonce == 97
            async with serve(make_app(ledger.node, TOKEN, ledger.chain.iso), port):
                await outbox.sync_nonce()  # the ledger has no nonce for the meter yet
                assert outbox.next_nonce == 97
                assert await outbox.flush()
                assert outbox.counts()["sent"] == 96
                assert len(ledger.node.mempool) == 96
                ledger.node.produce_block()
                clock.time += outbox.confirm_after
                assert await outbox.flush()
                assert outbox.counts() == {"pending": 0, "sent": 0, "committed": 96, "dropped": 0}
                assert outbox.status(reports[-1].interval_start) == (
                    "committed",
                    "already_committed",
                )
                last = http_chain_nonce(session, url, TOKEN, ledger.meter.address)
                assert await last() == 96
        # The readings stayed here: each commitment on the ledger opens with one of them.
        with meter_store(tmp_path / "meter.db", ledger) as store:
            kept = Outbox(store, ledger.meter, CHAIN_ID, http_submitter(session, url, TOKEN))
            openings = {o.interval_start: o for o in kept.openings(0, 2**40)}
            assert kept.shared() == {"pending": 0, "stored": 0, "refused": 0, "kept": 96}
    on_ledger = ledger.reports()
    assert len(on_ledger) == 96
    for report in reports:
        stored = on_ledger[report.interval_start]
        opening = openings[report.interval_start]
        assert (opening.import_wh, opening.export_wh) == (report.import_wh, report.export_wh)
        assert opening.opens(CHAIN_ID, str(stored["commitment"]))
        assert set(stored) == {"commitment", "height"}


async def test_what_each_answer_does(
    tmp_path: Path, ledger: Ledger, clock: ManualClock, caplog: pytest.LogCaptureFixture
) -> None:
    with meter_store(tmp_path / "meter.db", ledger) as store:
        outbox = Outbox(store, ledger.meter, CHAIN_ID, node_submitter(ledger.node), clock=clock)
        with store.transaction():
            fresh = outbox.add(IntervalReport(int(NOON) + DAY - 900, 5, 0))
        assert await outbox.flush()
        assert outbox.status(int(NOON) + DAY - 900) == ("sent", "accepted")
        clock.time += outbox.confirm_after
        assert await outbox.flush()  # still in the mempool
        assert outbox.status(int(NOON) + DAY - 900) == ("sent", "duplicate")
        assert fresh in ledger.node.mempool
        ledger.node.produce_block()
        # Three days late: the ledger no longer takes it; dropped with a log line.
        with store.transaction():
            outbox.add(IntervalReport(int(NOON) - 2 * DAY, 1, 0))
        with caplog.at_level(logging.WARNING, logger="ledger_core.meter.outbox"):
            assert await outbox.flush()
        assert outbox.status(int(NOON) - 2 * DAY) == ("dropped", "late_report")
        assert "dropped" in caplog.text
        assert "reports are accepted up to" in caplog.text
        clock.time += outbox.confirm_after
        assert await outbox.flush()
        assert outbox.counts() == {"pending": 0, "sent": 0, "committed": 1, "dropped": 1}


async def test_an_unbound_meter_waits_with_backoff_until_it_is_bound(
    tmp_path: Path, clock: ManualClock
) -> None:
    ledger = Ledger(tmp_path / "node", clock, bind=False)
    try:
        with meter_store(tmp_path / "meter.db", ledger) as store:
            outbox = Outbox(
                store, ledger.meter, CHAIN_ID, node_submitter(ledger.node), clock=clock, backoff=1
            )
            with store.transaction():
                outbox.add(IntervalReport(int(NOON), 1, 0))
                outbox.add(IntervalReport(int(NOON) + 900, 2, 0))
            for expected in (1.0, 2.0, 4.0):
                assert not await outbox.flush()
                assert outbox.retry_delay() == expected
            assert outbox.status(int(NOON)) == ("pending", "unknown_signer")
            ledger.bind()
            assert await outbox.flush()
            assert outbox.failures == 0
            ledger.node.produce_block()
            assert sorted(ledger.reports()) == [NOON, NOON + 900]
    finally:
        ledger.close()


async def test_a_lost_database_recovers_nonces_from_the_ledger(
    tmp_path: Path, ledger: Ledger, clock: ManualClock
) -> None:
    with meter_store(tmp_path / "first.db", ledger) as store:
        outbox = Outbox(store, ledger.meter, CHAIN_ID, node_submitter(ledger.node), clock=clock)
        with store.transaction():
            for i in range(3):
                outbox.add(IntervalReport(int(NOON) + 900 * i, i, 0))
        assert await outbox.flush()
        ledger.node.produce_block()
    # A new meter.db for the same key: it starts again at nonce 1.
    with meter_store(tmp_path / "second.db", ledger) as store:
        outbox = Outbox(
            store,
            ledger.meter,
            CHAIN_ID,
            node_submitter(ledger.node),
            chain_nonce=node_chain_nonce(ledger.node, ledger.meter.address),
            clock=clock,
        )
        with store.transaction():
            outbox.add(IntervalReport(int(NOON) + 900 * 2, 2, 0))  # already on the ledger
            outbox.add(IntervalReport(int(NOON) + 900 * 3, 3, 0))
        assert outbox.next_nonce == 3
        assert await outbox.flush()  # stale nonce: signed again from the ledger's last + 1
        assert outbox.status(int(NOON) + 1800) == ("committed", "duplicate_report")
        assert outbox.status(int(NOON) + 2700) == ("sent", "accepted")
        assert outbox.next_nonce == 6
        ledger.node.produce_block()
    assert sorted(ledger.reports()) == [NOON + 900 * i for i in range(4)]
    # A third new file, told to ask the ledger first: it signs above the ledger's nonce.
    with meter_store(tmp_path / "third.db", ledger) as store:
        outbox = Outbox(
            store,
            ledger.meter,
            CHAIN_ID,
            node_submitter(ledger.node),
            chain_nonce=node_chain_nonce(ledger.node, ledger.meter.address),
            clock=clock,
        )
        with store.transaction():
            outbox.add(IntervalReport(int(NOON) + 900 * 4, 4, 0))
        await outbox.sync_nonce()
        assert outbox.next_nonce == 7
        assert await outbox.flush()
        assert outbox.status(int(NOON) + 3600) == ("sent", "accepted")


async def test_nonces_survive_a_restart(tmp_path: Path, ledger: Ledger, clock: ManualClock) -> None:
    path = tmp_path / "meter.db"
    with meter_store(path, ledger) as store:
        outbox = Outbox(store, ledger.meter, CHAIN_ID, node_submitter(ledger.node), clock=clock)
        with store.transaction():
            outbox.add(IntervalReport(int(NOON), 1, 0))
            outbox.add(IntervalReport(int(NOON) + 900, 1, 0))
    with meter_store(path, ledger) as store:
        outbox = Outbox(store, ledger.meter, CHAIN_ID, node_submitter(ledger.node), clock=clock)
        assert outbox.next_nonce == 3
        with store.transaction():
            outbox.add(IntervalReport(int(NOON) + 1800, 1, 0))
        nonces = [row[0] for row in store.db.execute("SELECT nonce FROM outbox ORDER BY nonce")]
        assert nonces == [1, 2, 3]


async def test_run_sends_until_stopped_with_a_block_producing_node(tmp_path: Path) -> None:
    now = time.time()
    ledger = Ledger(tmp_path / "node", ManualClock(now))
    ledger.node.clock = time.time  # blocks now carry the real time
    stop = asyncio.Event()
    blocks = asyncio.create_task(ledger.node.run(stop, block_interval=0.01, empty_block_every=3600))
    try:
        with meter_store(tmp_path / "meter.db", ledger) as store:
            outbox = Outbox(
                store,
                ledger.meter,
                CHAIN_ID,
                node_submitter(ledger.node),
                chain_nonce=node_chain_nonce(ledger.node, ledger.meter.address),
                confirm_after=0.05,
            )
            sender = asyncio.create_task(outbox.run(stop))
            first = int(now // 900 * 900) - 4 * 900
            with store.transaction():
                for i in range(4):
                    outbox.add(IntervalReport(first + 900 * i, 10 * i, 1))
            outbox.wake()
            for _ in range(500):  # up to 10 s
                if outbox.counts()["committed"] == 4:
                    break
                await asyncio.sleep(0.02)
            stop.set()
            await asyncio.wait_for(sender, 5)
    finally:
        stop.set()
        ledger.node._wake.set()
        await asyncio.wait_for(blocks, 5)
        ledger.close()
    assert sorted(ledger.reports()) == [first + 900 * i for i in range(4)]


async def test_answers_that_are_not_the_nodes_are_kept_for_later(
    tmp_path: Path, ledger: Ledger, clock: ManualClock
) -> None:
    sim = SmartPiSimulator(clock=clock)  # any web server that is not a node: it answers HTML
    url = await sim.start()
    try:
        async with aiohttp.ClientSession() as session:
            outcome = await http_submitter(session, url, TOKEN)(b"{}")
        assert outcome.code == "bad_response"
    finally:
        await sim.stop()
    with meter_store(tmp_path / "meter.db", ledger) as store:
        calls: list[bytes] = []

        async def flaky(wire: bytes) -> Outcome:
            calls.append(wire)
            if len(calls) == 1:
                raise RuntimeError("a bug in a submitter")
            return Outcome("accepted")

        outbox = Outbox(store, ledger.meter, CHAIN_ID, flaky, clock=clock, backoff=0.01)
        await outbox.sync_nonce()  # no way to ask the ledger: nothing changes
        assert outbox.next_nonce == 1
        with store.transaction():
            outbox.add(IntervalReport(int(NOON), 1, 0))
        stop = asyncio.Event()
        runner = asyncio.create_task(outbox.run(stop))
        for _ in range(500):  # up to 5 s
            if outbox.counts()["sent"] == 1:
                break
            await asyncio.sleep(0.01)
        stop.set()
        await asyncio.wait_for(runner, 5)
        assert len(calls) == 2
        assert outbox.status(int(NOON)) == ("sent", "accepted")
