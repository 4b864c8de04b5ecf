"""Peer-to-peer networking of ledger nodes over aiohttp WebSockets.

- :mod:`~ledger_core.p2p.wire`: addresses, handshake messages, envelopes and
  peer-exchange answers, with strict bounded decoders;
- :mod:`~ledger_core.p2p.handshake`: the authenticated handshake;
- :mod:`~ledger_core.p2p.limits`: sizes, rates and timers, token buckets, the gossip LRU;
- :mod:`~ledger_core.p2p.network`: :class:`Network`, a node's peers, gossip,
  requests and discovery;
- :mod:`~ledger_core.p2p.faultproxy`: a WebSocket proxy that drops, delays,
  duplicates, reorders and partitions, for fault tests (imported on its own).

``docs/network.md`` describes the protocol.
"""

from ledger_core.p2p.handshake import HandshakeError
from ledger_core.p2p.limits import Limits
from ledger_core.p2p.network import (
    AddressInfo,
    DialError,
    Disconnect,
    Misbehaviour,
    Network,
    P2PError,
    PeerInfo,
    PeerUnavailableError,
    RemoteError,
    RequestTimeoutError,
)
from ledger_core.p2p.wire import PeerAddress, WireError, parse_address

__all__ = [
    "AddressInfo",
    "DialError",
    "Disconnect",
    "HandshakeError",
    "Limits",
    "Misbehaviour",
    "Network",
    "P2PError",
    "PeerAddress",
    "PeerInfo",
    "PeerUnavailableError",
    "RemoteError",
    "RequestTimeoutError",
    "WireError",
    "parse_address",
]
