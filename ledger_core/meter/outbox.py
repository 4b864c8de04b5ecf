"""The outbox: signed interval reports, kept on disk until the ledger has them, and their
readings, kept until the concentrator has them.

A closed interval becomes a ``report`` transaction signed by the meter key
with the key's next nonce. The report carries a *commitment* to the reading,
never the reading (docs/privacy.md): a fresh 32-byte salt is drawn, and the
reading with its salt (the *opening*) stays in ``meter.db``'s ``openings``
table. The transaction, the opening and the next nonce are stored in the same
SQLite transaction as the counters and the interval that produced them
(``store.py``), before anything is sent.

The reading goes to the concentrator, and only there, through ``share``
(:func:`http_sharer`: ``POST /api/v1/readings`` on the concentrator's node,
HTTPS outside a test): the signed report and its opening, which the
concentrator checks against each other, so the message is authenticated by
the meter's key. Without ``share`` the readings stay at home. Shares are sent
in interval order and retried like reports; the concentrator's answer
``stored`` (or ``duplicate``) is final, and so is a refusal that no retry can
change (``commitment_mismatch``, ``bad_signature``, ``wrong_chain``,
``malformed``), which is logged. A meter whose node or network is down
for a day keeps a day of reports (96) and sends them, in nonce order, when it
can (the ledger accepts reports up to ``report_grace_seconds``, two days by
default, after their interval).

``submit`` is any coroutine function taking the wire bytes and returning an
object with ``code`` and ``message`` (the node's :class:`Submitted`, or what
the HTTP API answered: :func:`node_submitter`, :func:`http_submitter`).
What each code means here:

=============================================  ======================================
``accepted``, ``duplicate``                     in the mempool: *sent*; sent again after
                                                ``confirm_after`` s to learn its fate
``already_committed``, ``duplicate_report``     on the ledger: *committed*, done
``late_report``                                 too late for the ledger: *dropped*, logged
``stale_nonce``                                 the nonce was used: signed again with a
                                                fresh one (from ``chain_nonce`` if given)
anything else, or an exception                  kept; retried with exponential backoff
=============================================  ======================================
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Final, Protocol

import aiohttp

from ledger_core.clock import SYSTEM_CLOCK, Clock
from ledger_core.meter.intervals import IntervalReport
from ledger_core.meter.store import MeterStore
from ledger_core.types.crypto import SigningKey
from ledger_core.types.metering import Opening, Proof, new_salt
from ledger_core.types.tx import TxType, sign

LOG: Final = logging.getLogger(__name__)
IN_MEMPOOL: Final = frozenset({"accepted", "duplicate"})
COMMITTED: Final = frozenset({"already_committed", "duplicate_report"})
DROPPED: Final = frozenset({"late_report"})
PENDING, SENT, DONE, GONE = "pending", "sent", "committed", "dropped"
# What became of a reading sent to the concentrator.
SHARED: Final = frozenset({"stored", "duplicate"})
NOT_SHAREABLE: Final = frozenset(
    {"commitment_mismatch", "bad_signature", "wrong_chain", "malformed"}
)
KEPT, STORED, REFUSED = "kept", "stored", "refused"


class SubmitOutcome(Protocol):
    """What a node says about a submitted transaction."""

    @property
    def code(self) -> str:
        """``accepted``, ``duplicate``, ``already_committed`` or a ledger rule's code."""

    @property
    def message(self) -> str:
        """Why, in words."""


@dataclass(frozen=True, slots=True)
class Outcome:
    """A plain :class:`SubmitOutcome`."""

    code: str
    message: str = ""


type Submit = Callable[[bytes], Awaitable[SubmitOutcome]]
type ChainNonce = Callable[[], Awaitable[int]]
type Share = Callable[[dict[str, Any]], Awaitable[SubmitOutcome]]
"""Sends ``{"report": wire text, "import_wh", "export_wh", "salt"}`` to the concentrator."""


