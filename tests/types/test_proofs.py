"""State and history proofs in their API form: decoded back exactly, and anything else
refused with a FieldError naming the field (never another exception)."""

from __future__ import annotations

import contextlib
import itertools
import json
from dataclasses import replace

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ledger_core.state.commitment import StateCommitment
from ledger_core.types import codec, merkle
from ledger_core.types.commitment import (
    BUCKETS,
    MAX_BUCKET_PATH,
    MAX_PATH,
    HistoryProof,
    Proof,
    bucket_of,
    leaf_from_encoded,
    retired_root,
    verify_history_proof,
    verify_proof,
)
from ledger_core.types.fields import FieldError

hashes = st.lists(st.binary(min_size=32, max_size=32), max_size=MAX_PATH).map(tuple)
bucket_paths = st.lists(st.binary(min_size=32, max_size=32), max_size=MAX_BUCKET_PATH).map(tuple)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner),
    max_leaves=6,
)
proofs = st.builds(
    Proof,
    key=st.text(min_size=1, max_size=40).filter(str.isprintable),
    value=json_values,
    bucket=st.integers(0, BUCKETS - 1),
    index=st.integers(0, 10**6),
    bucket_size=st.integers(1, 10**6),
    bucket_path=bucket_paths,
    top_path=hashes,
)
history_proofs = st.builds(
    HistoryProof,
    key=st.text(min_size=1, max_size=40).filter(str.isprintable),
    value=json_values,
    height=st.integers(1, 10**9),
    index=st.integers(0, 10**6),
    count=st.integers(1, 10**6),
    path=hashes,
    anchor=proofs,
)


@settings(max_examples=200)
@given(history_proofs)
def test_a_proof_survives_its_api_form(proof: HistoryProof) -> None:
    wire = json.loads(json.dumps(proof.to_json()))
    assert HistoryProof.from_json(wire) == proof
    assert Proof.from_json(wire["anchor"]) == proof.anchor


@settings(max_examples=300)
@given(st.data(), history_proofs)
def test_a_damaged_proof_is_refused_with_the_field_named(
    data: st.DataObject, proof: HistoryProof
) -> None:
    wire = proof.to_json()
    assert isinstance(wire, dict)
    target = wire if data.draw(st.booleans()) else wire["anchor"]
    assert isinstance(target, dict)
    name = data.draw(st.sampled_from(sorted(target)))
    damage = data.draw(
        st.sampled_from(["drop", "float", "text", "huge", "bad_hash", "extra"]), label="damage"
    )
    if damage == "drop":
        del target[name]
    elif damage == "extra":
        target["unexpected"] = 1
    elif name == "value":
        return  # any JSON value is a value
    elif damage == "float":
        target[name] = 1.5
    elif damage == "text":
        target[name] = "x" if name != "key" else 7
    elif damage == "huge":
        limit = MAX_BUCKET_PATH if name == "bucket_path" else MAX_PATH
        target[name] = ["00" * 32] * (limit + 1) if name.endswith("path") else 2**70
    elif isinstance(target[name], list):
        target[name] = ["zz" * 32]
    else:
        return
    with pytest.raises(FieldError) as err:
        HistoryProof.from_json(wire)
    assert err.value.field.startswith("history_proof")


@settings(max_examples=300)
@given(json_values)
def test_any_json_is_a_proof_or_a_field_error(raw: object) -> None:
    for decode in (Proof.from_json, HistoryProof.from_json):
        with contextlib.suppress(FieldError):
            decode(raw)


def test_a_retired_record_is_proved_by_its_path_and_its_anchor() -> None:
    entries = [(f"report/m/{t:012d}", b'{"commitment":"%d"}' % t) for t in range(5)]
    leaves = [merkle.leaf_hash(leaf_from_encoded(k, v)) for k, v in entries]
    anchor_key = "retired/000000000007"
    state = {"bal/x": 1, anchor_key: {"root": retired_root(entries).hex(), "count": 5}}
    commitment = StateCommitment()
    for key, value in state.items():
        commitment.set(key, value)
    anchor = commitment.prove(anchor_key)
    assert anchor is not None
    root = commitment.root()
    for index, (key, data) in enumerate(entries):
        value = codec.decode(data, 1 << 10)
        path = tuple(merkle.proof(leaves, index))
        proof = HistoryProof(key, value, 7, index, 5, path, anchor)
        assert verify_history_proof(proof, root, anchor_key)
        assert not verify_history_proof(proof, root, "retired/000000000008")
        assert not verify_history_proof(replace(proof, value={"commitment": "x"}), root, anchor_key)
        assert not verify_history_proof(replace(proof, index=(index + 1) % 5), root, anchor_key)
        assert not verify_history_proof(replace(proof, count=4), root, anchor_key)
        assert not verify_history_proof(proof, b"\x00" * 32, anchor_key)


def test_every_entry_of_a_crowded_bucket_is_proved_through_the_api_form() -> None:
    # 300 keys of one bucket (19 groups at the first level, 2 at the next), beside
    # entries of other buckets: each proof, sent as JSON and decoded, verifies against the
    # root, and proves neither another value, nor another place, nor another key.
    keys = (f"bal/tv{i:040x}" for i in range(4_000_000))
    crowded = list(itertools.islice((k for k in keys if bucket_of(k) == 7), 300))
    assert len(crowded) == 300
    commitment = StateCommitment()
    for n, key in enumerate(crowded):
        commitment.set(key, n)
    for n in range(50):
        commitment.set(f"nonce/{n}", n)
    root = commitment.root()
    for n, key in enumerate(crowded):
        proof = commitment.prove(key)
        assert proof is not None
        assert proof.bucket == 7
        assert proof.bucket_size == 300
        decoded = Proof.from_json(json.loads(json.dumps(proof.to_json())))
        assert decoded == proof
        assert verify_proof(decoded, root)
        assert not verify_proof(replace(decoded, value=n + 1), root)
        assert not verify_proof(replace(decoded, index=(decoded.index + 1) % 300), root)
        assert not verify_proof(replace(decoded, key=crowded[(n + 1) % 300]), root)
