"""The state machine's kernel: overlays, rejections, the chain a handler runs on, the router.

A transaction is executed by one handler, chosen by its type. A handler gets
the :class:`Chain` (genesis and its civil time), an :class:`Overlay` of the
state to read and write, the transaction, the signer's account (already checked
by the envelope rules) and the :class:`~ledger_core.types.abci.BlockContext`;
it returns the events it caused, or raises :class:`Rejected`, in which case
none of its writes survive. Handlers read no clock and no randomness and hold
no floats.

Each domain module (``accounts``, ``contracts``, ``meters``, ``signals``,
``wallet``, ``validators``, ``market``) exports ``HANDLERS``; :func:`route`
joins them into one table with exactly one handler per transaction type.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Final

from ledger_core.state import keys
from ledger_core.types import codec
from ledger_core.types.abci import BlockContext, Event
from ledger_core.types.genesis import Genesis, Params
from ledger_core.types.tx import Role, Tx, TxType

type Value = codec.Value
type Account = dict[str, Value]

OPERATOR: Final = "operator"
"""The role of an account made by genesis (its ``roles`` say ISO, SUPPLIER, DSO)."""


class Rejected(Exception):  # noqa: N818 - a verdict, not a crash
    """A transaction refused by the rules; ``code`` is stable, ``message`` says why."""

    def __init__(self, code: str, message: str) -> None:
        self.code = code
        self.message = message
        super().__init__(f"{code}: {message}")


_UNSET: Final = object()


class Overlay:
    """Writes on top of a base mapping, kept until they are committed or dropped."""

    __slots__ = ("base", "writes")

    def __init__(self, base: Mapping[str, Value]) -> None:
        self.base = base
        self.writes: dict[str, Value | None] = {}

    def get(self, key: str) -> Value | None:
        value = self.writes.get(key, _UNSET)
        return self.base.get(key) if value is _UNSET else value  # type: ignore[return-value]

    def put(self, key: str, value: Value | None) -> None:
        self.writes[key] = value

    def child(self) -> Overlay:
        """A nested overlay whose writes fold into this one on success."""
        return Overlay(self)  # type: ignore[arg-type]

    def fold_into_parent(self, parent: Overlay) -> None:
        parent.writes.update(self.writes)


class RecordingOverlay(Overlay):
    """An overlay that also notes the first value it read of each key from below its own
    writes: what a transaction run on it depended on in the state."""

    __slots__ = ("reads",)

    def __init__(self, base: Mapping[str, Value]) -> None:
        super().__init__(base)
        self.reads: dict[str, Value | None] = {}

    def get(self, key: str) -> Value | None:
        value = self.writes.get(key, _UNSET)
        if value is not _UNSET:
            return value  # type: ignore[return-value]
        value = self.base.get(key)
        self.reads.setdefault(key, value)
        return value


@dataclass(frozen=True, slots=True)
class Chain:
    """What a handler knows of the chain beyond the state: its genesis and civil time."""

    genesis: Genesis

    @property
    def params(self) -> Params:
        """The chain's parameters."""
        return self.genesis.params

    def local(self, seconds: int) -> int:
        """Unix seconds shifted to the market's local civil time."""
        return self.genesis.params.local(seconds)

    def local_datetime(self, seconds: int) -> datetime:
        """Block time as the naive local datetime that contracts use."""
        return self.genesis.params.local_datetime(seconds)


type Handler = Callable[[Chain, Overlay, Tx, Account, BlockContext], list[Event]]


def route(*tables: Mapping[TxType, Handler]) -> dict[TxType, Handler]:
    """One table of handlers; every transaction type has exactly one."""
    joined: dict[TxType, Handler] = {}
    for table in tables:
        for tx_type, handler in table.items():
            assert tx_type not in joined, f"two handlers for {tx_type}"
            joined[tx_type] = handler
    missing = set(TxType) - joined.keys()
    assert not missing, f"no handler for {sorted(missing)}"
    return joined


# -- shared rules ---------------------------------------------------------------------


def require_operator(account: Mapping[str, Value], *roles: str) -> None:
    """Only an operator (holding one of ``roles``, if given) may do this."""
    held = account.get("roles")
    if account.get("role") != OPERATOR or not isinstance(held, list):
        raise Rejected("not_permitted", "only an operator may do this")
    if roles and not any(role in held for role in roles):
        raise Rejected("not_permitted", "only the " + " or ".join(roles) + " may do this")


def require_participant(account: Mapping[str, Value]) -> None:
    """Meters may only report."""
    if account.get("role") == Role.METER:
        raise Rejected("not_permitted", "a meter may only send interval reports")


def active_account(state: Overlay, address: str, what: str) -> Account:
    """The active account at ``address``; ``what`` names it in the refusal."""
    account = state.get(keys.account(address))
    if not isinstance(account, dict):
        raise Rejected("unknown_account", f"{what} {address} is not registered")
    if account["status"] != "active":
        raise Rejected("revoked_account", f"{what} {address} has been revoked")
    return account


def int_at(state: Overlay, key: str) -> int:
    """The integer at ``key`` (0 when absent)."""
    value = state.get(key)
    return value if isinstance(value, int) else 0


def str_of(body: Mapping[str, Value], name: str) -> str:
    """A string field the transaction's decoder has checked."""
    value = body[name]
    assert isinstance(value, str)
    return value


def int_of(body: Mapping[str, Value], name: str) -> int:
    """An integer field the transaction's decoder (or the state machine) has checked."""
    value = body[name]
    assert isinstance(value, int)
    return value
