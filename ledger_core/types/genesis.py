"""The genesis file: chain id, operators, validators and parameters.

Canonical JSON. Operators are the accounts the paper calls ISO, supplier and
DSO; each role (``ISO``, ``SUPPLIER``, ``DSO``) belongs to exactly one operator,
and one operator may hold several. Everything else joins by an operator-signed
registration.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Final

from ledger_core.types import codec
from ledger_core.types.crypto import PUBLIC_KEY_RE, address_of
from ledger_core.types.fields import (
    FieldError,
    expect_bool,
    expect_int,
    expect_keys,
    expect_object,
    expect_str,
)
from ledger_core.types.tx import CHAIN_ID_RE, MAX_TIME

OPERATOR_ROLES: Final = ("ISO", "SUPPLIER", "DSO")
MAX_GENESIS_BYTES: Final = 1 << 20
PRICING_RULES: Final = ("uniform", "pay_as_bid")
# Integer parameters a genesis file may leave out, with their ranges.
_OPTIONAL_INT_PARAMS: Final = {
    "gate_closure_seconds": (0, 7 * 86400),
    "settlement_delay_seconds": (0, 30 * 86400),
    "bill_deadline_seconds": (86400, 366 * 86400),
    "precision_ms": (1, 60_000),
    "message_delay_ms": (1, 600_000),
}
_OPTIONAL_PARAMS: Final = (*_OPTIONAL_INT_PARAMS, "settle_all_reports", "market_pricing")


@dataclass(frozen=True, slots=True)
class Operator:
    """An operator account from genesis."""

    public_key: bytes
    roles: tuple[str, ...]

    @property
    def address(self) -> str:
        """The operator's address."""
        return address_of(self.public_key)


@dataclass(frozen=True, slots=True)
class Validator:
    """A validator's consensus key and voting power."""

    public_key: bytes
    power: int


@dataclass(frozen=True, slots=True)
class Params:
    """Chain parameters (integers, flags and names; never floats).

    The market's and the block-time parameters are optional in the genesis file
    and written only when they differ from their defaults, so genesis files (and
    their hashes) from before them stay valid.
    """

    interval_seconds: int = 900
    report_grace_seconds: int = 2 * 86400
    utc_offset_minutes: int = -360  # Mexico's central zone, no daylight-saving time since 2022
    max_block_txs: int = 5000
    max_tx_bytes: int = 16 * 1024
    # Market (docs/market.md): orders close this long before their interval starts;
    # an interval settles this long after it ends (also the wait for its reports).
    gate_closure_seconds: int = 0
    settlement_delay_seconds: int = 3600
    # A local day's bills must come before this long after the day is over and
    # settlement_delay_seconds more (longer than report_grace_seconds, so that a day's
    # late reports can still be billed); then the day's records leave the live state.
    bill_deadline_seconds: int = 3 * 86400
    settle_all_reports: bool = True
    market_pricing: str = "uniform"
    # Proposer-based timestamps (docs/consensus.md, "Block time"): how far apart two
    # correct validators' clocks may read (PRECISION), and how long a proposal may take
    # to reach every validator in round 0 (MSGDELAY; it grows with the round).
    precision_ms: int = 500
    message_delay_ms: int = 3000

    def local(self, seconds: int) -> int:
        """Unix seconds shifted to the market's local civil time."""
        return seconds + self.utc_offset_minutes * 60

    def __post_init__(self) -> None:
        if self.bill_deadline_seconds <= self.report_grace_seconds:
            raise ValueError("bill_deadline_seconds must be longer than report_grace_seconds")

    def day_of(self, seconds: int) -> int:
        """The first second (Unix) of the local day ``seconds`` falls in."""
        return seconds - self.local(seconds) % 86400

    def day_closes(self, day: int) -> int:
        """The first block time at which the local day starting at ``day`` (Unix seconds)
        can no longer be billed: from then on its records leave the live state
        (docs/market.md, "What leaves the live state")."""
        return day + 86400 + self.settlement_delay_seconds + self.bill_deadline_seconds

    def local_datetime(self, seconds: int) -> datetime:
        """A time as the naive local datetime that contracts use."""
        shifted = datetime.fromtimestamp(seconds, tz=UTC) + timedelta(
            minutes=self.utc_offset_minutes
        )
        return shifted.replace(tzinfo=None)


@dataclass(frozen=True, slots=True)
class Genesis:
    """A chain's starting point."""

    chain_id: str
    genesis_time: int
    operators: tuple[Operator, ...]
    validators: tuple[Validator, ...]
    params: Params = field(default_factory=Params)

    def operator_for(self, role: str) -> Operator:
        """The operator holding ``role``."""
        for operator in self.operators:
            if role in operator.roles:
                return operator
        raise KeyError(role)

    def to_json(self) -> codec.Value:
        """The canonical JSON value of this genesis."""
        p = self.params
        return {
            "chain_id": self.chain_id,
            "genesis_time": self.genesis_time,
            "operators": [
                {"public_key": o.public_key.hex(), "roles": list(o.roles)} for o in self.operators
            ],
            "validators": [
                {"public_key": v.public_key.hex(), "power": v.power} for v in self.validators
            ],
            "params": {
                "interval_seconds": p.interval_seconds,
                "report_grace_seconds": p.report_grace_seconds,
                "utc_offset_minutes": p.utc_offset_minutes,
                "max_block_txs": p.max_block_txs,
                "max_tx_bytes": p.max_tx_bytes,
                **{
                    name: getattr(p, name)
                    for name in _OPTIONAL_PARAMS
                    if getattr(p, name) != getattr(_DEFAULTS, name)
                },
            },
        }

    def encode(self) -> bytes:
        """Canonical bytes (what the file holds, and what its hash covers)."""
        return codec.encode(self.to_json())

    @property
    def hash(self) -> str:
        """SHA-256 of the canonical bytes, hex: what peers and databases check so that
        they never mix chains."""
        return hashlib.sha256(self.encode()).hexdigest()

    def save(self, path: Path) -> None:
        """Write the genesis file."""
        path.write_bytes(self.encode() + b"\n")


