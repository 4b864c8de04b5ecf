"""Demand-response events with OpenADR 2.0b semantics, issued by the operator.

An event (``dr_event`` transaction) carries one signal:

* ``SIMPLE`` with a ``level`` 0-3 (normal, moderate, high, special), the level
  contracts read as ``DRLevel``;
* ``ELECTRICITY_PRICE`` with a ``price`` (10^-4 MXN/kWh) for the event;
* ``LOAD_DISPATCH`` with a ``setpoint_w`` (absolute, W) or a ``delta_w``
  (change from the participant's usual load, W; negative sheds).

Its active period is ``[start, start + duration)``; ``ramp_up`` seconds before
the start resources may begin to move, ``recovery`` seconds after the end they
may return. ``targets`` lists participants' addresses; empty means everyone.
Every change, cancellation included, is a new transaction with the next
``modification_number`` (0 when issued); the ledger refuses a number that is
not larger than the last one (saying which it has and which comes next), an
issue (number 0) of an id that exists, and any change to a cancelled event.

Event ids: ``<prefix>-<UTC time of issue>-<12 random hex digits>``, e.g.
``dr-20260310T180000Z-3fa9c1d2e4b7``. The random part (48 bits) keeps two events
issued in the same second -- by the concentrator's API, the CLI, Home
Assistant -- two events; should ids ever meet, the ledger refuses the second
issue (``event_exists``) and the manager issues it again under a new id.

The status (OpenADR ``eventStatus``) follows from the time, the modification
and the cancellation: ``far`` until ``max(near_seconds, ramp_up)`` before the
start, then ``near``, ``active`` during the active period, ``completed`` after
it, and ``cancelled`` once cancelled. :meth:`DrEvent.phase` refines it with
the ramp-up and recovery periods.

:class:`DrManager` is the operator's side: it issues, modifies and cancels
events, always from the ledger's latest record of the event, and one change at
a time, so that modification numbers never collide.
"""

from __future__ import annotations

import asyncio
import dataclasses
import secrets
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Final

from ledger_core.clock import Clock
from ledger_core.concentrator.ledger import PENDING, UNAVAILABLE, Body, Ledger
from ledger_core.types import codec
from ledger_core.types.fields import FieldError
from ledger_core.types.tx import BODY_CHECKS, EVENT_ID_RE, TxType

DEFAULT_NEAR_SECONDS: Final = 3600
MAX_DURATION: Final = 7 * 86400
ID_ATTEMPTS: Final = 3  # fresh ids tried before giving up (each collision is ~2^-48)


def new_event_id(prefix: str, now: float) -> str:
    """A new event id: ``prefix``, the UTC time of issue, 12 random hex digits."""
    moment = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(max(0, int(now))))
    return f"{prefix}-{moment}-{secrets.token_hex(6)}"


class SignalName(StrEnum):
    """The OpenADR 2.0b signals a ``dr_event`` carries."""

    SIMPLE = "SIMPLE"
    ELECTRICITY_PRICE = "ELECTRICITY_PRICE"
    LOAD_DISPATCH = "LOAD_DISPATCH"


class Status(StrEnum):
    """OpenADR ``eventStatus``."""

    FAR = "far"
    NEAR = "near"
    ACTIVE = "active"
    COMPLETED = "completed"
    CANCELLED = "cancelled"


class Phase(StrEnum):
    """Where in its periods an event is."""

    PENDING = "pending"
    RAMP_UP = "ramp_up"
    ACTIVE = "active"
    RECOVERY = "recovery"
    OVER = "over"
    CANCELLED = "cancelled"


class DrError(Exception):
    """An operator command that cannot be carried out: ``code``, ``message``, ``field``.

    ``status`` is the HTTP status the operator API answers with.
    """

    def __init__(self, status: int, code: str, message: str, field: str | None = None) -> None:
        self.status = status
        self.code = code
        self.message = message
        self.field = field
        super().__init__(f"{code}: {message}" + (f" ({field})" if field else ""))


