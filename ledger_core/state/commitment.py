"""The state root (app hash): the two-level Merkle tree kept up to date as the state changes.

The tree's shape and its proofs are :mod:`ledger_core.types.commitment`.
:meth:`StateCommitment.stage` computes the root a set of writes *would* give
without changing anything (validators execute a proposed block before voting
for it); :meth:`StateCommitment.install` then adopts the staged buckets if the
block is decided, so nothing is hashed twice.

Each bucket is kept as its keys in order and their leaf hashes beside them (no
map from key to hash: a key's place is found by bisection), so a change copies
and patches the bucket's two short lists and rehashes its 16-way tree
(:func:`ledger_core.types.commitment.bucket_root`); the top tree is
kept level by level, and only the paths above changed buckets are rehashed.
Values are not kept here: the state machine's state is the mapping a proof's
value comes from (a commitment made without one keeps its own).
"""

from __future__ import annotations

import bisect
import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from ledger_core.types import codec, merkle
from ledger_core.types.commitment import (
    BUCKET_BITS,
    BUCKETS,
    Proof,
    bucket_of,
    bucket_proof,
    bucket_root,
    leaf,
    leaf_from_encoded,
)


@dataclass(frozen=True, slots=True)
class Staged:
    """The root some writes would give, with the buckets it was computed from."""

    root: bytes
    version: int
    # bucket -> (its keys in order, their leaf hashes, its root)
    buckets: dict[int, tuple[list[str], list[bytes], bytes]] = field(default_factory=dict)
    upper: list[dict[int, bytes]] = field(default_factory=list)
    # What a commitment without a state to read values from keeps of the writes.
    values: dict[str, codec.Value | None] = field(default_factory=dict)


class StaleStageError(Exception):
    """A staged root computed on a state that has changed since."""


def _leaf_hash(key: str, data: bytes, encoded: bytes) -> bytes:
    """The leaf hash of ``key`` (``data``: its UTF-8 bytes) with a value's canonical bytes."""
    if key.isascii() and key.isprintable() and '"' not in key and "\\" not in key:
        # canonical([key, value]) with the key's encoding written out (the commit's hot loop)
        return hashlib.sha256(b'\x00["' + data + b'",' + encoded + b"]").digest()
    return hashlib.sha256(b"\x00" + leaf_from_encoded(key, encoded)).digest()


