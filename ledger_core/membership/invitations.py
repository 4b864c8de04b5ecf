"""The operator's book of invitations and refusals (``invitations.db`` in its home).

Invitations are the operator's own business until a home is admitted: they live in
the operator node's home, not on the chain (what reaches the chain is the admitted
participant's registration). Each row is one invitation, by id (SHA-256 of the signed
bytes), with its code and what became of it:

============================  ==========================================================
``open``                      issued, not used yet
``awaiting_approval``         a home asked with it (``--approve manual``): the operator
                              admits it with ``transactiva operator admit NAME``
``admitting``                 the registration and meter binding are being committed
``admitted``                  the home is a participant (its address is kept)
``failed``                    the ledger refused the registration (``message`` says why)
``cancelled``                 the operator withdrew it before it was used
============================  ==========================================================

**Single use.** The first home that asks with a valid code claims it: one ``UPDATE ...
WHERE status = 'open'`` records that home's participant and meter keys, so of two
requests only one can win, and from then on the code answers only that home (asking
again is how it learns it was admitted); anyone else is refused as ``used``.

Every refusal -- at ``transactiva join`` (checking a code) or at admission -- is kept
in ``refusals`` with its reason, and logged, so the operator sees all of them
(``GET /api/v1/operator/refusals``, the web interface's Operator page).
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

from ledger_core.node.files import private_file

OPEN: Final = "open"
AWAITING: Final = "awaiting_approval"
ADMITTING: Final = "admitting"
ADMITTED: Final = "admitted"
FAILED: Final = "failed"
CANCELLED: Final = "cancelled"
STATUSES: Final = (OPEN, AWAITING, ADMITTING, ADMITTED, FAILED, CANCELLED)
LIVE: Final = (OPEN, AWAITING, ADMITTING)
"""Statuses that hold the invitation's name (another invitation cannot take it)."""
MAX_REFUSALS: Final = 10_000

_SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS invitations (
    id TEXT PRIMARY KEY,
    code TEXT NOT NULL,
    name TEXT NOT NULL,
    role TEXT NOT NULL,
    approve TEXT NOT NULL,
    expires INTEGER NOT NULL,
    issued REAL NOT NULL,
    status TEXT NOT NULL,
    participant_key TEXT,
    meter_key TEXT,
    address TEXT,
    requested REAL,
    updated REAL NOT NULL,
    message TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS invitations_name ON invitations (name);
CREATE TABLE IF NOT EXISTS refusals (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    at REAL NOT NULL,
    stage TEXT NOT NULL,
    reason TEXT NOT NULL,
    message TEXT NOT NULL,
    invitation TEXT,
    name TEXT,
    peer TEXT
);
"""


@dataclass(frozen=True, slots=True)
class Entry:
    """One invitation as the book keeps it."""

    id: str
    code: str
    name: str
    role: str
    approve: str
    expires: int
    issued: float
    status: str
    participant_key: str | None
    meter_key: str | None
    address: str | None
    requested: float | None
    updated: float
    message: str

    def to_json(self, *, with_code: bool = True) -> dict[str, Any]:
        """The entry as the operator's API answers it."""
        out: dict[str, Any] = {
            "id": self.id,
            "name": self.name,
            "role": self.role,
            "approve": self.approve,
            "expires": self.expires,
            "issued": self.issued,
            "status": self.status,
            "address": self.address,
            "requested": self.requested,
            "message": self.message or None,
        }
        if with_code:
            out["code"] = self.code
        return out


@dataclass(frozen=True, slots=True)
class Refusal:
    """A refused code or request, as the operator sees it."""

    seq: int
    at: float
    stage: str  # "check" (transactiva join) or "admit" (the home's node)
    reason: str
    message: str
    invitation: str | None
    name: str | None
    peer: str | None

    def to_json(self) -> dict[str, Any]:
        return {
            "seq": self.seq,
            "at": self.at,
            "stage": self.stage,
            "reason": self.reason,
            "message": self.message,
            "invitation": self.invitation,
            "name": self.name,
            "peer": self.peer,
        }


_COLUMNS: Final = (
    "id, code, name, role, approve, expires, issued, status, participant_key, meter_key, "
    "address, requested, updated, message"
)


class InvitationBook:
    """The SQLite book; safe to use from the event loop's thread (short statements)."""

    def __init__(self, path: Path, clock: Callable[[], float] = time.time) -> None:
        self.path = path
        self.clock = clock
        self._lock = threading.Lock()
        fresh = not path.exists()
        self.db = sqlite3.connect(private_file(path), isolation_level=None, check_same_thread=False)
        if fresh:
            path.chmod(0o600)  # the codes are bearer secrets until used
        self.db.executescript(_SCHEMA)

    def close(self) -> None:
        """Close the database."""
        self.db.close()

    # -- invitations -----------------------------------------------------------------

    def add(
        self, invitation_id: str, code: str, *, name: str, role: str, approve: str, expires: int
    ) -> Entry:
        """Keep a new invitation (``open``)."""
        now = self.clock()
        with self._lock:
            self.db.execute(
                f"INSERT INTO invitations ({_COLUMNS}) VALUES "  # noqa: S608 - fixed columns
                "(?, ?, ?, ?, ?, ?, ?, ?, NULL, NULL, NULL, NULL, ?, '')",
                (invitation_id, code, name, role, approve, expires, now, OPEN, now),
            )
        entry = self.get(invitation_id)
        assert entry is not None
        return entry

    def get(self, invitation_id: str) -> Entry | None:
        """An invitation by id."""
        row = self.db.execute(
            f"SELECT {_COLUMNS} FROM invitations WHERE id = ?",  # noqa: S608 - fixed columns
            (invitation_id,),
        ).fetchone()
        return None if row is None else Entry(*row)

    def live_for(self, name: str) -> Entry | None:
        """The open or pending invitation that holds ``name``, if any."""
        row = self.db.execute(
            f"SELECT {_COLUMNS} FROM invitations WHERE name = ? AND status IN (?, ?, ?) "  # noqa: S608
            "ORDER BY issued DESC LIMIT 1",
            (name, *LIVE),
        ).fetchone()
        return None if row is None else Entry(*row)

    def latest_for(self, name: str) -> Entry | None:
        """The newest invitation for ``name``, whatever its status."""
        row = self.db.execute(
            f"SELECT {_COLUMNS} FROM invitations WHERE name = ? "  # noqa: S608 - fixed columns
            "ORDER BY issued DESC LIMIT 1",
            (name,),
        ).fetchone()
        return None if row is None else Entry(*row)

    def all(self, limit: int = 1000) -> list[Entry]:
        """Invitations, newest first."""
        rows = self.db.execute(
            f"SELECT {_COLUMNS} FROM invitations ORDER BY issued DESC LIMIT ?",  # noqa: S608
            (limit,),
        ).fetchall()
        return [Entry(*row) for row in rows]

    def claim(self, invitation_id: str, participant_key: str, meter_key: str, status: str) -> bool:
        """Make an open invitation the one of these keys (single use); False if it is no
        longer open."""
        now = self.clock()
        with self._lock:
            cursor = self.db.execute(
                "UPDATE invitations SET status = ?, participant_key = ?, meter_key = ?, "
                "requested = ?, updated = ? WHERE id = ? AND status = ?",
                (status, participant_key, meter_key, now, now, invitation_id, OPEN),
            )
        return cursor.rowcount == 1

    def set_status(
        self,
        invitation_id: str,
        status: str,
        *,
        address: str | None = None,
        message: str = "",
        expect: tuple[str, ...] | None = None,
    ) -> bool:
        """Move an invitation to ``status`` (only from ``expect`` when given)."""
        now = self.clock()
        query = "UPDATE invitations SET status = ?, message = ?, updated = ?"
        params: list[Any] = [status, message, now]
        if address is not None:
            query += ", address = ?"
            params.append(address)
        query += " WHERE id = ?"
        params.append(invitation_id)
        if expect is not None:
            query += f" AND status IN ({', '.join('?' for _ in expect)})"
            params.extend(expect)
        with self._lock:
            cursor = self.db.execute(query, params)
        return cursor.rowcount == 1

    # -- refusals --------------------------------------------------------------------

    def refuse(
        self,
        stage: str,
        reason: str,
        message: str,
        *,
        invitation: str | None = None,
        name: str | None = None,
        peer: str | None = None,
    ) -> Refusal:
        """Keep a refusal (the oldest go beyond :data:`MAX_REFUSALS`)."""
        now = self.clock()
        with self._lock:
            cursor = self.db.execute(
                "INSERT INTO refusals (at, stage, reason, message, invitation, name, peer) "
                "VALUES (?, ?, ?, ?, ?, ?, ?)",
                (now, stage, reason, message, invitation, name, peer),
            )
            self.db.execute(
                "DELETE FROM refusals WHERE seq <= ?", ((cursor.lastrowid or 0) - MAX_REFUSALS,)
            )
        return Refusal(cursor.lastrowid or 0, now, stage, reason, message, invitation, name, peer)

    def refusals(self, limit: int = 200) -> list[Refusal]:
        """Refusals, newest first."""
        rows = self.db.execute(
            "SELECT seq, at, stage, reason, message, invitation, name, peer FROM refusals "
            "ORDER BY seq DESC LIMIT ?",
            (limit,),
        ).fetchall()
        return [Refusal(*row) for row in rows]
