"""Membership: operators register participants, revoke them and bind their meters.

Operators come from genesis; every other account is registered by an operator
(``register``), may be revoked (``revoke``), and a participant's meter gets an
account of its own, bound to its owner (``bind_meter``), whose key signs the
meter's interval reports.
"""

from __future__ import annotations

from typing import Final

from ledger_core.state import keys
from ledger_core.state.kernel import (
    OPERATOR,
    Account,
    Chain,
    Handler,
    Overlay,
    Rejected,
    active_account,
    require_operator,
    str_of,
)
from ledger_core.types.abci import BlockContext, Event
from ledger_core.types.crypto import address_of
from ledger_core.types.tx import Role, Tx, TxType


def _register(
    chain: Chain, state: Overlay, tx: Tx, account: Account, ctx: BlockContext
) -> list[Event]:
    require_operator(account)
    public_key = str_of(tx.body, "public_key")
    address = address_of(bytes.fromhex(public_key))
    if state.get(keys.account(address)) is not None:
        raise Rejected("already_registered", f"{address} is already registered")
    role = str_of(tx.body, "role")
    state.put(
        keys.account(address),
        {"public_key": public_key, "role": role, "status": "active", "since": ctx.height},
    )
    state.put(keys.balance(address), 0)
    return [{"type": "participant_registered", "address": address, "role": role}]


def _revoke(
    chain: Chain, state: Overlay, tx: Tx, account: Account, ctx: BlockContext
) -> list[Event]:
    require_operator(account)
    address = str_of(tx.body, "address")
    target = active_account(state, address, "participant")
    if target.get("role") == OPERATOR:
        raise Rejected("not_permitted", "operators are set by genesis")
    state.put(keys.account(address), {**target, "status": "revoked", "revoked": ctx.height})
    return [{"type": "participant_revoked", "address": address}]


def _bind_meter(
    chain: Chain, state: Overlay, tx: Tx, account: Account, ctx: BlockContext
) -> list[Event]:
    require_operator(account)
    owner = str_of(tx.body, "participant")
    owner_account = active_account(state, owner, "participant")
    if owner_account.get("role") in (Role.METER, OPERATOR):
        raise Rejected("not_permitted", "a meter is bound to a participant")
    public_key = str_of(tx.body, "meter_public_key")
    meter = address_of(bytes.fromhex(public_key))
    existing = state.get(keys.account(meter))
    if existing is not None:
        raise Rejected("already_registered", f"meter {meter} is already registered")
    state.put(
        keys.account(meter),
        {
            "public_key": public_key,
            "role": str(Role.METER),
            "owner": owner,
            "status": "active",
            "since": ctx.height,
        },
    )
    return [{"type": "meter_bound", "meter": meter, "participant": owner}]


HANDLERS: Final[dict[TxType, Handler]] = {
    TxType.REGISTER: _register,
    TxType.REVOKE: _revoke,
    TxType.BIND_METER: _bind_meter,
}
