"""Clearing in ``end_block``, and the settlement of metered energy (docs/market.md).

``end_block`` clears every interval whose gate has passed. Once an interval is
due for settlement it is closed: without trades there is nothing to settle;
with trades it waits for the concentrator's ``delivery``
(:mod:`.metered`), which :func:`settle_delivery` turns into money. A day's
energy with the supplier is billed by :func:`settle_day`. See the package's
docstring for the timing and the state.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Final

from ledger_core.state import keys
from ledger_core.state.kernel import Chain, Overlay, int_at, int_of
from ledger_core.state.market.auction import Backstop, Order, Pricing, Trade, clear
from ledger_core.state.market.books import (
    backstop_at,
    hold_change,
    ids_of,
    move_wallet,
    record_at,
)
from ledger_core.state.market.settlement import Movement, Statement, settle_trades
from ledger_core.types.abci import BlockContext, Event
from ledger_core.types.codec import Value
from ledger_core.types.tx import Side

AWAITING_DELIVERY: Final = "awaiting_delivery"
"""The ``settlement`` of a cleared interval with trades, due and not yet delivered."""


def end_block(chain: Chain, state: Overlay, ctx: BlockContext) -> list[Event]:
    """Clear every interval whose gate has passed and close every interval that is due,
    in interval order."""
    queue = state.get(keys.MARKET_QUEUE)
    if not isinstance(queue, list) or not queue:
        return []
    params = chain.genesis.params
    events: list[Event] = []
    closed = 0
    for item in queue:
        assert isinstance(item, int)
        if item - params.gate_closure_seconds > ctx.time:
            break
        record = record_at(state, keys.interval(item))
        if record["status"] == "open":
            record = _clear_interval(chain, state, item, record, ctx, events=events)
        if item + params.interval_seconds + params.settlement_delay_seconds > ctx.time:
            continue
        _close_interval(chain, state, item, record, ctx, events=events)
        closed += 1
    if closed:
        state.put(keys.MARKET_QUEUE, queue[closed:])
    return events


def _traders(state: Overlay, start: int, record: Mapping[str, Value]) -> list[str]:
    return [str(state.get(keys.trader(start, n))) for n in range(1, int_of(record, "traders") + 1)]


def _clear_interval(
    chain: Chain,
    state: Overlay,
    start: int,
    record: dict[str, Value],
    ctx: BlockContext,
    *,
    events: list[Event],
) -> dict[str, Value]:
    """Run the auction of interval ``start``; the updated interval record."""
    prices = backstop_at(chain, state, start)
    orders: list[Order] = []
    records: dict[str, dict[str, Value]] = {}
    held: dict[str, int] = {}
    positions: dict[str, dict[str, Value]] = {}
    for trader in _traders(state, start, record):
        position = record_at(state, keys.position(trader, start))
        positions[trader] = position
        for order_id in ids_of(position, "orders"):
            order = record_at(state, keys.order(order_id))
            if order["status"] != "open":
                continue
            records[order_id] = order
            held[trader] = held.get(trader, 0) + int_of(order, "hold")
            orders.append(
                Order(
                    order_id,
                    trader,
                    Side(str(order["side"])),
                    int_of(order, "energy_wh"),
                    int_of(order, "limit_price"),
                    int_of(order, "sequence"),
                )
            )
    record = {**record, "cleared_height": ctx.height}
    if prices is None:
        for order_id, order in records.items():
            state.put(keys.order(order_id), {**order, "status": "unpriced", "hold": 0})
        for trader, amount in held.items():
            if amount:
                move_wallet(state, trader, 0, amount, events)
                events.append(hold_change(trader, amount, "order_release"))
        record["status"] = "unpriced"
        state.put(keys.interval(start), record)
        events.append(
            {
                "type": "interval_cleared",
                "interval_start": start,
                "status": "unpriced",
                "bids": sum(1 for o in orders if o.side is Side.BUY),
                "offers": sum(1 for o in orders if o.side is Side.SELL),
            }
        )
        return record

    result = clear(orders, prices, Pricing(chain.genesis.params.market_pricing))
    for order_id, order in records.items():
        fill = result.fills[order_id]
        state.put(
            keys.order(order_id),
            {
                **order,
                "status": "cleared",
                "hold": 0,
                "traded_wh": fill.traded_wh,
                "backstop_wh": fill.backstop_wh,
            },
        )
    costs: dict[str, int] = {}
    trade_ids: dict[str, list[int]] = {}
    for index, trade in enumerate(result.trades):
        body: Event = {
            "interval_start": start,
            "index": index,
            "buyer": trade.buyer,
            "seller": trade.seller,
            "energy_wh": trade.energy_wh,
            "price": trade.price,
            "payment": trade.payment,
            "fee": trade.fee,
            "buy_order": trade.buy_order,
            "sell_order": trade.sell_order,
        }
        state.put(keys.trade(start, index), body)
        events.append({"type": "trade", **body})
        costs[trade.buyer] = costs.get(trade.buyer, 0) + trade.total
        trade_ids.setdefault(trade.buyer, []).append(index)
        trade_ids.setdefault(trade.seller, []).append(index)
    for trader, position in positions.items():
        keep = max(costs.get(trader, 0), 0)
        release = held.get(trader, 0) - keep
        if release:
            move_wallet(state, trader, 0, release, events)
            events.append(hold_change(trader, release, "order_release"))
        if trader in trade_ids or keep:
            state.put(
                keys.position(trader, start),
                {**position, "trades": list(trade_ids.get(trader, [])), "hold": keep},
            )
    summary: Event = {
        "status": "cleared",
        "price": result.price,
        "volume_wh": result.volume_wh,
        "bids": result.bids,
        "offers": result.offers,
        "demand_wh": result.demand_wh,
        "supply_wh": result.supply_wh,
        "supplier_sold_wh": result.supplier_sold_wh,
        "supplier_bought_wh": result.supplier_bought_wh,
        "pricing": str(result.pricing),
        "import_price": prices.import_price,
        "export_price": prices.export_price,
        "network_fee": prices.network_fee,
    }
    record = {**record, **summary, "trades": len(result.trades)}
    state.put(keys.interval(start), record)
    events.append(
        {
            "type": "interval_cleared",
            "interval_start": start,
            "trades": len(result.trades),
            **summary,
        }
    )
    return record


def _close_interval(
    chain: Chain,
    state: Overlay,
    start: int,
    record: dict[str, Value],
    ctx: BlockContext,
    *,
    events: list[Event],
) -> None:
    """Interval ``start`` is due: drop its index of traders, then settle it at once when it
    has no trades (nothing is held for it since clearing), or wait for its delivery."""
    for n in range(1, int_of(record, "traders") + 1):
        state.put(keys.trader(start, n), None)
    if int_of(record, "trades"):
        state.put(keys.interval(start), {**record, "settlement": AWAITING_DELIVERY})
        return
    prices = backstop_at(chain, state, start)
    record = {**record, "status": "settled", "settled_height": ctx.height, "participants": 0}
    if prices is None:
        # Prices are never removed, so an interval unpriced now was unpriced at its gate.
        record["settlement"] = "unpriced"
        state.put(keys.interval(start), record)
        events.append({"type": "interval_settled", "interval_start": start, "status": "unpriced"})
        return
    record["settlement"] = "settled"
    record["settled_import_price"] = prices.import_price
    record["settled_export_price"] = prices.export_price
    state.put(keys.interval(start), record)
    events.append(
        {
            "type": "interval_settled",
            "interval_start": start,
            "status": "settled",
            "participants": 0,
            "import_price": prices.import_price,
            "export_price": prices.export_price,
        }
    )


def trades_of(state: Overlay, start: int, record: Mapping[str, Value]) -> list[Trade]:
    """The trades of interval ``start``, in matching order."""
    trades = []
    for index in range(int_of(record, "trades")):
        body = record_at(state, keys.trade(start, index))
        trades.append(
            Trade(
                str(body["buy_order"]),
                str(body["sell_order"]),
                str(body["buyer"]),
                str(body["seller"]),
                int_of(body, "energy_wh"),
                int_of(body, "price"),
                int_of(body, "payment"),
                int_of(body, "fee"),
            )
        )
    return trades


def settle_delivery(
    chain: Chain,
    state: Overlay,
    start: int,
    ctx: BlockContext,
    *,
    delivered: Mapping[str, int],
    meters: Mapping[str, list[str]],
) -> list[Event]:
    """Settle the trades of interval ``start`` (awaiting its delivery) given what each
    seller delivered and the meters whose reports that rests on: release the traders'
    holds, move the money, record each trader's statement and the interval settled."""
    record = record_at(state, keys.interval(start))
    trades = trades_of(state, start, record)
    prices = backstop_at(chain, state, start)
    assert prices is not None, "an interval with trades was priced at its gate"
    holds: dict[str, int] = {}
    for trader in sorted({t.buyer for t in trades} | {t.seller for t in trades}):
        position = record_at(state, keys.position(trader, start))
        if int_of(position, "hold"):
            holds[trader] = int_of(position, "hold")
            state.put(keys.position(trader, start), {**position, "hold": 0})
    result = settle_trades(
        trades,
        delivered,
        import_price=prices.import_price,
        supplier=chain.genesis.operator_for("SUPPLIER").address,
        dso=chain.genesis.operator_for("DSO").address,
    )
    events: list[Event] = []
    apply_movements(state, result.movements, holds, events)
    for statement in result.statements:
        events.extend(
            _record_statement(
                state, start, statement, prices, ctx, meters=meters.get(statement.participant)
            )
        )
    state.put(
        keys.interval(start),
        {
            **record,
            "status": "settled",
            "settlement": "settled",
            "settled_height": ctx.height,
            "participants": len(result.statements),
            "settled_import_price": prices.import_price,
            "settled_export_price": prices.export_price,
        },
    )
    events.append(
        {
            "type": "interval_settled",
            "interval_start": start,
            "status": "settled",
            "participants": len(result.statements),
            "import_price": prices.import_price,
            "export_price": prices.export_price,
        }
    )
    return events


