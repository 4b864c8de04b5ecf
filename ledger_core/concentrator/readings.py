"""The concentrator's private store of meter readings, ``readings.db`` (docs/privacy.md).

The readings never enter the chain: the meters send them here, each with the
salt that opens its report's commitment on chain, and the concentrator keeps
them in this SQLite file -- not in the ledger's state, not in its blocks -- to
settle metered energy, to watch the neighbourhood's load, and to prove its
inputs. It is the private data collection of each home with the concentrator,
in Hyperledger Fabric's terms.

Erasure (:meth:`ReadingStore.erase`) deletes a participant's readings with
``secure_delete`` on, so their pages are overwritten, and checkpoints the
write-ahead log, so no copy stays in it; what remains is a line in
``erasures``: who, which meters, how many readings, when -- never a reading.
One SQLite transaction per change; the file records the chain it belongs to.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from ledger_core.node.files import private_file
from ledger_core.types.metering import Opening

SCHEMA_VERSION: Final = 1
_SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS readings (
    meter TEXT NOT NULL,
    interval_start INTEGER NOT NULL,
    commitment TEXT NOT NULL,
    owner TEXT NOT NULL,
    import_wh INTEGER NOT NULL,
    export_wh INTEGER NOT NULL,
    salt BLOB NOT NULL,
    received REAL NOT NULL,
    PRIMARY KEY (meter, interval_start, commitment)
);
CREATE INDEX IF NOT EXISTS readings_by_owner ON readings (owner, interval_start);
CREATE INDEX IF NOT EXISTS readings_by_time ON readings (interval_start);
CREATE TABLE IF NOT EXISTS meters (meter TEXT PRIMARY KEY, owner TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS erasures (
    participant TEXT NOT NULL,
    meters TEXT NOT NULL,
    readings INTEGER NOT NULL,
    erased_at REAL NOT NULL
);
"""


_SELECT: Final = (
    "SELECT meter, interval_start, commitment, owner, import_wh, export_wh, salt FROM readings"
)


class ReadingStoreError(Exception):
    """The file is not a readings store of this chain."""


@dataclass(frozen=True, slots=True)
class Held:
    """A reading the concentrator holds: its opening, the commitment it opens, its owner."""

    opening: Opening
    commitment: str
    owner: str


@dataclass(frozen=True, slots=True)
class Erasure:
    """What an erasure removed (never the readings)."""

    participant: str
    meters: tuple[str, ...]
    readings: int
    erased_at: float


