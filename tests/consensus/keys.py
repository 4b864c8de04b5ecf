"""Deterministic keys and small builders shared by the consensus unit tests."""

from __future__ import annotations

from ledger_core.types.crypto import SigningKey
from ledger_core.types.validators import ValidatorSet
from ledger_core.types.vote import PRECOMMIT, Commit, Vote
from tests.state.chain import CHAIN_ID, key


def validator_keys(count: int, prefix: str = "val") -> list[SigningKey]:
    """``count`` keys, sorted by address (the order of a validator set)."""
    return sorted((key(f"{prefix}-{i}") for i in range(count)), key=lambda k: k.address)


def validator_set(keys: list[SigningKey], powers: list[int] | None = None) -> ValidatorSet:
    powers = powers or [10] * len(keys)
    return ValidatorSet((k.public_key, p) for k, p in zip(keys, powers, strict=True))


def vote(
    signer: SigningKey,
    vote_type: str,
    height: int,
    round_: int,
    block_hash: str | None,
    timestamp: int = 1_000,
) -> Vote:
    return Vote(vote_type, height, round_, block_hash, timestamp, signer.address).signed(
        signer, CHAIN_ID
    )


def commit(
    signers: list[SigningKey], height: int, block_hash: str, round_: int = 0, timestamp: int = 1_000
) -> Commit:
    return Commit.from_votes(
        [
            vote(s, PRECOMMIT, height, round_, block_hash, timestamp + i)
            for i, s in enumerate(signers)
        ]
    )
