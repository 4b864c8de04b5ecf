"""The market inside the state machine: orders, holds, clearing and settlement in ``end_block``.

``app.py`` calls in here from five places: the ``order`` and ``order_cancel``
handlers, ``end_block``, and two hooks, one when a meter's report is recorded
(:func:`note_report`) and one when a price signal is (:func:`note_price`).
Everything is a pure function of the state and the block: integers only, no
clock, and every collection is walked in a fixed order.

Timing, for an interval starting at ``T`` (``interval_seconds`` long):

* orders for ``T`` are accepted while the block time is before the gate,
  ``T - gate_closure_seconds``, and at most :data:`MAX_AHEAD_SECONDS` ahead;
* the ``end_block`` of the first block at or after the gate clears ``T`` with
  the backstop prices known then (:func:`backstop_at`);
* the ``end_block`` of the first block at or after ``T + interval_seconds +
  settlement_delay_seconds`` settles ``T`` against the reports committed by
  then, at the interval's final prices.

State (``T`` is the interval start as 12 digits; all readable with ``query``):

* ``market/<T>``: the interval — status (``open``, ``closed`` when created by a
  report after its gate, ``cleared``, ``unpriced``, ``settled``), counters, the
  clearing result and the prices used;
* ``order/<id>`` (``id`` = the order transaction's id), ``position/<address>/<T>``
  (a participant's orders, trades and hold in ``T``), ``trade/<T>/<k>``,
  ``settle/<address>/<T>``, ``debt/<address>``;
* indexes, so that ``end_block`` never scans the state: ``queue/market`` (the
  sorted starts of intervals not yet settled), ``traders/<T>/<n>`` and
  ``reported/<T>/<n>`` (who ordered in, and which meters reported for, ``T``;
  deleted at settlement), ``priceday/<day>`` (the latest priced interval of
  each UTC day, to find the latest price signal at or before any interval).

Holds: a buy order moves ``cost(energy_wh, limit_price)`` from ``bal/`` to
``held/`` (the same counter that holds pending withdrawals); clearing keeps
exactly what the participant's trades cost and releases the rest; settlement
releases the remainder just before paying.

Debts: a wallet is ``bal - debt``. Settlement adds each wallet's movements to
that sum and stores it back as a balance when it is positive or as
``debt/<address>`` when it is negative, so a balance is never negative and a
later credit repays debt first. Every peer-to-peer payment is held in advance,
so only what is owed to the supplier can go unpaid: the supplier is credited
in full and carries the debt, as a utility carries its customers' unpaid bills.
Invariant: ``sum(bal) + sum(held) - sum(debt) == total/deposits -
total/withdrawals``.
"""

from __future__ import annotations

import bisect
from collections.abc import Mapping
from typing import TYPE_CHECKING, Final, NoReturn

from ledger_core.market.auction import Backstop, Order, Pricing, Trade, clear, cost
from ledger_core.market.settlement import Metered, Movement, Statement, settle
from ledger_core.types import codec
from ledger_core.types.tx import Role, Side, Tx

if TYPE_CHECKING:
    from ledger_core.app import Application, BlockContext, Overlay

type Value = codec.Value
type Event = dict[str, Value]

MAX_AHEAD_SECONDS: Final = 7 * 86400
"""How far ahead of the block time an order's interval may start."""
MAX_ORDERS: Final = 32
"""Orders one participant may place for one interval (cancelled ones count)."""
QUEUE: Final = "queue/market"
DAY: Final = 86400


def _reject(code: str, message: str) -> NoReturn:
    # app.py imports this module, so its exception class is looked up when needed.
    from ledger_core.app import Rejected  # noqa: PLC0415

    raise Rejected(code, message)


def _t(seconds: int) -> str:
    return f"{seconds:012d}"


def _int(state: Overlay, key: str) -> int:
    value = state.get(key)
    return value if isinstance(value, int) else 0


def _dict(state: Overlay, key: str) -> dict[str, Value]:
    value = state.get(key)
    assert isinstance(value, dict), key
    return dict(value)


def _num(record: Mapping[str, Value], name: str) -> int:
    value = record[name]
    assert isinstance(value, int)
    return value


def _ids(record: Mapping[str, Value], name: str) -> list[str]:
    value = record[name]
    assert isinstance(value, list)
    return [str(item) for item in value]


