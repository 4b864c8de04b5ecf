"""The market's HTTP routes, added to the node's aiohttp application by :func:`add_market_routes`.

``GET /api/v1/market/intervals`` is public (clearing prices and volumes are
announced like price signals); a participant's orders, trades and settlements
need the node's token, like balances. Times are interval starts; ``from`` is
included, ``to`` excluded; ``limit`` caps the intervals read (1,000 by default).

``ledger_core.api`` imports this module to register the routes in ``make_app``,
so the helpers taken from it are imported inside the functions that use them.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from ledger_core.node import Node
from ledger_core.types import codec


def _positions(node: Node, request: web.Request, address: str) -> list[tuple[int, dict[str, Any]]]:
    """The participant's positions (orders and trades per interval) in the query's range."""
    from ledger_core.api import _time_range  # noqa: PLC0415

    start, end, limit = _time_range(request)
    rows = node.storage.range(f"position/{address}/", f"{start:012d}", f"{end:012d}", limit)
    result = []
    for key, value in rows:
        assert isinstance(value, dict)
        result.append((int(key.rsplit("/", 1)[1]), value))
    return result


def _private(request: web.Request) -> tuple[Node, str]:
    """The node and the path's address, after checking the token and the address."""
    from ledger_core.api import NODE_KEY, _address, _require_token  # noqa: PLC0415

    _require_token(request)
    return request.app[NODE_KEY], _address(request)


async def get_intervals(request: web.Request) -> web.Response:
    """Interval results with ``from <= interval_start < to``: status, clearing price, volume,
    order counts, backstop prices."""
    from ledger_core.api import NODE_KEY, _interval_rows  # noqa: PLC0415

    node = request.app[NODE_KEY]
    return web.json_response({"intervals": _interval_rows(node, request, "market/")})


async def get_orders(request: web.Request) -> web.Response:
    """A participant's orders for intervals in the range, by interval then arrival."""
    node, address = _private(request)
    orders: list[dict[str, codec.Value]] = []
    for _start, position in _positions(node, request, address):
        for order_id in position["orders"]:
            record = node.app.state.get(f"order/{order_id}")
            assert isinstance(record, dict)
            orders.append({"id": order_id, **record})
    return web.json_response({"participant": address, "orders": orders})


async def get_trades(request: web.Request) -> web.Response:
    """A participant's trades for intervals in the range, each with the participant's side."""
    node, address = _private(request)
    trades: list[dict[str, codec.Value]] = []
    for start, position in _positions(node, request, address):
        for index in position["trades"]:
            record = node.app.state.get(f"trade/{start:012d}/{index:08d}")
            assert isinstance(record, dict)
            side = "buy" if record["buyer"] == address else "sell"
            trades.append({"side": side, **record})
    return web.json_response({"participant": address, "trades": trades})


async def get_settlements(request: web.Request) -> web.Response:
    """A participant's settlements for intervals in the range, and its current debt."""
    from ledger_core.api import _interval_rows  # noqa: PLC0415

    node, address = _private(request)
    debt = node.app.state.get(f"debt/{address}", 0)
    rows = _interval_rows(node, request, f"settle/{address}/")
    return web.json_response({"participant": address, "debt": debt, "settlements": rows})


def add_market_routes(app: web.Application) -> None:
    """Register the market routes on a node application made by ``ledger_core.api.make_app``."""
    from ledger_core.api import PREFIX  # noqa: PLC0415

    app.add_routes(
        [
            web.get(f"{PREFIX}/market/intervals", get_intervals),
            web.get(f"{PREFIX}/market/orders/{{address}}", get_orders),
            web.get(f"{PREFIX}/market/trades/{{address}}", get_trades),
            web.get(f"{PREFIX}/market/settlements/{{address}}", get_settlements),
        ]
    )
