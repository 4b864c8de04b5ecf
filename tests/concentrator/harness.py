"""A real node for concentrator tests: SQLite in a temporary folder, its API on 127.0.0.1.

The node, the API server and the concentrator share one :class:`ManualClock`,
so block times, the ledger's ``past_interval`` rule and the concentrator's
schedule agree, and tests move time by hand.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestServer

from ledger_core.api.core import make_app
from ledger_core.client import NodeClient
from ledger_core.clock import ManualClock
from ledger_core.concentrator.ledger import HttpLedger, Ledger, NodeLedger
from ledger_core.concentrator.metering import MeterData
from ledger_core.concentrator.readings import ReadingStore
from ledger_core.node.host import Node
from ledger_core.node.storage import open_storage
from ledger_core.state.machine import StateMachine
from ledger_core.types.tx import TxType
from tests.state.chain import Chain, key

TOKEN = "c" * 64
TARIFFS = Path(__file__).resolve().parents[2] / "docs" / "tariffs"
TOU = TARIFFS / "example-residential-tou.toml"
BLOCK = TARIFFS / "example-block-1c.toml"


def mx(year: int, month: int, day: int, hour: int, minute: int = 0, second: int = 0) -> int:
    """Unix time of a local time in Mexico City (UTC-6 all year since 2022)."""
    return int(datetime(year, month, day, hour, minute, second, tzinfo=UTC).timestamp()) + 21600


@dataclass
class Live:
    """A running node with its API, and ways to reach it."""

    chain: Chain
    node: Node
    clock: ManualClock
    server: TestServer
    app: web.Application
    path: Path
    stores: list[ReadingStore]
    # The wire text of each report signed here, by (meter, interval start).
    sent: dict[tuple[str, int], str] = field(default_factory=dict)

    @property
    def client(self) -> NodeClient:
        return NodeClient(str(self.server.make_url("")).rstrip("/"), TOKEN)

    def http(self) -> HttpLedger:
        return HttpLedger(self.client)

    def local(self) -> NodeLedger:
        return NodeLedger(self.node, self.chain.iso)

    def tick(self, when: float) -> None:
        """Move the clock to ``when`` and commit an (empty) block stamped with it.

        Transactions are checked against the last block's time, so a meter's
        report is accepted once a block after the interval's end exists.
        """
        self.clock.set(when)
        self.node.produce_block()  # the proposer stamps it with its clock: ``when``

    async def commit(self, *txs: Any) -> list[Any]:
        """Submit signed transactions and wait until each is committed."""
        futures = []
        for tx in txs:
            submitted = self.node.submit(tx.wire())
            assert submitted.accepted, submitted
            futures.append(self.node.wait_for(tx.id))
        return [await asyncio.wait_for(f, 10) for f in futures]

    async def register_meters(self, count: int) -> list[Any]:
        """``count`` participants, each with a bound meter; returns the meter keys."""
        owners = [key(f"home-{i}") for i in range(count)]
        meters = [key(f"meter-{i}") for i in range(count)]
        operator = self.local()
        registered = await operator.submit(
            [(TxType.REGISTER, {"public_key": o.public_key.hex(), "role": "prosumer"})
             for o in owners]
        )  # fmt: skip
        bound = await operator.submit(
            [(TxType.BIND_METER, {"meter_public_key": m.public_key.hex(), "participant": o.address})
             for o, m in zip(owners, meters, strict=True)]
        )  # fmt: skip
        assert all(o.ok for o in registered + bound), registered + bound
        return meters

    def meter_data(self, ledger: Ledger, name: str = "readings.db") -> MeterData:
        """The concentrator's private store of readings, in the test's folder."""
        store = ReadingStore(self.path / name, self.chain.genesis.chain_id)
        self.stores.append(store)
        return MeterData(
            store,
            ledger,
            self.chain.genesis.chain_id,
            self.chain.genesis.params,
            clock=self.clock.now,
        )

    def shared(self, meter: Any, interval_start: int) -> dict[str, Any]:
        """What a meter sends the concentrator for a report signed here: the report's wire
        text and the opening of its commitment."""
        opening = self.chain.openings[meter.address, interval_start]
        return {
            "report": self.sent[meter.address, interval_start],
            "import_wh": opening.import_wh,
            "export_wh": opening.export_wh,
            "salt": opening.salt.hex(),
        }

    async def report(
        self,
        meter: Any,
        interval_start: int,
        import_wh: int,
        export_wh: int,
        *,
        share: MeterData | None = None,
    ) -> None:
        """A meter's interval report committed (its commitment), and its reading shared with
        the concentrator's ``share`` as the meter's outbox would."""
        tx = self.chain.report(meter, interval_start, import_wh, export_wh)
        self.sent[meter.address, interval_start] = tx.wire().decode()
        (stored,) = await self.commit(tx)
        assert stored.code == "ok", stored
        if share is not None:
            received = await share.receive(self.shared(meter, interval_start))
            assert received.status == "stored", received


@asynccontextmanager
async def live_node(tmp_path: Path, start: float, extra: Any = None) -> AsyncIterator[Live]:
    """A node at clock time ``start``; ``extra(app, live)`` may add routes before serving."""
    chain = Chain()
    clock = ManualClock(start)
    node = Node(
        chain.genesis,
        key("validator"),
        open_storage(tmp_path, chain.genesis),
        clock.now,
        app_factory=StateMachine.restore,
    )
    stop = asyncio.Event()
    runner = asyncio.create_task(node.run(stop, block_interval=0.005, empty_block_every=3600))
    app = make_app(node, TOKEN, chain.iso)
    server = TestServer(app, host="127.0.0.1")
    live = Live(chain, node, clock, server, app, tmp_path, [])
    if extra is not None:
        extra(app, live)
    await server.start_server()
    try:
        yield live
    finally:
        await server.close()
        stop.set()
        node._wake.set()
        await asyncio.wait_for(runner, 5)
        node.close()
        for store in live.stores:
            store.close()
