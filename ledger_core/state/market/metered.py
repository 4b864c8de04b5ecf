"""Metered energy from the concentrator: an interval's ``delivery`` and a participant's ``bill``.

Interval reports carry commitments, never energy (docs/privacy.md). The
concentrator holds the readings; signing with the operator key that holds the
DSO role, it submits what settlement needs and cites, for each input, the
committed reports it rests on:

* ``delivery`` -- for an interval with trades, due and not yet settled: each
  seller's delivered energy (its export, at most what it sold) and its meters
  whose reports it read. The trades are then settled
  (:func:`.clearing.settle_delivery`). A delivery too big for one transaction
  comes in parts, each listing sellers not listed yet, in order, in any order of
  parts; each part is checked as it comes and kept (``delivering/<T>``), and the
  part that lists the last seller settles the trades.
* ``bill`` -- for a participant and a local day that is over (settlement delay
  included): the reports it bills, by meter and interval, and the day's energy
  with the supplier per pair of prices. The state machine computes the money
  (:func:`.settlement.settle_bill`) and records ``bill/<participant>/<day>``.

What is checked here, so that the concentrator can only state energies within
bounds and anyone holding the readings can prove a wrong one: every cited
report is on chain and belongs to a meter of the participant it is cited for;
nothing is delivered beyond what was sold, or without a cited report; a report
is billed once, in its own day, at the final prices of its interval, and only
after the deliveries of that interval; unused energy does not exceed what was
bought at those prices. Every amount is computed here, so money is conserved
whatever the inputs.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Final, cast

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
    require_operator,
    str_of,
)
from ledger_core.state.market.books import backstop_at, record_at
from ledger_core.state.market.clearing import (
    AWAITING_DELIVERY,
    apply_movements,
    settle_delivery,
)
from ledger_core.state.market.settlement import settle_bill
from ledger_core.types.abci import BlockContext, Event
from ledger_core.types.codec import Value
from ledger_core.types.metering import BillLine
from ledger_core.types.tx import Role, Tx, TxType

DAY: Final = 86400
BILL_SUMS: Final = (
    "reports",
    "import_wh",
    "export_wh",
    "supplier_import_wh",
    "unused_wh",
    "supplier_export_wh",
    "amount",
)
"""What a later bill of the same day adds to the day's record."""


def _cited_report(state: Overlay, meter: str, owner: str, start: int) -> dict[str, Value]:
    """The committed report of ``meter`` for ``start``; the meter must be ``owner``'s."""
    account = state.get(keys.account(meter))
    if not isinstance(account, dict) or account.get("role") != Role.METER:
        raise Rejected("foreign_meter", f"{meter} is not a meter")
    if account.get("owner") != owner:
        raise Rejected("foreign_meter", f"meter {meter} is not a meter of {owner}")
    report = state.get(keys.report(meter, start))
    if not isinstance(report, dict):
        raise Rejected("unknown_report", f"meter {meter} has no report of interval {start}")
    return dict(report)


def _sold(
    state: Overlay, start: int, record: Mapping[str, Value], progress: Value | None
) -> tuple[dict[str, int], int]:
    """What each seller of interval ``start`` sold, and how many sellers earlier parts of
    its delivery listed (the first part notes the former for the later ones)."""
    if isinstance(progress, dict):
        noted = progress["sold"]
        assert isinstance(noted, dict)
        # The first part wrote these as integers (below): copied as they are, where
        # converting each again cost every later part of a large delivery its sellers' count.
        return cast(dict[str, int], dict(noted)), int_of(progress, "sellers")
    sold: dict[str, int] = {}
    for index in range(int_of(record, "trades")):
        trade = record_at(state, keys.trade(start, index))
        seller = str_of(trade, "seller")
        sold[seller] = sold.get(seller, 0) + int_of(trade, "energy_wh")
    return sold, 0


