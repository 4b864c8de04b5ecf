"""Orders: ``order`` places one (holding a buy order's cost), ``order_cancel`` withdraws it.

Both close at the interval's gate (``T - gate_closure_seconds``); see the
package's docstring.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

from ledger_core.state import keys
from ledger_core.state.kernel import (
    OPERATOR,
    Account,
    Chain,
    Handler,
    Overlay,
    Rejected,
    int_at,
    int_of,
)
from ledger_core.state.market.auction import cost
from ledger_core.state.market.books import (
    MAX_AHEAD_SECONDS,
    MAX_ORDERS,
    hold_change,
    ids_of,
    interval_record,
    move_wallet,
    record_at,
)
from ledger_core.types.abci import BlockContext, Event
from ledger_core.types.codec import Value
from ledger_core.types.tx import Role, Side, Tx, TxType


def _require_trader(state: Overlay, address: str, account: Mapping[str, Value]) -> None:
    role = account.get("role")
    if role == Role.METER:
        raise Rejected("not_permitted", "a meter may only send interval reports")
    if role == OPERATOR:
        raise Rejected(
            "not_permitted",
            "operators do not place orders; the supplier is every interval's backstop",
        )
    service = state.get(keys.service(address))
    if isinstance(service, dict) and service.get("connected") is False:
        raise Rejected("service_cut", "the participant's service is cut")


def _require_open(chain: Chain, start: int, ctx: BlockContext) -> None:
    params = chain.genesis.params
    if start % params.interval_seconds:
        raise Rejected(
            "misaligned_interval",
            f"interval_start must be a multiple of {params.interval_seconds} s",
        )
    if ctx.time >= start - params.gate_closure_seconds:
        raise Rejected(
            "gate_closed",
            f"orders for this interval closed at {start - params.gate_closure_seconds}",
        )
    if start > ctx.time + MAX_AHEAD_SECONDS:
        raise Rejected("too_far_ahead", f"orders are accepted up to {MAX_AHEAD_SECONDS} s ahead")


def place_order(
    chain: Chain, state: Overlay, tx: Tx, account: Account, ctx: BlockContext
) -> list[Event]:
    """The ``order`` transaction."""
    _require_trader(state, tx.signer, account)
    start = int_of(tx.body, "interval_start")
    _require_open(chain, start, ctx)
    side = Side(str(tx.body["side"]))
    energy, limit = int_of(tx.body, "energy_wh"), int_of(tx.body, "limit_price")
    position_key = keys.position(tx.signer, start)
    existing = state.get(position_key)
    new_trader = not isinstance(existing, dict)
    position: dict[str, Value] = (
        {"side": str(side), "orders": [], "trades": [], "hold": 0}
        if not isinstance(existing, dict)
        else dict(existing)
    )
    orders = ids_of(position, "orders")
    if len(orders) >= MAX_ORDERS:
        raise Rejected(
            "too_many_orders", f"at most {MAX_ORDERS} orders per participant and interval"
        )
    if position["side"] != side:
        for other in orders:
            if record_at(state, keys.order(other))["status"] == "open":
                raise Rejected(
                    "opposite_side",
                    f"the participant has open {position['side']} orders for this interval",
                )
        position["side"] = str(side)
    events: list[Event] = []
    if int_at(state, keys.debt(tx.signer)):
        move_wallet(state, tx.signer, 0, 0, events)
        if int_at(state, keys.debt(tx.signer)):
            raise Rejected(
                "in_debt", f"the participant owes {int_at(state, keys.debt(tx.signer))} centavos"
            )
    hold = max(cost(energy, limit), 0) if side is Side.BUY else 0
    if hold:
        balance = int_at(state, keys.balance(tx.signer))
        if balance < hold:
            raise Rejected(
                "insufficient_funds", f"the order holds {hold} centavos; the balance is {balance}"
            )
        state.put(keys.balance(tx.signer), balance - hold)
        state.put(keys.held(tx.signer), int_at(state, keys.held(tx.signer)) + hold)
    record = interval_record(state, start, "open")
    sequence = int_of(record, "orders") + 1
    record["orders"] = sequence
    if new_trader:
        traders = int_of(record, "traders") + 1
        record["traders"] = traders
        state.put(keys.trader(start, traders), tx.signer)
    state.put(keys.interval(start), record)
    position["orders"] = [*orders, tx.id]
    state.put(position_key, position)
    order: dict[str, Value] = {
        "participant": tx.signer,
        "interval_start": start,
        "side": str(side),
        "energy_wh": energy,
        "limit_price": limit,
        "sequence": sequence,
        "status": "open",
        "hold": hold,
        "height": ctx.height,
    }
    if "ref" in tx.body:
        order["ref"] = tx.body["ref"]
    state.put(keys.order(tx.id), order)
    events.append(
        {
            "type": "order_placed",
            "order": tx.id,
            "participant": tx.signer,
            "interval_start": start,
            "side": str(side),
            "energy_wh": energy,
            "limit_price": limit,
            "sequence": sequence,
            "hold": hold,
        }
    )
    if hold:
        events.append(hold_change(tx.signer, -hold, "order_hold"))
    return events


def cancel_order(
    chain: Chain, state: Overlay, tx: Tx, account: Account, ctx: BlockContext
) -> list[Event]:
    """The ``order_cancel`` transaction: before the gate, by the order's participant."""
    order_id = str(tx.body["order_id"])
    found = state.get(keys.order(order_id))
    if not isinstance(found, dict):
        raise Rejected(
            "unknown_order", f"no order {order_id} (or its day has closed and it left the state)"
        )
    order = dict(found)
    if order["participant"] != tx.signer:
        raise Rejected("not_permitted", "only the participant who placed an order may cancel it")
    if order["status"] != "open":
        raise Rejected("not_open", f"the order is {order['status']}")
    start = int_of(order, "interval_start")
    if ctx.time >= start - chain.genesis.params.gate_closure_seconds:
        raise Rejected("gate_closed", "the interval's orders are closed")
    hold = int_of(order, "hold")
    if hold:
        state.put(keys.held(tx.signer), int_at(state, keys.held(tx.signer)) - hold)
        state.put(keys.balance(tx.signer), int_at(state, keys.balance(tx.signer)) + hold)
    state.put(keys.order(order_id), {**order, "status": "cancelled", "hold": 0})
    events: list[Event] = [
        {
            "type": "order_cancelled",
            "order": order_id,
            "participant": tx.signer,
            "interval_start": start,
            "released": hold,
        }
    ]
    if hold:
        events.append(hold_change(tx.signer, hold, "order_release"))
    return events


HANDLERS: Final[dict[TxType, Handler]] = {
    TxType.ORDER: place_order,
    TxType.ORDER_CANCEL: cancel_order,
}
