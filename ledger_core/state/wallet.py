"""Wallets: deposits and withdrawals confirmed by the operator that holds the money, transfers.

Money is in centavos. A deposit is requested by a participant and credited when
the ISO or supplier confirms it; a withdrawal holds the amount until confirmed
(paid out) or cancelled. ``total/deposits`` and ``total/withdrawals`` keep the
conservation invariant checkable: ``sum(bal) + sum(held) - sum(debt) ==
deposits - withdrawals``.
"""

from __future__ import annotations

from typing import Final

from ledger_core.state import keys
from ledger_core.state.kernel import (
    Account,
    Chain,
    Handler,
    Overlay,
    Rejected,
    active_account,
    int_at,
    int_of,
    require_operator,
    require_participant,
    str_of,
)
from ledger_core.types.abci import BlockContext, Event
from ledger_core.types.codec import Value
from ledger_core.types.tx import Role, Tx, TxType


def _wallet_request(
    chain: Chain, state: Overlay, tx: Tx, account: Account, ctx: BlockContext
) -> list[Event]:
    require_participant(account)
    amount = int_of(tx.body, "amount")
    kind = "deposit" if tx.type is TxType.DEPOSIT_REQUEST else "withdrawal"
    if kind == "withdrawal":
        balance = int_at(state, keys.balance(tx.signer))
        if balance < amount:
            raise Rejected("insufficient_funds", f"balance {balance} is below {amount}")
        state.put(keys.balance(tx.signer), balance - amount)
        state.put(keys.held(tx.signer), int_at(state, keys.held(tx.signer)) + amount)
    state.put(
        keys.wallet_request(tx.id),
        {
            "kind": kind,
            "participant": tx.signer,
            "amount": amount,
            "reference": tx.body.get("reference", ""),
            "status": "pending",
            "height": ctx.height,
        },
    )
    return [{"type": f"{kind}_requested", "request": tx.id, "participant": tx.signer}]


def _pending_request(state: Overlay, request: str, kind: str | None = None) -> dict[str, Value]:
    record = state.get(keys.wallet_request(request))
    if not isinstance(record, dict):
        raise Rejected("unknown_request", f"no wallet request {request}")
    if kind is not None and record["kind"] != kind:
        raise Rejected("wrong_request", f"request {request} is a {record['kind']}")
    if record["status"] != "pending":
        raise Rejected("not_pending", f"request {request} is {record['status']}")
    return dict(record)


def _deposit_confirm(
    chain: Chain, state: Overlay, tx: Tx, account: Account, ctx: BlockContext
) -> list[Event]:
    require_operator(account, "ISO", "SUPPLIER")
    request = str_of(tx.body, "request")
    record = _pending_request(state, request, "deposit")
    participant, amount = str(record["participant"]), int_of(record, "amount")
    state.put(keys.balance(participant), int_at(state, keys.balance(participant)) + amount)
    state.put(keys.TOTAL_DEPOSITS, int_at(state, keys.TOTAL_DEPOSITS) + amount)
    state.put(
        keys.wallet_request(request),
        {**record, "status": "confirmed", "confirmed_height": ctx.height},
    )
    return [
        {"type": "wallet_change", "participant": participant, "delta": amount, "why": "deposit"}
    ]


def _withdraw_confirm(
    chain: Chain, state: Overlay, tx: Tx, account: Account, ctx: BlockContext
) -> list[Event]:
    require_operator(account, "ISO", "SUPPLIER")
    request = str_of(tx.body, "request")
    record = _pending_request(state, request, "withdrawal")
    participant, amount = str(record["participant"]), int_of(record, "amount")
    state.put(keys.held(participant), int_at(state, keys.held(participant)) - amount)
    state.put(keys.TOTAL_WITHDRAWALS, int_at(state, keys.TOTAL_WITHDRAWALS) + amount)
    state.put(
        keys.wallet_request(request),
        {**record, "status": "confirmed", "confirmed_height": ctx.height},
    )
    return [{"type": "withdrawal_paid", "participant": participant, "amount": amount}]


def _wallet_cancel(
    chain: Chain, state: Overlay, tx: Tx, account: Account, ctx: BlockContext
) -> list[Event]:
    request = str_of(tx.body, "request")
    record = _pending_request(state, request)
    participant, amount = str(record["participant"]), int_of(record, "amount")
    if tx.signer != participant:
        require_operator(account, "ISO", "SUPPLIER")
    if record["kind"] == "withdrawal":
        state.put(keys.held(participant), int_at(state, keys.held(participant)) - amount)
        state.put(keys.balance(participant), int_at(state, keys.balance(participant)) + amount)
    state.put(
        keys.wallet_request(request),
        {**record, "status": "cancelled", "cancelled_height": ctx.height},
    )
    return [{"type": "wallet_request_cancelled", "request": request}]


def _transfer(
    chain: Chain, state: Overlay, tx: Tx, account: Account, ctx: BlockContext
) -> list[Event]:
    require_participant(account)
    to = str_of(tx.body, "to")
    target = active_account(state, to, "recipient")
    if target.get("role") == Role.METER:
        raise Rejected("not_permitted", "meters hold no money")
    if to == tx.signer:
        raise Rejected("self_transfer", "a transfer needs another recipient")
    amount = int_of(tx.body, "amount")
    balance = int_at(state, keys.balance(tx.signer))
    if balance < amount:
        raise Rejected("insufficient_funds", f"balance {balance} is below {amount}")
    state.put(keys.balance(tx.signer), balance - amount)
    state.put(keys.balance(to), int_at(state, keys.balance(to)) + amount)
    return [
        {"type": "wallet_change", "participant": tx.signer, "delta": -amount, "why": "transfer"},
        {"type": "wallet_change", "participant": to, "delta": amount, "why": "transfer"},
    ]


HANDLERS: Final[dict[TxType, Handler]] = {
    TxType.DEPOSIT_REQUEST: _wallet_request,
    TxType.WITHDRAW_REQUEST: _wallet_request,
    TxType.DEPOSIT_CONFIRM: _deposit_confirm,
    TxType.WITHDRAW_CONFIRM: _withdraw_confirm,
    TxType.WALLET_CANCEL: _wallet_cancel,
    TxType.TRANSFER: _transfer,
}
