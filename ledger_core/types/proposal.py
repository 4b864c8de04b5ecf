"""Proposals and the consensus channel's messages.

A proposal signs ``{"block_hash", "chain_id", "height", "kind": "proposal",
"pol_round", "proposer", "round", "timestamp"}``; the message carries the whole
block, whose header hash must be ``block_hash``. On the ``consensus`` channel a
message is ``{"proposal": ...}`` or ``{"vote": ...}`` in canonical JSON.
Decoders raise :class:`~ledger_core.types.vote.MessageError` naming the field.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from ledger_core.types import codec
from ledger_core.types.block import Block
from ledger_core.types.crypto import ADDRESS_RE, SigningKey, verify
from ledger_core.types.fields import expect_int, expect_keys, expect_object, expect_str
from ledger_core.types.vote import (
    MAX_HEIGHT,
    MAX_MESSAGE_BYTES,
    MAX_ROUND,
    MAX_TIMESTAMP,
    MessageError,
    Vote,
    signature_field,
)


@dataclass(frozen=True, slots=True)
class Proposal:
    """A proposer's block for a height and round, with the round of its proof of lock."""

    height: int
    round: int
    pol_round: int
    block: Block
    timestamp: int
    proposer: str
    signature: bytes = b""

    @property
    def block_hash(self) -> str:
        return self.block.header.hash

    def sign_bytes(self, chain_id: str) -> bytes:
        return codec.encode(
            {
                "block_hash": self.block_hash,
                "chain_id": chain_id,
                "height": self.height,
                "kind": "proposal",
                "pol_round": self.pol_round,
                "proposer": self.proposer,
                "round": self.round,
                "timestamp": self.timestamp,
            }
        )

    def signed(self, key: SigningKey, chain_id: str) -> Proposal:
        return replace(self, signature=key.sign(self.sign_bytes(chain_id)))

    def verify(self, chain_id: str, public_key: bytes) -> bool:
        return verify(public_key, self.signature, self.sign_bytes(chain_id))

    def to_json(self) -> codec.Value:
        return {
            "height": self.height,
            "round": self.round,
            "pol_round": self.pol_round,
            "block": self.block.to_json(),
            "timestamp": self.timestamp,
            "proposer": self.proposer,
            "signature": self.signature.hex(),
        }

    @classmethod
    def from_json(cls, value: object, field: str = "proposal") -> Proposal:
        """A well-formed proposal (block height equals the proposal's), or MessageError."""
        obj = expect_object(value, field)
        expect_keys(obj, field, {"height", "round", "pol_round", "block", "timestamp",
                           "proposer", "signature"}, set())  # fmt: skip
        height = expect_int(obj["height"], f"{field}.height", 1, MAX_HEIGHT)
        round_ = expect_int(obj["round"], f"{field}.round", 0, MAX_ROUND)
        pol_round = expect_int(obj["pol_round"], f"{field}.pol_round", -1, MAX_ROUND)
        if pol_round >= round_:
            raise MessageError(f"{field}.pol_round", "must be -1 or below the round")
        timestamp = expect_int(obj["timestamp"], f"{field}.timestamp", 0, MAX_TIMESTAMP)
        proposer = expect_str(obj["proposer"], f"{field}.proposer", ADDRESS_RE)
        signature = signature_field(obj["signature"], f"{field}.signature")
        block = Block.from_json(obj["block"], f"{field}.block")
        if block.header.height != height:
            raise MessageError(f"{field}.block", "the block is for another height")
        return cls(height, round_, pol_round, block, timestamp, proposer, signature)


type ConsensusMessage = Proposal | Vote


def encode_message(message: ConsensusMessage) -> bytes:
    """The bytes sent on the ``consensus`` channel."""
    kind = "proposal" if isinstance(message, Proposal) else "vote"
    return codec.encode({kind: message.to_json()})


def decode_message(data: bytes) -> ConsensusMessage:
    """A proposal or vote from ``consensus`` channel bytes, or MessageError."""
    try:
        value = codec.decode(data, MAX_MESSAGE_BYTES)
    except codec.DecodeError as err:
        raise MessageError("message", str(err)) from None
    if not isinstance(value, dict) or len(value) != 1:
        raise MessageError("message", 'must be {"proposal": ...} or {"vote": ...}')
    ((kind, body),) = value.items()
    if kind == "proposal":
        return Proposal.from_json(body)
    if kind == "vote":
        return Vote.from_json(body)
    raise MessageError("message", f"unknown message kind {kind!r}")
