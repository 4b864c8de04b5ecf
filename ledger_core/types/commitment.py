"""The state root's shape and its proofs: what a client needs to check a state entry.

Each key belongs to one of 4,096 buckets (the first 12 bits of SHA-256 of the
key). A bucket's root is the root of a 16-way tree (:func:`bucket_root`) over the
leaf hashes ``SHA-256(0x00 || canonical([key, value]))`` in key order; the state
root is the RFC 6962 Merkle root of the 4,096 bucket roots. A commit rehashes
only the buckets that changed, and a proof of one key is its path in its bucket
(up to 15 hashes a level) plus its bucket's path in the top tree (12 hashes).

Why 16 ways inside a bucket: a commit rehashes every bucket it writes to, whole,
and a bucket grows with the state. A binary tree costs one SHA-256 call per
entry of the bucket, and in Python the call, not the hashing, is what costs; a
16-way node hashes up to 512 bytes in one call, so a bucket of ``n`` entries
costs about ``n / 15`` calls (docs/performance.md, "Market").

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
"""No binary audit path is longer (a tree of 2^64 leaves)."""
BUCKET_ARITY: Final = 16
"""Children of a node of a bucket's tree."""
MAX_BUCKET_PATH: Final = (BUCKET_ARITY - 1) * 16
"""No bucket path is longer (a bucket of 2^64 entries: 16 levels of 15 siblings)."""
_BUCKET_NODE: Final = hashlib.sha256(b"\x02")
MAX_KEY: Final = 1024
_HASH_RE: Final = re.compile(r"[0-9a-f]{64}")


def _path(raw: object, field: str, limit: int = MAX_PATH) -> tuple[bytes, ...]:
    if not isinstance(raw, list) or len(raw) > limit:
        raise FieldError(field, f"must be a list of at most {limit} hashes")
    return tuple(
        bytes.fromhex(expect_hex(item, f"{field}[{i}]", _HASH_RE, 64)) for i, item in enumerate(raw)
    )


def bucket_of(key: str) -> int:
    """The bucket a key belongs to: the first 12 bits of SHA-256 of the key."""
    digest = hashlib.sha256(key.encode("utf-8")).digest()
    return (digest[0] << 8 | digest[1]) >> (16 - BUCKET_BITS)


def bucket_root(hashes: list[bytes]) -> bytes:
    """The root of a bucket's tree over its leaf hashes (in key order).

    Level by level: the nodes are taken in groups of 16, left to right; a group of
    two or more becomes ``SHA-256(0x02 || its hashes)``, a last group of one goes up
    unchanged. One leaf is its own root; no leaf gives :data:`merkle.EMPTY_ROOT`.
    (The commit's hot loop: each group starts from a copy of a hash that has taken
    the prefix.)
    """
    size = len(hashes)
    if size <= 1:
        return hashes[0] if size else merkle.EMPTY_ROOT
    start, join = _BUCKET_NODE.copy, b"".join
    level = hashes
    while size > BUCKET_ARITY:
        upper: list[bytes] = []
        append = upper.append
        for i in range(0, size - 1, BUCKET_ARITY):
            node = start()
            node.update(join(level[i : i + BUCKET_ARITY]))
            append(node.digest())
        if size % BUCKET_ARITY == 1:
            append(level[-1])
        level, size = upper, len(upper)
    node = start()
    node.update(join(level))
    return node.digest()


def bucket_proof(hashes: list[bytes], index: int) -> list[bytes]:
    """The path of leaf ``index`` in a bucket's tree: at each level, from the leaf up,
    the other hashes of its group in order (none for a group of one)."""
    if not 0 <= index < len(hashes):
        raise IndexError(f"leaf {index} of {len(hashes)}")
    path: list[bytes] = []
    level = hashes
    while len(level) > 1:
        first = index - index % BUCKET_ARITY
        group = level[first : first + BUCKET_ARITY]
        if len(group) > 1:
            path.extend(group[: index - first])
            path.extend(group[index - first + 1 :])
        level = [
            bucket_root(level[i : i + BUCKET_ARITY]) for i in range(0, len(level), BUCKET_ARITY)
        ]
        index //= BUCKET_ARITY
    return path


def bucket_root_from_path(
    node: bytes, index: int, size: int, path: Sequence[bytes]
) -> bytes | None:
    """The bucket root reached from leaf hash ``node`` at ``index`` of ``size`` along
    ``path`` (:func:`bucket_proof`); None when the path has the wrong length."""
    if not 0 <= index < size:
        return None
    used = 0
    while size > 1:
        first = index - index % BUCKET_ARITY
        siblings = min(BUCKET_ARITY, size - first) - 1
        if siblings:
            if used + siblings > len(path):
                return None
            mine = used + index - first  # where this node goes among its group's hashes
            node = bucket_root([*path[used:mine], node, *path[mine : used + siblings]])
            used += siblings
        index //= BUCKET_ARITY
        size = -(-size // BUCKET_ARITY)
    return node if used == len(path) else None


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
            bucket_path=_path(obj["bucket_path"], f"{field}.bucket_path", MAX_BUCKET_PATH),
            top_path=_path(obj["top_path"], f"{field}.top_path"),
        )


_PROOF_FIELDS: Final = ("key", "value", "bucket", "index", "bucket_size", "bucket_path", "top_path")


def verify_proof(proof: Proof, root: bytes) -> bool:
    """Whether ``proof`` shows its key and value under the state ``root``."""
    if proof.bucket != bucket_of(proof.key):
        return False
    entry_hash = merkle.leaf_hash(leaf(proof.key, proof.value))
    in_top = bucket_root_from_path(entry_hash, proof.index, proof.bucket_size, proof.bucket_path)
    if in_top is None:
        return False
    return merkle.root_from_path(in_top, proof.bucket, BUCKETS, proof.top_path) == root


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
