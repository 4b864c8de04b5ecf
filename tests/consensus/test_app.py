"""The state machine's consensus side: execution without commit, validator changes, evidence."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ledger_core.state import validators as validators_module
from ledger_core.state.commitment import StaleStageError, StateCommitment
from ledger_core.state.machine import StateMachine
from ledger_core.types import codec, merkle
from ledger_core.types.abci import BlockContext, InvalidBlock
from ledger_core.types.commitment import BUCKETS, bucket_of, bucket_root, leaf
from ledger_core.types.tx import TxType
from ledger_core.types.vote import PREVOTE, DuplicateVoteEvidence
from tests.consensus.keys import vote
from tests.state.chain import Chain, key


def test_executing_a_block_changes_nothing_until_it_is_applied() -> None:
    chain = Chain()
    alice = chain.register("alice")
    app = chain.app
    before, height = app.app_hash, app.height
    state = dict(app.state)
    deposit = chain.tx(alice, TxType.DEPOSIT_REQUEST, amount=50)
    execution = app.execute(BlockContext(height + 1, chain.time + 5), [deposit])
    assert (app.app_hash, app.height, app.state) == (before, height, state)
    assert execution.results[0].ok
    assert execution.app_hash != before
    twin = Chain()
    twin.register("alice")
    twin.time = chain.time
    twin.block(deposit)
    assert twin.app.app_hash == execution.app_hash, "the same as the step-by-step path"
    app.apply(execution)
    assert app.app_hash == execution.app_hash
    assert app.height == height + 1
    with pytest.raises(ValueError, match="execution is on height"):
        app.apply(execution)


def test_the_operator_changes_validators_two_blocks_later_within_a_third_of_the_power() -> None:
    chain = Chain()  # one validator of power 10
    first = key("validator")
    joiner = key("joiner")
    app = chain.app
    [result] = chain.block(
        chain.tx(chain.dso, TxType.VALIDATOR_UPDATE, public_key=joiner.public_key.hex(), power=1)
    )
    assert result.code == "not_permitted"
    [result] = chain.block(
        chain.tx(chain.iso, TxType.VALIDATOR_UPDATE, public_key=joiner.public_key.hex(), power=4)
    )
    assert result.code == "too_much_change"
    height = app.height + 1
    ok, too_much = chain.block(
        chain.tx(chain.iso, TxType.VALIDATOR_UPDATE, public_key=joiner.public_key.hex(), power=2),
        chain.tx(chain.iso, TxType.VALIDATOR_UPDATE, public_key=joiner.public_key.hex(), power=4),
    )
    assert ok.ok, ok.message
    assert ok.events[0]["effective_height"] == height + 2
    assert too_much.code == "too_much_change", "changes in one block add up"
    assert app.validator_set(height + 1).get(joiner.address) is None
    assert app.validator_set(height + 2).get(joiner.address) is not None
    chain.block()
    validators = app.validator_set()
    assert app.height + 1 == height + 2
    assert {m.address: m.power for m in validators.members} == {
        first.address: 10,
        joiner.address: 2,
    }
    [result] = chain.block(
        chain.tx(
            chain.iso, TxType.VALIDATOR_UPDATE, public_key=key("nobody").public_key.hex(), power=0
        )
    )
    assert result.code == "not_a_validator"
    [result] = chain.block(
        chain.tx(chain.iso, TxType.VALIDATOR_UPDATE, public_key=joiner.public_key.hex(), power=0)
    )
    assert result.ok
    chain.block()
    chain.block()
    assert app.validator_set().get(joiner.address) is None
    [result] = chain.block(
        chain.tx(chain.iso, TxType.VALIDATOR_UPDATE, public_key=first.public_key.hex(), power=0)
    )
    assert result.code == "no_validators"


def conflicting(height: int, signer_name: str = "validator") -> DuplicateVoteEvidence:
    signer = key(signer_name)
    return DuplicateVoteEvidence.of(
        vote(signer, PREVOTE, height, 0, "aa" * 32), vote(signer, PREVOTE, height, 0, None)
    )


def test_evidence_is_verified_recorded_once_and_jails_the_offender() -> None:
    chain = Chain()
    app = chain.app
    witness = chain.register("witness")
    joiner = key("joiner")
    chain.ok(
        chain.tx(chain.iso, TxType.VALIDATOR_UPDATE, public_key=joiner.public_key.hex(), power=3)
    )
    chain.block()
    chain.block()
    assert app.validator_set().get(joiner.address) is not None
    evidence = conflicting(app.height, "joiner")
    [future] = chain.block(chain.tx(witness, TxType.EVIDENCE, evidence=evidence.to_json()))
    assert future.ok, "evidence of the last block is fine"
    [again] = chain.block(chain.tx(witness, TxType.EVIDENCE, evidence=evidence.to_json()))
    assert again.code == "duplicate_evidence"
    [forged] = chain.block(
        chain.tx(witness, TxType.EVIDENCE, evidence=conflicting(2, "stranger").to_json())
    )
    assert forged.code == "invalid_evidence"
    [early] = chain.block(
        chain.tx(witness, TxType.EVIDENCE, evidence=conflicting(app.height + 5).to_json())
    )
    assert early.code == "future_evidence"
    event = future.events[0]
    assert event["type"] == "evidence_committed"
    assert (event["validator"], event["jailed"]) == (joiner.address, True)
    assert app.validator_set().get(joiner.address) is None
    assert app.state[f"evidence/{evidence.key}"]["validator"] == joiner.address  # type: ignore[index]
    with pytest.raises(InvalidBlock, match="already on the chain"):
        app.execute(BlockContext(app.height + 1, chain.time + 5), [], [evidence])
    lone = conflicting(app.height)
    execution = app.execute(BlockContext(app.height + 1, chain.time + 5), [], [lone])
    assert execution.block_events[0]["jailed"] is False, "the last validator stays"


# Keys as the state builds them, and any text (quotes, backslashes, controls, non-ASCII).
keys = st.text(alphabet="abcdef/0123", min_size=1, max_size=6) | st.text(min_size=1, max_size=4)
values = st.none() | st.integers(-5, 5) | st.text(max_size=3)


@given(st.dictionaries(keys, st.integers(0, 9), max_size=30),
       st.dictionaries(keys, values, max_size=30))  # fmt: skip
def test_a_staged_root_equals_the_root_after_the_writes(
    start: dict[str, int], writes: dict[str, codec.Value]
) -> None:
    commitment = StateCommitment()
    for k, v in start.items():
        commitment.set(k, v)
    before = commitment.root()
    staged = commitment.stage({k: (v, None) for k, v in writes.items()})
    assert commitment.root_with({k: (v, None) for k, v in writes.items()}) == staged.root
    assert commitment.root() == before
    final = {**start, **{k: v for k, v in writes.items() if v is not None}}
    for k, v in writes.items():
        if v is None:
            final.pop(k, None)
    buckets: list[list[bytes]] = [[] for _ in range(BUCKETS)]
    for k in sorted(final):
        buckets[bucket_of(k)].append(merkle.leaf_hash(leaf(k, final[k])))
    expected = merkle.root_of_hashes([bucket_root(b) for b in buckets])
    assert staged.root == expected
    commitment.install(staged)
    assert commitment.root() == expected
    for k, value in final.items():
        proof = commitment.prove(k)
        assert proof is not None
        assert proof.value == value
    with pytest.raises(StaleStageError):
        commitment.install(staged)


def test_the_genesis_state_names_its_validators() -> None:
    app = StateMachine(Chain().genesis)
    validators = app.validator_set()
    assert [m.address for m in validators.members] == [key("validator").address]
    assert app.validator_set(2) == validators.__class__.from_json(validators.to_json())
    with pytest.raises(KeyError):
        app.validator_set(3)


def test_validator_sets_older_than_the_evidence_window_are_dropped(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(validators_module, "EVIDENCE_MAX_AGE", 3)
    chain = Chain()
    app = chain.app
    for power in (3, 0):
        chain.ok(chain.tx(chain.iso, TxType.VALIDATOR_UPDATE,
                          public_key=key("joiner").public_key.hex(), power=power))  # fmt: skip
    history = app.state["validators/history"]
    assert isinstance(history, list)
    assert len(history) == 3
    for _ in range(6):
        chain.block()
    history = app.state["validators/history"]
    assert isinstance(history, list)
    assert len(history) == 1, "only the set still in force is kept"
    with pytest.raises(KeyError):
        app.validator_set(2)
    witness = chain.register("witness")
    [old] = chain.block(chain.tx(witness, TxType.EVIDENCE, evidence=conflicting(2).to_json()))
    assert old.code == "old_evidence"