# -- prices -----------------------------------------------------------------------------


def note_price(state: Overlay, interval_start: int) -> None:
    """Index a price signal: remember the latest priced interval of its UTC day."""
    key = f"priceday/{_t(interval_start - interval_start % DAY)}"
    latest = state.get(key)
    if not isinstance(latest, int) or interval_start > latest:
        state.put(key, interval_start)


def backstop_at(app: Application, state: Overlay, interval_start: int) -> Backstop | None:
    """The price signal of the interval, else the latest one before it; None if there is none."""
    interval = app.genesis.params.interval_seconds
    day = interval_start - interval_start % DAY
    latest = state.get(f"priceday/{_t(day)}")
    found: int | None = None
    if isinstance(latest, int):
        if latest <= interval_start:
            found = latest
        else:
            for start in range(interval_start, day - 1, -interval):
                if state.get(f"price/{_t(start)}") is not None:
                    found = start
                    break
    if found is None:
        # Signals exist only for intervals that had not ended at some block time.
        first_day = app.genesis.genesis_time - interval
        first_day -= first_day % DAY
        day -= DAY
        while found is None and day >= first_day:
            latest = state.get(f"priceday/{_t(day)}")
            if isinstance(latest, int):
                found = latest
            day -= DAY
    if found is None:
        return None
    record = _dict(state, f"price/{_t(found)}")
    return Backstop(
        _num(record, "import_price"), _num(record, "export_price"), _num(record, "network_fee")
    )


# -- wallets ----------------------------------------------------------------------------


def _wallet(state: Overlay, address: str, delta: int, release: int, events: list[Event]) -> None:
    """Release ``release`` centavos held for orders, add ``delta`` to ``bal - debt``, and
    store the result as a balance or a debt."""
    balance = _int(state, f"bal/{address}") + release
    if release:
        state.put(f"held/{address}", _int(state, f"held/{address}") - release)
    debt = _int(state, f"debt/{address}")
    wallet = balance - debt + delta
    new_balance, new_debt = max(wallet, 0), max(-wallet, 0)
    if new_balance != _int(state, f"bal/{address}"):
        state.put(f"bal/{address}", new_balance)
    if new_debt != debt:
        state.put(f"debt/{address}", new_debt or None)
        events.append(
            {
                "type": "debt_change",
                "participant": address,
                "delta": new_debt - debt,
                "debt": new_debt,
            }
        )


def _hold_change(address: str, delta: int, why: str) -> Event:
    return {"type": "wallet_change", "participant": address, "delta": delta, "why": why}


# -- orders -----------------------------------------------------------------------------


def _require_trader(state: Overlay, address: str, account: Mapping[str, Value]) -> None:
    role = account.get("role")
    if role == Role.METER:
        _reject("not_permitted", "a meter may only send interval reports")
    if role == "operator":
        _reject(
            "not_permitted",
            "operators do not place orders; the supplier is every interval's backstop",
        )
    service = state.get(f"service/{address}")
    if isinstance(service, dict) and service.get("connected") is False:
        _reject("service_cut", "the participant's service is cut")


def _interval_record(state: Overlay, start: int, status: str) -> dict[str, Value]:
    """The interval's record, created (and queued) if new."""
    record = state.get(f"market/{_t(start)}")
    if isinstance(record, dict):
        return dict(record)
    queue = state.get(QUEUE)
    starts = [s for s in queue if isinstance(s, int)] if isinstance(queue, list) else []
    bisect.insort(starts, start)
    state.put(QUEUE, list[Value](starts))
    return {"status": status, "orders": 0, "traders": 0, "reports": 0, "trades": 0}


def _require_open(app: Application, start: int, ctx: BlockContext) -> None:
    params = app.genesis.params
    if start % params.interval_seconds:
        _reject(
            "misaligned_interval",
            f"interval_start must be a multiple of {params.interval_seconds} s",
        )
    if ctx.time >= start - params.gate_closure_seconds:
        _reject(
            "gate_closed",
            f"orders for this interval closed at {start - params.gate_closure_seconds}",
        )
    if start > ctx.time + MAX_AHEAD_SECONDS:
        _reject("too_far_ahead", f"orders are accepted up to {MAX_AHEAD_SECONDS} s ahead")


