"""Shared pieces of the meter tests: a clock moved by hand, example bodies, servers."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from aiohttp import web

from ledger_core.demo.chain import free_port  # noqa: F401 - the meter tests take it from here
from ledger_core.node.host import Node
from ledger_core.node.storage import open_storage
from ledger_core.state.machine import StateMachine
from ledger_core.types.crypto import SigningKey
from ledger_core.types.tx import TxType
from tests.state.chain import Chain, key

# 2026-03-10 12:00:00 in Mexico City (UTC-6), as in tests/state/chain.py.
NOON = 1773165600.0


class ManualClock:
    """A clock that moves only when told; ``sleep`` advances it and yields once."""

    def __init__(self, now: float = NOON) -> None:
        self.time = now

    def now(self) -> float:
        return self.time

    def __call__(self) -> float:  # the node's clock is a plain function
        return self.time

    async def sleep(self, seconds: float) -> None:
        self.time += max(0.0, seconds)
        await asyncio.sleep(0)


@asynccontextmanager
async def serve(app: web.Application, port: int = 0) -> AsyncIterator[str]:
    """Serve ``app`` on loopback (any free port by default); its base URL."""
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", port)
    await site.start()
    try:
        yield f"http://127.0.0.1:{runner.addresses[0][1]}"
    finally:
        await runner.cleanup()


# The body of smartpi.md (current firmware's livedata), whole.
LIVEDATA_BODY = b"""{"serial":"10000000a1b2c3d4","name":"SmartPi 10000000a1b2c3d4","lat":52.3192358,
"lng":9.7189549,"time":"2026-07-14 12:00:01","softwareversion":"","ipaddress":"192.168.1.50",
"datasets":[{"time":"2026-07-14 12:00:01","phases":[
{"phase":1,"name":"phase 1","values":[
{"type":"current","unity":"A","info":"","data":5.2341},
{"type":"voltage","unity":"V","info":"","data":231.21},
{"type":"power","unity":"W","info":"","data":-1180.53},
{"type":"cosphi","unity":"","info":"","data":-0.9812},
{"type":"frequency","unity":"Hz","info":"","data":50.012},
{"type":"energyconsumed","unity":"Wh","info":"","data":0},
{"type":"energyproduced","unity":"Wh","info":"","data":0.327925},
{"type":"energybalanced","unity":"Wh","info":"","data":-0.07333333}]},
{"phase":2,"name":"phase 2","values":[
{"type":"energybalanced","unity":"Wh","info":"","data":0.1},
{"type":"power","unity":"W","info":"","data":412.5},
{"type":"voltage","unity":"V","info":"","data":229.9},
{"type":"current","unity":"A","info":"","data":1.9},
{"type":"cosphi","unity":"","info":"","data":0.93},
{"type":"frequency","unity":"Hz","info":"","data":50.011}]},
{"phase":3,"name":"phase 3","values":[
{"type":"voltage","unity":"V","info":"","data":230.4},
{"type":"current","unity":"A","info":"","data":0.8},
{"type":"power","unity":"W","info":"","data":150.25},
{"type":"cosphi","unity":"","info":"","data":0.81},
{"type":"frequency","unity":"Hz","info":"","data":0}]},
{"phase":4,"name":"phase 4","values":[
{"type":"current","unity":"A","info":"","data":0.4512}]}]}]}"""

# A real device's answer to the old /api/all/power/now (smartpi.md, 2021).
OLD_POWER_BODY = (
    b'{"serial":"smartpi170512345","name":"House","lat":52.3667,"lng":9.7167,'
    b'"time":"2021-04-28 16:15:57","softwareversion":"","ipaddress":"192.168.1.3",'
    b'"datasets":[{"time":"2021-04-28 16:15:57","phases":[{"phase":1,"name":"phase 1",'
    b'"values":[{"type":"power","unity":"W","info":"","data":-908.6961}]},{"phase":2,'
    b'"name":"phase 2","values":[{"type":"power","unity":"W","info":"","data":-640.85736}]},'
    b'{"phase":3,"name":"phase 3","values":[{"type":"power","unity":"W","info":"",'
    b'"data":1494.473}]},{"phase":4,"name":"phase 4","values":[{"type":"power","unity":"W",'
    b'"info":"","data":0}]}]}]}'
)


TOKEN = "t" * 64


class Ledger:
    """A real node with a participant ``casa`` and, if ``bind``, its meter bound."""

    def __init__(self, home: Path, clock: ManualClock, *, bind: bool = True) -> None:
        self.chain = Chain()
        self.clock = clock
        home.mkdir(parents=True, exist_ok=True)
        self.node = Node(
            self.chain.genesis,
            key("validator"),
            open_storage(home, self.chain.genesis),
            clock,
            app_factory=StateMachine.restore,
        )
        self.meter: SigningKey = key("meter-casa")
        self.casa = key("casa")
        self.commit(
            self.chain.tx(
                self.chain.iso,
                TxType.REGISTER,
                public_key=self.casa.public_key.hex(),
                role="prosumer",
            )
        )
        if bind:
            self.bind()

    def bind(self) -> None:
        self.commit(
            self.chain.tx(
                self.chain.iso,
                TxType.BIND_METER,
                meter_public_key=self.meter.public_key.hex(),
                participant=self.casa.address,
            )
        )

    def commit(self, tx: Any) -> None:
        result = self.node.submit(tx.wire())
        assert result.accepted, result
        self.node.produce_block()

    def reports(self) -> dict[int, dict[str, Any]]:
        """The meter's reports on the ledger by interval start."""
        prefix = f"report/{self.meter.address}/"
        return {
            int(k[len(prefix) :]): v  # type: ignore[misc]
            for k, v in self.node.app.state.items()
            if k.startswith(prefix)
        }

    def close(self) -> None:
        self.node.close()
