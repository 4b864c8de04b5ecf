"""The market's books: interval records, wallets with holds and debts, backstop prices.

Shared by the order handlers (:mod:`.orders`) and clearing and settlement
(:mod:`.clearing`); see the package's docstring for the state they keep.
"""

from __future__ import annotations

import bisect
from collections.abc import Mapping
from typing import Final

from ledger_core.state import keys
from ledger_core.state.kernel import Chain, Overlay, int_at, int_of
from ledger_core.state.market.auction import Backstop
from ledger_core.types.abci import Event
from ledger_core.types.codec import Value

MAX_AHEAD_SECONDS: Final = 7 * 86400
"""How far ahead of the block time an order's interval may start."""


MAX_ORDERS: Final = 32
"""Orders one participant may place for one interval (cancelled ones count)."""


DAY: Final = 86400


def record_at(state: Overlay, key: str) -> dict[str, Value]:
    value = state.get(key)
    assert isinstance(value, dict), key
    return dict(value)


def ids_of(record: Mapping[str, Value], name: str) -> list[str]:
    value = record[name]
    assert isinstance(value, list)
    return [str(item) for item in value]


def note_price(state: Overlay, interval_start: int) -> None:
    """Index a price signal: remember the latest priced interval of its UTC day."""
    key = keys.price_day(interval_start - interval_start % DAY)
    latest = state.get(key)
    if not isinstance(latest, int) or interval_start > latest:
        state.put(key, interval_start)


def backstop_at(chain: Chain, state: Overlay, interval_start: int) -> Backstop | None:
    """The price signal of the interval, else the latest one before it; None if there is none."""
    interval = chain.genesis.params.interval_seconds
    day = interval_start - interval_start % DAY
    latest = state.get(keys.price_day(day))
    found: int | None = None
    if isinstance(latest, int):
        if latest <= interval_start:
            found = latest
        else:
            for start in range(interval_start, day - 1, -interval):
                if state.get(keys.price(start)) is not None:
                    found = start
                    break
    if found is None:
        # Signals exist only for intervals that had not ended at some block time.
        first_day = chain.genesis.genesis_time - interval
        first_day -= first_day % DAY
        day -= DAY
        while found is None and day >= first_day:
            latest = state.get(keys.price_day(day))
            if isinstance(latest, int):
                found = latest
            day -= DAY
    if found is None:
        return None
    record = record_at(state, keys.price(found))
    return Backstop(
        int_of(record, "import_price"),
        int_of(record, "export_price"),
        int_of(record, "network_fee"),
    )


def move_wallet(
    state: Overlay, address: str, delta: int, release: int, events: list[Event]
) -> None:
    """Release ``release`` centavos held for orders, add ``delta`` to ``bal - debt``, and
    store the result as a balance or a debt."""
    balance = int_at(state, keys.balance(address)) + release
    if release:
        state.put(keys.held(address), int_at(state, keys.held(address)) - release)
    debt = int_at(state, keys.debt(address))
    wallet = balance - debt + delta
    new_balance, new_debt = max(wallet, 0), max(-wallet, 0)
    if new_balance != int_at(state, keys.balance(address)):
        state.put(keys.balance(address), new_balance)
    if new_debt != debt:
        state.put(keys.debt(address), new_debt or None)
        events.append(
            {
                "type": "debt_change",
                "participant": address,
                "delta": new_debt - debt,
                "debt": new_debt,
            }
        )


def hold_change(address: str, delta: int, why: str) -> Event:
    return {"type": "wallet_change", "participant": address, "delta": delta, "why": why}


def interval_record(state: Overlay, start: int, status: str) -> dict[str, Value]:
    """The interval's record, created (and queued) if new."""
    record = state.get(keys.interval(start))
    if isinstance(record, dict):
        return dict(record)
    queue = state.get(keys.MARKET_QUEUE)
    starts = [s for s in queue if isinstance(s, int)] if isinstance(queue, list) else []
    bisect.insort(starts, start)
    state.put(keys.MARKET_QUEUE, list[Value](starts))
    return {"status": status, "orders": 0, "traders": 0, "reports": 0, "trades": 0}
