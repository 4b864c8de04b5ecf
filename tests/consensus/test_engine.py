"""The engine's rules one by one, driven directly: locks, proof of lock change, round
skips, growing timeouts and decisions (block time: test_pbts.py).

The host here hands out prepared blocks and signs with the validator's key; the
node's own host (execution, private validator, WAL) is exercised by the cluster
tests.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from ledger_core.consensus.engine import (
    FUTURE_ROUNDS,
    Broadcast,
    Decide,
    Effect,
    Engine,
    EvidenceFound,
    ScheduleTimeout,
    Step,
    Timeouts,
)
from ledger_core.consensus.light import verify_commit
from ledger_core.types.block import Block, make_block
from ledger_core.types.crypto import SigningKey
from ledger_core.types.proposal import Proposal
from ledger_core.types.vote import PRECOMMIT, PREVOTE, Vote
from tests.consensus.keys import validator_keys, validator_set, vote
from tests.state.chain import CHAIN_ID, START
from tests.state.chain import key as key_of

KEYS = validator_keys(4)
VALIDATORS = validator_set(KEYS)
BY_ADDRESS = {k.address: k for k in KEYS}
TIMEOUTS = Timeouts(100, 10, 50, 5, 60, 6)
NOW_MS = START * 1000


def block(tag: int, height: int = 1) -> Block:
    return make_block(
        KEYS[0],
        chain_id=CHAIN_ID,
        height=height,
        time_ms=NOW_MS + tag,
        previous_hash="00" * 32,
        txs=[],
        app_hash=tag.to_bytes(32, "big"),
        validators_hash=VALIDATORS.hash,
        next_validators_hash=VALIDATORS.hash,
    )


@dataclass
class Host:
    signer: SigningKey
    proposals: list[Block] = field(default_factory=list)
    invalid: set[str] = field(default_factory=set)

    def propose_block(self, height: int, round_: int) -> Block | None:
        return self.proposals.pop(0) if self.proposals else None

    def validate_block(self, candidate: Block) -> bool:
        return candidate.header.hash not in self.invalid

    def sign_proposal(self, proposal: Proposal) -> Proposal | None:
        return proposal.signed(self.signer, CHAIN_ID)

    def sign_vote(self, ballot: Vote) -> Vote | None:
        return ballot.signed(self.signer, CHAIN_ID)

    def now_ms(self) -> int:
        return NOW_MS


def me_not_proposing(rounds: int) -> SigningKey:
    """A validator that proposes none of the first ``rounds`` rounds."""
    proposers = {VALIDATORS.proposer(r).address for r in range(rounds)}
    return next(k for k in KEYS if k.address not in proposers)


def proposal(round_: int, chosen: Block, pol_round: int = -1) -> Proposal:
    proposer = BY_ADDRESS[VALIDATORS.proposer(round_).address]
    return Proposal(1, round_, pol_round, chosen, chosen.header.time_ms, proposer.address).signed(
        proposer, CHAIN_ID
    )


def own(effects: list[Effect], me: SigningKey) -> list[Vote]:
    return [
        e.message
        for e in effects
        if isinstance(e, Broadcast)
        and isinstance(e.message, Vote)
        and e.message.validator == me.address
    ]


def others(me: SigningKey, count: int) -> list[SigningKey]:
    return [k for k in KEYS if k is not me][:count]


def test_a_lock_holds_until_a_newer_proof_of_lock_change() -> None:
    me = me_not_proposing(3)
    engine = Engine(CHAIN_ID, me.address, Host(me), TIMEOUTS)
    first, second = block(1), block(2)
    effects = engine.start(1, VALIDATORS, 0)
    assert ScheduleTimeout(1, 0, Step.PROPOSE, 100) in effects
    [prevote] = own(engine.on_proposal(proposal(0, first)), me)
    assert (prevote.type, prevote.block_hash) == (PREVOTE, first.header.hash)
    effects = []
    for signer in others(me, 2):
        effects += engine.on_vote(vote(signer, PREVOTE, 1, 0, first.header.hash))
    [precommit] = own(effects, me)
    assert (precommit.type, precommit.block_hash) == (PRECOMMIT, first.header.hash)
    assert engine.locked_round == 0
    assert engine.valid is first
    for signer in others(me, 2):
        effects = engine.on_vote(vote(signer, PRECOMMIT, 1, 0, None))
    assert ScheduleTimeout(1, 0, Step.PRECOMMIT, 60) in effects
    effects = engine.on_timeout(1, 0, Step.PRECOMMIT)
    assert engine.round == 1
    assert ScheduleTimeout(1, 1, Step.PROPOSE, 110) in effects, "timeouts grow with the round"
    [refusal] = own(engine.on_proposal(proposal(1, second)), me)
    assert refusal.block_hash is None, "locked on another block: prevote nil"
    engine.on_timeout(1, 1, Step.PREVOTE)
    for signer in others(me, 3):
        engine.on_vote(vote(signer, PREVOTE, 1, 1, second.header.hash))
    engine.on_timeout(1, 1, Step.PRECOMMIT)
    assert engine.round == 2
    [switch] = own(engine.on_proposal(proposal(2, second, pol_round=1)), me)
    assert switch.block_hash == second.header.hash, "a newer proof of lock change unlocks"


def test_an_invalid_block_gets_a_nil_prevote_and_a_timeout_prevotes_nil() -> None:
    me = me_not_proposing(2)
    bad = block(3)
    engine = Engine(CHAIN_ID, me.address, Host(me, invalid={bad.header.hash}), TIMEOUTS)
    engine.start(1, VALIDATORS, 0)
    [nil] = own(engine.on_proposal(proposal(0, bad)), me)
    assert nil.block_hash is None
    engine.on_timeout(1, 0, Step.PRECOMMIT)
    [late] = own(engine.on_timeout(1, 1, Step.PROPOSE), me)
    assert (late.round, late.block_hash) == (1, None)


def test_more_than_a_third_in_a_later_round_pulls_the_validator_forward() -> None:
    me = me_not_proposing(1)
    engine = Engine(CHAIN_ID, me.address, Host(me), TIMEOUTS)
    engine.start(1, VALIDATORS, 0)
    ahead = others(me, 2)
    engine.on_vote(vote(ahead[0], PREVOTE, 1, 7, None))
    assert engine.round == 0, "one validator is not enough"
    engine.on_vote(vote(ahead[1], PRECOMMIT, 1, 9, None))
    assert engine.round == 7, "the highest round more than a third has reached"
    engine.on_vote(vote(ahead[0], PREVOTE, 1, 1000, None))
    engine.on_vote(vote(ahead[1], PREVOTE, 1, 1000, None))
    assert engine.round == 1000, "far rounds count once their signatures check"


def test_a_decision_comes_with_a_commit_of_more_than_two_thirds() -> None:
    me = me_not_proposing(1)
    engine = Engine(CHAIN_ID, me.address, Host(me), TIMEOUTS)
    chosen = block(4)
    engine.start(1, VALIDATORS, 0)
    effects = []
    for signer in others(me, 3):
        effects += engine.on_vote(vote(signer, PRECOMMIT, 1, 0, chosen.header.hash))
    assert not any(isinstance(e, Decide) for e in effects), "no block yet, no decision"
    effects = engine.on_proposal(proposal(0, chosen))
    [decision] = [e for e in effects if isinstance(e, Decide)]
    assert decision.block is chosen
    verify_commit(CHAIN_ID, VALIDATORS, chosen.header, decision.commit)
    assert engine.on_vote(vote(KEYS[0], PREVOTE, 1, 0, None)) == [], "decided: done"


def test_an_equivocation_is_reported_once_and_the_first_vote_counts() -> None:
    me = me_not_proposing(1)
    engine = Engine(CHAIN_ID, me.address, Host(me), TIMEOUTS)
    engine.start(1, VALIDATORS, 0)
    liar = others(me, 1)[0]
    engine.on_vote(vote(liar, PREVOTE, 1, 0, "aa" * 32))
    effects = engine.on_vote(vote(liar, PREVOTE, 1, 0, None))
    [found] = [e for e in effects if isinstance(e, EvidenceFound)]
    assert found.evidence.validator == liar.address
    assert engine.prevotes[0].power_for("aa" * 32) == 10


def test_the_proposer_reproposes_its_valid_block_with_its_round() -> None:
    proposer = BY_ADDRESS[VALIDATORS.proposer(1).address]
    fresh = block(5)
    engine = Engine(CHAIN_ID, proposer.address, Host(proposer, proposals=[block(6)]), TIMEOUTS)
    engine.start(1, VALIDATORS, 0)
    if VALIDATORS.proposer(0).address != proposer.address:
        engine.on_proposal(proposal(0, fresh))
    else:
        fresh = engine.proposals[0][next(iter(engine.proposals[0]))].block
    for signer in others(proposer, 3):
        engine.on_vote(vote(signer, PREVOTE, 1, 0, fresh.header.hash))
    assert engine.valid is fresh
    effects = engine.on_timeout(1, 0, Step.PRECOMMIT)
    [sent] = [e.message for e in effects if isinstance(e, Broadcast)
              and isinstance(e.message, Proposal)]  # fmt: skip
    assert (sent.round, sent.pol_round, sent.block) == (1, 0, fresh)


def test_messages_that_are_not_what_they_claim_are_ignored() -> None:
    me = me_not_proposing(1)
    engine = Engine(CHAIN_ID, me.address, Host(me), TIMEOUTS)
    assert engine.on_proposal(proposal(0, block(9))) == [], "not started: nothing to do"
    engine.start(1, VALIDATORS, 0)
    impostor = next(k for k in KEYS if k.address != VALIDATORS.proposer(0).address)
    wrong_signer = Proposal(1, 0, -1, block(7), NOW_MS + 7, impostor.address).signed(
        impostor, CHAIN_ID
    )
    bad_signature = replace(proposal(0, block(7)), signature=bytes(64))
    other_height = replace(proposal(0, block(7)), height=2)
    far = proposal(FUTURE_ROUNDS + 1, block(7))
    for message in (wrong_signer, bad_signature, other_height, far):
        assert not own(engine.on_proposal(message), me)
    assert engine.proposals == {}
    stranger = vote(key_of("stranger"), PREVOTE, 1, 0, None)
    forged = replace(vote(KEYS[1], PREVOTE, 1, 99, None), signature=bytes(64))
    for ballot in (stranger, forged, vote(KEYS[1], PREVOTE, 2, 0, None)):
        assert engine.on_vote(ballot) == []
    assert engine.round == 0
    assert engine.on_timeout(1, 5, Step.PROPOSE) == [], "a stale timeout does nothing"
    assert engine.on_timeout(1, 0, Step.PREVOTE) == [], "not in that step"
    observer = Engine(CHAIN_ID, None, Host(me), TIMEOUTS)
    observer.start(1, VALIDATORS, 0)
    assert not observer.is_validator
    assert not own(observer.on_proposal(proposal(0, block(8))), me)
