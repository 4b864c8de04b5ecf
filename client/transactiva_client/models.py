"""What a node answers and streams, as typed frozen values decoded from untrusted JSON.

Every decoder (``from_json``, ``from_event``, ``from_text``) accepts exactly what the node
sends and raises :class:`~transactiva_client.errors.DecodeError` naming the field for
anything else (``signal.level must be an integer from 0 to 3``); nothing else escapes.
Fields the node may leave out in this API version are optional here; extra fields are
ignored (a newer node may add some). Values of open enumerations this client does not
know are kept as plain strings (:mod:`transactiva_client.protocol`).

Units are the ledger's (:mod:`transactiva_client.units`): centavos, Wh, 10^-4 MXN/kWh and
Unix seconds; ``start`` is the start of a market interval (``interval_start`` on the
wire).
"""

from __future__ import annotations

import contextlib
import json
import math
import re
from dataclasses import dataclass, field
from datetime import date, datetime
from enum import StrEnum
from typing import Any, Final

from transactiva_client.errors import DecodeError
from transactiva_client.protocol import (
    ActionKind,
    ActionResult,
    ActionTrigger,
    AdmissionStatus,
    ApiVersion,
    ContractStatus,
    ErrorCode,
    EventKind,
    IntervalStatus,
    LocalEventKind,
    OrderSide,
    Role,
    Severity,
    SignalName,
    SupplyState,
    TxStatus,
    WalletReason,
    known,
)

ADDRESS_RE: Final = re.compile(r"tv[0-9a-f]{40}")
"""A participant's address: ``tv`` and 40 hex digits."""
HASH_RE: Final = re.compile(r"[0-9a-f]{64}")
"""A transaction or contract id: 64 hex digits."""
SHORT_ID_RE: Final = re.compile(r"0x[0-9A-F]{10}")
"""A contract's short id, as its receipt writes it."""
EVENT_ID_RE: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:\-]{0,63}")
"""A demand-response event's id."""

DEFAULT_INTERVAL_SECONDS: Final = 900
MAX_TIME: Final = 2**40
MAX_COUNT: Final = 2**62
MAX_PRICE: Final = 10**9  # 10^-4 MXN/kWh
MAX_ENERGY_WH: Final = 10**12
MAX_MONEY: Final = 2**62  # centavos
MAX_POWER_W: Final = 10**9
MAX_DR_PERIOD: Final = 86400
MAX_DETAIL: Final = 500
MAX_NAME: Final = 32  # a participant's display name


# -- reading untrusted JSON -------------------------------------------------------------------


class _Obj:
    """One JSON object of an answer; every read names its field in a DecodeError."""

    __slots__ = ("data", "prefix")

    def __init__(self, data: object, label: str, prefix: str = "") -> None:
        if not isinstance(data, dict):
            raise DecodeError(label, "must be a JSON object")
        self.data: dict[str, Any] = data
        self.prefix = prefix

    def name(self, key: str) -> str:
        return f"{self.prefix}.{key}" if self.prefix else key

    def get(self, key: str) -> Any:  # noqa: ANN401 - any JSON value
        return self.data.get(key)

    def has(self, key: str) -> bool:
        return self.data.get(key) is not None

    def sub(self, key: str) -> _Obj:
        return _Obj(self.data.get(key), self.name(key), self.name(key))

    def integer(self, key: str, low: int = 0, high: int = MAX_COUNT) -> int:
        value = self.data.get(key)
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise DecodeError(self.name(key), f"must be an integer from {low} to {high}")
        return value

    def integer_or(self, key: str, default: int, low: int = 0, high: int = MAX_COUNT) -> int:
        return default if key not in self.data else self.integer(key, low, high)

    def optional_integer(self, key: str, low: int = 0, high: int = MAX_COUNT) -> int | None:
        return None if self.data.get(key) is None else self.integer(key, low, high)

    def text(self, key: str, limit: int = 4096) -> str:
        value = self.data.get(key)
        if not isinstance(value, str) or len(value) > limit:
            raise DecodeError(self.name(key), f"must be a string of at most {limit} characters")
        return value

    def optional_text(self, key: str, limit: int = 4096) -> str | None:
        """A non-empty string, or null (or left out)."""
        value = self.data.get(key)
        if value is None:
            return None
        if not isinstance(value, str) or not 0 < len(value) <= limit:
            raise DecodeError(
                self.name(key), f"must be a string of 1 to {limit} characters or null"
            )
        return value

    def matching(self, key: str, pattern: re.Pattern[str], what: str) -> str:
        value = self.data.get(key)
        if not isinstance(value, str) or not pattern.fullmatch(value):
            raise DecodeError(self.name(key), f"must be {what}")
        return value

    def address(self, key: str) -> str:
        return self.matching(key, ADDRESS_RE, "an address (tv and 40 hex digits)")

    def hash(self, key: str) -> str:
        return self.matching(key, HASH_RE, "64 hex digits")

    def boolean(self, key: str) -> bool:
        value = self.data.get(key)
        if not isinstance(value, bool):
            raise DecodeError(self.name(key), "must be true or false")
        return value

    def number(self, key: str, *, counter: bool = False) -> float | None:
        """A finite number (int or float) or null; a counter never goes below zero."""
        value = self.data.get(key)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise DecodeError(self.name(key), "must be a number")
        if isinstance(value, int) and abs(value) > 10**15:
            raise DecodeError(self.name(key), "is out of range")
        number = float(value)
        if not math.isfinite(number) or abs(number) > 1e15:
            raise DecodeError(self.name(key), "must be a finite number")
        if counter and number < 0:
            raise DecodeError(self.name(key), "never goes below zero")
        return number

    def items(self, key: str) -> list[Any]:
        value = self.data.get(key)
        if not isinstance(value, list):
            raise DecodeError(self.name(key), "must be a list")
        return value

    def addresses(self, key: str) -> tuple[str, ...]:
        value = self.data.get(key)
        if not isinstance(value, list) or not all(
            isinstance(item, str) and ADDRESS_RE.fullmatch(item) for item in value
        ):
            raise DecodeError(self.name(key), "must be a list of addresses")
        return tuple(value)

    def choice[E: StrEnum](self, key: str, enum: type[E]) -> E:
        """A member of a closed enumeration."""
        value = self.data.get(key)
        if isinstance(value, str):
            with contextlib.suppress(ValueError):
                return enum(value)
        names = ", ".join(member.value for member in enum)
        raise DecodeError(self.name(key), f"must be one of {names}")

    def kind[E: StrEnum](self, key: str, enum: type[E], limit: int = 64) -> E | str:
        """A member of an open enumeration, or the unknown value as it came."""
        value = self.data.get(key)
        if not isinstance(value, str) or not 0 < len(value) <= limit:
            raise DecodeError(self.name(key), f"must be a name of 1 to {limit} characters")
        return known(enum, value)


