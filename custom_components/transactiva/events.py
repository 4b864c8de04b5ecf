"""Decoding of the node's event stream (untrusted input) into typed values.

Each stream message is ``{"seq": N, "height": H, "event": {"type": ..., ...}}``
(``docs/api.md``). Everything here is pure and raises :class:`EventError`
(a ValueError) for any message or field that is not what the node sends, so a
stray message is skipped without stopping the stream.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any, Final

ADDRESS_RE: Final = re.compile(r"tv[0-9a-f]{40}")
CONTRACT_ID_RE: Final = re.compile(r"[0-9a-f]{64}")
VALID_RE: Final = re.compile(
    r"^Valid from (\d{4}/\d\d/\d\d \d\d:\d\d:\d\d) to (\d{4}/\d\d/\d\d \d\d:\d\d:\d\d)$",
    re.MULTILINE,
)


class EventError(ValueError):
    """A stream message or field that is not the node's."""


def integer(data: dict[str, Any], key: str, low: int = 0, high: int = 2**62) -> int:
    """``data[key]`` as an int within bounds (bools are not integers)."""
    value = data.get(key)
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise EventError(f"{key} must be an integer from {low} to {high}")
    return value


def text(data: dict[str, Any], key: str, limit: int = 4096) -> str:
    """``data[key]`` as a string of at most ``limit`` characters."""
    value = data.get(key)
    if not isinstance(value, str) or len(value) > limit:
        raise EventError(f"{key} must be a string of at most {limit} characters")
    return value


def decode_message(raw: str) -> tuple[int, int, dict[str, Any]]:
    """``(seq, height, event)`` from one text message of ``/api/v1/events``."""
    try:
        message = json.loads(raw)
    except ValueError as err:
        raise EventError("the message is not JSON") from err
    if not isinstance(message, dict):
        raise EventError("the message is not an object")
    event = message.get("event")
    if not isinstance(event, dict) or not isinstance(event.get("type"), str):
        raise EventError("the message has no typed event")
    return integer(message, "seq", 1), integer(message, "height"), event


@dataclass(frozen=True, slots=True)
class PriceRow:
    """One interval's price signal, in 10^-4 MXN/kWh."""

    start: int
    import_price: int
    export_price: int
    network_fee: int


def price_row(data: dict[str, Any]) -> PriceRow:
    """A price row from a ``price_signal`` event or a ``/signals/prices`` row."""
    low, high = -(10**9), 10**9
    return PriceRow(
        start=integer(data, "interval_start", 0, 2**40),
        import_price=integer(data, "import_price", low, high),
        export_price=integer(data, "export_price", low, high),
        network_fee=integer(data, "network_fee", low, high),
    )


@dataclass(frozen=True, slots=True)
class DemandResponse:
    """A demand-response event in its latest modification."""

    event_id: str
    modification: int
    signal: str  # SIMPLE or ELECTRICITY_PRICE
    level: int | None  # SIMPLE level 0-3
    price: int | None  # ELECTRICITY_PRICE, 10^-4 MXN/kWh
    start: int
    end: int
    targets: tuple[str, ...]
    cancelled: bool

    def active(self, now: int) -> bool:
        """Whether the event is in force at ``now`` (Unix seconds)."""
        return not self.cancelled and self.start <= now < self.end

    def concerns(self, participant: str) -> bool:
        """Whether ``participant`` is targeted (no targets: everyone is)."""
        return not self.targets or participant in self.targets

    def to_json(self) -> dict[str, Any]:
        """The node's own record shape (what :func:`demand_response` reads)."""
        signal: dict[str, Any] = {"name": self.signal}
        if self.level is not None:
            signal["level"] = self.level
        if self.price is not None:
            signal["price"] = self.price
        return {
            "event_id": self.event_id,
            "modification_number": self.modification,
            "signal": signal,
            "start": self.start,
            "duration": self.end - self.start,
            "targets": list(self.targets),
            "cancelled": self.cancelled,
        }


def demand_response(data: dict[str, Any]) -> DemandResponse:
    """A DR event from a ``dr_event`` event or a ``/signals/dr/{id}`` record."""
    signal = data.get("signal")
    if not isinstance(signal, dict):
        raise EventError("signal must be an object")
    name = text(signal, "name", 32)
    level = integer(signal, "level", 0, 3) if name == "SIMPLE" else None
    price = integer(signal, "price", -(10**9), 10**9) if name == "ELECTRICITY_PRICE" else None
    if level is None and price is None:
        raise EventError("signal.name must be SIMPLE or ELECTRICITY_PRICE")
    targets = data.get("targets", [])
    if not isinstance(targets, list) or not all(
        isinstance(t, str) and ADDRESS_RE.fullmatch(t) for t in targets
    ):
        raise EventError("targets must be a list of addresses")
    cancelled = data.get("cancelled", False)
    if not isinstance(cancelled, bool):
        raise EventError("cancelled must be true or false")
    start = integer(data, "start", 0, 2**40)
    return DemandResponse(
        event_id=text(data, "event_id", 64),
        modification=integer(data, "modification_number"),
        signal=name,
        level=level,
        price=price,
        start=start,
        end=start + integer(data, "duration", 1, 7 * 86400),
        targets=tuple(targets),
        cancelled=cancelled,
    )


@dataclass(frozen=True, slots=True)
class ContractAction:
    """An action the node took (or asks Home Assistant to take) for a contract."""

    contract_id: str
    short_id: str
    device: str | None
    action: str
    reason: str


def contract_action(data: dict[str, Any]) -> ContractAction:
    """A ``contract_action`` event."""
    contract_id = text(data, "contract_id", 64)
    if not CONTRACT_ID_RE.fullmatch(contract_id):
        raise EventError("contract_id must be 64 hex digits")
    device = data.get("device")
    if device is not None and (not isinstance(device, str) or not 0 < len(device) <= 100):
        raise EventError("device must be a name of 1 to 100 characters")
    reason = data.get("reason", "")
    if not isinstance(reason, str):
        raise EventError("reason must be a string")
    return ContractAction(
        contract_id=contract_id,
        short_id=text(data, "short_id", 16),
        device=device,
        action=text(data, "action", 64),
        reason=reason[:1000],
    )


@dataclass(slots=True)
class ContractInfo:
    """What the integration knows of one of the local participant's contracts."""

    contract_id: str
    short_id: str
    name: str
    status: str
    proposer: str
    signers: list[str]
    signed: list[str]
    valid_from: str | None
    valid_to: str | None
    last_action: ContractAction | None = None


def contract_info(contract_id: str, record: dict[str, Any]) -> ContractInfo:
    """A ContractInfo from ``GET /contracts/{id}``."""
    signers = record.get("signers")
    signed = record.get("signed")
    if not isinstance(signers, list) or not isinstance(signed, list):
        raise EventError("signers and signed must be lists")
    source = text(record, "source", 65536)
    validity = VALID_RE.search(source)
    return ContractInfo(
        contract_id=contract_id,
        short_id=text(record, "short_id", 16),
        name=text(record, "name", 200),
        status=text(record, "status", 16),
        proposer=text(record, "proposer", 42),
        signers=[str(s) for s in signers],
        signed=[str(s) for s in signed],
        valid_from=validity.group(1) if validity else None,
        valid_to=validity.group(2) if validity else None,
    )