class Outbox:
    """Signs reports, stores them and gets them onto the ledger."""

    def __init__(
        self,
        store: MeterStore,
        key: SigningKey,
        chain_id: str,
        submit: Submit,
        *,
        chain_nonce: ChainNonce | None = None,
        share: Share | None = None,
        clock: Clock = SYSTEM_CLOCK,
        backoff: float = 1.0,
        backoff_max: float = 60.0,
        confirm_after: float = 5.0,
    ) -> None:
        self.store = store
        self.key = key
        self.chain_id = chain_id
        self.submit = submit
        self.chain_nonce = chain_nonce
        self.share = share
        self.clock = clock
        self.backoff = backoff
        self.backoff_max = backoff_max
        self.confirm_after = confirm_after
        self.failures = 0
        self._wake = asyncio.Event()
        state: dict[str, Any] = store.get("outbox") or {}
        self.next_nonce: int = state.get("next_nonce", 1)

    # -- storing ----------------------------------------------------------------------

    def add(self, report: IntervalReport) -> str:
        """Commit to a reading with a fresh salt, sign the report and store both (inside the
        caller's transaction); the report's transaction id."""
        opening = Opening(
            self.key.address, report.interval_start, report.import_wh, report.export_wh, new_salt()
        )
        commitment = opening.commitment(self.chain_id)
        body: dict[str, Any] = {"interval_start": report.interval_start, "commitment": commitment}
        with self.store.transaction() as db:
            tx = sign(self.key, self.chain_id, TxType.REPORT, self.next_nonce, body)
            now = self.clock.now()
            db.execute(
                "INSERT INTO outbox (interval_start, nonce, tx_id, wire, status, attempts, code, "
                "message, updated) VALUES (?, ?, ?, ?, ?, 0, '', '', ?)",
                (report.interval_start, tx.nonce, tx.id, tx.wire(), PENDING, now),
            )
            db.execute(
                "INSERT INTO openings (interval_start, import_wh, export_wh, salt, commitment, "
                "shared, attempts, code, message, updated) VALUES (?, ?, ?, ?, ?, ?, 0, '', '', ?)",
                (
                    report.interval_start,
                    report.import_wh,
                    report.export_wh,
                    opening.salt,
                    commitment,
                    PENDING if self.share is not None else KEPT,
                    now,
                ),
            )
            self.next_nonce += 1
            self.store.put("outbox", {"next_nonce": self.next_nonce})
        self._wake.set()
        return tx.id

    def opening(self, interval_start: int) -> Opening | None:
        """The reading and salt behind one interval's report."""
        found = self.openings(interval_start, interval_start + 1)
        return found[0] if found else None

    def openings(self, start: int, end: int, limit: int = 100_000) -> list[Opening]:
        """The openings of the reports of intervals ``start <= T < end``, in interval order."""
        rows = self.store.db.execute(
            "SELECT interval_start, import_wh, export_wh, salt FROM openings "
            "WHERE interval_start >= ? AND interval_start < ? ORDER BY interval_start LIMIT ?",
            (start, end, limit),
        ).fetchall()
        return [Opening(self.key.address, t, imp, exp, bytes(salt)) for t, imp, exp, salt in rows]

    def proof(self, start: int, end: int) -> Proof:
        """What the home hands over in a dispute: the openings of its reports in the range."""
        return Proof(self.chain_id, tuple(self.openings(start, end)))

    def shared(self) -> dict[str, int]:
        """How many readings are in each state of sharing with the concentrator."""
        rows = self.store.db.execute("SELECT shared, COUNT(*) FROM openings GROUP BY shared")
        return {PENDING: 0, STORED: 0, REFUSED: 0, KEPT: 0} | dict(rows.fetchall())

    def share_status(self, interval_start: int) -> tuple[str, str] | None:
        """``(state, last code)`` of one interval's reading with the concentrator."""
        row = self.store.db.execute(
            "SELECT shared, code FROM openings WHERE interval_start = ?", (interval_start,)
        ).fetchone()
        return None if row is None else (row[0], row[1])

    def counts(self) -> dict[str, int]:
        """How many reports are in each state."""
        rows = self.store.db.execute("SELECT status, COUNT(*) FROM outbox GROUP BY status")
        return {PENDING: 0, SENT: 0, DONE: 0, GONE: 0} | dict(rows.fetchall())

    def status(self, interval_start: int) -> tuple[str, str] | None:
        """``(state, last code)`` of one interval's report."""
        row = self.store.db.execute(
            "SELECT status, code FROM outbox WHERE interval_start = ?", (interval_start,)
        ).fetchone()
        return None if row is None else (row[0], row[1])

    async def sync_nonce(self) -> None:
        """Make the next nonce larger than the ledger's last for this key (if it can ask)."""
        if self.chain_nonce is None:
            return
        last = await self.chain_nonce()
        if last >= self.next_nonce:
            LOG.warning("the ledger has used nonces up to %d; continuing from there", last)
            self._resign(from_nonce=None, floor=last + 1)

    def _resign(self, from_nonce: int | None, floor: int) -> None:
        """Sign pending reports again with fresh nonces from ``max(next, floor)`` on."""
        with self.store.transaction() as db:
            rows = db.execute(
                "SELECT interval_start, wire FROM outbox WHERE status = ? AND nonce >= ? "
                "ORDER BY nonce",
                (PENDING, from_nonce or 0),
            ).fetchall()
            nonce = max(self.next_nonce, floor)
            for start, wire in rows:
                body = _report_body(bytes(wire))
                tx = sign(self.key, self.chain_id, TxType.REPORT, nonce, body)
                assert body["interval_start"] == start
                db.execute(
                    "UPDATE outbox SET nonce = ?, tx_id = ?, wire = ? WHERE interval_start = ?",
                    (tx.nonce, tx.id, tx.wire(), start),
                )
                nonce += 1
            self.next_nonce = nonce
            self.store.put("outbox", {"next_nonce": self.next_nonce})

    # -- sending ----------------------------------------------------------------------

    def _due(self) -> list[tuple[int, int, bytes, str]]:
        confirm_before = self.clock.now() - self.confirm_after
        rows = self.store.db.execute(
            "SELECT interval_start, nonce, wire, status FROM outbox "
            "WHERE status = ? OR (status = ? AND updated <= ?) ORDER BY nonce",
            (PENDING, SENT, confirm_before),
        ).fetchall()
        return [(start, nonce, bytes(wire), status) for start, nonce, wire, status in rows]

    def _record(self, start: int, status: str, outcome: SubmitOutcome, attempt: bool) -> None:
        with self.store.transaction() as db:
            db.execute(
                "UPDATE outbox SET status = ?, code = ?, message = ?, updated = ?, "
                "attempts = attempts + ? WHERE interval_start = ?",
                (status, outcome.code, outcome.message, self.clock.now(), int(attempt), start),
            )

    async def flush(self) -> bool:
        """One pass over the reports due, in nonce order; False if it stopped on a failure."""
        resigned = 0
        due = self._due()
        index = 0
        while index < len(due):
            start, nonce, wire, status = due[index]
            index += 1
            try:
                outcome = await self.submit(wire)
            except (OSError, aiohttp.ClientError, TimeoutError) as err:
                self._record(start, status, Outcome("unreachable", str(err)), attempt=True)
                self.failures += 1
                return False
            code = outcome.code
            if code in IN_MEMPOOL:
                self._record(start, SENT, outcome, attempt=status == PENDING)
            elif code in COMMITTED:
                self._record(start, DONE, outcome, attempt=False)
            elif code in DROPPED:
                LOG.warning("report for interval %d dropped: %s", start, outcome.message)
                self._record(start, GONE, outcome, attempt=False)
            elif code == "stale_nonce" and resigned < 3:
                # Neither in the mempool nor committed, and its nonce is used up.
                resigned += 1
                floor = await self.chain_nonce() + 1 if self.chain_nonce else self.next_nonce
                LOG.warning("nonce %d already used; signing again from %d", nonce, floor)
                self._record(start, PENDING, outcome, attempt=True)
                self._resign(from_nonce=nonce, floor=floor)
                due = self._due()
                index = 0
                continue
            else:
                LOG.info("report for interval %d not taken: %s %s", start, code, outcome.message)
                self._record(start, status, outcome, attempt=True)
                self.failures += 1
                return False
        self.failures = 0
        return True

    async def flush_shares(self) -> bool:
        """One pass over the readings the concentrator does not have yet, in interval order;
        False if it stopped on a failure (or there is nowhere to send them)."""
        if self.share is None:
            return True
        rows = self.store.db.execute(
            "SELECT o.interval_start, o.import_wh, o.export_wh, o.salt, b.wire "
            "FROM openings o JOIN outbox b ON b.interval_start = o.interval_start "
            "WHERE o.shared = ? ORDER BY o.interval_start",
            (PENDING,),
        ).fetchall()
        for start, imported, exported, salt, wire in rows:
            message = {
                "report": bytes(wire).decode(),
                "import_wh": imported,
                "export_wh": exported,
                "salt": bytes(salt).hex(),
            }
            try:
                outcome = await self.share(message)
            except (OSError, aiohttp.ClientError, TimeoutError) as err:
                self._shared(start, PENDING, Outcome("unreachable", str(err)))
                return False
            if outcome.code in SHARED:
                self._shared(start, STORED, outcome)
            elif outcome.code in NOT_SHAREABLE:
                LOG.warning(
                    "the concentrator refused the reading of %d: %s %s",
                    start,
                    outcome.code,
                    outcome.message,
                )
                self._shared(start, REFUSED, outcome)
            else:
                LOG.info(
                    "reading of %d not shared yet: %s %s", start, outcome.code, outcome.message
                )
                self._shared(start, PENDING, outcome)
                return False
        return True

    def _shared(self, start: int, state: str, outcome: SubmitOutcome) -> None:
        with self.store.transaction() as db:
            db.execute(
                "UPDATE openings SET shared = ?, code = ?, message = ?, updated = ?, "
                "attempts = attempts + 1 WHERE interval_start = ?",
                (state, outcome.code, outcome.message, self.clock.now(), start),
            )

    def retry_delay(self) -> float:
        """Seconds to wait after ``failures`` failed passes."""
        if not self.failures:
            return self.confirm_after
        return float(min(self.backoff_max, self.backoff * 2 ** (self.failures - 1)))

    def wake(self) -> None:
        """Send now (a new report, or the node is back)."""
        self._wake.set()

    async def run(self, stop: asyncio.Event) -> None:
        """Flush, then wait for a new report, a retry or a confirmation, until ``stop``."""
        if self.chain_nonce is not None:
            with contextlib.suppress(Exception):
                await self.sync_nonce()
        while not stop.is_set():
            self._wake.clear()
            try:
                sent = await self.flush()
                if not await self.flush_shares() and sent:
                    self.failures += 1
            except Exception:
                LOG.exception("the outbox could not send")
                self.failures += 1
            waiters = {asyncio.ensure_future(stop.wait()), asyncio.ensure_future(self._wake.wait())}
            try:
                await asyncio.wait(
                    waiters, timeout=self._real_delay(), return_when=asyncio.FIRST_COMPLETED
                )
            finally:
                for waiter in waiters:
                    waiter.cancel()
                await asyncio.gather(*waiters, return_exceptions=True)

    def _real_delay(self) -> float:
        """The retry delay in real seconds (the clock may run faster)."""
        speed = getattr(self.clock, "speed", 1.0)
        return self.retry_delay() / float(speed)


