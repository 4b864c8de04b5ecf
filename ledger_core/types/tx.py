"""Transactions: types, bodies, canonical signed envelopes, decoding with field errors.

On the wire a transaction is the canonical JSON of::

    {"signature": "<128 hex>", "tx": {"body": {...}, "chain_id": "...",
                                      "nonce": 7, "signer": "tv...", "type": "transfer"}}

The signature is Ed25519 by the signer's key over the canonical bytes of the
``tx`` object; its id is the SHA-256 of those bytes. Money is in centavos,
energy in Wh, prices in 10^-4 MXN/kWh, times in Unix seconds: integers only.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Final

from ledger_core.types import codec
from ledger_core.types.crypto import ADDRESS_RE, PUBLIC_KEY_RE, SIGNATURE_RE, SigningKey, verify
from ledger_core.types.fields import (
    FieldError,
    expect_bool,
    expect_enum,
    expect_hex,
    expect_int,
    expect_keys,
    expect_object,
    expect_str,
)
from ledger_core.types.metering import COMMITMENT_RE, BillLine
from ledger_core.types.names import MAX_NAME, name_problem, normalise
from ledger_core.types.vote import DuplicateVoteEvidence

MAX_TX_BYTES: Final = 16 * 1024
MAX_AMOUNT: Final = 10**15  # centavos: ten trillion pesos
MAX_ENERGY_WH: Final = 10**12
MAX_PRICE: Final = 10**9  # 10^-4 MXN/kWh: 100,000 MXN/kWh
MAX_NONCE: Final = 2**63 - 1
MAX_TIME: Final = 2**40
MAX_POWER_W: Final = 10**9  # a gigawatt: far above any neighbourhood
MAX_DR_PERIOD: Final = 86400  # ramp-up and recovery of a DR event, seconds
MAX_SELLERS: Final = 200  # in one delivery
MAX_METERS: Final = 32  # of one participant, cited by one input
MAX_DAY_INTERVALS: Final = 1440  # a day of one-minute intervals
CHAIN_ID_RE: Final = re.compile(r"[a-z0-9][a-z0-9\-]{0,47}")
TX_ID_RE: Final = re.compile(r"[0-9a-f]{64}")
EVENT_ID_RE: Final = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:\-]{0,63}")


class TxType(StrEnum):
    """Every kind of transaction."""

    REGISTER = "register"
    REVOKE = "revoke"
    BIND_METER = "bind_meter"
    SET_NAME = "set_name"
    CONTRACT_PROPOSE = "contract_propose"
    CONTRACT_SIGN = "contract_sign"
    CONTRACT_REVOKE = "contract_revoke"
    REPORT = "report"
    PRICE_SIGNAL = "price_signal"
    DR_EVENT = "dr_event"
    SERVICE = "service"
    DEPOSIT_REQUEST = "deposit_request"
    DEPOSIT_CONFIRM = "deposit_confirm"
    WITHDRAW_REQUEST = "withdraw_request"
    WITHDRAW_CONFIRM = "withdraw_confirm"
    WALLET_CANCEL = "wallet_cancel"
    TRANSFER = "transfer"
    ORDER = "order"
    ORDER_CANCEL = "order_cancel"
    DELIVERY = "delivery"
    BILL = "bill"
    VALIDATOR_UPDATE = "validator_update"
    EVIDENCE = "evidence"


class Side(StrEnum):
    """Which way an order trades."""

    BUY = "buy"
    SELL = "sell"


class Role(StrEnum):
    """What a registered participant is."""

    PROSUMER = "prosumer"
    CONSUMER = "consumer"
    SUPPLIER = "supplier"
    DSO = "dso"
    RETAILER = "retailer"
    AGGREGATOR = "aggregator"
    METER = "meter"


@dataclass(frozen=True, slots=True)
class Tx:
    """A decoded, well-formed transaction (its signature not yet checked against state)."""

    type: TxType
    chain_id: str
    signer: str
    nonce: int
    body: Mapping[str, codec.Value]
    signature: bytes
    signed_bytes: bytes
    id: str

    def verify_signature(self, public_key: bytes) -> bool:
        """Whether the signature is the signer's, given the signer's public key."""
        return verify(public_key, self.signature, self.signed_bytes)

    def wire(self) -> bytes:
        """The canonical bytes sent between nodes and clients."""
        return encode_wire(self.signed_bytes, self.signature)


_WIRE_PREFIX_LENGTH: Final = len(b'{"signature":"') + 128 + len(b'","tx":')


def wire_id(wire: bytes) -> str:
    """The id a transaction has if ``wire`` is its canonical wire form (a lookup key: the
    bytes are not checked; :func:`decode` does that)."""
    return hashlib.sha256(wire[_WIRE_PREFIX_LENGTH:-1]).hexdigest()


def encode_wire(signed_bytes: bytes, signature: bytes) -> bytes:
    """``{"signature": ..., "tx": ...}`` around already-canonical transaction bytes."""
    return b'{"signature":"' + signature.hex().encode() + b'","tx":' + signed_bytes + b"}"


def sign(
    key: SigningKey, chain_id: str, tx_type: TxType, nonce: int, body: dict[str, codec.Value]
) -> Tx:
    """Build and sign a transaction (validated as :func:`decode` would)."""
    envelope: dict[str, codec.Value] = {
        "body": body,
        "chain_id": chain_id,
        "nonce": nonce,
        "signer": key.address,
        "type": str(tx_type),
    }
    signed = codec.encode(envelope)
    return decode(encode_wire(signed, key.sign(signed)))


# -- field validation ---------------------------------------------------------


type _Check = Callable[[dict[str, codec.Value]], None]


def _fields(
    required: dict[str, Callable[[object, str], object]],
    optional: dict[str, Callable[[object, str], object]] | None = None,
) -> _Check:
    optional = optional or {}
    names, allowed = set(required), set(optional)
    fields = [*required.items(), *optional.items()]

    def check(body: dict[str, codec.Value]) -> None:
        expect_keys(body, "body", names, allowed)
        for name, validate in fields:
            if name in body:
                validate(body[name], f"body.{name}")

    return check


def _address(value: object, field: str) -> str:
    return expect_hex(value, field, ADDRESS_RE, 40, "tv")


def _public_key(value: object, field: str) -> str:
    return expect_hex(value, field, PUBLIC_KEY_RE, 64)


def _tx_id(value: object, field: str) -> str:
    return expect_hex(value, field, TX_ID_RE, 64)


def _amount(value: object, field: str) -> int:
    return expect_int(value, field, 1, MAX_AMOUNT)


def _energy(value: object, field: str) -> int:
    return expect_int(value, field, 0, MAX_ENERGY_WH)


def _price(value: object, field: str) -> int:
    return expect_int(value, field, -MAX_PRICE, MAX_PRICE)


def _time(value: object, field: str) -> int:
    return expect_int(value, field, 0, MAX_TIME)


def _text(limit: int) -> Callable[[object, str], str]:
    return lambda value, field: expect_str(value, field, limit=limit)


def _name(value: object, field: str) -> str:
    """A participant's display name, already normalised (lower-case ASCII)."""
    text = expect_str(value, field, limit=MAX_NAME)
    problem = name_problem(normalise(text))
    if problem is None and normalise(text) != text:
        problem = "write the name in lower case (names are compared without case)"
    if problem is not None:
        raise FieldError(field, problem)
    return text


