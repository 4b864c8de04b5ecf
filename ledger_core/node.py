"""A node with one validator: mempool, block production, storage, waiters and events.

The node owns the :class:`Application` and the :class:`Storage`. Transactions
enter through :meth:`Node.submit` (decoded, de-duplicated, checked against
the mempool state); :meth:`Node.produce_block` executes the mempool in order,
signs the block and writes it, its results, events and state changes in one
SQLite transaction, and only then tells waiters and subscribers. A client told
that its transaction committed can count on it after any crash.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Final

from ledger_core import codec
from ledger_core.app import Application, BlockContext, TxResult
from ledger_core.block import GENESIS_PREVIOUS, Block, make_block
from ledger_core.crypto import SigningKey
from ledger_core.genesis import Genesis
from ledger_core.storage import Storage, StoredTx
from ledger_core.tx import Tx, TxError, decode

MAX_MEMPOOL_TXS: Final = 20_000
MAX_MEMPOOL_BYTES: Final = 64 * 1024 * 1024


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


class Node:
    """One validator's node."""

    def __init__(
        self,
        genesis: Genesis,
        validator_key: SigningKey,
        storage: Storage,
        clock: Callable[[], float] = time.time,
        max_mempool_txs: int = MAX_MEMPOOL_TXS,
    ) -> None:
        self.genesis = genesis
        self.key = validator_key
        self.storage = storage
        self.clock = clock
        self.max_mempool_txs = max_mempool_txs
        height = storage.height
        header = storage.header(height) if height else None
        self.app = Application(
            genesis,
            state=storage.load_state(),
            height=height,
            last_block_time=header.time if header else genesis.genesis_time,
        )
        if header is None:
            storage.write_initial_state(self.app.state)
        elif self.app.app_hash.hex() != header.app_hash:
            raise IntegrityError(
                f"state at height {height} hashes to {self.app.app_hash.hex()[:16]}..., "
                f"but block {height} says {header.app_hash[:16]}..."
            )
        self.last_hash = header.hash if header else GENESIS_PREVIOUS
        self.mempool: dict[str, Tx] = {}
        self._mempool_bytes = 0
        self._waiters: dict[str, list[asyncio.Future[StoredTx | Submitted]]] = {}
        self._subscribers: set[asyncio.Queue[tuple[int, int, codec.Value]]] = set()
        self._wake = asyncio.Event()
        self._last_event_seq = storage.first_event_at(height + 1)

    def close(self) -> None:
        """Close the database."""
        self.storage.close()

    @classmethod
    def genesis_hash(cls, genesis: Genesis) -> str:
        """What the storage checks so that a database never mixes chains."""
        return hashlib.sha256(genesis.encode()).hexdigest()

    @property
    def height(self) -> int:
        """The last committed height."""
        return self.app.height

    # -- transactions -------------------------------------------------------------

    def submit(self, wire: bytes) -> Submitted:
        """Decode, check and queue a transaction."""
        try:
            tx = decode(wire)
        except TxError as err:
            return Submitted(None, "malformed", err.message, err.field)
        if tx.id in self.mempool:
            return Submitted(tx.id, "duplicate", "the transaction is already in the mempool")
        if len(self.mempool) >= self.max_mempool_txs or (
            self._mempool_bytes + len(wire) > MAX_MEMPOOL_BYTES
        ):
            return Submitted(tx.id, "mempool_full", "the node is busy; try again shortly")
        result = self.app.check_tx(tx)
        if not result.ok:
            # A committed transaction's nonce is used up; say so plainly.
            if result.code == "stale_nonce" and self.storage.tx(tx.id) is not None:
                return Submitted(tx.id, "already_committed", "the transaction is already committed")
            return Submitted(tx.id, result.code, result.message)
        self.mempool[tx.id] = tx
        self._mempool_bytes += len(wire)
        self._wake.set()
        return Submitted(tx.id, "accepted")

    def wait_for(self, tx_id: str) -> asyncio.Future[StoredTx | Submitted]:
        """A future for a mempool transaction: its stored result, or why it was dropped."""
        future: asyncio.Future[StoredTx | Submitted] = asyncio.get_running_loop().create_future()
        stored = self.storage.tx(tx_id)
        if stored is not None:
            future.set_result(stored)
        elif tx_id not in self.mempool:
            future.set_result(Submitted(tx_id, "unknown", "not in the mempool"))
        else:
            self._waiters.setdefault(tx_id, []).append(future)
        return future

    # -- blocks -----------------------------------------------------------------

    def produce_block(self) -> Block:
        """Execute the mempool (up to the block limit), commit and store the block."""
        limit = self.genesis.params.max_block_txs
        chosen = list(self.mempool.values())[:limit]
        height = self.app.height + 1
        block_time = max(self.app.last_block_time, int(self.clock()))
        self.app.begin_block(BlockContext(height, block_time))
        results: list[TxResult] = [self.app.deliver_tx(tx) for tx in chosen]
        block_events = list(self.app.end_block())
        app_hash, writes = self.app.commit()
        wires = [tx.wire() for tx in chosen]
        block = make_block(
            self.key,
            chain_id=self.genesis.chain_id,
            height=height,
            time=block_time,
            previous_hash=self.last_hash,
            txs=wires,
            app_hash=app_hash,
        )
        ids = [tx.id for tx in chosen]
        self.storage.commit_block(block, ids, results, list(block_events), writes)
        self.last_hash = block.header.hash
        for tx, wire in zip(chosen, wires, strict=True):
            del self.mempool[tx.id]
            self._mempool_bytes -= len(wire)
        self._recheck()
        self._notify(ids)
        return block

    def _recheck(self) -> None:
        """Drop mempool transactions that the new state makes invalid."""
        for tx_id, tx in list(self.mempool.items()):
            result = self.app.check_tx(tx)
            if not result.ok:
                del self.mempool[tx_id]
                self._mempool_bytes -= len(tx.wire())
                for future in self._waiters.pop(tx_id, []):
                    if not future.done():
                        future.set_result(Submitted(tx_id, result.code, result.message))

    def _notify(self, ids: list[str]) -> None:
        for tx_id in ids:
            waiters = self._waiters.pop(tx_id, [])
            if waiters:
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


def open_storage(home: Path, genesis: Genesis) -> Storage:
    """The node's database in ``home``."""
    return Storage(home / "ledger.db", Node.genesis_hash(genesis))
