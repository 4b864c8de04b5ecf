"""Run a node from its home: block loop, API server, web interface and P2P network, until
asked to stop.

The P2P network starts when ``config.json`` has a ``p2p_port``; until the BFT
consensus engine is wired in, a node refuses genesis files with more than one
validator and the observer role, saying so.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from pathlib import Path

from aiohttp import web

from ledger_core.api import make_app, require_token
from ledger_core.genesis import Genesis
from ledger_core.home import Config, Home, HomeError
from ledger_core.local import ActionLog, LocalEvents
from ledger_core.node import Node, open_storage
from ledger_core.p2p.config import network_from_home
from ledger_core.services import NodeServices
from ledger_core.web import WebContext, add_web_routes

LOG = logging.getLogger(__name__)


async def serve(path: Path, stop: asyncio.Event, ready: asyncio.Event | None = None) -> None:
    """Open the node in ``path``, serve its API and produce blocks until ``stop`` is set."""
    home = Home(path)
    genesis = home.genesis()
    config = home.config()
    refuse_unsupported(genesis, config)
    network = network_from_home(home, genesis, config)
    node = Node(genesis, home.validator_key(), open_storage(path, genesis), clock=config.clock())
    local_events = LocalEvents()
    action_log = ActionLog(path / "local.db")
    app = make_app(
        node,
        home.token(),
        home.participant_key(),
        local_events=local_events,
        action_log=action_log,
        trusted_proxy=config.ingress_proxy,
    )
    try:
        services = NodeServices(
            home,
            config,
            node,
            app,
            local_events=local_events,
            action_log=action_log,
            require_token=require_token,
        )
    except BaseException:
        action_log.close()
        node.close()
        raise
    add_web_routes(
        app,
        WebContext(
            ingress_proxy=config.ingress_proxy,
            meter_address=services.meter.key.address if services.meter is not None else None,
            concentrator=services.concentrator is not None,
            execute_contracts=config.execute_contracts,
            network=network,
        ),
    )
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, config.api_host, config.api_port)
    try:
        await site.start()
        if network is not None:
            await network.start()
        LOG.info(
            "node %s of chain %s at height %d; API on http://%s:%d/api/v1",
            node.key.address,
            genesis.chain_id,
            node.height,
            config.api_host,
            config.api_port,
        )
        host = "127.0.0.1" if config.api_host in ("0.0.0.0", "::", "") else config.api_host  # noqa: S104
        await services.start(f"http://{host}:{config.api_port}", home.token())
        if ready is not None:
            ready.set()
        await node.run(stop, config.block_interval, config.empty_block_every)
    finally:
        await services.stop()
        if network is not None:
            await network.stop()
        await runner.cleanup()
        action_log.close()
        node.close()


def refuse_unsupported(genesis: Genesis, config: Config) -> None:
    """HomeError for the setups this node cannot run yet."""
    if config.role == "observer":
        raise HomeError(
            "this node is an observer: following the chain from peers needs the consensus "
            "engine and block sync, which 'transactiva node' does not run yet"
        )
    if len(genesis.validators) > 1:
        raise HomeError(
            f"the genesis has {len(genesis.validators)} validators: agreeing on blocks needs "
            "the BFT consensus engine, which 'transactiva node' does not run yet; "
            "a one-validator network runs (transactiva testnet init --validators 1)"
        )


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