def _role(value: object, field: str) -> Role:
    role = expect_enum(value, field, Role)
    if role is Role.METER:
        raise FieldError(field, "meters are registered with bind_meter")
    return role


def _signal(value: object, field: str) -> None:
    signal = expect_object(value, field)
    name = expect_str(signal.get("name"), f"{field}.name", limit=32)
    if name == "SIMPLE":
        expect_keys(signal, field, {"name", "level"}, set())
        expect_int(signal["level"], f"{field}.level", 0, 3)
    elif name == "ELECTRICITY_PRICE":
        expect_keys(signal, field, {"name", "price"}, set())
        _price(signal["price"], f"{field}.price")
    elif name == "LOAD_DISPATCH":
        # OpenADR's LOAD_DISPATCH as an absolute setpoint or a delta, in whole watts.
        kinds = sorted({"setpoint_w", "delta_w"} & signal.keys())
        if len(kinds) != 1:
            raise FieldError(field, "LOAD_DISPATCH takes exactly one of setpoint_w and delta_w")
        expect_keys(signal, field, {"name", kinds[0]}, set())
        low = 0 if kinds[0] == "setpoint_w" else -MAX_POWER_W
        expect_int(signal[kinds[0]], f"{field}.{kinds[0]}", low, MAX_POWER_W)
    else:
        raise FieldError(f"{field}.name", "must be SIMPLE, ELECTRICITY_PRICE or LOAD_DISPATCH")


def _targets(value: object, field: str) -> None:
    if not isinstance(value, list):
        raise FieldError(field, "must be a list of addresses (empty: everyone)")
    if len(value) > 1000:
        raise FieldError(field, "lists more than 1000 targets")
    for i, item in enumerate(value):
        _address(item, f"{field}[{i}]")
    if len(set(value)) != len(value):
        raise FieldError(field, "lists a target twice")


