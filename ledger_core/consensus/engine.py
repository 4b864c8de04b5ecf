"""The Tendermint algorithm (Algorithm 1 of arXiv:1807.04938) as a sans-IO state machine.

The engine neither reads clocks nor touches sockets or files. Its inputs are
:meth:`Engine.start` (begin a height with its validator set),
:meth:`Engine.on_proposal`, :meth:`Engine.on_vote` and :meth:`Engine.on_timeout`;
each returns the effects the host must carry out, in order:
:class:`Broadcast` (send a message; for the validator's own votes the host writes
them to its WAL and fsyncs first), :class:`ScheduleTimeout`, :class:`Decide`
(the block and its commit) and :class:`EvidenceFound`. The host supplies blocks
(``propose_block``, stamped with its clock: proposer-based timestamps), judges
them (``validate_block``, which for this ledger means executing them), signs
through the double-sign-safe private validator (``sign_proposal``,
``sign_vote``; None when it refuses) and tells the time (``now_ms``: when a
proposal was received, and vote timestamps).

Within a height ``h`` the engine keeps ``round``, ``step`` (propose, prevote,
precommit), the locked block and round, and the *valid* block and round (the
last block seen with more than 2/3 prevotes). The rules, checked after every
input until none applies (``2f+1``: more than 2/3 of the voting power; ``f+1``:
more than 1/3):

1. StartRound(r): the proposer of ``(h, r)`` proposes the valid block with its
   round as ``pol_round`` if it has one (keeping the block's time), else a new
   block, which the host stamps with its clock once that clock has passed the
   previous block's time (until then ``propose_block`` returns None and the host
   calls :meth:`Engine.retry_proposal` later); every validator arms
   timeoutPropose(r).
2. In step propose, a proposal with ``pol_round = -1``: prevote it if it is valid,
   *timely* and nothing is locked or it is the locked block, else prevote nil.
   Timely (:meth:`Synchrony.timely`): the block's time ``t`` and the local time
   ``received`` at which the proposal arrived satisfy ``received - MSGDELAY(r) -
   PRECISION <= t <= received + PRECISION``; a validator's own proposal is timely.
3. In step propose, a proposal with ``0 <= pol_round < r`` and 2f+1 prevotes for
   it in ``pol_round``: prevote it if valid and the lock is no newer than
   ``pol_round`` or is this block (the proof of lock change), else nil.
4. In step prevote, 2f+1 prevotes of any kind in r, first time: arm timeoutPrevote(r).
5. A valid proposal of round r with 2f+1 prevotes for it in r, first time, in
   step prevote or later: in step prevote lock it and precommit it; in any case
   it becomes the valid block with round r.
6. In step prevote, 2f+1 prevotes for nil: precommit nil.
7. 2f+1 precommits of any kind in r, first time: arm timeoutPrecommit(r).
8. A valid block with 2f+1 precommits for it in any round: decide it.
9. f+1 of the voting power has sent messages for rounds above r: start the
   highest such round (the highest round that validators holding more than a
   third of the power have all reached).
10. Timeouts: propose → prevote nil; prevote → precommit nil; precommit → next
    round. A timeout of round r lasts ``base + delta * r`` milliseconds.

Timeliness is judged only for a block proposed for the first time: a
re-proposal (rule 3) carries a block that 2f+1 prevoted, which includes more
than f+1 correct validators that found it timely, and rules 5 and 8 do not look
at time at all. An untimely proposal is reported with :class:`Untimely`.

A block is judged by its hash: a proposal of any round (or of a round the
engine has not reached) supplies the block for rules 5 and 8. Every validator
arms timeoutPropose, the proposer included, so a proposer whose private
validator refuses to sign (after a restart) does not stall the round.

Votes for rounds more than ``FUTURE_ROUNDS`` ahead are not stored (a faulty
validator could otherwise fill memory) but still count, once their signature
checks, towards rule 9. Up to ``MAX_PROPOSALS_PER_ROUND`` distinct proposals
are kept per round, so an equivocating proposer cannot hide the block the
others decide.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum
from typing import Final, Protocol

from ledger_core.consensus.votes import AddResult, VoteSet
from ledger_core.types.block import Block
from ledger_core.types.proposal import Proposal
from ledger_core.types.validators import ValidatorSet
from ledger_core.types.vote import PRECOMMIT, PREVOTE, Commit, DuplicateVoteEvidence, Vote

FUTURE_ROUNDS: Final = 64
MAX_PROPOSALS_PER_ROUND: Final = 4


class Step(IntEnum):
    """Where a round is."""

    PROPOSE = 1
    PREVOTE = 2
    PRECOMMIT = 3


@dataclass(frozen=True, slots=True)
class Timeouts:
    """Round timeouts in milliseconds: ``base + delta * round`` per step."""

    propose_ms: int = 3000
    propose_delta_ms: int = 500
    prevote_ms: int = 1000
    prevote_delta_ms: int = 500
    precommit_ms: int = 1000
    precommit_delta_ms: int = 500

    def delay_ms(self, step: Step, round_: int) -> int:
        """How long the timeout of ``step`` lasts in round ``round_``."""
        if step is Step.PROPOSE:
            return self.propose_ms + self.propose_delta_ms * round_
        if step is Step.PREVOTE:
            return self.prevote_ms + self.prevote_delta_ms * round_
        return self.precommit_ms + self.precommit_delta_ms * round_


@dataclass(frozen=True, slots=True)
class Synchrony:
    """The bounds of proposer-based timestamps, in milliseconds (genesis parameters).

    ``precision_ms`` (PRECISION): how far apart the clocks of two correct
    validators may read. ``message_delay_ms`` (MSGDELAY): how long a proposal may
    take to reach every correct validator in round 0; it grows by half of itself
    every round, so a network slower than assumed still decides in a later round.
    """

    precision_ms: int = 500
    message_delay_ms: int = 3000

    def message_delay_at(self, round_: int) -> int:
        """MSGDELAY in round ``round_``: ``message_delay_ms * (1 + round_ / 2)``, in
        whole milliseconds."""
        return self.message_delay_ms + self.message_delay_ms * round_ // 2

    def earliest(self, received_ms: int, round_: int) -> int:
        """The oldest block time a proposal received at ``received_ms`` may carry."""
        return received_ms - self.message_delay_at(round_) - self.precision_ms

    def latest(self, received_ms: int) -> int:
        """The newest block time a proposal received at ``received_ms`` may carry."""
        return received_ms + self.precision_ms

    def timely(self, time_ms: int, received_ms: int, round_: int) -> bool:
        """Whether a block stamped ``time_ms``, proposed in round ``round_`` and received
        at local time ``received_ms``, may be prevoted."""
        return self.earliest(received_ms, round_) <= time_ms <= self.latest(received_ms)


@dataclass(frozen=True, slots=True)
class Broadcast:
    """Send ``message`` to the other validators; ``own``: signed by this validator."""

    message: Proposal | Vote
    own: bool = True


@dataclass(frozen=True, slots=True)
class ScheduleTimeout:
    """Call :meth:`Engine.on_timeout` with these arguments after ``delay_ms``."""

    height: int
    round: int
    step: Step
    delay_ms: int


@dataclass(frozen=True, slots=True)
class Decide:
    """``block`` is decided at its height; ``commit`` proves it."""

    block: Block
    commit: Commit


@dataclass(frozen=True, slots=True)
class EvidenceFound:
    """A validator signed two conflicting votes."""

    evidence: DuplicateVoteEvidence


@dataclass(frozen=True, slots=True)
class Untimely:
    """A proposal whose block time was not timely when it arrived: prevoted nil."""

    proposal: Proposal
    received_ms: int
    earliest_ms: int
    latest_ms: int


type Effect = Broadcast | ScheduleTimeout | Decide | EvidenceFound | Untimely


class Host(Protocol):
    """What the engine needs from the node that runs it.

    ``propose_block``: a new block for the height, stamped with the host's clock
    (None: nothing to propose, or not yet: the host's clock has not passed the
    previous block's time, and the host calls :meth:`Engine.retry_proposal` when it
    has); ``validate_block``: whether a block is a valid next block (the same verdict
    on every honest node); ``sign_proposal`` / ``sign_vote``: the signed message (a
    vote possibly with the timestamp of an identical earlier signature), or None when
    signing could be a double sign; ``now_ms``: the local clock in Unix milliseconds.
    """

    def propose_block(self, height: int, round_: int) -> Block | None: ...

    def validate_block(self, block: Block) -> bool: ...

    def sign_proposal(self, proposal: Proposal) -> Proposal | None: ...

    def sign_vote(self, vote: Vote) -> Vote | None: ...

    def now_ms(self) -> int: ...


class Engine:
    """One validator's (or observer's, with no address) consensus state machine."""

    def __init__(
        self,
        chain_id: str,
        address: str | None,
        host: Host,
        timeouts: Timeouts | None = None,
        synchrony: Synchrony | None = None,
    ) -> None:
        self.chain_id = chain_id
        self.address = address
        self.host = host
        self.timeouts = timeouts or Timeouts()
        self.synchrony = synchrony or Synchrony()
        self.height = 0
        self.round = 0
        self.step = Step.PROPOSE
        self.decided: Block | None = None
        self.validators: ValidatorSet | None = None
        self.previous_time_ms = 0
        self.locked: Block | None = None
        self.locked_round = -1
        self.valid: Block | None = None
        self.valid_round = -1
        self.proposals: dict[int, dict[str, Proposal]] = {}
        self.blocks: dict[str, Block] = {}
        self.received: dict[tuple[int, str], int] = {}
        self.prevotes: dict[int, VoteSet] = {}
        self.precommits: dict[int, VoteSet] = {}
        self._validity: dict[str, bool] = {}
        self._max_round: dict[str, int] = {}
        self._prevote_timeout: set[int] = set()
        self._precommit_timeout: set[int] = set()
        self._rule5: set[int] = set()
        self._effects: list[Effect] = []

    # -- inputs --------------------------------------------------------------------

    def start(self, height: int, validators: ValidatorSet, previous_time_ms: int) -> list[Effect]:
        """Begin ``height`` with its validator set; ``previous_time_ms`` is the previous
        block's time (a new block must be stamped after it; votes are not stamped
        before it)."""
        self.height = height
        self.validators = validators
        self.previous_time_ms = previous_time_ms
        self.decided = None
        self.locked, self.locked_round = None, -1
        self.valid, self.valid_round = None, -1
        self.proposals = {}
        self.blocks = {}
        self.received = {}
        self.prevotes = {}
        self.precommits = {}
        self._validity = {}
        self._max_round = {}
        self._prevote_timeout = set()
        self._precommit_timeout = set()
        self._rule5 = set()
        self._start_round(0)
        self._run_rules()
        return self._flush()

    def on_proposal(self, proposal: Proposal, received_ms: int | None = None) -> list[Effect]:
        """A proposal from the network (or the WAL), received at local time
        ``received_ms`` (default: now)."""
        when = self.host.now_ms() if received_ms is None else received_ms
        if self._accept_proposal(proposal, when):
            self._run_rules()
        return self._flush()

    def retry_proposal(self, height: int, round_: int) -> list[Effect]:
        """The host's clock has passed the previous block's time: propose now if this
        validator is still the proposer of ``(height, round_)`` in step propose and has
        not proposed there."""
        if (
            self.decided is not None
            or self.validators is None
            or (height, round_) != (self.height, self.round)
            or self.step is not Step.PROPOSE
            or self.address is None
            or self.validators.proposer(round_).address != self.address
            or any(p.proposer == self.address for p in self.proposals.get(round_, {}).values())
        ):
            return []
        self._propose(round_)
        self._run_rules()
        return self._flush()

    def on_vote(self, vote: Vote) -> list[Effect]:
        """A vote from the network (or the WAL)."""
        if self._accept_vote(vote, verified=False):
            self._run_rules()
        return self._flush()

    def on_timeout(self, height: int, round_: int, step: Step) -> list[Effect]:
        """A timeout armed by :class:`ScheduleTimeout` has fired."""
        if self.decided is not None or height != self.height or round_ != self.round:
            return []
        if step is Step.PROPOSE and self.step is Step.PROPOSE:
            self._vote(PREVOTE, None)
            self.step = Step.PREVOTE
        elif step is Step.PREVOTE and self.step is Step.PREVOTE:
            self._vote(PRECOMMIT, None)
            self.step = Step.PRECOMMIT
        elif step is Step.PRECOMMIT:
            self._start_round(round_ + 1)
        else:
            return []
        self._run_rules()
        return self._flush()

    # -- what the host may read ------------------------------------------------------

    @property
    def is_validator(self) -> bool:
        """Whether this engine votes at its height."""
        return (
            self.address is not None
            and self.validators is not None
            and self.validators.get(self.address) is not None
        )

    def messages(self) -> list[Proposal | Vote]:
        """What to send again when the height stalls: the proposals of this round and of
        the valid round, and every vote of both rounds."""
        rounds = sorted({self.round, max(self.valid_round, 0)})
        found: list[Proposal | Vote] = []
        for r in rounds:
            found.extend(self.proposals.get(r, {}).values())
        for r in rounds:
            for sets in (self.prevotes, self.precommits):
                if r in sets:
                    found.extend(sets[r].votes.values())
        return found

    # -- rules -------------------------------------------------------------------------

    def _flush(self) -> list[Effect]:
        effects, self._effects = self._effects, []
        return effects

    def _start_round(self, round_: int) -> None:
        assert self.validators is not None
        self.round = round_
        self.step = Step.PROPOSE
        proposer = self.validators.proposer(round_)
        if self.address is not None and proposer.address == self.address:
            self._propose(round_)
        self._schedule(Step.PROPOSE, round_)

    def _propose(self, round_: int) -> None:
        """Propose the valid block (its time unchanged) or a new one from the host; the
        proposal's timestamp is the block's time."""
        assert self.address is not None
        if self.valid is not None:
            block: Block | None = self.valid
            pol_round = self.valid_round
        else:
            block = self.host.propose_block(self.height, round_)
            pol_round = -1
        if block is None:
            return
        proposal = Proposal(
            self.height, round_, pol_round, block, block.header.time_ms, self.address
        )
        signed = self.host.sign_proposal(proposal)
        if signed is not None:
            self._effects.append(Broadcast(signed))
            self._store_proposal(signed, signed.timestamp)

    def _schedule(self, step: Step, round_: int) -> None:
        self._effects.append(
            ScheduleTimeout(self.height, round_, step, self.timeouts.delay_ms(step, round_))
        )

    def _is_valid(self, block_hash: str) -> bool:
        known = self._validity.get(block_hash)
        if known is None:
            known = self.host.validate_block(self.blocks[block_hash])
            self._validity[block_hash] = known
        return known

    def _vote(self, vote_type: str, block_hash: str | None) -> None:
        if not self.is_validator:
            return
        assert self.address is not None
        floor = self.previous_time_ms
        if block_hash is not None:
            floor = max(floor, self.blocks[block_hash].header.time_ms)
        vote = Vote(
            vote_type,
            self.height,
            self.round,
            block_hash,
            max(self.host.now_ms(), floor),
            self.address,
        )
        signed = self.host.sign_vote(vote)
        if signed is None:
            return
        self._effects.append(Broadcast(signed))
        self._accept_vote(signed, verified=True)

    def _run_rules(self) -> None:
        while self.decided is None and self._apply_one_rule():
            pass

    def _apply_one_rule(self) -> bool:
        """Apply the first rule that fires; whether one did."""
        if self._decide():
            return True
        target = self._skip_target()
        if target > self.round:
            self._start_round(target)
            return True
        r = self.round
        prevotes = self.prevotes.get(r)
        if self.step is Step.PROPOSE:
            for proposal in self.proposals.get(r, {}).values():
                if self._prevote_for(proposal):
                    return True
        if self.step >= Step.PREVOTE and r not in self._rule5 and prevotes is not None:
            for block_hash in self.proposals.get(r, {}):
                if prevotes.has_quorum_for(block_hash) and self._is_valid(block_hash):
                    self._rule5.add(r)
                    block = self.blocks[block_hash]
                    if self.step is Step.PREVOTE:
                        self.locked, self.locked_round = block, r
                        self._vote(PRECOMMIT, block_hash)
                        self.step = Step.PRECOMMIT
                    self.valid, self.valid_round = block, r
                    return True
        if self.step is Step.PREVOTE and prevotes is not None:
            if prevotes.has_quorum_for(None):
                self._vote(PRECOMMIT, None)
                self.step = Step.PRECOMMIT
                return True
            if r not in self._prevote_timeout and prevotes.has_quorum_any():
                self._prevote_timeout.add(r)
                self._schedule(Step.PREVOTE, r)
                return True
        precommits = self.precommits.get(r)
        if r not in self._precommit_timeout and precommits and precommits.has_quorum_any():
            self._precommit_timeout.add(r)
            self._schedule(Step.PRECOMMIT, r)
            return True
        return False

    def _prevote_for(self, proposal: Proposal) -> bool:
        """Rules 2 and 3 for one proposal of the current round; whether it applied."""
        block_hash = proposal.block_hash
        locked_hash = None if self.locked is None else self.locked.header.hash
        if proposal.pol_round == -1:
            unlocked = self.locked_round == -1 or locked_hash == block_hash
            acceptable = unlocked and self._timely(proposal)
        else:
            pol = self.prevotes.get(proposal.pol_round)
            if pol is None or not pol.has_quorum_for(block_hash):
                return False
            acceptable = self.locked_round <= proposal.pol_round or locked_hash == block_hash
        choice = block_hash if acceptable and self._is_valid(block_hash) else None
        self._vote(PREVOTE, choice)
        self.step = Step.PREVOTE
        return True

    def _timely(self, proposal: Proposal) -> bool:
        """Whether a first-time proposal's block time was timely when it arrived (and
        :class:`Untimely` when not)."""
        received = self.received[(proposal.round, proposal.block_hash)]
        time_ms = proposal.block.header.time_ms
        if self.synchrony.timely(time_ms, received, proposal.round):
            return True
        self._effects.append(
            Untimely(
                proposal,
                received,
                self.synchrony.earliest(received, proposal.round),
                self.synchrony.latest(received),
            )
        )
        return False

    def _decide(self) -> bool:
        for round_, precommits in self.precommits.items():
            reached, block_hash = precommits.majority()
            if reached and block_hash is not None and block_hash in self.blocks:
                if not self._is_valid(block_hash):
                    continue
                block = self.blocks[block_hash]
                self.decided = block
                self._effects.append(Decide(block, precommits.commit(block_hash)))
                self.round = round_
                return True
        return False

    def _skip_target(self) -> int:
        """The highest round above the current one reached by more than 1/3 of the power."""
        assert self.validators is not None
        ahead = sorted(((r, a) for a, r in self._max_round.items() if r > self.round), reverse=True)
        seen: list[str] = []
        for round_, address in ahead:
            seen.append(address)
            if self.validators.has_one_third(self.validators.power_of(seen)):
                return round_
        return -1

    # -- accepting messages ------------------------------------------------------------

    def _note_round(self, address: str, round_: int) -> None:
        if round_ > self._max_round.get(address, -1):
            self._max_round[address] = round_

    def _accept_proposal(self, proposal: Proposal, received_ms: int) -> bool:
        if self.decided is not None or self.validators is None:
            return False
        if proposal.height != self.height or proposal.round > self.round + FUTURE_ROUNDS:
            return False
        if proposal.timestamp != proposal.block.header.time_ms:
            return False  # a proposal's timestamp is its block's time
        known = self.proposals.get(proposal.round, {})
        if proposal.block_hash in known or len(known) >= MAX_PROPOSALS_PER_ROUND:
            return False
        proposer = self.validators.proposer(proposal.round)
        if proposal.proposer != proposer.address:
            return False
        if not proposal.verify(self.chain_id, proposer.public_key):
            return False
        # A validator's own proposal (replayed from its WAL) was timely when it made it.
        own = proposal.proposer == self.address
        self._store_proposal(proposal, proposal.timestamp if own else received_ms)
        return True

    def _store_proposal(self, proposal: Proposal, received_ms: int) -> None:
        self.proposals.setdefault(proposal.round, {})[proposal.block_hash] = proposal
        self.blocks.setdefault(proposal.block_hash, proposal.block)
        self.received.setdefault((proposal.round, proposal.block_hash), received_ms)
        self._note_round(proposal.proposer, proposal.round)

    def _vote_set(self, vote: Vote) -> VoteSet:
        assert self.validators is not None
        sets = self.prevotes if vote.type == PREVOTE else self.precommits
        found = sets.get(vote.round)
        if found is None:
            found = VoteSet(self.chain_id, self.height, vote.round, vote.type, self.validators)
            sets[vote.round] = found
        return found

    def _accept_vote(self, vote: Vote, *, verified: bool) -> bool:
        if self.decided is not None or self.validators is None or vote.height != self.height:
            return False
        member = self.validators.get(vote.validator)
        if member is None:
            return False
        if vote.round > self.round + FUTURE_ROUNDS:
            if vote.round > self._max_round.get(vote.validator, -1) and vote.verify(
                self.chain_id, member.public_key
            ):
                self._note_round(vote.validator, vote.round)
                return True
            return False
        added = self._vote_set(vote).add(vote, verified=verified)
        if added.result is AddResult.CONFLICT:
            assert added.evidence is not None
            self._effects.append(EvidenceFound(added.evidence))
            return False
        if added.result is not AddResult.ADDED:
            return False
        self._note_round(vote.validator, vote.round)
        return True
