"""Transactiva's ledger node.

The node holds a copy of the neighbourhood's permissioned ledger: identities and
transactions, a deterministic state machine (wallets, contracts, interval reports,
signals, market settlement), storage, consensus, peer-to-peer networking, the
HTTP/WebSocket API, meter readers and the concentrator role.
"""

from ledger_core._version import __version__

__all__ = ["__version__"]