class ReadingStore:
    """``readings.db``: open it with the chain id whose meters it holds."""

    def __init__(self, path: Path, chain_id: str) -> None:
        self.path = path
        self.db = sqlite3.connect(private_file(path), isolation_level=None, check_same_thread=False)
        try:
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA synchronous=NORMAL")
            self.db.execute("PRAGMA secure_delete=ON")
            self.db.executescript(_SCHEMA)
            self._identify(chain_id)
        except sqlite3.DatabaseError as err:
            self.db.close()
            raise ReadingStoreError(f"{path}: {err}") from None
        except ReadingStoreError:
            self.db.close()
            raise

    def _identify(self, chain_id: str) -> None:
        identity = {"chain_id": chain_id, "schema": SCHEMA_VERSION}
        row = self.db.execute("SELECT value FROM meta WHERE key = 'identity'").fetchone()
        if row is None:
            with self._transaction() as db:
                db.execute(
                    "INSERT INTO meta (key, value) VALUES ('identity', ?)",
                    (json.dumps(identity, sort_keys=True),),
                )
        elif json.loads(row[0]) != identity:
            raise ReadingStoreError(
                f"{self.path} holds the readings of chain "
                f"{json.loads(row[0]).get('chain_id')!r}, not {chain_id!r}; use another file"
            )

    def close(self) -> None:
        """Close the file."""
        self.db.close()

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        self.db.execute("BEGIN IMMEDIATE")
        try:
            yield self.db
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        self.db.execute("COMMIT")

    def bind(self, meter: str, owner: str) -> None:
        """Remember whose a meter is (the chain's ``meter_bound``; public, never erased)."""
        with self._transaction() as db:
            db.execute(
                "INSERT INTO meters (meter, owner) VALUES (?, ?) ON CONFLICT (meter) DO NOTHING",
                (meter, owner),
            )

    def add(self, held: Held, received: float) -> bool:
        """Keep a reading; False if it was kept already."""
        o = held.opening
        with self._transaction() as db:
            db.execute(
                "INSERT INTO meters (meter, owner) VALUES (?, ?) ON CONFLICT (meter) DO NOTHING",
                (o.meter, held.owner),
            )
            cursor = db.execute(
                "INSERT OR IGNORE INTO readings (meter, interval_start, commitment, owner, "
                "import_wh, export_wh, salt, received) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    o.meter,
                    o.interval_start,
                    held.commitment,
                    held.owner,
                    o.import_wh,
                    o.export_wh,
                    o.salt,
                    received,
                ),
            )
        return cursor.rowcount == 1

    @staticmethod
    def _held(rows: list[tuple[str, int, str, str, int, int, bytes]]) -> list[Held]:
        return [
            Held(Opening(meter, start, imp, exp, bytes(salt)), commitment, owner)
            for meter, start, commitment, owner, imp, exp, salt in rows
        ]

    def of_meter(self, meter: str, start: int, end: int, limit: int = 1 << 30) -> list[Held]:
        """A meter's readings with ``start <= T < end``."""
        return self._held(
            self.db.execute(
                f"{_SELECT} WHERE meter = ? AND interval_start >= ? AND interval_start < ? "
                "ORDER BY interval_start LIMIT ?",
                (meter, start, end, limit),
            ).fetchall()
        )

    def of_owner(self, owner: str, start: int, end: int) -> list[Held]:
        """A participant's readings (all its meters) with ``start <= T < end``."""
        return self._held(
            self.db.execute(
                f"{_SELECT} WHERE owner = ? AND interval_start >= ? AND interval_start < ? "
                "ORDER BY interval_start, meter",
                (owner, start, end),
            ).fetchall()
        )

    def between(self, start: int, end: int) -> list[Held]:
        """Every reading with ``start <= T < end``."""
        return self._held(
            self.db.execute(
                f"{_SELECT} WHERE interval_start >= ? AND interval_start < ? "
                "ORDER BY interval_start, meter",
                (start, end),
            ).fetchall()
        )

    def meters(self) -> dict[str, str]:
        """Every meter known here (bound on chain, or with readings), and its owner."""
        rows = self.db.execute("SELECT meter, owner FROM meters ORDER BY meter").fetchall()
        return dict(rows)

    def owners_between(self, start: int, end: int) -> list[str]:
        """The participants with readings with ``start <= T < end`` (the others' reports,
        if any, cannot be billed from here)."""
        rows = self.db.execute(
            "SELECT DISTINCT owner FROM readings WHERE interval_start >= ? AND interval_start < ? "
            "ORDER BY owner",
            (start, end),
        ).fetchall()
        return [owner for (owner,) in rows]

    def count(self, owner: str | None = None) -> int:
        """How many readings are kept (of ``owner``)."""
        if owner is None:
            row = self.db.execute("SELECT COUNT(*) FROM readings").fetchone()
        else:
            row = self.db.execute(
                "SELECT COUNT(*) FROM readings WHERE owner = ?", (owner,)
            ).fetchone()
        return int(row[0])

    def erase(self, participant: str, now: float) -> Erasure:
        """Delete every reading of ``participant``'s meters, and log that it was done."""
        meters = tuple(
            meter
            for (meter,) in self.db.execute(
                "SELECT DISTINCT meter FROM readings WHERE owner = ? ORDER BY meter",
                (participant,),
            ).fetchall()
        )
        with self._transaction() as db:
            cursor = db.execute("DELETE FROM readings WHERE owner = ?", (participant,))
            erased = cursor.rowcount
            db.execute(
                "INSERT INTO erasures (participant, meters, readings, erased_at) "
                "VALUES (?, ?, ?, ?)",
                (participant, json.dumps(list(meters)), erased, now),
            )
        # Deleted pages are overwritten (secure_delete); the log must not keep a copy either.
        self.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        return Erasure(participant, meters, erased, now)

    def erasures(self) -> list[Erasure]:
        """Every erasure, oldest first."""
        rows = self.db.execute(
            "SELECT participant, meters, readings, erased_at FROM erasures ORDER BY rowid"
        ).fetchall()
        return [Erasure(p, tuple(json.loads(m)), n, at) for p, m, n, at in rows]
