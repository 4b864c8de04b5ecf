"""The P2P network a node's home describes (``config.json`` and ``genesis.json``)."""

from __future__ import annotations

import contextlib
import socket

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
        advertise=config.p2p_advertise,
    )


ANY_HOST = ("", "0.0.0.0", "::")  # noqa: S104 - names of "every interface", not a bind


def lan_address() -> str:
    """This machine's address on its local network (the source address of its default
    route), or 127.0.0.1 when it has none. Connecting a UDP socket sends nothing."""
    with contextlib.closing(socket.socket(socket.AF_INET, socket.SOCK_DGRAM)) as probe:
        try:
            probe.connect(("192.0.2.1", 9))  # TEST-NET-1: only the route is looked up
            address: str = probe.getsockname()[0]
        except OSError:
            return "127.0.0.1"
    return address


def advertised(config: Config, network: Network) -> str:
    """``host:port`` other nodes dial to reach this one: ``p2p_advertise``, else the
    listening host (this machine's LAN address when it listens on every interface)."""
    if config.p2p_advertise is not None:
        return config.p2p_advertise
    host = lan_address() if config.p2p_host in ANY_HOST else config.p2p_host
    return f"[{host}]:{network.listen_port}" if ":" in host else f"{host}:{network.listen_port}"
