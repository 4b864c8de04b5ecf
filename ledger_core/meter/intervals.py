"""Interval reports: net energy per 15 minutes, aligned to the local clock, in whole Wh.

Boundaries are computed in the market's local time (an IANA zone, by default
``America/Mexico_City``): an interval starts where the local wall clock reads
a multiple of the interval length since local midnight. With 15-minute
intervals and every UTC offset in use today (all multiples of 15 minutes:
-06:00, +05:30, +05:45 ...) these are also multiples of 900 Unix seconds,
which is what the ledger checks (``misaligned_interval``); with hourly
intervals in a half-hour zone, local hours start at :30 UTC.

Energy arrives as spans (``accounting.Span``: whole mWh that accrued over
``[start, end]``). A span that crosses boundaries is split in proportion to
the time it spends in each interval; the shares are computed from cumulative
floors, so they are integers that add up to the span's exactly. Energy that
arrives for an interval already closed (a late counter difference) goes into
the first interval still open: it is reported late, never dropped.

An interval closes when the data passes its end (the accounting frontier), or
``report_delay`` seconds after its end by the clock, whichever comes first.
Intervals in which the meter had no data at all (the node was off and the
source has no lifetime counters) produce no report: the meter does not claim
to know them. Intervals before the first reading are never reported.

Rounding: each closed interval reports ``floor((carry + mWh) / 1000)`` Wh and
carries the rest (0-999 mWh) to the next, separately for import and export.
The reported Wh therefore never fall behind the measured energy by a whole
Wh, and over time nothing is lost: the sum of all reports plus the carry is
exactly the sum of the measured mWh.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final
from zoneinfo import ZoneInfo

from ledger_core.meter.accounting import Span
from ledger_core.meter.store import MeterStore

LOG: Final = logging.getLogger(__name__)
DEFAULT_TIMEZONE: Final = "America/Mexico_City"


class IntervalClock:
    """Interval boundaries of a given length in a given zone."""

    def __init__(self, timezone: str = DEFAULT_TIMEZONE, seconds: int = 900) -> None:
        if seconds <= 0 or 86400 % seconds:
            raise ValueError("the interval length must divide a day")
        self.zone = ZoneInfo(timezone)
        self.timezone = timezone
        self.seconds = seconds

    def _offset(self, t: float) -> int:
        offset = datetime.fromtimestamp(t, tz=self.zone).utcoffset()
        assert offset is not None
        return int(offset.total_seconds())

    def start_of(self, t: float) -> int:
        """The start (Unix seconds) of the interval holding instant ``t``."""
        whole = int(t // 1)
        offset = self._offset(whole)
        start = whole - (whole + offset) % self.seconds
        if self._offset(start) != offset:
            # The offset changed inside this interval: align on the earlier offset.
            earlier = self._offset(start)
            start = whole - (whole + earlier) % self.seconds
        return start

    def next_start(self, start: int) -> int:
        """The start of the interval after the one starting at ``start``."""
        candidate = start + self.seconds
        aligned = self.start_of(candidate)
        return aligned if start < aligned < candidate else candidate

    def pieces(self, begin: float, end: float) -> list[tuple[int, float]]:
        """``(interval start, seconds of [begin, end] inside it)`` for each interval touched."""
        start = self.start_of(begin)
        if end <= begin:
            return [(start, 0.0)]
        out: list[tuple[int, float]] = []
        while start < end:
            following = self.next_start(start)
            overlap = min(end, following) - max(begin, start)
            if overlap > 0:
                out.append((start, overlap))
            start = following
        return out

    def local(self, start: int) -> datetime:
        """The local wall-clock time of an interval start."""
        return datetime.fromtimestamp(start, tz=self.zone)


def split(total: int, weights: list[float]) -> list[int]:
    """Integers proportional to ``weights`` that add up to ``total`` exactly."""
    whole = sum(weights)
    if whole <= 0:
        return [total] + [0] * (len(weights) - 1)
    shares: list[int] = []
    running = 0.0
    given = 0
    for weight in weights:
        running += weight
        upto = total if running >= whole else int(total * running // whole)
        shares.append(upto - given)
        given = upto
    shares[-1] += total - given
    return shares


@dataclass(frozen=True, slots=True)
class IntervalReport:
    """What the meter reports for one interval (the ``report`` transaction's body)."""

    interval_start: int
    import_wh: int
    export_wh: int

    def body(self) -> dict[str, int]:
        return {
            "interval_start": self.interval_start,
            "import_wh": self.import_wh,
            "export_wh": self.export_wh,
        }


class Intervals:
    """Open intervals, closing and rounding; persisted in ``store``."""

    def __init__(self, store: MeterStore, clock: IntervalClock) -> None:
        self.store = store
        self.clock = clock
        state: dict[str, Any] = store.get("intervals") or {}
        self.first_open: int | None = state.get("first_open")
        self.carry_import: int = state.get("carry_import", 0)
        self.carry_export: int = state.get("carry_export", 0)
        row = store.db.execute(
            "SELECT interval_start, import_wh, export_wh FROM reports "
            "ORDER BY interval_start DESC LIMIT 1"
        ).fetchone()
        self.last_report: IntervalReport | None = IntervalReport(*row) if row else None

    def add(self, span: Span) -> None:
        """Spread a span's energy over the intervals it covers (and mark them metered)."""
        pieces = self.clock.pieces(span.start, span.end)
        if self.first_open is None:
            self.first_open = pieces[0][0]
        weights = [seconds for _, seconds in pieces]
        imports = split(span.import_mwh, weights)
        exports = split(span.export_mwh, weights)
        with self.store.transaction() as db:
            for (start, _), imp, exp in zip(pieces, imports, exports, strict=True):
                target = max(start, self.first_open)
                db.execute(
                    "INSERT INTO open_intervals (start, import_mwh, export_mwh) VALUES (?, ?, ?) "
                    "ON CONFLICT(start) DO UPDATE SET "
                    "import_mwh = import_mwh + excluded.import_mwh, "
                    "export_mwh = export_mwh + excluded.export_mwh",
                    (target, imp, exp),
                )
            self._save()

    def close_through(self, t: float) -> list[IntervalReport]:
        """Close every open interval that ends at or before ``t``; their reports, in order."""
        if self.first_open is None:
            return []
        limit = self.clock.start_of(t)
        if limit <= self.first_open:
            return []
        reports: list[IntervalReport] = []
        with self.store.transaction() as db:
            rows = db.execute(
                "SELECT start, import_mwh, export_mwh FROM open_intervals WHERE start < ? "
                "ORDER BY start",
                (limit,),
            ).fetchall()
            for start, imp, exp in rows:
                import_wh, self.carry_import = divmod(self.carry_import + imp, 1000)
                export_wh, self.carry_export = divmod(self.carry_export + exp, 1000)
                report = IntervalReport(start, import_wh, export_wh)
                db.execute(
                    "INSERT INTO reports (interval_start, import_wh, export_wh, import_mwh, "
                    "export_mwh, closed_at) VALUES (?, ?, ?, ?, ?, ?)",
                    (start, import_wh, export_wh, imp, exp, t),
                )
                reports.append(report)
            db.execute("DELETE FROM open_intervals WHERE start < ?", (limit,))
            self.first_open = limit
            self._save()
        if reports:
            self.last_report = reports[-1]
        return reports

    def open_energy(self) -> tuple[int, int]:
        """mWh imported and exported in intervals not yet closed."""
        row = self.store.db.execute(
            "SELECT COALESCE(SUM(import_mwh), 0), COALESCE(SUM(export_mwh), 0) FROM open_intervals"
        ).fetchone()
        return int(row[0]), int(row[1])

    def reports(self, since: int = 0, limit: int = 1000) -> list[IntervalReport]:
        """Closed intervals' reports from ``since`` on."""
        rows = self.store.db.execute(
            "SELECT interval_start, import_wh, export_wh FROM reports WHERE interval_start >= ? "
            "ORDER BY interval_start LIMIT ?",
            (since, limit),
        ).fetchall()
        return [IntervalReport(*row) for row in rows]

    def _save(self) -> None:
        self.store.put(
            "intervals",
            {
                "first_open": self.first_open,
                "carry_import": self.carry_import,
                "carry_export": self.carry_export,
            },
        )
