"""Consensus and sync messages: canonical round trips, and decoders fuzzed with hostile input."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable
from dataclasses import replace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ledger_core.consensus.sync import (
    MAX_SYNC_BLOCKS,
    Blocks,
    Committed,
    GetBlocks,
    GetSnapshot,
    GetStatus,
    Snapshot,
    Status,
    committed_height,
    decode_sync,
    encode_sync,
)
from ledger_core.types import codec
from ledger_core.types.block import Block, Header, make_block
from ledger_core.types.fields import FieldError
from ledger_core.types.proposal import Proposal, decode_message, encode_message
from ledger_core.types.tx import TxType, sign
from ledger_core.types.vote import PRECOMMIT, PREVOTE, Commit, DuplicateVoteEvidence, Vote
from tests.consensus.keys import commit, validator_keys, validator_set, vote
from tests.state.chain import CHAIN_ID, START, key

KEYS = validator_keys(4)
VALIDATORS = validator_set(KEYS)


def sample_block(height: int = 2, txs: int = 2) -> Block:
    wires = [
        sign(key("iso"), CHAIN_ID, TxType.DEPOSIT_REQUEST, i + 1, {"amount": 5 + i}).wire()
        for i in range(txs)
    ]
    previous = "11" * 32
    last = commit(KEYS[:3], height - 1, previous) if height > 1 else None
    evidence = (
        DuplicateVoteEvidence.of(
            vote(KEYS[3], PREVOTE, 1, 0, "aa" * 32), vote(KEYS[3], PREVOTE, 1, 0, None)
        ),
    )
    return make_block(
        KEYS[0],
        chain_id=CHAIN_ID,
        height=height,
        time_ms=START * 1000,
        previous_hash=previous,
        txs=wires,
        app_hash=bytes(32),
        validators_hash=VALIDATORS.hash,
        next_validators_hash=VALIDATORS.hash,
        last_commit=last,
        evidence=evidence,
    )


def test_messages_round_trip_through_their_canonical_bytes() -> None:
    block = sample_block()
    proposal = Proposal(2, 1, 0, block, 5_000, KEYS[0].address).signed(KEYS[0], CHAIN_ID)
    assert proposal.verify(CHAIN_ID, KEYS[0].public_key)
    assert not proposal.verify("another-chain", KEYS[0].public_key)
    assert decode_message(encode_message(proposal)) == proposal
    precommit = vote(KEYS[1], PRECOMMIT, 2, 1, block.header.hash)
    assert decode_message(encode_message(precommit)) == precommit
    assert Block.from_json(json.loads(block.encode())) == block
    seen = commit(KEYS, 2, block.header.hash)
    snapshot = Snapshot(block.header, block.signature, seen, VALIDATORS, VALIDATORS,
                        (("a", 1), ("b", {"c": [1, "x"]})))  # fmt: skip
    for message in (
        Committed(block, seen),
        GetStatus(),
        Status(9, 3),
        GetBlocks(3, 3 + MAX_SYNC_BLOCKS - 1),
        Blocks((Committed(block, seen),)),
        GetSnapshot(),
        snapshot,
    ):
        assert decode_sync(encode_sync(message)) == message


def test_decoders_name_what_is_wrong() -> None:
    block = sample_block()
    good = json.loads(block.encode())
    cases = [
        ({**good, "txs": good["txs"][:-1]}, "do not match"),
        ({**good, "header": {**good["header"], "height": -1}}, "header.height"),
        ({**good, "signature": "zz"}, "signature"),
        ({**good, "evidence": [{"vote_a": good["evidence"][0]["vote_a"],
                                "vote_b": good["evidence"][0]["vote_a"]}]}, "same block"),
    ]  # fmt: skip
    for value, where in cases:
        with pytest.raises(FieldError, match=where):
            Block.from_json(value)
    vote_json = json.loads(encode_message(vote(KEYS[0], PREVOTE, 1, 0, None)))["vote"]
    with pytest.raises(FieldError, match=r"vote\.type"):
        Vote.from_json({**vote_json, "type": "maybe"})
    with pytest.raises(FieldError, match="pol_round"):
        Proposal.from_json({"height": 2, "round": 1, "pol_round": 1, "block": good,
                            "timestamp": 1, "proposer": KEYS[0].address,
                            "signature": "00" * 64})  # fmt: skip
    commit_json = json.loads(commit(KEYS, 2, "aa" * 32).encode())
    with pytest.raises(FieldError, match="increasing"):
        Commit.from_json({**commit_json, "signatures": commit_json["signatures"][::-1]})
    seen = commit(KEYS, 2, block.header.hash)
    item = {"block": good, "commit": json.loads(seen.encode())}
    with pytest.raises(FieldError, match="consecutive"):
        decode_sync(codec.encode({"blocks": [item, item]}))
    with pytest.raises(FieldError, match=r"get_blocks\.to"):
        decode_sync(codec.encode({"get_blocks": {"from": 5, "to": 5 + MAX_SYNC_BLOCKS}}))
    with pytest.raises(FieldError, match="unknown"):
        decode_message(codec.encode({"gossip": 1}))


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**64), 2**64) | st.text(max_size=80),
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=12), inner,
                                                                 max_size=6),
    max_leaves=30,
)  # fmt: skip


def _mutations(value: codec.Value) -> st.SearchStrategy[codec.Value]:
    """A valid message's JSON with one part (anywhere in it) replaced by anything."""

    def paths(node: codec.Value, prefix: list[int | str]) -> list[list[int | str]]:
        found = [prefix]
        if isinstance(node, dict):
            for k, v in node.items():
                found += paths(v, [*prefix, k])
        elif isinstance(node, list):
            for i, v in enumerate(node[:3]):
                found += paths(v, [*prefix, i])
        return found

    return st.tuples(st.sampled_from(paths(value, [])), json_values).map(
        lambda pair: _set(value, pair[0], pair[1])
    )


