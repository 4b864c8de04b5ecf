"""A home's readings on disk: per minute, per 15-minute interval, per day.

One SQLite file (``analytics.db`` in the node's home), integers only, kept small
enough for a Raspberry Pi's SD card by a fixed retention ladder:

=============  ===========================================  ===================
resolution     what a row holds                             kept
=============  ===========================================  ===================
minute         mean import, export and PV power (W); one    14 days
               row per appliance channel and minute
15 minutes     import, export, PV energy (Wh), minutes of   3 years (1,096 days)
               data behind it, source (minutes or report);
               appliance energy (Wh); temperature (0.1 °C)
day            import, export, PV energy (Wh) per local     forever
               calendar day; appliance energy per day
=============  ===========================================  ===================

Writes keep the ladder consistent as they go: adding minutes recomputes the
15-minute rows they fall in, so a 15-minute row always exists for data that is
still kept per minute. A meter's signed interval report (``add_intervals``) is
authoritative: minutes never overwrite a row that came from a report.
:meth:`ReadingStore.compact` applies retention -- drops minutes older than 14
days, folds 15-minute rows older than three years (cut at a local midnight)
into day rows, drops them, and returns freed pages to the file system
(``auto_vacuum = INCREMENTAL``). Call it once a day; it is idempotent.

Sizes measured by ``bench/analytics.py`` are in ``docs/analytics.md``.

All times are Unix seconds; a minute row's ``t`` is a multiple of 60, an
interval's a multiple of 900. Queries take half-open ranges ``[start, end)``.
"""

from __future__ import annotations

import contextlib
import math
import re
import sqlite3
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import Concatenate, Final, Literal, Self

import numpy as np

from ledger_core.analytics.localtime import (
    DAY,
    SLOT,
    FloatArray,
    IntArray,
    local_midnight,
    local_times,
    utc_offsets,
    whole,
)
from ledger_core.node.files import private_file

SCHEMA_VERSION: Final = 1
MAX_TIME: Final = 2**40
MAX_POWER_W: Final = 1_000_000  # 1 MW: far above any home
MAX_ENERGY_WH: Final = MAX_POWER_W // 4  # the most 1 MW delivers in 15 minutes
CHANNEL_RE: Final = re.compile(r"[^\x00-\x1f\x7f]{1,64}")

type Resolution = Literal["15m", "1h", "1d"]
RESOLUTIONS: Final[tuple[Resolution, ...]] = ("15m", "1h", "1d")

_SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS minute (
    t INTEGER PRIMARY KEY,
    import_w INTEGER NOT NULL,
    export_w INTEGER NOT NULL,
    pv_w INTEGER
);
CREATE TABLE IF NOT EXISTS interval (
    t INTEGER PRIMARY KEY,
    import_wh INTEGER NOT NULL,
    export_wh INTEGER NOT NULL,
    pv_wh INTEGER,
    minutes INTEGER NOT NULL,
    src INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS day (
    day INTEGER PRIMARY KEY,
    import_wh INTEGER NOT NULL,
    export_wh INTEGER NOT NULL,
    pv_wh INTEGER,
    intervals INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS weather (t INTEGER PRIMARY KEY, temp_dc INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS channel (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE);
CREATE TABLE IF NOT EXISTS channel_minute (
    channel INTEGER NOT NULL, t INTEGER NOT NULL, w INTEGER NOT NULL,
    PRIMARY KEY (channel, t)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS channel_interval (
    channel INTEGER NOT NULL, t INTEGER NOT NULL, wh INTEGER NOT NULL, src INTEGER NOT NULL,
    PRIMARY KEY (channel, t)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS channel_day (
    channel INTEGER NOT NULL, day INTEGER NOT NULL, wh INTEGER NOT NULL,
    PRIMARY KEY (channel, day)
) WITHOUT ROWID;
"""

# Recompute the 15-minute rows that minutes in [?, ?) fall into; reports win.
_FOLD_MINUTES: Final = """
INSERT INTO interval (t, import_wh, export_wh, pv_wh, minutes, src)
SELECT (t / 900) * 900, (SUM(import_w) + 30) / 60, (SUM(export_w) + 30) / 60,
       (SUM(pv_w) + 30) / 60, COUNT(*), 0
FROM minute WHERE t >= ? AND t < ? GROUP BY t / 900
ON CONFLICT (t) DO UPDATE SET import_wh = excluded.import_wh, export_wh = excluded.export_wh,
    pv_wh = excluded.pv_wh, minutes = excluded.minutes
WHERE interval.src = 0
"""
_FOLD_CHANNEL_MINUTES: Final = """
INSERT INTO channel_interval (channel, t, wh, src)
SELECT channel, (t / 900) * 900, (SUM(w) + 30) / 60, 0
FROM channel_minute WHERE t >= ? AND t < ? GROUP BY channel, t / 900
ON CONFLICT (channel, t) DO UPDATE SET wh = excluded.wh WHERE channel_interval.src = 0
"""


class ReadingError(ValueError):
    """A reading that cannot be stored: ``field`` names what is wrong."""

    def __init__(self, field: str, message: str) -> None:
        self.field = field
        self.message = message
        super().__init__(f"{field}: {message}")


@dataclass(frozen=True, slots=True)
class Minute:
    """One minute at the grid connection: mean power over the minute, in W.

    ``pv_w`` is the PV inverter's output when it is measured; ``channels`` the
    mean power of appliances that have their own sensor (name -> W).
    """

    t: int
    import_w: int
    export_w: int
    pv_w: int | None = None
    channels: Mapping[str, int] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Interval:
    """One 15-minute interval in Wh, e.g. from the meter's signed interval report."""

    t: int
    import_wh: int
    export_wh: int
    pv_wh: int | None = None
    channels: Mapping[str, int] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Retention:
    """How long each resolution is kept (days); day rows are kept forever."""

    minute_days: int = 14
    interval_days: int = 1096

    def __post_init__(self) -> None:
        if not 1 <= self.minute_days <= self.interval_days:
            raise ValueError("minute_days: must be at least 1 and at most interval_days")
        if self.interval_days > 36_500:
            raise ValueError("interval_days: must be at most 36,500")


@dataclass(frozen=True, slots=True)
class Compaction:
    """What :meth:`ReadingStore.compact` did."""

    minutes_removed: int
    intervals_removed: int
    days_written: int
    bytes_before: int
    bytes_after: int


@dataclass(frozen=True, slots=True)
class Series:
    """15-minute rows on a dense grid ``t`` (NaN where nothing is stored).

    ``consumption`` is what the home used and ``production`` what it generated,
    as far as the meters show them (:func:`consumption_wh`).
    """

    t: IntArray
    import_wh: FloatArray
    export_wh: FloatArray
    pv_wh: FloatArray
    temperature: FloatArray
    minutes: IntArray

    def rows(self, start: int, end: int | None = None) -> Series:
        """The rows from index ``start`` up to (not including) ``end`` (the last one when
        None), as a series; indices count as in a Python slice."""
        return Series(
            self.t[start:end],
            self.import_wh[start:end],
            self.export_wh[start:end],
            self.pv_wh[start:end],
            self.temperature[start:end],
            self.minutes[start:end],
        )

    @property
    def consumption(self) -> FloatArray:
        result: FloatArray = np.where(
            np.isnan(self.pv_wh),
            self.import_wh,
            np.maximum(self.import_wh - self.export_wh + self.pv_wh, 0.0),
        )
        return result

    @property
    def production(self) -> FloatArray:
        result: FloatArray = np.where(np.isnan(self.pv_wh), self.export_wh, self.pv_wh)
        return result

    @property
    def has_pv(self) -> bool:
        """Whether any PV production is stored in the range."""
        return bool(np.any(~np.isnan(self.pv_wh)))


def consumption_wh(import_wh: int, export_wh: int, pv_wh: int | None) -> int:
    """What a home used, from its grid meter's import and export and, when it is measured,
    its PV production.

    With PV measured: import - export + PV (never below 0; the two meters' clocks may
    differ a little). Without it, the grid meter is a net meter: it sees what came from
    the grid and what went to it, not the PV the home used itself. The home used at least
    what it imported (exactly that when it has no PV), so that is its consumption, and
    what it exported is the production seen (:attr:`Series.production`): the two still
    differ by the net import. Import - export would make an exporting home's
    consumption negative.
    """
    if pv_wh is None:
        return import_wh
    return max(import_wh - export_wh + pv_wh, 0)


def _int(value: object, name: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise ReadingError(name, "must be an integer")
    if not low <= value <= high:
        raise ReadingError(name, f"must be between {low} and {high}")
    return value


def _time(value: object, name: str, step: int) -> int:
    t = _int(value, name, 0, MAX_TIME)
    if t % step:
        raise ReadingError(name, f"must be a multiple of {step} seconds")
    return t


def _channels(channels: Mapping[str, int], name: str, high: int) -> dict[str, int]:
    checked: dict[str, int] = {}
    for key, value in channels.items():
        untrusted: object = key  # names come from sensors and clients
        if not isinstance(untrusted, str) or not CHANNEL_RE.fullmatch(untrusted):
            raise ReadingError(name, f"channel name {key!r} must be 1-64 printable characters")
        checked[key] = _int(value, f"{name}.{key}", 0, high)
    return checked


def _serialised[**P, R](
    method: Callable[Concatenate[ReadingStore, P], R],
) -> Callable[Concatenate[ReadingStore, P], R]:
    """Run a method under the store's lock: the API thread and worker threads share it."""

    def locked(self: ReadingStore, /, *args: P.args, **kwargs: P.kwargs) -> R:
        with self._lock:
            return method(self, *args, **kwargs)

    locked.__doc__ = method.__doc__
    locked.__name__ = method.__name__
    return locked


class ReadingStore:
    """Readings of one home in a SQLite file (see the module docstring).

    Safe to share between threads: every public method holds the store's lock.
    """

    def __init__(self, path: Path, retention: Retention | None = None) -> None:
        self.path = path
        self.retention = retention or Retention()
        self._lock = threading.RLock()
        self._db = sqlite3.connect(
            private_file(path), isolation_level=None, check_same_thread=False
        )
        try:
            version = self._open()
        except BaseException:
            self._db.close()
            raise
        if version != str(SCHEMA_VERSION):
            self._db.close()
            raise ValueError(f"{path}: analytics schema {version}, expected {SCHEMA_VERSION}")
        self._channel_ids: dict[str, int] = dict(
            self._db.execute("SELECT name, id FROM channel").fetchall()
        )

    def _open(self) -> str:
        """Set the database up; the schema version it holds."""
        # auto_vacuum only takes effect before the first table is created.
        self._db.execute("PRAGMA auto_vacuum = INCREMENTAL")
        self._db.execute("PRAGMA journal_mode = WAL")
        self._db.execute("PRAGMA synchronous = NORMAL")
        self._db.executescript(_SCHEMA)
        self._db.execute(
            "INSERT OR IGNORE INTO meta (key, value) VALUES ('schema', ?)", (str(SCHEMA_VERSION),)
        )
        return str(self._db.execute("SELECT value FROM meta WHERE key = 'schema'").fetchone()[0])

    # -- lifecycle ------------------------------------------------------------------

    @_serialised
    def close(self) -> None:
        """Close the database."""
        self._db.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield self._db
        except BaseException:
            self._db.execute("ROLLBACK")
            raise
        self._db.execute("COMMIT")

    def _channel_id(self, name: str) -> int:
        channel = self._channel_ids.get(name)
        if channel is None:
            cursor = self._db.execute("INSERT INTO channel (name) VALUES (?)", (name,))
            assert cursor.lastrowid is not None
            channel = self._channel_ids[name] = cursor.lastrowid
        return channel

    # -- writes ---------------------------------------------------------------------

    @_serialised
    def add_minutes(self, rows: Iterable[Minute]) -> int:
        """Store (or replace) minute readings and refresh their 15-minute rows.

        All or nothing: a bad reading raises :class:`ReadingError` naming it
        (``minutes[i].field``) and nothing is written. Returns how many were stored.
        """
        checked: list[tuple[int, int, int, int | None, dict[str, int]]] = []
        for i, row in enumerate(rows):
            name = f"minutes[{i}]"
            pv = None if row.pv_w is None else _int(row.pv_w, f"{name}.pv_w", 0, MAX_POWER_W)
            checked.append(
                (
                    _time(row.t, f"{name}.t", 60),
                    _int(row.import_w, f"{name}.import_w", 0, MAX_POWER_W),
                    _int(row.export_w, f"{name}.export_w", 0, MAX_POWER_W),
                    pv,
                    _channels(row.channels, f"{name}.channels", MAX_POWER_W),
                )
            )
        if not checked:
            return 0
        with self._transaction() as db:
            db.executemany(
                "INSERT OR REPLACE INTO minute (t, import_w, export_w, pv_w) VALUES (?, ?, ?, ?)",
                [row[:4] for row in checked],
            )
            channel_rows = [
                (self._channel_id(name), row[0], watts)
                for row in checked
                for name, watts in row[4].items()
            ]
            db.executemany(
                "INSERT OR REPLACE INTO channel_minute (channel, t, w) VALUES (?, ?, ?)",
                channel_rows,
            )
            for start, end in _slot_runs(sorted({row[0] // SLOT for row in checked})):
                db.execute(_FOLD_MINUTES, (start, end))
                if channel_rows:
                    db.execute(_FOLD_CHANNEL_MINUTES, (start, end))
        return len(checked)

    @_serialised
    def add_intervals(self, rows: Iterable[Interval]) -> int:
        """Store 15-minute energies from an authoritative source (the meter's report).

        They replace rows computed from minutes, and later minutes do not change
        them. All or nothing, like :meth:`add_minutes`.
        """
        checked: list[tuple[int, int, int, int | None, dict[str, int]]] = []
        for i, row in enumerate(rows):
            name = f"intervals[{i}]"
            pv = None if row.pv_wh is None else _int(row.pv_wh, f"{name}.pv_wh", 0, MAX_ENERGY_WH)
            checked.append(
                (
                    _time(row.t, f"{name}.t", SLOT),
                    _int(row.import_wh, f"{name}.import_wh", 0, MAX_ENERGY_WH),
                    _int(row.export_wh, f"{name}.export_wh", 0, MAX_ENERGY_WH),
                    pv,
                    _channels(row.channels, f"{name}.channels", MAX_ENERGY_WH),
                )
            )
        if not checked:
            return 0
        with self._transaction() as db:
            db.executemany(
                "INSERT OR REPLACE INTO interval (t, import_wh, export_wh, pv_wh, minutes, src)"
                " VALUES (?, ?, ?, ?, 15, 1)",
                [row[:4] for row in checked],
            )
            db.executemany(
                "INSERT OR REPLACE INTO channel_interval (channel, t, wh, src) VALUES (?, ?, ?, 1)",
                [
                    (self._channel_id(name), row[0], wh)
                    for row in checked
                    for name, wh in row[4].items()
                ],
            )
        return len(checked)

    @_serialised
    def add_temperatures(self, rows: Iterable[tuple[int, float]]) -> int:
        """Store air temperatures (°C) per 15-minute interval, observed or forecast."""
        checked: list[tuple[int, int]] = []
        for i, (t, value) in enumerate(rows):
            name = f"temperatures[{i}]"
            celsius: object = value
            if isinstance(celsius, bool) or not isinstance(celsius, int | float):
                raise ReadingError(f"{name}.celsius", "must be a finite number")
            if not math.isfinite(celsius):
                raise ReadingError(f"{name}.celsius", "must be a finite number")
            if not -60.0 <= celsius <= 60.0:
                raise ReadingError(f"{name}.celsius", "must be between -60 and 60")
            checked.append((_time(t, f"{name}.t", SLOT), round(celsius * 10)))
        with self._transaction() as db:
            db.executemany("INSERT OR REPLACE INTO weather (t, temp_dc) VALUES (?, ?)", checked)
        return len(checked)

    # -- retention ------------------------------------------------------------------

    @_serialised
    def compact(self, now: int, timezone: str) -> Compaction:
        """Apply the retention ladder as of ``now`` (days are local to ``timezone``)."""
        before = self.size_bytes()
        minute_cut = now - self.retention.minute_days * DAY
        interval_cut = local_midnight(now - self.retention.interval_days * DAY, timezone)
        with self._transaction() as db:
            minutes = db.execute("DELETE FROM minute WHERE t < ?", (minute_cut,)).rowcount
            minutes += db.execute("DELETE FROM channel_minute WHERE t < ?", (minute_cut,)).rowcount
            old = db.execute(
                "SELECT t, import_wh, export_wh, pv_wh FROM interval WHERE t < ? ORDER BY t",
                (interval_cut,),
            ).fetchall()
            days_written = self._fold_days(db, old, timezone)
            removed = db.execute("DELETE FROM interval WHERE t < ?", (interval_cut,)).rowcount
            old_channels = db.execute(
                "SELECT channel, t, wh FROM channel_interval WHERE t < ?", (interval_cut,)
            ).fetchall()
            self._fold_channel_days(db, old_channels, timezone)
            db.execute("DELETE FROM channel_interval WHERE t < ?", (interval_cut,))
            db.execute("DELETE FROM weather WHERE t < ?", (interval_cut,))
        # Each step of the pragma frees one page: run it to the end.
        self._db.execute("PRAGMA incremental_vacuum").fetchall()
        self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        return Compaction(minutes, removed, days_written, before, self.size_bytes())

    @staticmethod
    def _fold_days(
        db: sqlite3.Connection, rows: list[tuple[int, int, int, int | None]], timezone: str
    ) -> int:
        if not rows:
            return 0
        times = np.fromiter((row[0] for row in rows), dtype=np.int64, count=len(rows))
        days = local_times(times, timezone) // DAY
        totals: dict[int, list[int | None]] = {}
        for (_, imp, exp, pv), day in zip(rows, whole(days), strict=True):
            total = totals.setdefault(day, [0, 0, None, 0])
            total[0] = (total[0] or 0) + imp
            total[1] = (total[1] or 0) + exp
            if pv is not None:
                total[2] = (total[2] or 0) + pv
            total[3] = (total[3] or 0) + 1
        db.executemany(
            "INSERT INTO day (day, import_wh, export_wh, pv_wh, intervals) VALUES (?, ?, ?, ?, ?)"
            " ON CONFLICT (day) DO UPDATE SET import_wh = import_wh + excluded.import_wh,"
            " export_wh = export_wh + excluded.export_wh,"
            " pv_wh = CASE WHEN excluded.pv_wh IS NULL THEN pv_wh"
            " ELSE COALESCE(pv_wh, 0) + excluded.pv_wh END,"
            " intervals = intervals + excluded.intervals",
            [(day, *total) for day, total in totals.items()],
        )
        return len(totals)

    @staticmethod
    def _fold_channel_days(
        db: sqlite3.Connection, rows: list[tuple[int, int, int]], timezone: str
    ) -> None:
        if not rows:
            return
        times = np.fromiter((row[1] for row in rows), dtype=np.int64, count=len(rows))
        days = local_times(times, timezone) // DAY
        totals: dict[tuple[int, int], int] = {}
        for (channel, _, wh), day in zip(rows, whole(days), strict=True):
            totals[channel, day] = totals.get((channel, day), 0) + wh
        db.executemany(
            "INSERT INTO channel_day (channel, day, wh) VALUES (?, ?, ?)"
            " ON CONFLICT (channel, day) DO UPDATE SET wh = wh + excluded.wh",
            [(channel, day, wh) for (channel, day), wh in totals.items()],
        )

    # -- reads ----------------------------------------------------------------------

    @_serialised
    def size_bytes(self) -> int:
        """Bytes the database's pages take (the WAL file not included)."""
        pages = self._db.execute("PRAGMA page_count").fetchone()[0]
        size = self._db.execute("PRAGMA page_size").fetchone()[0]
        return int(pages) * int(size)

    @_serialised
    def count(self, table: Literal["minute", "interval", "day", "channel_minute"]) -> int:
        """Rows in one of the tables (for tests, benchmarks and the status page)."""
        return int(self._db.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0])  # noqa: S608

    @_serialised
    def channels(self) -> list[str]:
        """Names of the appliance channels ever stored, in order of first appearance."""
        return [name for (name,) in self._db.execute("SELECT name FROM channel ORDER BY id")]

    @_serialised
    def last_interval(self) -> int | None:
        """Start of the newest 15-minute row, if any."""
        row = self._db.execute("SELECT MAX(t) FROM interval").fetchone()
        return None if row[0] is None else int(row[0])

    @_serialised
    def first_interval(self) -> int | None:
        """Start of the oldest 15-minute row, if any."""
        row = self._db.execute("SELECT MIN(t) FROM interval").fetchone()
        return None if row[0] is None else int(row[0])

    @_serialised
    def minutes(self, start: int, end: int) -> list[Minute]:
        """Minute rows with ``start <= t < end`` (appliance channels included)."""
        names = {channel: name for name, channel in self._channel_ids.items()}
        channels: dict[int, dict[str, int]] = {}
        for channel, t, watts in self._db.execute(
            "SELECT channel, t, w FROM channel_minute WHERE t >= ? AND t < ?", (start, end)
        ):
            channels.setdefault(t, {})[names[channel]] = watts
        return [
            Minute(t, imp, exp, pv, channels.get(t, {}))
            for t, imp, exp, pv in self._db.execute(
                "SELECT t, import_w, export_w, pv_w FROM minute WHERE t >= ? AND t < ? ORDER BY t",
                (start, end),
            )
        ]

    @_serialised
    def series(self, start: int, end: int) -> Series:
        """15-minute rows on the grid ``start, start + 900, ... < end`` (start aligned down)."""
        start -= start % SLOT
        n = max(0, -(-(end - start) // SLOT))
        t = start + SLOT * np.arange(n, dtype=np.int64)
        values = np.full((4, n), np.nan)
        minutes = np.zeros(n, dtype=np.int64)
        rows = self._db.execute(
            "SELECT t, import_wh, export_wh, pv_wh, minutes FROM interval"
            " WHERE t >= ? AND t < ? ORDER BY t",
            (start, end),
        ).fetchall()
        if rows:
            data = np.array([[np.nan if v is None else v for v in row] for row in rows])
            index = ((data[:, 0].astype(np.int64) - start) // SLOT).astype(np.int64)
            values[0:3, index] = data[:, 1:4].T
            minutes[index] = data[:, 4].astype(np.int64)
        weather = self._db.execute(
            "SELECT t, temp_dc FROM weather WHERE t >= ? AND t < ?", (start, end)
        ).fetchall()
        if weather:
            data = np.array(weather, dtype=np.int64)
            values[3, (data[:, 0] - start) // SLOT] = data[:, 1] / 10.0
        return Series(t, values[0], values[1], values[2], values[3], minutes)

    @_serialised
    def temperatures(self, start: int, end: int) -> dict[int, float]:
        """Stored temperatures (°C) by interval start, ``start <= t < end``."""
        return {
            t: temp_dc / 10.0
            for t, temp_dc in self._db.execute(
                "SELECT t, temp_dc FROM weather WHERE t >= ? AND t < ? ORDER BY t", (start, end)
            )
        }

    @_serialised
    def channel_series(self, name: str, start: int, end: int) -> FloatArray:
        """An appliance's 15-minute energy (Wh) on the grid of :meth:`series`, NaN if absent."""
        start -= start % SLOT
        n = max(0, -(-(end - start) // SLOT))
        values = np.full(n, np.nan)
        channel = self._channel_ids.get(name)
        if channel is None:
            return values
        rows = self._db.execute(
            "SELECT t, wh FROM channel_interval WHERE channel = ? AND t >= ? AND t < ?",
            (channel, start, end),
        ).fetchall()
        if rows:
            data = np.array(rows, dtype=np.int64)
            values[(data[:, 0] - start) // SLOT] = data[:, 1]
        return values

    @_serialised
    def history(
        self, start: int, end: int, resolution: Resolution, timezone: str
    ) -> list[dict[str, object]]:
        """Energy per 15 minutes, local hour or local day over ``[start, end)``.

        Each row: ``start`` (Unix seconds), ``import_wh``, ``export_wh``,
        ``pv_wh`` (None when PV is not measured), ``consumption_wh``,
        ``intervals`` (15-minute rows behind the row; 96 make a complete day)
        and ``appliances`` (name -> Wh) when appliance channels have data. Day
        rows combine the kept 15-minute rows with the day table for older days.
        """
        if resolution not in RESOLUTIONS:
            raise ValueError(f"resolution: must be one of {', '.join(RESOLUTIONS)}")
        rows = self._db.execute(
            "SELECT t, import_wh, export_wh, pv_wh FROM interval WHERE t >= ? AND t < ? ORDER BY t",
            (start, end),
        ).fetchall()
        names = {channel: name for name, channel in self._channel_ids.items()}
        channel_rows = self._db.execute(
            "SELECT channel, t, wh FROM channel_interval WHERE t >= ? AND t < ?", (start, end)
        ).fetchall()
        times = np.fromiter((row[0] for row in rows), dtype=np.int64, count=len(rows))
        channel_times = np.fromiter(
            (row[1] for row in channel_rows), dtype=np.int64, count=len(channel_rows)
        )
        keys, channel_keys = (
            _bucket_starts(times, resolution, timezone),
            _bucket_starts(channel_times, resolution, timezone),
        )
        buckets: dict[int, dict[str, object]] = {}
        for (_, imp, exp, pv), key in zip(rows, whole(keys), strict=True):
            _accumulate(buckets, key, (imp, exp, pv), 1)
        if resolution == "1d":
            self._old_days(buckets, start, end, timezone)
        for (channel, _, wh), key in zip(channel_rows, whole(channel_keys), strict=True):
            bucket = buckets.get(key)
            if bucket is not None:
                appliances = bucket.setdefault("appliances", {})
                assert isinstance(appliances, dict)
                appliances[names[channel]] = appliances.get(names[channel], 0) + wh
        result = []
        for key in sorted(buckets):
            bucket = buckets[key]
            imp, exp, pv = bucket["import_wh"], bucket["export_wh"], bucket["pv_wh"]
            assert isinstance(imp, int)
            assert isinstance(exp, int)
            bucket["consumption_wh"] = consumption_wh(imp, exp, pv if isinstance(pv, int) else None)
            result.append({"start": key} | bucket)
        return result

    def _old_days(
        self, buckets: dict[int, dict[str, object]], start: int, end: int, timezone: str
    ) -> None:
        first = int(local_times(np.array([start]), timezone)[0] // DAY)
        last = int(local_times(np.array([max(start, end - 1)]), timezone)[0] // DAY)
        names = {channel: name for name, channel in self._channel_ids.items()}
        appliances: dict[int, dict[str, int]] = {}
        for channel, day, wh in self._db.execute(
            "SELECT channel, day, wh FROM channel_day WHERE day >= ? AND day <= ?", (first, last)
        ):
            appliances.setdefault(day, {})[names[channel]] = wh
        for day, imp, exp, pv, count in self._db.execute(
            "SELECT day, import_wh, export_wh, pv_wh, intervals FROM day"
            " WHERE day >= ? AND day <= ?",
            (first, last),
        ):
            key = _day_start(day, timezone)
            _accumulate(buckets, key, (imp, exp, pv), count)
            if day in appliances:
                buckets[key]["appliances"] = dict(appliances[day])


def _accumulate(
    buckets: dict[int, dict[str, object]],
    key: int,
    values: tuple[int, int, int | None],
    count: int,
) -> None:
    imp, exp, pv = values
    bucket = buckets.setdefault(
        key, {"import_wh": 0, "export_wh": 0, "pv_wh": None, "intervals": 0}
    )
    bucket["import_wh"] = int(bucket["import_wh"]) + imp  # type: ignore[call-overload]
    bucket["export_wh"] = int(bucket["export_wh"]) + exp  # type: ignore[call-overload]
    if pv is not None:
        old = bucket["pv_wh"]
        bucket["pv_wh"] = (old if isinstance(old, int) else 0) + pv
    bucket["intervals"] = int(bucket["intervals"]) + count  # type: ignore[call-overload]


def _day_start(day: int, timezone: str) -> int:
    """The Unix time of local midnight starting local day ``day``."""
    wall = day * DAY
    first = wall - int(utc_offsets(np.array([wall]), timezone)[0])
    return wall - int(utc_offsets(np.array([first]), timezone)[0])


def _bucket_starts(times: IntArray, resolution: Resolution, timezone: str) -> IntArray:
    """The Unix start of the 15-minute, local-hour or local-day bucket of each time."""
    if resolution == "15m" or times.size == 0:
        return times - times % SLOT
    offsets = utc_offsets(times, timezone)
    local = times + offsets
    if resolution == "1h":
        result: IntArray = local - local % 3600 - offsets
        return result
    days, inverse = np.unique(local // DAY, return_inverse=True)
    starts = np.fromiter((_day_start(int(d), timezone) for d in days), np.int64, days.size)
    out: IntArray = starts[inverse]
    return out


def _slot_runs(slots: list[int]) -> Iterator[tuple[int, int]]:
    """Contiguous runs of slot numbers as ``[start, end)`` Unix ranges."""
    if not slots:
        return
    first = previous = slots[0]
    for slot in slots[1:]:
        if slot != previous + 1:
            yield first * SLOT, (previous + 1) * SLOT
            first = slot
        previous = slot
    yield first * SLOT, (previous + 1) * SLOT
