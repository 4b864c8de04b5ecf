"""Run a node from its home: block production, API server, web interface and P2P network,
until asked to stop.

Two ways to run, chosen from ``genesis.json`` and ``config.json``:

* **One validator, no P2P** (``transactiva init``; the default): a
  :class:`~ledger_core.node.Node` runs each height's round locally
  (:meth:`Node.run`) — no timers, no peers.
* **On a network** (a ``p2p_port`` in the config): a
  :class:`~ledger_core.consensus.node.ConsensusNode` connected to the node's
  :class:`~ledger_core.p2p.Network` on the ``consensus``, ``tx`` and ``blocks``
  channels. It votes with ``keys/validator.key`` while that key is in the
  validator set, and otherwise follows: it applies blocks whose commits carry
  more than two thirds of the power in force. A node whose ``role`` is
  ``observer`` never votes (its identity for consensus is its node key). The
  round timeouts and pacing come from the config's ``consensus`` section,
  with ``block_interval`` and ``empty_block_every`` as the defaults of
  ``timeout_commit_ms`` and ``empty_block_every_ms``.

More than one validator, or the observer role, without a ``p2p_port`` cannot
work and is refused (:func:`refuse_unsupported`).

``TRANSACTIVA_CRASH_AT`` (tests only; see :func:`crash_hook_from_env`) makes the
node kill itself with SIGKILL at a chosen point of signing, to test recovery
from a crash between a signature and its write-ahead-log fsync.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sqlite3
from collections.abc import Callable, Mapping
from contextlib import nullcontext
from pathlib import Path
from typing import Any, Final

from aiohttp import web

from ledger_core.api.core import make_app
from ledger_core.node.files import private_dir
from ledger_core.node.home import Config, Home, HomeError
from ledger_core.node.host import Node
from ledger_core.node.local import ActionLog, LocalEvents
from ledger_core.node.memory import collection_paused, tune_gc
from ledger_core.node.networked import ConsensusNode, connect
from ledger_core.node.peers import network_from_home
from ledger_core.node.storage import open_storage
from ledger_core.p2p import Misbehaviour, Network
from ledger_core.roles import Roles
from ledger_core.state.machine import StateMachine
from ledger_core.types.crypto import SigningKey
from ledger_core.types.genesis import Genesis
from ledger_core.web import WebContext, web_feature

LOG = logging.getLogger(__name__)
CRASH_ENV: Final = "TRANSACTIVA_CRASH_AT"
CRASH_POINTS: Final = ("signed", "wal_synced")


async def serve(
    path: Path,
    stop: asyncio.Event,
    ready: asyncio.Event | None = None,
    *,
    node_class: type[ConsensusNode] = ConsensusNode,
    tune_memory: bool = False,
) -> None:
    """Open the node in ``path``, serve its API and take part in the chain until ``stop``
    is set. ``node_class`` builds the networked node (a test harness may pass a subclass);
    ``tune_memory`` tunes the process's garbage collector once the state is loaded (the
    ``transactiva node`` process; not a test's, which it would change for every test)."""
    home = Home(path)
    lock = home.lock()  # before anything is opened: one node per home
    try:
        await _serve(home, stop, ready, node_class, tune_memory=tune_memory)
    finally:
        lock.release()


async def _serve(
    home: Home,
    stop: asyncio.Event,
    ready: asyncio.Event | None,
    node_class: type[ConsensusNode],
    *,
    tune_memory: bool,
) -> None:
    genesis = home.genesis()
    config = home.config()
    refuse_unsupported(genesis, config)
    # Secrets others can read are refused; the node's other files become 0600, folders 0700.
    home.secure()
    private_dir(home.path / "consensus")
    network = network_from_home(home, genesis, config)
    with collection_paused() if tune_memory else nullcontext():
        node = build_node(
            home, genesis, config, networked=network is not None, node_class=node_class
        )
    app, services, action_log = _application(home, config, node, network)
    if tune_memory:
        tune_gc()
    # Request lines up to 16 KiB: GET /balances with its 200 addresses fits.
    runner = web.AppRunner(app, access_log=None, max_line_size=16384)
    await runner.setup()
    site = web.TCPSite(runner, config.api_host, config.api_port)
    outbound = None
    try:
        await site.start()
        if network is not None:
            assert isinstance(node, ConsensusNode)
            outbound = connect(node, network, Misbehaviour)
            networked = node

            async def greet(peer_id: str) -> None:
                networked.peer_connected(peer_id)

            network.on_connect(greet)
            await network.start()
        LOG.info(
            "node %s of chain %s at height %d (%s); API on http://%s:%d/api/v1",
            node.key.address,
            genesis.chain_id,
            node.height,
            _describe(node, network, config),
            config.api_host,
            config.api_port,
        )
        host = "127.0.0.1" if config.api_host in ("0.0.0.0", "::", "") else config.api_host  # noqa: S104
        await services.start(f"http://{host}:{config.api_port}", home.token())
        if ready is not None:
            ready.set()
        if isinstance(node, ConsensusNode):
            await node.run(stop)
        else:
            await node.run(stop, config.block_interval, config.empty_block_every)
    finally:
        await services.stop()
        if outbound is not None:
            await outbound.close()
        if network is not None:
            await network.stop()
        await runner.cleanup()
        action_log.close()
        node.close()
        LOG.info("node stopped at height %d", node.height)


