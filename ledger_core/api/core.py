"""The node's API application: the ledger's features, and the roles' when they run.

:func:`make_app` serves a node's chain, accounts, contracts, signals, proofs
of meter readings, raw state, local signing and market; given them, the home's local events and
action log; and whatever other features the caller adds (the meter,
analytics, the operator routes, the web interface).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from aiohttp import web

from ledger_core.api import accounts, contracts, market, proofs, signals, state
from ledger_core.api.chain import chain_feature
from ledger_core.api.local import SIGN, local_feature
from ledger_core.api.openapi import SPEC
from ledger_core.api.server import Feature, make_server
from ledger_core.node.host import Node
from ledger_core.node.local import ActionLog, LocalEvents
from ledger_core.types.crypto import SigningKey
from ledger_core.types.tx import MAX_TX_BYTES


def make_app(
    node: Node,
    token: str,
    local_key: SigningKey,
    *,
    local_events: LocalEvents | None = None,
    action_log: ActionLog | None = None,
    trusted_proxy: str | None = None,
    peers: Callable[[], list[dict[str, Any]]] | None = None,
    features: Sequence[Feature] = (),
) -> web.Application:
    """The aiohttp application serving ``node`` (and, given them, the home's local
    events and action log, the connected peers for the status, and ``features``).

    ``trusted_proxy`` is the address of Home Assistant's ingress proxy, whose
    forwarded requests need no token (see :func:`ledger_core.api.server.from_ingress`).
    """
    core = [
        chain_feature(peers),
        accounts.FEATURE,
        contracts.FEATURE,
        signals.FEATURE,
        proofs.FEATURE,
        state.FEATURE,
        SIGN,
        market.FEATURE,
    ]
    if local_events is not None and action_log is not None:
        core.append(local_feature(local_events, action_log))
    return make_server(
        node,
        token,
        local_key,
        SPEC,
        [*core, *features],
        trusted_proxy=trusted_proxy,
        client_max_size=MAX_TX_BYTES * 2,
    )