def _objects(rows: list[Any], key: str) -> list[_Obj]:
    return [_Obj(row, f"{key}[{i}]", f"{key}[{i}]") for i, row in enumerate(rows)]


def parse_json(raw: str | bytes, what: str = "the message") -> Any:  # noqa: ANN401 - JSON
    """JSON text as Python values, or DecodeError."""
    try:
        return json.loads(raw)
    except (ValueError, RecursionError):
        raise DecodeError(what, "is not JSON") from None


# -- the node and its accounts ----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class NodeStatus:
    """What ``GET /status`` says about a node.

    ``api_version`` is None for a node that does not say (older than API 1.0);
    ``validator`` is None unless the node votes. ``peers`` (connected P2P peers) and
    ``catching_up`` are None while the node does not report them; ``interval_seconds``
    falls back to 15 minutes and ``utc_offset_minutes`` (the market's civil time, in which
    contracts are written) to 0 when a node does not say or says something impossible.
    """

    chain_id: str
    height: int
    participant: str
    validator: str | None
    last_block_time: int
    api_version: ApiVersion | None = None
    peers: int | None = None
    catching_up: bool | None = None
    interval_seconds: int = DEFAULT_INTERVAL_SECONDS
    utc_offset_minutes: int = 0

    @classmethod
    def from_json(cls, data: object) -> NodeStatus:
        o = _Obj(data, "the status")
        api_version = None
        if o.has("api_version"):
            try:
                api_version = ApiVersion.parse(o.get("api_version"))
            except ValueError:
                raise DecodeError("api_version", "must be MAJOR.MINOR, such as 1.0") from None
        catching_up = o.get("catching_up")
        interval = _lenient_int(o.get("interval_seconds"))
        offset = _lenient_int(o.get("utc_offset_minutes"))
        peers = o.get("peers")
        count = _lenient_int(peers.get("count") if isinstance(peers, dict) else peers)
        return cls(
            chain_id=o.text("chain_id", 64),
            height=o.integer("height"),
            participant=o.address("participant"),
            validator=None if o.get("validator") is None else o.address("validator"),
            last_block_time=o.integer_or("last_block_time", 0, 0, MAX_TIME),
            api_version=api_version,
            peers=count if count is not None and count >= 0 else None,
            catching_up=catching_up if isinstance(catching_up, bool) else None,
            interval_seconds=(
                interval
                if interval is not None and 60 <= interval <= 3600
                else DEFAULT_INTERVAL_SECONDS
            ),
            utc_offset_minutes=offset if offset is not None and abs(offset) <= 14 * 60 else 0,
        )


