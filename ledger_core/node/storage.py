"""SQLite storage: blocks, transactions with their results, events and state.

One file in the node's home, in WAL mode with ``synchronous=FULL``: each block,
its transactions' results, its events and its state changes are written in one
SQLite transaction, so after a crash (``kill -9``, power loss) the database
holds every block it said it committed, whole, and nothing of any other.

With each block it keeps the block's last commit and evidence, and the commit
this node saw for the block (``commits``), which is what it serves to nodes
catching up and light clients. A transaction is stored by its position in its
block; a transaction id that a faulty proposer repeats is stored again (its
second copy fails on its used nonce) and :meth:`Storage.tx` answers with the
applied copy. A node restored from a state snapshot starts its block history
at the snapshot's height (``base``): that header and commit are kept, the
block's body is not.

Schema 3 (headers stamped by their proposer, in milliseconds) cannot read
schema 2 (BFT time in seconds) or the single-validator schema 1; such a
database is refused with a message.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from ledger_core.node.files import private_file
from ledger_core.types import codec
from ledger_core.types.abci import TxResult
from ledger_core.types.block import Block, Header
from ledger_core.types.genesis import Genesis
from ledger_core.types.vote import Commit, DuplicateVoteEvidence

SCHEMA_VERSION: Final = 4
SCHEMA_CHANGES: Final = {
    2: "blocks that carry their commits and consensus hashes",
    3: "block times in milliseconds stamped by the proposer",
    4: "state roots with 16-way bucket trees",
}
"""What each schema changed since the one before (1 was release 0.1.0); a database of an
earlier schema is refused naming every change it lacks."""
MAX_VALUE_BYTES: Final = 1 << 24
CACHE_KIB: Final = 16 * 1024

_SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS blocks (
    height INTEGER PRIMARY KEY,
    hash TEXT NOT NULL UNIQUE,
    header BLOB NOT NULL,
    signature BLOB NOT NULL,
    last_commit BLOB,
    evidence BLOB NOT NULL
);
CREATE TABLE IF NOT EXISTS commits (height INTEGER PRIMARY KEY, data BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS txs (
    height INTEGER NOT NULL,
    idx INTEGER NOT NULL,
    id TEXT NOT NULL,
    wire BLOB NOT NULL,
    code TEXT NOT NULL,
    message TEXT NOT NULL,
    events BLOB NOT NULL,
    PRIMARY KEY (height, idx)
);
-- Transactions by id: the id's first 15 hex digits as an integer, and where the
-- transaction is (a small entry: random ids make random inserts, and small ones touch
-- fewer pages than an index of the 64-character id would).
CREATE TABLE IF NOT EXISTS tx_ids (
    key INTEGER NOT NULL,
    height INTEGER NOT NULL,
    idx INTEGER NOT NULL,
    PRIMARY KEY (key, height, idx)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS events (
    seq INTEGER PRIMARY KEY,
    height INTEGER NOT NULL,
    event BLOB NOT NULL,
    tx TEXT
);
CREATE INDEX IF NOT EXISTS events_by_height ON events (height);
CREATE TABLE IF NOT EXISTS state (key TEXT PRIMARY KEY, value BLOB NOT NULL) WITHOUT ROWID;
-- Records a block took out of the live state (ledger_core/state/history.py): their last
-- value and that block's height, whose retired/<height> entry commits to them. Read
-- like the state, never loaded at start-up.
CREATE TABLE IF NOT EXISTS history (
    key TEXT NOT NULL,
    height INTEGER NOT NULL,
    value BLOB NOT NULL,
    PRIMARY KEY (key, height)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS history_by_height ON history (height);
"""


