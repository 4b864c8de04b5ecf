"""Votes and what is built of them: commits and duplicate-vote evidence.

Everything signed is canonical JSON (``ledger_core.types.codec``) bound to the
chain id, so a signature from one chain means nothing on another. A vote signs
``{"block_hash", "chain_id", "height", "kind": "vote", "round", "timestamp",
"type", "validator"}``; ``type`` is ``prevote`` or ``precommit``,
``block_hash`` is the voted block's hash or null (nil), ``timestamp`` is the
validator's clock in Unix milliseconds. Proposals are in
:mod:`ledger_core.types.proposal`.

A commit is the set of precommits for one block in one round, kept as
``(validator, timestamp, signature)`` triples in address order; each triple
with the commit's height, round and block hash rebuilds the precommit it came
from. Evidence is two votes of one validator for the same height, round and
type but different blocks, in a canonical order (nil first, then by hash).

Decoders take untrusted bytes or JSON values and either return a well-formed
object or raise :class:`~ledger_core.types.fields.FieldError` (:class:`MessageError` for the
consensus-specific checks) naming the field; they never check
signatures against validator sets (that is the caller's, with the right set).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, replace
from typing import Final

from ledger_core.types import codec
from ledger_core.types.crypto import ADDRESS_RE, SIGNATURE_RE, SigningKey, verify
from ledger_core.types.fields import FieldError, expect_int, expect_keys, expect_object, expect_str

PREVOTE: Final = "prevote"
PRECOMMIT: Final = "precommit"
VOTE_TYPES: Final = (PREVOTE, PRECOMMIT)
HASH_RE: Final = re.compile(r"[0-9a-f]{64}")
MAX_HEIGHT: Final = 2**62
MAX_ROUND: Final = 2**31
MAX_TIMESTAMP: Final = 2**50
MAX_COMMIT_SIGNATURES: Final = 100
MAX_VOTE_BYTES: Final = 4096
MAX_MESSAGE_BYTES: Final = 96 * 1024 * 1024

# Steps as the private validator orders them within a round.
STEP_PROPOSE: Final = 1
STEP_PREVOTE: Final = 2
STEP_PRECOMMIT: Final = 3


class MessageError(FieldError):
    """A consensus message that is malformed: ``field`` names where."""


def hash_or_none(value: object, field: str) -> str | None:
    """A block hash (64 hex digits) or None."""
    if value is None:
        return None
    return expect_str(value, field, HASH_RE)


def signature_field(value: object, field: str) -> bytes:
    """An Ed25519 signature written as 128 hex digits."""
    return bytes.fromhex(expect_str(value, field, SIGNATURE_RE))


@dataclass(frozen=True, slots=True)
class Vote:
    """A prevote or precommit by one validator."""

    type: str
    height: int
    round: int
    block_hash: str | None
    timestamp: int
    validator: str
    signature: bytes = b""

    @property
    def step(self) -> int:
        """The private validator's step of this vote."""
        return STEP_PREVOTE if self.type == PREVOTE else STEP_PRECOMMIT

    def sign_bytes(self, chain_id: str) -> bytes:
        """What the validator signs."""
        return codec.encode(
            {
                "block_hash": self.block_hash,
                "chain_id": chain_id,
                "height": self.height,
                "kind": "vote",
                "round": self.round,
                "timestamp": self.timestamp,
                "type": self.type,
                "validator": self.validator,
            }
        )

    def signed(self, key: SigningKey, chain_id: str) -> Vote:
        """This vote signed by ``key`` (no double-sign protection: see ``privval``)."""
        return replace(self, signature=key.sign(self.sign_bytes(chain_id)))

    def verify(self, chain_id: str, public_key: bytes) -> bool:
        """Whether the signature is ``public_key``'s over this vote on ``chain_id``."""
        return verify(public_key, self.signature, self.sign_bytes(chain_id))

    def to_json(self) -> codec.Value:
        return {
            "type": self.type,
            "height": self.height,
            "round": self.round,
            "block_hash": self.block_hash,
            "timestamp": self.timestamp,
            "validator": self.validator,
            "signature": self.signature.hex(),
        }

    @classmethod
    def from_json(cls, value: object, field: str = "vote") -> Vote:
        """A well-formed vote from its JSON value, or MessageError."""
        obj = expect_object(value, field)
        expect_keys(obj, field, {*_VOTE_FIELDS}, set())
        vote_type = expect_str(obj["type"], f"{field}.type", limit=16)
        if vote_type not in VOTE_TYPES:
            raise MessageError(f"{field}.type", "must be prevote or precommit")
        return cls(
            type=vote_type,
            height=expect_int(obj["height"], f"{field}.height", 1, MAX_HEIGHT),
            round=expect_int(obj["round"], f"{field}.round", 0, MAX_ROUND),
            block_hash=hash_or_none(obj["block_hash"], f"{field}.block_hash"),
            timestamp=expect_int(obj["timestamp"], f"{field}.timestamp", 0, MAX_TIMESTAMP),
            validator=expect_str(obj["validator"], f"{field}.validator", ADDRESS_RE),
            signature=signature_field(obj["signature"], f"{field}.signature"),
        )


_VOTE_FIELDS: Final = (
    "type",
    "height",
    "round",
    "block_hash",
    "timestamp",
    "validator",
    "signature",
)


