"""What the demo shows: a ledger-event collector, the live lines and the summary.

:class:`DemoLedger` folds the chain's events (every node sees the same) and the
homes' contract actions (each home's own) into per-interval rows; the demo
prints one line per interval as it completes and, at the end, a settlement
summary. :func:`summary_json` is the machine-readable form ``--json`` prints.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any, Final, TextIO

PRICE_UNIT: Final = Decimal(10_000)


def mxn_kwh(price: int | None) -> str:
    """10^-4 MXN/kWh as ``2.4500``-style MXN/kWh text."""
    return "   -  " if price is None else f"{Decimal(price) / PRICE_UNIT:6.2f}"


def pesos(centavos: int) -> str:
    """Centavos as signed pesos."""
    sign = "-" if centavos < 0 else "+"
    return f"{sign}{abs(centavos) // 100:,}.{abs(centavos) % 100:02d}"


@dataclass
class IntervalRow:
    """What happened in one 15-minute interval."""

    start: int
    import_price: int | None = None
    export_price: int | None = None
    clearing_price: int | None = None
    traded_wh: int = 0
    trades: int = 0
    reports: int = 0  # committed (commitments: the readings stay off the chain)
    settled: bool = False
    dr_level: int = 0
    actions: list[str] = field(default_factory=list)


@dataclass
class DemoLedger:
    """Everything the demo reports, folded from events."""

    names: dict[str, str]  # participant or meter address -> home name
    utc_offset_minutes: int = -360
    interval_seconds: int = 900
    rows: dict[int, IntervalRow] = field(default_factory=dict)
    deposits: int = 0
    deposited: dict[str, int] = field(default_factory=dict)  # by participant
    withdrawals: int = 0
    trades: int = 0
    traded_wh: int = 0
    events: int = 0
    heights: set[int] = field(default_factory=set)
    actions: list[dict[str, Any]] = field(default_factory=list)
    settlements: int = 0
    bills: list[tuple[str, int]] = field(default_factory=list)  # (participant, day)
    dr_events: dict[str, dict[str, Any]] = field(default_factory=dict)

    def row(self, start: int) -> IntervalRow:
        """The row of the interval starting at ``start`` (created on demand)."""
        start -= start % self.interval_seconds
        if start not in self.rows:
            self.rows[start] = IntervalRow(start)
        return self.rows[start]

    def local(self, seconds: int) -> datetime:
        """Unix seconds as local civil time."""
        return (
            datetime.fromtimestamp(seconds, tz=UTC) + timedelta(minutes=self.utc_offset_minutes)
        ).replace(tzinfo=None)

    def on_event(self, height: int, event: dict[str, Any]) -> None:
        """Fold one ledger event."""
        self.events += 1
        self.heights.add(height)
        kind = event.get("type")
        if kind == "price_signal":
            row = self.row(int(event["interval_start"]))
            row.import_price = int(event["import_price"])
            row.export_price = int(event["export_price"])
        elif kind == "interval_report":
            self.row(int(event["interval_start"])).reports += 1
        elif kind == "interval_cleared":
            row = self.row(int(event["interval_start"]))
            price = event.get("price")
            row.clearing_price = price if isinstance(price, int) else None
        elif kind == "trade":
            row = self.row(int(event["interval_start"]))
            energy = int(event["energy_wh"])
            row.traded_wh += energy
            row.trades += 1
            self.trades += 1
            self.traded_wh += energy
        elif kind == "wallet_change":
            if event.get("why") == "deposit":
                self.deposits += int(event["delta"])
                who = str(event["participant"])
                self.deposited[who] = self.deposited.get(who, 0) + int(event["delta"])
        elif kind == "withdrawal_paid":
            self.withdrawals += int(event["amount"])
        elif kind == "settlement":
            self.settlements += 1
        elif kind == "interval_settled":
            self.row(int(event["interval_start"])).settled = True
        elif kind == "bill":
            self.bills.append((str(event["participant"]), int(event["day"])))
        elif kind == "dr_event":
            self.dr_events[str(event["event_id"])] = event

    def on_action(self, home: str, action: dict[str, Any], result: str) -> None:
        """Fold one contract action a home took."""
        record = {"home": home, **action, "result": result}
        self.actions.append(record)
        row = self.row(int(action["time"]))
        what = action.get("device") or action.get("action")
        verb = str(action["action"]).replace("_", " ")
        row.actions.append(f"{home} {verb} {what if what != action['action'] else ''}".strip())

    def dr_level_at(self, moment: int) -> int:
        """The highest SIMPLE level in force at ``moment`` (for display)."""
        level = 0
        for event in self.dr_events.values():
            if event.get("cancelled"):
                continue
            start, duration = int(event["start"]), int(event["duration"])
            if start <= moment < start + duration:
                signal = event.get("signal", {})
                level = max(level, int(signal.get("level", 1)) if isinstance(signal, dict) else 1)
        return level

    def line(self, start: int) -> str:
        """The live line for one interval."""
        row = self.row(start)
        clock = self.local(start).strftime("%H:%M")
        dr = self.dr_level_at(start)
        clearing = mxn_kwh(row.clearing_price) if row.clearing_price is not None else "   -  "
        actions = "; ".join(row.actions[:4]) + (" ..." if len(row.actions) > 4 else "")
        return (
            f"{clock}  import {mxn_kwh(row.import_price)} export {mxn_kwh(row.export_price)}"
            f"  clear {clearing}  traded {row.traded_wh:5d} Wh"
            f"  DR {dr if dr else '-'}  {actions}"
        )


def header() -> str:
    """The column titles of the live lines (prices in MXN/kWh)."""
    return "time   prices MXN/kWh                       market                    DR  actions"


def write_summary(
    ledger: DemoLedger, homes: list[tuple[str, str]], final: dict[str, int], out: TextIO
) -> None:
    """The settlement summary: each home's balance change (``final``: balance plus
    holds minus debt, read from the node at the end), split into what it paid in
    (deposits) and what the market paid it or cost it (energy bought and sold, fees,
    imports and exports at the tariff); totals and the check."""
    out.write("\nSettlement summary (MXN)\n")
    out.write(
        f"{'home':<10} {'address':<16} {'deposits':>12} {'market':>12} {'balance change':>15}\n"
    )
    for name, address in homes:
        change = final.get(address, 0)
        paid_in = ledger.deposited.get(address, 0)
        out.write(
            f"{name:<10} {address[:14] + '..':<16} {pesos(paid_in):>12} "
            f"{pesos(change - paid_in):>12} {pesos(change):>15}\n"
        )
    total = sum(final.values())
    out.write(f"{'all accounts':<55} {pesos(total):>15}\n")
    out.write(f"{'net deposits':<55} {pesos(ledger.deposits - ledger.withdrawals):>15}\n")
    out.write(
        f"trades {ledger.trades}, traded {ledger.traded_wh} Wh, "
        f"contract actions {len(ledger.actions)}, blocks {len(ledger.heights)}\n"
    )


def summary_json(
    ledger: DemoLedger,
    homes: list[tuple[str, str]],
    final: dict[str, int],
    *,
    intervals: int,
    blocks: int,
    transactions: int,
) -> dict[str, Any]:
    """The ``--json`` summary."""
    return {
        "intervals": intervals,
        "blocks": blocks,
        "transactions": transactions,
        "trades": ledger.trades,
        "traded_wh": ledger.traded_wh,
        "homes": [
            {
                "name": name,
                "address": address,
                "balance_change": final.get(address, 0),
                "deposits": ledger.deposited.get(address, 0),
                "market": final.get(address, 0) - ledger.deposited.get(address, 0),
            }
            for name, address in homes
        ],
        "balance_changes_total": sum(final.values()),
        "net_deposits": ledger.deposits - ledger.withdrawals,
        "settlements": ledger.settlements,
        "bills": len(ledger.bills),
        "contract_actions": [
            {
                "home": a["home"],
                "time": a["time"],
                "contract": a["short_id"],
                "action": a["action"],
                "device": a.get("device"),
                "reason": a["reason"],
                "trigger": a["trigger"],
                "result": a["result"],
            }
            for a in ledger.actions
        ],
    }