def place_order(
    app: Application, state: Overlay, tx: Tx, account: dict[str, Value], ctx: BlockContext
) -> list[Event]:
    """The ``order`` transaction."""
    _require_trader(state, tx.signer, account)
    start = _num(tx.body, "interval_start")
    _require_open(app, start, ctx)
    side = Side(str(tx.body["side"]))
    energy, limit = _num(tx.body, "energy_wh"), _num(tx.body, "limit_price")
    position_key = f"position/{tx.signer}/{_t(start)}"
    existing = state.get(position_key)
    new_trader = not isinstance(existing, dict)
    position: dict[str, Value] = (
        {"side": str(side), "orders": [], "trades": [], "hold": 0}
        if not isinstance(existing, dict)
        else dict(existing)
    )
    orders = _ids(position, "orders")
    if len(orders) >= MAX_ORDERS:
        _reject("too_many_orders", f"at most {MAX_ORDERS} orders per participant and interval")
    if position["side"] != side:
        for other in orders:
            if _dict(state, f"order/{other}")["status"] == "open":
                _reject(
                    "opposite_side",
                    f"the participant has open {position['side']} orders for this interval",
                )
        position["side"] = str(side)
    events: list[Event] = []
    if _int(state, f"debt/{tx.signer}"):
        _wallet(state, tx.signer, 0, 0, events)
        if _int(state, f"debt/{tx.signer}"):
            _reject("in_debt", f"the participant owes {_int(state, f'debt/{tx.signer}')} centavos")
    hold = max(cost(energy, limit), 0) if side is Side.BUY else 0
    if hold:
        balance = _int(state, f"bal/{tx.signer}")
        if balance < hold:
            _reject(
                "insufficient_funds", f"the order holds {hold} centavos; the balance is {balance}"
            )
        state.put(f"bal/{tx.signer}", balance - hold)
        state.put(f"held/{tx.signer}", _int(state, f"held/{tx.signer}") + hold)
    record = _interval_record(state, start, "open")
    sequence = _num(record, "orders") + 1
    record["orders"] = sequence
    if new_trader:
        traders = _num(record, "traders") + 1
        record["traders"] = traders
        state.put(f"traders/{_t(start)}/{traders:08d}", tx.signer)
    state.put(f"market/{_t(start)}", record)
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
    state.put(f"order/{tx.id}", order)
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
        events.append(_hold_change(tx.signer, -hold, "order_hold"))
    return events


def cancel_order(
    app: Application, state: Overlay, tx: Tx, account: dict[str, Value], ctx: BlockContext
) -> list[Event]:
    """The ``order_cancel`` transaction: before the gate, by the order's participant."""
    order_id = str(tx.body["order_id"])
    found = state.get(f"order/{order_id}")
    if not isinstance(found, dict):
        _reject("unknown_order", f"no order {order_id}")
    order = dict(found)
    if order["participant"] != tx.signer:
        _reject("not_permitted", "only the participant who placed an order may cancel it")
    if order["status"] != "open":
        _reject("not_open", f"the order is {order['status']}")
    start = _num(order, "interval_start")
    if ctx.time >= start - app.genesis.params.gate_closure_seconds:
        _reject("gate_closed", "the interval's orders are closed")
    hold = _num(order, "hold")
    if hold:
        state.put(f"held/{tx.signer}", _int(state, f"held/{tx.signer}") - hold)
        state.put(f"bal/{tx.signer}", _int(state, f"bal/{tx.signer}") + hold)
    state.put(f"order/{order_id}", {**order, "status": "cancelled", "hold": 0})
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
        events.append(_hold_change(tx.signer, hold, "order_release"))
    return events


# -- reports ----------------------------------------------------------------------------


def note_report(
    app: Application, state: Overlay, meter: str, interval_start: int, ctx: BlockContext
) -> list[Event]:
    """Index a recorded report for its interval's settlement, or bill it if it came late."""
    key = f"market/{_t(interval_start)}"
    found = state.get(key)
    if isinstance(found, dict) and found["status"] == "settled":
        return _bill_late_report(app, state, meter, interval_start, ctx)
    if not isinstance(found, dict) and not app.genesis.params.settle_all_reports:
        return []
    record = (
        dict(found)
        if isinstance(found, dict)
        else _interval_record(state, interval_start, "closed")
    )
    count = _num(record, "reports") + 1
    record["reports"] = count
    state.put(f"reported/{_t(interval_start)}/{count:08d}", meter)
    state.put(key, record)
    return []


