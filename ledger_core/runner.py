"""Run a node from its home: the block loop and the API server, until asked to stop."""

from __future__ import annotations

import asyncio
import logging
import signal
from pathlib import Path

from aiohttp import web

from ledger_core.api import make_app
from ledger_core.home import Home
from ledger_core.local import ActionLog, LocalEvents
from ledger_core.node import Node, open_storage

LOG = logging.getLogger(__name__)


async def serve(path: Path, stop: asyncio.Event, ready: asyncio.Event | None = None) -> None:
    """Open the node in ``path``, serve its API and produce blocks until ``stop`` is set."""
    home = Home(path)
    genesis = home.genesis()
    config = home.config()
    node = Node(genesis, home.validator_key(), open_storage(path, genesis), clock=config.clock())
    local_events = LocalEvents()
    action_log = ActionLog(path / "local.db")
    app = make_app(
        node,
        home.token(),
        home.participant_key(),
        local_events=local_events,
        action_log=action_log,
    )
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, config.api_host, config.api_port)
    try:
        await site.start()
        LOG.info(
            "node %s of chain %s at height %d; API on http://%s:%d/api/v1",
            node.key.address,
            genesis.chain_id,
            node.height,
            config.api_host,
            config.api_port,
        )
        if ready is not None:
            ready.set()
        await node.run(stop, config.block_interval, config.empty_block_every)
    finally:
        await runner.cleanup()
        action_log.close()
        node.close()


def run_forever(path: Path) -> int:
    """``transactiva node``: serve until SIGINT or SIGTERM; exit status 0."""

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await serve(path, stop)

    asyncio.run(main())
    return 0