def _set(node: codec.Value, path: list[int | str], new: codec.Value) -> codec.Value:
    if not path:
        return new
    head, *rest = path
    if isinstance(node, dict):
        return {**node, str(head): _set(node[str(head)], rest, new)}
    assert isinstance(node, list)
    assert isinstance(head, int)
    copy = list(node)
    copy[head] = _set(copy[head], rest, new)
    return copy


def outcome[T](decoder: Callable[[bytes], T], data: bytes) -> T | FieldError:
    """What a decoder returns, or the error it raises."""
    try:
        return decoder(data)
    except FieldError as err:
        return err


PROPOSAL = json.loads(
    encode_message(
        Proposal(2, 1, 0, sample_block(), 5_000, KEYS[0].address).signed(KEYS[0], CHAIN_ID)
    )
)
SYNC = json.loads(
    encode_sync(Blocks((Committed(sample_block(), commit(KEYS, 2, sample_block().header.hash)),)))
)


@given(st.binary(max_size=300))
def test_random_bytes_never_crash_the_decoders(data: bytes) -> None:
    for decoder in (decode_message, decode_sync):
        with contextlib.suppress(FieldError):
            decoder(data)


@given(_mutations(PROPOSAL))
def test_mutated_proposals_decode_or_fail_with_a_field(value: codec.Value) -> None:
    message = outcome(decode_message, codec.encode(value))
    if isinstance(message, FieldError):
        assert message.field
        return
    assert isinstance(message, Proposal)
    assert encode_message(message) == codec.encode(value), "only canonical input is accepted"


@given(_mutations(SYNC))
def test_mutated_sync_messages_decode_or_fail_with_a_field(value: codec.Value) -> None:
    message = outcome(decode_sync, codec.encode(value))
    if isinstance(message, FieldError):
        assert message.field
        return
    assert encode_sync(message) == codec.encode(value)


@given(json_values)
def test_any_json_value_is_refused_cleanly_as_a_block_header_or_commit(value: object) -> None:
    for decoder in (Block.from_json, Header.from_json, Commit.from_json, Vote.from_json,
                    DuplicateVoteEvidence.from_json):  # fmt: skip
        with contextlib.suppress(FieldError):
            decoder(value)  # type: ignore[operator]


def test_a_header_field_change_changes_the_block_hash() -> None:
    header = sample_block().header
    for name in ("validators_hash", "next_validators_hash", "last_commit_hash", "evidence_hash"):
        assert replace(header, **{name: "00" * 32}).hash != header.hash


def test_snapshot_and_commit_shapes_are_checked() -> None:
    block = sample_block()
    seen = commit(KEYS, 2, block.header.hash)
    good = json.loads(
        encode_sync(
            Snapshot(
                block.header, block.signature, seen, VALIDATORS, VALIDATORS, (("a", 1), ("b", 2))
            )
        )
    )["snapshot"]
    cases = [
        ({**good, "state": {}}, "list of"),
        ({**good, "state": [["a"]]}, r"state\[0\]"),
        ({**good, "state": [["", 1]]}, "non-empty"),
        ({**good, "state": [["b", 1], ["a", 1]]}, "increasing"),
        ({**good, "state": [["a", None]]}, "null"),
        ({**good, "validators": []}, "snapshot.validators"),
    ]
    for value, where in cases:
        with pytest.raises(FieldError, match=where):
            decode_sync(codec.encode({"snapshot": value}))
    other = commit(KEYS, 2, "cc" * 32)
    mismatched = {"block": json.loads(block.encode()), "commit": json.loads(other.encode())}
    with pytest.raises(FieldError, match="not the commit of the block"):
        decode_sync(codec.encode({"committed": mismatched}))
    with pytest.raises(FieldError, match="one key"):
        decode_sync(codec.encode({"status": {}, "get_status": {}}))
    with pytest.raises(FieldError, match="unknown"):
        decode_sync(codec.encode({"gossip": {}}))


@given(
    st.integers(1, 10**12),
    st.integers(0, 3),
    st.sampled_from(["a-1", "barrio-7", "z" * 48]),
)
def test_the_height_of_a_committed_block_reads_without_decoding(
    height: int, txs: int, chain_id: str
) -> None:
    block = sample_block(height=max(2, height), txs=txs)
    block = replace(block, header=replace(block.header, chain_id=chain_id))
    message = encode_sync(Committed(block, commit(KEYS, block.header.height, block.header.hash)))
    assert committed_height(message) == block.header.height
    assert (
        committed_height(encode_sync(Blocks((Committed(block, commit(KEYS, 2, "aa" * 32)),))))
        is None
    )
    assert committed_height(encode_sync(Status(height, 1))) is None


@given(st.binary(max_size=400))
def test_the_height_peek_never_fails_on_any_bytes(data: bytes) -> None:
    found = committed_height(b'{"committed":{"block":{' + data)
    assert found is None or found >= 1