def _application(
    home: Home, config: Config, node: Node, network: Network | None
) -> tuple[web.Application, Roles, ActionLog]:
    """The API, the roles beside the ledger and the web interface, for ``node``."""
    local_events = LocalEvents()
    try:
        action_log = ActionLog(home.path / "local.db")
    except sqlite3.DatabaseError as err:
        node.close()
        raise HomeError(
            f"{home.path / 'local.db'}: not a readable action log ({err}); move it (with its "
            "-wal and -shm files) aside and start again: the node begins a new log"
        ) from None
    try:
        services = Roles(
            home, config, node, local_events=local_events, action_log=action_log, network=network
        )
    except BaseException:
        action_log.close()
        node.close()
        raise
    web_context = WebContext(
        ingress_proxy=config.ingress_proxy,
        meter_address=services.meter.key.address if services.meter is not None else None,
        meter=services.meter,
        concentrator=services.concentrator is not None,
        execute_contracts=config.execute_contracts,
        network=network,
    )
    app = make_app(
        node,
        home.token(),
        home.participant_key(),
        local_events=local_events,
        action_log=action_log,
        trusted_proxy=config.ingress_proxy,
        peers=None if network is None else _peer_list(network),
        features=[*services.features, web_feature(web_context)],
    )
    return app, services, action_log


def build_node(
    home: Home,
    genesis: Genesis,
    config: Config,
    *,
    networked: bool,
    node_class: type[ConsensusNode] = ConsensusNode,
) -> Node:
    """The node a home runs: alone, or (``networked``) a consensus node; with the test
    crash hook when ``TRANSACTIVA_CRASH_AT`` is set."""
    crash_hook = crash_hook_from_env(os.environ)
    node: Node
    if not networked:
        node = Node(genesis, home.validator_key(), open_storage(home.path, genesis),
                    clock=config.clock(), crash_hook=crash_hook,
                    app_factory=StateMachine.restore)  # fmt: skip
    else:
        node = node_class(
            genesis,
            consensus_key(home, config),
            open_storage(home.path, genesis),
            clock=config.clock(),
            home=home.path,
            timeouts=config.timeouts(),
            crash_hook=crash_hook,
            config=config.node_config(),
            app_factory=StateMachine.restore,
        )
    if crash_hook is not None:
        crash_hook.node = node
        LOG.warning("%s is set: this node kills itself at a signing point (tests only)", CRASH_ENV)
    return node


def _describe(node: Node, network: Network | None, config: Config) -> str:
    if network is None:
        return "the only validator"
    voting = node.app.validator_set().get(node.key.address) is not None
    what = "a validator" if voting else f"following ({config.role})"
    return f"{what} of {len(node.app.validator_set())} on the P2P network"


def _peer_list(network: Network) -> Callable[[], list[dict[str, Any]]]:
    def peers() -> list[dict[str, Any]]:
        return [
            {
                "id": peer.id,
                "address": peer.address,
                "direction": peer.direction,
                "rtt_ms": None if peer.rtt is None else round(peer.rtt * 1000, 1),
            }
            for peer in sorted(network.peers(), key=lambda p: p.id)
        ]

    return peers


def consensus_key(home: Home, config: Config) -> SigningKey:
    """The key a networked node takes part with: the validator key, or for an observer
    (or a home without one) the node key, which is in no validator set and never signs."""
    if config.role == "observer" or not home.validator_key_file.exists():
        return home.node_key(config)
    return home.validator_key()


def refuse_unsupported(genesis: Genesis, config: Config) -> None:
    """HomeError for setups that cannot work: several validators, or an observer, without
    a P2P network to reach the others."""
    if config.p2p_port is not None:
        return
    if config.role == "observer":
        raise HomeError(
            "this node is an observer: it follows the chain from its peers, so its "
            "config.json needs a p2p_port and peers (see docs/network.md)"
        )
    if len(genesis.validators) > 1:
        raise HomeError(
            f"the genesis has {len(genesis.validators)} validators: they agree on blocks over "
            "the P2P network, so config.json needs a p2p_port and peers (see docs/network.md)"
        )


class CrashAt:
    """A crash hook for tests: SIGKILL this process the first time the node reaches
    ``point`` at a height of at least ``height`` (``node`` is set once it is built)."""

    def __init__(self, point: str, height: int) -> None:
        self.point = point
        self.height = height
        self.node: Node | None = None

    def __call__(self, reached: str) -> None:
        if reached != self.point:
            return
        if self.node is not None and self.node.engine.height < self.height:
            return
        LOG.warning("%s: killing this process at %r", CRASH_ENV, reached)
        logging.shutdown()
        os.kill(os.getpid(), signal.SIGKILL)


def crash_hook_from_env(environ: Mapping[str, str]) -> CrashAt | None:
    """For tests only: ``TRANSACTIVA_CRASH_AT=POINT[@HEIGHT]`` makes the node SIGKILL itself
    the first time it reaches ``POINT`` at height ``HEIGHT`` or above (default: any).

    Points: ``signed`` — the private validator has stored a signature, and the signed
    vote or proposal is not yet in the write-ahead log (the node's next step logs and
    fsyncs it); ``wal_synced`` — the message is fsynced, not yet sent. None when the
    variable is not set; HomeError for a value that names no point.
    """
    raw = environ.get(CRASH_ENV, "").strip()
    if not raw:
        return None
    point, sep, at = raw.partition("@")
    if point not in CRASH_POINTS or (sep and not at.isdigit()):
        raise HomeError(
            f"{CRASH_ENV}={raw!r}: expected POINT[@HEIGHT] with POINT one of "
            f"{', '.join(CRASH_POINTS)}"
        )
    return CrashAt(point, int(at) if at else 0)


def run_forever(path: Path) -> int:
    """``transactiva node``: serve until SIGINT or SIGTERM; exit status 0.

    Whatever the process creates is its owner's alone (umask 077): SQLite's
    journals, the meter's store, logs.
    """
    os.umask(0o077)

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await serve(path, stop, tune_memory=True)

    asyncio.run(main())
    return 0
