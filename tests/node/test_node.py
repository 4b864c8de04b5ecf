"""The single-validator node over a real SQLite file: submit, blocks, restart, events."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from ledger_core.node.host import IntegrityError, Node, Submitted
from ledger_core.node.storage import StorageError, StoredTx, open_storage
from ledger_core.state.machine import StateMachine
from ledger_core.types import codec
from ledger_core.types.genesis import Genesis, Params
from ledger_core.types.tx import TxType, sign
from tests.state.chain import CHAIN_ID, START, Chain, key


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


OPEN: list[Node] = []


def make_node(home: Path, genesis: Genesis, clock: Clock | None = None, **kw: int) -> Node:
    node = Node(
        genesis,
        key("validator"),
        open_storage(home, genesis),
        clock=clock or Clock(START),
        **kw,
        app_factory=StateMachine.restore,
    )
    OPEN.append(node)
    return node


@pytest.fixture(autouse=True)
def close_nodes() -> Iterator[None]:
    yield
    while OPEN:
        OPEN.pop().close()


@pytest.fixture
def chain() -> Chain:
    return Chain()


@pytest.fixture
def clock() -> Clock:
    return Clock(START)


def register(node: Node, chain: Chain, name: str) -> None:
    participant = key(name)
    tx = chain.tx(
        chain.iso, TxType.REGISTER, public_key=participant.public_key.hex(), role="prosumer"
    )
    assert node.submit(tx.wire()).accepted


def test_blocks_are_signed_stored_and_survive_a_restart(
    tmp_path: Path, chain: Chain, clock: Clock
) -> None:
    node = make_node(tmp_path, chain.genesis, clock)
    register(node, chain, "alice")
    register(node, chain, "bob")
    block = node.produce_block()
    assert block.header.height == 1
    assert block.header.tx_count == 2
    assert block.verify(key("validator").public_key)
    assert not block.verify(key("alice").public_key)
    clock.now += 10
    deposit = chain.tx(key("alice"), TxType.DEPOSIT_REQUEST, amount=700)
    assert node.submit(deposit.wire()).accepted
    second = node.produce_block()
    assert second.header.previous_hash == block.header.hash
    app_hash = node.app.app_hash
    node.close()

    again = make_node(tmp_path, chain.genesis, clock)
    assert again.height == 2
    assert again.app.app_hash == app_hash
    assert again.last_hash == second.header.hash
    stored = again.storage.tx(deposit.id)
    assert stored is not None
    assert (stored.height, stored.index, stored.code) == (2, 0, "ok")
    assert again.storage.block(1) == block
    assert again.storage.block(3) is None
    assert again.submit(deposit.wire()).code == "already_committed"


def test_submit_reports_malformed_duplicate_and_refused_transactions(
    tmp_path: Path, chain: Chain, clock: Clock
) -> None:
    node = make_node(tmp_path, chain.genesis, clock)
    malformed = node.submit(b'{"signature":"00","tx":{}}')
    assert (malformed.code, malformed.field) == ("malformed", "signature")
    stranger = sign(key("stranger"), CHAIN_ID, TxType.DEPOSIT_REQUEST, 1, {"amount": 5})
    refused = node.submit(stranger.wire())
    assert (refused.code, refused.accepted) == ("unknown_signer", False)
    tx = chain.tx(
        chain.iso, TxType.REGISTER, public_key=key("alice").public_key.hex(), role="consumer"
    )
    assert node.submit(tx.wire()).accepted
    assert node.submit(tx.wire()).code == "duplicate"


def test_a_signers_transactions_arriving_out_of_order_all_commit_in_nonce_order(
    tmp_path: Path, chain: Chain, clock: Clock
) -> None:
    node = make_node(tmp_path, chain.genesis, clock)
    register(node, chain, "alice")
    register(node, chain, "bob")
    node.produce_block()
    alice, bob = key("alice"), key("bob")
    first, second, third = (
        sign(alice, CHAIN_ID, TxType.DEPOSIT_REQUEST, n, {"amount": 10 * n}) for n in (1, 2, 3)
    )
    other = sign(bob, CHAIN_ID, TxType.DEPOSIT_REQUEST, 1, {"amount": 5})
    # As gossip may deliver them: the third, someone else's, the first, then the second.
    for tx in (third, other, first, second):
        assert node.submit(tx.wire()).accepted, tx.nonce
        assert node.is_pending(tx.id)
    assert node.submit(first.wire()).code == "duplicate"
    block = node.produce_block()
    assert block.header.tx_count == 4
    in_block = [tx for tx in (first, second, third) if tx.wire() in block.txs]
    assert sorted(block.txs.index(tx.wire()) for tx in in_block) == [
        block.txs.index(tx.wire()) for tx in (first, second, third)
    ], "proposed in nonce order"
    for tx in (first, second, third, other):
        stored = node.storage.tx(tx.id)
        assert stored is not None
        assert stored.code == "ok", (tx.nonce, stored.message)
    # Still refused: a nonce already committed, and a second transaction for a pending nonce.
    assert node.submit(first.wire()).code == "already_committed"
    late = sign(alice, CHAIN_ID, TxType.DEPOSIT_REQUEST, 2, {"amount": 99})
    assert node.submit(late.wire()).code == "stale_nonce"
    fifth = sign(alice, CHAIN_ID, TxType.DEPOSIT_REQUEST, 5, {"amount": 1})
    rival = sign(alice, CHAIN_ID, TxType.DEPOSIT_REQUEST, 5, {"amount": 2})
    fourth = sign(alice, CHAIN_ID, TxType.DEPOSIT_REQUEST, 4, {"amount": 1})
    assert node.submit(fifth.wire()).accepted
    assert node.submit(rival.wire()).code == "stale_nonce", "the same nonce twice"
    assert node.submit(fourth.wire()).accepted, "a gap filled"
    clock.now += 5
    block = node.produce_block()
    assert [block.txs.index(tx.wire()) for tx in (fourth, fifth)] == [0, 1]
    assert all(node.storage.tx(tx.id).code == "ok" for tx in (fourth, fifth))  # type: ignore[union-attr]


def test_the_mempool_has_a_limit(tmp_path: Path, chain: Chain, clock: Clock) -> None:
    node = make_node(tmp_path, chain.genesis, clock, max_mempool_txs=2)
    for name in ("a", "b"):
        register(node, chain, name)
    tx = chain.tx(chain.iso, TxType.REGISTER, public_key=key("c").public_key.hex(), role="consumer")
    assert node.submit(tx.wire()).code == "mempool_full"


async def test_waiters_learn_the_result_or_why_their_tx_was_dropped(
    tmp_path: Path, chain: Chain, clock: Clock
) -> None:
    genesis = replace(chain.genesis, params=replace(Params(), max_block_txs=1))
    node = make_node(tmp_path, genesis, clock)
    interval = genesis.params.interval_seconds
    current = START // interval * interval
    # A block is stamped with the proposer's clock when it is assembled: block 1 at
    # START; the clock then passes the price's interval before block 2 is made.
    node.produce_block()
    assert node.app.last_block_time == START
    tx = chain.tx(
        chain.iso, TxType.REGISTER, public_key=key("alice").public_key.hex(), role="consumer"
    )
    price = chain.tx(
        chain.iso,
        TxType.PRICE_SIGNAL,
        interval_start=current,
        import_price=20_000,
        export_price=8_000,
        network_fee=2_000,
    )
    assert node.submit(tx.wire()).accepted
    assert node.submit(price.wire()).accepted
    committed = node.wait_for(tx.id)
    dropped = node.wait_for(price.id)
    clock.now += interval
    block = node.produce_block()  # the price's interval is over before it gets a block
    assert block.header.time == START + interval
    result = await asyncio.wait_for(committed, 1)
    assert isinstance(result, StoredTx)
    assert result.code == "ok"
    # Answered from the block in memory: exactly what the storage reads back.
    assert result == node.storage.tx(tx.id)
    assert (result.height, result.index, result.wire) == (2, 0, tx.wire())
    events = result.events
    assert isinstance(events, list)
    assert len(events) == 1
    assert isinstance(events[0], dict)
    assert events[0]["type"] == "participant_registered"
    reason = await asyncio.wait_for(dropped, 1)
    assert isinstance(reason, Submitted)
    assert reason.code == "past_interval"
    assert not node.mempool
    again = await node.wait_for(tx.id)
    assert isinstance(again, StoredTx)
    unknown = await node.wait_for("00" * 32)
    assert isinstance(unknown, Submitted)
    assert unknown.code == "unknown"


async def test_subscribers_get_events_after_commit(
    tmp_path: Path, chain: Chain, clock: Clock
) -> None:
    node = make_node(tmp_path, chain.genesis, clock)
    queue = node.subscribe()
    register(node, chain, "alice")
    node.produce_block()
    seq, height, event = await asyncio.wait_for(queue.get(), 1)
    assert (seq, height) == (1, 1)
    assert isinstance(event, dict)
    assert event["type"] == "participant_registered"
    assert event["address"] == key("alice").address
    seq, height, block = await asyncio.wait_for(queue.get(), 1)
    assert isinstance(block, dict)
    assert (block["type"], block["height"], block["tx_count"]) == ("new_block", 1, 1)
    node.unsubscribe(queue)
    assert [e for _, _, e in node.storage.events(0)] == [event, block]


async def test_run_produces_blocks_and_stops(tmp_path: Path, chain: Chain) -> None:
    node = make_node(tmp_path, chain.genesis)
    node.clock = __import__("time").time
    stop = asyncio.Event()
    task = asyncio.create_task(node.run(stop, block_interval=0.01, empty_block_every=0.05))
    tx = chain.tx(
        chain.iso, TxType.REGISTER, public_key=key("alice").public_key.hex(), role="consumer"
    )
    assert node.submit(tx.wire()).accepted
    result = await asyncio.wait_for(node.wait_for(tx.id), 5)
    assert isinstance(result, StoredTx)
    height = node.height
    for _ in range(600):  # an empty block is due every 0.05 s; 30 s on a loaded machine
        if node.height > height:
            break
        await asyncio.sleep(0.05)
    assert node.height > height, "empty blocks keep time moving"
    stop.set()
    await asyncio.wait_for(task, 5)


def test_a_database_of_another_chain_is_refused(tmp_path: Path, chain: Chain) -> None:
    open_storage(tmp_path, chain.genesis).close()  # creates the database
    other = replace(chain.genesis, chain_id="another-chain")
    with pytest.raises(StorageError, match="holds another chain"):
        open_storage(tmp_path, other)


def test_tampered_state_is_detected_at_start(tmp_path: Path, chain: Chain, clock: Clock) -> None:
    node = make_node(tmp_path, chain.genesis, clock)
    register(node, chain, "alice")
    node.produce_block()
    node.close()
    OPEN.remove(node)
    with contextlib.closing(sqlite3.connect(tmp_path / "ledger.db")) as db, db:
        db.execute(
            "UPDATE state SET value = ? WHERE key = ?",
            (codec.encode(1_000_000), f"bal/{key('alice').address}"),
        )
    storage = open_storage(tmp_path, chain.genesis)
    try:
        with pytest.raises(IntegrityError, match="hashes to"):
            Node(
                chain.genesis,
                key("validator"),
                storage,
                clock=clock,
                app_factory=StateMachine.restore,
            )
    finally:
        storage.close()


def test_a_database_from_before_0_2_is_brought_up_to_date(
    tmp_path: Path, chain: Chain, clock: Clock
) -> None:
    """Before 0.2 each event row carried its transaction's id and transactions were indexed
    by their whole id; such a database opens with its transactions and events found."""
    node = make_node(tmp_path, chain.genesis, clock)
    register(node, chain, "alice")
    node.produce_block()
    tx_id = next(iter(node.storage.events(0)))[2]["tx"]
    before = [event for _seq, _height, event in node.storage.events(0)]
    OPEN.remove(node)
    node.close()
    with contextlib.closing(sqlite3.connect(tmp_path / "ledger.db")) as db:
        rows = db.execute("SELECT seq, event, tx FROM events").fetchall()
        db.execute("DROP TABLE events")
        db.execute("CREATE TABLE events (seq INTEGER PRIMARY KEY, height INTEGER, event BLOB)")
        for seq, event, tx in rows:
            value = codec.decode(event, 1 << 20)
            assert isinstance(value, dict)
            old = value if tx is None else {**value, "tx": tx}
            db.execute("INSERT INTO events VALUES (?, 1, ?)", (seq, codec.encode(old)))
        db.execute("DROP TABLE tx_ids")
        db.execute("CREATE INDEX txs_by_id ON txs (id)")
        db.commit()
    reopened = make_node(tmp_path, chain.genesis, clock)
    assert [event for _seq, _height, event in reopened.storage.events(0)] == before
    stored = reopened.storage.tx(tx_id)
    assert stored is not None
    assert stored.code == "ok"
    with contextlib.closing(sqlite3.connect(tmp_path / "ledger.db")) as db:
        names = {row[0] for row in db.execute("SELECT name FROM sqlite_master")}
    assert "txs_by_id" not in names
    register(reopened, chain, "bob")
    reopened.produce_block()
    assert len([e for _s, _h, e in reopened.storage.events(0) if "tx" in e]) == 2
