"""The state root (app hash): a two-level RFC 6962 Merkle tree over the state.

Each key belongs to one of 4,096 buckets (the first 12 bits of SHA-256 of the
key). A bucket's root is the Merkle root of ``canonical([key, value])`` leaves
in key order; the state root is the Merkle root of the 4,096 bucket roots. A
commit rehashes only the buckets that changed, and a proof of one key is its
path in its bucket plus its bucket's path in the top tree (12 hashes).
"""

from __future__ import annotations

import bisect
import hashlib
from dataclasses import dataclass
from typing import Final

from ledger_core import codec, merkle

BUCKET_BITS: Final = 12
BUCKETS: Final = 1 << BUCKET_BITS


def bucket_of(key: str) -> int:
    """The bucket a key belongs to."""
    digest = hashlib.sha256(key.encode("utf-8")).digest()
    return int.from_bytes(digest[:2], "big") >> (16 - BUCKET_BITS)


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


class StateCommitment:
    """Keeps bucket roots up to date as entries change."""

    def __init__(self) -> None:
        self._keys: list[list[str]] = [[] for _ in range(BUCKETS)]
        self._hashes: dict[str, bytes] = {}
        self._values: dict[str, codec.Value] = {}
        self._roots: list[bytes] = [merkle.EMPTY_ROOT] * BUCKETS
        self._dirty: set[int] = set()

    def set(self, key: str, value: codec.Value | None, encoded: bytes | None = None) -> None:
        """Record a new value for ``key`` (None deletes it); ``encoded`` may give its bytes."""
        bucket = bucket_of(key)
        keys = self._keys[bucket]
        if value is None:
            if key in self._hashes:
                keys.pop(bisect.bisect_left(keys, key))
                del self._hashes[key]
                del self._values[key]
                self._dirty.add(bucket)
            return
        if key not in self._hashes:
            bisect.insort(keys, key)
        entry = leaf(key, value) if encoded is None else leaf_from_encoded(key, encoded)
        self._hashes[key] = merkle.leaf_hash(entry)
        self._values[key] = value
        self._dirty.add(bucket)

    def root(self) -> bytes:
        """The state root, rehashing the buckets changed since the last call."""
        hashes = self._hashes
        for bucket in self._dirty:
            self._roots[bucket] = merkle.root_of_hashes([hashes[k] for k in self._keys[bucket]])
        self._dirty.clear()
        return merkle.root_of_hashes(self._roots)

    def prove(self, key: str) -> Proof | None:
        """A proof that ``key`` has its current value; None when the key is absent."""
        if key not in self._hashes:
            return None
        self.root()
        bucket = bucket_of(key)
        keys = self._keys[bucket]
        index = bisect.bisect_left(keys, key)
        leaf_hashes = [self._hashes[k] for k in keys]
        return Proof(
            key=key,
            value=self._values[key],
            bucket=bucket,
            index=index,
            bucket_size=len(keys),
            bucket_path=tuple(merkle.proof(leaf_hashes, index)),
            top_path=tuple(merkle.proof(self._roots, bucket)),
        )
