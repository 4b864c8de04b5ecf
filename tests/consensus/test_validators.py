"""Validator sets: quorums, hashes, encoding and the weighted round-robin proposer."""

from __future__ import annotations

import contextlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ledger_core.types.validators import MAX_POWER, ValidatorSet
from tests.consensus.keys import validator_keys, validator_set

KEYS = validator_keys(7)


@given(st.lists(st.integers(1, 30), min_size=1, max_size=7))
def test_over_total_power_heights_each_validator_proposes_its_power(powers: list[int]) -> None:
    validators = validator_set(KEYS[: len(powers)], powers)
    counts: dict[str, int] = {}
    current = validators
    for _ in range(validators.total):
        address = current.proposer(0).address
        counts[address] = counts.get(address, 0) + 1
        current = current.advanced()
    assert counts == {m.address: m.power for m in validators.members}
    assert current == validators, "the rotation is periodic"


@given(st.lists(st.integers(1, 30), min_size=1, max_size=7), st.integers(0, 40))
def test_round_r_has_the_proposer_of_r_heights_later(powers: list[int], round_: int) -> None:
    validators = validator_set(KEYS[: len(powers)], powers)
    later = validators
    for _ in range(round_):
        later = later.advanced()
    assert validators.proposer(round_) == later.proposer(0)


def test_quorums_are_strictly_more_than_two_thirds_and_one_third() -> None:
    validators = validator_set(KEYS[:4])  # 40
    assert not validators.has_quorum(26)
    assert validators.has_quorum(27)
    assert not validators.has_one_third(13)
    assert validators.has_one_third(14)
    assert validators.power_of([KEYS[0].address, KEYS[0].address, "tv" + "0" * 40]) == 10


def test_new_validators_wait_and_leavers_go() -> None:
    validators = validator_set(KEYS[:3])
    for _ in range(5):
        validators = validators.advanced()
    members = [(m.public_key, m.power) for m in validators.members[1:]]
    members.append((KEYS[3].public_key, 10))
    updated = validators.updated(members)
    assert updated.get(KEYS[3].address) is not None
    assert updated.get(validators.members[0].address) is None
    joined = updated.priorities[[m.address for m in updated.members].index(KEYS[3].address)]
    assert joined == -(30 + 30 // 8)
    for member in validators.members[1:]:
        index_before = [m.address for m in validators.members].index(member.address)
        index_after = [m.address for m in updated.members].index(member.address)
        assert updated.priorities[index_after] == validators.priorities[index_before]
    assert updated.proposer(0).address != KEYS[3].address


def test_sets_round_trip_and_bad_sets_are_refused() -> None:
    validators = validator_set(KEYS[:4], [1, 2, 3, 4]).advanced()
    again = ValidatorSet.from_json(validators.to_json(), validators.priorities_json())
    assert again == validators
    assert again.hash == ValidatorSet.from_json(validators.to_json()).hash
    assert validator_set(KEYS[:4], [1, 2, 3, 5]).hash != validators.hash
    with pytest.raises(ValueError, match="at least one"):
        ValidatorSet([])
    with pytest.raises(ValueError, match="power"):
        ValidatorSet([(KEYS[0].public_key, MAX_POWER + 1)])
    with pytest.raises(ValueError, match="twice"):
        ValidatorSet([(KEYS[0].public_key, 1), (KEYS[0].public_key, 2)])
    listed = validators.to_json()
    assert isinstance(listed, list)
    for bad in ([], [[1, 2]], [["zz" * 32, 1]], [[KEYS[0].public_key.hex().upper(), 1]],
                [[KEYS[0].public_key.hex(), True]], list(reversed(listed))):  # fmt: skip
        with pytest.raises(ValueError):  # noqa: PT011 - each says its own reason
            ValidatorSet.from_json(bad)
    with pytest.raises(ValueError, match="priorities"):
        ValidatorSet.from_json(listed, [["tv", 0]] * len(listed))


@given(st.recursive(st.none() | st.booleans() | st.integers() | st.text(max_size=70),
                    lambda inner: st.lists(inner, max_size=4), max_leaves=12))  # fmt: skip
def test_decoding_a_set_never_crashes(value: object) -> None:
    with contextlib.suppress(ValueError):
        ValidatorSet.from_json(value)


def test_priorities_far_apart_are_scaled_back_and_rounds_start_at_zero() -> None:
    validators = ValidatorSet(
        [(KEYS[0].public_key, 1), (KEYS[1].public_key, 1), (KEYS[2].public_key, 1)],
        [1_000_000, -999_999, -1],
    )
    assert validators.proposer(0) == validators.members[0]
    following = validators.advanced()
    assert max(following.priorities) - min(following.priorities) <= 2 * following.total + 3
    assert sum(following.priorities) in range(-3, 4)
    with pytest.raises(ValueError, match="rounds start at 0"):
        validators.proposer(-1)
    with pytest.raises(ValueError, match="one priority per validator"):
        ValidatorSet([(KEYS[0].public_key, 1)], [1, 2])
    assert "3 validators" in repr(validators)
    assert validators != "a set"
    assert len({validators, ValidatorSet.from_json(validators.to_json(),
                                                   validators.priorities_json())}) == 1  # fmt: skip
