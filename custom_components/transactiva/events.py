"""Decoding of what the node sends (untrusted input) into typed values.

The ledger's stream sends ``{"seq": N, "height": H, "event": {"type": ...}}``
(``docs/api.md``); the home's local stream ``{"lseq": N, "event": {...}}``
(``ledger_core/local_api.py``), whose ``contract_action`` events are also the
rows of ``GET /local/actions`` (with ``result`` and ``detail``). Everything here
is pure and raises :class:`EventError` (a ValueError) for any message or field
that is not what the node sends, so a stray message is skipped without
stopping the stream.
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


def decode_local_message(raw: str) -> tuple[int, dict[str, Any]]:
    """``(lseq, event)`` from one text message of ``/api/v1/local/events``."""
    try:
        message = json.loads(raw)
    except ValueError as err:
        raise EventError("the message is not JSON") from err
    if not isinstance(message, dict):
        raise EventError("the message is not an object")
    event = message.get("event")
    if not isinstance(event, dict) or not isinstance(event.get("type"), str):
        raise EventError("the message has no typed event")
    return integer(message, "lseq", 1), event


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


RESULTS: Final = ("ok", "failed", "unmapped", "skipped")


@dataclass(frozen=True, slots=True)
class ContractAction:
    """An action a contract took at this home (a ``contract_action`` local event).

    ``action_id`` is the node's number for it in its action log (``local.db``):
    unlike the stream's ``lseq`` it survives a restart of the node. ``time`` is
    the node's clock when the action was taken; ``trigger`` the event that made
    the contract act (``price_signal``, ``dr_signal``, ...); ``order`` the market
    order a ``sell_surplus`` or ``buy`` placed, in the ledger's units.
    """

    action_id: int
    time: int
    trigger: str
    contract_id: str
    short_id: str
    contract: str
    action: str
    device: str | None
    reason: str
    description: str
    text: str | None = None
    order: dict[str, int | str] | None = None


def _optional_text(data: dict[str, Any], key: str, limit: int) -> str | None:
    value = data.get(key)
    if value is None:
        return None
    if not isinstance(value, str) or not 0 < len(value) <= limit:
        raise EventError(f"{key} must be a string of 1 to {limit} characters or null")
    return value


def _order(data: dict[str, Any]) -> dict[str, int | str] | None:
    raw = data.get("order")
    if raw is None:
        return None
    if not isinstance(raw, dict):
        raise EventError("order must be an object")
    side = text(raw, "side", 4)
    if side not in ("buy", "sell"):
        raise EventError("order.side must be buy or sell")
    return {
        "interval_start": integer(raw, "interval_start", 0, 2**40),
        "side": side,
        "energy_wh": integer(raw, "energy_wh", 1, 10**12),
        "limit_price": integer(raw, "limit_price", -(10**9), 10**9),
    }


def contract_action(data: dict[str, Any]) -> ContractAction:
    """A ``contract_action`` local event, or a row of ``GET /local/actions``."""
    contract_id = text(data, "contract_id", 64)
    if not CONTRACT_ID_RE.fullmatch(contract_id):
        raise EventError("contract_id must be 64 hex digits")
    return ContractAction(
        action_id=integer(data, "action_id", 1),
        time=integer(data, "time", 0, 2**40),
        trigger=text(data, "trigger", 64),
        contract_id=contract_id,
        short_id=text(data, "short_id", 16),
        contract=text(data, "contract", 200),
        action=text(data, "action", 64),
        device=_optional_text(data, "device", 100),
        reason=text(data, "reason", 1000),
        description=text(data, "description", 1000),
        text=_optional_text(data, "text", 1000),
        order=_order(data),
    )


def action_result(data: dict[str, Any]) -> tuple[str | None, str]:
    """``(result, detail)`` of a ``contract_action_result`` event or an action log row
    (the result is None while nobody has reported one)."""
    result = data.get("result")
    if result is not None and result not in RESULTS:
        raise EventError("result must be one of " + ", ".join(RESULTS))
    detail = data.get("detail", "")
    if not isinstance(detail, str):
        raise EventError("detail must be a string")
    return result, detail[:500]


@dataclass(frozen=True, slots=True)
class MarketResult:
    """An interval's clearing: an ``interval_cleared`` event or a ``/market/intervals`` row.

    ``price`` is the uniform clearing price (10^-4 MXN/kWh; None without peer
    trades or with pay-as-bid pricing), ``volume_wh`` the energy traded between
    peers; both None for an interval that was not cleared (``unpriced``).
    """

    start: int
    status: str
    price: int | None
    volume_wh: int | None
    bids: int
    offers: int
    trades: int

    @property
    def cleared(self) -> bool:
        """Whether the auction ran (a settled interval was cleared first)."""
        return self.status in ("cleared", "settled") and self.volume_wh is not None


def market_result(data: dict[str, Any]) -> MarketResult:
    """A MarketResult from the node's JSON."""
    raw_price, raw_volume = data.get("price"), data.get("volume_wh")
    return MarketResult(
        start=integer(data, "interval_start", 0, 2**40),
        status=text(data, "status", 16),
        price=None if raw_price is None else integer(data, "price", -(10**9), 10**9),
        volume_wh=None if raw_volume is None else integer(data, "volume_wh", 0, 10**12),
        bids=integer(data, "bids") if "bids" in data else 0,
        offers=integer(data, "offers") if "offers" in data else 0,
        trades=integer(data, "trades") if "trades" in data else 0,
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
