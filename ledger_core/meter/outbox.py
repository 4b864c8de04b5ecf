"""The outbox: signed interval reports, kept on disk until the ledger has them.

A closed interval becomes a ``report`` transaction signed by the meter key
with the key's next nonce; the transaction and the next nonce are stored in
the same SQLite transaction as the counters and the interval that produced it
(``store.py``), before anything is sent. A meter whose node or network is down
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
from ledger_core.types.tx import TxType, sign

LOG: Final = logging.getLogger(__name__)
IN_MEMPOOL: Final = frozenset({"accepted", "duplicate"})
COMMITTED: Final = frozenset({"already_committed", "duplicate_report"})
DROPPED: Final = frozenset({"late_report"})
PENDING, SENT, DONE, GONE = "pending", "sent", "committed", "dropped"


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
        """Sign and store a report (inside the caller's transaction); its transaction id."""
        with self.store.transaction() as db:
            tx = sign(self.key, self.chain_id, TxType.REPORT, self.next_nonce, dict(report.body()))
            db.execute(
                "INSERT INTO outbox (interval_start, nonce, tx_id, wire, status, attempts, code, "
                "message, updated) VALUES (?, ?, ?, ?, ?, 0, '', '', ?)",
                (report.interval_start, tx.nonce, tx.id, tx.wire(), PENDING, self.clock.now()),
            )
            self.next_nonce += 1
            self.store.put("outbox", {"next_nonce": self.next_nonce})
        self._wake.set()
        return tx.id

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
                await self.flush()
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
