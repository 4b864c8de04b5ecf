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
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from ledger_core.types import codec, merkle
from ledger_core.types.fields import (
    FieldError,
    expect_hex,
    expect_int,
    expect_keys,
    expect_object,
    expect_str,
)

BUCKET_BITS: Final = 12
BUCKETS: Final = 1 << BUCKET_BITS
MAX_PATH: Final = 64
"""No audit path is longer (a tree of 2^64 leaves)."""
MAX_KEY: Final = 1024
_HASH_RE: Final = re.compile(r"[0-9a-f]{64}")


def _path(raw: object, field: str) -> tuple[bytes, ...]:
    if not isinstance(raw, list) or len(raw) > MAX_PATH:
        raise FieldError(field, f"must be a list of at most {MAX_PATH} hashes")
    return tuple(
        bytes.fromhex(expect_hex(item, f"{field}[{i}]", _HASH_RE, 64)) for i, item in enumerate(raw)
    )


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

    @classmethod
    def from_json(cls, raw: object, field: str = "proof") -> Proof:
        """The proof in its API form; FieldError naming what is wrong (a client's decoder)."""
        obj = expect_object(raw, field)
        expect_keys(obj, field, set(_PROOF_FIELDS), set())
        return cls(
            key=expect_str(obj["key"], f"{field}.key", limit=MAX_KEY),
            value=obj["value"],
            bucket=expect_int(obj["bucket"], f"{field}.bucket", 0, BUCKETS - 1),
            index=expect_int(obj["index"], f"{field}.index", 0, 2**63 - 1),
            bucket_size=expect_int(obj["bucket_size"], f"{field}.bucket_size", 1, 2**63 - 1),
            bucket_path=_path(obj["bucket_path"], f"{field}.bucket_path"),
            top_path=_path(obj["top_path"], f"{field}.top_path"),
        )


_PROOF_FIELDS: Final = ("key", "value", "bucket", "index", "bucket_size", "bucket_path", "top_path")


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


def retired_leaves(entries: Sequence[tuple[str, bytes]]) -> list[bytes]:
    """The leaf hashes of records that left the live state together: ``entries`` are (key,
    canonical bytes of its last value) in key order, each leaf ``canonical([key, value])``
    as in the state's own tree."""
    return [merkle.leaf_hash(leaf_from_encoded(key, value)) for key, value in entries]


def retired_root(entries: Sequence[tuple[str, bytes]]) -> bytes:
    """The Merkle root over :func:`retired_leaves`."""
    return merkle.root_of_hashes(retired_leaves(entries))


@dataclass(frozen=True, slots=True)
class HistoryProof:
    """That ``key`` had ``value`` when block ``height`` took it out of the live state.

    ``path`` is its audit path among the records that block took out (``index`` of
    ``count``, in key order); ``anchor`` proves that block's ``retired/`` entry, which
    holds their root and count, under a state root: the app hash of any later height.
    """

    key: str
    value: codec.Value
    height: int
    index: int
    count: int
    path: tuple[bytes, ...]
    anchor: Proof

    def to_json(self) -> codec.Value:
        """A JSON form for the API."""
        return {
            "key": self.key,
            "value": self.value,
            "height": self.height,
            "index": self.index,
            "count": self.count,
            "path": [h.hex() for h in self.path],
            "anchor": self.anchor.to_json(),
        }

    @classmethod
    def from_json(cls, raw: object, field: str = "history_proof") -> HistoryProof:
        """The proof in its API form; FieldError naming what is wrong (a client's decoder)."""
        obj = expect_object(raw, field)
        expect_keys(obj, field, set(_HISTORY_FIELDS), set())
        return cls(
            key=expect_str(obj["key"], f"{field}.key", limit=MAX_KEY),
            value=obj["value"],
            height=expect_int(obj["height"], f"{field}.height", 1, 2**63 - 1),
            index=expect_int(obj["index"], f"{field}.index", 0, 2**63 - 1),
            count=expect_int(obj["count"], f"{field}.count", 1, 2**63 - 1),
            path=_path(obj["path"], f"{field}.path"),
            anchor=Proof.from_json(obj["anchor"], f"{field}.anchor"),
        )


_HISTORY_FIELDS: Final = ("key", "value", "height", "index", "count", "path", "anchor")


def verify_history_proof(proof: HistoryProof, root: bytes, anchor_key: str) -> bool:
    """Whether ``proof`` shows its key and value among what a block took out of the live
    state, under the state ``root``; ``anchor_key`` is that block's ``retired/`` key
    (``ledger_core.state.keys.retired(proof.height)``)."""
    anchor = proof.anchor
    if anchor.key != anchor_key or not isinstance(anchor.value, dict):
        return False
    retired, count = anchor.value.get("root"), anchor.value.get("count")
    if not isinstance(retired, str) or count != proof.count or not isinstance(count, int):
        return False
    try:
        expected = bytes.fromhex(retired)
    except ValueError:
        return False
    entry = leaf(proof.key, proof.value)
    return merkle.verify(entry, proof.index, count, proof.path, expected) and verify_proof(
        anchor, root
    )