def schema_refusal(path: Path, schema: bytes) -> str:
    """Why a database of another ``schema`` cannot be opened, in one line."""
    text = schema.decode(errors="replace")
    found = int(text) if text.isascii() and text.isdigit() and len(text) < 6 else None
    if found is not None and found > SCHEMA_VERSION:
        return (
            f"{path} has database schema {found}, made by a later version; this version "
            f"needs schema {SCHEMA_VERSION}: run the later version, or start a new node home"
        )
    lacks = [SCHEMA_CHANGES[n] for n in sorted(SCHEMA_CHANGES) if found is None or n > found]
    shown = repr(text) if found is None else str(found)
    return (
        f"{path} has database schema {shown}; this version "
        f"needs schema {SCHEMA_VERSION} ({'; '.join(lacks)}): start a new node home"
    )


class StorageError(Exception):
    """The database belongs to another chain or is not this program's."""


@dataclass(frozen=True, slots=True)
class StoredTx:
    """A committed transaction and its result."""

    id: str
    height: int
    index: int
    wire: bytes
    code: str
    message: str
    events: codec.Value

    @classmethod
    def stored(  # noqa: PLR0917 - a row's columns
        cls,
        tx_id: str,
        height: int,
        index: int,
        wire: bytes,
        code: str,
        message: str,
        events: bytes,
    ) -> StoredTx:
        """The transaction as stored: ``events`` is the stored list of its events."""
        return cls(tx_id, height, index, wire, code, message,
                   codec.decode(events, MAX_VALUE_BYTES))  # fmt: skip


