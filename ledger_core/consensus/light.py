"""Light verification: trusting a header because enough validators signed its commit.

A node that does not take part in consensus (a meter, a follower, a node
restoring a snapshot) trusts a header when its commit carries valid precommits
from more than two thirds of the power of the validator set of that height,
and that set is the one the chain said would come: a header names the hash of
its own set (``validators_hash``) and of the next height's
(``next_validators_hash``), so a client that trusts header ``h`` and is shown
set ``S`` for ``h+1`` checks ``hash(S)`` against the trusted header before
counting signatures (*adjacent* verification).

To jump over heights (*skipping* verification, as in CometBFT's light client)
the commit must also carry signatures from more than one third of the power of
the last set the client trusts: at least one honest validator it already trusts
then vouches for the new header, as long as fewer than a third of that set is
faulty. Validator-set changes are bounded (``validator_update`` moves at most a
third of the power per height) so adjacent verification always applies.

A header's time is the proposer's stamp, which the validators that prevoted the
block found timely; a light client takes it as the commit vouches for it and
checks only that it is after the trusted header's.
"""

from __future__ import annotations

from dataclasses import dataclass

from ledger_core.types.block import GENESIS_PREVIOUS, Header
from ledger_core.types.validators import ValidatorSet
from ledger_core.types.vote import Commit


class LightError(ValueError):
    """A header or commit that cannot be trusted; the message says why."""


def commit_power(chain_id: str, validators: ValidatorSet, commit: Commit, *, strict: bool) -> int:
    """The power of the members of ``validators`` whose precommit in ``commit`` is valid.

    ``strict``: every signature must be a member's and valid (LightError otherwise);
    without it, signatures of non-members are ignored (skipping verification).
    """
    power = 0
    for vote in commit.votes():
        member = validators.get(vote.validator)
        if member is None:
            if strict:
                raise LightError(f"{vote.validator} signed the commit but is not a validator")
            continue
        if not vote.verify(chain_id, member.public_key):
            raise LightError(f"the precommit of {vote.validator} has a bad signature")
        power += member.power
    return power


def verify_commit(chain_id: str, validators: ValidatorSet, header: Header, commit: Commit) -> None:
    """That ``commit`` commits ``header`` with more than 2/3 of ``validators``, the
    header's own set; LightError otherwise."""
    if header.chain_id != chain_id:
        raise LightError(f"the header is of chain {header.chain_id!r}, not {chain_id!r}")
    if validators.hash != header.validators_hash:
        raise LightError("the validator set is not the one the header names")
    if (commit.height, commit.block_hash) != (header.height, header.hash):
        raise LightError("the commit is for another block")
    power = commit_power(chain_id, validators, commit, strict=True)
    if not validators.has_quorum(power):
        raise LightError(
            f"the commit carries {power} of {validators.total} voting power; "
            "more than two thirds is needed"
        )


@dataclass
class LightClient:
    """Trusts a chain of headers from a starting point (genesis or a trusted header).

    ``header`` is the last trusted header (None: only genesis is trusted), and
    ``next_validators`` the set of the height after it.
    """

    chain_id: str
    next_validators: ValidatorSet
    header: Header | None = None

    @property
    def height(self) -> int:
        """The height of the last trusted header (0: genesis)."""
        return 0 if self.header is None else self.header.height

    def update(
        self,
        header: Header,
        commit: Commit,
        validators: ValidatorSet,
        next_validators: ValidatorSet,
    ) -> None:
        """Trust ``header`` (with its set and the next) or raise LightError."""
        if header.height <= self.height:
            raise LightError(f"height {header.height} is not above the trusted {self.height}")
        if next_validators.hash != header.next_validators_hash:
            raise LightError("the next validator set is not the one the header names")
        if self.header is not None and header.time_ms <= self.header.time_ms:
            raise LightError("the header's time is not after the trusted header's")
        if header.height == self.height + 1:
            expected_previous = GENESIS_PREVIOUS if self.header is None else self.header.hash
            if header.previous_hash != expected_previous:
                raise LightError("the header does not follow the trusted header")
            if header.validators_hash != self.next_validators.hash:
                raise LightError("the header's validator set is not the one announced")
            verify_commit(self.chain_id, validators, header, commit)
        else:
            verify_commit(self.chain_id, validators, header, commit)
            trusted = commit_power(self.chain_id, self.next_validators, commit, strict=False)
            if not self.next_validators.has_one_third(trusted):
                raise LightError(
                    f"only {trusted} of the trusted power {self.next_validators.total} signed; "
                    "more than one third is needed to skip heights"
                )
        self.header = header
        self.next_validators = next_validators
