"""One validator: the round completes locally, and survives a crash at any signature."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path

import pytest

from ledger_core.consensus.light import verify_commit
from ledger_core.node.host import Node
from ledger_core.node.storage import open_storage
from ledger_core.state.machine import StateMachine
from ledger_core.types import codec
from ledger_core.types.tx import Tx, TxType
from tests.state.chain import START, Chain, key


class Crash(BaseException):
    """Raised by the crash hook."""


class Clock:
    def __init__(self) -> None:
        self.now = float(START)

    def __call__(self) -> float:
        self.now += 0.25
        return self.now


@pytest.fixture
def chain() -> Chain:
    return Chain()


OPEN: list[Node] = []


@pytest.fixture(autouse=True)
def close_nodes() -> Iterator[None]:
    yield
    while OPEN:
        OPEN.pop().close()


def start(home: Path, chain: Chain, clock: Clock, hook: object = None) -> Node:
    node = Node(
        chain.genesis,
        key("validator"),
        open_storage(home, chain.genesis),
        clock=clock,
        crash_hook=hook,  # type: ignore[arg-type],
        app_factory=StateMachine.restore,
    )
    OPEN.append(node)
    return node


def registration(chain: Chain, name: str) -> Tx:
    return chain.tx(chain.iso, TxType.REGISTER, public_key=key(name).public_key.hex(),
                    role="consumer")  # fmt: skip


def test_every_block_carries_the_commit_of_the_one_before(tmp_path: Path, chain: Chain) -> None:
    node = start(tmp_path, chain, Clock())
    blocks = []
    for i in range(3):
        assert node.submit(registration(chain, f"p{i}").wire()).accepted
        blocks.append(node.produce_block())
    validators = node.app.validator_set()
    for earlier, later in itertools.pairwise(blocks):
        assert later.last_commit is not None
        assert later.last_commit.block_hash == earlier.header.hash
        verify_commit(chain.genesis.chain_id, validators, earlier.header, later.last_commit)
        # Stamped by the proposer as it assembled the block, before anyone voted on it.
        assert earlier.header.time_ms < later.header.time_ms
        assert earlier.header.time_ms <= later.last_commit.signatures[0].timestamp
    assert blocks[0].last_commit is None
    assert blocks[0].header.time_ms == START * 1000 + 250, "the clock's first reading"
    stored = node.storage.commit(3)
    assert stored is not None
    verify_commit(chain.genesis.chain_id, validators, blocks[2].header, stored)
    assert node.storage.block(2) == blocks[1]


@pytest.mark.parametrize(("point", "nth"), [("signed", 1), ("signed", 2), ("signed", 3),
                                            ("wal_synced", 1), ("wal_synced", 2)])  # fmt: skip
def test_a_crash_at_any_signature_resumes_without_signing_twice(
    tmp_path: Path, chain: Chain, point: str, nth: int
) -> None:
    signed: list[tuple[int, int, int, bytes]] = []
    holder: list[Node] = []
    calls = {"n": 0}

    def hook(where: str) -> None:
        if where == "signed":
            last = holder[-1].privval.last
            sign_bytes = codec.decode(last.sign_bytes, len(last.sign_bytes))
            assert isinstance(sign_bytes, dict)
            sign_bytes.pop("timestamp")
            signed.append((last.height, last.round, last.step, codec.encode(sign_bytes)))
        if where == point:
            calls["n"] += 1
            if calls["n"] == nth:
                raise Crash(where)

    clock = Clock()
    node = start(tmp_path, chain, clock, hook)
    holder.append(node)
    tx = registration(chain, "alice")
    assert node.submit(tx.wire()).accepted
    with pytest.raises(Crash):
        node.produce_block()
    node.close()
    OPEN.remove(node)
    again = start(tmp_path, chain, clock, hook)
    holder.append(again)
    assert again.height == 0
    assert again.submit(tx.wire()).accepted, "the mempool is not durable; the client resends"
    block = again.produce_block()
    assert block.header.height == 1
    second = registration(chain, "bob")
    assert again.submit(second.wire()).accepted
    assert again.produce_block().header.height == 2
    assert again.storage.tx(second.id) is not None
    by_position: dict[tuple[int, int, int], set[bytes]] = {}
    for height, round_, step, content in signed:
        by_position.setdefault((height, round_, step), set()).add(content)
    assert all(len(contents) == 1 for contents in by_position.values()), by_position


def test_produce_block_is_for_a_single_validator_chain(tmp_path: Path, chain: Chain) -> None:
    node = Node(
        chain.genesis,
        key("someone-else"),
        open_storage(tmp_path, chain.genesis),
        app_factory=StateMachine.restore,
    )
    OPEN.append(node)
    with pytest.raises(RuntimeError, match="single validator"):
        node.produce_block()
