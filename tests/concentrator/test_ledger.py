"""The two ways to reach a node: its HTTP API and the node object in this process."""

from __future__ import annotations

import asyncio
from pathlib import Path

from ledger_core.clock import ManualClock
from ledger_core.concentrator.ledger import PENDING, UNAVAILABLE, HttpLedger, NodeLedger
from ledger_core.concentrator.prices import PricePublisher, PriceSchedule
from ledger_core.concentrator.tariff import load_tariff
from ledger_core.node.host import Node
from ledger_core.node.storage import open_storage
from ledger_core.state.machine import StateMachine
from ledger_core.types.tx import TxType
from tests.concentrator.harness import TOU, live_node, mx
from tests.state.chain import Chain, key

NOON = mx(2026, 3, 10, 12, 0, 5)


async def test_http_reads_page_by_page_and_may_submit_through_any_callable(
    tmp_path: Path,
) -> None:
    async with live_node(tmp_path, NOON) as live:
        # Reads over HTTP, submissions signed in this process: any Submit callable will do.
        ledger = HttpLedger(live.client, submit=live.local().submit, page=3)
        publisher = PricePublisher(PriceSchedule(load_tariff(TOU)), ledger, live.clock)
        report = await publisher.publish(mx(2026, 3, 10, 12), mx(2026, 3, 10, 14))
        assert len(report.published) == 8
        prices = await ledger.prices(mx(2026, 3, 10, 12), mx(2026, 3, 10, 14))
        assert sorted(prices) == list(report.published)
        assert await ledger.dr_event("none") is None

        live.node.max_mempool_txs = 0
        (outcome,) = await live.http().submit(
            [(TxType.DEPOSIT_REQUEST, {"amount": 5})]
        )  # fmt: skip
        assert (outcome.code, outcome.ok) == (UNAVAILABLE, False)
        assert "mempool_full" in outcome.message


async def test_in_process_submission_waits_boundedly_and_streams_live_events(
    tmp_path: Path,
) -> None:
    chain = Chain()
    clock = ManualClock(NOON)
    node = Node(
        chain.genesis,
        key("validator"),
        open_storage(tmp_path, chain.genesis),
        clock.now,
        app_factory=StateMachine.restore,
    )
    try:
        # No block loop runs: the transaction waits in the mempool, the wait gives up.
        ledger = NodeLedger(node, chain.iso, wait=0.05)
        (outcome,) = await ledger.submit([(TxType.DEPOSIT_REQUEST, {"amount": 5})])
        assert outcome.code == PENDING
        node.produce_block()

        stream = ledger.events(0)
        first = await anext(stream)
        assert first[2]["type"] == "deposit_requested"
        assert (await anext(stream))[2]["type"] == "new_block"
        waiting = asyncio.ensure_future(anext(stream))
        await asyncio.sleep(0.01)
        assert not waiting.done()
        ledger.wait = 30.0  # from here on the block comes: the wait only bounds the test
        submitted = ledger.submit([(TxType.DEPOSIT_REQUEST, {"amount": 7})])
        pending = asyncio.ensure_future(submitted)
        for _ in range(3000):  # until the transaction is in the mempool (bounded: ~30 s)
            if node.mempool:
                break
            await asyncio.sleep(0.01)
        node.produce_block()
        (done,) = await asyncio.wait_for(pending, 1)
        assert done.ok
        seq, height, event = await asyncio.wait_for(waiting, 1)
        assert (event["type"], height, seq > first[0]) == ("deposit_requested", 2, True)
        await stream.aclose()
        assert not node._subscribers
    finally:
        node.close()
