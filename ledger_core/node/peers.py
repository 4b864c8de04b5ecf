"""The P2P network a node's home describes (``config.json`` and ``genesis.json``)."""

from __future__ import annotations

from ledger_core.node.home import Config, Home
from ledger_core.p2p.limits import Limits
from ledger_core.p2p.network import Network
from ledger_core.types.genesis import Genesis


def network_from_home(
    home: Home, genesis: Genesis, config: Config, limits: Limits | None = None
) -> Network | None:
    """The node's :class:`Network`, not started; None when the config has no ``p2p_port``."""
    if config.p2p_port is None:
        return None
    return Network(
        home.node_key(config),
        genesis.chain_id,
        genesis.hash,
        config.p2p_host,
        config.p2p_port,
        list(config.seeds),
        list(config.persistent_peers),
        limits,
        config.max_peers,
        allow=config.allow_peers,
        pex=config.pex,
    )