@dataclass(frozen=True, slots=True)
class DrSignal:
    """One signal; exactly the field of its kind is set."""

    name: SignalName
    level: int | None = None
    price: int | None = None
    setpoint_w: int | None = None
    delta_w: int | None = None

    @classmethod
    def simple(cls, level: int) -> DrSignal:
        """OpenADR SIMPLE: 0 normal, 1 moderate, 2 high, 3 special."""
        return cls(SignalName.SIMPLE, level=level)

    @classmethod
    def electricity_price(cls, price: int) -> DrSignal:
        """A price in 10^-4 MXN/kWh for the event's duration."""
        return cls(SignalName.ELECTRICITY_PRICE, price=price)

    @classmethod
    def setpoint(cls, watts: int) -> DrSignal:
        """LOAD_DISPATCH to an absolute load in W."""
        return cls(SignalName.LOAD_DISPATCH, setpoint_w=watts)

    @classmethod
    def delta(cls, watts: int) -> DrSignal:
        """LOAD_DISPATCH by a change of load in W (negative: shed)."""
        return cls(SignalName.LOAD_DISPATCH, delta_w=watts)

    def to_json(self) -> dict[str, codec.Value]:
        """The ``signal`` object of the transaction body."""
        out: dict[str, codec.Value] = {"name": str(self.name)}
        for key in ("level", "price", "setpoint_w", "delta_w"):
            value = getattr(self, key)
            if value is not None:
                out[key] = value
        return out

    @classmethod
    def from_json(cls, value: object, field: str = "signal") -> DrSignal:
        """A signal object, checked as the ledger checks it; :class:`DrError` names the field."""
        if not isinstance(value, dict):
            raise DrError(400, "malformed", "must be an object", field)
        try:
            BODY_CHECKS[TxType.DR_EVENT](_probe(value))
        except FieldError as err:
            where = field + err.field.removeprefix("body.signal")
            raise DrError(400, "malformed", err.message, where) from None
        return cls(
            SignalName(value["name"]),
            level=value.get("level"),
            price=value.get("price"),
            setpoint_w=value.get("setpoint_w"),
            delta_w=value.get("delta_w"),
        )

    def describe(self) -> str:
        """One line for people."""
        if self.name is SignalName.SIMPLE:
            return f"SIMPLE level {self.level}"
        if self.name is SignalName.ELECTRICITY_PRICE:
            return f"ELECTRICITY_PRICE {self.price} (10^-4 MXN/kWh)"
        if self.setpoint_w is not None:
            return f"LOAD_DISPATCH setpoint {self.setpoint_w} W"
        return f"LOAD_DISPATCH delta {self.delta_w:+d} W"


def _probe(signal: dict[str, codec.Value], **body: codec.Value) -> Body:
    """A complete body around ``signal``, so the ledger's own checks judge it."""
    return {
        "event_id": "probe",
        "modification_number": 0,
        "signal": signal,
        "start": 0,
        "duration": 1,
        "targets": [],
        "cancelled": False,
        **body,
    }


@dataclass(frozen=True, slots=True)
class DrEvent:
    """One demand-response event in one modification."""

    event_id: str
    modification_number: int
    signal: DrSignal
    start: int
    duration: int
    targets: tuple[str, ...] = ()
    cancelled: bool = False
    ramp_up: int = 0
    recovery: int = 0

    @property
    def end(self) -> int:
        """The end of the active period (excluded)."""
        return self.start + self.duration

    def body(self) -> Body:
        """The ``dr_event`` transaction body (ramp fields only when set, as old bodies)."""
        body: Body = {
            "event_id": self.event_id,
            "modification_number": self.modification_number,
            "signal": self.signal.to_json(),
            "start": self.start,
            "duration": self.duration,
            "targets": list(self.targets),
            "cancelled": self.cancelled,
        }
        if self.ramp_up:
            body["ramp_up"] = self.ramp_up
        if self.recovery:
            body["recovery"] = self.recovery
        return body

    def check(self) -> None:
        """Raise :class:`DrError` if the ledger would find the body malformed."""
        try:
            BODY_CHECKS[TxType.DR_EVENT](self.body())
        except FieldError as err:
            raise DrError(400, "malformed", err.message, err.field.removeprefix("body.")) from None

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> DrEvent:
        """From the ledger's record, an event-stream ``dr_event`` event, or a body."""
        return cls(
            event_id=str(record["event_id"]),
            modification_number=int(record["modification_number"]),
            signal=DrSignal.from_json(record["signal"]),
            start=int(record["start"]),
            duration=int(record["duration"]),
            targets=tuple(str(t) for t in record["targets"]),
            cancelled=bool(record["cancelled"]),
            ramp_up=int(record.get("ramp_up", 0)),
            recovery=int(record.get("recovery", 0)),
        )

    def status(self, now: float, near_seconds: int = DEFAULT_NEAR_SECONDS) -> Status:
        """OpenADR ``eventStatus`` at ``now``."""
        if self.cancelled:
            return Status.CANCELLED
        if now >= self.end:
            return Status.COMPLETED
        if now >= self.start:
            return Status.ACTIVE
        if now >= self.start - max(near_seconds, self.ramp_up):
            return Status.NEAR
        return Status.FAR

    def phase(self, now: float) -> Phase:
        """Pending, ramping up, active, recovering, over (or cancelled) at ``now``."""
        if self.cancelled:
            return Phase.CANCELLED
        if now < self.start - self.ramp_up:
            return Phase.PENDING
        if now < self.start:
            return Phase.RAMP_UP
        if now < self.end:
            return Phase.ACTIVE
        if now < self.end + self.recovery:
            return Phase.RECOVERY
        return Phase.OVER

    def applies_to(self, participant: str) -> bool:
        """Whether ``participant`` is targeted (no targets: everyone is)."""
        return not self.targets or participant in self.targets

    def to_json(self, now: float, near_seconds: int = DEFAULT_NEAR_SECONDS) -> dict[str, Any]:
        """The event with its status and phase at ``now``, for the operator and the web UI."""
        return {
            **self.body(),
            "ramp_up": self.ramp_up,
            "recovery": self.recovery,
            "end": self.end,
            "status": str(self.status(now, near_seconds)),
            "phase": str(self.phase(now)),
            "describe": self.signal.describe(),
        }