def _owner(state: Overlay, meter: str) -> str:
    return str(_dict(state, f"acct/{meter}")["owner"])


def _bill_late_report(
    app: Application, state: Overlay, meter: str, start: int, ctx: BlockContext
) -> list[Event]:
    """A report for an interval already settled. Without trades a participant's bill is linear
    in its energy, so the report is billed on its own and added to the settlement; with trades
    it is recorded but not billed (the interval's deviations were settled without it)."""
    owner = _owner(state, meter)
    position = state.get(f"position/{owner}/{_t(start)}")
    if isinstance(position, dict) and position["trades"]:
        return []
    if not isinstance(position, dict) and not app.genesis.params.settle_all_reports:
        return []
    prices = backstop_at(app, state, start)
    if prices is None:
        return []
    report = _dict(state, f"report/{meter}/{_t(start)}")
    metered = {owner: Metered(_num(report, "import_wh"), _num(report, "export_wh"))}
    result = settle(
        [],
        metered,
        [owner],
        import_price=prices.import_price,
        export_price=prices.export_price,
        supplier=app.genesis.operator_for("SUPPLIER").address,
        dso=app.genesis.operator_for("DSO").address,
    )
    events: list[Event] = []
    _apply(state, result.movements, {}, events)
    [statement] = result.statements
    events.extend(_record_statement(state, start, statement, prices, ctx, late=True))
    return events


# -- clearing and settlement in end_block -----------------------------------------------------


def end_block(app: Application, state: Overlay, ctx: BlockContext) -> list[Event]:
    """Clear every interval whose gate has passed and settle every interval that is due,
    in interval order."""
    queue = state.get(QUEUE)
    if not isinstance(queue, list) or not queue:
        return []
    params = app.genesis.params
    events: list[Event] = []
    settled = 0
    for item in queue:
        assert isinstance(item, int)
        if item - params.gate_closure_seconds > ctx.time:
            break
        record = _dict(state, f"market/{_t(item)}")
        if record["status"] == "open":
            record = _clear_interval(app, state, item, record, ctx, events=events)
        if item + params.interval_seconds + params.settlement_delay_seconds > ctx.time:
            continue
        _settle_interval(app, state, item, record, ctx, events=events)
        settled += 1
    if settled:
        state.put(QUEUE, queue[settled:])
    return events


def _traders(state: Overlay, start: int, record: Mapping[str, Value]) -> list[str]:
    return [
        str(state.get(f"traders/{_t(start)}/{n:08d}"))
        for n in range(1, _num(record, "traders") + 1)
    ]


