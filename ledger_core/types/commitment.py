"""The state root's shape and its proofs: what a client needs to check a state entry.

Each key belongs to one of 4,096 buckets (the first 12 bits of SHA-256 of the
key). A bucket's root is the Merkle root of ``canonical([key, value])`` leaves
in key order; the state root is the Merkle root of the 4,096 bucket roots. A
commit rehashes only the buckets that changed, and a proof of one key is its
path in its bucket plus its bucket's path in the top tree (12 hashes).

The state machine keeps the tree (:mod:`ledger_core.state.commitment`); this
module is the format alone, so a light client can verify a :class:`Proof`
against the app hash of a header it trusts.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Final

from ledger_core.types import codec, merkle

BUCKET_BITS: Final = 12
BUCKETS: Final = 1 << BUCKET_BITS


def bucket_of(key: str) -> int:
    """The bucket a key belongs to: the first 12 bits of SHA-256 of the key."""
    digest = hashlib.sha256(key.encode("utf-8")).digest()
    return (digest[0] << 8 | digest[1]) >> (16 - BUCKET_BITS)


def leaf(key: str, value: codec.Value) -> bytes:
    """The leaf bytes of one state entry: ``canonical([key, value])``."""
    return codec.encode([key, value])


def leaf_from_encoded(key: str, encoded_value: bytes) -> bytes:
    """:func:`leaf` for a value already in canonical bytes (same result, one encode less)."""
    return b"[" + codec.encode(key) + b"," + encoded_value + b"]"


@dataclass(frozen=True, slots=True)
class Proof:
    """That ``key`` has ``value`` (or, with value None, is absent) under a state root."""

    key: str
    value: codec.Value
    bucket: int
    index: int
    bucket_size: int
    bucket_path: tuple[bytes, ...]
    top_path: tuple[bytes, ...]

    def to_json(self) -> codec.Value:
        """A JSON form for the API."""
        return {
            "key": self.key,
            "value": self.value,
            "bucket": self.bucket,
            "index": self.index,
            "bucket_size": self.bucket_size,
            "bucket_path": [h.hex() for h in self.bucket_path],
            "top_path": [h.hex() for h in self.top_path],
        }


def verify_proof(proof: Proof, root: bytes) -> bool:
    """Whether ``proof`` shows its key and value under the state ``root``."""
    if proof.bucket != bucket_of(proof.key):
        return False
    entry_hash = merkle.leaf_hash(leaf(proof.key, proof.value))
    bucket_root = merkle.root_from_path(
        entry_hash, proof.index, proof.bucket_size, proof.bucket_path
    )
    if bucket_root is None:
        return False
    return merkle.root_from_path(bucket_root, proof.bucket, BUCKETS, proof.top_path) == root