def dr_level_at(events: Iterable[DrEvent], participant: str, now: float) -> int:
    """The SIMPLE level in force for ``participant`` at ``now`` (0 without an active event).

    What a meter feeds to contracts as ``MeterState.dr_level``: the highest
    level among events that are active now, not cancelled, and target it.
    """
    levels = [
        e.signal.level or 0
        for e in events
        if e.signal.name is SignalName.SIMPLE
        and e.status(now) is Status.ACTIVE
        and e.applies_to(participant)
    ]
    return max(levels, default=0)


class DrManager:
    """Issues, modifies and cancels events through the ledger, one change at a time.

    ``new_id(prefix, now)`` makes the id of an event issued without one
    (:func:`new_event_id`; a test can pass ids that collide on purpose).
    """

    def __init__(
        self,
        ledger: Ledger,
        clock: Clock,
        *,
        id_prefix: str = "dr",
        near_seconds: int = DEFAULT_NEAR_SECONDS,
        new_id: Callable[[str, float], str] = new_event_id,
    ) -> None:
        if not EVENT_ID_RE.fullmatch(new_event_id(id_prefix, 0)):
            raise ValueError(
                "id_prefix must be letters, digits, '_', '.', ':' or '-', at most 34 of them"
            )
        self.ledger = ledger
        self.clock = clock
        self.id_prefix = id_prefix
        self.near_seconds = near_seconds
        self.new_id = new_id
        self.known: dict[str, DrEvent] = {}
        self._lock = asyncio.Lock()

    def observe(self, record: Mapping[str, Any]) -> DrEvent:
        """Learn an event from the ledger (an event-stream ``dr_event`` or a record)."""
        event = DrEvent.from_record(record)
        known = self.known.get(event.event_id)
        if known is None or event.modification_number > known.modification_number:
            self.known[event.event_id] = event
            return event
        return known

    async def current(self, event_id: str) -> DrEvent | None:
        """The ledger's latest modification of an event."""
        record = await self.ledger.dr_event(event_id)
        return self.observe(record) if record is not None else None

    def events(self, now: float | None = None, *, include_finished: bool = False) -> list[DrEvent]:
        """Known events by start time; finished ones (completed, cancelled) only if asked."""
        moment = self.clock.now() if now is None else now
        return sorted(
            (
                e
                for e in self.known.values()
                if include_finished or e.status(moment) not in (Status.COMPLETED, Status.CANCELLED)
            ),
            key=lambda e: (e.start, e.event_id),
        )

    async def issue(
        self,
        signal: DrSignal,
        start: int,
        duration: int,
        *,
        targets: Iterable[str] = (),
        ramp_up: int = 0,
        recovery: int = 0,
        event_id: str | None = None,
    ) -> DrEvent:
        """Issue a new event (modification 0); its id is generated unless given."""
        async with self._lock:
            now = self.clock.now()
            if start + duration <= now:
                raise DrError(400, "past_event", "the event would already be over", "start")
            chosen = event_id
            if chosen is not None and await self.ledger.dr_event(chosen) is not None:
                raise DrError(
                    409, "event_exists", f"event {chosen} exists; modify it instead", "event_id"
                )
            for _ in range(ID_ATTEMPTS):
                event = DrEvent(
                    chosen or await self._fresh_id(now),
                    0,
                    signal,
                    start,
                    duration,
                    tuple(targets),
                    ramp_up=ramp_up,
                    recovery=recovery,
                )
                try:
                    return await self._send(event)
                except DrError as err:
                    # Another issuer took the id in the meantime: a generated id is
                    # drawn again; an id the operator chose is theirs to change.
                    if err.code != "event_exists" or chosen is not None:
                        raise
            raise DrError(409, "no_free_id", "no free event id; try again")

    async def modify(
        self,
        event_id: str,
        *,
        signal: DrSignal | None = None,
        start: int | None = None,
        duration: int | None = None,
        targets: Iterable[str] | None = None,
        ramp_up: int | None = None,
        recovery: int | None = None,
    ) -> DrEvent:
        """Change an event that has not completed; the modification number goes up by one.

        A request that changes nothing sends nothing and returns the event as it is.
        """
        async with self._lock:
            event = await self._changeable(event_id)
            changes: dict[str, Any] = {
                key: value
                for key, value in (
                    ("signal", signal),
                    ("start", start),
                    ("duration", duration),
                    ("targets", tuple(targets) if targets is not None else None),
                    ("ramp_up", ramp_up),
                    ("recovery", recovery),
                )
                if value is not None
            }
            changed = dataclasses.replace(event, **changes)
            if changed == event:
                return event
            if changed.end <= self.clock.now():
                raise DrError(400, "past_event", "the event would already be over", "start")
            modified = dataclasses.replace(
                changed, modification_number=event.modification_number + 1
            )
            return await self._send(modified)

    async def cancel(self, event_id: str) -> DrEvent:
        """Cancel an event that has not completed (a new modification with ``cancelled``)."""
        async with self._lock:
            event = await self._changeable(event_id)
            cancelled = dataclasses.replace(
                event, modification_number=event.modification_number + 1, cancelled=True
            )
            return await self._send(cancelled)

    async def _changeable(self, event_id: str) -> DrEvent:
        if not EVENT_ID_RE.fullmatch(event_id):
            raise DrError(400, "malformed", f"does not match {EVENT_ID_RE.pattern}", "event_id")
        event = await self.current(event_id)
        if event is None:
            raise DrError(404, "unknown_event", f"no demand-response event {event_id!r}")
        status = event.status(self.clock.now(), self.near_seconds)
        if status is Status.CANCELLED:
            raise DrError(409, "cancelled_event", f"event {event_id} is cancelled")
        if status is Status.COMPLETED:
            raise DrError(409, "completed_event", f"event {event_id} has completed")
        return event

    async def _fresh_id(self, now: float) -> str:
        for _ in range(ID_ATTEMPTS):
            candidate = self.new_id(self.id_prefix, now)
            if candidate not in self.known and await self.ledger.dr_event(candidate) is None:
                return candidate
        raise DrError(409, "no_free_id", "no free event id; try again")

    async def _send(self, event: DrEvent) -> DrEvent:
        event.check()
        (outcome,) = await self.ledger.submit([(TxType.DR_EVENT, event.body())])
        if outcome.code == UNAVAILABLE:
            raise DrError(503, UNAVAILABLE, f"the node could not be reached: {outcome.message}")
        if outcome.code == PENDING:
            raise DrError(
                504, PENDING, f"submitted but not yet committed; see /signals/dr/{event.event_id}"
            )
        if outcome.code in ("event_exists", "stale_modification"):
            # Someone else issued or changed the event since it was read here.
            field = "event_id" if outcome.code == "event_exists" else None
            raise DrError(409, outcome.code, outcome.message, field)
        if not outcome.ok:
            raise DrError(422, outcome.code, outcome.message)
        self.known[event.event_id] = event
        return event
