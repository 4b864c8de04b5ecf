"""Validators and evidence: the sets consensus votes with, changes to them, equivocations.

The state keeps the validator sets of recent and coming heights
(``validators/history``: ``[[from_height, [[public_key, power], ...]], ...]``),
the proposer priorities of the next height (``validators/priorities``) and
committed evidence (``evidence/<offence>``). The ISO changes a validator's power
from two heights on (``validator_update``), never more than a third of the
power at once; anyone may put duplicate-vote evidence on the chain
(``evidence``), which removes the offender's power. See docs/consensus.md.
"""

from __future__ import annotations

from typing import Final

from ledger_core.state import keys
from ledger_core.state.kernel import (
    Account,
    Chain,
    Handler,
    Overlay,
    Rejected,
    int_of,
    require_operator,
    str_of,
)
from ledger_core.types.abci import BlockContext, Event
from ledger_core.types.codec import Value
from ledger_core.types.crypto import address_of
from ledger_core.types.evidence import EvidenceError
from ledger_core.types.evidence import verify as verify_evidence
from ledger_core.types.tx import Tx, TxType
from ledger_core.types.validators import MAX_VALIDATORS, ValidatorSet
from ledger_core.types.vote import DuplicateVoteEvidence

EVIDENCE_MAX_AGE: Final = 10_000
"""Evidence older than this many blocks is refused, and validator sets are kept in
state for as long as evidence about them can arrive."""


def first_height(history: list[Value]) -> int:
    first = history[0]
    assert isinstance(first, list)
    assert isinstance(first[0], int)
    return first[0]


def members_json_at(history: list[Value], height: int) -> list[Value]:
    """The ``[[public key, power], ...]`` in force at ``height`` (history ascends)."""
    found: list[Value] | None = None
    for entry in history:
        assert isinstance(entry, list)
        start, members = entry
        assert isinstance(start, int)
        assert isinstance(members, list)
        if start > height:
            break
        found = members
    assert found is not None, f"no validator set at height {height}"
    return found


def _powers_at(history: list[Value], height: int) -> dict[str, int]:
    """Public key (hex) to power, in force at ``height``."""
    powers: dict[str, int] = {}
    for item in members_json_at(history, height):
        assert isinstance(item, list)
        key, power = item
        assert isinstance(key, str)
        assert isinstance(power, int)
        powers[key] = power
    return powers


def _schedule_validators(
    state: Overlay, history: list[Value], height: int, powers: dict[str, int]
) -> None:
    """Record the set in force from ``height`` (replacing one already scheduled there)."""
    members = ValidatorSet((bytes.fromhex(k), p) for k, p in powers.items()).to_json()
    kept = [e for e in history if isinstance(e, list) and isinstance(e[0], int) and e[0] < height]
    state.put(keys.VALIDATORS, [*kept, [height, members]])


def _validator_update(
    chain: Chain, state: Overlay, tx: Tx, account: Account, ctx: BlockContext
) -> list[Event]:
    """Add, re-weight or (power 0) remove a validator from height ``ctx.height + 2``."""
    require_operator(account, "ISO")
    public_key = str_of(tx.body, "public_key")
    power = int_of(tx.body, "power")
    history = state.get(keys.VALIDATORS)
    assert isinstance(history, list)
    effective = ctx.height + 2
    base = _powers_at(history, ctx.height + 1)
    target = _powers_at(history, effective)
    if power == 0:
        if public_key not in target:
            raise Rejected("not_a_validator", f"{public_key} is not a validator")
        del target[public_key]
    else:
        target[public_key] = power
    if not target:
        raise Rejected("no_validators", "the last validator cannot be removed")
    if len(target) > MAX_VALIDATORS:
        raise Rejected("too_many_validators", f"a set holds at most {MAX_VALIDATORS} validators")
    moved = sum(abs(target.get(k, 0) - base.get(k, 0)) for k in base.keys() | target.keys())
    total = sum(base.values())
    if 3 * moved > total:
        raise Rejected(
            "too_much_change",
            f"the changes move {moved} of {total} voting power by height {effective}; "
            "at most a third may change at once",
        )
    _schedule_validators(state, history, effective, target)
    return [
        {
            "type": "validator_update",
            "address": address_of(bytes.fromhex(public_key)),
            "public_key": public_key,
            "power": power,
            "effective_height": effective,
        }
    ]