def _lenient_int(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


@dataclass(frozen=True, slots=True)
class Balance:
    """A wallet (centavos): spendable balance, the amount held by pending withdrawals and
    buy orders, and the debt left by settlements."""

    balance: int
    held: int = 0
    debt: int = 0

    @classmethod
    def from_json(cls, data: object) -> Balance:
        o = _Obj(data, "the balance")
        return cls(
            balance=o.integer("balance", 0, MAX_MONEY),
            held=o.integer_or("held", 0, 0, MAX_MONEY),
            debt=o.integer_or("debt", 0, 0, MAX_MONEY),
        )


@dataclass(frozen=True, slots=True)
class Participant:
    """A participant's public record; ``roles`` are an operator's (ISO, SUPPLIER, DSO);
    ``service_connected`` is False while the DSO has cut its supply (nodes that do not
    say are taken as connected).

    ``name`` is its display name on the chain (API 1.1; None without one), ``meter`` the
    address of its meter where the node lists it (``GET /participants``).
    """

    address: str
    role: Role | str
    status: str
    roles: tuple[str, ...] = ()
    name: str | None = None
    meter: str | None = None
    service_connected: bool = True

    @classmethod
    def from_json(cls, data: object, where: str = "") -> Participant:
        o = _Obj(data, "the participant", where)
        roles: tuple[str, ...] = ()
        if o.has("roles"):
            raw = o.items("roles")
            if not all(isinstance(role, str) and 0 < len(role) <= 32 for role in raw):
                raise DecodeError(o.name("roles"), "must be a list of role names")
            roles = tuple(raw)
        return cls(
            address=o.address("address"),
            role=o.kind("role", Role, 32),
            status=o.text("status", 16),
            roles=roles,
            name=o.optional_text("name", MAX_NAME),
            meter=o.address("meter") if o.has("meter") else None,
            service_connected=(
                o.boolean("service_connected") if o.has("service_connected") else True
            ),
        )


@dataclass(frozen=True, slots=True)
class NameRecord:
    """Who holds a participant's name (``GET /names/{name}``, API 1.1)."""

    name: str
    address: str
    role: Role | str
    status: str

    @classmethod
    def from_json(cls, data: object) -> NameRecord:
        o = _Obj(data, "the name")
        return cls(
            name=o.text("name", MAX_NAME),
            address=o.address("address"),
            role=o.kind("role", Role, 32),
            status=o.text("status", 16),
        )


@dataclass(frozen=True, slots=True)
class Admission:
    """Whether this home's node is a participant yet (``GET /local/admission``, API 1.1).

    ``name`` and ``role`` are the chain's once a member, else what the invitation grants;
    ``message`` says why while joining or when refused; ``approve`` is ``auto`` or
    ``manual`` and ``expires`` the invitation's expiry, while joining.
    """

    participant: str
    status: AdmissionStatus | str
    name: str | None = None
    role: Role | str | None = None
    message: str | None = None
    approve: str | None = None
    expires: int | None = None

    @property
    def member(self) -> bool:
        """True once the home is an active participant."""
        return self.status == AdmissionStatus.MEMBER

    @classmethod
    def from_json(cls, data: object) -> Admission:
        o = _Obj(data, "the admission")
        invitation = o.sub("invitation") if o.has("invitation") else None
        return cls(
            participant=o.address("participant"),
            status=o.kind("status", AdmissionStatus, 32),
            name=o.optional_text("name", MAX_NAME),
            role=o.kind("role", Role, 32) if o.has("role") else None,
            message=o.optional_text("message", 1000),
            approve=invitation.optional_text("approve", 16) if invitation else None,
            expires=invitation.optional_integer("expires", 0, MAX_TIME) if invitation else None,
        )


# -- contracts --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ContractRecord:
    """A contract as ``GET /contracts/{id}`` answers: its text, parties and state.

    ``signers`` are the parties' addresses, ``signed`` those that signed; ``receipt`` is
    the ledger's answer once the contract is active.
    """

    contract_id: str
    short_id: str
    name: str
    status: ContractStatus | str
    proposer: str
    signers: tuple[str, ...]
    signed: tuple[str, ...]
    source: str
    receipt: str | None = None
    missing: tuple[str, ...] = ()
    names: dict[str, str | None] = field(default_factory=dict)

    def awaits(self, address: str) -> bool:
        """Whether the contract waits for ``address``'s signature."""
        return self.status == ContractStatus.PROPOSED and address in self.missing

    def party_name(self, address: str) -> str:
        """A party as people read it: its name, else its address."""
        return self.names.get(address) or address

    @classmethod
    def from_json(cls, data: object, where: str = "") -> ContractRecord:
        o = _Obj(data, "the contract", where)
        signers, signed = o.addresses("signers"), o.addresses("signed")
        names: dict[str, str | None] = {}
        if o.has("names"):
            raw = o.sub("names")
            for address in raw.data:
                if not ADDRESS_RE.fullmatch(address):
                    raise DecodeError(raw.name(address), "must be keyed by addresses")
                names[address] = raw.optional_text(address, MAX_NAME)
        return cls(
            contract_id=o.hash("id"),
            short_id=o.matching("short_id", SHORT_ID_RE, "0x and 10 hex digits"),
            name=o.text("name", 200),
            status=o.kind("status", ContractStatus, 16),
            proposer=o.address("proposer"),
            signers=signers,
            signed=signed,
            source=o.text("source", 65536),
            receipt=o.optional_text("receipt", 1000),
            # Nodes of API 1.0 do not send it: the parties that have not signed.
            missing=o.addresses("missing")
            if o.has("missing")
            else tuple(s for s in signers if s not in signed),
            names=names,
        )


@dataclass(frozen=True, slots=True)
class Diagnostic:
    """One message about a contract's text, at a 1-based line and column."""

    severity: Severity
    line: int
    column: int
    message: str
    expected: str | None = None
    hint: str | None = None

    @classmethod
    def from_json(cls, data: object, where: str = "") -> Diagnostic:
        o = _Obj(data, where or "the diagnostic", where)
        return cls(
            severity=o.choice("severity", Severity),
            line=o.integer("line", 0, 10**6),
            column=o.integer("column", 0, 10**6),
            message=o.text("message", 1000),
            expected=o.optional_text("expected", 1000),
            hint=o.optional_text("hint", 1000),
        )

    def to_json(self) -> dict[str, Any]:
        """The fields as the node names them."""
        return {
            "line": self.line,
            "column": self.column,
            "message": self.message,
            "expected": self.expected,
            "hint": self.hint,
        }


@dataclass(frozen=True, slots=True)
class ContractCheck:
    """The node's verdict on a contract's text (``POST /contracts/check``); nothing is
    submitted. A valid contract has its id, short id, name, parties and ``canonical`` text
    (what ``contract_propose`` takes)."""

    valid: bool
    diagnostics: tuple[Diagnostic, ...]
    contract_id: str | None = None
    short_id: str | None = None
    name: str | None = None
    parties: tuple[str, ...] = ()
    canonical: str | None = None

    @classmethod
    def from_json(cls, data: object) -> ContractCheck:
        o = _Obj(data, "the contract check")
        valid = o.boolean("valid")
        diagnostics = tuple(
            Diagnostic.from_json(row, f"diagnostics[{i}]")
            for i, row in enumerate(o.items("diagnostics"))
        )
        if not valid:
            return cls(valid, diagnostics)
        parties = o.items("parties")
        if not all(isinstance(party, str) and party for party in parties):
            raise DecodeError("parties", "must be a list of names")
        return cls(
            valid=valid,
            diagnostics=diagnostics,
            contract_id=o.hash("id"),
            short_id=o.matching("short_id", SHORT_ID_RE, "0x and 10 hex digits"),
            name=o.text("name", 200),
            parties=tuple(parties),
            canonical=o.text("canonical", 65536),
        )

    def of_severity(self, severity: Severity) -> tuple[Diagnostic, ...]:
        """The diagnostics of one severity."""
        return tuple(d for d in self.diagnostics if d.severity is severity)


# -- signals ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PriceSignal:
    """One interval's prices, in 10^-4 MXN/kWh: a ``price_signal`` event or a row of
    ``GET /signals/prices``."""

    start: int
    import_price: int
    export_price: int
    network_fee: int

    @classmethod
    def from_json(cls, data: object, where: str = "") -> PriceSignal:
        o = _Obj(data, where or "the price signal", where)
        return cls(
            start=o.integer("interval_start", 0, MAX_TIME),
            import_price=o.integer("import_price", -MAX_PRICE, MAX_PRICE),
            export_price=o.integer("export_price", -MAX_PRICE, MAX_PRICE),
            network_fee=o.integer("network_fee", -MAX_PRICE, MAX_PRICE),
        )


@dataclass(frozen=True, slots=True)
class DemandResponse:
    """A demand-response event in its latest modification: a ``dr_event`` event or the
    record of ``GET /signals/dr/{event_id}``.

    The signal's value is ``level`` (SIMPLE, 0-3), ``price`` (ELECTRICITY_PRICE, 10^-4
    MXN/kWh), or ``setpoint_w`` or ``delta_w`` (LOAD_DISPATCH, whole watts). ``end`` is
    ``start`` plus the duration; ``targets`` empty means everyone.
    """

    event_id: str
    modification: int
    signal: SignalName
    start: int
    end: int
    targets: tuple[str, ...]
    cancelled: bool
    level: int | None = None
    price: int | None = None
    setpoint_w: int | None = None
    delta_w: int | None = None
    ramp_up: int | None = None
    recovery: int | None = None

    def active(self, now: int) -> bool:
        """Whether the event is in force at ``now`` (Unix seconds)."""
        return not self.cancelled and self.start <= now < self.end

    def concerns(self, participant: str) -> bool:
        """Whether ``participant`` is targeted (no targets: everyone is)."""
        return not self.targets or participant in self.targets

    @classmethod
    def from_json(cls, data: object) -> DemandResponse:
        o = _Obj(data, "the demand-response event")
        signal = o.sub("signal")
        name = signal.choice("name", SignalName)
        level = price = setpoint = delta = None
        if name is SignalName.SIMPLE:
            level = signal.integer("level", 0, 3)
        elif name is SignalName.ELECTRICITY_PRICE:
            price = signal.integer("price", -MAX_PRICE, MAX_PRICE)
        elif signal.has("setpoint_w") == signal.has("delta_w"):
            raise DecodeError("signal", "must have exactly one of setpoint_w and delta_w")
        elif signal.has("setpoint_w"):
            setpoint = signal.integer("setpoint_w", 0, MAX_POWER_W)
        else:
            delta = signal.integer("delta_w", -MAX_POWER_W, MAX_POWER_W)
        start = o.integer("start", 0, MAX_TIME)
        return cls(
            event_id=o.matching("event_id", EVENT_ID_RE, "an event id of 1 to 64 characters"),
            modification=o.integer("modification_number"),
            signal=name,
            start=start,
            end=start + o.integer("duration", 1, 7 * 86400),
            targets=o.addresses("targets") if "targets" in o.data else (),
            cancelled=o.boolean("cancelled") if "cancelled" in o.data else False,
            level=level,
            price=price,
            setpoint_w=setpoint,
            delta_w=delta,
            ramp_up=o.optional_integer("ramp_up", 0, MAX_DR_PERIOD),
            recovery=o.optional_integer("recovery", 0, MAX_DR_PERIOD),
        )

    def to_json(self) -> dict[str, Any]:
        """The node's own record shape (what :meth:`from_json` reads)."""
        values = {
            "level": self.level,
            "price": self.price,
            "setpoint_w": self.setpoint_w,
            "delta_w": self.delta_w,
        }
        signal: dict[str, Any] = {"name": str(self.signal)}
        signal |= {key: value for key, value in values.items() if value is not None}
        record: dict[str, Any] = {
            "event_id": self.event_id,
            "modification_number": self.modification,
            "signal": signal,
            "start": self.start,
            "duration": self.end - self.start,
            "targets": list(self.targets),
            "cancelled": self.cancelled,
        }
        for key, value in (("ramp_up", self.ramp_up), ("recovery", self.recovery)):
            if value is not None:
                record[key] = value
        return record


# -- transactions -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class LedgerEvent:
    """One event of the ledger: its ``kind`` and the whole object as the node sent it
    (decode it with the payload types below, e.g. :meth:`PriceSignal.from_json`)."""

    kind: EventKind | str
    data: dict[str, Any]

    @classmethod
    def from_json(cls, data: object, where: str = "event") -> LedgerEvent:
        o = _Obj(data, where, where)
        return cls(o.kind("type", EventKind), o.data)


@dataclass(frozen=True, slots=True)
class TxResult:
    """A submitted transaction: pending, or committed with its height, result ``code``
    (``ok``, or the rule that refused it) and events."""

    tx_id: str
    status: TxStatus
    height: int | None = None
    code: ErrorCode | str | None = None
    message: str = ""
    events: tuple[LedgerEvent, ...] = ()

    @property
    def ok(self) -> bool:
        """Committed, and accepted by the rules."""
        return self.status is TxStatus.COMMITTED and self.code == "ok"

    @classmethod
    def from_json(cls, data: object) -> TxResult:
        o = _Obj(data, "the transaction")
        status = o.choice("status", TxStatus)
        code = o.get("code")
        if code is not None and not (isinstance(code, str) and 0 < len(code) <= 64):
            raise DecodeError("code", "must be a result code")
        message = o.get("message")
        events = o.items("events") if o.has("events") else []
        return cls(
            tx_id=o.hash("id"),
            status=status,
            height=o.optional_integer("height"),
            code=None if code is None else ("ok" if code == "ok" else known(ErrorCode, code)),
            message=message if isinstance(message, str) else "",
            events=tuple(
                LedgerEvent.from_json(event, f"events[{i}]") for i, event in enumerate(events)
            ),
        )

    def first(self, kind: EventKind) -> LedgerEvent | None:
        """The transaction's first event of ``kind``."""
        return next((event for event in self.events if event.kind == kind), None)


# -- the ledger's event stream ----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class LedgerMessage:
    """One message of ``GET /api/v1/events``: ``seq`` grows by one per event and never
    repeats (resume with ``after=seq``); ``height`` is the event's block."""

    seq: int
    height: int
    event: LedgerEvent

    @classmethod
    def from_text(cls, raw: str | bytes) -> LedgerMessage:
        o = _Obj(parse_json(raw), "the message")
        event = LedgerEvent.from_json(o.get("event"))
        return cls(o.integer("seq", 1), o.integer("height"), event)


@dataclass(frozen=True, slots=True)
class NewBlock:
    """A ``new_block`` event: the block's height and (BFT) time."""

    height: int
    time: int

    @classmethod
    def from_json(cls, data: object) -> NewBlock:
        o = _Obj(data, "the new_block event")
        return cls(o.integer("height"), o.integer("time", 0, MAX_TIME))


@dataclass(frozen=True, slots=True)
class WalletChange:
    """A ``wallet_change`` event: ``delta`` centavos for ``participant``, and why."""

    participant: str
    delta: int
    why: WalletReason | str

    @classmethod
    def from_json(cls, data: object) -> WalletChange:
        o = _Obj(data, "the wallet_change event")
        return cls(
            participant=o.address("participant"),
            delta=o.integer("delta", -MAX_MONEY, MAX_MONEY),
            why=o.kind("why", WalletReason),
        )


@dataclass(frozen=True, slots=True)
class WalletRequest:
    """A ``deposit_requested`` or ``withdrawal_requested`` event (``request`` is the
    request's transaction id), a ``withdrawal_paid`` (``request`` None, ``amount`` paid)
    or a ``wallet_request_cancelled`` (``participant`` None)."""

    participant: str | None
    request: str | None
    amount: int | None = None

    @classmethod
    def from_event(cls, event: LedgerEvent) -> WalletRequest:
        o = _Obj(event.data, f"the {event.kind} event")
        if event.kind == EventKind.WALLET_REQUEST_CANCELLED:
            return cls(None, o.hash("request"))
        if event.kind == EventKind.WITHDRAWAL_PAID:
            return cls(o.address("participant"), None, o.integer("amount", 0, MAX_MONEY))
        return cls(o.address("participant"), o.hash("request"))


@dataclass(frozen=True, slots=True)
class ServiceChange:
    """A ``service_cut`` or ``service_reconnected`` event."""

    participant: str
    connected: bool

    @classmethod
    def from_event(cls, event: LedgerEvent) -> ServiceChange:
        o = _Obj(event.data, f"the {event.kind} event")
        return cls(o.address("participant"), event.kind == EventKind.SERVICE_RECONNECTED)


@dataclass(frozen=True, slots=True)
class ContractChange:
    """An event of a contract's life: its id, and the party for signatures and revoke
    votes."""

    kind: EventKind | str
    contract_id: str
    party: str | None = None

    @classmethod
    def from_event(cls, event: LedgerEvent) -> ContractChange:
        o = _Obj(event.data, f"the {event.kind} event")
        party = o.address("party") if o.has("party") else None
        return cls(event.kind, o.hash("contract_id"), party)


@dataclass(frozen=True, slots=True)
class MarketResult:
    """An interval's clearing: an ``interval_cleared`` event or a ``/market/intervals`` row.

    ``price`` is the uniform clearing price (10^-4 MXN/kWh; None without peer trades or
    with pay-as-bid pricing), ``volume_wh`` the energy traded between peers; both None for
    an interval that was not cleared (``unpriced``).
    """

    start: int
    status: IntervalStatus | str
    price: int | None
    volume_wh: int | None
    bids: int = 0
    offers: int = 0
    trades: int = 0

    @property
    def cleared(self) -> bool:
        """Whether the auction ran (a settled interval was cleared first)."""
        return self.status in (IntervalStatus.CLEARED, IntervalStatus.SETTLED) and (
            self.volume_wh is not None
        )

    @classmethod
    def from_json(cls, data: object, where: str = "") -> MarketResult:
        o = _Obj(data, where or "the market result", where)
        return cls(
            start=o.integer("interval_start", 0, MAX_TIME),
            status=o.kind("status", IntervalStatus, 16),
            price=o.optional_integer("price", -MAX_PRICE, MAX_PRICE),
            volume_wh=o.optional_integer("volume_wh", 0, MAX_ENERGY_WH),
            bids=o.integer_or("bids", 0),
            offers=o.integer_or("offers", 0),
            trades=o.integer_or("trades", 0),
        )


SETTLEMENT_ENERGY: Final = (
    "bought",
    "sold",
    "delivered",
    "shortfall",
    "import",
    "export",
    "supplier_import",
    "supplier_export",
    "unused",
)
"""A settlement's energies; each is ``<name>_wh`` on the wire."""


@dataclass(frozen=True, slots=True)
class Settlement:
    """A participant's bill for one interval (``GET /market/settlements/{address}``).

    ``energy_wh`` maps each name of :data:`SETTLEMENT_ENERGY` to Wh; ``amount`` is the
    net in centavos (positive: paid to the participant); ``lines`` the amount by reason
    (:class:`~transactiva_client.protocol.WalletReason`); prices are the backstop prices
    it was settled at; ``late_reports`` counts meter reports that arrived after.
    """

    start: int
    amount: int
    energy_wh: dict[str, int]
    import_price: int
    export_price: int
    lines: dict[str, int]
    late_reports: int = 0

    @classmethod
    def from_json(cls, data: object, where: str = "") -> Settlement:
        o = _Obj(data, where or "the settlement", where)
        lines = o.sub("lines")
        for why, value in lines.data.items():
            if isinstance(value, bool) or not isinstance(value, int) or abs(value) > MAX_MONEY:
                raise DecodeError(lines.name(why), "must be an amount in centavos")
        return cls(
            start=o.integer("interval_start", 0, MAX_TIME),
            amount=o.integer("amount", -MAX_MONEY, MAX_MONEY),
            energy_wh={
                name: o.integer(f"{name}_wh", 0, MAX_ENERGY_WH) for name in SETTLEMENT_ENERGY
            },
            import_price=o.integer("import_price", -MAX_PRICE, MAX_PRICE),
            export_price=o.integer("export_price", -MAX_PRICE, MAX_PRICE),
            lines=dict(lines.data),
            late_reports=o.integer_or("late_reports", 0),
        )


@dataclass(frozen=True, slots=True)
class Settlements:
    """A participant's settlements in a range, and its current debt (centavos)."""

    debt: int
    settlements: tuple[Settlement, ...]

    @classmethod
    def from_json(cls, data: object) -> Settlements:
        o = _Obj(data, "the settlements")
        rows = o.items("settlements")
        return cls(
            o.integer_or("debt", 0, 0, MAX_MONEY),
            tuple(Settlement.from_json(row, f"settlements[{i}]") for i, row in enumerate(rows)),
        )


@dataclass(frozen=True, slots=True)
class Trade:
    """One of a participant's trades (``GET /market/trades/{address}``), with its side.

    ``price`` in 10^-4 MXN/kWh; ``payment`` (energy at the price) and ``fee`` (the
    network fee) in centavos.
    """

    start: int
    side: OrderSide
    energy_wh: int
    price: int
    payment: int
    fee: int
    buyer: str
    seller: str

    @classmethod
    def from_json(cls, data: object, where: str = "") -> Trade:
        o = _Obj(data, where or "the trade", where)
        return cls(
            start=o.integer("interval_start", 0, MAX_TIME),
            side=o.choice("side", OrderSide),
            energy_wh=o.integer("energy_wh", 0, MAX_ENERGY_WH),
            price=o.integer("price", -MAX_PRICE, MAX_PRICE),
            payment=o.integer("payment", -MAX_MONEY, MAX_MONEY),
            fee=o.integer("fee", -MAX_MONEY, MAX_MONEY),
            buyer=o.address("buyer"),
            seller=o.address("seller"),
        )


# -- the home: contract actions ---------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class LocalEvent:
    """One event of the home's own stream: its ``kind`` and the whole object."""

    kind: LocalEventKind | str
    data: dict[str, Any]

    @classmethod
    def from_json(cls, data: object, where: str = "event") -> LocalEvent:
        o = _Obj(data, where, where)
        return cls(o.kind("type", LocalEventKind), o.data)


@dataclass(frozen=True, slots=True)
class LocalMessage:
    """One message of ``GET /api/v1/local/events``.

    ``lseq`` numbers the home's events in the node's memory only: it starts again from 1
    when the node restarts, so ``after=lseq`` resumes within one run of the node; the
    action log (``action_id``) survives restarts.
    """

    lseq: int
    event: LocalEvent

    @classmethod
    def from_text(cls, raw: str | bytes) -> LocalMessage:
        o = _Obj(parse_json(raw), "the message")
        event = LocalEvent.from_json(o.get("event"))
        return cls(o.integer("lseq", 1), event)


@dataclass(frozen=True, slots=True)
class OrderIntent:
    """The market order a ``sell_surplus`` or ``buy`` action placed, in the ledger's units."""

    start: int
    side: OrderSide
    energy_wh: int
    limit_price: int

    def to_json(self) -> dict[str, Any]:
        """The ``order`` transaction's body."""
        return {
            "interval_start": self.start,
            "side": str(self.side),
            "energy_wh": self.energy_wh,
            "limit_price": self.limit_price,
        }


@dataclass(frozen=True, slots=True)
class ContractAction:
    """An action a contract took at this home: a ``contract_action`` local event, or the
    action of a row of ``GET /local/actions``.

    ``action_id`` is the node's number for it in its action log (``local.db``): unlike the
    stream's ``lseq`` it survives a restart of the node. ``time`` is the node's clock when
    the action was taken; ``trigger`` the event that made the contract act; ``order`` the
    market order a ``sell_surplus`` or ``buy`` placed.
    """

    action_id: int
    time: int
    trigger: ActionTrigger | str
    contract_id: str
    short_id: str
    contract: str
    action: ActionKind | str
    device: str | None
    reason: str
    description: str
    text: str | None = None
    order: OrderIntent | None = None

    @classmethod
    def from_json(cls, data: object) -> ContractAction:
        o = _Obj(data, "the contract action")
        order = None
        if "order" in o.data and o.get("order") is not None:
            raw = o.sub("order")
            order = OrderIntent(
                start=raw.integer("interval_start", 0, MAX_TIME),
                side=raw.choice("side", OrderSide),
                energy_wh=raw.integer("energy_wh", 1, MAX_ENERGY_WH),
                limit_price=raw.integer("limit_price", -MAX_PRICE, MAX_PRICE),
            )
        return cls(
            action_id=o.integer("action_id", 1),
            time=o.integer("time", 0, MAX_TIME),
            trigger=o.kind("trigger", ActionTrigger),
            contract_id=o.hash("contract_id"),
            short_id=o.text("short_id", 16),
            contract=o.text("contract", 200),
            action=o.kind("action", ActionKind),
            device=o.optional_text("device", 100),
            reason=o.text("reason", 1000),
            description=o.text("description", 1000),
            text=o.optional_text("text", 1000),
            order=order,
        )


def _result(o: _Obj) -> tuple[ActionResult | None, str]:
    result = None if o.get("result") is None else o.choice("result", ActionResult)
    detail = o.get("detail") if "detail" in o.data else ""
    if not isinstance(detail, str):
        raise DecodeError(o.name("detail"), "must be a string")
    return result, detail[:MAX_DETAIL]


@dataclass(frozen=True, slots=True)
class ActionLogEntry:
    """A row of the node's action log: the action, and what became of it so far
    (``result`` None while nobody has reported one; ``detail`` at most 500 characters)."""

    action: ContractAction
    result: ActionResult | None = None
    detail: str = ""

    @classmethod
    def from_json(cls, data: object) -> ActionLogEntry:
        action = ContractAction.from_json(data)
        return cls(action, *_result(_Obj(data, "the action")))


@dataclass(frozen=True, slots=True)
class ActionResultReport:
    """A ``contract_action_result`` local event: someone reported what became of an
    action."""

    action_id: int
    result: ActionResult
    detail: str = ""

    @classmethod
    def from_json(cls, data: object) -> ActionResultReport:
        o = _Obj(data, "the action result")
        result, detail = _result(o)
        if result is None:
            raise DecodeError("result", "must be one of " + ", ".join(ActionResult))
        return cls(o.integer("action_id", 1), result, detail)


# -- the home: meter --------------------------------------------------------------------------


PHASE_QUANTITIES: Final = ("voltage", "current", "power", "power_factor", "frequency")


@dataclass(frozen=True, slots=True)
class Phase:
    """One phase's instantaneous values (None when the meter does not measure it)."""

    phase: str
    voltage: float | None
    current: float | None
    power: float | None
    power_factor: float | None
    frequency: float | None


@dataclass(frozen=True, slots=True)
class IntervalEnergy:
    """The last complete interval's energy (Wh)."""

    start: int
    import_wh: int
    export_wh: int


@dataclass(frozen=True, slots=True)
class MeterReading:
    """One reading of a node's meter (``GET /local/meter`` and its stream).

    ``power`` is W (positive importing, negative exporting); the totals are the meter
    role's own lifetime counters in Wh; ``service`` is whether the supply is on (None:
    unknown). A ``time`` that is not ISO 8601 is None.
    """

    time: datetime | None
    source: str
    phases: tuple[Phase, ...]
    neutral_current: float | None
    power: float | None
    import_wh_total: float | None
    export_wh_total: float | None
    last_interval: IntervalEnergy | None
    service: bool | None

    @classmethod
    def from_json(cls, data: object) -> MeterReading:
        o = _Obj(data, "a meter reading")
        raw_phases = o.get("phases") if "phases" in o.data else []
        if not isinstance(raw_phases, list) or len(raw_phases) > 3:
            raise DecodeError("phases", "must be a list of at most 3 phases")
        phases: list[Phase] = []
        for raw in _objects(raw_phases, "phases"):
            name = raw.get("phase")
            if isinstance(name, bool) or not isinstance(name, int | str) or not str(name).strip():
                raise DecodeError(raw.name("phase"), "must be a name or number")
            values = [raw.number(key) for key in PHASE_QUANTITIES]
            phases.append(Phase(str(name).strip()[:8], *values))
        if len({phase.phase for phase in phases}) != len(phases):
            raise DecodeError("phases", "must not repeat a phase (names repeat)")
        last = None
        if o.get("last_interval") is not None:
            if not isinstance(o.get("last_interval"), dict):
                raise DecodeError("last_interval", "must be an object or null")
            raw_last = o.sub("last_interval")
            last = IntervalEnergy(
                raw_last.integer("interval_start", 0, MAX_TIME),
                raw_last.integer("import_wh", 0, MAX_ENERGY_WH),
                raw_last.integer("export_wh", 0, MAX_ENERGY_WH),
            )
        service = o.get("service")
        if service not in (None, True, False, *SupplyState):
            raise DecodeError("service", "must be connected, cut, unknown, true, false or null")
        source = o.get("source")
        return cls(
            time=_datetime(o.get("time")),
            source=source[:64] if isinstance(source, str) else "",
            phases=tuple(phases),
            neutral_current=o.number("neutral_current"),
            power=o.number("power"),
            import_wh_total=o.number("import_wh_total", counter=True),
            export_wh_total=o.number("export_wh_total", counter=True),
            last_interval=last,
            service=None
            if service in (None, SupplyState.UNKNOWN)
            else service in (True, SupplyState.CONNECTED),
        )


def _datetime(value: object) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        return None


@dataclass(frozen=True, slots=True)
class PushedReading:
    """One reading for a node whose meter takes pushed readings
    (``POST /local/meter/readings``): power in W, lifetime counters in kWh; a value that
    is None is left out."""

    time: datetime
    power: float | None = None
    import_kwh_total: float | None = None
    export_kwh_total: float | None = None

    @property
    def empty(self) -> bool:
        """Whether the reading carries no value at all."""
        return (
            self.power is None and self.import_kwh_total is None and (self.export_kwh_total is None)
        )

    def to_json(self) -> dict[str, Any]:
        """The body the node takes."""
        body: dict[str, Any] = {"time": self.time.isoformat()}
        for key in ("power", "import_kwh_total", "export_kwh_total"):
            value = getattr(self, key)
            if value is not None:
                body[key] = value
        return body


# -- the home: analytics ----------------------------------------------------------------------


FORECAST_TOTALS: Final = (
    "consumption_today_wh",
    "production_today_wh",
    "consumption_tomorrow_wh",
    "production_tomorrow_wh",
)
MAX_TOTAL_WH: Final = 10**9


@dataclass(frozen=True, slots=True)
class ForecastSummary:
    """Today's and tomorrow's totals (``GET /local/analytics/summary``), in Wh.

    ``totals`` maps each of :data:`FORECAST_TOTALS` to Wh and is empty while the node is
    not ``ready`` (too little history; ``message`` says why). Today's totals are what was
    measured since local midnight plus what is expected for the rest of the day.
    """

    date: date  # the node's local date of "today"
    ready: bool
    message: str | None
    measured_consumption_wh: int
    measured_production_wh: int
    totals: dict[str, int] = field(default_factory=dict)

    @classmethod
    def from_json(cls, data: object) -> ForecastSummary:
        o = _Obj(data, "a forecast summary")
        ready = o.boolean("ready")
        raw_date = o.get("date")
        try:
            day = date.fromisoformat(raw_date) if isinstance(raw_date, str) else None
        except ValueError:
            day = None
        if day is None:
            raise DecodeError("date", "must be an ISO date")
        message = o.get("message")
        return cls(
            date=day,
            ready=ready,
            message=message[:MAX_DETAIL] if isinstance(message, str) else None,
            measured_consumption_wh=o.integer("measured_consumption_wh", 0, MAX_TOTAL_WH),
            measured_production_wh=o.integer("measured_production_wh", 0, MAX_TOTAL_WH),
            totals={key: o.integer(key, 0, MAX_TOTAL_WH) for key in FORECAST_TOTALS}
            if ready
            else {},
        )


FORECAST_COLUMNS: Final = (
    "consumption_wh",
    "consumption_p10",
    "consumption_p90",
    "consumption_mean",
    "production_wh",
    "production_p10",
    "production_p90",
    "production_mean",
)
"""A forecast row's columns, Wh per interval; ``*_wh`` is the median."""


@dataclass(frozen=True, slots=True)
class ForecastPoint:
    """One interval of a forecast: its start and each of :data:`FORECAST_COLUMNS` (Wh)."""

    start: int
    values: dict[str, int]


@dataclass(frozen=True, slots=True)
class Forecast:
    """The home's forecast (``GET /local/analytics/forecast``) from the current interval:
    ``fitted_at`` when the models were fitted, ``kwp`` the solar peak power they found."""

    interval_seconds: int
    fitted_at: int | None
    kwp: float | None
    series: tuple[ForecastPoint, ...]

    @classmethod
    def from_json(cls, data: object) -> Forecast:
        o = _Obj(data, "the forecast")
        series = tuple(
            ForecastPoint(
                start=row.integer("start", 0, MAX_TIME),
                values={
                    key: row.integer(key, -MAX_ENERGY_WH, MAX_ENERGY_WH) for key in FORECAST_COLUMNS
                },
            )
            for row in _objects(o.items("series"), "series")
        )
        return cls(
            interval_seconds=o.integer_or("interval_seconds", DEFAULT_INTERVAL_SECONDS, 60, 3600),
            fitted_at=o.optional_integer("fitted_at", 0, MAX_TIME),
            kwp=o.number("kwp"),
            series=series,
        )


@dataclass(frozen=True, slots=True)
class AdviceItem:
    """One piece of advice: title and detail by language (``en``, ``es``), the money at
    stake (centavos over ``period_days``) and the evidence behind it."""

    id: str
    title: dict[str, str]
    detail: dict[str, str]
    centavos: int
    period_days: int
    evidence: Any


@dataclass(frozen=True, slots=True)
class Advice:
    """Ranked advice (``GET /local/analytics/advice``)."""

    generated_at: int
    items: tuple[AdviceItem, ...]

    @classmethod
    def from_json(cls, data: object) -> Advice:
        o = _Obj(data, "the advice")
        items = []
        for row in _objects(o.items("items"), "items"):
            items.append(
                AdviceItem(
                    id=row.text("id", 64),
                    title=_languages(row, "title"),
                    detail=_languages(row, "detail"),
                    centavos=row.integer("centavos", -MAX_MONEY, MAX_MONEY),
                    period_days=row.integer("period_days", 1, 3660),
                    evidence=row.get("evidence"),
                )
            )
        return cls(o.integer("generated_at", 0, MAX_TIME), tuple(items))


def _languages(o: _Obj, key: str) -> dict[str, str]:
    texts = o.sub(key)
    for language, value in texts.data.items():
        if not isinstance(value, str) or len(value) > 4096:
            raise DecodeError(texts.name(language), "must be a text")
    return dict(texts.data)
