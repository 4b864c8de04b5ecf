"""The application interface: what consensus and the node ask of the state machine.

In the spirit of CometBFT's ABCI, the node and consensus drive *an*
application through this interface and never name the concrete one
(:class:`ledger_core.state.machine.StateMachine` is the ledger's; tests may
drive others). The application is deterministic: given the same genesis and
the same ordered blocks, every node computes the same results, events and app
hash.

- :meth:`Application.check_tx` judges a transaction for the mempool against the
  committed state plus the mempool's earlier transactions;
  :meth:`Application.reset_check` forgets the mempool's transactions.
- :meth:`Application.execute` runs a block on top of the committed state without
  changing it and returns an :class:`Execution` (results, events, writes, the app
  hash they give); validators execute a proposal before voting for it.
- :meth:`Application.apply` makes a decided block's execution the committed state.
- :meth:`Application.query` reads a committed value with its proof against the
  app hash; :meth:`Application.validator_set` is the set consensus votes with.

Events are canonical JSON objects with a ``type``; a transaction's result has a
stable ``code`` (``ok`` when applied) and a message that says why not.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Final, Protocol

from ledger_core.types import codec
from ledger_core.types.commitment import Proof
from ledger_core.types.genesis import Genesis
from ledger_core.types.tx import Tx
from ledger_core.types.validators import ValidatorSet
from ledger_core.types.vote import DuplicateVoteEvidence

type Value = codec.Value
type Event = dict[str, Value]

OK: Final = "ok"


@dataclass(frozen=True, slots=True)
class BlockContext:
    """What the block tells the application: its height and time (Unix seconds)."""

    height: int
    time: int


@dataclass(frozen=True, slots=True)
class TxResult:
    """The outcome of one transaction: ``code`` is ``ok`` or why it was refused."""

    code: str
    message: str = ""
    events: tuple[Event, ...] = ()

    @property
    def ok(self) -> bool:
        """True when the transaction was applied."""
        return self.code == OK


class InvalidBlock(Exception):  # noqa: N818 - a verdict, not a crash
    """A block the application cannot execute (bad evidence); the message says why."""


@dataclass(frozen=True, slots=True)
class Execution:
    """A block executed on top of the state at ``base_height``, not yet applied.

    ``writes`` holds the canonical bytes of every value the block changes (None
    for a deletion): what the node stores with the block. ``retired`` holds the
    last value (canonical bytes) of each record the block took out of the live
    state, which the node keeps in its history. ``handle`` is the
    application's own (opaque to everyone else) and lets it apply the execution
    without computing anything again.
    """

    context: BlockContext
    base_height: int
    txs: tuple[Tx, ...]
    results: tuple[TxResult, ...]
    block_events: tuple[Event, ...]
    writes: Mapping[str, bytes | None]
    app_hash: bytes
    handle: object = field(repr=False, compare=False, default=None)
    retired: Mapping[str, bytes] = field(repr=False, default_factory=dict)


class Application(Protocol):
    """A deterministic state machine driven by consensus (see the module's docstring)."""

    @property
    def genesis(self) -> Genesis:
        """The chain this application runs."""
        ...

    @property
    def height(self) -> int:
        """The last applied height (0 before the first block)."""
        ...

    @property
    def last_block_time(self) -> int:
        """The time of the last applied block (the genesis time before the first)."""
        ...

    @property
    def app_hash(self) -> bytes:
        """The root over the committed state."""
        ...

    def check_tx(self, tx: Tx) -> TxResult:
        """Judge ``tx`` against the committed state plus the mempool's earlier transactions."""
        ...

    def reset_check(self) -> None:
        """Forget the mempool's transactions (the node then checks its mempool again)."""
        ...

    def execute(
        self,
        context: BlockContext,
        txs: Sequence[Tx],
        evidence: Sequence[DuplicateVoteEvidence] = (),
    ) -> Execution:
        """Execute a block without changing the state; InvalidBlock for bad evidence."""
        ...

    def apply(self, execution: Execution) -> None:
        """Make an execution of the next block the committed state."""
        ...

    def query(self, key: str) -> tuple[Value | None, Proof | None]:
        """A committed value and its proof against :attr:`app_hash`."""
        ...

    def get(self, key: str) -> Value | None:
        """A committed value, without a proof."""
        ...

    def items(self) -> Iterator[tuple[str, Value]]:
        """The whole committed state, in key order (snapshots and a new database)."""
        ...

    def validator_set(self, height: int | None = None) -> ValidatorSet:
        """The validators of ``height`` (default: the next block's, with its proposer
        priorities); KeyError for a height the state no longer or not yet knows."""
        ...

    def last_nonce(self, address: str) -> int:
        """The last committed nonce of ``address`` (0 before its first transaction)."""
        ...

    def has_evidence(self, evidence: DuplicateVoteEvidence) -> bool:
        """Whether this equivocation is already committed."""
        ...


class ApplicationFactory(Protocol):
    """Builds the application of a chain on a committed state read back from storage."""

    def __call__(
        self, genesis: Genesis, state: Mapping[str, Value], height: int, last_block_time: int
    ) -> Application:
        """The application at ``height`` with ``state`` (empty at height 0: genesis)."""
        ...
