"""Keys, key files, canonical encoding and RFC 6962 Merkle proofs."""

from __future__ import annotations

import hashlib
import json
import os
import stat
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ledger_core.types import codec, merkle
from ledger_core.types.crypto import ADDRESS_RE, KeyFileError, SigningKey, address_of, verify

# -- keys -------------------------------------------------------------------


def test_addresses_derive_from_the_public_key() -> None:
    key = SigningKey.from_seed(bytes(range(32)))
    assert key.address == "tv" + hashlib.sha256(key.public_key).hexdigest()[:40]
    assert ADDRESS_RE.fullmatch(key.address)
    assert address_of(key.public_key) == key.address
    with pytest.raises(ValueError, match="32 bytes"):
        address_of(b"short")


def test_signatures_verify_only_for_the_right_key_and_message() -> None:
    alice, bob = SigningKey.generate(), SigningKey.generate()
    signature = alice.sign(b"hola")
    assert verify(alice.public_key, signature, b"hola")
    assert not verify(alice.public_key, signature, b"hola!")
    assert not verify(bob.public_key, signature, b"hola")
    assert not verify(alice.public_key, signature[:-1], b"hola")
    assert not verify(b"\x00" * 31, signature, b"hola")
    tampered = bytes([signature[0] ^ 1]) + signature[1:]
    assert not verify(alice.public_key, tampered, b"hola")


def test_private_key_never_shows_in_repr() -> None:
    key = SigningKey.from_seed(b"\x07" * 32)
    assert (b"\x07" * 32).hex() not in repr(key)
    assert key.address in repr(key)


def test_key_files_are_0600_whatever_the_umask_and_round_trip(tmp_path: Path) -> None:
    key = SigningKey.generate()
    path = tmp_path / "node.key"
    old = os.umask(0)
    try:
        key.save(path)
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert SigningKey.load(path).address == key.address
    with pytest.raises(FileExistsError):
        key.save(path)


def test_loading_refuses_readable_or_malformed_key_files(tmp_path: Path) -> None:
    path = tmp_path / "node.key"
    SigningKey.generate().save(path)
    path.chmod(0o644)
    with pytest.raises(KeyFileError, match="readable by others"):
        SigningKey.load(path)
    bad = tmp_path / "bad.key"
    bad.write_text("hello\n")
    bad.chmod(0o600)
    with pytest.raises(KeyFileError, match="not a Transactiva key file"):
        SigningKey.load(bad)
    with pytest.raises(KeyFileError, match="cannot read"):
        SigningKey.load(tmp_path / "missing.key")


# -- canonical encoding -----------------------------------------------------

values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**63 - 1)
    | st.text(st.characters(exclude_categories=["Cs"])),
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(
            st.text(st.characters(exclude_categories=["Cs"]), max_size=8), inner, max_size=4
        )
    ),
    max_leaves=12,
)


@given(values)
def test_encode_decode_round_trip(value: codec.Value) -> None:
    data = codec.encode(value)
    assert codec.decode(data, 1 << 20) == value
    assert json.loads(data) == value


def test_encoding_is_sorted_compact_and_unescaped() -> None:
    assert codec.encode({"b": 1, "a": [True, None, "ñ"]}) == '{"a":[true,null,"ñ"],"b":1}'.encode()


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b'{"b":1,"a":2}', "canonical"),
        (b'{"a": 1}', "canonical"),
        (b'{"a":1.5}', "integers"),
        (b'{"a":1e3}', "integers"),
        (b'{"a":NaN}', "NaN"),
        (b'{"a":1,"a":2}', "twice"),
        (b'"\\u00f1"', "canonical"),
        (b'"\\ud800"', "canonical value"),
        (b"\xff", "UTF-8"),
        (b"{", "not JSON"),
        (b"[" * 40 + b"]" * 40, "nested"),
        (b"1" * 5000, "canonical value"),
    ],
)
def test_decode_rejects_everything_but_canonical_bytes(data: bytes, reason: str) -> None:
    with pytest.raises(codec.DecodeError, match=reason):
        codec.decode(data, 1 << 20)


def test_decode_enforces_the_size_limit() -> None:
    with pytest.raises(codec.DecodeError, match="limit is 10"):
        codec.decode(b'"' + b"x" * 20 + b'"', 10)


def test_encode_refuses_floats_and_other_types() -> None:
    with pytest.raises(TypeError, match="float"):
        codec.encode({"a": 1.0})  # type: ignore[dict-item]
    with pytest.raises(TypeError, match="keys are strings"):
        codec.encode({1: 2})  # type: ignore[dict-item]


@given(st.binary(max_size=300))
def test_decode_of_any_bytes_returns_a_value_or_decode_error(data: bytes) -> None:
    try:
        value = codec.decode(data, 1 << 16)
    except codec.DecodeError:
        return
    assert codec.encode(value) == data


# -- Merkle trees -----------------------------------------------------------


def _reference_root(leaves: list[bytes]) -> bytes:
    """RFC 6962 section 2.1, written as the recursion it states."""
    if not leaves:
        return hashlib.sha256(b"").digest()
    if len(leaves) == 1:
        return hashlib.sha256(b"\x00" + leaves[0]).digest()
    k = 1
    while k * 2 < len(leaves):
        k *= 2
    return hashlib.sha256(
        b"\x01" + _reference_root(leaves[:k]) + _reference_root(leaves[k:])
    ).digest()


def test_known_roots() -> None:
    assert merkle.root([]).hex() == (
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    )
    assert merkle.root([b""]) == hashlib.sha256(b"\x00").digest()


@given(st.lists(st.binary(max_size=8), max_size=40))
def test_root_matches_the_rfc_recursion(leaves: list[bytes]) -> None:
    assert merkle.root(leaves) == _reference_root(leaves)


@given(st.lists(st.binary(max_size=8), min_size=1, max_size=40), st.data())
def test_every_leaf_has_a_proof_and_forgeries_fail(
    leaves: list[bytes], data: st.DataObject
) -> None:
    hashes = [merkle.leaf_hash(leaf) for leaf in leaves]
    top = merkle.root(leaves)
    index = data.draw(st.integers(0, len(leaves) - 1))
    path = merkle.proof(hashes, index)
    assert merkle.verify(leaves[index], index, len(leaves), path, top)
    assert not merkle.verify(leaves[index] + b"x", index, len(leaves), path, top)
    if len(leaves) > 1:
        other = (index + 1) % len(leaves)
        if leaves[other] != leaves[index]:
            assert not merkle.verify(leaves[other], index, len(leaves), path, top)
        assert not merkle.verify(leaves[index], index, len(leaves), path[:-1], top)
    assert not merkle.verify(leaves[index], len(leaves), len(leaves), path, top)


def test_proof_size_for_ten_thousand_leaves_is_fourteen_hashes() -> None:
    hashes = [merkle.leaf_hash(i.to_bytes(4, "big")) for i in range(10_000)]
    assert len(merkle.proof(hashes, 1234)) == 14
    with pytest.raises(IndexError):
        merkle.proof(hashes, 10_000)