_DEFAULTS: Final = Params()


def _check_bill_deadline(values: dict[str, int]) -> None:
    grace = values["report_grace_seconds"]
    if values.get("bill_deadline_seconds", _DEFAULTS.bill_deadline_seconds) <= grace:
        raise FieldError(
            "params.bill_deadline_seconds",
            f"must be longer than report_grace_seconds ({grace}), so that every late report "
            "can still be billed",
        )


def parse_genesis(data: bytes) -> Genesis:
    """A genesis from canonical JSON bytes, or FieldError naming the field."""
    try:
        value = codec.decode(data.rstrip(b"\n"), MAX_GENESIS_BYTES)
    except codec.DecodeError as err:
        raise FieldError("genesis", str(err)) from None
    obj = expect_object(value, "genesis")
    expect_keys(obj, "", {"chain_id", "genesis_time", "operators", "validators", "params"}, set())
    chain_id = expect_str(obj["chain_id"], "chain_id", CHAIN_ID_RE)
    genesis_time = expect_int(obj["genesis_time"], "genesis_time", 0, MAX_TIME)
    operators = []
    if not isinstance(obj["operators"], list) or not obj["operators"]:
        raise FieldError("operators", "must be a non-empty list")
    for i, raw in enumerate(obj["operators"]):
        item = expect_object(raw, f"operators[{i}]")
        expect_keys(item, f"operators[{i}]", {"public_key", "roles"}, set())
        key = bytes.fromhex(
            expect_str(item["public_key"], f"operators[{i}].public_key", PUBLIC_KEY_RE)
        )
        roles = item["roles"]
        if not isinstance(roles, list) or not roles:
            raise FieldError(f"operators[{i}].roles", "must be a non-empty list")
        for j, role in enumerate(roles):
            if role not in OPERATOR_ROLES:
                raise FieldError(f"operators[{i}].roles[{j}]", "must be ISO, SUPPLIER or DSO")
        operators.append(Operator(key, tuple(str(r) for r in roles)))
    for role in OPERATOR_ROLES:
        holders = [o for o in operators if role in o.roles]
        if len(holders) != 1:
            raise FieldError("operators", f"role {role} must belong to exactly one operator")
    validators = []
    if not isinstance(obj["validators"], list) or not obj["validators"]:
        raise FieldError("validators", "must be a non-empty list")
    for i, raw in enumerate(obj["validators"]):
        item = expect_object(raw, f"validators[{i}]")
        expect_keys(item, f"validators[{i}]", {"public_key", "power"}, set())
        key = bytes.fromhex(
            expect_str(item["public_key"], f"validators[{i}].public_key", PUBLIC_KEY_RE)
        )
        validators.append(
            Validator(key, expect_int(item["power"], f"validators[{i}].power", 1, 10**6))
        )
    params_obj = expect_object(obj["params"], "params")
    names = {
        "interval_seconds": (60, 3600),
        "report_grace_seconds": (0, 30 * 86400),
        "utc_offset_minutes": (-720, 840),
        "max_block_txs": (1, 100_000),
        "max_tx_bytes": (1024, 1 << 20),
    }
    expect_keys(params_obj, "params", set(names), set(_OPTIONAL_PARAMS))
    values = {
        name: expect_int(params_obj[name], f"params.{name}", low, high)
        for name, (low, high) in names.items()
    }
    if 86400 % values["interval_seconds"]:
        raise FieldError("params.interval_seconds", "must divide a day")
    for name, (low, high) in _OPTIONAL_INT_PARAMS.items():
        if name in params_obj:
            values[name] = expect_int(params_obj[name], f"params.{name}", low, high)
    settle_all = _DEFAULTS.settle_all_reports
    if "settle_all_reports" in params_obj:
        settle_all = expect_bool(params_obj["settle_all_reports"], "params.settle_all_reports")
    pricing = _DEFAULTS.market_pricing
    if "market_pricing" in params_obj:
        pricing = expect_str(params_obj["market_pricing"], "params.market_pricing", limit=32)
        if pricing not in PRICING_RULES:
            raise FieldError("params.market_pricing", "must be " + " or ".join(PRICING_RULES))
    _check_bill_deadline(values)
    params = Params(**values, settle_all_reports=settle_all, market_pricing=pricing)
    return Genesis(chain_id, genesis_time, tuple(operators), tuple(validators), params)
