"""Vote sets: signatures, membership, tallies by power and equivocation evidence."""

from __future__ import annotations

from dataclasses import replace

import pytest

from ledger_core.consensus.votes import AddResult, VoteSet
from ledger_core.types.evidence import EvidenceError, verify
from ledger_core.types.vote import PRECOMMIT, PREVOTE, DuplicateVoteEvidence
from tests.consensus.keys import validator_keys, validator_set, vote
from tests.state.chain import CHAIN_ID, key

KEYS = validator_keys(4)
BLOCK = "aa" * 32
OTHER = "bb" * 32


def test_a_quorum_needs_more_than_two_thirds_of_the_power() -> None:
    validators = validator_set(KEYS, [10, 10, 10, 30])  # 60: a quorum is over 40
    votes = VoteSet(CHAIN_ID, 5, 1, PREVOTE, validators)
    for signer in KEYS[:3]:
        assert votes.add(vote(signer, PREVOTE, 5, 1, BLOCK)).result is AddResult.ADDED
    assert votes.majority() == (False, None)
    assert not votes.has_quorum_any()
    assert votes.add(vote(KEYS[3], PREVOTE, 5, 1, None)).result is AddResult.ADDED
    assert votes.has_quorum_any()
    assert votes.majority() == (False, None)
    assert votes.power_for(BLOCK) == 30
    assert votes.power_for(None) == 30


def test_nil_can_win_and_commits_hold_only_votes_for_the_block() -> None:
    validators = validator_set(KEYS)
    nil_votes = VoteSet(CHAIN_ID, 5, 0, PREVOTE, validators)
    for signer in KEYS[:3]:
        nil_votes.add(vote(signer, PREVOTE, 5, 0, None))
    assert nil_votes.majority() == (True, None)
    assert nil_votes.has_quorum_for(None)
    precommits = VoteSet(CHAIN_ID, 5, 0, PRECOMMIT, validators)
    for signer in KEYS[:3]:
        precommits.add(vote(signer, PRECOMMIT, 5, 0, BLOCK))
    precommits.add(vote(KEYS[3], PRECOMMIT, 5, 0, None))
    commit = precommits.commit(BLOCK)
    assert [s.validator for s in commit.signatures] == sorted(k.address for k in KEYS[:3])
    assert all(v.verify(CHAIN_ID, validators.get(v.validator).public_key)  # type: ignore[union-attr]
               for v in commit.votes())  # fmt: skip


def test_bad_votes_are_refused_and_conflicts_become_evidence() -> None:
    validators = validator_set(KEYS)
    votes = VoteSet(CHAIN_ID, 5, 0, PREVOTE, validators)
    first = vote(KEYS[0], PREVOTE, 5, 0, BLOCK)
    assert votes.add(first).result is AddResult.ADDED
    assert votes.add(first).result is AddResult.DUPLICATE
    assert votes.add(vote(key("stranger"), PREVOTE, 5, 0, BLOCK)).result is AddResult.INVALID
    assert votes.add(vote(KEYS[1], PREVOTE, 6, 0, BLOCK)).result is AddResult.INVALID
    assert votes.add(vote(KEYS[1], PRECOMMIT, 5, 0, BLOCK)).result is AddResult.INVALID
    forged = replace(vote(KEYS[1], PREVOTE, 5, 0, BLOCK), validator=KEYS[2].address)
    assert votes.add(forged).result is AddResult.INVALID
    second = vote(KEYS[0], PREVOTE, 5, 0, OTHER)
    added = votes.add(second)
    assert added.result is AddResult.CONFLICT
    evidence = added.evidence
    assert evidence is not None
    assert evidence == DuplicateVoteEvidence.of(second, first)
    assert votes.power_for(OTHER) == 0, "the first vote stands"
    assert verify(CHAIN_ID, evidence, validators).address == KEYS[0].address
    with pytest.raises(EvidenceError, match="not a validator"):
        verify(CHAIN_ID, evidence, validator_set(KEYS[1:]))
    with pytest.raises(EvidenceError, match="not signed"):
        verify("another-chain", evidence, validators)
    with pytest.raises(EvidenceError, match="same block"):
        verify(CHAIN_ID, DuplicateVoteEvidence(first, first), validators)
