"""Energy accounting: readings in, monotonic lifetime import/export counters out.

Counters are integers in milli-watt-hours (mWh) per *channel*: ``net`` (the
sum over the phases at each instant, "balanced" like a bidirectional billing
meter: export on one phase offsets import on another) and ``1``, ``2``, ``3``
(each phase on its own). A home exporting 1 kW on phase 1 while importing 1 kW
on phase 2 moves no net energy, but per phase it imports and exports 1 kWh an
hour. Interval reports use **net**.

From power samples: between consecutive samples the power is taken as
linear (the trapezoid rule); where the line crosses zero the span is split at
the crossing, so the part above zero is import and the part below export, and
import minus export is exactly the trapezoid integral. Two samples further
apart than ``max_gap`` seconds are not integrated: that is a *gap*, counted
(``gaps``, ``gap_seconds``) and never guessed.

From counters: when a reading carries the source's own lifetime counters
(SmartPi over MQTT ``EcTot``/``EpTot``, Home Assistant energy sensors), their
differences drive that direction of the net channel from then on, and power
integration no longer does (no double counting); per-phase channels always
integrate power. A counter that goes down was reset or replaced: it is
re-based without adding anything (``resets``); a jump larger than
``max_power_w`` sustained since the last value is treated the same way.
Counters of the source cover the time the meter role was down: nothing is
lost across a restart of the node.

Counters are kept exactly as integer millijoules plus the fraction of one
(``Counter``), so rounding never loses energy and a constant power integrates
to exact mWh; the mWh integers stored beside them are their whole part.
Counters and the last sample are written in the same SQLite transaction as
everything else a reading changes (``store.py``); a restart continues from the
last sample, integrating across the restart when it took less than ``max_gap``.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import Any, Final

from ledger_core.meter.reading import Reading
from ledger_core.meter.store import MeterStore

LOG: Final = logging.getLogger(__name__)
CHANNELS: Final = ("net", "1", "2", "3")
DIRECTIONS: Final = ("import", "export")
MJ_PER_MWH: Final = 3600  # 1 mWh = 3.6 J


def trapezoid(p0: float, p1: float, seconds: float) -> tuple[float, float]:
    """Import and export (W s) of power varying linearly from ``p0`` to ``p1``."""
    if p0 >= 0 and p1 >= 0:
        return (p0 + p1) / 2 * seconds, 0.0
    if p0 <= 0 and p1 <= 0:
        return 0.0, -(p0 + p1) / 2 * seconds
    crossing = min(seconds, seconds * p0 / (p0 - p1))  # where the line is zero
    after = seconds - crossing
    if p0 > 0:
        return p0 * crossing / 2, -p1 * after / 2
    return p1 * after / 2, -p0 * crossing / 2


@dataclass
class Counter:
    """Lifetime import and export of one channel.

    Kept exactly as integer millijoules (1 mWh = 3600 mJ, so a constant power
    sampled at whole or half seconds adds exact integers) plus the fraction
    of a millijoule; the mWh counters are their whole part.
    """

    import_mj: int = 0
    export_mj: int = 0
    import_rest: float = 0.0
    export_rest: float = 0.0

    def add(self, direction: str, watt_seconds: float) -> int:
        """Add energy (W s, >= 0) to one direction; the whole mWh the counter grew by."""
        if not watt_seconds > 0:  # also refuses NaN
            return 0
        if direction == "import":
            before = self.import_mwh
            total = self.import_rest + watt_seconds * 1000
            whole = math.floor(total)
            self.import_mj += whole
            self.import_rest = total - whole
            return self.import_mwh - before
        before = self.export_mwh
        total = self.export_rest + watt_seconds * 1000
        whole = math.floor(total)
        self.export_mj += whole
        self.export_rest = total - whole
        return self.export_mwh - before

    @property
    def import_mwh(self) -> int:
        return self.import_mj // MJ_PER_MWH

    @property
    def export_mwh(self) -> int:
        return self.export_mj // MJ_PER_MWH

    @property
    def import_wh(self) -> float:
        return (self.import_mj + self.import_rest) / (MJ_PER_MWH * 1000)

    @property
    def export_wh(self) -> float:
        return (self.export_mj + self.export_rest) / (MJ_PER_MWH * 1000)


@dataclass(frozen=True, slots=True)
class Span:
    """Net energy (whole mWh) that accrued evenly, as far as is known, from ``start`` to ``end``."""

    start: float
    end: float
    import_mwh: int
    export_mwh: int


class Accountant:
    """Turns readings into counters, persisted in ``store``."""

    def __init__(
        self, store: MeterStore, *, max_gap: float = 30.0, max_power_w: float = 100_000.0
    ) -> None:
        self.store = store
        self.max_gap = max_gap
        self.max_power_w = max_power_w
        self.counters: dict[str, Counter] = {c: Counter() for c in CHANNELS}
        for channel, imp, exp, imp_rest, exp_rest in store.db.execute(
            "SELECT channel, import_mj, export_mj, import_rest, export_rest FROM counters"
        ):
            self.counters[channel] = Counter(imp, exp, imp_rest, exp_rest)
        state: dict[str, Any] = store.get("accounting") or {}
        self.last_time: float | None = state.get("last_time")
        self.last_power: dict[str, float] = state.get("last_power", {})
        # Per direction: the source's last lifetime counter value (Wh) and its time.
        self.source_counters: dict[str, list[float] | None] = state.get(
            "source_counters", dict.fromkeys(DIRECTIONS)
        )
        self.gaps: int = state.get("gaps", 0)
        self.gap_seconds: float = state.get("gap_seconds", 0.0)
        self.resets: int = state.get("resets", 0)

    def counter_driven(self, direction: str) -> bool:
        """Whether the net ``direction`` follows the source's lifetime counter."""
        return self.source_counters.get(direction) is not None

    @property
    def frontier(self) -> float | None:
        """The time up to which the net counters are final (all later energy is still to come)."""
        times: list[float] = []
        for direction in DIRECTIONS:
            counter = self.source_counters.get(direction)
            if counter is not None:
                times.append(counter[1])
            elif self.last_time is not None:
                times.append(self.last_time)
        return min(times) if times else None

    def add(self, reading: Reading) -> list[Span]:
        """Account one reading; the net energy it added, as spans of time."""
        spans: list[Span] = []
        t = reading.timestamp
        with self.store.transaction():
            for direction, value in (
                ("import", reading.import_wh_total),
                ("export", reading.export_wh_total),
            ):
                if value is not None:
                    span = self._counter(direction, value, t)
                    if span is not None:
                        spans.append(span)
            if reading.power is not None:
                span = self._power(reading, t)
                if span is not None:
                    spans.append(span)
            self._save()
        return spans

    def _counter(self, direction: str, value: float, t: float) -> Span | None:
        previous = self.source_counters.get(direction)
        self.source_counters[direction] = [value, t]
        if previous is None:
            LOG.info("net %s now follows the source's lifetime counter (%.3f Wh)", direction, value)
            return None
        last_value, last_time = previous
        seconds = t - last_time
        if seconds < 0:
            return None  # out of order: re-based on the newer value
        delta = value - last_value
        if delta < 0:
            self.resets += 1
            LOG.warning(
                "the source's %s counter went from %.3f to %.3f Wh: reset; re-based",
                direction,
                last_value,
                value,
            )
            return None
        # The source updates its counters on its own schedule (the SmartPi each minute).
        plausible = self.max_power_w * (max(seconds, 60.0) + 60.0) / 3600
        if delta > plausible:
            self.resets += 1
            LOG.warning(
                "the source's %s counter jumped by %.0f Wh in %.0f s: not plausible; re-based",
                direction,
                delta,
                seconds,
            )
            return None
        whole = self.counters["net"].add(direction, delta * 3600)
        if seconds == 0 and whole == 0:
            return None
        imp, exp = (whole, 0) if direction == "import" else (0, whole)
        return Span(last_time, t, imp, exp)

    def _power(self, reading: Reading, t: float) -> Span | None:
        powers: dict[str, float] = {"net": reading.power} if reading.power is not None else {}
        for phase in reading.phases:
            if phase.power is not None:
                powers[str(phase.phase)] = phase.power
        last_time, last_power = self.last_time, self.last_power
        if last_time is not None and t == last_time:
            return None  # the same sample again
        self.last_time, self.last_power = t, powers
        if last_time is None or t < last_time:
            return None  # the first sample, or the clock went back: start afresh
        seconds = t - last_time
        if seconds > self.max_gap:
            self.gaps += 1
            self.gap_seconds += seconds
            LOG.info("no reading for %.0f s (more than %.0f s): a gap", seconds, self.max_gap)
            return None
        span: Span | None = None
        for channel, power in powers.items():
            if channel not in last_power:
                continue
            imp, exp = trapezoid(last_power[channel], power, seconds)
            counter = self.counters[channel]
            if channel != "net":
                counter.add("import", imp)
                counter.add("export", exp)
                continue
            whole_import = 0 if self.counter_driven("import") else counter.add("import", imp)
            whole_export = 0 if self.counter_driven("export") else counter.add("export", exp)
            span = Span(last_time, t, whole_import, whole_export)
        return span

    def _save(self) -> None:
        self.store.db.executemany(
            "INSERT INTO counters (channel, import_mwh, export_mwh, import_mj, export_mj, "
            "import_rest, export_rest) VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT(channel) DO "
            "UPDATE SET import_mwh = excluded.import_mwh, export_mwh = excluded.export_mwh, "
            "import_mj = excluded.import_mj, export_mj = excluded.export_mj, "
            "import_rest = excluded.import_rest, export_rest = excluded.export_rest",
            [
                (
                    name,
                    c.import_mwh,
                    c.export_mwh,
                    c.import_mj,
                    c.export_mj,
                    c.import_rest,
                    c.export_rest,
                )
                for name, c in self.counters.items()
            ],
        )
        self.store.put(
            "accounting",
            {
                "last_time": self.last_time,
                "last_power": self.last_power,
                "source_counters": self.source_counters,
                "gaps": self.gaps,
                "gap_seconds": self.gap_seconds,
                "resets": self.resets,
            },
        )
