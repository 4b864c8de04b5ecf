"""The validator's files: the write-ahead log and the private validator's last-signed state."""

from __future__ import annotations

import json
import logging
from dataclasses import replace
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ledger_core.consensus.privval import DoubleSignError, PrivValError, PrivValidator
from ledger_core.consensus.wal import WAL, frame, read_records
from ledger_core.types.proposal import Proposal
from ledger_core.types.vote import PRECOMMIT, PREVOTE, STEP_PREVOTE, Vote
from tests.consensus.keys import validator_keys
from tests.consensus.test_messages import sample_block
from tests.state.chain import CHAIN_ID

KEY = validator_keys(1)[0]
BLOCK = "aa" * 32


@given(st.lists(st.binary(max_size=40), max_size=6), st.integers(0, 400), st.integers(0, 255))
def test_reading_a_damaged_log_keeps_exactly_the_whole_records_before_the_damage(
    records: list[bytes], cut: int, flip: int
) -> None:
    data = b"".join(frame(r) for r in records)
    found, good, problem = read_records(data)
    assert (found, good, problem) == (records, len(data), "")
    cut = min(cut, len(data))
    found, good, problem = read_records(data[:cut])
    assert found == records[: len(found)]
    assert good <= cut
    assert bool(problem) == (good < cut)
    if data:
        damaged = bytearray(data)
        damaged[flip % len(data)] ^= 0x5A
        found, good, _ = read_records(bytes(damaged))
        assert found == records[: len(found)]


def test_the_log_rotates_per_height_and_cuts_a_damaged_tail(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    wal = WAL(tmp_path / "wal")
    assert wal.open(1) == []
    wal.write(b"one", sync=False)
    wal.write(b"two", sync=True)
    assert wal.open(2) == []
    assert wal.open(1) == [b"one", b"two"]
    with wal.path(1).open("ab") as handle:
        handle.write(frame(b"three")[:-2])
    with caplog.at_level(logging.WARNING):
        assert wal.open(1) == [b"one", b"two"]
    assert "cut short" in caplog.text
    assert wal.path(1).stat().st_size == len(frame(b"one") + frame(b"two"))
    wal.write(b"four", sync=True)
    assert wal.open(1) == [b"one", b"two", b"four"]
    wal.open(5)
    assert not wal.path(1).exists()
    assert not wal.path(2).exists()
    wal.close()


def vote(vote_type: str = PREVOTE, block: str | None = BLOCK, round_: int = 0) -> Vote:
    return Vote(vote_type, 5, round_, block, 1_000, KEY.address)


def test_the_private_validator_never_signs_two_conflicting_messages(tmp_path: Path) -> None:
    path = tmp_path / "privval.json"
    signer = PrivValidator(KEY, CHAIN_ID, path)
    first = signer.sign_vote(vote())
    assert first.verify(CHAIN_ID, KEY.public_key)
    again = PrivValidator(KEY, CHAIN_ID, path)  # after a restart
    assert again.sign_vote(vote()) == first, "the same message gets the same signature"
    later = again.sign_vote(replace(vote(), timestamp=9_999))
    assert later == first, "a new timestamp keeps the one already signed"
    with pytest.raises(DoubleSignError, match="already signed"):
        again.sign_vote(vote(block=None))
    assert again.signed_vote_at(5, 0, STEP_PREVOTE) == first
    precommit = again.sign_vote(vote(PRECOMMIT))
    assert precommit.signature != first.signature
    with pytest.raises(DoubleSignError, match="before the last signed"):
        again.sign_vote(vote())
    with pytest.raises(DoubleSignError, match="not"):
        again.sign_vote(replace(vote(round_=1), validator="tv" + "0" * 40))
    proposal = Proposal(6, 0, -1, sample_block(6), 1, KEY.address)
    signed = again.sign_proposal(proposal)
    assert signed.verify(CHAIN_ID, KEY.public_key)
    other = Proposal(6, 0, -1, sample_block(6, txs=1), 1, KEY.address)
    with pytest.raises(DoubleSignError):
        again.sign_proposal(other)
    state = json.loads(path.read_text())
    assert (state["height"], state["round"], state["step"]) == (6, 0, 1)
    assert not path.with_name(path.name + ".tmp").exists()


def test_an_unreadable_state_file_stops_the_validator(tmp_path: Path) -> None:
    path = tmp_path / "privval.json"
    path.write_text("{not json")
    with pytest.raises(PrivValError, match=r"privval.json: damaged .*restore it from a backup"):
        PrivValidator(KEY, CHAIN_ID, path)
    path.write_bytes(b"\xff\xfe")
    with pytest.raises(PrivValError, match=r"damaged \(not UTF-8 text\)"):
        PrivValidator(KEY, CHAIN_ID, path)
