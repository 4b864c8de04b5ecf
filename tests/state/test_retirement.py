"""What leaves the live state (ledger_core/state/history.py): a day's market and metering
records once its bills close, an interval's once it is settled, committed to by
``retired/<height>``; the same records at the same block on every node, and nothing a
later transaction needs."""

from __future__ import annotations

import pytest

from ledger_core.state import history, keys
from ledger_core.state.kernel import Overlay
from ledger_core.state.machine import StateMachine
from ledger_core.state.market.books import backstop_at
from ledger_core.types import codec
from ledger_core.types.abci import BlockContext, Execution
from ledger_core.types.commitment import retired_root
from ledger_core.types.fields import FieldError
from ledger_core.types.genesis import Params, parse_genesis
from ledger_core.types.tx import Tx, TxType
from tests.state.chain import Chain
from tests.state.market_chain import (
    DAY,
    INTERVAL,
    PRICES,
    T,
    bill,
    delivery,
    money_is_conserved,
    order,
    price,
    record,
    run_ok,
)
from tests.state.test_metered_state import SETTLE, Scene, scene

CLOSE = Params().day_closes(DAY)


def block(chain: Chain, when: int, *txs: Tx) -> Execution:
    """Execute and apply one block at ``when``; every transaction must succeed."""
    chain.time = when
    execution = chain.app.execute(BlockContext(chain.app.height + 1, when), txs)
    for tx, result in zip(txs, execution.results, strict=True):
        assert result.ok, (tx.type, result.code, result.message)
    chain.app.apply(execution)
    return execution


def the_days_records(chain: Chain) -> set[str]:
    """Every record of the live state that belongs to the scene's day (prices aside)."""
    return {
        key
        for key, value in chain.app.state.items()
        if (found := keys.dated(key, value)) is not None
        and DAY <= found.start < DAY + 86400
        and not found.price
    }


def settled_and_billed() -> Scene:
    """The scene with its interval delivered and every participant's day billed."""
    s = scene()
    run_ok(s.chain, SETTLE)
    run_ok(s.chain, SETTLE + 5, s.deliver())
    day_over = DAY + 86400 + 3600
    run_ok(s.chain, day_over, *(bill(s.chain, who) for who in (s.alice, s.bob, s.carol)))
    return s


def test_a_days_records_leave_when_its_bills_close_and_the_root_commits_to_them() -> None:
    s = settled_and_billed()
    chain = s.chain
    before = the_days_records(chain)
    families = {key.split("/", 1)[0] for key in before}
    assert families == {"report", "market", "position", "settle", "trade", "order", "bill"}
    kept = {k: v for k, v in chain.app.state.items() if k not in before}
    last_values = {k: chain.app.state[k] for k in before}

    nothing = block(chain, CLOSE - 1)
    assert nothing.retired == {}
    assert the_days_records(chain) == before

    closing = block(chain, CLOSE)
    assert set(closing.retired) == before
    assert the_days_records(chain) == set()
    assert {k: codec.decode(v, 1 << 20) for k, v in closing.retired.items()} == last_values
    anchor = record(chain, keys.retired(chain.app.height))
    assert anchor == {
        "root": retired_root(sorted(closing.retired.items())).hex(),
        "count": len(before),
    }
    # Everything else stays as it was: accounts, balances, prices, the market's queue.
    changed = {
        k for k, v in kept.items() if chain.app.state.get(k) != v and not k.startswith("valid")
    }
    assert changed == set()
    money_is_conserved(chain)
    later = block(chain, CLOSE + 5)
    assert later.retired == {}


def test_a_bill_after_its_day_closed_is_refused_and_one_just_before_is_not() -> None:
    s = scene()
    chain = s.chain
    run_ok(chain, SETTLE)
    run_ok(chain, SETTLE + 5, s.deliver())
    [on_time], _ = run_ok(chain, CLOSE - 1, bill(chain, s.carol))
    assert on_time.ok
    late = bill(chain, s.bob)
    chain.time = CLOSE
    execution = chain.app.execute(BlockContext(chain.app.height + 1, CLOSE), [late])
    assert [r.code for r in execution.results] == ["too_late"]
    assert "bill_deadline_seconds" in execution.results[0].message