def apply_movements(
    state: Overlay,
    movements: tuple[Movement, ...],
    holds: Mapping[str, int],
    events: list[Event],
) -> None:
    """Release holds and apply the movements to each wallet (balance, or debt)."""
    deltas: dict[str, int] = dict.fromkeys(holds, 0)
    for movement in movements:
        deltas[movement.participant] = deltas.get(movement.participant, 0) + movement.delta
    for address in sorted(holds):
        events.append(hold_change(address, holds[address], "order_release"))
    for movement in movements:
        events.append(hold_change(movement.participant, movement.delta, movement.why))
    for address in sorted(deltas):
        move_wallet(state, address, deltas[address], holds.get(address, 0), events)


def _record_statement(
    state: Overlay,
    start: int,
    statement: Statement,
    prices: Backstop,
    ctx: BlockContext,
    *,
    meters: list[str] | None,
) -> list[Event]:
    """Store ``settle/<participant>/<T>`` and return the ``settlement`` event of it."""
    body: dict[str, Value] = {
        "bought_wh": statement.bought_wh,
        "sold_wh": statement.sold_wh,
        "delivered_wh": statement.delivered_wh,
        "shortfall_wh": statement.shortfall_wh,
        "amount": statement.amount,
    }
    stored: dict[str, Value] = {
        **body,
        "lines": dict(sorted(statement.lines.items())),
        "import_price": prices.import_price,
        "export_price": prices.export_price,
        "height": ctx.height,
    }
    if meters is not None:
        stored["meters"] = list[Value](meters)
    state.put(keys.statement(statement.participant, start), stored)
    return [
        {
            "type": "settlement",
            "interval_start": start,
            "participant": statement.participant,
            **body,
            "debt": int_at(state, keys.debt(statement.participant)),
        }
    ]