class Storage:
    """The node's database."""

    def __init__(self, path: Path, genesis_hash: str) -> None:
        self.path = path
        self._db = sqlite3.connect(
            private_file(path), isolation_level=None, check_same_thread=False
        )
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        # 16 MiB of pages (the default is 2): the recent part of the id index stays in it.
        self._db.execute(f"PRAGMA cache_size=-{CACHE_KIB}")
        self._db.execute("PRAGMA foreign_keys=ON")
        has_meta = self._db.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'meta'"
        ).fetchone()
        schema = self._meta("schema") if has_meta else None
        if schema is not None and schema != str(SCHEMA_VERSION).encode():
            self._db.close()
            raise StorageError(schema_refusal(path, schema))
        self._db.executescript(_SCHEMA)
        self._migrate_tx_ids()
        columns = {row[1] for row in self._db.execute("PRAGMA table_info(events)")}
        if "tx" not in columns:
            # Before 0.2 each event row repeated its transaction's id inside the event.
            self._db.execute("ALTER TABLE events ADD COLUMN tx TEXT")
        stored = self._meta("genesis_hash")
        if stored is None:
            with self._transaction():
                self._set_meta("genesis_hash", genesis_hash.encode())
                self._set_meta("schema", str(SCHEMA_VERSION).encode())
        elif stored.decode() != genesis_hash:
            self._db.close()
            raise StorageError(
                f"{path} holds another chain (genesis {stored.decode()[:12]}..., "
                f"not {genesis_hash[:12]}...)"
            )

    def close(self) -> None:
        """Close the database."""
        self._db.close()

    def _migrate_tx_ids(self) -> None:
        """A database from before 0.2 indexes transactions by their whole id: move that to
        ``tx_ids`` (once) and drop the index."""
        old = self._db.execute(
            "SELECT 1 FROM sqlite_master WHERE type = 'index' AND name = 'txs_by_id'"
        ).fetchone()
        if old is None:
            return
        with self._transaction():
            self._db.executemany(
                "INSERT OR IGNORE INTO tx_ids (key, height, idx) VALUES (?, ?, ?)",
                (
                    (_id_key(tx_id), height, index)
                    for tx_id, height, index in self._db.execute("SELECT id, height, idx FROM txs")
                ),
            )
            self._db.execute("DROP INDEX txs_by_id")

    def _transaction(self) -> _Tx:
        self._db.execute("BEGIN IMMEDIATE")
        return _Tx(self._db)

    def _meta(self, key: str) -> bytes | None:
        row = self._db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else bytes(row[0])

    def _set_meta(self, key: str, value: bytes) -> None:
        self._db.execute(
            "INSERT INTO meta (key, value) VALUES (?, ?) "
            "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
            (key, value),
        )

    # -- writing ----------------------------------------------------------------

    def commit_block(
        self,
        block: Block,
        ids: list[str],
        results: list[TxResult],
        block_events: list[codec.Value],
        writes: Mapping[str, bytes | None],
        *,
        commit: Commit | None = None,
        retired: Mapping[str, bytes] | None = None,
    ) -> list[bytes]:
        """Write a block, its results, events, state changes (``retired``: the records it
        took out of the live state, into the history) and the commit seen for it
        atomically; each transaction's events as stored (what :meth:`tx` decodes), in
        the block's order."""
        header = block.header
        with self._transaction():
            db = self._db
            db.execute(
                "INSERT INTO blocks (height, hash, header, signature, last_commit, evidence) "
                "VALUES (?, ?, ?, ?, ?, ?)",
                (
                    header.height,
                    header.hash,
                    header.encode(),
                    block.signature,
                    None if block.last_commit is None else block.last_commit.encode(),
                    codec.encode([e.to_json() for e in block.evidence]),
                ),
            )
            if commit is not None:
                db.execute(
                    "INSERT INTO commits (height, data) VALUES (?, ?)",
                    (header.height, commit.encode()),
                )
            # Each event is encoded once: the transaction's row holds the list of them
            # (the canonical encoding of a list joins its items' encodings), and the
            # event stream's rows hold each one with its transaction's id beside it.
            tx_rows = []
            event_rows: list[tuple[int, bytes, str | None]] = []
            height = header.height
            for index, (tx_id, wire, result) in enumerate(
                zip(ids, block.txs, results, strict=True)
            ):
                encoded = [codec.encode(event) for event in result.events]
                tx_rows.append(
                    (
                        tx_id,
                        height,
                        index,
                        wire,
                        result.code,
                        result.message,
                        b"[" + b",".join(encoded) + b"]",
                    )
                )
                event_rows.extend((height, event, tx_id) for event in encoded)
            new_block: codec.Value = {
                "type": "new_block",
                "height": header.height,
                "hash": header.hash,
                "time": header.time,
                "tx_count": header.tx_count,
                "app_hash": header.app_hash,
            }
            event_rows.extend((height, codec.encode(event), None) for event in block_events)
            event_rows.append((height, codec.encode(new_block), None))
            db.executemany(
                "INSERT INTO txs (id, height, idx, wire, code, message, events) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                tx_rows,
            )
            db.executemany(
                "INSERT OR IGNORE INTO tx_ids (key, height, idx) VALUES (?, ?, ?)",
                [(_id_key(row[0]), height, row[2]) for row in tx_rows],
            )
            db.executemany("INSERT INTO events (height, event, tx) VALUES (?, ?, ?)", event_rows)
            db.executemany(
                "INSERT INTO state (key, value) VALUES (?, ?) "
                "ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                [(k, v) for k, v in writes.items() if v is not None],
            )
            db.executemany(
                "DELETE FROM state WHERE key = ?", [(k,) for k, v in writes.items() if v is None]
            )
            if retired:
                db.executemany(
                    "INSERT OR REPLACE INTO history (key, height, value) VALUES (?, ?, ?)",
                    [(key, header.height, value) for key, value in retired.items()],
                )
            self._set_meta("height", str(header.height).encode())
        return [row[6] for row in tx_rows]

    def install_snapshot(
        self, header: Header, signature: bytes, commit: Commit, state: dict[str, bytes]
    ) -> None:
        """Replace the state by a verified snapshot (canonical bytes per key) at
        ``header.height``; blocks up to there stay, the snapshot's block has no body."""
        if header.height <= self.height:
            raise StorageError(f"a snapshot at {header.height} is not above {self.height}")
        with self._transaction():
            db = self._db
            db.execute("DELETE FROM state")
            db.executemany("INSERT INTO state (key, value) VALUES (?, ?)", state.items())
            db.execute(
                "INSERT INTO blocks (height, hash, header, signature, last_commit, evidence) "
                "VALUES (?, ?, ?, ?, NULL, '[]')",
                (header.height, header.hash, header.encode(), signature),
            )
            db.execute(
                "INSERT INTO commits (height, data) VALUES (?, ?)",
                (header.height, commit.encode()),
            )
            self._set_meta("base", str(header.height).encode())
            self._set_meta("height", str(header.height).encode())

    def write_initial_state(self, state: dict[str, codec.Value]) -> None:
        """Store the genesis state (before the first block); replaces what is there."""
        if self.height:
            raise StorageError("the chain has blocks; its initial state is history")
        with self._transaction():
            self._db.execute("DELETE FROM state")
            self._db.executemany(
                "INSERT INTO state (key, value) VALUES (?, ?)",
                [(k, codec.encode(v)) for k, v in state.items()],
            )

    # -- reading ----------------------------------------------------------------

    @property
    def height(self) -> int:
        """The last committed height (0 before the first block)."""
        value = self._meta("height")
        return 0 if value is None else int(value)

    @property
    def base(self) -> int:
        """The snapshot height this node's history starts from (0: genesis)."""
        value = self._meta("base")
        return 0 if value is None else int(value)

    def load_state(self) -> dict[str, codec.Value]:
        """The whole committed state."""
        return {
            key: codec.decode(bytes(value), MAX_VALUE_BYTES)
            for key, value in self._db.execute("SELECT key, value FROM state")
        }

    def header(self, height: int) -> Header | None:
        """The header at ``height``."""
        row = self._db.execute("SELECT header FROM blocks WHERE height = ?", (height,)).fetchone()
        if row is None:
            return None
        return Header.from_json(codec.decode(bytes(row[0]), MAX_VALUE_BYTES))

    def block(self, height: int) -> Block | None:
        """The block at ``height`` with its transactions (None below the history)."""
        row = self._db.execute(
            "SELECT header, signature, last_commit, evidence FROM blocks WHERE height = ?",
            (height,),
        ).fetchone()
        if row is None or height == self.base:
            return None
        txs = tuple(
            bytes(r[0])
            for r in self._db.execute(
                "SELECT wire FROM txs WHERE height = ? ORDER BY idx", (height,)
            )
        )
        header = Header.from_json(codec.decode(bytes(row[0]), MAX_VALUE_BYTES))
        last_commit = (
            None
            if row[2] is None
            else Commit.from_json(codec.decode(bytes(row[2]), MAX_VALUE_BYTES))
        )
        evidence = codec.decode(bytes(row[3]), MAX_VALUE_BYTES)
        assert isinstance(evidence, list)
        return Block(
            header,
            bytes(row[1]),
            txs,
            last_commit,
            tuple(DuplicateVoteEvidence.from_json(e) for e in evidence),
        )

    def signature(self, height: int) -> bytes | None:
        """The proposer's signature of the header at ``height``."""
        row = self._db.execute(
            "SELECT signature FROM blocks WHERE height = ?", (height,)
        ).fetchone()
        return None if row is None else bytes(row[0])

    def commit(self, height: int) -> Commit | None:
        """The commit this node saw for the block at ``height``."""
        row = self._db.execute("SELECT data FROM commits WHERE height = ?", (height,)).fetchone()
        if row is None:
            return None
        return Commit.from_json(codec.decode(bytes(row[0]), MAX_VALUE_BYTES))

    def tx(self, tx_id: str) -> StoredTx | None:
        """A committed transaction by id (the applied copy if a block repeated it)."""
        row = self._db.execute(
            "SELECT t.id, t.height, t.idx, t.wire, t.code, t.message, t.events "
            "FROM tx_ids AS k JOIN txs AS t ON t.height = k.height AND t.idx = k.idx "
            "WHERE k.key = ? AND t.id = ? ORDER BY t.code = 'ok' DESC, t.height LIMIT 1",
            (_id_key(tx_id), tx_id),
        ).fetchone()
        if row is None:
            return None
        return StoredTx.stored(row[0], row[1], row[2], bytes(row[3]), row[4], row[5],
                               bytes(row[6]))  # fmt: skip

    def events(
        self, after_seq: int = 0, limit: int = 1000
    ) -> Iterator[tuple[int, int, codec.Value]]:
        """``(seq, height, event)`` after ``after_seq``, oldest first; a transaction's
        event names it (``tx``)."""
        for seq, height, data, tx_id in self._db.execute(
            "SELECT seq, height, event, tx FROM events WHERE seq > ? ORDER BY seq LIMIT ?",
            (after_seq, limit),
        ):
            event = codec.decode(bytes(data), MAX_VALUE_BYTES)
            if tx_id is not None:
                assert isinstance(event, dict)
                event["tx"] = tx_id
            yield seq, height, event

    def last_event_seq(self) -> int:
        """The sequence number of the newest event (0 when there is none)."""
        row = self._db.execute("SELECT MAX(seq) FROM events").fetchone()
        return int(row[0] or 0)

    def range(self, prefix: str, start: str, end: str, limit: int) -> list[tuple[str, codec.Value]]:
        """Committed entries with ``prefix + start <= key < prefix + end``, in key order:
        the live state's and the history's (a record's last value)."""
        low, high = prefix + start, prefix + end
        found: dict[str, bytes] = {
            key: value
            for key, value, _height in self._db.execute(
                "SELECT key, value, MAX(height) FROM history WHERE key >= ? AND key < ? "
                "GROUP BY key ORDER BY key LIMIT ?",
                (low, high, limit),
            )
        }
        found.update(
            self._db.execute(
                "SELECT key, value FROM state WHERE key >= ? AND key < ? ORDER BY key LIMIT ?",
                (low, high, limit),
            )
        )
        return [
            (key, codec.decode(bytes(found[key]), MAX_VALUE_BYTES)) for key in sorted(found)[:limit]
        ]

    def history_value(self, key: str) -> tuple[codec.Value, int] | None:
        """A record that left the live state: its last value and the height of the block
        that took it out; None if this node holds no such record."""
        row = self._db.execute(
            "SELECT value, height FROM history WHERE key = ? ORDER BY height DESC LIMIT 1", (key,)
        ).fetchone()
        return None if row is None else (codec.decode(bytes(row[0]), MAX_VALUE_BYTES), row[1])

    def history_at(self, height: int) -> list[tuple[str, bytes]]:
        """What block ``height`` took out of the live state: (key, canonical bytes of its
        last value), in key order."""
        rows = self._db.execute(
            "SELECT key, value FROM history WHERE height = ? ORDER BY key", (height,)
        )
        return [(key, bytes(value)) for key, value in rows]

    def history_count(self) -> int:
        """How many records this node holds that left the live state."""
        return int(self._db.execute("SELECT COUNT(*) FROM history").fetchone()[0])

    def first_event_at(self, height: int) -> int:
        """The sequence number just before the first event of block ``height``."""
        row = self._db.execute(
            "SELECT MIN(seq) FROM events WHERE height >= ?", (height,)
        ).fetchone()
        if row is None or row[0] is None:
            last = self._db.execute("SELECT MAX(seq) FROM events").fetchone()
            return int(last[0] or 0)
        return int(row[0]) - 1


def _id_key(tx_id: str) -> int:
    """The integer ``tx_ids`` files a transaction id under (its first 15 hex digits)."""
    return int(tx_id[:15], 16)


class _Tx:
    """``with storage._transaction():`` commits on success and rolls back on error."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db

    def __enter__(self) -> sqlite3.Connection:
        return self._db

    def __exit__(self, kind: object, value: object, traceback: object) -> None:
        self._db.execute("COMMIT" if kind is None else "ROLLBACK")


def open_storage(home: Path, genesis: Genesis) -> Storage:
    """The node's database in ``home``; StorageError naming the file when it is damaged or
    not a database."""
    path = home / "ledger.db"
    try:
        return Storage(path, genesis.hash)
    except sqlite3.DatabaseError as err:
        raise StorageError(
            f"{path}: not a readable ledger database ({err}); move it (with its -wal and -shm "
            "files) aside and start again: a node on a network syncs the chain from its peers, "
            "a single validator needs its backup (docs/node.md)"
        ) from None
