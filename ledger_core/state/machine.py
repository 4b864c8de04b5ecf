"""The ledger's state machine: the :class:`~ledger_core.types.abci.Application` of a chain.

It reads no clock and no randomness and holds no floats: block time comes from
the block, and every amount is an integer (centavos, Wh, 10^-4 MXN/kWh, Unix
seconds). Given the same genesis and the same blocks, every node computes the
same state and the same app hash.

Validators execute a proposed block before voting for it, so execution and
commitment are separate steps: :meth:`StateMachine.execute` runs a block on a
copy-on-write overlay and returns an :class:`~ledger_core.types.abci.Execution`
(results, events, writes and the app hash they give, computed without touching
the state); :meth:`StateMachine.apply` makes a decided block's execution the
state. ``begin_block`` / ``deliver_tx`` / ``end_block`` / ``commit`` are the
same steps one at a time.

The mempool's checks are journalled: each accepted transaction with its result, its
writes, the value of every key it read from the state below it, and whether its
handler read the block's time. When a block carries a journalled transaction,
:meth:`execute` takes its result and writes from the journal instead of running it
again if every key it read has the same value in the block's state at that point
(same object, or same canonical bytes) and, when its handler read the time, the
block has the time the mempool checked against. Handlers read the state only
through the overlay and depend on nothing else but the transaction, the height
(the next block's in both) and the time, so a transaction whose inputs are the
same gives the same result and writes (the machine is deterministic): the block's
execution is the same either way, in any order of its transactions.

The live state holds only what a future transaction can need: ``end_block`` takes a
closed day's market and metering records out (:mod:`.history`), and the execution's
``retired`` carries their last values to the node, which keeps them.

Envelope rules (every transaction): the chain id matches, the signer is a
registered, active account, the signature is the signer's, and the nonce is
larger than the signer's last. A transaction that passes them consumes its
nonce even if its body is then refused, so nothing applies twice. Then the
handler of its type runs (:mod:`.kernel` routes it to the domain modules).
"""

from __future__ import annotations

import bisect
from collections import OrderedDict
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Final

from ledger_core.state import (
    accounts,
    contracts,
    history,
    keys,
    meters,
    signals,
    validators,
    wallet,
)
from ledger_core.state.commitment import Staged, StateCommitment
from ledger_core.state.kernel import (
    OPERATOR,
    Chain,
    Overlay,
    RecordingOverlay,
    Rejected,
    route,
)
from ledger_core.state.market import clearing, metered, orders
from ledger_core.types import codec
from ledger_core.types.abci import BlockContext, Event, Execution, InvalidBlock, TxResult
from ledger_core.types.commitment import Proof
from ledger_core.types.genesis import Genesis
from ledger_core.types.tx import Tx
from ledger_core.types.validators import ValidatorSet
from ledger_core.types.vote import DuplicateVoteEvidence

type Value = codec.Value

VERIFIED_CACHE: Final = 200_000
HANDLERS: Final = route(
    accounts.HANDLERS,
    contracts.HANDLERS,
    meters.HANDLERS,
    signals.HANDLERS,
    wallet.HANDLERS,
    orders.HANDLERS,
    metered.HANDLERS,
    validators.HANDLERS,
)


@dataclass(frozen=True, slots=True)
class _Checked:
    """A transaction the mempool accepted: its result, its writes and what it read on the
    mempool's state, and whether it read the block's time."""

    tx: Tx
    result: TxResult
    writes: dict[str, Value | None]
    reads: dict[str, Value | None]
    timed: bool


class _WatchedContext:
    """A :class:`BlockContext` for the mempool's checks that notes whether the handler
    read the time (what a handler's result may depend on beside the state)."""

    __slots__ = ("_time", "height", "read_time")

    def __init__(self, height: int, time: int) -> None:
        self.height = height
        self._time = time
        self.read_time = False

    @property
    def time(self) -> int:
        """The block's time (noted as read)."""
        self.read_time = True
        return self._time


def _same_inputs(state: Overlay, reads: dict[str, Value | None]) -> bool:
    """Whether every key has the value read (the same object, or the same canonical bytes:
    1 and true are different values here, as they are on the chain)."""
    for key, seen in reads.items():
        now = state.get(key)
        if now is not seen and (
            now is None or seen is None or codec.encode(now) != codec.encode(seen)
        ):
            return False
    return True