def _clear_interval(
    app: Application,
    state: Overlay,
    start: int,
    record: dict[str, Value],
    ctx: BlockContext,
    *,
    events: list[Event],
) -> dict[str, Value]:
    """Run the auction of interval ``start``; the updated interval record."""
    stamp = _t(start)
    prices = backstop_at(app, state, start)
    orders: list[Order] = []
    records: dict[str, dict[str, Value]] = {}
    held: dict[str, int] = {}
    positions: dict[str, dict[str, Value]] = {}
    for trader in _traders(state, start, record):
        position = _dict(state, f"position/{trader}/{stamp}")
        positions[trader] = position
        for order_id in _ids(position, "orders"):
            order = _dict(state, f"order/{order_id}")
            if order["status"] != "open":
                continue
            records[order_id] = order
            held[trader] = held.get(trader, 0) + _num(order, "hold")
            orders.append(
                Order(
                    order_id,
                    trader,
                    Side(str(order["side"])),
                    _num(order, "energy_wh"),
                    _num(order, "limit_price"),
                    _num(order, "sequence"),
                )
            )
    record = {**record, "cleared_height": ctx.height}
    if prices is None:
        for order_id, order in records.items():
            state.put(f"order/{order_id}", {**order, "status": "unpriced", "hold": 0})
        for trader, amount in held.items():
            if amount:
                _wallet(state, trader, 0, amount, events)
                events.append(_hold_change(trader, amount, "order_release"))
        record["status"] = "unpriced"
        state.put(f"market/{stamp}", record)
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

    result = clear(orders, prices, Pricing(app.genesis.params.market_pricing))
    for order_id, order in records.items():
        fill = result.fills[order_id]
        state.put(
            f"order/{order_id}",
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
        state.put(f"trade/{stamp}/{index:08d}", body)
        events.append({"type": "trade", **body})
        costs[trade.buyer] = costs.get(trade.buyer, 0) + trade.total
        trade_ids.setdefault(trade.buyer, []).append(index)
        trade_ids.setdefault(trade.seller, []).append(index)
    for trader, position in positions.items():
        keep = max(costs.get(trader, 0), 0)
        release = held.get(trader, 0) - keep
        if release:
            _wallet(state, trader, 0, release, events)
            events.append(_hold_change(trader, release, "order_release"))
        if trader in trade_ids or keep:
            state.put(
                f"position/{trader}/{stamp}",
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
    state.put(f"market/{stamp}", record)
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
    app: Application,
    state: Overlay,
    start: int,
    record: dict[str, Value],
    ctx: BlockContext,
    *,
    events: list[Event],
) -> None:
    """Settle interval ``start`` against its committed reports, and drop its indexes."""
    stamp = _t(start)
    params = app.genesis.params
    traders = _traders(state, start, record)
    for n in range(1, len(traders) + 1):
        state.put(f"traders/{stamp}/{n:08d}", None)
    metered: dict[str, Metered] = {}
    for n in range(1, _num(record, "reports") + 1):
        meter = str(state.get(f"reported/{stamp}/{n:08d}"))
        state.put(f"reported/{stamp}/{n:08d}", None)
        report = _dict(state, f"report/{meter}/{stamp}")
        owner = _owner(state, meter)
        before = metered.get(owner, Metered())
        metered[owner] = Metered(
            before.import_wh + _num(report, "import_wh"),
            before.export_wh + _num(report, "export_wh"),
        )
    holds: dict[str, int] = {}
    for trader in traders:
        position = _dict(state, f"position/{trader}/{stamp}")
        if _num(position, "hold"):
            holds[trader] = _num(position, "hold")
            state.put(f"position/{trader}/{stamp}", {**position, "hold": 0})
    prices = backstop_at(app, state, start)
    record = {**record, "status": "settled", "settled_height": ctx.height}
    if prices is None:
        # Prices are never removed, so an interval unpriced now was unpriced at its gate,
        # when every hold was released.
        assert not holds
        record["settlement"] = "unpriced"
        state.put(f"market/{stamp}", record)
        events.append({"type": "interval_settled", "interval_start": start, "status": "unpriced"})
        return
    trades = []
    for index in range(_num(record, "trades")):
        body = _dict(state, f"trade/{stamp}/{index:08d}")
        trades.append(
            Trade(
                str(body["buy_order"]),
                str(body["sell_order"]),
                str(body["buyer"]),
                str(body["seller"]),
                _num(body, "energy_wh"),
                _num(body, "price"),
                _num(body, "payment"),
                _num(body, "fee"),
            )
        )
    participants = [*traders, *(metered if params.settle_all_reports else ())]
    result = settle(
        trades,
        metered,
        participants,
        import_price=prices.import_price,
        export_price=prices.export_price,
        supplier=app.genesis.operator_for("SUPPLIER").address,
        dso=app.genesis.operator_for("DSO").address,
    )
    _apply(state, result.movements, holds, events)
    for statement in result.statements:
        events.extend(_record_statement(state, start, statement, prices, ctx, late=False))
    record["settlement"] = "settled"
    record["participants"] = len(result.statements)
    record["settled_import_price"] = prices.import_price
    record["settled_export_price"] = prices.export_price
    state.put(f"market/{stamp}", record)
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
        events.append(_hold_change(address, holds[address], "order_release"))
    for movement in movements:
        events.append(_hold_change(movement.participant, movement.delta, movement.why))
    for address in sorted(deltas):
        _wallet(state, address, deltas[address], holds.get(address, 0), events)


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
    key = f"settle/{statement.participant}/{_t(start)}"
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
            stored[name] = _num(previous, name) + _num(body, name)
        old_lines = previous["lines"]
        assert isinstance(old_lines, dict)
        for why, delta in old_lines.items():
            assert isinstance(delta, int)
            lines[why] = lines.get(why, 0) + delta
        late_reports += _num(previous, "late_reports")
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
            "debt": _int(state, f"debt/{statement.participant}"),
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
