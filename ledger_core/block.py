"""Blocks: a signed header over an ordered list of transactions.

The header holds the chain id, height, time (Unix seconds), the previous
block's hash, the RFC 6962 root of the transactions' wire bytes, the app hash
*after* executing the block, and the proposer's address; the proposer signs its
canonical bytes. The block hash is the SHA-256 of those bytes. (Commit
signatures of a validator set are added by the consensus layer.)
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from ledger_core import codec, merkle
from ledger_core.crypto import SigningKey, verify

GENESIS_PREVIOUS = "00" * 32


@dataclass(frozen=True, slots=True)
class Header:
    """What a block commits to."""

    chain_id: str
    height: int
    time: int
    previous_hash: str
    txs_root: str
    tx_count: int
    app_hash: str
    proposer: str

    def to_json(self) -> codec.Value:
        """The canonical JSON value of the header."""
        return {
            "chain_id": self.chain_id,
            "height": self.height,
            "time": self.time,
            "previous_hash": self.previous_hash,
            "txs_root": self.txs_root,
            "tx_count": self.tx_count,
            "app_hash": self.app_hash,
            "proposer": self.proposer,
        }

    def encode(self) -> bytes:
        """Canonical bytes (signed and hashed)."""
        return codec.encode(self.to_json())

    @property
    def hash(self) -> str:
        """The block hash, hex."""
        return hashlib.sha256(self.encode()).hexdigest()

    @classmethod
    def from_json(cls, value: codec.Value) -> Header:
        """A header from its JSON value (as stored by this node)."""
        assert isinstance(value, dict)
        return cls(
            chain_id=str(value["chain_id"]),
            height=int(value["height"]),  # type: ignore[arg-type]
            time=int(value["time"]),  # type: ignore[arg-type]
            previous_hash=str(value["previous_hash"]),
            txs_root=str(value["txs_root"]),
            tx_count=int(value["tx_count"]),  # type: ignore[arg-type]
            app_hash=str(value["app_hash"]),
            proposer=str(value["proposer"]),
        )


@dataclass(frozen=True, slots=True)
class Block:
    """A header, the proposer's signature over it, and the transactions' wire bytes."""

    header: Header
    signature: bytes
    txs: tuple[bytes, ...]

    def verify(self, proposer_public_key: bytes) -> bool:
        """Whether the proposer signed this header and the transactions match its root."""
        if merkle.root(list(self.txs)).hex() != self.header.txs_root:
            return False
        if len(self.txs) != self.header.tx_count:
            return False
        return verify(proposer_public_key, self.signature, self.header.encode())


def make_block(
    key: SigningKey,
    *,
    chain_id: str,
    height: int,
    time: int,
    previous_hash: str,
    txs: list[bytes],
    app_hash: bytes,
) -> Block:
    """Build and sign a block."""
    header = Header(
        chain_id=chain_id,
        height=height,
        time=time,
        previous_hash=previous_hash,
        txs_root=merkle.root(txs).hex(),
        tx_count=len(txs),
        app_hash=app_hash.hex(),
        proposer=key.address,
    )
    return Block(header, key.sign(header.encode()), tuple(txs))
