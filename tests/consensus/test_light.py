"""Light verification: the commit of a header, validator-set changes, skipping, forgeries."""

from __future__ import annotations

from dataclasses import replace

import pytest

from ledger_core.consensus.light import LightClient, LightError, verify_commit
from ledger_core.types.block import GENESIS_PREVIOUS, Header
from ledger_core.types.crypto import SigningKey
from ledger_core.types.validators import ValidatorSet
from tests.consensus.keys import commit, validator_keys, validator_set
from tests.state.chain import CHAIN_ID, START

OLD = validator_keys(4, "old")
NEW = validator_keys(4, "new")


def header(height: int, previous: str, validators: ValidatorSet, following: ValidatorSet) -> Header:
    return Header(
        chain_id=CHAIN_ID,
        height=height,
        time_ms=(START + height) * 1000,
        previous_hash=previous,
        txs_root="00" * 32,
        tx_count=0,
        app_hash=f"{height:064x}",
        proposer=validators.members[0].address,
        validators_hash=validators.hash,
        next_validators_hash=following.hash,
        last_commit_hash="00" * 32,
        evidence_hash="00" * 32,
    )


def chain_of(sets: list[list[SigningKey]]) -> list[tuple[Header, ValidatorSet, ValidatorSet]]:
    """Headers 1..n where height h is run by sets[h-1]."""
    out = []
    previous = GENESIS_PREVIOUS
    for i, keys in enumerate(sets):
        validators = validator_set(keys)
        following = validator_set(sets[i + 1] if i + 1 < len(sets) else keys)
        made = header(i + 1, previous, validators, following)
        out.append((made, validators, following))
        previous = made.hash
    return out


def test_a_client_follows_a_chain_through_a_validator_set_change() -> None:
    # the set changes by one validator per height: old -> ... -> new
    sets = [OLD[: 4 - i] + NEW[:i] for i in range(5)] + [NEW] * 2
    headers = chain_of(sets)
    client = LightClient(CHAIN_ID, validator_set(OLD))
    for (made, validators, following), keys in zip(headers, sets, strict=True):
        client.update(made, commit(keys[:3], made.height, made.hash), validators, following)
    assert client.height == len(sets)


def test_forged_and_badly_signed_headers_are_refused() -> None:
    (first, validators, following), (second, validators2, following2) = chain_of([OLD, OLD])
    client = LightClient(CHAIN_ID, validators)
    good = commit(OLD[:3], 1, first.hash)
    forged = replace(first, app_hash="ff" * 32)
    with pytest.raises(LightError, match="another block"):
        client.update(forged, good, validators, following)
    with pytest.raises(LightError, match="two thirds"):
        client.update(first, commit(OLD[:2], 1, first.hash), validators, following)
    with pytest.raises(LightError, match="not a validator"):
        client.update(first, commit([*OLD[:2], NEW[0]], 1, first.hash), validators, following)
    with pytest.raises(LightError, match="names"):
        client.update(first, good, validator_set(NEW), following)
    with pytest.raises(LightError, match="next validator set"):
        client.update(first, good, validators, validator_set(NEW))
    with pytest.raises(LightError, match="chain"):
        verify_commit("another-chain", validators, first, good)
    client.update(first, good, validators, following)
    with pytest.raises(LightError, match="not above"):
        client.update(first, good, validators, following)
    detached = replace(second, previous_hash="22" * 32)
    with pytest.raises(LightError, match="does not follow"):
        client.update(detached, commit(OLD[:3], 2, detached.hash), validators2, following2)


def test_a_header_signed_by_an_old_or_unknown_set_is_refused() -> None:
    # the chain moved to NEW; an attacker holding the OLD keys signs a header claiming OLD
    client = LightClient(CHAIN_ID, validator_set(NEW))
    fake = header(1, GENESIS_PREVIOUS, validator_set(OLD), validator_set(OLD))
    with pytest.raises(LightError, match="not the one announced"):
        client.update(fake, commit(OLD, 1, fake.hash), validator_set(OLD), validator_set(OLD))


def test_skipping_needs_a_third_of_the_trusted_power() -> None:
    sets = [OLD, OLD[:3] + NEW[:1], OLD[:2] + NEW[:2], OLD[:1] + NEW[:3], NEW]
    headers = chain_of(sets)
    far, validators, following = headers[2]  # OLD[:2] + NEW[:2]: half of OLD remains
    client = LightClient(CHAIN_ID, validator_set(OLD))
    client.update(far, commit(OLD[:2] + NEW[:1], 3, far.hash), validators, following)
    assert client.height == 3
    last, validators, following = headers[4]  # NEW only: nobody the client trusts signed
    fresh = LightClient(CHAIN_ID, validator_set(OLD))
    with pytest.raises(LightError, match="one third"):
        fresh.update(last, commit(NEW[:3], 5, last.hash), validators, following)
