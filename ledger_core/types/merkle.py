"""RFC 6962 Merkle trees with SHA-256: roots and inclusion proofs.

Leaf hash ``H(0x00 || leaf)``, inner hash ``H(0x01 || left || right)``; the
tree of ``n`` leaves splits at the largest power of two below ``n``. The root of
no leaves is ``H()``. A proof for leaf ``i`` of ``n`` is the list of sibling
hashes from the leaf up (RFC 6962 section 2.1.1).
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Final

EMPTY_ROOT: Final = hashlib.sha256(b"").digest()


def leaf_hash(leaf: bytes) -> bytes:
    """``SHA-256(0x00 || leaf)``."""
    return hashlib.sha256(b"\x00" + leaf).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """``SHA-256(0x01 || left || right)``."""
    return hashlib.sha256(b"\x01" + left + right).digest()


def _split(n: int) -> int:
    """The largest power of two smaller than ``n`` (n > 1)."""
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def root_of_hashes(hashes: Sequence[bytes]) -> bytes:
    """The root over already-hashed leaves."""
    if not hashes:
        return EMPTY_ROOT
    level = list(hashes)
    # Iterative form of the RFC's recursion: pair left to right; an odd last node
    # is promoted unchanged, which yields the same tree shape as splitting at the
    # largest power of two.
    while len(level) > 1:
        paired = [node_hash(level[i], level[i + 1]) for i in range(0, len(level) - 1, 2)]
        if len(level) % 2:
            paired.append(level[-1])
        level = paired
    return level[0]


def root(leaves: Sequence[bytes]) -> bytes:
    """The Merkle tree hash of ``leaves``."""
    return root_of_hashes([leaf_hash(leaf) for leaf in leaves])


def _descent(index: int, size: int) -> list[tuple[int, int, int]]:
    """The subtrees ``(lo, split, hi)`` that contain leaf ``index``, from the root down."""
    steps: list[tuple[int, int, int]] = []
    lo, hi = 0, size
    while hi - lo > 1:
        split = lo + _split(hi - lo)
        steps.append((lo, split, hi))
        if index < split:
            hi = split
        else:
            lo = split
    return steps


def proof(hashes: Sequence[bytes], index: int) -> list[bytes]:
    """The audit path of leaf ``index`` among the leaf hashes ``hashes`` (leaf first)."""
    if not 0 <= index < len(hashes):
        raise IndexError(f"leaf {index} of {len(hashes)}")
    return [
        root_of_hashes(hashes[split:hi] if index < split else hashes[lo:split])
        for lo, split, hi in reversed(_descent(index, len(hashes)))
    ]


def root_from_path(node: bytes, index: int, size: int, path: Sequence[bytes]) -> bytes | None:
    """The root reached from the hash ``node`` at ``index`` of ``size`` along ``path``.

    None when the path has the wrong length for that position.
    """
    if not 0 <= index < size:
        return None
    steps = _descent(index, size)
    if len(steps) != len(path):
        return None
    current = node
    for sibling, (_lo, split, _hi) in zip(path, reversed(steps), strict=True):
        current = node_hash(current, sibling) if index < split else node_hash(sibling, current)
    return current


def verify(leaf: bytes, index: int, size: int, path: Sequence[bytes], expected_root: bytes) -> bool:
    """Whether ``path`` proves ``leaf`` is leaf ``index`` of a tree of ``size`` with that root."""
    return root_from_path(leaf_hash(leaf), index, size, path) == expected_root
