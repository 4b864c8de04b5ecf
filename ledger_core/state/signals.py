"""Signals from the operators: interval prices and OpenADR-style demand-response events.

The ISO or supplier publishes each interval's prices before or during it
(``price_signal``); the ISO or DSO issues, modifies (higher
``modification_number``) and cancels demand-response events (``dr_event``).
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
    int_of,
    require_operator,
    str_of,
)
from ledger_core.state.market import books
from ledger_core.types.abci import BlockContext, Event
from ledger_core.types.tx import Tx, TxType


def _price_signal(
    chain: Chain, state: Overlay, tx: Tx, account: Account, ctx: BlockContext
) -> list[Event]:
    require_operator(account, "ISO", "SUPPLIER")
    start = int_of(tx.body, "interval_start")
    interval = chain.genesis.params.interval_seconds
    if start % interval:
        raise Rejected("misaligned_interval", f"interval_start must be a multiple of {interval} s")
    if start + interval <= ctx.time:
        raise Rejected("past_interval", "prices are published before or during their interval")
    record = {name: tx.body[name] for name in ("import_price", "export_price", "network_fee")}
    record["height"] = ctx.height
    state.put(keys.price(start), record)
    books.note_price(state, start)
    return [{"type": "price_signal", "interval_start": start, **record}]


def _dr_event(
    chain: Chain, state: Overlay, tx: Tx, account: Account, ctx: BlockContext
) -> list[Event]:
    require_operator(account, "ISO", "DSO")
    event_id = str_of(tx.body, "event_id")
    key = keys.dr_event(event_id)
    previous = state.get(key)
    number = int_of(tx.body, "modification_number")
    if isinstance(previous, dict):
        last = previous["modification_number"]
        assert isinstance(last, int)
        if number == 0:
            raise Rejected(
                "event_exists",
                f"event {event_id} was already issued (block {previous['height']}); a new "
                f"event needs an id of its own, and a change of this one modification_number "
                f"{last + 1}",
            )
        if number <= last:
            raise Rejected(
                "stale_modification",
                f"event {event_id} is at modification {last}: every change, cancelling "
                f"included, carries a higher number, normally {last + 1}, and this one "
                f"carries {number} (the event changed after it was read, or this change was "
                "already sent)",
            )
        if previous.get("cancelled"):
            raise Rejected("cancelled_event", f"event {event_id} is cancelled: it cannot change")
    targets = tx.body["targets"]
    assert isinstance(targets, list)
    for target in targets:
        active_account(state, str(target), "target")
    record = dict(tx.body)
    record["height"] = ctx.height
    record["issuer"] = tx.signer
    state.put(key, record)
    return [{"type": "dr_event", **record}]


HANDLERS: Final[dict[TxType, Handler]] = {
    TxType.PRICE_SIGNAL: _price_signal,
    TxType.DR_EVENT: _dr_event,
}