def _source(value: object, field: str) -> str:
    """Contract text: any string up to 8 KiB (the contract checker judges the rest)."""
    if not isinstance(value, str):
        raise FieldError(field, "must be a string")
    if len(value) > 8192:
        raise FieldError(field, "is longer than 8192 characters")
    return value


def _commitment(value: object, field: str) -> str:
    return expect_str(value, field, COMMITMENT_RE)


def _addresses(value: object, field: str, limit: int) -> list[str]:
    """A list of addresses in strictly ascending order (so each appears once)."""
    if not isinstance(value, list):
        raise FieldError(field, "must be a list of addresses")
    if len(value) > limit:
        raise FieldError(field, f"lists more than {limit} addresses")
    found = [_address(item, f"{field}[{i}]") for i, item in enumerate(value)]
    if found != sorted(set(found)):
        raise FieldError(field, "must be in ascending order, each once")
    return found


def _sellers(value: object, field: str) -> None:
    """A delivery's sellers: each with its delivered energy and the meters it rests on."""
    if not isinstance(value, list) or not value:
        raise FieldError(field, "must be a non-empty list of sellers")
    if len(value) > MAX_SELLERS:
        raise FieldError(field, f"lists more than {MAX_SELLERS} sellers")
    names = []
    for i, raw in enumerate(value):
        where = f"{field}[{i}]"
        item = expect_object(raw, where)
        expect_keys(item, where, {"participant", "delivered_wh", "meters"}, set())
        names.append(_address(item["participant"], f"{where}.participant"))
        _energy(item["delivered_wh"], f"{where}.delivered_wh")
        _addresses(item["meters"], f"{where}.meters", MAX_METERS)
    if names != sorted(set(names)):
        raise FieldError(field, "must be in ascending order of participant, each once")


def _cited(value: object, field: str) -> None:
    """A bill's reports: per meter, the interval starts it bills, ascending."""
    if not isinstance(value, list) or not value:
        raise FieldError(field, "must be a non-empty list of a meter's reports")
    if len(value) > MAX_METERS:
        raise FieldError(field, f"lists more than {MAX_METERS} meters")
    meters = []
    for i, raw in enumerate(value):
        where = f"{field}[{i}]"
        item = expect_object(raw, where)
        expect_keys(item, where, {"meter", "intervals"}, set())
        meters.append(_address(item["meter"], f"{where}.meter"))
        starts = item["intervals"]
        if not isinstance(starts, list) or not starts:
            raise FieldError(f"{where}.intervals", "must be a non-empty list of interval starts")
        if len(starts) > MAX_DAY_INTERVALS:
            raise FieldError(f"{where}.intervals", f"lists more than {MAX_DAY_INTERVALS}")
        found = [_time(t, f"{where}.intervals[{j}]") for j, t in enumerate(starts)]
        if found != sorted(set(found)):
            raise FieldError(f"{where}.intervals", "must be in ascending order, each once")
    if meters != sorted(set(meters)):
        raise FieldError(field, "must be in ascending order of meter, each once")


def _bill_lines(value: object, field: str) -> None:
    """A bill's lines: one per pair of prices, in ascending order of the pair."""
    if not isinstance(value, list):
        raise FieldError(field, "must be a list of lines")
    if len(value) > MAX_DAY_INTERVALS:
        raise FieldError(field, f"lists more than {MAX_DAY_INTERVALS} lines")
    pairs = [BillLine.from_json(raw, f"{field}[{i}]").prices for i, raw in enumerate(value)]
    if pairs != sorted(set(pairs)):
        raise FieldError(field, "must be in ascending order of (import_price, export_price)")


def _evidence(value: object, field: str) -> None:
    """Duplicate-vote evidence, well-formed (its signatures are checked on execution)."""
    DuplicateVoteEvidence.from_json(value, field)


