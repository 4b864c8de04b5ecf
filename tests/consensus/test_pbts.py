"""Proposer-based timestamps: the timeliness rules, monotonic block time, and clocks
that are off.

The engine's rules are driven directly (a host that hands out prepared blocks and
reads a clock the test sets); the host's rules run on real nodes (SQLite, WAL,
private validator), alone or as a network in simulated time where one validator's
clock is ten seconds ahead or behind.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ledger_core.consensus.engine import (
    Broadcast,
    Effect,
    Engine,
    Step,
    Synchrony,
    Timeouts,
    Untimely,
)
from ledger_core.consensus.light import LightClient, LightError
from ledger_core.node.home import Config, ConfigError
from ledger_core.node.host import BlockRejected, Node
from ledger_core.node.storage import StorageError, open_storage
from ledger_core.state.machine import StateMachine
from ledger_core.types import codec
from ledger_core.types.block import Block, Header, make_block
from ledger_core.types.crypto import SigningKey
from ledger_core.types.fields import FieldError
from ledger_core.types.genesis import Params, parse_genesis
from ledger_core.types.proposal import Proposal, encode_message
from ledger_core.types.tx import TxType
from ledger_core.types.vote import PREVOTE, Vote
from tests.consensus.cluster import Cluster
from tests.consensus.keys import commit, validator_keys, validator_set, vote
from tests.state.chain import CHAIN_ID, START, Chain, key

KEYS = validator_keys(4)
VALIDATORS = validator_set(KEYS)
BY_ADDRESS = {k.address: k for k in KEYS}
TIMEOUTS = Timeouts(100, 10, 50, 5, 60, 6)
SYNC = Synchrony(precision_ms=500, message_delay_ms=3000)
NOW = START * 1000
PREVIOUS = NOW - 5000  # the previous block's time


def block(time_ms: int, tag: int = 0) -> Block:
    return make_block(
        KEYS[0],
        chain_id=CHAIN_ID,
        height=1,
        time_ms=time_ms,
        previous_hash="00" * 32,
        txs=[],
        app_hash=tag.to_bytes(32, "big"),
        validators_hash=VALIDATORS.hash,
        next_validators_hash=VALIDATORS.hash,
    )


@dataclass
class Host:
    """Prepared blocks, every block valid, and a clock the test sets."""

    signer: SigningKey
    now: int = NOW
    proposals: list[Block] = field(default_factory=list)

    def propose_block(self, height: int, round_: int) -> Block | None:
        return self.proposals.pop(0) if self.proposals else None

    def validate_block(self, candidate: Block) -> bool:
        return True

    def sign_proposal(self, proposal: Proposal) -> Proposal | None:
        return proposal.signed(self.signer, CHAIN_ID)

    def sign_vote(self, ballot: Vote) -> Vote | None:
        return ballot.signed(self.signer, CHAIN_ID)

    def now_ms(self) -> int:
        return self.now


def proposer_of(round_: int) -> SigningKey:
    return BY_ADDRESS[VALIDATORS.proposer(round_).address]


def not_proposing(rounds: int) -> SigningKey:
    proposers = {VALIDATORS.proposer(r).address for r in range(rounds)}
    return next(k for k in KEYS if k.address not in proposers)


def proposal(round_: int, chosen: Block, pol_round: int = -1) -> Proposal:
    signer = proposer_of(round_)
    made = Proposal(1, round_, pol_round, chosen, chosen.header.time_ms, signer.address)
    return made.signed(signer, CHAIN_ID)


def prevotes(effects: list[Effect], me: SigningKey) -> list[str | None]:
    return [
        e.message.block_hash
        for e in effects
        if isinstance(e, Broadcast)
        and isinstance(e.message, Vote)
        and e.message.validator == me.address
        and e.message.type == PREVOTE
    ]


def engine_for(me: SigningKey, host: Host | None = None) -> Engine:
    engine = Engine(CHAIN_ID, me.address, host or Host(me), TIMEOUTS, SYNC)
    engine.start(1, VALIDATORS, PREVIOUS)
    return engine


# -- the rule ------------------------------------------------------------------------------


def test_timely_means_at_most_precision_ahead_and_message_delay_plus_precision_behind() -> None:
    received = NOW
    assert SYNC.timely(received + 500, received, 0)
    assert not SYNC.timely(received + 501, received, 0), "further ahead than clocks can be"
    assert SYNC.timely(received - 3500, received, 0)
    assert not SYNC.timely(received - 3501, received, 0), "older than any delivery takes"
    assert [SYNC.message_delay_at(r) for r in range(5)] == [3000, 4500, 6000, 7500, 9000]
    assert SYNC.timely(received - 5000, received, 1), "MSGDELAY grows with the round"
    assert not SYNC.timely(received + 501, received, 50), "PRECISION does not"


@given(
    st.integers(0, 10_000),
    st.integers(0, 60_000),
    st.integers(-120_000, 120_000),
    st.integers(0, 40),
)
def test_timeliness_is_the_window_and_only_widens_backwards_with_the_round(
    precision: int, delay: int, offset: int, round_: int
) -> None:
    sync = Synchrony(precision, max(1, delay))
    received = NOW
    stamp = received + offset
    inside = -sync.message_delay_at(round_) - precision <= offset <= precision
    assert sync.timely(stamp, received, round_) == inside
    if sync.timely(stamp, received, round_):
        assert sync.timely(stamp, received, round_ + 1), "timely stays timely in later rounds"


# -- the engine ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("offset", "timely"),
    [(0, True), (500, True), (501, False), (-3500, True), (-3501, False), (10_000, False)],
)
def test_a_fresh_proposal_is_prevoted_only_when_its_time_was_timely(
    offset: int, timely: bool
) -> None:
    me = not_proposing(1)
    engine = engine_for(me)
    chosen = block(NOW + offset)
    effects = engine.on_proposal(proposal(0, chosen), received_ms=NOW)
    assert prevotes(effects, me) == [chosen.header.hash if timely else None]
    refused = [e for e in effects if isinstance(e, Untimely)]
    if timely:
        assert not refused
    else:
        [found] = refused
        assert (found.received_ms, found.earliest_ms, found.latest_ms) == (
            NOW,
            NOW - 3500,
            NOW + 500,
        )


def test_what_counts_is_when_the_proposal_arrived_not_when_it_is_judged() -> None:
    me = not_proposing(2)
    host = Host(me)
    engine = engine_for(me, host)
    later = block(NOW, tag=1)
    engine.on_proposal(proposal(1, later), received_ms=NOW)  # round 1, early
    host.now = NOW + 60_000
    engine.on_timeout(1, 0, Step.PROPOSE)
    engine.on_timeout(1, 0, Step.PREVOTE)
    effects = engine.on_timeout(1, 0, Step.PRECOMMIT)  # round 1 starts a minute later
    assert engine.round == 1
    assert prevotes(effects, me) == [later.header.hash]


def test_an_old_stamp_becomes_timely_in_a_later_round_so_the_chain_cannot_stop() -> None:
    me = not_proposing(3)
    engine = engine_for(me)
    slow = block(NOW - 5000, tag=2)  # delivered five seconds after it was stamped
    assert prevotes(engine.on_proposal(proposal(0, slow), received_ms=NOW), me) == [None]
    engine.on_timeout(1, 0, Step.PREVOTE)
    engine.on_timeout(1, 0, Step.PRECOMMIT)
    assert engine.round == 1
    effects = engine.on_proposal(proposal(1, slow), received_ms=NOW)
    assert prevotes(effects, me) == [slow.header.hash], "MSGDELAY(1) + PRECISION = 5 s"


def test_a_reproposal_with_a_proof_of_lock_is_not_judged_again() -> None:
    me = not_proposing(2)
    engine = engine_for(me)
    chosen = block(NOW, tag=3)
    engine.on_proposal(proposal(0, chosen), received_ms=NOW)
    engine.on_timeout(1, 0, Step.PREVOTE)
    for signer in [k for k in KEYS if k is not me][:2]:
        engine.on_vote(vote(signer, PREVOTE, 1, 0, chosen.header.hash))
    assert engine.locked is None, "prevotes arrived after this validator precommitted nil"
    engine.on_timeout(1, 0, Step.PRECOMMIT)
    # Round 1 re-proposes it with its proof of lock a minute later: its time is old now.
    effects = engine.on_proposal(proposal(1, chosen, pol_round=0), received_ms=NOW + 60_000)
    assert prevotes(effects, me) == [chosen.header.hash]
    assert not [e for e in effects if isinstance(e, Untimely)]


def test_a_proposal_whose_timestamp_is_not_its_blocks_time_is_ignored() -> None:
    me = not_proposing(1)
    engine = engine_for(me)
    chosen = block(NOW, tag=4)
    signer = proposer_of(0)
    lying = Proposal(1, 0, -1, chosen, NOW + 1, signer.address).signed(signer, CHAIN_ID)
    assert engine.on_proposal(lying, received_ms=NOW) == []
    assert engine.proposals == {}


def test_a_reproposed_block_keeps_the_time_its_first_proposer_gave_it() -> None:
    me = proposer_of(1)
    host = Host(me)
    engine = Engine(CHAIN_ID, me.address, host, TIMEOUTS, SYNC)
    engine.start(1, VALIDATORS, PREVIOUS)
    first = block(NOW, tag=5)
    if proposer_of(0) is not me:
        engine.on_proposal(proposal(0, first), received_ms=NOW)
    for signer in [k for k in KEYS if k is not me][:3]:
        engine.on_vote(vote(signer, PREVOTE, 1, 0, first.header.hash))
    host.now = NOW + 30_000
    effects = engine.on_timeout(1, 0, Step.PRECOMMIT)
    [sent] = [e.message for e in effects if isinstance(e, Broadcast)
              and isinstance(e.message, Proposal)]  # fmt: skip
    assert (sent.round, sent.pol_round, sent.timestamp) == (1, 0, NOW)


def test_a_proposer_whose_clock_has_not_passed_the_last_block_proposes_when_it_has() -> None:
    me = proposer_of(0)
    host = Host(me)  # no block yet: the host's clock is behind the last block
    engine = Engine(CHAIN_ID, me.address, host, TIMEOUTS, SYNC)
    effects = engine.start(1, VALIDATORS, PREVIOUS)
    assert not [e for e in effects if isinstance(e, Broadcast)]
    assert engine.retry_proposal(1, 1) == [], "another round: nothing"
    host.proposals.append(block(NOW, tag=6))
    effects = engine.retry_proposal(1, 0)
    [sent] = [e.message for e in effects if isinstance(e, Broadcast)
              and isinstance(e.message, Proposal)]  # fmt: skip
    assert sent.timestamp == NOW
    assert prevotes(effects, me) == [sent.block_hash], "its own proposal is timely"
    host.proposals.append(block(NOW + 1, tag=7))
    assert engine.retry_proposal(1, 0) == [], "once per round"
    late = Engine(CHAIN_ID, me.address, Host(me), TIMEOUTS, SYNC)
    late.start(1, VALIDATORS, PREVIOUS)
    late.on_timeout(1, 0, Step.PROPOSE)
    assert late.retry_proposal(1, 0) == [], "past the propose step: too late"


# -- blocks, headers and parameters ------------------------------------------------------------


def test_a_header_says_its_time_in_milliseconds_and_in_seconds_and_they_must_agree() -> None:
    header = block(NOW + 1234).header
    value = header.to_json()
    assert isinstance(value, dict)
    assert (value["time"], value["time_ms"]) == (START + 1, NOW + 1234)
    assert Header.from_json(value) == header
    with pytest.raises(FieldError, match=r"header\.time"):
        Header.from_json({**value, "time": START})


def test_a_light_client_wants_each_header_after_the_one_it_trusts() -> None:
    first = replace(block(NOW).header, height=1)
    second = replace(first, height=2, previous_hash=first.hash, time_ms=NOW)
    client = LightClient(CHAIN_ID, VALIDATORS)
    client.update(first, commit(KEYS[:3], 1, first.hash), VALIDATORS, VALIDATORS)
    with pytest.raises(LightError, match="not after"):
        client.update(second, commit(KEYS[:3], 2, second.hash), VALIDATORS, VALIDATORS)
    later = replace(second, time_ms=NOW + 1)
    client.update(later, commit(KEYS[:3], 2, later.hash), VALIDATORS, VALIDATORS)
    assert client.height == 2


def test_the_bounds_are_genesis_parameters_that_old_genesis_files_do_without() -> None:
    genesis = Chain().genesis
    value = genesis.to_json()
    assert isinstance(value, dict)
    params = value["params"]
    assert isinstance(params, dict)
    assert "precision_ms" not in params, "defaults are not written: old files keep their hash"
    assert parse_genesis(genesis.encode()).params.precision_ms == 500
    tuned = replace(genesis, params=replace(Params(), precision_ms=250, message_delay_ms=8000))
    loaded = parse_genesis(tuned.encode())
    assert (loaded.params.precision_ms, loaded.params.message_delay_ms) == (250, 8000)
    assert loaded.hash != genesis.hash
    for name, bad in (("precision_ms", 0), ("message_delay_ms", 600_001)):
        wrong = {**value, "params": {**params, name: bad}}
        with pytest.raises(FieldError, match=f"params.{name}"):
            parse_genesis(codec.encode(wrong))


def test_a_nodes_clock_can_be_set_off_for_fault_tests() -> None:
    ahead = Config.from_json({"clock_offset": 10}).clock()
    plain = Config.from_json({}).clock()
    assert 9.5 < ahead() - plain() < 10.5
    assert Config.from_json({}).clock_offset == 0.0
    with pytest.raises(ConfigError, match="clock_offset"):
        Config.from_json({"clock_offset": "10 s"})
    with pytest.raises(ConfigError, match="clock_offset"):
        Config.from_json({"clock_offset": 86401})


# -- one validator ------------------------------------------------------------------------------


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


OPEN: list[Node] = []


@pytest.fixture(autouse=True)
def close_nodes() -> Iterator[None]:
    yield
    while OPEN:
        OPEN.pop().close()


def single(home: Path, chain: Chain, clock: Clock) -> Node:
    node = Node(chain.genesis, key("validator"), open_storage(home, chain.genesis), clock=clock,
                app_factory=StateMachine.restore)  # fmt: skip
    OPEN.append(node)
    return node


def register(chain: Chain, node: Node, name: str) -> None:
    tx = chain.tx(chain.iso, TxType.REGISTER, public_key=key(name).public_key.hex(),
                  role="consumer")  # fmt: skip
    assert node.submit(tx.wire()).accepted


def test_one_validator_stamps_its_clock_and_never_goes_back(tmp_path: Path) -> None:
    chain = Chain()
    genesis_ms = chain.genesis.genesis_time * 1000
    clock = Clock(chain.genesis.genesis_time - 60)  # before the genesis time
    node = single(tmp_path, chain, clock)
    times = [node.produce_block().header.time_ms]
    assert times == [genesis_ms], "block 1 is not before the genesis time"
    clock.now = START + 0.25
    times.append(node.produce_block().header.time_ms)
    assert times[-1] == NOW + 250, "the proposer's clock, to the millisecond"
    for _ in range(3):  # the clock stands still
        times.append(node.produce_block().header.time_ms)
    clock.now = START - 3600  # and is set back an hour
    register(chain, node, "alice")
    times.append(node.produce_block().header.time_ms)
    assert times[2:] == [NOW + 251, NOW + 252, NOW + 253, NOW + 254], "1 ms after the last"
    assert node.app.last_block_time == START, "and the state machine's seconds stay put"
    clock.now = START + 10
    assert node.produce_block().header.time_ms == NOW + 10_000


def test_a_block_not_after_the_last_or_before_genesis_is_invalid(tmp_path: Path) -> None:
    chain = Chain()
    clock = Clock(START)
    node = single(tmp_path, chain, clock)
    first = node.propose_block(1, 0)
    assert first is not None
    early = resign(first, time_ms=chain.genesis.genesis_time * 1000 - 1)
    with pytest.raises(BlockRejected, match="before the genesis time"):
        node.execute_block(early)
    node.produce_block()
    clock.now += 1
    second = node.propose_block(2, 0)
    assert second is not None
    assert node.validate_block(second)
    assert node.last_header is not None
    same = resign(second, time_ms=node.last_header.time_ms)
    with pytest.raises(BlockRejected, match="not after the last block's"):
        node.execute_block(same)


_EVERY_CHANGE = (
    "blocks that carry their commits and consensus hashes; block times in milliseconds "
    "stamped by the proposer; state roots with 16-way bucket trees"
)


@pytest.mark.parametrize(
    ("schema", "said"),
    [
        (b"3", "schema 3; this version needs schema 4 (state roots with 16-way bucket trees): "),
        (
            b"2",
            (
                "schema 2; this version needs schema 4 (block times in milliseconds stamped by "
                "the proposer; state roots with 16-way bucket trees): "
            ),
        ),
        (b"1", f"schema 1; this version needs schema 4 ({_EVERY_CHANGE}): "),
        (b"x7", f"schema 'x7'; this version needs schema 4 ({_EVERY_CHANGE}): "),
        (b"5", "schema 5, made by a later version; this version needs schema 4: run the later "),
    ],
)
def test_a_database_of_another_schema_is_refused_naming_what_changed(
    tmp_path: Path, schema: bytes, said: str
) -> None:
    chain = Chain()
    node = single(tmp_path, chain, Clock(START))
    node.produce_block()
    path = node.storage.path
    OPEN.remove(node)
    node.close()
    db = sqlite3.connect(path)
    try:
        with db:
            db.execute("UPDATE meta SET value = ? WHERE key = 'schema'", (schema,))
    finally:
        db.close()
    before = path.read_bytes()
    with pytest.raises(StorageError) as refused:
        open_storage(tmp_path, chain.genesis)
    assert str(refused.value).startswith(f"{path} has database {said}")
    assert str(refused.value).endswith("start a new node home")
    assert "\n" not in str(refused.value)
    assert path.read_bytes() == before  # refused before anything is written


def resign(made: Block, **changes: int) -> Block:
    signer = key("validator")
    header = replace(made.header, **changes)
    return Block(header, signer.sign(header.encode()), made.txs, made.last_commit, made.evidence)


# -- a network in simulated time ------------------------------------------------------------------


def commit_times(cluster: Cluster, name: str) -> Callable[[], dict[int, float]]:
    """A recorder of the simulated time at which ``name`` committed each height."""
    seen: dict[int, float] = {}

    def record() -> dict[int, float]:
        node = cluster.node(name)
        seen.setdefault(node.height, cluster.scheduler.time())
        return seen

    return record


@pytest.mark.parametrize("skew", [10.0, -10.0])
def test_a_validator_ten_seconds_off_cannot_move_the_chains_time(
    homes: Path, skew: float, caplog: pytest.LogCaptureFixture
) -> None:
    cluster = Cluster(homes, validators=4, clock_offsets={"v2": skew})
    try:
        skewed = cluster.members["v2"].key.address
        record = commit_times(cluster, "v0")
        target = 16  # every validator is the first proposer of some of these heights

        def reached() -> bool:
            record()
            return cluster.node("v0").height >= target

        with caplog.at_level(logging.INFO):
            assert cluster.run_until(reached, 300)
        cluster.check()
        seen = record()
        v0 = cluster.node("v0")
        later_rounds = 0
        previous = 0
        for height in range(2, target + 1):
            header = v0.storage.header(height)
            assert header is not None
            assert header.proposer != skewed, f"height {height} has the skewed proposer"
            assert header.time_ms > previous
            previous = header.time_ms
            lag = seen[height] * 1000 - header.time_ms
            assert 0 <= lag <= 1000, f"height {height}: {lag} ms behind the honest clocks"
            decided = v0.storage.commit(height)
            assert decided is not None
            later_rounds += decided.round > 0
        assert later_rounds >= 3, "its turns as first proposer went to round 1"
        if skew > 0:
            assert "not timely" in caplog.text, "its proposals were refused"
        else:
            assert "once this clock passes the last block's time" in caplog.text
        assert cluster.node("v2").height >= target - 1, "it follows the chain"
    finally:
        cluster.close()


def test_a_restarted_validator_judges_a_proposal_by_when_it_first_arrived(homes: Path) -> None:
    cluster = Cluster(homes, validators=4)
    try:
        assert cluster.run_until(cluster.all_at_least(2), 60)
        height = max(n.height for n in cluster.running()) + 1
        assert cluster.run_until(cluster.all_at_least(height - 1), 60)
        validators = cluster.node("v0").app.validator_set(height)
        names = {m.key.address: n for n, m in cluster.members.items()}
        proposer = names[validators.proposer(0).address]
        judge = next(n for n in cluster.members if n != proposer)
        for name in cluster.members:
            if name != judge:
                cluster.node(name).halt()  # nobody else moves
        source = cluster.node(proposer)
        made = source.propose_block(height, 0)
        assert made is not None
        signed = source.sign_proposal(
            Proposal(height, 0, -1, made, made.header.time_ms, source.key.address)
        )
        assert signed is not None
        arrived = cluster.node(judge).now_ms()
        assert cluster.node(judge).deliver(proposer, "consensus", encode_message(signed))
        node = cluster.node(judge)
        assert cluster.run_until(lambda: node.engine.height == height, 30)
        assert node.engine.received[(0, signed.block_hash)] == arrived
        cluster.run_for(20)  # long after: the proposal's time is old now
        cluster.crash(judge)
        again = cluster.start(judge)
        assert cluster.run_until(lambda: again.engine.height == height, 30)
        assert again.engine.received[(0, signed.block_hash)] == arrived, "from its WAL"
        mine = again.privval.signed_vote_at(height, 0, 2)
        assert mine is not None
        assert mine.block_hash == signed.block_hash, "it prevoted the block, timely then"
    finally:
        cluster.close()
