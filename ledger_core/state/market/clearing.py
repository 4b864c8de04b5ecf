"""Clearing and settlement: the market's work in ``end_block``, and late reports' bills.

See the package's docstring for the timing and the state.
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
    interval_record,
    move_wallet,
    record_at,
)
from ledger_core.state.market.settlement import Metered, Movement, Statement, settle
from ledger_core.types.abci import BlockContext, Event
from ledger_core.types.codec import Value
from ledger_core.types.tx import Side


def note_report(
    chain: Chain, state: Overlay, meter: str, interval_start: int, ctx: BlockContext
) -> list[Event]:
    """Index a recorded report for its interval's settlement, or bill it if it came late."""
    key = keys.interval(interval_start)
    found = state.get(key)
    if isinstance(found, dict) and found["status"] == "settled":
        return _bill_late_report(chain, state, meter, interval_start, ctx)
    if not isinstance(found, dict) and not chain.genesis.params.settle_all_reports:
        return []
    record = (
        dict(found) if isinstance(found, dict) else interval_record(state, interval_start, "closed")
    )
    count = int_of(record, "reports") + 1
    record["reports"] = count
    state.put(keys.reported(interval_start, count), meter)
    state.put(key, record)
    return []


def _owner(state: Overlay, meter: str) -> str:
    return str(record_at(state, keys.account(meter))["owner"])


def _bill_late_report(
    chain: Chain, state: Overlay, meter: str, start: int, ctx: BlockContext
) -> list[Event]:
    """A report for an interval already settled. Without trades a participant's bill is linear
    in its energy, so the report is billed on its own and added to the settlement; with trades
    it is recorded but not billed (the interval's deviations were settled without it)."""
    owner = _owner(state, meter)
    position = state.get(keys.position(owner, start))
    if isinstance(position, dict) and position["trades"]:
        return []
    if not isinstance(position, dict) and not chain.genesis.params.settle_all_reports:
        return []
    prices = backstop_at(chain, state, start)
    if prices is None:
        return []
    report = record_at(state, keys.report(meter, start))
    metered = {owner: Metered(int_of(report, "import_wh"), int_of(report, "export_wh"))}
    result = settle(
        [],
        metered,
        [owner],
        import_price=prices.import_price,
        export_price=prices.export_price,
        supplier=chain.genesis.operator_for("SUPPLIER").address,
        dso=chain.genesis.operator_for("DSO").address,
    )
    events: list[Event] = []
    _apply(state, result.movements, {}, events)
    [statement] = result.statements
    events.extend(_record_statement(state, start, statement, prices, ctx, late=True))
    return events


def end_block(chain: Chain, state: Overlay, ctx: BlockContext) -> list[Event]:
    """Clear every interval whose gate has passed and settle every interval that is due,
    in interval order."""
    queue = state.get(keys.MARKET_QUEUE)
    if not isinstance(queue, list) or not queue:
        return []
    params = chain.genesis.params
    events: list[Event] = []
    settled = 0
    for item in queue:
        assert isinstance(item, int)
        if item - params.gate_closure_seconds > ctx.time:
            break
        record = record_at(state, keys.interval(item))
        if record["status"] == "open":
            record = _clear_interval(chain, state, item, record, ctx, events=events)
        if item + params.interval_seconds + params.settlement_delay_seconds > ctx.time:
            continue
        _settle_interval(chain, state, item, record, ctx, events=events)
        settled += 1
    if settled:
        state.put(keys.MARKET_QUEUE, queue[settled:])
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


def _settle_interval(
    chain: Chain,
    state: Overlay,
    start: int,
    record: dict[str, Value],
    ctx: BlockContext,
    *,
    events: list[Event],
) -> None:
    """Settle interval ``start`` against its committed reports, and drop its indexes."""
    params = chain.genesis.params
    traders = _traders(state, start, record)
    for n in range(1, len(traders) + 1):
        state.put(keys.trader(start, n), None)
    metered: dict[str, Metered] = {}
    for n in range(1, int_of(record, "reports") + 1):
        meter = str(state.get(keys.reported(start, n)))
        state.put(keys.reported(start, n), None)
        report = record_at(state, keys.report(meter, start))
        owner = _owner(state, meter)
        before = metered.get(owner, Metered())
        metered[owner] = Metered(
            before.import_wh + int_of(report, "import_wh"),
            before.export_wh + int_of(report, "export_wh"),
        )
    holds: dict[str, int] = {}
    for trader in traders:
        position = record_at(state, keys.position(trader, start))
        if int_of(position, "hold"):
            holds[trader] = int_of(position, "hold")
            state.put(keys.position(trader, start), {**position, "hold": 0})
    prices = backstop_at(chain, state, start)
    record = {**record, "status": "settled", "settled_height": ctx.height}
    if prices is None:
        # Prices are never removed, so an interval unpriced now was unpriced at its gate,
        # when every hold was released.
        assert not holds
        record["settlement"] = "unpriced"
        state.put(keys.interval(start), record)
        events.append({"type": "interval_settled", "interval_start": start, "status": "unpriced"})
        return
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
    participants = [*traders, *(metered if params.settle_all_reports else ())]
    result = settle(
        trades,
        metered,
        participants,
        import_price=prices.import_price,
        export_price=prices.export_price,
        supplier=chain.genesis.operator_for("SUPPLIER").address,
        dso=chain.genesis.operator_for("DSO").address,
    )
    _apply(state, result.movements, holds, events)
    for statement in result.statements:
        events.extend(_record_statement(state, start, statement, prices, ctx, late=False))
    record["settlement"] = "settled"
    record["participants"] = len(result.statements)
    record["settled_import_price"] = prices.import_price
    record["settled_export_price"] = prices.export_price
    state.put(keys.interval(start), record)
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


def _apply(
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
    late: bool,
) -> list[Event]:
    """Store ``settle/<participant>/<T>`` (a late report's bill adds to an earlier one) and
    return the ``settlement`` event of this statement."""
    key = keys.statement(statement.participant, start)
    body: dict[str, Value] = {
        "bought_wh": statement.bought_wh,
        "sold_wh": statement.sold_wh,
        "delivered_wh": statement.delivered_wh,
        "shortfall_wh": statement.shortfall_wh,
        "import_wh": statement.import_wh,
        "export_wh": statement.export_wh,
        "supplier_import_wh": statement.supplier_import_wh,
        "unused_wh": statement.unused_wh,
        "supplier_export_wh": statement.supplier_export_wh,
        "amount": statement.amount,
    }
    stored: dict[str, Value] = dict(body)
    lines = dict(statement.lines)
    late_reports = 1 if late else 0
    previous = state.get(key)
    if late and isinstance(previous, dict):
        for name in _ADDITIVE:
            stored[name] = int_of(previous, name) + int_of(body, name)
        old_lines = previous["lines"]
        assert isinstance(old_lines, dict)
        for why, delta in old_lines.items():
            assert isinstance(delta, int)
            lines[why] = lines.get(why, 0) + delta
        late_reports += int_of(previous, "late_reports")
    stored.update(
        lines=dict(sorted(lines.items())),
        import_price=prices.import_price,
        export_price=prices.export_price,
        late_reports=late_reports,
        height=ctx.height,
    )
    state.put(key, stored)
    return [
        {
            "type": "settlement",
            "interval_start": start,
            "participant": statement.participant,
            **body,
            "debt": int_at(state, keys.debt(statement.participant)),
            "late": late,
        }
    ]


_ADDITIVE: Final = (
    "import_wh",
    "export_wh",
    "supplier_import_wh",
    "supplier_export_wh",
    "amount",
)