BODY_CHECKS: Final[dict[TxType, _Check]] = {
    TxType.REGISTER: _fields({"public_key": _public_key, "role": _role}, {"name": _name}),
    TxType.REVOKE: _fields({"address": _address}),
    TxType.BIND_METER: _fields({"meter_public_key": _public_key, "participant": _address}),
    TxType.SET_NAME: _fields({"address": _address, "name": _name}),
    TxType.CONTRACT_PROPOSE: _fields({"source": _source}),
    TxType.CONTRACT_SIGN: _fields({"contract_id": _tx_id}),
    TxType.CONTRACT_REVOKE: _fields({"contract_id": _tx_id}),
    TxType.REPORT: _fields({"interval_start": _time, "commitment": _commitment}),
    TxType.PRICE_SIGNAL: _fields(
        {
            "interval_start": _time,
            "import_price": _price,
            "export_price": _price,
            "network_fee": _price,
        }
    ),
    TxType.DR_EVENT: _fields(
        {
            "event_id": lambda v, f: expect_str(v, f, EVENT_ID_RE),
            "modification_number": lambda v, f: expect_int(v, f, 0, MAX_NONCE),
            "signal": _signal,
            "start": _time,
            "duration": lambda v, f: expect_int(v, f, 1, 7 * 86400),
            "targets": _targets,
            "cancelled": expect_bool,
        },
        {
            "ramp_up": lambda v, f: expect_int(v, f, 0, MAX_DR_PERIOD),
            "recovery": lambda v, f: expect_int(v, f, 0, MAX_DR_PERIOD),
        },
    ),
    TxType.SERVICE: _fields({"participant": _address, "connected": expect_bool}),
    TxType.DEPOSIT_REQUEST: _fields({"amount": _amount}, {"reference": _text(64)}),
    TxType.DEPOSIT_CONFIRM: _fields({"request": _tx_id}),
    TxType.WITHDRAW_REQUEST: _fields({"amount": _amount}, {"reference": _text(64)}),
    TxType.WITHDRAW_CONFIRM: _fields({"request": _tx_id}),
    TxType.WALLET_CANCEL: _fields({"request": _tx_id}),
    TxType.TRANSFER: _fields({"to": _address, "amount": _amount}, {"memo": _text(140)}),
    TxType.ORDER: _fields(
        {
            "interval_start": _time,
            "side": lambda v, f: expect_enum(v, f, Side),
            "energy_wh": lambda v, f: expect_int(v, f, 1, MAX_ENERGY_WH),
            "limit_price": _price,
        },
        {"ref": _text(64)},
    ),
    TxType.ORDER_CANCEL: _fields({"order_id": _tx_id}),
    TxType.DELIVERY: _fields({"interval_start": _time, "sellers": _sellers}),
    TxType.BILL: _fields(
        {"participant": _address, "day": _time, "reports": _cited, "lines": _bill_lines}
    ),
    TxType.VALIDATOR_UPDATE: _fields(
        {"public_key": _public_key, "power": lambda v, f: expect_int(v, f, 0, 10**6)}
    ),
    TxType.EVIDENCE: _fields({"evidence": _evidence}),
}


# Chain ids that passed expect_str (a node sees one or two): not checked again.
_CHAIN_IDS_SEEN: set[str] = set()
_CHAIN_IDS_KEPT: Final = 16
_WIRE_KEYS: Final = frozenset({"signature", "tx"})
_ENVELOPE_KEYS: Final = frozenset({"body", "chain_id", "nonce", "signer", "type"})
_NO_KEYS: Final = frozenset[str]()


def decode(data: bytes, tx_id: str | None = None) -> Tx:
    """A well-formed transaction from wire bytes, or FieldError naming the field;
    ``tx_id``, when given, is :func:`wire_id` of the same bytes (not computed again)."""
    try:
        wire = codec.decode(data, MAX_TX_BYTES)
    except codec.DecodeError as err:
        raise FieldError("transaction", str(err)) from None
    wire_obj = expect_object(wire, "transaction")
    expect_keys(wire_obj, "", _WIRE_KEYS, _NO_KEYS)
    signature = expect_hex(wire_obj["signature"], "signature", SIGNATURE_RE, 128)
    envelope = expect_object(wire_obj["tx"], "tx")
    expect_keys(envelope, "tx", _ENVELOPE_KEYS, _NO_KEYS)
    tx_type = expect_enum(envelope["type"], "tx.type", TxType)
    raw_chain_id = envelope["chain_id"]
    if type(raw_chain_id) is str and raw_chain_id in _CHAIN_IDS_SEEN:
        chain_id = raw_chain_id
    else:
        chain_id = expect_str(raw_chain_id, "tx.chain_id", CHAIN_ID_RE)
        if len(_CHAIN_IDS_SEEN) < _CHAIN_IDS_KEPT:
            _CHAIN_IDS_SEEN.add(chain_id)
    signer = _address(envelope["signer"], "tx.signer")
    nonce = expect_int(envelope["nonce"], "tx.nonce", 1, MAX_NONCE)
    body = expect_object(envelope["body"], "tx.body")
    try:
        BODY_CHECKS[tx_type](body)
    except FieldError as err:
        raise FieldError("tx." + err.field, err.message) from None
    # The wire bytes are canonical, so they are exactly
    # {"signature":"<128 hex>","tx":<canonical tx>}: the signed bytes are a slice.
    signed = data[_WIRE_PREFIX_LENGTH:-1]
    return Tx(
        type=tx_type,
        chain_id=chain_id,
        signer=signer,
        nonce=nonce,
        body=body,
        signature=bytes.fromhex(signature),
        signed_bytes=signed,
        id=hashlib.sha256(signed).hexdigest() if tx_id is None else tx_id,
    )