@dataclass(frozen=True, slots=True)
class _Applied:
    """What :meth:`StateMachine.apply` needs of an execution beyond its public fields."""

    values: dict[str, Value | None]
    staged: Staged


@dataclass
class StateMachine:
    """The state machine of one chain."""

    genesis: Genesis
    state: dict[str, Value] = field(default_factory=dict)
    height: int = 0
    last_block_time: int = 0
    _commitment: StateCommitment = field(default_factory=StateCommitment)
    _chain: Chain | None = None
    _check: Overlay | None = None
    _block: Overlay | None = None
    _context: BlockContext | None = None
    _block_events: list[Event] = field(default_factory=list)
    _expiry: list[str] = field(default_factory=list)
    # Transactions (id and signature) whose signature this process has
    # verified. An address is the hash of its public key, so a signature that
    # was valid for a signer stays valid: check_tx verifies, deliver_tx need not
    # again. The signature is part of the key: a block may carry the same
    # signed bytes with another signature, which must be checked.
    _verified: OrderedDict[str, None] = field(default_factory=OrderedDict)
    # What the mempool's checks gave, by transaction id (see the module's docstring),
    # and the block time they were checked at.
    _journal: dict[str, _Checked] = field(default_factory=dict)
    _check_time: int = 0
    # The committed state's records that leave it when their day closes (.history),
    # and what the block being executed took out.
    _retirement: history.Retirement | None = None
    _retired: dict[str, bytes] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self._chain = Chain(self.genesis)
        if not self.state:
            self.last_block_time = self.genesis.genesis_time
            for operator in self.genesis.operators:
                self.state[keys.account(operator.address)] = {
                    "public_key": operator.public_key.hex(),
                    "role": OPERATOR,
                    "roles": list(operator.roles),
                    "status": "active",
                    "since": 0,
                }
                self.state[keys.balance(operator.address)] = 0
            self.state[keys.TOTAL_DEPOSITS] = 0
            self.state[keys.TOTAL_WITHDRAWALS] = 0
            members = ValidatorSet((v.public_key, v.power) for v in self.genesis.validators)
            self.state.update(validators.genesis_entries(members))
        self._commitment = StateCommitment(self.state)
        # The values were decoded from canonical bytes (storage, a snapshot) or built
        # above; a value that was not would give another app hash than the stored header's,
        # which the node refuses at start-up.
        encode = codec.encode_decoded
        self._commitment.load((key, encode(value)) for key, value in self.state.items())
        # Contracts by the local time their window closes, for end_block.
        self._expiry = sorted(k for k in self.state if k.startswith(keys.EXPIRY))
        self._retirement = history.Retirement(self.genesis.params, self.state.items())
        self._check = Overlay(self.state)
        self._check_time = self.last_block_time

    @classmethod
    def restore(
        cls, genesis: Genesis, state: Mapping[str, Value], height: int, last_block_time: int
    ) -> StateMachine:
        """The machine at ``height`` with a committed ``state`` (an
        :class:`~ledger_core.types.abci.ApplicationFactory`); empty state: genesis."""
        if not state:
            return cls(genesis)
        return cls(genesis, state=dict(state), height=height, last_block_time=last_block_time)

    @property
    def chain(self) -> Chain:
        """The chain handlers run on."""
        assert self._chain is not None
        return self._chain

    # -- the application interface ----------------------------------------------------

    @property
    def app_hash(self) -> bytes:
        """The root over the committed state."""
        return self._commitment.root()

    def check_tx(self, tx: Tx) -> TxResult:
        """Judge ``tx`` against the state plus the mempool's earlier transactions, at the
        next height and the last block's time."""
        assert self._check is not None
        context = _WatchedContext(self.height + 1, self._check_time)
        # A refused transaction leaves no trace (not even its nonce) in the
        # mempool's state, since it does not enter the mempool.
        trial = RecordingOverlay(self._check)  # type: ignore[arg-type]
        result = self._run(trial, tx, context, discard=True)  # type: ignore[arg-type]
        if result.ok:
            trial.fold_into_parent(self._check)
            self._journal[tx.id] = _Checked(
                tx, result, trial.writes, trial.reads, context.read_time
            )
        return result

    def reset_check(self) -> None:
        """Forget the mempool's transactions: the next ``check_tx`` judges against the
        committed state alone (the node then checks its mempool again, in order)."""
        self._check = Overlay(self.state)
        self._journal = {}
        self._check_time = self.last_block_time

    def begin_block(self, context: BlockContext) -> None:
        """Start executing block ``context.height``."""
        if context.height != self.height + 1:
            raise ValueError(f"block {context.height} after {self.height}")
        if context.time < self.last_block_time:
            raise ValueError("block time goes backwards")
        self._context = context
        self._block = Overlay(self.state)
        self._block_events = []
        self._retired = {}

    def deliver_tx(self, tx: Tx) -> TxResult:
        """Execute one transaction of the current block."""
        assert self._block is not None, "begin_block first"
        assert self._context is not None, "begin_block first"
        return self._run(self._block, tx, self._context)

    def end_block(self) -> tuple[Event, ...]:
        """Expire contracts whose window has closed, clear and settle the market's due
        intervals, take closed days' records out of the live state; the block's own
        events."""
        assert self._block is not None, "begin_block first"
        assert self._context is not None, "begin_block first"
        upto = keys.expiry_bound(self.chain.local(self._context.time))
        due = set(self._expiry[: bisect.bisect_left(self._expiry, upto)])
        due |= {k for k in self._block.writes if k.startswith(keys.EXPIRY) and k < upto}
        events = contracts.expire(self._block, sorted(due))
        events.extend(clearing.end_block(self.chain, self._block, self._context))
        assert self._retirement is not None
        self._retired = self._retirement.take(self._block, self._context.height, self._context.time)
        self._block_events.extend(events)
        return tuple(events)

    def commit(self) -> tuple[bytes, Mapping[str, bytes | None]]:
        """Make the block's writes the state; the new app hash and the writes (canonical
        bytes of each new value, None for a deletion)."""
        execution = self._finish((), ())
        self.apply(execution)
        return execution.app_hash, execution.writes

    def execute(
        self,
        context: BlockContext,
        txs: Sequence[Tx],
        evidence: Sequence[DuplicateVoteEvidence] = (),
    ) -> Execution:
        """Execute a block without changing the state; InvalidBlock for bad evidence."""
        self.begin_block(context)
        try:
            assert self._block is not None
            for i, item in enumerate(evidence):
                try:
                    self._block_events.extend(
                        validators.commit_evidence(self.chain, self._block, item, context)
                    )
                except Rejected as err:
                    raise InvalidBlock(f"evidence[{i}]: {err.message}") from None
            if evidence:
                results = [self._run(self._block, tx, context) for tx in txs]
            else:
                results = self._run_checked(self._block, txs, context)
            self.end_block()
        except BaseException:
            self._block = None
            self._context = None
            raise
        return self._finish(tuple(txs), tuple(results))

    def _finish(self, txs: tuple[Tx, ...], results: tuple[TxResult, ...]) -> Execution:
        """Advance proposer priorities, stage the writes' root and end the block."""
        block, context = self._block, self._context
        assert block is not None, "begin_block first"
        assert context is not None, "begin_block first"
        validators.advance(block, context.height)
        values = block.writes  # the overlay is dropped below: its writes are the block's
        encode = codec.encode
        encoded = {k: None if v is None else encode(v) for k, v in values.items()}
        staged = self._commitment.stage_encoded(encoded)
        events = tuple(self._block_events)
        self._block = None
        self._context = None
        self._block_events = []
        retired, self._retired = self._retired, {}
        return Execution(
            context,
            self.height,
            txs,
            results,
            events,
            encoded,
            staged.root,
            _Applied(values, staged),
            retired,
        )

    def apply(self, execution: Execution) -> None:
        """Make an execution of the next block the state."""
        if execution.base_height != self.height:
            raise ValueError(
                f"the execution is on height {execution.base_height}, the state at {self.height}"
            )
        applied = execution.handle
        assert isinstance(applied, _Applied), "an execution of another application"
        self._commitment.install(applied.staged)
        retirement = self._retirement
        assert retirement is not None
        for key, value in applied.values.items():
            if value is None:
                old = self.state.pop(key, None)
                if old is not None:
                    retirement.removed(key, old)
                    if key.startswith(keys.EXPIRY):
                        self._expiry.pop(bisect.bisect_left(self._expiry, key))
            else:
                if key not in self.state:
                    retirement.added(key, value)
                    if key.startswith(keys.EXPIRY):
                        bisect.insort(self._expiry, key)
                self.state[key] = value
        self.height = execution.context.height
        self.last_block_time = execution.context.time
        self.reset_check()

    def validator_set(self, height: int | None = None) -> ValidatorSet:
        """The validators of ``height`` (default: the next block's, with its proposer
        priorities); KeyError for a height the state no longer or not yet knows."""
        next_height = self.height + 1
        return validators.validator_set(
            Overlay(self.state), next_height if height is None else height, next_height
        )

    def query(self, key: str) -> tuple[Value | None, Proof | None]:
        """A committed value and its proof against :attr:`app_hash`."""
        return self.state.get(key), self._commitment.prove(key)

    def get(self, key: str) -> Value | None:
        """A committed value."""
        return self.state.get(key)

    def items(self) -> Iterator[tuple[str, Value]]:
        """The committed state in key order."""
        return iter(sorted(self.state.items()))

    def last_nonce(self, address: str) -> int:
        """The last committed nonce of ``address``."""
        value = self.state.get(keys.nonce(address))
        return value if isinstance(value, int) else 0

    def has_evidence(self, evidence: DuplicateVoteEvidence) -> bool:
        """Whether this equivocation is committed."""
        return keys.evidence(evidence.key) in self.state

    def local_datetime(self, seconds: int) -> datetime:
        """Block time as the naive local datetime that contracts use."""
        return self.chain.local_datetime(seconds)

    # -- envelope and dispatch ------------------------------------------------------------

    def _run_checked(
        self, block: Overlay, txs: Sequence[Tx], context: BlockContext
    ) -> list[TxResult]:
        """Run ``txs`` on ``block`` (on the committed state, no evidence before them),
        taking from the mempool's journal what it already knows (see the module's
        docstring)."""
        journal = self._journal
        same_time = context.time == self._check_time
        results: list[TxResult] = []
        for tx in txs:
            entry = journal.get(tx.id)
            if (
                entry is not None
                and entry.tx.signature == tx.signature
                and (same_time or not entry.timed)
                and _same_inputs(block, entry.reads)
            ):
                block.writes.update(entry.writes)
                results.append(entry.result)
            else:
                results.append(self._run(block, tx, context))
        return results

    def _run(
        self, overlay: Overlay, tx: Tx, context: BlockContext, *, discard: bool = False
    ) -> TxResult:
        """Run ``tx`` on ``overlay``. A transaction past the envelope rules uses its
        nonce even when its handler refuses it; ``discard`` says the caller drops the
        whole overlay on any refusal (a mempool check), so the handler can write to it
        directly."""
        try:
            account = self._envelope(overlay, tx)
        except Rejected as err:
            return TxResult(err.code, err.message)
        overlay.put(keys.nonce(tx.signer), tx.nonce)
        if discard:
            try:
                events = HANDLERS[tx.type](self.chain, overlay, tx, account, context)
            except Rejected as err:
                return TxResult(err.code, err.message)
            return TxResult("ok", "", tuple(events))
        work = overlay.child()
        try:
            events = HANDLERS[tx.type](self.chain, work, tx, account, context)
        except Rejected as err:
            return TxResult(err.code, err.message)
        work.fold_into_parent(overlay)
        return TxResult("ok", "", tuple(events))

    def _envelope(self, state: Overlay, tx: Tx) -> dict[str, Value]:
        if tx.chain_id != self.genesis.chain_id:
            raise Rejected(
                "wrong_chain", f"chain id {tx.chain_id!r} is not {self.genesis.chain_id!r}"
            )
        account = state.get(keys.account(tx.signer))
        if not isinstance(account, dict):
            raise Rejected("unknown_signer", f"{tx.signer} is not a registered participant")
        if account["status"] != "active":
            raise Rejected("revoked_signer", f"{tx.signer} has been revoked")
        verified = tx.id + tx.signature.hex()
        if verified not in self._verified:
            public_key = bytes.fromhex(str(account["public_key"]))
            if not tx.verify_signature(public_key):
                raise Rejected("bad_signature", "the signature is not the signer's")
            self._verified[verified] = None
            if len(self._verified) > VERIFIED_CACHE:
                self._verified.popitem(last=False)
        last = state.get(keys.nonce(tx.signer))
        last_nonce = last if isinstance(last, int) else 0
        if tx.nonce <= last_nonce:
            raise Rejected("stale_nonce", f"nonce {tx.nonce} is not above {last_nonce}")
        return account
