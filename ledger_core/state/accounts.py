"""Membership: operators register participants, name them, revoke them and bind their meters.

Operators come from genesis; every other account is registered by an operator
(``register``), may be revoked (``revoke``), and a participant's meter gets an
account of its own, bound to its owner (``bind_meter``), whose key signs the
meter's interval reports.

Names: a participant may have a display name, unique on the chain
(``name/<name>`` holds its address, and the account record its name). The
operator gives it at registration or later (``set_name``), which frees the
old one; a revoked participant keeps its name, so that nobody else is paid
or named in a contract under it, until an operator changes it. Names arrive
normalised (lower-case ASCII: the transaction's decoder refuses others).
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
from ledger_core.types.codec import Value
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
    record: dict[str, Value] = {
        "public_key": public_key,
        "role": role,
        "status": "active",
        "since": ctx.height,
    }
    event: Event = {"type": "participant_registered", "address": address, "role": role}
    if "name" in tx.body:
        name = str_of(tx.body, "name")
        _claim(state, name, address)
        record["name"] = name
        event["name"] = name
    state.put(keys.account(address), record)
    state.put(keys.balance(address), 0)
    return [event]


def _claim(state: Overlay, name: str, address: str) -> None:
    holder = state.get(keys.name(name))
    if holder is not None and holder != address:
        raise Rejected("name_taken", f"the name {name!r} belongs to {holder}")
    state.put(keys.name(name), address)


def _set_name(
    chain: Chain, state: Overlay, tx: Tx, account: Account, ctx: BlockContext
) -> list[Event]:
    require_operator(account)
    address = str_of(tx.body, "address")
    target = state.get(keys.account(address))
    if not isinstance(target, dict):
        raise Rejected("unknown_account", f"participant {address} is not registered")
    if target.get("role") in (Role.METER, OPERATOR):
        raise Rejected("not_permitted", "only participants have names")
    name = str_of(tx.body, "name")
    old = target.get("name")
    _claim(state, name, address)
    if isinstance(old, str) and old != name:
        state.put(keys.name(old), None)
    state.put(keys.account(address), {**target, "name": name})
    event: Event = {"type": "participant_named", "address": address, "name": name}
    if isinstance(old, str):
        event["previous"] = old
    return [event]


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
    TxType.SET_NAME: _set_name,
}
