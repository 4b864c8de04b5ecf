"""The state root (app hash): the two-level Merkle tree kept up to date as the state changes.

The tree's shape and its proofs are :mod:`ledger_core.types.commitment`.
:meth:`StateCommitment.stage` computes the root a set of writes *would* give
without changing anything (validators execute a proposed block before voting
for it); :meth:`StateCommitment.install` then adopts the staged buckets if the
block is decided, so nothing is hashed twice.
"""

from __future__ import annotations

import bisect
from collections.abc import Mapping
from dataclasses import dataclass, field

from ledger_core.types import codec, merkle
from ledger_core.types.commitment import (
    BUCKET_BITS,
    BUCKETS,
    Proof,
    bucket_of,
    leaf,
    leaf_from_encoded,
)


@dataclass(frozen=True, slots=True)
class Staged:
    """The root some writes would give, with the buckets it was computed from."""

    root: bytes
    version: int
    buckets: dict[int, tuple[list[str], bytes]] = field(default_factory=dict)
    upper: list[dict[int, bytes]] = field(default_factory=list)
    hashes: dict[str, bytes | None] = field(default_factory=dict)
    values: dict[str, codec.Value | None] = field(default_factory=dict)


class StaleStageError(Exception):
    """A staged root computed on a state that has changed since."""


class StateCommitment:
    """Keeps bucket roots up to date as entries change."""

    def __init__(self) -> None:
        self._keys: list[list[str]] = [[] for _ in range(BUCKETS)]
        self._hashes: dict[str, bytes] = {}
        self._values: dict[str, codec.Value] = {}
        self._roots: list[bytes] = [merkle.EMPTY_ROOT] * BUCKETS
        # The top tree, level by level from the bucket roots up (4,096 is a power of
        # two, so the RFC 6962 tree is the perfect binary tree): a change of k buckets
        # rehashes k paths of 12 nodes instead of the whole top tree.
        self._levels: list[list[bytes]] = [self._roots]
        while len(self._levels[-1]) > 1:
            below = self._levels[-1]
            self._levels.append(
                [merkle.node_hash(below[i], below[i + 1]) for i in range(0, len(below), 2)]
            )
        self._dirty: set[int] = set()
        self._version = 0

    def set(self, key: str, value: codec.Value | None, encoded: bytes | None = None) -> None:
        """Record a new value for ``key`` (None deletes it); ``encoded`` may give its bytes."""
        self._version += 1
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

    def _upper(self, changed: dict[int, bytes]) -> list[dict[int, bytes]]:
        """The top tree's nodes that change when bucket roots change, level by level."""
        upper = [changed]
        for level in range(BUCKET_BITS):
            below, moved = self._levels[level], upper[-1]
            nodes: dict[int, bytes] = {}
            for index in {i >> 1 for i in moved}:
                left, right = 2 * index, 2 * index + 1
                nodes[index] = merkle.node_hash(
                    moved.get(left, below[left]), moved.get(right, below[right])
                )
            upper.append(nodes)
        return upper

    def _adopt(self, upper: list[dict[int, bytes]]) -> None:
        for level, nodes in enumerate(upper):
            row = self._levels[level]
            for index, node in nodes.items():
                row[index] = node

    def _top(self, upper: list[dict[int, bytes]]) -> bytes:
        return upper[-1].get(0, self._levels[-1][0])

    def root(self) -> bytes:
        """The state root, rehashing the buckets changed since the last call."""
        if self._dirty:
            hashes = self._hashes
            changed = {
                bucket: merkle.root_of_hashes([hashes[k] for k in self._keys[bucket]])
                for bucket in self._dirty
            }
            self._dirty.clear()
            self._adopt(self._upper(changed))
        return self._levels[-1][0]

    def stage(self, writes: Mapping[str, tuple[codec.Value | None, bytes | None]]) -> Staged:
        """The root after ``writes`` (key: (value or None to delete, its canonical bytes
        or None)), computed without changing this commitment."""
        self.root()
        by_bucket: dict[int, list[str]] = {}
        hashes: dict[str, bytes | None] = {}
        values: dict[str, codec.Value | None] = {}
        for key, (value, encoded) in writes.items():
            by_bucket.setdefault(bucket_of(key), []).append(key)
            values[key] = value
            if value is None:
                hashes[key] = None
            else:
                entry = leaf(key, value) if encoded is None else leaf_from_encoded(key, encoded)
                hashes[key] = merkle.leaf_hash(entry)
        buckets: dict[int, tuple[list[str], bytes]] = {}
        roots: dict[int, bytes] = {}
        current = self._hashes
        for bucket, changed in by_bucket.items():
            keys = self._keys[bucket]
            added = [k for k in changed if hashes[k] is not None and k not in current]
            removed = [k for k in changed if hashes[k] is None and k in current]
            if added or removed:
                keys = list(keys)  # the installed list is replaced, never changed in place
                for key in removed:
                    keys.pop(bisect.bisect_left(keys, key))
                for key in added:
                    bisect.insort(keys, key)
            leaf_hashes = []
            for key in keys:
                staged = hashes.get(key)
                leaf_hashes.append(staged if staged is not None else current[key])
            roots[bucket] = merkle.root_of_hashes(leaf_hashes)
            buckets[bucket] = (keys, roots[bucket])
        upper = self._upper(roots)
        return Staged(self._top(upper), self._version, buckets, upper, hashes, values)

    def root_with(self, writes: Mapping[str, tuple[codec.Value | None, bytes | None]]) -> bytes:
        """The root after ``writes``, without changing this commitment."""
        return self.stage(writes).root

    def install(self, staged: Staged) -> None:
        """Adopt staged writes; StaleStageError if anything changed since they were staged."""
        if staged.version != self._version or self._dirty:
            raise StaleStageError("the state changed after the root was staged")
        for key, entry_hash in staged.hashes.items():
            if entry_hash is None:
                self._hashes.pop(key, None)
                self._values.pop(key, None)
            else:
                self._hashes[key] = entry_hash
                self._values[key] = staged.values[key]
        for bucket, (keys, _) in staged.buckets.items():
            self._keys[bucket] = keys
        self._adopt(staged.upper)
        self._version += 1

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
            top_path=tuple(
                self._levels[level][(bucket >> level) ^ 1] for level in range(BUCKET_BITS)
            ),
        )
