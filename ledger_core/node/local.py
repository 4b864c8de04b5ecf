"""What happens at this home and stays here: local events and the action log.

The ledger's events are the same on every node and are kept in the chain's
database. A home also has events of its own -- the actions its contracts ask
for, the results Home Assistant reports back, the meter seeing the supply go
and return -- which are nobody else's business and are kept apart:

- :class:`LocalEvents` numbers them (``lseq``), keeps the last few thousand in
  memory for clients that reconnect, and pushes them to subscribers;
- :class:`ActionLog` records every contract action and its outcome in a small
  SQLite file (``local.db`` in the node's home), so "what did my contracts do
  today, and did it work?" has an answer after a restart. Each action has a
  status: ``effective`` (carried out; its result says how that went) or, kept
  for "why did nothing happen?", ``unchanged``, ``suppressed`` or
  ``superseded`` with why. Lists show the effective ones unless asked.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sqlite3
from collections import deque
from pathlib import Path
from typing import Final, Protocol

from ledger_core.node.files import private_file

type LocalEvent = dict[str, object]


class ActionRecord(Protocol):
    """What the action log keeps of an action (the home agent's
    :class:`ledger_core.agent.execution.ActionRecord`)."""

    @property
    def time(self) -> int:
        """When the action was decided (Unix seconds)."""
        ...

    @property
    def contract_id(self) -> str:
        """The contract that asked for it."""
        ...

    @property
    def status(self) -> str:
        """Whether it was carried out (``effective``) or why not (see :data:`STATUSES`)."""
        ...

    def to_event(self) -> dict[str, object]:
        """The action as a ``contract_action`` local event."""
        ...


BUFFER: Final = 5000
RESULTS: Final = ("ok", "failed", "unmapped", "skipped")
STATUSES: Final = ("effective", "unchanged", "suppressed", "superseded")


class LocalEvents:
    """A numbered, resumable stream of this home's own events."""

    def __init__(self, buffer: int = BUFFER) -> None:
        self._buffer: deque[tuple[int, LocalEvent]] = deque(maxlen=buffer)
        self._seq = 0
        self._subscribers: set[asyncio.Queue[tuple[int, LocalEvent]]] = set()

    @property
    def listeners(self) -> int:
        """How many clients follow the stream now (Home Assistant, when attached)."""
        return len(self._subscribers)

    @property
    def last_seq(self) -> int:
        """The number of the newest event (0 before the first)."""
        return self._seq

    def publish(self, event: LocalEvent) -> int:
        """Number, keep and push ``event``; its number."""
        self._seq += 1
        self._buffer.append((self._seq, event))
        for queue in list(self._subscribers):
            with contextlib.suppress(asyncio.QueueFull):
                queue.put_nowait((self._seq, event))
        return self._seq

    def since(self, after: int) -> list[tuple[int, LocalEvent]]:
        """Kept events numbered above ``after`` (older ones may have been dropped)."""
        return [(seq, event) for seq, event in self._buffer if seq > after]

    def subscribe(self, maxsize: int = 10_000) -> asyncio.Queue[tuple[int, LocalEvent]]:
        """A queue of every event from now on."""
        queue: asyncio.Queue[tuple[int, LocalEvent]] = asyncio.Queue(maxsize)
        self._subscribers.add(queue)
        return queue

    def unsubscribe(self, queue: asyncio.Queue[tuple[int, LocalEvent]]) -> None:
        """Stop pushing to ``queue``."""
        self._subscribers.discard(queue)


_SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS actions (
    id INTEGER PRIMARY KEY,
    time INTEGER NOT NULL,
    contract_id TEXT NOT NULL,
    event TEXT NOT NULL,
    result TEXT,
    detail TEXT,
    status TEXT NOT NULL DEFAULT 'effective'
);
CREATE INDEX IF NOT EXISTS actions_time ON actions (time);
"""
# local.db files written before actions had a status: every row was carried out.
_ADD_STATUS: Final = "ALTER TABLE actions ADD COLUMN status TEXT NOT NULL DEFAULT 'effective'"


class ActionLog:
    """Contract actions and their outcomes, in ``local.db``."""

    def __init__(self, path: Path) -> None:
        self._db = sqlite3.connect(
            private_file(path), isolation_level=None, check_same_thread=False
        )
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.executescript(_SCHEMA)
        columns = {row[1] for row in self._db.execute("PRAGMA table_info(actions)")}
        if "status" not in columns:
            self._db.execute(_ADD_STATUS)

    def close(self) -> None:
        """Close the database."""
        self._db.close()

    def record(self, action: ActionRecord) -> int:
        """Keep an action; its id (also put in its event as ``action_id``)."""
        event = action.to_event()
        cursor = self._db.execute(
            "INSERT INTO actions (time, contract_id, event, status) VALUES (?, ?, ?, ?)",
            (action.time, action.contract_id, json.dumps(event, sort_keys=True), action.status),
        )
        assert cursor.lastrowid is not None
        return cursor.lastrowid

    def set_result(self, action_id: int, result: str, detail: str = "") -> bool:
        """Record what became of an action; False when there is no such action."""
        if result not in RESULTS:
            raise ValueError(f"result must be one of {', '.join(RESULTS)}")
        cursor = self._db.execute(
            "UPDATE actions SET result = ?, detail = ? WHERE id = ?", (result, detail, action_id)
        )
        return cursor.rowcount == 1

    def recent(
        self,
        limit: int = 100,
        since: int = 0,
        contract_id: str | None = None,
        statuses: tuple[str, ...] = ("effective",),
    ) -> list[dict[str, object]]:
        """The newest actions first, with their results: by default the effective ones;
        ``statuses`` chooses among :data:`STATUSES`."""
        query = "SELECT id, event, result, detail, status FROM actions WHERE time >= ?"
        args: list[object] = [since]
        if contract_id is not None:
            query += " AND contract_id = ?"
            args.append(contract_id)
        wanted = [s for s in STATUSES if s in statuses]
        if not wanted:
            return []
        if len(wanted) < len(STATUSES):
            query += f" AND status IN ({', '.join('?' * len(wanted))})"
            args.extend(wanted)
        query += " ORDER BY id DESC LIMIT ?"
        args.append(limit)
        rows = []
        for action_id, event, result, detail, status in self._db.execute(query, args):
            row: dict[str, object] = json.loads(event)
            row.update(action_id=action_id, result=result, detail=detail or "", status=status)
            rows.append(row)
        return rows
