"""Vote sets: the prevotes or precommits of one height and round, with their tallies.

A :class:`VoteSet` accepts a vote only from a member of its validator set,
with a valid signature, for its height, round and type. It keeps the first
vote of each validator; a later vote of the same validator for another block
(or nil against a block) is an equivocation and comes back as
:class:`DuplicateVoteEvidence`. A repeat of the same vote is ignored.

Tallies are by voting power: :meth:`VoteSet.majority` says whether more than
two thirds voted for one block (or for nil), :meth:`VoteSet.has_quorum_any`
whether more than two thirds voted at all.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from ledger_core.types.validators import ValidatorSet
from ledger_core.types.vote import Commit, DuplicateVoteEvidence, Vote


class AddResult(StrEnum):
    """What happened to a vote offered to a set."""

    ADDED = "added"
    DUPLICATE = "duplicate"
    CONFLICT = "conflict"
    INVALID = "invalid"


@dataclass(frozen=True, slots=True)
class Added:
    """The outcome of :meth:`VoteSet.add`: evidence when it was a conflicting vote."""

    result: AddResult
    evidence: DuplicateVoteEvidence | None = None
    reason: str = ""


_NIL = ""


class VoteSet:
    """The votes of one type at one height and round."""

    __slots__ = ("_by_block", "chain_id", "height", "round", "type", "validators", "votes")

    def __init__(
        self, chain_id: str, height: int, round_: int, vote_type: str, validators: ValidatorSet
    ) -> None:
        self.chain_id = chain_id
        self.height = height
        self.round = round_
        self.type = vote_type
        self.validators = validators
        self.votes: dict[str, Vote] = {}
        self._by_block: dict[str, int] = {}

    def add(self, vote: Vote, *, verified: bool = False) -> Added:
        """Check and record ``vote`` (``verified``: its signature is already checked)."""
        if (vote.height, vote.round, vote.type) != (self.height, self.round, self.type):
            return Added(AddResult.INVALID, reason="another height, round or type")
        member = self.validators.get(vote.validator)
        if member is None:
            return Added(AddResult.INVALID, reason=f"{vote.validator} is not a validator")
        previous = self.votes.get(vote.validator)
        if previous is not None and previous.block_hash == vote.block_hash:
            return Added(AddResult.DUPLICATE)
        if not verified and not vote.verify(self.chain_id, member.public_key):
            return Added(AddResult.INVALID, reason="bad signature")
        if previous is not None:
            return Added(AddResult.CONFLICT, DuplicateVoteEvidence.of(previous, vote))
        self.votes[vote.validator] = vote
        key = vote.block_hash or _NIL
        self._by_block[key] = self._by_block.get(key, 0) + member.power
        return Added(AddResult.ADDED)

    @property
    def power(self) -> int:
        """The power of every validator that voted."""
        return sum(self._by_block.values())

    def power_for(self, block_hash: str | None) -> int:
        """The power that voted for ``block_hash`` (None: nil)."""
        return self._by_block.get(block_hash or _NIL, 0)

    def has_quorum_for(self, block_hash: str | None) -> bool:
        """Whether more than two thirds voted for ``block_hash`` (None: nil)."""
        return self.validators.has_quorum(self.power_for(block_hash))

    def has_quorum_any(self) -> bool:
        """Whether more than two thirds voted, whatever for."""
        return self.validators.has_quorum(self.power)

    def majority(self) -> tuple[bool, str | None]:
        """``(True, hash)`` when more than two thirds voted for one block (None: nil)."""
        for key, power in self._by_block.items():
            if self.validators.has_quorum(power):
                return True, key or None
        return False, None

    def commit(self, block_hash: str) -> Commit:
        """The commit of the precommits for ``block_hash`` (which must have a quorum)."""
        assert self.has_quorum_for(block_hash)
        return Commit.from_votes([v for v in self.votes.values() if v.block_hash == block_hash])
