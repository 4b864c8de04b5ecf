"""Duplicate-vote evidence: checking that a validator really signed two conflicting votes.

Evidence (:class:`~ledger_core.consensus.types.DuplicateVoteEvidence`) is
well-formed by construction: two votes of one validator for the same height,
round and type but different blocks, in canonical order. :func:`verify` adds
what needs a validator set: the validator was a member of the set of that
height, and both signatures are its own on this chain. Nodes check evidence
with the set they know for the height; the state machine checks it with the
sets it keeps in state, so every node reaches the same verdict.
"""

from __future__ import annotations

from ledger_core.types.validators import Member, ValidatorSet
from ledger_core.types.vote import DuplicateVoteEvidence


class EvidenceError(ValueError):
    """Evidence that does not prove an equivocation under the given validator set."""


def verify(chain_id: str, evidence: DuplicateVoteEvidence, validators: ValidatorSet) -> Member:
    """The offending validator, or EvidenceError saying why the evidence fails."""
    a, b = evidence.vote_a, evidence.vote_b
    if (a.validator, a.height, a.round, a.type) != (b.validator, b.height, b.round, b.type):
        raise EvidenceError("the votes differ in validator, height, round or type")
    if a.block_hash == b.block_hash:
        raise EvidenceError("the votes are for the same block")
    member = validators.get(a.validator)
    if member is None:
        raise EvidenceError(f"{a.validator} was not a validator at height {a.height}")
    for name, vote in (("vote_a", a), ("vote_b", b)):
        if not vote.verify(chain_id, member.public_key):
            raise EvidenceError(f"{name} is not signed by {a.validator}")
    return member
