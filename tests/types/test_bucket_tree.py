"""A bucket's 16-way tree: its root against the rule written out, and every leaf's path."""

from __future__ import annotations

import hashlib

from hypothesis import given, settings
from hypothesis import strategies as st

from ledger_core.types import merkle
from ledger_core.types.commitment import (
    BUCKET_ARITY,
    MAX_BUCKET_PATH,
    bucket_proof,
    bucket_root,
    bucket_root_from_path,
)


def _node(children: list[bytes]) -> bytes:
    return hashlib.sha256(b"\x02" + b"".join(children)).digest()


def _rule(hashes: list[bytes]) -> bytes:
    """The rule as docs/api.md states it, recursively: groups of 16 from the left."""
    if not hashes:
        return merkle.EMPTY_ROOT
    if len(hashes) == 1:
        return hashes[0]
    groups = [hashes[i : i + BUCKET_ARITY] for i in range(0, len(hashes), BUCKET_ARITY)]
    return _rule([group[0] if len(group) == 1 else _node(group) for group in groups])


def _leaves(n: int) -> list[bytes]:
    return [hashlib.sha256(i.to_bytes(4, "big")).digest() for i in range(n)]


def test_small_buckets_hash_as_documented() -> None:
    a, b, c = _leaves(3)
    assert bucket_root([]) == hashlib.sha256(b"").digest()
    assert bucket_root([a]) == a
    assert bucket_root([a, b]) == hashlib.sha256(b"\x02" + a + b).digest()
    assert bucket_root([a, b, c]) == hashlib.sha256(b"\x02" + a + b + c).digest()
    seventeen = _leaves(17)
    # sixteen leaves make one node; the seventeenth goes up alone
    assert bucket_root(seventeen) == _node([_node(seventeen[:16]), seventeen[16]])
    eighteen = _leaves(18)
    assert bucket_root(eighteen) == _node([_node(eighteen[:16]), _node(eighteen[16:])])


@settings(max_examples=150)
@given(st.lists(st.binary(min_size=32, max_size=32), max_size=300))
def test_the_root_follows_the_rule(hashes: list[bytes]) -> None:
    assert bucket_root(hashes) == _rule(hashes)


@settings(max_examples=60)
@given(st.integers(1, 600), st.data())
def test_every_leaf_is_proved_and_nothing_else_is(size: int, data: st.DataObject) -> None:
    hashes = _leaves(size)
    root = bucket_root(hashes)
    index = data.draw(st.integers(0, size - 1), label="index")
    path = bucket_proof(hashes, index)
    assert len(path) <= MAX_BUCKET_PATH
    assert bucket_root_from_path(hashes[index], index, size, path) == root
    # another leaf, another place, a path one short or one long, a changed sibling
    other = hashlib.sha256(b"other").digest()
    assert bucket_root_from_path(other, index, size, path) != root
    if size > 1:
        moved = (index + 1) % size
        assert bucket_root_from_path(hashes[index], moved, size, path) != root
        assert bucket_root_from_path(hashes[index], index, size, path[:-1]) is None
        assert bucket_root_from_path(hashes[index], index, size, [*path, other]) is None
        damaged = [other, *path[1:]]
        assert bucket_root_from_path(hashes[index], index, size, damaged) != root
    assert bucket_root_from_path(hashes[index], size, size, path) is None
    assert bucket_root_from_path(hashes[index], -1, size, path) is None


def test_a_path_has_up_to_fifteen_hashes_a_level() -> None:
    assert bucket_proof(_leaves(1), 0) == []
    assert len(bucket_proof(_leaves(16), 5)) == 15
    assert len(bucket_proof(_leaves(17), 16)) == 1  # alone in its group, then beside one node
    assert len(bucket_proof(_leaves(256), 0)) == 30
    assert len(bucket_proof(_leaves(4096), 4095)) == 45
