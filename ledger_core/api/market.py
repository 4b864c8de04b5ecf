"""The market's routes.

``GET /market/intervals`` is public (clearing prices and volumes are announced
like price signals); a participant's orders, trades and settlements need the
node's token, like balances. Times are interval starts; ``from`` is included,
``to`` excluded; ``limit`` caps the intervals read (1,000 by default).
"""

from __future__ import annotations

from typing import Any, Final

from aiohttp import web

from ledger_core.api.openapi import (
    ADDRESS,
    ADDRESS_SCHEMA,
    HASH_SCHEMA,
    INT,
    RANGE,
    TEXT,
    array,
    obj,
    operation,
)
from ledger_core.api.server import Access, Feature, Route, address_param, time_range, view
from ledger_core.api.signals import INTERVAL_ROW, interval_rows
from ledger_core.state import keys


def _positions(request: web.Request, address: str) -> list[tuple[int, dict[str, Any]]]:
    """The participant's positions (orders and trades per interval) in the query's range."""
    start, end, limit = time_range(request)
    return view(request).by_interval(keys.positions(address), start, end, limit)


async def get_intervals(request: web.Request) -> web.Response:
    """Interval results with ``from <= interval_start < to``: status, clearing price, volume,
    order counts, backstop prices."""
    return web.json_response({"intervals": interval_rows(request, keys.INTERVALS)})


async def get_orders(request: web.Request) -> web.Response:
    """A participant's orders for intervals in the range, by interval then arrival."""
    address = address_param(request)
    state = view(request)
    orders: list[dict[str, Any]] = []
    for _start, position in _positions(request, address):
        for order_id in position["orders"]:
            record = state.order(order_id)
            assert record is not None
            orders.append({"id": order_id, **record})
    return web.json_response({"participant": address, "orders": orders})


async def get_trades(request: web.Request) -> web.Response:
    """A participant's trades for intervals in the range, each with the participant's side."""
    address = address_param(request)
    state = view(request)
    trades: list[dict[str, Any]] = []
    for start, position in _positions(request, address):
        for index in position["trades"]:
            record = state.trade(start, index)
            assert record is not None
            side = "buy" if record["buyer"] == address else "sell"
            trades.append({"side": side, **record})
    return web.json_response({"participant": address, "trades": trades})


_TRADE_ENERGY: Final = ("bought_wh", "sold_wh", "delivered_wh", "shortfall_wh")
_BILL_ENERGY: Final = (
    "import_wh",
    "export_wh",
    "supplier_import_wh",
    "unused_wh",
    "supplier_export_wh",
)


def _interval_row(start: int, record: dict[str, Any]) -> dict[str, Any]:
    """A statement of an interval's trades; its energy with the supplier is on the day's bill."""
    return {
        "interval_start": start,
        "kind": "interval",
        **dict.fromkeys(_BILL_ENERGY, 0),
        "late_reports": 0,
        **record,
    }


def _bill_row(day: int, record: dict[str, Any]) -> dict[str, Any]:
    """A day's bill as a settlement: its energies, and the prices of its largest line."""
    lines = record.get("by_price") or []
    main = max(
        lines,
        key=lambda line: line["import_wh"] + line["unused_wh"] + line["export_wh"],
        default={"import_price": 0, "export_price": 0},
    )
    return {
        "interval_start": day,
        "kind": "bill",
        "day": day,
        **dict.fromkeys(_TRADE_ENERGY, 0),
        "import_price": main["import_price"],
        "export_price": main["export_price"],
        "late_reports": int(record.get("bills", 1)) - 1,
        **record,
    }


async def get_settlements(request: web.Request) -> web.Response:
    """A participant's settlements in the range -- the statements of its intervals' trades and
    its daily bills (docs/market.md), by start -- and its current debt."""
    address = address_param(request)
    start, end, limit = time_range(request)
    state = view(request)
    rows = [
        _interval_row(t, record)
        for t, record in state.by_interval(keys.statements(address), start, end, limit)
    ] + [
        _bill_row(t, record)
        for t, record in state.by_interval(keys.bills(address), start, end, limit)
    ]
    rows.sort(key=lambda row: (row["interval_start"], row["kind"]))
    return web.json_response(
        {"participant": address, "debt": state.debt(address), "settlements": rows[:limit]}
    )


FEATURE: Final = Feature(
    "market",
    (
        Route(
            "GET",
            "/market/intervals",
            get_intervals,
            Access.PUBLIC,
            operation(
                "Interval results: status, clearing price, volume, order counts, backstop prices "
                "(?from=&to= interval starts, ?limit=)",
                params=RANGE,
                answers={200: obj({"intervals": array(INTERVAL_ROW)})},
                refusals=(400,),
            ),
        ),
        Route(
            "GET",
            "/market/orders/{address}",
            get_orders,
            Access.TOKEN,
            operation(
                "A participant's orders by interval (?from=&to=, ?limit=)",
                params=[ADDRESS, *RANGE],
                answers={
                    200: obj(
                        {
                            "participant": ADDRESS_SCHEMA,
                            "orders": array(
                                obj({"id": HASH_SCHEMA, "interval_start": INT, "side": TEXT})
                            ),
                        }
                    )
                },
                refusals=(400,),
            ),
        ),
        Route(
            "GET",
            "/market/trades/{address}",
            get_trades,
            Access.TOKEN,
            operation(
                "A participant's trades by interval, with its side (?from=&to=, ?limit=)",
                params=[ADDRESS, *RANGE],
                answers={
                    200: obj(
                        {
                            "participant": ADDRESS_SCHEMA,
                            "trades": array(obj({"side": TEXT, "interval_start": INT})),
                        }
                    )
                },
                refusals=(400,),
            ),
        ),
        Route(
            "GET",
            "/market/settlements/{address}",
            get_settlements,
            Access.TOKEN,
            operation(
                "A participant's settlements (its intervals' trades, and its daily bills) and "
                "its debt (?from=&to=, ?limit=)",
                params=[ADDRESS, *RANGE],
                answers={
                    200: obj(
                        {
                            "participant": ADDRESS_SCHEMA,
                            "debt": INT,
                            "settlements": array(INTERVAL_ROW),
                        }
                    )
                },
                refusals=(400,),
            ),
        ),
    ),
)
