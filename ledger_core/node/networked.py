"""A node in a network: a validator (or follower) with timers, a transport and block sync.

:class:`ConsensusNode` is a :class:`~ledger_core.node.Node` (mempool, storage,
the engine's host, WAL, private validator) connected to peers through three
channels:

* ``consensus`` — proposals and votes. A message for the height the engine is
  at is written to the WAL, then handed to the engine; one for the next height
  waits in a bounded buffer until the node starts that height; one for a later
  height means this node is behind (it asks for the peer's status and syncs);
  one for a height already decided here is answered with that block and its
  commit, so a peer that missed precommits can move on.
* ``tx`` — transactions, gossiped when a node accepts them into its mempool:
  one or more wire transactions separated by newlines (a transaction's wire
  form is canonical JSON and holds none), at most ``TX_BATCH_BYTES``. What a
  node accepts during one turn of its loop (an API batch, say) leaves in as
  few messages as fit, so a thousand transactions cost a few dozen messages
  per link rather than a thousand.
* ``blocks`` — :mod:`~ledger_core.consensus.sync` messages: the proposer of a
  decided block announces it with its commit; nodes answer status, block and
  snapshot requests.

Pacing: after a decision the node waits ``timeout_commit_ms`` (precommits keep
arriving, blocks are not produced faster than that), then starts the next
height when it has transactions, when a peer's message for that height arrives,
or when ``empty_block_every_ms`` has passed since it last committed a block (by
its own clock). A transaction that reaches an idle chain therefore starts a
height at once, and its block is stamped then.

Block time: the proposer stamps a new block with its clock, and when that clock
has not passed the previous block's time it waits (re-trying every
``RETRY_PROPOSAL_MS`` while it is still that round's proposer). Each proposal is
noted with the local time it arrived at — kept with it while it waits for its
height, and written to the WAL before it — for the engine's timeliness check.

Followers (nodes whose key is not in the validator set: meters, observers)
run no engine. They apply a block only after checking its commit against the
validator set their own state says is in force at that height (more than two
thirds of its power), then execute it and check the app hash.

Catching up: a node that learns (from a message or a status answer) that a
peer is ahead asks it for up to 64 blocks at a time and applies them the same
way. If the peer is more than ``snapshot_threshold`` blocks ahead it asks for a
state snapshot instead. A peer that no longer holds the next block (it was
itself restored from a snapshot) sends the node to another peer that does; only
when none has answered within ``sync_timeout_ms`` does the node ask for a
snapshot, so a node set to replay every block does so whenever some peer can
serve them. The node trusts a snapshot's header by light verification from
the last header it trusts (skipping verification: more than 1/3 of its
trusted validators' power and more than 2/3 of the header's own set signed),
checks the state against the header's app hash, installs it and syncs the
remaining blocks.

The node's logic is synchronous; it runs on a
:class:`~ledger_core.consensus.runtime.Scheduler` (an asyncio loop, or
simulated time in tests) and sends through an
:class:`~ledger_core.consensus.runtime.Outbound`. A transport delivers with
:meth:`ConsensusNode.deliver`.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Final, Protocol

from ledger_core.consensus.engine import ScheduleTimeout, Timeouts
from ledger_core.consensus.light import LightClient, LightError, verify_commit
from ledger_core.consensus.runtime import (
    AsyncNetwork,
    Cancellable,
    Outbound,
    QueuedOutbound,
    Scheduler,
)
from ledger_core.consensus.sync import (
    MAX_SYNC_BLOCKS,
    Blocks,
    Committed,
    GetBlocks,
    GetSnapshot,
    GetStatus,
    Snapshot,
    Status,
    SyncMessage,
    committed_height,
    decode_sync,
    encode_sync,
)
from ledger_core.node.host import MAX_MEMPOOL_TXS, BlockRejected, Node, Submitted
from ledger_core.node.storage import Storage
from ledger_core.types import codec
from ledger_core.types.abci import ApplicationFactory
from ledger_core.types.block import Block
from ledger_core.types.crypto import SigningKey
from ledger_core.types.genesis import Genesis
from ledger_core.types.proposal import Proposal, decode_message, encode_message
from ledger_core.types.vote import Commit, Vote

LOG = logging.getLogger(__name__)
CONSENSUS: Final = "consensus"
TX: Final = "tx"
BLOCKS: Final = "blocks"
CHANNELS: Final = (CONSENSUS, TX, BLOCKS)
TX_BATCH_BYTES: Final = 16 * 1024  # the P2P network's default limit on the tx channel
SYNC_BYTES: Final = 8 * 1024 * 1024  # blocks in one sync answer, roughly
RETRY_PROPOSAL_MS: Final = 250  # a proposer whose clock is behind looks again this often
EMPTY_RECHECK: Final = 0.25  # seconds of the scheduler between looks at the empty-block timer


@dataclass(frozen=True, slots=True)
class NodeConfig:
    """Pacing and catch-up settings of a networked node (milliseconds)."""

    timeout_commit_ms: int = 1000
    empty_block_every_ms: int = 60_000
    rebroadcast_ms: int = 2000
    status_every_ms: int = 5000
    sync_timeout_ms: int = 5000
    snapshot_threshold: int = 1000
    max_buffered: int = 10_000


def _digest(payload: bytes) -> bytes:
    return hashlib.sha256(payload).digest()


class ConsensusNode(Node):
    """A validator or follower connected to peers."""

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
        config: NodeConfig | None = None,
        app_factory: ApplicationFactory,
    ) -> None:
        super().__init__(
            genesis,
            validator_key,
            storage,
            clock,
            max_mempool_txs,
            home=home,
            timeouts=timeouts,
            crash_hook=crash_hook,
            app_factory=app_factory,
        )
        self.config = config or NodeConfig()
        self.transport: Outbound | None = None
        self.scheduler: Scheduler | None = None
        self.running = False
        self._timers: set[Cancellable] = set()
        self._buffer: list[tuple[bytes, Proposal | Vote, int]] = []
        self._seen: set[bytes] = set()
        self._kicked = False
        self._ready_at = 0.0
        self._sync: tuple[str, float] | None = None
        self._peer_heights: dict[str, int] = {}
        # The lowest height whose block each peer still holds, and since when this node has
        # wanted blocks that the peer asked first no longer has (see _on_status).
        self._peer_bases: dict[str, int] = {}
        self._blocks_wanted_since: float | None = None
        self._helped: dict[tuple[str, int], float] = {}
        self._mark: tuple[int, int, int] | None = None
        self._last_progress = clock()
        # Until a peer's status shows nobody is ahead (or a sync timeout passes) a
        # starting node syncs and does not vote: it may be far behind.
        self._catching_up_until = 0.0
        self._own_proposal: tuple[Proposal, bytes] | None = None
        self._tx_out: list[bytes] = []
        self._tx_out_bytes = 0
        self._tx_flush: Cancellable | None = None
        self._proposal_wait: tuple[int, int] | None = None

    # -- lifecycle ---------------------------------------------------------------------

    def attach(self, transport: Outbound, scheduler: Scheduler) -> None:
        """Connect to a transport and a scheduler (before :meth:`begin`)."""
        self.transport = transport
        self.scheduler = scheduler

    def begin(self) -> None:
        """Start taking part: ask peers how far they are, then pace heights."""
        assert self.transport is not None, "attach a transport first"
        self.running = True
        self._last_progress = self.clock()
        self._catching_up_until = self._last_progress + self.config.sync_timeout_ms / 1000
        self._send_all(BLOCKS, encode_sync(GetStatus()))
        self._every(self.config.rebroadcast_ms, self._rebroadcast)
        self._every(self.config.status_every_ms, self._poll_status)
        self._kick()

    def halt(self) -> None:
        """Stop: cancel every timer; later deliveries are ignored."""
        self.running = False
        if self._tx_flush is not None:
            self._tx_flush.cancel()
            self._tx_flush = None
        for timer in list(self._timers):
            timer.cancel()
        self._timers.clear()

    async def run(
        self,
        stop: asyncio.Event,
        block_interval: float | None = None,
        empty_block_every: float | None = None,
    ) -> None:
        """Take part until ``stop`` is set, on the running asyncio loop (``block_interval``
        and ``empty_block_every``, in seconds, override the pacing settings)."""
        if self.transport is None:
            raise RuntimeError("attach a transport before run()")
        if block_interval is not None:
            self.config = replace(self.config, timeout_commit_ms=int(block_interval * 1000))
        if empty_block_every is not None:
            self.config = replace(self.config, empty_block_every_ms=int(empty_block_every * 1000))
        if self.scheduler is None:
            self.scheduler = asyncio.get_running_loop()
        self.begin()
        try:
            await stop.wait()
        finally:
            self.halt()

    def _later(self, delay: float, callback: Callable[..., object], *args: object) -> None:
        assert self.scheduler is not None
        holder: list[Cancellable] = []

        def fire() -> None:
            self._timers.discard(holder[0])
            if self.running:
                callback(*args)

        handle = self.scheduler.call_later(max(0.0, delay), fire)
        holder.append(handle)
        self._timers.add(handle)

    def _every(self, period_ms: int, callback: Callable[[], None]) -> None:
        def tick() -> None:
            callback()
            self._later(period_ms / 1000, tick)

        self._later(period_ms / 1000, tick)

    def _send_all(self, channel: str, payload: bytes) -> None:
        if self.transport is not None:
            self.transport.broadcast(channel, payload)

    def _send(self, peer: str, channel: str, payload: bytes) -> None:
        if self.transport is not None:
            self.transport.send(peer, channel, payload)

    # -- the engine's host, networked ------------------------------------------------------

    def schedule_timeout(self, timeout: ScheduleTimeout) -> None:
        self._later(timeout.delay_ms / 1000, self.fire_timeout, timeout)

    def proposal_time_ms(self, height: int, round_: int) -> int | None:
        """This clock once it has passed the previous block's time; until then None, and
        a look again shortly (so time never goes backwards and a slow clock does not
        stamp a time it has not reached)."""
        now = self.now_ms()
        previous = self.previous_time_ms
        if now > previous:
            return now
        if self._proposal_wait != (height, round_):
            self._proposal_wait = (height, round_)
            LOG.info("proposing at %d/%d once this clock passes the last block's time, "
                     "%d ms from now", height, round_, previous + 1 - now)  # fmt: skip
        wait = min(previous + 1 - now, RETRY_PROPOSAL_MS)
        self._later(wait / 1000, self._retry_proposal, height, round_)
        return None

    def _retry_proposal(self, height: int, round_: int) -> None:
        if self.engine_running():
            self._process(self.engine.retry_proposal(height, round_))

    def log_own_proposal(self, proposal: Proposal) -> None:
        payload = encode_message(proposal)
        self._log_own(payload)
        self._own_proposal = (proposal, payload)

    def broadcast_consensus(self, message: Proposal | Vote, *, own: bool) -> None:
        known = self._own_proposal
        payload = known[1] if known and known[0] is message else encode_message(message)
        self._seen.add(_digest(payload))
        self._send_all(CONSENSUS, payload)

    def submit(self, wire: bytes) -> Submitted:
        """Accept a transaction into the mempool and gossip it."""
        result = super().submit(wire)
        if result.accepted:
            self._gossip_tx(wire)
            self._kick()
        return result

    def _gossip_tx(self, wire: bytes) -> None:
        """Queue an accepted transaction for the next ``tx`` message."""
        if self.transport is None:
            return
        if self._tx_out_bytes + len(wire) + 1 > TX_BATCH_BYTES:
            self._flush_txs()
        self._tx_out.append(wire)
        self._tx_out_bytes += len(wire) + 1
        if self.scheduler is None:
            self._flush_txs()
        elif self._tx_flush is None:
            self._tx_flush = self.scheduler.call_later(0, self._flush_txs)

    def _flush_txs(self) -> None:
        if self._tx_flush is not None:
            self._tx_flush.cancel()
            self._tx_flush = None
        if self._tx_out:
            self._send_all(TX, b"\n".join(self._tx_out))
            self._tx_out = []
            self._tx_out_bytes = 0

    @property
    def catching_up(self) -> bool:
        """Whether the node is still learning how far its peers are, or syncing."""
        now = self.clock()
        return self.running and (
            self._catching_up_until > now or (self._sync is not None and self._sync[1] > now)
        )

    def peer_connected(self, peer_id: str) -> None:
        """A peer connected (the transport calls this): ask how far it is."""
        if self.running:
            self._send(peer_id, BLOCKS, encode_sync(GetStatus()))

    def after_commit(self, block: Block, commit: Commit) -> None:
        self._blocks_wanted_since = None
        self._buffer.clear()
        self._seen = set()
        self._mark = None
        if block.header.proposer == self.key.address:
            self._send_all(BLOCKS, encode_sync(Committed(block, commit)))
        now = self.clock()
        self._last_progress = now
        self._ready_at = now + self.config.timeout_commit_ms / 1000
        self._kick()

    # -- pacing ---------------------------------------------------------------------------

    def engine_running(self) -> bool:
        """Whether the engine is working on the next height."""
        return self.engine.height == self.height + 1 and self.engine.decided is None

    def _kick(self) -> None:
        if self.running and not self._kicked:
            self._kicked = True
            self._later(0, self._maybe_start)

    def _maybe_start(self) -> None:
        self._kicked = False
        if self.engine_running():
            return
        now = self.clock()
        start_at = max(self._ready_at, self._catching_up_until)
        if now < start_at:
            self._later(start_at - now, self._maybe_start)
            return
        if self.app.validator_set().get(self.key.address) is None:
            self._buffer.clear()  # a follower: blocks come with their commits
            return
        wait = self._last_progress + self.config.empty_block_every_ms / 1000 - now
        if self.mempool or self._buffer or wait <= 0:
            self._start()
        else:
            # Look again at least every EMPTY_RECHECK real seconds: ``wait`` is in the
            # node's clock, which runs faster than the scheduler's in demos and tests.
            self._later(min(wait, EMPTY_RECHECK), self._maybe_start)

    def _start(self) -> None:
        buffered, self._buffer = self._buffer, []
        self._mark = None
        self.start_height()
        self._seen = set(self._replayed)
        for payload, message, received_ms in buffered:
            if not self.engine_running():
                break
            self._feed(payload, message, received_ms)

    def _feed(self, payload: bytes, message: Proposal | Vote, received_ms: int) -> None:
        digest = _digest(payload)
        if digest in self._seen:
            return
        self._seen.add(digest)
        if isinstance(message, Proposal):
            self.log_receipt(message, received_ms)
        self.wal.write(payload, sync=False)
        self._consider(message, received_ms)

    def _rebroadcast(self) -> None:
        """When the round has not moved since the last tick, send its messages again."""
        if not self.engine_running():
            return
        engine = self.engine
        mark = (engine.height, engine.round, int(engine.step))
        if mark == self._mark:
            for message in engine.messages():
                self._send_all(CONSENSUS, encode_message(message))
        self._mark = mark

    def _poll_status(self) -> None:
        if self.clock() - self._last_progress >= self.config.status_every_ms / 1000:
            self._send_all(BLOCKS, encode_sync(GetStatus()))

    # -- inbound ----------------------------------------------------------------------------

    def deliver(self, peer_id: str, channel: str, payload: bytes) -> bool:
        """A message from ``peer_id`` on ``channel`` (the transport calls this); False when
        it is malformed, which no honest peer sends (a transport may disconnect it)."""
        if not self.running:
            return True
        try:
            if channel == CONSENSUS:
                self._on_consensus(peer_id, payload)
            elif channel == TX:
                self._on_txs(payload)
            elif channel == BLOCKS:
                claimed = committed_height(payload)
                if claimed is not None and claimed <= self.height:
                    return True  # a block this node has: not worth decoding
                self._on_blocks(peer_id, decode_sync(payload))
        except ValueError as err:  # malformed input (FieldError and MessageError included)
            LOG.info("ignoring a %s message from %s: %s", channel, peer_id, err)
            return False
        return True

    def _on_txs(self, payload: bytes) -> None:
        """Gossiped transactions (the network relays the message as it came)."""
        accepted = False
        for wire in payload.split(b"\n"):
            result = super().submit(wire)
            if result.code == "malformed":
                raise ValueError(f"a malformed transaction: {result.message}")
            accepted = accepted or result.accepted
        if accepted:
            self._kick()

    def _on_consensus(self, peer: str, payload: bytes) -> None:
        if _digest(payload) in self._seen:
            return
        received_ms = self.now_ms()
        message = decode_message(payload)
        height = message.height
        if height == self.height + 1:
            if self.engine_running():
                self._feed(payload, message, received_ms)
            elif len(self._buffer) < self.config.max_buffered:
                self._buffer.append((payload, message, received_ms))
                self._kick()
        elif height > self.height + 1:
            self._catch_up(peer)
        else:
            self._help(peer, height)

    def _catch_up(self, peer: str) -> None:
        now = self.clock()
        if self._sync is not None and self._sync[1] > now:
            return
        self._sync = (peer, now + self.config.sync_timeout_ms / 1000)
        self._send(peer, BLOCKS, encode_sync(GetStatus()))

    def _help(self, peer: str, height: int) -> None:
        """Send a peer that is still at ``height`` the block decided there."""
        now = self.clock()
        key = (peer, height)
        if self._helped.get(key, 0.0) > now:
            return
        self._helped = {k: t for k, t in self._helped.items() if t > now}
        self._helped[key] = now + self.config.rebroadcast_ms / 1000
        block, commit = self.storage.block(height), self.storage.commit(height)
        if block is not None and commit is not None:
            self._send(peer, BLOCKS, encode_sync(Blocks((Committed(block, commit),))))

    def _on_blocks(self, peer: str, message: SyncMessage) -> None:
        if isinstance(message, Committed):
            if message.block.header.height == self.height + 1:
                self.apply_synced(message.block, message.commit)
            elif message.block.header.height > self.height + 1:
                self._catch_up(peer)
        elif isinstance(message, GetStatus):
            self._send(peer, BLOCKS, encode_sync(Status(self.height, self.storage.base)))
        elif isinstance(message, Status):
            self._on_status(peer, message)
        elif isinstance(message, GetBlocks):
            self._serve_blocks(peer, message)
        elif isinstance(message, Blocks):
            self._on_synced_blocks(peer, message)
        elif isinstance(message, GetSnapshot):
            snapshot = self.snapshot()
            if snapshot is not None:
                self._send(peer, BLOCKS, encode_sync(snapshot))
        else:
            assert isinstance(message, Snapshot)
            if self.install_snapshot(message):
                self._sync = None
                self._send(peer, BLOCKS, encode_sync(GetStatus()))

    def _on_status(self, peer: str, status: Status) -> None:
        self._peer_heights[peer] = status.height
        self._peer_bases[peer] = status.base
        if status.height <= self.height:
            if self._sync is not None and self._sync[0] == peer:
                self._sync = None
            if self._catching_up_until:
                self._catching_up_until = 0.0
                self._kick()
            return
        now = self.clock()
        if self._sync is not None and self._sync[0] != peer and self._sync[1] > now:
            return
        if status.height - self.height > self.config.snapshot_threshold:
            self._ask_snapshot(peer, now)
            return
        source = peer if status.base <= self.height + 1 else self._block_source()
        if source is not None:
            self._blocks_wanted_since = None
            self._sync = (source, now + self.config.sync_timeout_ms / 1000)
            end = min(self._peer_heights[source], self.height + MAX_SYNC_BLOCKS)
            self._send(source, BLOCKS, encode_sync(GetBlocks(self.height + 1, end)))
        elif self._blocks_wanted_since is None:
            # This peer lost the blocks; the others may not have answered yet.
            self._blocks_wanted_since = now
            self._sync = None
            self._send_all(BLOCKS, encode_sync(GetStatus()))
        elif now - self._blocks_wanted_since >= self.config.sync_timeout_ms / 1000:
            self._ask_snapshot(peer, now)

    def _block_source(self) -> str | None:
        """A connected peer whose last status showed it holds this node's next block and is
        ahead (the highest). Its status is used up: a peer that then fails to answer is asked
        again only after its next status."""
        assert self.transport is not None
        wanted = self.height + 1
        connected = set(self.transport.peers())
        holders = [
            (height, peer)
            for peer, height in self._peer_heights.items()
            if peer in connected
            and height >= wanted
            and self._peer_bases.get(peer, wanted + 1) <= wanted
        ]
        if not holders:
            return None
        source = max(holders)[1]
        del self._peer_bases[source]
        return source

    def _ask_snapshot(self, peer: str, now: float) -> None:
        self._blocks_wanted_since = None
        self._sync = (peer, now + self.config.sync_timeout_ms / 1000)
        self._send(peer, BLOCKS, encode_sync(GetSnapshot()))

    def _serve_blocks(self, peer: str, request: GetBlocks) -> None:
        """Answer with the blocks asked for, as many as fit in ``SYNC_BYTES`` (one at least);
        the peer asks for the rest."""
        items: list[Committed] = []
        size = 0
        for height in range(request.start, min(request.end, self.height) + 1):
            block, commit = self.storage.block(height), self.storage.commit(height)
            if block is None or commit is None:
                break
            item = Committed(block, commit)
            size += len(encode_sync(item))
            if items and size > SYNC_BYTES:
                break
            items.append(item)
        if items:
            self._send(peer, BLOCKS, encode_sync(Blocks(tuple(items))))

    def _on_synced_blocks(self, peer: str, message: Blocks) -> None:
        for item in message.items:
            if item.block.header.height <= self.height:
                continue
            if not self.apply_synced(item.block, item.commit):
                break
        if self._peer_heights.get(peer, 0) > self.height:
            now = self.clock()
            self._sync = (peer, now + self.config.sync_timeout_ms / 1000)
            end = min(self._peer_heights[peer], self.height + MAX_SYNC_BLOCKS)
            self._send(peer, BLOCKS, encode_sync(GetBlocks(self.height + 1, end)))
        elif self._sync is not None and self._sync[0] == peer:
            self._sync = None

    # -- applying blocks that others decided -----------------------------------------------

    def apply_synced(self, block: Block, commit: Commit) -> bool:
        """Apply the next block given with its commit, after light verification of the
        commit against this height's validator set; whether it was applied."""
        height = self.height + 1
        if block.header.height != height:
            return False
        try:
            verify_commit(self.genesis.chain_id, self.app.validator_set(height), block.header,
                          commit)  # fmt: skip
        except LightError as err:
            LOG.warning("block %d from sync refused: %s", height, err)
            return False
        try:
            execution = self.execute_block(block)
        except BlockRejected as err:
            LOG.error("block %d has a valid commit but does not execute here: %s", height, err)  # noqa: TRY400
            return False
        self.commit_block(block, commit, execution)
        return True

    def snapshot(self) -> Snapshot | None:
        """The state at this node's height with its proof (None before the first block)."""
        height = self.height
        header, signature = self.storage.header(height), self.storage.signature(height)
        commit = self.storage.commit(height)
        if header is None or signature is None or commit is None:
            return None
        return Snapshot(
            header,
            signature,
            commit,
            self.app.validator_set(height),
            self.app.validator_set(height + 1),
            tuple(self.app.items()),
        )

    def install_snapshot(self, snapshot: Snapshot) -> bool:
        """Replace the state by a verified snapshot ahead of this node; whether it did."""
        header = snapshot.header
        if header.height <= self.height:
            return False
        client = LightClient(
            self.genesis.chain_id, self.app.validator_set(self.height + 1), self.last_header
        )
        try:
            client.update(header, snapshot.commit, snapshot.validators, snapshot.next_validators)
        except LightError as err:
            LOG.warning("snapshot at %d refused: %s", header.height, err)
            return False
        state = dict(snapshot.state)
        app = self.app_factory(self.genesis, state, header.height, header.time)
        if app.app_hash.hex() != header.app_hash:
            LOG.warning("snapshot at %d refused: its state does not hash to the app hash",
                        header.height)  # fmt: skip
            return False
        self.storage.install_snapshot(
            header,
            snapshot.signature,
            snapshot.commit,
            {key: codec.encode(value) for key, value in snapshot.state},
        )
        self.app = app
        self.last_hash = header.hash
        self.last_header = header
        self.last_commit = snapshot.commit
        self.last_block = None
        self._executions.clear()
        self._last_event_seq = self.storage.last_event_seq()
        self._recheck()
        LOG.info("restored the state at height %d from a snapshot", header.height)
        self.after_commit_snapshot()
        return True

    def after_commit_snapshot(self) -> None:
        """After a snapshot: forget the old height's messages and pace the next."""
        self._buffer.clear()
        self._seen = set()
        self._mark = None
        self._last_progress = self.clock()
        self._kick()


class GossipNetwork(AsyncNetwork, Protocol):
    """An :class:`AsyncNetwork` that hands each channel's messages to one handler
    (``ledger_core.p2p.Network.on``)."""

    def on(self, channel: str, handler: Callable[[str, bytes], Awaitable[None]]) -> None: ...


def connect(
    node: ConsensusNode,
    network: GossipNetwork,
    misbehaviour: Callable[[str], Exception] | None = None,
) -> QueuedOutbound:
    """Wire ``node`` to ``network`` on the running loop: its three channels' handlers and a
    queued outbound. ``misbehaviour(reason)`` builds the exception a handler raises for a
    malformed message (the network may then disconnect the peer and not relay it)."""

    def handler(channel: str) -> Callable[[str, bytes], Awaitable[None]]:
        async def handle(peer_id: str, payload: bytes) -> None:
            if not node.deliver(peer_id, channel, payload) and misbehaviour is not None:
                raise misbehaviour(f"malformed {channel} message")

        return handle

    outbound = QueuedOutbound(network)
    for channel in CHANNELS:
        network.on(channel, handler(channel))
    node.attach(outbound, asyncio.get_running_loop())
    outbound.start()
    return outbound
