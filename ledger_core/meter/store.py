"""The meter role's SQLite file, ``meter.db``: counters, open intervals, reports, outbox, openings.

One file in WAL mode with ``synchronous=NORMAL``: a commit survives the process
being killed; a power cut may take back the last few commits, never half of
one (the meter writes once a second, and an fsync each time would wear an SD
card and slow it down). Everything one reading changes
(lifetime counters, the last sample, open intervals, intervals it closes, the
signed reports they produce and the meter key's next nonce) is written in one
SQLite transaction (:meth:`MeterStore.transaction`, re-entrant so that the
accounting, interval and outbox code can each open one and the service can
wrap them all). A crash leaves the file as it was after some whole reading.

The file records which meter key and chain it belongs to and refuses to be
used with others: its nonces and its reports are that key's.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Final

from ledger_core.node.files import private_file

SCHEMA_VERSION: Final = 2
"""2: reports go to the ledger as commitments; ``openings`` keeps each reading's salt."""

_META: Final = "CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)"
_SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS counters (
    channel TEXT PRIMARY KEY,
    import_mwh INTEGER NOT NULL,
    export_mwh INTEGER NOT NULL,
    import_mj INTEGER NOT NULL,
    export_mj INTEGER NOT NULL,
    import_rest REAL NOT NULL,
    export_rest REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS open_intervals (
    start INTEGER PRIMARY KEY,
    import_mwh INTEGER NOT NULL,
    export_mwh INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS reports (
    interval_start INTEGER PRIMARY KEY,
    import_wh INTEGER NOT NULL,
    export_wh INTEGER NOT NULL,
    import_mwh INTEGER NOT NULL,
    export_mwh INTEGER NOT NULL,
    closed_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS outbox (
    interval_start INTEGER PRIMARY KEY,
    nonce INTEGER NOT NULL UNIQUE,
    tx_id TEXT NOT NULL,
    wire BLOB NOT NULL,
    status TEXT NOT NULL,
    attempts INTEGER NOT NULL,
    code TEXT NOT NULL,
    message TEXT NOT NULL,
    updated REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS outbox_by_status ON outbox (status, nonce);
CREATE TABLE IF NOT EXISTS openings (
    interval_start INTEGER PRIMARY KEY,
    import_wh INTEGER NOT NULL,
    export_wh INTEGER NOT NULL,
    salt BLOB NOT NULL,
    commitment TEXT NOT NULL,
    shared TEXT NOT NULL,
    attempts INTEGER NOT NULL,
    code TEXT NOT NULL,
    message TEXT NOT NULL,
    updated REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS openings_by_shared ON openings (shared, interval_start);
"""


class MeterStoreError(Exception):
    """The file belongs to another meter key or chain, or is not a meter database."""


class MeterStore:
    """``meter.db``: open it with the meter's address and the chain id it reports to."""

    def __init__(self, path: Path, meter: str, chain_id: str) -> None:
        self.path = path
        self.db = sqlite3.connect(private_file(path), isolation_level=None, check_same_thread=False)
        self._depth = 0
        try:
            self._open(meter, chain_id)
        except sqlite3.DatabaseError as err:
            self.db.close()
            raise MeterStoreError(f"{path}: {err}") from None
        except MeterStoreError:
            self.db.close()
            raise

    def _open(self, meter: str, chain_id: str) -> None:
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=NORMAL")
        self.db.execute(_META)
        identity = {"meter": meter, "chain_id": chain_id, "schema": SCHEMA_VERSION}
        stored = self.get("identity")
        if stored is None:
            with self.transaction():
                self.put("identity", identity)
        elif stored.get("schema") != SCHEMA_VERSION and stored.get("meter") == meter:
            raise MeterStoreError(
                f"{self.path} was written by an older version (schema {stored.get('schema')}): "
                "interval reports now go to the ledger as commitments, on a new chain; "
                "move this file away and start with a new one"
            )
        elif stored != identity:
            raise MeterStoreError(
                f"{self.path} belongs to meter {stored.get('meter')} on chain "
                f"{stored.get('chain_id')!r}, not {meter} on {chain_id!r}; "
                "use that meter's key, or another file"
            )
        self.db.executescript(_SCHEMA)

    def close(self) -> None:
        """Close the file."""
        self.db.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One atomic write; nested uses join the outermost."""
        if self._depth:
            self._depth += 1
            try:
                yield self.db
            finally:
                self._depth -= 1
            return
        self.db.execute("BEGIN IMMEDIATE")
        self._depth = 1
        try:
            yield self.db
        except BaseException:
            self._depth = 0
            self.db.execute("ROLLBACK")
            raise
        self._depth = 0
        self.db.execute("COMMIT")

    def get(self, key: str) -> Any:  # noqa: ANN401 - JSON
        """A JSON value from ``meta``, or None."""
        row = self.db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else json.loads(row[0])

    def put(self, key: str, value: object) -> None:
        """Store a JSON value in ``meta`` (inside a transaction)."""
        assert self._depth, "write inside MeterStore.transaction()"
        self.db.execute(
            "INSERT INTO meta (key, value) VALUES (?, ?) "
            "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            (key, json.dumps(value, sort_keys=True)),
        )