def _report_body(wire: bytes) -> dict[str, Any]:
    body: dict[str, Any] = json.loads(wire)["tx"]["body"]
    return body


# -- ways to submit ----------------------------------------------------------------------


def node_submitter(node: Any) -> Submit:  # noqa: ANN401 - a ledger_core.node.Node
    """Submit to a :class:`~ledger_core.node.Node` in this process."""

    async def submit(wire: bytes) -> SubmitOutcome:
        result: SubmitOutcome = node.submit(wire)
        return result

    return submit


def node_chain_nonce(node: Any, address: str) -> ChainNonce:  # noqa: ANN401 - a Node
    """The last nonce of ``address`` on a :class:`~ledger_core.node.Node` in this process."""

    async def last() -> int:
        return int(node.app.last_nonce(address))

    return last


def http_submitter(session: aiohttp.ClientSession, base_url: str, token: str) -> Submit:
    """Submit through a node's HTTP API (``POST /api/v1/txs``)."""
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}

    async def submit(wire: bytes) -> SubmitOutcome:
        async with session.post(
            base_url.rstrip("/") + "/api/v1/txs",
            data=wire,
            headers=headers,
            timeout=aiohttp.ClientTimeout(total=30),
        ) as response:
            try:
                payload = await response.json(content_type=None)
            except ValueError:
                return Outcome("bad_response", f"HTTP {response.status} without JSON")
        if response.status == 202:
            return Outcome("accepted")
        error = payload.get("error", {}) if isinstance(payload, dict) else {}
        return Outcome(
            str(error.get("code", f"http_{response.status}")), str(error.get("message", ""))
        )

    return submit


