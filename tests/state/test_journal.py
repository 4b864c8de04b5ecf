"""A block executed from what the mempool's checks found is the block executed afresh.

The state machine keeps, for each transaction the mempool accepts, its result and
writes, and whether its handler read the block's time (state/machine.py). A block of
the mempool's transactions in the mempool's order takes them from there instead of
running them again. These tests execute the same blocks on two machines with the same
state, one that checked the transactions first and one that did not, and compare
everything an execution gives: results, events, writes and the app hash. The mix has
transactions that read the time (reports, orders, price signals), ones that do not
(transfers), ones the block refuses after the mempool accepted them, blocks at the
mempool's time and later, in the mempool's order and in others.
"""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger_core.state.machine import StateMachine
from ledger_core.types.abci import BlockContext, Execution
from ledger_core.types.crypto import SigningKey
from ledger_core.types.tx import Tx, TxType
from tests.state.chain import Chain
from tests.state.market_chain import INTERVAL, T, order, price, report, run_ok


def _chain() -> tuple[Chain, list[SigningKey], list[SigningKey]]:
    chain = Chain()
    people = [chain.register(f"p{i}") for i in range(4)]
    meters = [chain.bind_meter(person, f"m{i}") for i, person in enumerate(people)]
    for person in people:
        chain.fund(person, 50_000)
    run_ok(chain, T - INTERVAL, price(chain, start=T), price(chain, start=T + INTERVAL))
    return chain, people, meters


def _pool(chain: Chain, people: list[SigningKey], meters: list[SigningKey]) -> list[Tx]:
    """Transactions of every kind, in a signer's nonce order, some of which fail."""
    txs = []
    for i, person in enumerate(people):
        other = people[(i + 1) % len(people)]
        txs.append(chain.tx(person, TxType.TRANSFER, to=other.address, amount=1_000))
        txs.append(order(chain, person, "buy" if i % 2 else "sell", 500 + i, 20_000, T + INTERVAL))
        txs.append(chain.tx(person, TxType.TRANSFER, to=other.address, amount=48_000))
    for i, meter in enumerate(meters):
        txs.append(report(chain, meter, 100 + i, 40 * i, T - INTERVAL))
        txs.append(report(chain, meter, 100 + i, 40 * i, T - 2 * INTERVAL))  # late at T + 10
    return txs


def _twin(chain: Chain) -> StateMachine:
    app = chain.app
    return StateMachine.restore(app.genesis, dict(app.state), app.height, app.last_block_time)


def _same(first: Execution, second: Execution) -> None:
    assert first.results == second.results
    assert first.block_events == second.block_events
    assert dict(first.writes) == dict(second.writes)
    assert first.app_hash == second.app_hash


@pytest.mark.parametrize("advance", [0, 10, 3 * INTERVAL])
def test_the_mempools_block_is_the_fresh_block(
    advance: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    chain, people, meters = _chain()
    txs = _pool(chain, people, meters)
    fresh = _twin(chain)
    checked = [tx for tx in txs if chain.app.check_tx(tx).ok]
    assert len(checked) > len(txs) // 2
    context = BlockContext(chain.app.height + 1, chain.app.last_block_time + advance)
    ran: list[TxType] = []
    run = StateMachine._run

    def counted(self: StateMachine, overlay: object, tx: Tx, *args: object, **kw: bool) -> object:
        ran.append(tx.type)  # fmt: skip
        return run(self, overlay, tx, *args, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(StateMachine, "_run", counted)
    executed = chain.app.execute(context, checked)
    # At the mempool's time nothing runs again; later, what read the time does, and
    # transfers (which do not) do not while what they read is what they read in the
    # mempool; an order refused after its interval's gate closed leaves its signer's
    # money where it was, so that signer's next transfer runs again.
    if advance == 0:
        assert ran == []
    elif advance == 10:
        assert TxType.REPORT in ran
        assert TxType.TRANSFER not in ran
    else:
        assert TxType.ORDER in ran
        assert TxType.TRANSFER in ran
    monkeypatch.undo()
    _same(executed, fresh.execute(context, checked))


@settings(max_examples=60, deadline=None)
@given(st.randoms(), st.sampled_from([0, 1, 600, 2 * INTERVAL]), st.integers(0, 3))
def test_any_block_after_any_checks_is_the_fresh_block(
    rng: random.Random, advance: int, how: int
) -> None:
    chain, people, meters = _chain()
    txs = _pool(chain, people, meters)
    fresh = _twin(chain)
    checked = [tx for tx in txs if chain.app.check_tx(tx).ok]
    if how == 0:
        block = checked[: rng.randint(0, len(checked))]  # a prefix of the mempool
    elif how == 1:
        block = rng.sample(checked, len(checked))  # another proposer's order
    elif how == 2:
        block = rng.sample(txs, rng.randint(0, len(txs)))  # anything, refused ones too
    else:
        block = [*checked, *rng.sample(txs, 3)]  # the mempool, then repeats
    context = BlockContext(chain.app.height + 1, chain.app.last_block_time + advance)
    _same(chain.app.execute(context, block), fresh.execute(context, block))


def test_another_order_of_independent_transactions_runs_nothing_again(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    chain, people, _meters = _chain()
    first = chain.tx(people[0], TxType.TRANSFER, to=people[1].address, amount=5)
    second = chain.tx(people[2], TxType.TRANSFER, to=people[3].address, amount=7)
    fresh = _twin(chain)
    assert chain.app.check_tx(first).ok
    assert chain.app.check_tx(second).ok
    ran: list[Tx] = []
    run = StateMachine._run

    def counted(self: StateMachine, overlay: object, tx: Tx, *args: object, **kw: bool) -> object:
        ran.append(tx)
        return run(self, overlay, tx, *args, **kw)  # type: ignore[arg-type]

    monkeypatch.setattr(StateMachine, "_run", counted)
    context = BlockContext(chain.app.height + 1, chain.app.last_block_time)
    executed = chain.app.execute(context, [second, first])  # another proposer's order
    assert ran == []
    monkeypatch.undo()
    _same(executed, fresh.execute(context, [second, first]))


def test_the_journal_follows_the_committed_state() -> None:
    chain, people, _meters = _chain()
    first = chain.tx(people[0], TxType.TRANSFER, to=people[1].address, amount=40_000)
    second = chain.tx(people[0], TxType.TRANSFER, to=people[1].address, amount=40_000)
    assert chain.app.check_tx(first).ok
    # Another block commits first: its execution leaves too little for the second.
    context = BlockContext(chain.app.height + 1, chain.app.last_block_time)
    chain.app.apply(chain.app.execute(context, [first]))
    fresh = _twin(chain)
    assert chain.app.check_tx(second).code == "insufficient_funds"
    context = BlockContext(chain.app.height + 1, chain.app.last_block_time)
    _same(chain.app.execute(context, [second]), fresh.execute(context, [second]))