@dataclass(frozen=True, slots=True)
class CommitSig:
    """One precommit of a commit, without what the commit already says."""

    validator: str
    timestamp: int
    signature: bytes


@dataclass(frozen=True, slots=True)
class Commit:
    """More than two thirds of the precommits for one block in one round."""

    height: int
    round: int
    block_hash: str
    signatures: tuple[CommitSig, ...]

    def votes(self) -> list[Vote]:
        """The precommits this commit holds."""
        return [
            Vote(PRECOMMIT, self.height, self.round, self.block_hash, s.timestamp, s.validator,
                 s.signature)
            for s in self.signatures
        ]  # fmt: skip

    @classmethod
    def from_votes(cls, votes: list[Vote]) -> Commit:
        """The commit of precommits for one block (all of the same height, round and hash)."""
        first = votes[0]
        assert first.block_hash is not None
        assert all(
            (v.type, v.height, v.round, v.block_hash)
            == (PRECOMMIT, first.height, first.round, first.block_hash)
            for v in votes
        )
        return cls(
            first.height,
            first.round,
            first.block_hash,
            tuple(
                CommitSig(v.validator, v.timestamp, v.signature)
                for v in sorted(votes, key=lambda v: v.validator)
            ),
        )

    def to_json(self) -> codec.Value:
        return {
            "height": self.height,
            "round": self.round,
            "block_hash": self.block_hash,
            "signatures": [[s.validator, s.timestamp, s.signature.hex()] for s in self.signatures],
        }

    def encode(self) -> bytes:
        return codec.encode(self.to_json())

    @property
    def hash(self) -> str:
        """SHA-256 of the canonical encoding, hex (``last_commit_hash`` in a header)."""
        return hashlib.sha256(self.encode()).hexdigest()

    @classmethod
    def from_json(cls, value: object, field: str = "commit") -> Commit:
        """A well-formed commit, or MessageError (validators in strictly increasing order)."""
        obj = expect_object(value, field)
        expect_keys(obj, field, {"height", "round", "block_hash", "signatures"}, set())
        raw = obj["signatures"]
        if not isinstance(raw, list) or not raw:
            raise MessageError(f"{field}.signatures", "must be a non-empty list")
        if len(raw) > MAX_COMMIT_SIGNATURES:
            raise MessageError(f"{field}.signatures", f"holds more than {MAX_COMMIT_SIGNATURES}")
        sigs: list[CommitSig] = []
        for i, item in enumerate(raw):
            where = f"{field}.signatures[{i}]"
            if not isinstance(item, list) or len(item) != 3:
                raise MessageError(where, "must be [validator, timestamp, signature]")
            validator = expect_str(item[0], f"{where}[0]", ADDRESS_RE)
            if sigs and validator <= sigs[-1].validator:
                raise MessageError(where, "validators must be in increasing address order")
            sigs.append(
                CommitSig(
                    validator,
                    expect_int(item[1], f"{where}[1]", 0, MAX_TIMESTAMP),
                    signature_field(item[2], f"{where}[2]"),
                )
            )
        return cls(
            height=expect_int(obj["height"], f"{field}.height", 1, MAX_HEIGHT),
            round=expect_int(obj["round"], f"{field}.round", 0, MAX_ROUND),
            block_hash=expect_str(obj["block_hash"], f"{field}.block_hash", HASH_RE),
            signatures=tuple(sigs),
        )


@dataclass(frozen=True, slots=True)
class DuplicateVoteEvidence:
    """Two conflicting votes by one validator: same height, round and type, other blocks."""

    vote_a: Vote
    vote_b: Vote

    @classmethod
    def of(cls, first: Vote, second: Vote) -> DuplicateVoteEvidence:
        """Evidence from two conflicting votes in either order."""
        a, b = sorted((first, second), key=lambda v: v.block_hash or "")
        return cls(a, b)

    @property
    def validator(self) -> str:
        return self.vote_a.validator

    @property
    def height(self) -> int:
        return self.vote_a.height

    @property
    def key(self) -> str:
        """What identifies the offence: validator, height, round and vote type."""
        a = self.vote_a
        return f"{a.validator}/{a.height:012d}/{a.round}/{a.type}"

    def to_json(self) -> codec.Value:
        return {"vote_a": self.vote_a.to_json(), "vote_b": self.vote_b.to_json()}

    def encode(self) -> bytes:
        return codec.encode(self.to_json())

    @property
    def hash(self) -> str:
        return hashlib.sha256(self.encode()).hexdigest()

    @classmethod
    def from_json(cls, value: object, field: str = "evidence") -> DuplicateVoteEvidence:
        """Well-formed evidence (same validator, height, round, type; different blocks;
        canonical order), or MessageError. Signatures are checked by ``evidence.verify``."""
        obj = expect_object(value, field)
        expect_keys(obj, field, {"vote_a", "vote_b"}, set())
        a = Vote.from_json(obj["vote_a"], f"{field}.vote_a")
        b = Vote.from_json(obj["vote_b"], f"{field}.vote_b")
        if (a.validator, a.height, a.round, a.type) != (b.validator, b.height, b.round, b.type):
            raise MessageError(field, "the votes differ in validator, height, round or type")
        if (a.block_hash or "") >= (b.block_hash or ""):
            raise MessageError(field, "the votes are for the same block or out of order")
        return cls(a, b)