def test_an_interval_waiting_for_its_delivery_keeps_its_records_until_it_is_settled() -> None:
    s = scene()
    chain = s.chain
    run_ok(chain, SETTLE)
    interval_records = {
        key
        for key, value in chain.app.state.items()
        if (found := keys.dated(key, value)) is not None and found.start == T and not found.price
    }
    closing = block(chain, CLOSE)
    # Its interval waits for the delivery: nothing of it leaves (the day had no bills).
    assert closing.retired == {}
    assert record(chain, keys.interval(T))["settlement"] == "awaiting_delivery"
    delivered = block(chain, CLOSE + 60, s.deliver())
    # Settled in this block: what the committed state held of it leaves with it; what
    # the delivery wrote (the statements) leaves with the next block.
    assert set(delivered.retired) == interval_records
    statements = {keys.statement(who.address, T) for who in (s.alice, s.bob)}
    assert statements <= set(chain.app.state)
    after = block(chain, CLOSE + 65)
    assert set(after.retired) == statements
    assert all(keys.dated(k, codec.decode(v, 1 << 20)) for k, v in after.retired.items())
    assert the_days_records(chain) == set()
    money_is_conserved(chain)


def test_a_node_restored_from_the_committed_state_takes_out_the_same_records() -> None:
    s = settled_and_billed()
    chain = s.chain
    restored = StateMachine.restore(
        chain.genesis, dict(chain.app.state), chain.app.height, chain.app.last_block_time
    )
    assert restored.app_hash == chain.app.app_hash
    closing = block(chain, CLOSE)
    context = BlockContext(restored.height + 1, CLOSE)
    again = restored.execute(context, [])
    assert again.retired == closing.retired
    assert again.app_hash == closing.app_hash
    restored.apply(again)
    assert restored.state == chain.app.state


