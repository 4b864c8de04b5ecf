"""Metered energy at the concentrator: readings in, deliveries and bills out (docs/privacy.md).

:class:`MeterData` is the concentrator's side of the meters' private data:

* :meth:`MeterData.receive` takes a reading a meter shares (``POST
  /api/v1/readings``): the meter's signed report and the opening of its
  commitment. It is kept in :class:`~ledger_core.concentrator.readings.ReadingStore`
  only if the report is signed by a meter bound on the chain and the opening
  opens the report's commitment, so whatever carried it, it is the meter's.
* :meth:`MeterData.settle` submits, signed by the operator (who must hold the
  DSO role), what settlement needs: for each interval whose trades wait, its
  ``delivery`` (each seller's export up to what it sold, citing its meters);
  for each participant and local day that is over, its ``bill`` (its energy
  with the supplier, per pair of final prices, citing each report). It waits
  for a reading it lacks while its meter may still send it (the report grace),
  and for an interval's delivery before the day's bill. Everything it submits
  is checked by the ledger (``ledger_core/state/market/metered.py``) and can be
  checked by the home from its own readings.
* :meth:`MeterData.erase` deletes a departed participant's readings.

Every step is idempotent: what is already settled is skipped, so a restart or a
second run submits nothing twice, and a refusal is retried at the next call.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from ledger_core.concentrator.ledger import Ledger, Outcome
from ledger_core.concentrator.readings import Erasure, Held, ReadingStore
from ledger_core.state import keys
from ledger_core.types import codec
from ledger_core.types.fields import FieldError
from ledger_core.types.genesis import Params
from ledger_core.types.metering import IntervalUse, Opening, bill_lines, delivered
from ledger_core.types.tx import MAX_SELLERS, MAX_TX_BYTES, Role, TxType, decode

LOG: Final = logging.getLogger(__name__)
DAY: Final = 86400
PRICE_LOOKBACK: Final = 31 * DAY
MAX_SHARE_BYTES: Final = 8192
AWAITING_DELIVERY: Final = "awaiting_delivery"
SHARE_FIELDS: Final = frozenset({"report", "import_wh", "export_wh", "salt"})

type Body = dict[str, codec.Value]


class MeteringError(Exception):
    """A refused reading or erasure: an HTTP status, a stable code, what and where."""

    def __init__(self, status: int, code: str, message: str, field: str | None = None) -> None:
        self.status = status
        self.code = code
        self.message = message
        self.field = field
        super().__init__(f"{code}: {message}")


@dataclass(frozen=True, slots=True)
class Received:
    """A reading kept (``stored``), or kept already (``duplicate``)."""

    status: str
    meter: str
    interval_start: int


@dataclass(slots=True)
class Settled:
    """What one :meth:`MeterData.settle` submitted, and the ledger's answers."""

    deliveries: list[tuple[int, Outcome]] = field(default_factory=list)
    bills: list[tuple[str, int, Outcome]] = field(default_factory=list)
    waiting: list[str] = field(default_factory=list)


# A delivery's sellers per transaction: under MAX_SELLERS, and few enough bytes that the
# signed transaction stays under MAX_TX_BYTES (the envelope takes about 400).
PART_BYTES: Final = MAX_TX_BYTES - 1024


def delivery_parts(sellers: list[codec.Value]) -> list[list[codec.Value]]:
    """An interval's delivery in parts that each fit one transaction (the ledger takes
    the parts in any order and settles at the last)."""
    parts: list[list[codec.Value]] = [[]]
    size = 0
    for seller in sellers:
        length = len(codec.encode(seller)) + 1
        if parts[-1] and (len(parts[-1]) == MAX_SELLERS or size + length > PART_BYTES):
            parts.append([])
            size = 0
        parts[-1].append(seller)
        size += length
    return parts