def commit_evidence(
    chain: Chain, state: Overlay, evidence: DuplicateVoteEvidence, ctx: BlockContext
) -> list[Event]:
    """Record a proven equivocation and remove the offender's power from ``ctx.height + 2``."""
    if evidence.height >= ctx.height:
        raise Rejected("future_evidence", "evidence is about heights before this block")
    if evidence.height < ctx.height - EVIDENCE_MAX_AGE:
        raise Rejected("old_evidence", f"evidence older than {EVIDENCE_MAX_AGE} blocks")
    history = state.get(keys.VALIDATORS)
    assert isinstance(history, list)
    if evidence.height < first_height(history):
        raise Rejected("old_evidence", "the validator set of that height is no longer kept")
    validators = ValidatorSet.from_json(members_json_at(history, evidence.height))
    try:
        member = verify_evidence(chain.genesis.chain_id, evidence, validators)
    except EvidenceError as err:
        raise Rejected("invalid_evidence", str(err)) from None
    key = keys.evidence(evidence.key)
    if state.get(key) is not None:
        raise Rejected("duplicate_evidence", "this equivocation is already on the chain")
    state.put(
        key,
        {
            "hash": evidence.hash,
            "validator": member.address,
            "power": member.power,
            "committed_height": ctx.height,
        },
    )
    target = _powers_at(history, ctx.height + 2)
    offender = member.public_key.hex()
    jailed = offender in target and len(target) > 1
    if jailed:
        del target[offender]
        _schedule_validators(state, history, ctx.height + 2, target)
    vote = evidence.vote_a
    return [
        {
            "type": "evidence_committed",
            "validator": member.address,
            "height": vote.height,
            "round": vote.round,
            "vote_type": vote.type,
            "jailed": jailed,
        }
    ]


def _evidence(
    chain: Chain, state: Overlay, tx: Tx, account: Account, ctx: BlockContext
) -> list[Event]:
    """Any registered participant may put duplicate-vote evidence on the chain."""
    evidence = DuplicateVoteEvidence.from_json(tx.body["evidence"], "body.evidence")
    return commit_evidence(chain, state, evidence, ctx)


HANDLERS: Final[dict[TxType, Handler]] = {
    TxType.VALIDATOR_UPDATE: _validator_update,
    TxType.EVIDENCE: _evidence,
}


def genesis_entries(validators: ValidatorSet) -> dict[str, Value]:
    """The validator entries of a new chain's state."""
    return {
        keys.VALIDATORS: [[1, validators.to_json()]],
        keys.PRIORITIES: {"height": 1, "priorities": validators.priorities_json()},
    }


def validator_set(state: Overlay, height: int, next_height: int) -> ValidatorSet:
    """The validators of ``height`` given the state after ``next_height - 1`` (the next
    block's set carries its proposer priorities); KeyError for a height the state no
    longer or not yet knows."""
    history = state.get(keys.VALIDATORS)
    assert isinstance(history, list)
    if height > next_height + 1 or height < first_height(history):
        raise KeyError(f"no validator set for height {height} at height {next_height - 1}")
    members = members_json_at(history, height)
    if height != next_height:
        return ValidatorSet.from_json(members)
    priorities = state.get(keys.PRIORITIES)
    assert isinstance(priorities, dict)
    return ValidatorSet.from_json(members, priorities["priorities"])


def advance(state: Overlay, height: int) -> None:
    """At the end of block ``height``: the next height's proposer priorities, and
    validator sets too old for evidence dropped."""
    history = state.get(keys.VALIDATORS)
    assert isinstance(history, list)
    priorities = state.get(keys.PRIORITIES)
    assert isinstance(priorities, dict)
    now = ValidatorSet.from_json(members_json_at(history, height), priorities["priorities"])
    following = ValidatorSet.from_json(members_json_at(history, height + 1))
    if following.hash != now.hash:
        now = now.updated((m.public_key, m.power) for m in following.members)
    upcoming = now.advanced()
    state.put(keys.PRIORITIES, {"height": height + 1, "priorities": upcoming.priorities_json()})
    cutoff = height + 1 - EVIDENCE_MAX_AGE
    keep = 0
    for i, entry in enumerate(history):
        assert isinstance(entry, list)
        if isinstance(entry[0], int) and entry[0] <= cutoff:
            keep = i
    if keep:
        state.put(keys.VALIDATORS, history[keep:])