def test_a_large_day_leaves_over_several_blocks_in_key_order(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    s = settled_and_billed()
    chain = s.chain
    everything = the_days_records(chain)
    monkeypatch.setattr(history, "MAX_PER_BLOCK", 4)
    taken: list[set[str]] = []
    when = CLOSE
    while the_days_records(chain) and len(taken) < len(everything):
        taken.append(set(block(chain, when).retired))
        when += 5
    assert set().union(*taken) == everything
    assert all(len(part) <= 4 for part in taken)
    assert len(taken) == -(-len(everything) // 4)
    heights = range(chain.app.height - len(taken) + 1, chain.app.height + 1)
    assert [record(chain, keys.retired(h))["count"] for h in heights] == [len(p) for p in taken]


def test_the_bill_deadline_must_outlast_the_report_grace() -> None:
    with pytest.raises(ValueError, match="bill_deadline_seconds"):
        Params(report_grace_seconds=5 * 86400)
    chain = Chain()
    raw = chain.genesis.to_json()
    assert isinstance(raw, dict)
    params = raw["params"]
    assert isinstance(params, dict)
    params["bill_deadline_seconds"] = params["report_grace_seconds"]
    with pytest.raises(FieldError) as err:
        parse_genesis(codec.encode(raw))
    assert err.value.field == "params.bill_deadline_seconds"
    params["bill_deadline_seconds"] = 9 * 86400
    assert parse_genesis(codec.encode(raw)).params.day_closes(DAY) == DAY + 10 * 86400 + 3600


def test_the_interval_and_day_of_each_record_family() -> None:
    start = T + INTERVAL
    assert keys.dated(keys.report("m", start), {}) == keys.Dated(start)
    assert keys.dated(keys.trade(start, 3), {}) == keys.Dated(start)
    assert keys.dated(keys.delivered_part(start, "p"), {}) == keys.Dated(start)
    assert keys.dated(keys.order("id"), {"interval_start": start}) == keys.Dated(start)
    assert keys.dated(keys.bill("p", DAY), {}) == keys.Dated(DAY, whole_day=True)
    assert keys.dated(keys.price(start), {}) == keys.Dated(start, price=True)
    for kept in (keys.account("p"), keys.price_day(DAY), keys.balance("p"), keys.retired(7)):
        assert keys.dated(kept, {}) is None


def test_a_closed_days_prices_leave_once_their_utc_day_is_settled_but_its_last_stays() -> None:
    s = scene()  # T's price was signalled; T's trade will wait for its delivery
    chain = s.chain
    later, last = T + 2 * INTERVAL, T + 3 * INTERVAL  # same UTC day as T (it ends 18:00 local)
    run_ok(chain, chain.time + 5, price(chain, later), price(chain, last))
    run_ok(chain, SETTLE)
    signals = {keys.price(t) for t in (T, later, last)}
    closing = block(chain, CLOSE)
    # T waits for its delivery, and its price may still be read: every signal stays.
    assert signals <= set(chain.app.state)
    assert not signals & set(closing.retired)
    block(chain, CLOSE + 60, s.deliver())  # T's records leave
    statements = block(chain, CLOSE + 65)  # the delivery's statements leave
    assert statements.retired
    assert not signals & set(statements.retired)
    after = block(chain, CLOSE + 70)  # nothing of the UTC day's intervals is left
    assert set(after.retired) == {keys.price(T), keys.price(later)}
    assert chain.app.state[keys.price_day(T - T % 86400)] == last
    assert record(chain, keys.price(last))["import_price"] == PRICES["import_price"]
    assert block(chain, CLOSE + 75).retired == {}
    # The backstop of a later day with no signal of its own still finds the last one.
    backstop = backstop_at(chain.app.chain, Overlay(chain.app.state), T + 9 * 86400)
    assert backstop is not None
    assert backstop.import_price == PRICES["import_price"]


def _week(chain: Chain) -> tuple[list[list[str]], set[str]]:
    """Six days of a small market (signals, orders, reports, deliveries, bills), then the
    late inputs the closed days refuse; each block's result codes, and what left."""
    codes: list[list[str]] = []
    left: set[str] = set()

    def at(when: int, *txs: Tx) -> None:
        chain.time = when
        execution = chain.app.execute(BlockContext(chain.app.height + 1, when), txs)
        chain.app.apply(execution)
        codes.append([r.code for r in execution.results])
        left.update(execution.retired)

    people = {name: chain.register(name) for name in ("alice", "bob", "carol")}
    meters = {name: chain.bind_meter(k, f"meter-{name}") for name, k in people.items()}
    chain.fund(people["bob"], 100_000)
    days = [DAY + (d + 1) * 86400 for d in range(6)]  # the chain starts at noon of DAY
    for d, day in enumerate(days):
        x = day + 9 * 3600
        at(
            day + 3600,
            price(chain, x),
            price(chain, x + INTERVAL, import_price=26_000),
            order(chain, people["alice"], "sell", 1_000, 10_000, start=x),
            order(chain, people["bob"], "buy", 800 + d, 30_000, start=x),
        )
        if d:
            at(day + 3630, *(bill(chain, who, days[d - 1]) for who in people.values()))
        at(x)
        at(
            x + 2 * INTERVAL + 10,
            *(
                chain.report(meters[name], t, *energy)
                for name, energy in (
                    ("alice", (0, 1_200)),
                    ("bob", (900 + d, 0)),
                    ("carol", (300, 0)),
                )
                for t in (x, x + INTERVAL)
            ),
        )
        at(x + INTERVAL + 3605)
        at(x + INTERVAL + 3615, delivery(chain, x))
    late = days[-1] + 86400 + 4000
    at(
        late,
        bill(chain, people["carol"], days[-1]),
        chain.tx(
            chain.dso,
            TxType.BILL,
            participant=people["alice"].address,
            day=days[0],
            reports=[{"meter": meters["alice"].address, "intervals": [days[0] + 9 * 3600]}],
            lines=[],
        ),
        chain.report(meters["carol"], days[0] + 10 * 3600, 1, 1),
        chain.tx(
            chain.dso,
            TxType.DELIVERY,
            interval_start=days[0] + 9 * 3600,
            sellers=[{"participant": people["alice"].address, "delivered_wh": 0, "meters": []}],
        ),
    )
    at(late + 5)
    return codes, left


def test_taking_records_out_changes_no_transaction_result(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    pruned = Chain()
    codes, left = _week(pruned)
    assert codes[-2] == ["ok", "too_late", "late_report", "not_awaiting_delivery"]
    monkeypatch.setattr(history, "MAX_PER_BLOCK", 0)  # nothing ever leaves
    kept = Chain()
    same_codes, nothing = _week(kept)
    assert nothing == set()
    assert codes == same_codes
    families = {key.split("/", 1)[0] for key in left}
    assert families == {"report", "market", "position", "settle", "trade", "order", "bill", "price"}
    live = {k: v for k, v in kept.app.state.items() if k not in left}
    assert {k: v for k, v in pruned.app.state.items() if not k.startswith(keys.RETIRED)} == live
    money_is_conserved(pruned)


def test_a_time_falls_in_the_local_day_that_began_at_the_chains_midnight() -> None:
    central = Params()  # UTC-6: a local midnight is 06:00 UTC
    assert [central.day_of(t) for t in (DAY, DAY + 86399, DAY - 1)] == [DAY, DAY, DAY - 86400]
    madrid = Params(utc_offset_minutes=60)  # a local midnight is 23:00 UTC the day before
    midnight = DAY - 7 * 3600
    assert [madrid.day_of(t) for t in (DAY, midnight, midnight - 1)] == [
        midnight,
        midnight,
        midnight - 86400,
    ]