def http_sharer(session: aiohttp.ClientSession, base_url: str) -> Share:
    """Send readings to the concentrator's node (``POST /api/v1/readings``; no token: the
    meter's signature on the report authenticates the message)."""

    async def share(message: dict[str, Any]) -> SubmitOutcome:
        async with session.post(
            base_url.rstrip("/") + "/api/v1/readings",
            json=message,
            timeout=aiohttp.ClientTimeout(total=30),
        ) as response:
            try:
                payload = await response.json(content_type=None)
            except ValueError:
                return Outcome("bad_response", f"HTTP {response.status} without JSON")
        if response.status < 300 and isinstance(payload, dict):
            return Outcome(str(payload.get("status", "stored")))
        error = payload.get("error", {}) if isinstance(payload, dict) else {}
        return Outcome(
            str(error.get("code", f"http_{response.status}")), str(error.get("message", ""))
        )

    return share


def http_chain_nonce(
    session: aiohttp.ClientSession, base_url: str, token: str, address: str
) -> ChainNonce:
    """The last nonce of ``address`` read through a node's HTTP API (``/state/nonce/...``)."""
    headers = {"Authorization": f"Bearer {token}"}

    async def last() -> int:
        async with session.get(
            f"{base_url.rstrip('/')}/api/v1/state/nonce/{address}",
            headers=headers,
            timeout=aiohttp.ClientTimeout(total=30),
        ) as response:
            if response.status == 404:
                return 0
            payload = await response.json(content_type=None)
            response.raise_for_status()
        value = payload.get("value") if isinstance(payload, dict) else None
        return value if isinstance(value, int) else 0

    return last
