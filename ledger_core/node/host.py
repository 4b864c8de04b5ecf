"""A node: mempool, the consensus engine's host, storage, waiters and events.

The node owns the :class:`Application`, the :class:`Storage`, the consensus
:class:`~ledger_core.consensus.engine.Engine` with its write-ahead log and
private validator, and the mempool. Transactions enter through
:meth:`Node.submit` (decoded, de-duplicated, checked against the mempool
state). Blocks are agreed by the engine: the node builds proposals from the
mempool, executes proposed blocks before its validator votes for them (the
app hash in a header is the state *after* the block), and when a block is
decided it applies the cached execution and writes the block, its commit,
results, events and state changes in one SQLite transaction, and only then
tells waiters and subscribers. A client told that its transaction committed
can count on it after any crash.

With one validator (the embedded default) :meth:`Node.produce_block` runs a
whole round locally — propose, prevote, precommit, decide — with no timeouts
and no network; :meth:`Node.run` paces it.

Block time (proposer-based timestamps, docs/consensus.md): the proposer stamps
a new block with its clock in milliseconds, after the previous block's time;
validators check that a block's time is after the previous block's (and block 1
not before the genesis time) as part of its validity, and the engine prevotes a
block proposed for the first time only if its time was timely when the proposal
arrived. One validator stamps ``max(now, previous + 1 ms)``: nobody else judges
its clock, and a clock set back must not stop its chain.

A network of validators uses :class:`ledger_core.node.networked.ConsensusNode`,
which adds timers, a transport, block sync and snapshots around the same host.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from ledger_core.consensus.engine import (
    Broadcast,
    Decide,
    Effect,
    Engine,
    EvidenceFound,
    ScheduleTimeout,
    Step,
    Synchrony,
    Timeouts,
    Untimely,
)
from ledger_core.consensus.light import LightError, verify_commit
from ledger_core.consensus.privval import DoubleSignError, PrivValidator
from ledger_core.consensus.wal import WAL
from ledger_core.node.storage import Storage, StoredTx
from ledger_core.types import codec
from ledger_core.types.abci import (
    Application,
    ApplicationFactory,
    BlockContext,
    Execution,
    InvalidBlock,
    TxResult,
)
from ledger_core.types.block import GENESIS_PREVIOUS, Block, Header, make_block
from ledger_core.types.crypto import SigningKey
from ledger_core.types.fields import FieldError
from ledger_core.types.genesis import Genesis
from ledger_core.types.proposal import Proposal, decode_message, encode_message
from ledger_core.types.tx import Tx, decode, wire_id
from ledger_core.types.vote import Commit, DuplicateVoteEvidence, Vote

LOG = logging.getLogger(__name__)
MAX_MEMPOOL_TXS: Final = 20_000
MAX_MEMPOOL_BYTES: Final = 64 * 1024 * 1024
MAX_EVIDENCE_PER_BLOCK: Final = 10
MAX_LOCAL_STEPS: Final = 1000
# Clients' transactions are taken while the oldest waiting one has waited less than this
# and what waits commits in about this long; beyond it the API answers 503 overloaded
# with a Retry-After (docs/api.md, docs/performance.md).
MAX_QUEUE_SECONDS: Final = 1.0
# How fast the estimate of the chain's throughput follows a full block's rate.
THROUGHPUT_WEIGHT: Final = 0.3


@dataclass(frozen=True, slots=True)
class Submitted:
    """What :meth:`Node.submit` says: accepted into the mempool, or why not."""

    tx_id: str | None
    code: str
    message: str = ""
    field: str | None = None

    @property
    def accepted(self) -> bool:
        """True when the transaction waits in the mempool."""
        return self.code == "accepted"


class IntegrityError(Exception):
    """The stored state does not match the stored chain."""


class BlockRejected(Exception):  # noqa: N818 - a verdict, not a crash
    """A block that is not a valid next block; the message says why."""


class CommittedState:
    """A node's committed state for readers (a :class:`ledger_core.state.keys.Reader`):
    single keys from the application, ranges of keys from storage; records that left the
    live state (:mod:`ledger_core.state.history`) from storage's history, so readers see
    a closed day as before."""

    __slots__ = ("_node",)

    def __init__(self, node: Node) -> None:
        self._node = node

    def get(self, key: str) -> codec.Value | None:
        """The committed value at ``key`` (live, else the last value of a record that left
        the live state), or None."""
        value = self._node.app.get(key)
        if value is None:
            found = self._node.storage.history_value(key)
            return None if found is None else found[0]
        return value

    def range(self, prefix: str, start: str, end: str, limit: int) -> list[tuple[str, codec.Value]]:
        """Committed entries ``prefix + s`` with ``start <= s < end``, in key order."""
        return self._node.storage.range(prefix, start, end, limit)


class Node:
    """One node's ledger and consensus host (a validator when its key is in the set)."""

    def __init__(
        self,
        genesis: Genesis,
        validator_key: SigningKey,
        storage: Storage,
        clock: Callable[[], float] = time.time,
        max_mempool_txs: int = MAX_MEMPOOL_TXS,
        *,
        home: Path | None = None,
        timeouts: Timeouts | None = None,
        crash_hook: Callable[[str], None] | None = None,
        app_factory: ApplicationFactory,
    ) -> None:
        self.genesis = genesis
        self.key = validator_key
        self.storage = storage
        self.clock = clock
        self.max_mempool_txs = max_mempool_txs
        height = storage.height
        header = storage.header(height) if height else None
        self.app_factory = app_factory
        self.committed = CommittedState(self)
        self.app: Application = app_factory(
            genesis,
            storage.load_state(),
            height,
            header.time if header else genesis.genesis_time,
        )
        if header is None:
            storage.write_initial_state(dict(self.app.items()))
        elif self.app.app_hash.hex() != header.app_hash:
            raise IntegrityError(
                f"state at height {height} hashes to {self.app.app_hash.hex()[:16]}..., "
                f"but block {height} says {header.app_hash[:16]}..."
            )
        self.last_hash = header.hash if header else GENESIS_PREVIOUS
        self.last_header: Header | None = header
        self.last_commit: Commit | None = storage.commit(height) if height else None
        self.last_block: Block | None = None
        self.mempool: dict[str, Tx] = {}
        # Transactions that arrived after a later one of their signer (see submit).
        self._early: dict[str, Tx] = {}
        self._mempool_bytes = 0
        self._waiters: dict[str, list[asyncio.Future[StoredTx | Submitted]]] = {}
        self._subscribers: set[asyncio.Queue[tuple[int, int, codec.Value]]] = set()
        self._wake = asyncio.Event()
        self._last_event_seq = storage.first_event_at(height + 1)
        directory = (home if home is not None else storage.path.parent) / "consensus"
        directory.mkdir(parents=True, exist_ok=True)
        self.privval = PrivValidator(validator_key, genesis.chain_id, directory / "privval.json")
        self.wal = WAL(directory / "wal")
        params = genesis.params
        self.synchrony = Synchrony(params.precision_ms, params.message_delay_ms)
        self.engine = Engine(
            genesis.chain_id, validator_key.address, self, timeouts, self.synchrony
        )
        self.crash_hook = crash_hook
        self.evidence_pool: dict[str, DuplicateVoteEvidence] = {}
        self._executions: dict[str, Execution] = {}
        self._pending_timeouts: list[ScheduleTimeout] = []
        self._replayed: set[bytes] = set()
        self._receipts: dict[tuple[int, str], int] = {}
        self.max_queue_seconds = MAX_QUEUE_SECONDS
        # Committed transactions per second of full blocks (None: no full block yet),
        # when the last block was committed, and when each waiting transaction came
        # (time.monotonic(), in the order they came).
        self.throughput: float | None = None
        self._last_commit_at: float | None = None
        self._arrivals: dict[str, float] = {}

    def close(self) -> None:
        """Close the write-ahead log and the database."""
        self.wal.close()
        self.storage.close()

    @property
    def height(self) -> int:
        """The last committed height."""
        return self.app.height

    @property
    def catching_up(self) -> bool:
        """Whether the node is still syncing from peers (never, alone)."""
        return False

    # -- transactions -------------------------------------------------------------

    def submit(self, wire: bytes) -> Submitted:
        """Decode, check and queue a transaction."""
        tx_id = wire_id(wire)
        known = self.mempool.get(tx_id) or self._early.get(tx_id)
        if known is not None and known.wire() == wire:  # gossip brings it again: no decoding
            return Submitted(tx_id, "duplicate", "the transaction is already in the mempool")
        try:
            tx = decode(wire, tx_id)
        except FieldError as err:
            return Submitted(None, "malformed", err.message, err.field)
        if self.is_pending(tx.id):
            return Submitted(tx.id, "duplicate", "the transaction is already in the mempool")
        if len(self.mempool) + len(self._early) >= self.max_mempool_txs or (
            self._mempool_bytes + len(wire) > MAX_MEMPOOL_BYTES
        ):
            return Submitted(tx.id, "mempool_full", "the node is busy; try again shortly")
        result = self.app.check_tx(tx)
        if not result.ok:
            # A committed transaction's nonce is used up; say so plainly.
            if result.code == "stale_nonce" and self.storage.tx(tx.id) is not None:
                return Submitted(tx.id, "already_committed", "the transaction is already committed")
            if result.code == "stale_nonce" and self._arrived_early(tx):
                # Held aside until the mempool is next checked in order (after a block,
                # or before proposing one): then it goes before its signer's later ones.
                self._early[tx.id] = tx
                self._arrivals[tx.id] = time.monotonic()
                self._mempool_bytes += len(wire)
                self._wake.set()
                return Submitted(tx.id, "accepted")
            return Submitted(tx.id, result.code, result.message)
        self.mempool[tx.id] = tx
        self._arrivals[tx.id] = time.monotonic()
        self._mempool_bytes += len(wire)
        self._wake.set()
        return Submitted(tx.id, "accepted")

    def busy_for(self, count: int = 1) -> float | None:
        """None when ``count`` more transactions from clients can be taken now; else about
        how many seconds until they can.

        The node is busy when more waits than the next block can take and either its
        oldest waiting transaction has waited longer than ``max_queue_seconds`` (the
        queue is not draining in time), or what waits would take longer than that to
        commit at the chain's throughput as measured by full blocks (a burst). What one
        block takes is never refused: a chain that is only slow (a validator away, rounds
        timing out) is not overloaded. Gossiped transactions are not held to this (peers
        took them already); the API answers clients 503 ``overloaded`` with a Retry-After
        instead of letting every client wait longer and longer.
        """
        pending = len(self.mempool) + len(self._early)
        if pending == 0 or not self._arrivals:
            return None
        if pending + count <= self.genesis.params.max_block_txs:
            return None
        bound = self.max_queue_seconds
        wait = time.monotonic() - next(iter(self._arrivals.values())) - bound
        rate = self.throughput
        if rate is not None:
            wait = max(wait, (pending + count) / rate - bound)
        return None if wait <= 0 else max(1.0, wait)

    def _note_throughput(self, committed: int) -> None:
        """Update :attr:`throughput` after a block of ``committed`` transactions: a full
        block shows what the chain commits when it has more than it can take."""
        now = time.monotonic()
        last, self._last_commit_at = self._last_commit_at, now
        if last is None or now <= last or committed < self.genesis.params.max_block_txs:
            return
        rate = committed / (now - last)
        self.throughput = (
            rate
            if self.throughput is None
            else self.throughput + THROUGHPUT_WEIGHT * (rate - self.throughput)
        )

    def _arrived_early(self, tx: Tx) -> bool:
        """Whether ``tx`` is stale only because a later transaction of its signer reached
        the mempool first (gossip, or concurrent requests, can reorder one signer's
        transactions)."""
        if tx.nonce <= self.app.last_nonce(tx.signer):
            return False
        pending = [t.nonce for t in (*self.mempool.values(), *self._early.values())
                   if t.signer == tx.signer]  # fmt: skip
        return tx.nonce not in pending and any(n > tx.nonce for n in pending)

    def next_nonce(self, address: str) -> int:
        """The nonce a new transaction of ``address`` takes: after its committed and
        pending ones. Use it with no await before :meth:`submit`, and concurrent
        signers in this process get consecutive nonces without a lock."""
        pending = [t.nonce for t in (*self.mempool.values(), *self._early.values())
                   if t.signer == address]  # fmt: skip
        return max([self.app.last_nonce(address), *pending]) + 1

    def is_pending(self, tx_id: str) -> bool:
        """Whether the transaction waits to be proposed."""
        return tx_id in self.mempool or tx_id in self._early

    def _merge_early(self) -> None:
        """Put each early transaction before its signer's later ones, in one pass (the
        caller then checks the whole mempool again, in the new order)."""
        if not self._early:
            return
        waiting: dict[str, list[Tx]] = {}
        for tx in sorted(self._early.values(), key=lambda t: t.nonce):
            waiting.setdefault(tx.signer, []).append(tx)
        order: list[Tx] = []
        for tx in self.mempool.values():
            queue = waiting.get(tx.signer)
            while queue and queue[0].nonce < tx.nonce:
                order.append(queue.pop(0))
            order.append(tx)
        for queue in waiting.values():
            order.extend(queue)
        self._early.clear()
        self.mempool = {tx.id: tx for tx in order}

    def wait_for(self, tx_id: str) -> asyncio.Future[StoredTx | Submitted]:
        """A future for a mempool transaction: its stored result, or why it was dropped."""
        future: asyncio.Future[StoredTx | Submitted] = asyncio.get_running_loop().create_future()
        if self.is_pending(tx_id):
            # A pending transaction is not committed: a block takes what it commits
            # out of the mempool, and a copy of a committed one is never admitted.
            self._waiters.setdefault(tx_id, []).append(future)
        elif (stored := self.storage.tx(tx_id)) is not None:
            future.set_result(stored)
        else:
            future.set_result(Submitted(tx_id, "unknown", "not in the mempool"))
        return future

    # -- blocks: one validator ----------------------------------------------------

    def produce_block(self) -> Block:
        """Run one height to its decision locally and return the committed block.

        For a chain where this node's validator alone holds more than two thirds of
        the power (one validator): the round completes without a network, and any
        timeout it needs (only after a restart in the middle of a round) fires at once.
        """
        validators = self.app.validator_set()
        me = validators.get(self.key.address)
        if me is None or not validators.has_quorum(me.power):
            raise RuntimeError(
                "produce_block drives a chain whose single validator is this node; "
                "a network of validators runs a ConsensusNode"
            )
        height = self.height + 1
        if self.engine.height != height or self.engine.decided is not None:
            self.start_height()
        for _ in range(MAX_LOCAL_STEPS):
            if self.height >= height:
                break
            due = [
                t
                for t in self._pending_timeouts
                if (t.height, t.round) == (self.engine.height, self.engine.round)
            ]
            if not due:
                raise RuntimeError(f"the round at height {height} cannot progress")
            first = min(due, key=lambda t: t.step)
            self._pending_timeouts = [t for t in due if t is not first]
            self.fire_timeout(first)
        assert self.last_block is not None
        assert self.last_block.header.height == height
        return self.last_block

    # -- consensus: the engine's host -------------------------------------------------

    def start_height(self) -> None:
        """Start the engine at the next height, replaying what the WAL holds of it."""
        height = self.height + 1
        records = self.wal.open(height)
        self._replayed = {hashlib.sha256(r).digest() for r in records}
        self._receipts = {}
        self._pending_timeouts.clear()
        self._executions.clear()
        self._process(self.engine.start(height, self.app.validator_set(), self.previous_time_ms))
        for payload in records:
            if self.height >= height:
                break
            self._replay(payload)

    def _replay(self, payload: bytes) -> None:
        try:
            value = codec.decode(payload, len(payload))
            if isinstance(value, dict) and set(value) == {"timeout"}:
                timeout = value["timeout"]
                assert isinstance(timeout, dict)
                height, round_, step = timeout["height"], timeout["round"], timeout["step"]
                assert isinstance(height, int)
                assert isinstance(round_, int)
                assert isinstance(step, int)
                self._process(self.engine.on_timeout(height, round_, Step(step)))
                return
            if isinstance(value, dict) and set(value) == {"received"}:
                receipt = value["received"]
                assert isinstance(receipt, dict)
                round_, block_hash, at = receipt["round"], receipt["block_hash"], receipt["at"]
                assert isinstance(round_, int)
                assert isinstance(block_hash, str)
                assert isinstance(at, int)
                self._receipts[(round_, block_hash)] = at
                return
            message = decode_message(payload)
        except (codec.DecodeError, FieldError, AssertionError, ValueError, KeyError) as err:
            LOG.warning("WAL record at height %d skipped: %s", self.engine.height, err)
            return
        received = None
        if isinstance(message, Proposal):
            received = self._receipts.get((message.round, message.block_hash))
        self._consider(message, received)

    def _consider(self, message: Proposal | Vote, received_ms: int | None = None) -> None:
        """Hand a message to the engine (a proposal with the local time it arrived at;
        None: now)."""
        if isinstance(message, Proposal):
            self._process(self.engine.on_proposal(message, received_ms))
        else:
            self._process(self.engine.on_vote(message))

    def log_receipt(self, proposal: Proposal, received_ms: int) -> None:
        """Write when a proposal arrived to the WAL, before the proposal itself, so that
        a restarted node judges its timeliness as it did."""
        record: codec.Value = {
            "received": {
                "round": proposal.round,
                "block_hash": proposal.block_hash,
                "at": received_ms,
            }
        }
        self.wal.write(codec.encode(record), sync=False)

    def fire_timeout(self, timeout: ScheduleTimeout) -> None:
        """A timeout has expired: log it, then let the engine act on it."""
        engine = self.engine
        if engine.decided is not None or (timeout.height, timeout.round) != (
            engine.height,
            engine.round,
        ):
            return
        record: codec.Value = {
            "timeout": {"height": timeout.height, "round": timeout.round, "step": int(timeout.step)}
        }
        self.wal.write(codec.encode(record), sync=False)
        self._process(engine.on_timeout(timeout.height, timeout.round, timeout.step))

    def _process(self, effects: list[Effect]) -> None:
        for effect in effects:
            if isinstance(effect, Broadcast):
                self.broadcast_consensus(effect.message, own=effect.own)
            elif isinstance(effect, ScheduleTimeout):
                self.schedule_timeout(effect)
            elif isinstance(effect, Decide):
                self._decided(effect.block, effect.commit)
            elif isinstance(effect, Untimely):
                self.untimely(effect)
            else:
                assert isinstance(effect, EvidenceFound)
                self.add_evidence(effect.evidence)

    def untimely(self, found: Untimely) -> None:
        """A proposal was prevoted nil because its block time was not timely."""
        proposal = found.proposal
        LOG.warning(
            "proposal of %s at %d/%d not timely: block time %d ms, received at %d ms by this "
            "clock, which accepts %d to %d ms; prevoting nil",
            proposal.proposer, proposal.height, proposal.round, proposal.block.header.time_ms,
            found.received_ms, found.earliest_ms, found.latest_ms,
        )  # fmt: skip

    def _log_own(self, payload: bytes) -> None:
        """Own messages reach the disk before anyone else sees them."""
        if hashlib.sha256(payload).digest() in self._replayed:
            return
        self.wal.write(payload, sync=True)
        self._hook("wal_synced")

    def _hook(self, point: str) -> None:
        if self.crash_hook is not None:
            self.crash_hook(point)

    def broadcast_consensus(self, message: Proposal | Vote, *, own: bool) -> None:
        """Send a proposal or vote to the other validators (none: one validator)."""

    def log_own_proposal(self, proposal: Proposal) -> None:
        """Log an own proposal before it leaves. With one validator nobody else needs
        it, and losing it in a crash costs one round, so it is not written."""

    def schedule_timeout(self, timeout: ScheduleTimeout) -> None:
        """Arm a timeout (here: kept until :meth:`produce_block` needs it)."""
        self._pending_timeouts.append(timeout)

    def now_ms(self) -> int:
        """The clock in Unix milliseconds (vote timestamps)."""
        return int(self.clock() * 1000)

    def sign_vote(self, vote: Vote) -> Vote | None:
        """The private validator's signature; when it already signed another vote at
        this height, round and step (its log lost it in a crash), that vote; else None."""
        try:
            signed = self.privval.sign_vote(vote)
        except DoubleSignError as err:
            earlier = self.privval.signed_vote_at(vote.height, vote.round, vote.step)
            if earlier is None or earlier.type != vote.type:
                LOG.warning("not signing %s at %d/%d: %s", vote.type, vote.height, vote.round,
                            err)  # fmt: skip
                return None
            LOG.warning("re-sending the %s already signed at %d/%d", vote.type, vote.height,
                        vote.round)  # fmt: skip
            signed = earlier
        else:
            self._hook("signed")
        # On disk before the engine signs anything else and before anyone sees it.
        self._log_own(encode_message(signed))
        return signed

    def sign_proposal(self, proposal: Proposal) -> Proposal | None:
        """The private validator's signature, or None when it refuses."""
        try:
            signed = self.privval.sign_proposal(proposal)
        except DoubleSignError as err:
            LOG.warning("not proposing at %d/%d: %s", proposal.height, proposal.round, err)
            return None
        self._hook("signed")
        self.log_own_proposal(signed)
        return signed

    def add_evidence(self, evidence: DuplicateVoteEvidence) -> None:
        """Keep evidence of an equivocation until a block carries it."""
        if not self.app.has_evidence(evidence):
            if evidence.key not in self.evidence_pool:
                LOG.warning("validator %s signed conflicting votes", evidence.validator)
            self.evidence_pool.setdefault(evidence.key, evidence)

    @property
    def previous_time_ms(self) -> int:
        """The time after which the next block must be stamped, in Unix milliseconds: the
        last block's, or just before the genesis time."""
        if self.last_header is not None:
            return self.last_header.time_ms
        return self.genesis.genesis_time * 1000 - 1

    def proposal_time_ms(self, height: int, round_: int) -> int | None:
        """The time to stamp a new block with: this clock, but after the previous block.

        One validator stamps ``previous + 1`` when its clock is not past the previous
        block (a clock set back, or a clock standing still in a test): nobody else
        judges its clock, and its chain must not stop. A networked node waits instead
        (:class:`~ledger_core.node.networked.ConsensusNode`).
        """
        return max(self.now_ms(), self.previous_time_ms + 1)

    def propose_block(self, height: int, round_: int) -> Block | None:
        """A block of the mempool's transactions and pending evidence, stamped with this
        node's clock and executed (None: not now)."""
        if height != self.height + 1:
            return None
        time_ms = self.proposal_time_ms(height, round_)
        if time_ms is None:
            return None
        if self._early:
            self.app.reset_check()
            self._recheck()
        chosen = list(self.mempool.values())[: self.genesis.params.max_block_txs]
        evidence = tuple(e for e in self.evidence_pool.values() if e.height < height)[
            :MAX_EVIDENCE_PER_BLOCK
        ]
        context = BlockContext(height, time_ms // 1000)
        try:
            execution = self.app.execute(context, chosen, evidence)
        except InvalidBlock as err:
            LOG.warning("dropping pending evidence that no longer applies: %s", err)
            self.evidence_pool.clear()
            evidence = ()
            execution = self.app.execute(context, chosen, evidence)
        block = make_block(
            self.key,
            chain_id=self.genesis.chain_id,
            height=height,
            time_ms=time_ms,
            previous_hash=self.last_hash,
            txs=[tx.wire() for tx in chosen],
            app_hash=execution.app_hash,
            validators_hash=self.app.validator_set(height).hash,
            next_validators_hash=self.app.validator_set(height + 1).hash,
            last_commit=self.last_commit,
            evidence=evidence,
        )
        self._executions[block.header.hash] = execution
        return block

    def validate_block(self, block: Block) -> bool:
        """Whether ``block`` is a valid next block (executing it, and keeping the result)."""
        try:
            self.execute_block(block)
        except BlockRejected as err:
            LOG.info("block %s... at height %d rejected: %s", block.header.hash[:12],
                     block.header.height, err)  # fmt: skip
            return False
        return True

    def execute_block(self, block: Block) -> Execution:
        """Check ``block`` as the next block and execute it (cached); BlockRejected."""
        header = block.header
        cached = self._executions.get(header.hash)
        if cached is not None:
            return cached
        height = self.height + 1
        if header.chain_id != self.genesis.chain_id:
            raise BlockRejected(f"chain id {header.chain_id!r}")
        if header.height != height:
            raise BlockRejected(f"height {header.height}, expected {height}")
        if header.previous_hash != self.last_hash:
            raise BlockRejected("it does not follow the last block")
        validators = self.app.validator_set(height)
        if header.validators_hash != validators.hash:
            raise BlockRejected("wrong validators_hash")
        if header.next_validators_hash != self.app.validator_set(height + 1).hash:
            raise BlockRejected("wrong next_validators_hash")
        proposer = validators.get(header.proposer)
        if proposer is None or not block.verify(proposer.public_key):
            raise BlockRejected("not signed by a validator of the height, or its body differs")
        if height == 1:
            if block.last_commit is not None:
                raise BlockRejected("the first block carries no last commit")
        else:
            if block.last_commit is None or self.last_header is None:
                raise BlockRejected("the last commit is missing")
            try:
                verify_commit(
                    self.genesis.chain_id,
                    self.app.validator_set(height - 1),
                    self.last_header,
                    block.last_commit,
                )
            except LightError as err:
                raise BlockRejected(f"last commit: {err}") from None
        if header.time_ms <= self.previous_time_ms:
            if height == 1:
                raise BlockRejected(f"time {header.time_ms} ms is before the genesis time")
            raise BlockRejected(
                f"time {header.time_ms} ms is not after the last block's {self.previous_time_ms} ms"
            )
        if len(block.txs) > self.genesis.params.max_block_txs:
            raise BlockRejected(f"{len(block.txs)} transactions; the limit is "
                                f"{self.genesis.params.max_block_txs}")  # fmt: skip
        txs = []
        for index, wire in enumerate(block.txs):
            tx = self._known_tx(wire)
            if tx is None:
                try:
                    tx = decode(wire)
                except FieldError as err:
                    raise BlockRejected(f"transaction {index}: {err}") from None
            txs.append(tx)
        try:
            execution = self.app.execute(BlockContext(height, header.time), txs, block.evidence)
        except InvalidBlock as err:
            raise BlockRejected(str(err)) from None
        if execution.app_hash.hex() != header.app_hash:
            raise BlockRejected("its app hash is not the state after executing it")
        self._executions[header.hash] = execution
        return execution

    def _known_tx(self, wire: bytes) -> Tx | None:
        """The mempool's decoded transaction with exactly these wire bytes."""
        tx_id = wire_id(wire)
        candidate = self.mempool.get(tx_id) or self._early.get(tx_id)
        if candidate is not None and candidate.wire() == wire:
            return candidate
        return None

    def _decided(self, block: Block, commit: Commit) -> None:
        if block.header.height != self.height + 1:
            return  # applied already (from block sync)
        try:
            execution = self.execute_block(block)
        except BlockRejected as err:
            raise IntegrityError(
                f"block {block.header.height} was decided but does not execute here: {err}"
            ) from None
        self.commit_block(block, commit, execution)

    def commit_block(self, block: Block, commit: Commit, execution: Execution) -> None:
        """Apply a decided block's execution, store it with its commit, tell everyone."""
        self.app.apply(execution)
        ids = [tx.id for tx in execution.txs]
        stored_events = self.storage.commit_block(
            block,
            ids,
            list(execution.results),
            list(execution.block_events),
            execution.writes,
            commit=commit,
            retired=execution.retired,
        )
        self.last_hash = block.header.hash
        self.last_header = block.header
        self.last_commit = commit
        self.last_block = block
        self._executions.clear()
        for tx in execution.txs:
            if (self.mempool.pop(tx.id, None) or self._early.pop(tx.id, None)) is not None:
                self._mempool_bytes -= len(tx.wire())
                self._arrivals.pop(tx.id, None)
        for key in [k for k, e in self.evidence_pool.items() if self.app.has_evidence(e)]:
            del self.evidence_pool[key]
        self._recheck()
        self._note_throughput(len(ids))
        self._notify(block, ids, execution.results, stored_events)
        self.after_commit(block, commit)

    def after_commit(self, block: Block, commit: Commit) -> None:
        """Called once a block is stored (a networked node announces it)."""

    def _recheck(self) -> None:
        """Check the mempool again on a fresh mempool state (early transactions merged in
        order first); drop what no longer applies."""
        self._merge_early()
        for tx_id, tx in list(self.mempool.items()):
            result = self.app.check_tx(tx)
            if not result.ok:
                del self.mempool[tx_id]
                self._arrivals.pop(tx_id, None)
                self._mempool_bytes -= len(tx.wire())
                for future in self._waiters.pop(tx_id, []):
                    if not future.done():
                        future.set_result(Submitted(tx_id, result.code, result.message))

    def _notify(
        self,
        block: Block,
        ids: list[str],
        results: Sequence[TxResult],
        stored_events: list[bytes],
    ) -> None:
        """Answer those waiting for the block's transactions, then the event subscribers.

        A transaction the block applied is answered from the block, as :meth:`Storage.tx`
        would read it back. One it did not apply is answered from the storage, which
        gives an applied copy where there is one (an earlier block's, or a later one in
        this block) and this block's refusal otherwise."""
        height = block.header.height
        for index, tx_id in enumerate(ids):
            waiters = self._waiters.pop(tx_id, [])
            if not waiters:
                continue
            result = results[index]
            stored: StoredTx | None
            if result.ok:
                stored = StoredTx.stored(tx_id, height, index, block.txs[index], result.code,
                                         result.message, stored_events[index])  # fmt: skip
            else:
                stored = self.storage.tx(tx_id)
            for future in waiters:
                if not future.done() and stored is not None:
                    future.set_result(stored)
        if not self._subscribers:
            self._last_event_seq = self.storage.last_event_seq()
            return
        for seq, height, event in self.storage.events(self._last_event_seq, limit=1_000_000):
            self._last_event_seq = seq
            for queue in list(self._subscribers):
                with contextlib.suppress(asyncio.QueueFull):
                    queue.put_nowait((seq, height, event))

    def subscribe(self, maxsize: int = 10_000) -> asyncio.Queue[tuple[int, int, codec.Value]]:
        """A queue of ``(seq, height, event)`` for every event from now on."""
        queue: asyncio.Queue[tuple[int, int, codec.Value]] = asyncio.Queue(maxsize)
        self._subscribers.add(queue)
        return queue

    def unsubscribe(self, queue: asyncio.Queue[tuple[int, int, codec.Value]]) -> None:
        """Stop delivering to ``queue``."""
        self._subscribers.discard(queue)

    async def run(
        self, stop: asyncio.Event, block_interval: float = 0.2, empty_block_every: float = 60.0
    ) -> None:
        """Produce blocks until ``stop`` is set: soon after transactions arrive, and
        an empty block every ``empty_block_every`` seconds so that time advances.

        Pacing is in real seconds (``time.monotonic``); block times come from
        the node's clock, which a demo may run faster than real time.
        """
        last = time.monotonic()
        stopping = asyncio.ensure_future(stop.wait())
        try:
            while not stop.is_set():
                timeout = empty_block_every if not self.mempool else block_interval
                timeout = max(0.0, timeout - (time.monotonic() - last))
                woken = asyncio.ensure_future(self._wake.wait())
                await asyncio.wait(
                    {stopping, woken}, timeout=timeout, return_when=asyncio.FIRST_COMPLETED
                )
                woken.cancel()
                self._wake.clear()
                if stop.is_set():
                    break
                if self.mempool:
                    await asyncio.sleep(max(0.0, block_interval - (time.monotonic() - last)))
                    self.produce_block()
                    last = time.monotonic()
                elif time.monotonic() - last >= empty_block_every:
                    self.produce_block()
                    last = time.monotonic()
        finally:
            stopping.cancel()
            await asyncio.gather(stopping, return_exceptions=True)