class MeterData:
    """The concentrator's readings and the settlement inputs it makes from them."""

    def __init__(
        self,
        store: ReadingStore,
        ledger: Ledger,
        chain_id: str,
        params: Params,
        *,
        clock: Callable[[], float] = time.time,
        on_reading: Callable[[Opening], None] | None = None,
    ) -> None:
        self.store = store
        self.ledger = ledger
        self.chain_id = chain_id
        self.params = params
        self.clock = clock
        self.on_reading = on_reading
        # (participant, day) with nothing left to bill once no report of the day can come.
        self._done: set[tuple[str, int]] = set()

    # -- readings in -----------------------------------------------------------------------

    async def receive(self, message: object) -> Received:
        """Keep a reading a meter shared, once checked against its signed report."""
        if not isinstance(message, dict):
            raise MeteringError(400, "malformed", "a reading is a JSON object", "body")
        for name in sorted(set(message) - SHARE_FIELDS):
            raise MeteringError(400, "malformed", "is not a field of a reading", name)
        for name in sorted(SHARE_FIELDS - set(message)):
            raise MeteringError(400, "malformed", "is missing", name)
        wire = message["report"]
        if not isinstance(wire, str):
            raise MeteringError(400, "malformed", "must be the report's wire text", "report")
        try:
            tx = decode(wire.encode())
        except FieldError as err:
            raise MeteringError(400, "malformed", err.message, f"report.{err.field}") from None
        if tx.type != TxType.REPORT:
            raise MeteringError(400, "malformed", "is not an interval report", "report")
        if tx.chain_id != self.chain_id:
            raise MeteringError(
                422, "wrong_chain", f"the report is for chain {tx.chain_id!r}", "report"
            )
        account = await self.ledger.value(keys.account(tx.signer))
        if not isinstance(account, dict) or account.get("role") != Role.METER:
            raise MeteringError(
                422, "unknown_meter", f"{tx.signer} is not a meter bound on this chain", "report"
            )
        if not tx.verify_signature(bytes.fromhex(str(account["public_key"]))):
            raise MeteringError(422, "bad_signature", "the report is not the meter's", "report")
        start = tx.body["interval_start"]
        try:
            opening = Opening.from_json(
                {
                    "meter": tx.signer,
                    "interval_start": start,
                    **{k: message[k] for k in ("import_wh", "export_wh", "salt")},
                },
                "",
            )
        except FieldError as err:
            raise MeteringError(400, "malformed", err.message, err.field.lstrip(".")) from None
        commitment = str(tx.body["commitment"])
        if not opening.opens(self.chain_id, commitment):
            raise MeteringError(
                422,
                "commitment_mismatch",
                "the reading and salt do not open the report's commitment",
                "salt",
            )
        added = self.store.add(Held(opening, commitment, str(account["owner"])), self.clock())
        if added and self.on_reading is not None:
            self.on_reading(opening)
        return Received("stored" if added else "duplicate", tx.signer, opening.interval_start)

    def bound(self, meter: str, participant: str) -> None:
        """A meter was bound to a participant (the chain's ``meter_bound`` event): its
        reports count for the participant even before any reading of it arrives."""
        self.store.bind(meter, participant)

    def held(self, meter: str, start: int, end: int, limit: int) -> dict[int, tuple[int, int, str]]:
        """The readings kept of ``meter`` (for ``/reports/{meter}``)."""
        return {
            h.opening.interval_start: (h.opening.import_wh, h.opening.export_wh, h.commitment)
            for h in self.store.of_meter(meter, start, end, limit)
        }

    # -- settlement inputs out ---------------------------------------------------------------

    @property
    def lookback(self) -> int:
        """How far back settlement looks: until a day's bills close (``bill_deadline_seconds``
        after the day and the settlement delay), after which its records leave the live
        state; a report may come late by the grace, which is shorter."""
        p = self.params
        return p.settlement_delay_seconds + p.bill_deadline_seconds + DAY

    def _may_still_come(self, interval_start: int, now: float) -> bool:
        """Whether a meter may still send the reading of an interval (the report grace)."""
        end = interval_start + self.params.interval_seconds
        return now < end + self.params.report_grace_seconds

    async def settle(self, now: float | None = None) -> Settled:
        """Submit every delivery and bill that is due and can be made now."""
        now = self.clock() if now is None else now
        done = Settled()
        await self._deliveries(now, done)
        await self._bills(now, done)
        for what, outcome in [(f"delivery {t}", o) for t, o in done.deliveries] + [
            (f"bill {p} {d}", o) for p, d, o in done.bills
        ]:
            if not outcome.ok:
                LOG.warning("%s: %s %s", what, outcome.code, outcome.message)
        return done

    async def _matching(
        self, meter: str, start: int, end: int
    ) -> dict[int, tuple[dict[str, Any], Held | None]]:
        """A meter's reports on chain in the range, each with the reading that opens it."""
        on_chain = await self.ledger.reports(meter, start, end)
        kept: dict[int, Held] = {}
        for held in self.store.of_meter(meter, start, end):
            record = on_chain.get(held.opening.interval_start)
            if record is not None and record.get("commitment") == held.commitment:
                kept[held.opening.interval_start] = held
        return {t: (record, kept.get(t)) for t, record in on_chain.items()}

    def _meters_of(self, participant: str) -> list[str]:
        return sorted(meter for meter, owner in self.store.meters().items() if owner == participant)

    async def _deliveries(self, now: float, done: Settled) -> None:
        interval = self.params.interval_seconds
        rows = await self.ledger.intervals(int(now) - self.lookback, int(now) + 1)
        txs: list[tuple[TxType, Body]] = []
        starts: list[int] = []
        for row in rows:
            if row.get("settlement") != AWAITING_DELIVERY:
                continue
            start = int(row["interval_start"])
            if start + interval > now:
                # The chain is ahead of ``now`` (taken before slow work, or by a clock
                # behind the block time): the interval is settled at a later call.
                continue
            sold: dict[str, int] = {}
            for index in range(int(row.get("trades", 0))):
                trade = await self.ledger.value(keys.trade(start, index))
                assert isinstance(trade, dict), (start, index)
                seller = str(trade["seller"])
                sold[seller] = sold.get(seller, 0) + int(trade["energy_wh"])
            sellers: list[codec.Value] = []
            waiting = False
            for seller in sorted(sold):
                cited: list[codec.Value] = []
                exported = 0
                for meter in self._meters_of(seller):
                    for _, (_record, held) in (
                        await self._matching(meter, start, start + 1)
                    ).items():
                        if held is None:
                            waiting = waiting or self._may_still_come(start, now)
                            continue
                        cited.append(meter)
                        exported += held.opening.export_wh
                sellers.append(
                    {
                        "participant": seller,
                        "delivered_wh": delivered(exported, sold[seller]),
                        "meters": cited,
                    }
                )
            if waiting:
                done.waiting.append(f"delivery {start}: a seller's reading may still come")
                continue
            for part in delivery_parts(sellers):
                txs.append((TxType.DELIVERY, {"interval_start": start, "sellers": part}))
                starts.append(start)
        if txs:
            done.deliveries.extend(zip(starts, await self.ledger.submit(txs), strict=True))

    async def _bills(self, now: float, done: Settled) -> None:
        p = self.params
        last = p.day_of(int(now) - p.settlement_delay_seconds - DAY)
        if last + DAY + p.settlement_delay_seconds > now:  # a day of 23 or 25 hours
            last -= DAY
        day = p.day_of(int(now) - self.lookback)
        txs: list[tuple[TxType, Body]] = []
        which: list[tuple[str, int]] = []
        while day <= last:
            if now >= p.day_closes(day):  # its bills are closed: the ledger refuses them
                day += DAY
                continue
            final = now >= day + DAY + p.report_grace_seconds  # no report of the day can come
            owners = [
                o for o in self.store.owners_between(day, day + DAY) if (o, day) not in self._done
            ]
            prices = await self._prices(day) if owners else []
            for participant in owners:
                waiting = len(done.waiting)
                body = await self._bill_of(participant, day, now, prices, done)
                if body is not None:
                    txs.append((TxType.BILL, body))
                    which.append((participant, day))
                elif final and len(done.waiting) == waiting:
                    self._done.add((participant, day))
            day += DAY
        if txs:
            outcomes = await self.ledger.submit(txs)
            done.bills.extend((who, d, o) for (who, d), o in zip(which, outcomes, strict=True))

    async def _prices(self, day: int) -> list[tuple[int, int, int]]:
        """``(interval start, import, export)`` of every price signal that can be a final
        price in ``day``, in time order."""
        found = await self.ledger.prices(day - PRICE_LOOKBACK, day + DAY)
        return sorted((t, p.import_price, p.export_price) for t, p in found.items())

    @staticmethod
    def _final(prices: list[tuple[int, int, int]], start: int) -> tuple[int, int] | None:
        """The interval's price signal, else the latest before it (the ledger's rule)."""
        best = None
        for t, imp, exp in prices:
            if t > start:
                break
            best = (imp, exp)
        return best

    async def _bill_of(
        self,
        participant: str,
        day: int,
        now: float,
        prices: list[tuple[int, int, int]],
        done: Settled,
    ) -> Body | None:
        """The bill of ``participant``'s ``day``, or None if there is nothing (yet) to bill."""
        late = await self.ledger.value(keys.bill(participant, day)) is not None
        bought: dict[int, int] = {}
        sold: dict[int, int] = {}
        for trade in await self.ledger.trades(participant, day, day + DAY):
            side = bought if trade["side"] == "buy" else sold
            start = int(trade["interval_start"])
            side[start] = side.get(start, 0) + int(trade["energy_wh"])
        cited: dict[str, list[int]] = {}
        readings: dict[int, list[Opening]] = {}
        for meter in self._meters_of(participant):
            for start, (record, held) in sorted(
                (await self._matching(meter, day, day + DAY)).items()
            ):
                if "billed" in record:
                    continue
                if held is None:
                    if self._may_still_come(start, now):
                        done.waiting.append(f"bill {participant} {day}: reading {start} may come")
                        return None
                    continue  # never sent: the report stays unbilled, visibly
                if late and (bought.get(start) or sold.get(start)):
                    continue  # a late report of an interval with trades is not billed
                if self._final(prices, start) is None:
                    continue  # an unpriced interval is not billed
                if not self.params.settle_all_reports:
                    position = await self.ledger.value(keys.position(participant, start))
                    if position is None:
                        continue
                cited.setdefault(meter, []).append(start)
                readings.setdefault(start, []).append(held.opening)
        if not cited:
            return None
        uses = []
        for start in sorted(readings):
            if sold.get(start):
                statement = await self.ledger.value(keys.statement(participant, start))
                if statement is None:
                    done.waiting.append(f"bill {participant} {day}: delivery of {start} pending")
                    return None
            final = self._final(prices, start)
            assert final is not None
            uses.append(
                IntervalUse(
                    start,
                    sum(o.import_wh for o in readings[start]),
                    sum(o.export_wh for o in readings[start]),
                    bought.get(start, 0),
                    sold.get(start, 0),
                    *final,
                )
            )
        return {
            "participant": participant,
            "day": day,
            "reports": [
                {"meter": meter, "intervals": list[codec.Value](starts)}
                for meter, starts in sorted(cited.items())
            ],
            "lines": [line.to_json() for line in bill_lines(uses)],
        }

    # -- erasure -------------------------------------------------------------------------------

    async def erase(self, participant: str, *, force: bool = False) -> Erasure:
        """Delete a departed participant's readings.

        Refused while its account is active (``not_departed``) or while readings of it wait
        for a bill (``readings_pending``), unless ``force``.
        """
        account = await self.ledger.value(keys.account(participant))
        if not isinstance(account, dict) or account.get("role") == Role.METER:
            raise MeteringError(
                404, "unknown_account", f"{participant} is not a participant", "participant"
            )
        if account.get("status") == "active" and not force:
            raise MeteringError(
                409,
                "not_departed",
                f"{participant} is still a member: revoke it first, or force the erasure",
                "participant",
            )
        if not force:
            pending = await self._unbilled(participant)
            if pending:
                raise MeteringError(
                    409,
                    "readings_pending",
                    f"{pending} readings of {participant} are on chain and not billed yet; "
                    "wait for the bills, or force the erasure",
                    "participant",
                )
        erasure = self.store.erase(participant, self.clock())
        LOG.info(
            "erased %d readings of %s (%s)",
            erasure.readings,
            participant,
            ", ".join(erasure.meters) or "no meters",
        )
        return erasure

    async def _unbilled(self, participant: str) -> int:
        held = self.store.of_owner(participant, 0, 1 << 40)
        if not held:
            return 0
        first = min(h.opening.interval_start for h in held)
        last = max(h.opening.interval_start for h in held) + 1
        pending = 0
        for meter in sorted({h.opening.meter for h in held}):
            for record, kept in (await self._matching(meter, first, last)).values():
                if kept is not None and "billed" not in record:
                    pending += 1
        return pending


def bills_due(settled: Settled) -> Mapping[str, int]:
    """How many inputs one settlement pass made, by kind (for logs and tests)."""
    return {"deliveries": len(settled.deliveries), "bills": len(settled.bills)}