class StateCommitment:
    """Keeps bucket roots up to date as entries change.

    ``state``, when given, is the mapping proofs take values from; its owner keeps it
    equal to what was installed. Without it the commitment keeps values itself.
    """

    def __init__(self, state: Mapping[str, codec.Value] | None = None) -> None:
        self._keys: list[list[str]] = [[] for _ in range(BUCKETS)]
        self._leaves: list[list[bytes]] = [[] for _ in range(BUCKETS)]
        self._state = state
        self._own: dict[str, codec.Value] = {}
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

    @property
    def values(self) -> Mapping[str, codec.Value]:
        """Where proofs take values from."""
        return self._own if self._state is None else self._state

    def __len__(self) -> int:
        return sum(len(keys) for keys in self._keys)

    def load(self, entries: Iterable[tuple[str, bytes]]) -> None:
        """Add entries (key, canonical bytes of its value) for keys not present yet, at
        once: the start-up of a node (each bucket is sorted and hashed once)."""
        self._version += 1
        by_bucket: dict[int, list[tuple[str, bytes]]] = {}
        sha256 = hashlib.sha256
        shift = 16 - BUCKET_BITS
        for key, encoded in entries:
            data = key.encode()
            digest = sha256(data).digest()
            leaf_hash = _leaf_hash(key, data, encoded)
            found = by_bucket.get(bucket := (digest[0] << 8 | digest[1]) >> shift)
            if found is None:
                by_bucket[bucket] = [(key, leaf_hash)]
            else:
                found.append((key, leaf_hash))
        for bucket, pairs in by_bucket.items():
            pairs.extend(zip(self._keys[bucket], self._leaves[bucket], strict=True))
            pairs.sort()
            self._keys[bucket] = [key for key, _ in pairs]
            self._leaves[bucket] = [leaf_hash for _, leaf_hash in pairs]
            self._dirty.add(bucket)

    def set(self, key: str, value: codec.Value | None, encoded: bytes | None = None) -> None:
        """Record a new value for ``key`` (None deletes it); ``encoded`` may give its bytes."""
        self._version += 1
        bucket = bucket_of(key)
        keys, leaves = self._keys[bucket], self._leaves[bucket]
        index = bisect.bisect_left(keys, key)
        present = index < len(keys) and keys[index] == key
        if value is None:
            if present:
                del keys[index]
                del leaves[index]
                self._own.pop(key, None)
                self._dirty.add(bucket)
            return
        entry = leaf(key, value) if encoded is None else leaf_from_encoded(key, encoded)
        leaf_hash = merkle.leaf_hash(entry)
        if present:
            leaves[index] = leaf_hash
        else:
            keys.insert(index, key)
            leaves.insert(index, leaf_hash)
        if self._state is None:
            self._own[key] = value
        self._dirty.add(bucket)

    def _upper(self, changed: dict[int, bytes]) -> list[dict[int, bytes]]:
        """The top tree's nodes that change when bucket roots change, level by level."""
        sha256 = hashlib.sha256
        upper = [changed]
        for level in range(BUCKET_BITS):
            below, moved = self._levels[level], upper[-1]
            nodes: dict[int, bytes] = {}
            for index in {i >> 1 for i in moved}:
                left, right = 2 * index, 2 * index + 1
                nodes[index] = sha256(
                    b"\x01" + moved.get(left, below[left]) + moved.get(right, below[right])
                ).digest()
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
            changed = {bucket: bucket_root(self._leaves[bucket]) for bucket in self._dirty}
            self._dirty.clear()
            self._adopt(self._upper(changed))
        return self._levels[-1][0]

    def stage_encoded(self, writes: Mapping[str, bytes | None]) -> Staged:
        """The root after ``writes`` (key: the canonical bytes of its new value, None to
        delete it), computed without changing this commitment."""
        self.root()
        by_bucket: dict[int, list[tuple[str, bytes | None]]] = {}
        sha256 = hashlib.sha256
        for key, encoded in writes.items():
            data = key.encode()
            digest = sha256(data).digest()
            bucket = (digest[0] << 8 | digest[1]) >> (16 - BUCKET_BITS)  # bucket_of(key)
            change = (key, None if encoded is None else _leaf_hash(key, data, encoded))
            found = by_bucket.get(bucket)
            if found is None:
                by_bucket[bucket] = [change]
            else:
                found.append(change)
        buckets: dict[int, tuple[list[str], list[bytes], bytes]] = {}
        roots: dict[int, bytes] = {}
        bisect_left = bisect.bisect_left
        for bucket, changes in by_bucket.items():
            # The installed lists are replaced, never changed in place.
            keys, leaves = list(self._keys[bucket]), list(self._leaves[bucket])
            for key, leaf_hash in changes:
                index = bisect_left(keys, key)
                present = index < len(keys) and keys[index] == key
                if leaf_hash is None:
                    if present:
                        del keys[index]
                        del leaves[index]
                elif present:
                    leaves[index] = leaf_hash
                else:
                    keys.insert(index, key)
                    leaves.insert(index, leaf_hash)
            roots[bucket] = root = bucket_root(leaves)
            buckets[bucket] = (keys, leaves, root)
        upper = self._upper(roots)
        return Staged(self._top(upper), self._version, buckets, upper)

    def stage(self, writes: Mapping[str, tuple[codec.Value | None, bytes | None]]) -> Staged:
        """The root after ``writes`` (key: (value or None to delete, its canonical bytes
        or None)), computed without changing this commitment."""
        encoded = {
            key: None if value is None else codec.encode(value) if data is None else data
            for key, (value, data) in writes.items()
        }
        staged = self.stage_encoded(encoded)
        if self._state is None:
            staged.values.update({key: value for key, (value, _) in writes.items()})
        return staged

    def root_with(self, writes: Mapping[str, tuple[codec.Value | None, bytes | None]]) -> bytes:
        """The root after ``writes``, without changing this commitment."""
        return self.stage(writes).root

    def install(self, staged: Staged) -> None:
        """Adopt staged writes; StaleStageError if anything changed since they were staged."""
        if staged.version != self._version or self._dirty:
            raise StaleStageError("the state changed after the root was staged")
        for bucket, (keys, leaves, _root_hash) in staged.buckets.items():
            self._keys[bucket] = keys
            self._leaves[bucket] = leaves
        for key, value in staged.values.items():
            if value is None:
                self._own.pop(key, None)
            else:
                self._own[key] = value
        self._adopt(staged.upper)
        self._version += 1

    def prove(self, key: str) -> Proof | None:
        """A proof that ``key`` has its current value; None when the key is absent."""
        bucket = bucket_of(key)
        keys = self._keys[bucket]
        index = bisect.bisect_left(keys, key)
        if index == len(keys) or keys[index] != key:
            return None
        self.root()
        leaf_hashes = self._leaves[bucket]
        return Proof(
            key=key,
            value=self.values[key],
            bucket=bucket,
            index=index,
            bucket_size=len(keys),
            bucket_path=tuple(bucket_proof(leaf_hashes, index)),
            top_path=tuple(
                self._levels[level][(bucket >> level) ^ 1] for level in range(BUCKET_BITS)
            ),
        )