def _delivery(
    chain: Chain, state: Overlay, tx: Tx, account: Account, ctx: BlockContext
) -> list[Event]:
    require_operator(account, "DSO")
    start = int_of(tx.body, "interval_start")
    record = state.get(keys.interval(start))
    if not isinstance(record, dict) or record.get("settlement") != AWAITING_DELIVERY:
        raise Rejected(
            "not_awaiting_delivery",
            f"interval {start} has no trades waiting for their delivery (cleared, due and "
            "not settled)",
        )
    sold, done = _sold(state, start, record, state.get(keys.delivering(start)))
    sellers = tx.body["sellers"]
    assert isinstance(sellers, list)
    listed = [str_of(_entry(item), "participant") for item in sellers]
    if (
        not listed
        or listed != sorted(set(listed))
        or any(seller not in sold for seller in listed)
        or (done and any(state.get(keys.delivered_part(start, s)) is not None for s in listed))
    ):
        raise Rejected(
            "wrong_sellers",
            f"the delivery must list each of the interval's {len(sold)} sellers once, in "
            f"order, and no one else (in parts: sellers not listed yet; {done} are)",
        )
    delivered: dict[str, int] = {}
    meters: dict[str, list[str]] = {}
    for item in sellers:
        entry = _entry(item)
        seller = str_of(entry, "participant")
        energy = int_of(entry, "delivered_wh")
        if energy > sold[seller]:
            raise Rejected(
                "over_delivery", f"{seller} sold {sold[seller]} Wh and cannot deliver {energy}"
            )
        cited = entry["meters"]
        assert isinstance(cited, list)
        for meter in cited:
            _cited_report(state, str(meter), seller, start)
        if energy and not cited:
            raise Rejected(
                "unreported_delivery", f"{seller}'s delivery cites no report: it delivered nothing"
            )
        delivered[seller] = energy
        meters[seller] = [str(meter) for meter in cited]
    if done + len(listed) < len(sold):  # a part: kept until the last one comes
        for seller in listed:
            state.put(
                keys.delivered_part(start, seller),
                {"delivered_wh": delivered[seller], "meters": list[Value](meters[seller])},
            )
        noted: dict[str, Value] = dict(sold)
        state.put(keys.delivering(start), {"sellers": done + len(listed), "sold": noted})
        return []
    if done:
        _earlier_parts(state, start, sorted(sold), delivered, meters)
    order = sorted(sold)
    return settle_delivery(
        chain,
        state,
        start,
        ctx,
        delivered={seller: delivered[seller] for seller in order},
        meters={seller: meters[seller] for seller in order},
    )


def _earlier_parts(
    state: Overlay,
    start: int,
    order: list[str],
    delivered: dict[str, int],
    meters: dict[str, list[str]],
) -> None:
    """Add what earlier parts of a delivery said of their sellers, and forget them."""
    for seller in order:
        if seller in delivered:
            continue
        key = keys.delivered_part(start, seller)
        part = record_at(state, key)
        delivered[seller] = int_of(part, "delivered_wh")
        cited = part["meters"]
        assert isinstance(cited, list)
        meters[seller] = [str(meter) for meter in cited]
        state.put(key, None)
    state.put(keys.delivering(start), None)


def _entry(item: Value) -> dict[str, Value]:
    assert isinstance(item, dict)
    return item


def _traded(state: Overlay, participant: str, start: int) -> tuple[bool, int, int]:
    """Whether the participant ordered in the interval, and what it bought and sold."""
    position = state.get(keys.position(participant, start))
    if not isinstance(position, dict):
        return False, 0, 0
    bought = sold = 0
    indexes = position["trades"]
    assert isinstance(indexes, list)
    for index in indexes:
        assert isinstance(index, int)
        trade = record_at(state, keys.trade(start, index))
        if trade["buyer"] == participant:
            bought += int_of(trade, "energy_wh")
        else:
            sold += int_of(trade, "energy_wh")
    return True, bought, sold


def _bill(chain: Chain, state: Overlay, tx: Tx, account: Account, ctx: BlockContext) -> list[Event]:
    require_operator(account, "DSO")
    participant = str_of(tx.body, "participant")
    target = state.get(keys.account(participant))
    if not isinstance(target, dict):
        raise Rejected("unknown_account", f"participant {participant} is not registered")
    if target.get("role") in (Role.METER, OPERATOR):
        raise Rejected("not_permitted", "meters and operators are not billed")
    day = int_of(tx.body, "day")
    if chain.local(day) % DAY:
        raise Rejected("misaligned_day", "day must be the first second of a local day")
    delay = chain.params.settlement_delay_seconds
    if day + DAY + delay > ctx.time:
        raise Rejected("too_early", f"a day is billed once it is over and {delay} s more")
    if ctx.time >= chain.params.day_closes(day):
        raise Rejected(
            "too_late",
            f"a day's bills close {chain.params.bill_deadline_seconds} s (bill_deadline_seconds)"
            f" after the day and the {delay} s settlement delay: its records have left the live"
            " state",
        )
    previous = state.get(keys.bill(participant, day))
    starts, reports = _mark_billed(chain, state, tx, participant, day, ctx)
    traded = _billed_intervals(chain, state, participant, starts, late=previous is not None)
    raw_lines = tx.body["lines"]
    assert isinstance(raw_lines, list)
    lines = [BillLine.from_json(line, "line") for line in raw_lines]
    for line in lines:
        if line.prices not in traded.bought_at:
            raise Rejected(
                "wrong_price",
                f"no billed interval has import price {line.import_price} and export price "
                f"{line.export_price}",
            )
        if line.unused_wh > traded.bought_at[line.prices]:
            raise Rejected(
                "unused_exceeds_bought",
                f"{line.unused_wh} Wh unused at prices {line.prices}, "
                f"{traded.bought_at[line.prices]} Wh bought",
            )
    bill = settle_bill(participant, lines, supplier=chain.genesis.operator_for("SUPPLIER").address)
    events: list[Event] = []
    apply_movements(state, bill.movements, {}, events)
    body: dict[str, Value] = {
        "reports": reports,
        "import_wh": traded.bought - bill.unused_wh + bill.import_wh,
        "export_wh": traded.delivered + bill.export_wh,
        "supplier_import_wh": bill.import_wh,
        "unused_wh": bill.unused_wh,
        "supplier_export_wh": bill.export_wh,
        "amount": bill.amount,
    }
    _record_bill(state, participant, day, body, lines, bill.lines, previous, ctx)
    events.append(
        {
            "type": "bill",
            "participant": participant,
            "day": day,
            **body,
            "by_price": [line.to_json() for line in lines],
            "debt": int_at(state, keys.debt(participant)),
            "late": previous is not None,
        }
    )
    return events


def _mark_billed(  # noqa: PLR0917 - the handler's arguments
    chain: Chain, state: Overlay, tx: Tx, participant: str, day: int, ctx: BlockContext
) -> tuple[set[int], int]:
    """Check the bill's cited reports and mark them billed; the intervals and the count."""
    starts: set[int] = set()
    reports = 0
    cited = tx.body["reports"]
    assert isinstance(cited, list)
    for item in cited:
        entry = _entry(item)
        meter = str_of(entry, "meter")
        intervals = entry["intervals"]
        assert isinstance(intervals, list)
        for start in intervals:
            assert isinstance(start, int)
            if not day <= start < day + DAY or start % chain.params.interval_seconds:
                raise Rejected("outside_day", f"{start} is not the start of an interval of the day")
            report = _cited_report(state, meter, participant, start)
            if "billed" in report:
                raise Rejected(
                    "already_billed", f"meter {meter}'s report of {start} was billed already"
                )
            state.put(keys.report(meter, start), {**report, "billed": ctx.height})
            starts.add(start)
            reports += 1
    return starts, reports


@dataclass(frozen=True, slots=True)
class _Traded:
    """A participant's trades in the billed intervals: bought energy per pair of final
    prices, and in all, and the energy it delivered of what it sold."""

    bought_at: dict[tuple[int, int], int]
    bought: int
    delivered: int


def _billed_intervals(
    chain: Chain, state: Overlay, participant: str, starts: set[int], *, late: bool
) -> _Traded:
    """Check that each billed interval may be billed now, and what was traded in it."""
    bought_at: dict[tuple[int, int], int] = {}
    bought_total = delivered_total = 0
    for start in sorted(starts):
        prices = backstop_at(chain, state, start)
        if prices is None:
            raise Rejected("unpriced_interval", f"interval {start} has no price: it is not billed")
        ordered, bought, sold = _traded(state, participant, start)
        if not chain.params.settle_all_reports and not ordered:
            raise Rejected(
                "not_billable", f"interval {start}: only intervals with orders are billed here"
            )
        if late and (bought or sold):
            raise Rejected(
                "not_billable",
                f"interval {start} had trades and the day was billed: a late report of it "
                "is recorded, not billed",
            )
        if sold:
            statement = state.get(keys.statement(participant, start))
            if not isinstance(statement, dict):
                raise Rejected(
                    "delivery_pending", f"interval {start}'s trades wait for their delivery"
                )
            delivered_total += int_of(statement, "delivered_wh")
        pair = (prices.import_price, prices.export_price)
        bought_at[pair] = bought_at.get(pair, 0) + bought
        bought_total += bought
    return _Traded(bought_at, bought_total, delivered_total)


def _record_bill(  # noqa: PLR0917 - one record from its parts
    state: Overlay,
    participant: str,
    day: int,
    body: Mapping[str, Value],
    lines: list[BillLine],
    amounts: Mapping[str, int],
    previous: Value | None,
    ctx: BlockContext,
) -> None:
    """Store ``bill/<participant>/<day>``; a later bill of the same day adds to it."""
    stored: dict[str, Value] = dict(body)
    by_price = {line.prices: line for line in lines}
    reasons = dict(amounts)
    bills = 1
    if isinstance(previous, dict):
        for name in BILL_SUMS:
            stored[name] = int_of(previous, name) + int_of(body, name)
        earlier = previous["by_price"]
        assert isinstance(earlier, list)
        for raw in earlier:
            line = BillLine.from_json(raw, "by_price")
            now = by_price.get(line.prices)
            by_price[line.prices] = (
                line
                if now is None
                else BillLine(
                    *line.prices,
                    line.import_wh + now.import_wh,
                    line.unused_wh + now.unused_wh,
                    line.export_wh + now.export_wh,
                )
            )
        old = previous["lines"]
        assert isinstance(old, dict)
        for why, delta in old.items():
            assert isinstance(delta, int)
            reasons[why] = reasons.get(why, 0) + delta
        bills += int_of(previous, "bills")
    stored.update(
        by_price=[by_price[pair].to_json() for pair in sorted(by_price)],
        lines=dict(sorted(reasons.items())),
        bills=bills,
        height=ctx.height,
    )
    state.put(keys.bill(participant, day), stored)


HANDLERS: Final[dict[TxType, Handler]] = {
    TxType.DELIVERY: _delivery,
    TxType.BILL: _bill,
}
