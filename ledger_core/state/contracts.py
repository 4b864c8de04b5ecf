"""Contracts on the ledger: proposal, countersigning, revocation and expiry.

A participant proposes a contract's canonical text (``contract_propose``); its
id is the content hash of the parsed contract. The parties it names -- operator
roles (ISO, SUPPLIER, DSO), registered addresses or participants' names (resolved
to addresses once, at the proposal) -- must each sign
(``contract_sign``) before it is ``active``; all of them together may revoke it
(``contract_revoke``); it expires when its validity window closes (the
machine's ``end_block`` calls :func:`expire` with the due index entries).
"""

from __future__ import annotations

from datetime import datetime
from typing import Final

from contracts import ContractError, content_hash, format_contract, parse
from contracts.model import Party
from ledger_core.state import keys
from ledger_core.state.kernel import (
    Account,
    Chain,
    Handler,
    Overlay,
    Rejected,
    active_account,
    require_participant,
    str_of,
)
from ledger_core.types.abci import BlockContext, Event
from ledger_core.types.codec import Value
from ledger_core.types.crypto import ADDRESS_RE
from ledger_core.types.names import name_problem, normalise
from ledger_core.types.tx import Tx, TxType


def resolve_parties(
    chain: Chain, state: Overlay, proposer: str, parties: list[Party]
) -> tuple[list[str], dict[str, str]]:
    """The signers (the proposer first, then each party's address once) and how each party
    written as a participant's name resolved (``{written: address}``).

    A quoted party is an address, or the display name of a registered participant (in any
    case: names are compared in lower case). Names resolve once, here, at the proposal; the
    record keeps the addresses, so a contract's parties never change when a name is later
    given to someone else.
    """
    signers = [proposer]
    resolved: dict[str, str] = {}
    for party in parties:
        if party.is_role and party.name in ("ISO", "SUPPLIER", "DSO"):
            address = chain.genesis.operator_for(party.name).address
        elif party.is_role:
            raise Rejected(
                "unknown_party",
                f"the role {party.name} has no account on this chain; name it by address",
            )
        elif ADDRESS_RE.fullmatch(party.name):
            address = party.name
            active_account(state, address, "party")
        else:
            address = _named(state, party.name)
            resolved[party.name] = address
        if address not in signers:
            signers.append(address)
    return signers, resolved


def _named(state: Overlay, written: str) -> str:
    """The active participant a quoted party names, or a refusal that says what to write."""
    name = normalise(written)
    if name_problem(name) is not None:
        raise Rejected(
            "unknown_party",
            f"party {written!r} is neither an address (tv + 40 hex digits) nor a "
            "participant's name",
        )
    holder = state.get(keys.name(name))
    if not isinstance(holder, str):
        raise Rejected(
            "unknown_party",
            f"no participant is named {written!r}; the operator's participant list "
            "(transactiva operator participants) has every name",
        )
    active_account(state, holder, f"party {written!r}")
    return holder


def _contract_propose(
    chain: Chain, state: Overlay, tx: Tx, account: Account, ctx: BlockContext
) -> list[Event]:
    require_participant(account)
    source = str_of(tx.body, "source")
    try:
        contract = parse(source, "contract")
    except ContractError as err:
        raise Rejected("invalid_contract", err.render()) from None
    canonical = format_contract(contract)
    if canonical != source:
        raise Rejected(
            "not_canonical", "submit the canonical text (transactiva contract fmt) of the contract"
        )
    contract_id = content_hash(contract)
    if state.get(keys.contract(contract_id)) is not None:
        raise Rejected("duplicate_contract", f"contract {contract_id} already exists")
    now_local = chain.local_datetime(ctx.time)
    if contract.valid_to <= now_local:
        raise Rejected("expired_contract", "the validity window has already ended")
    signers, resolved = resolve_parties(chain, state, tx.signer, list(contract.parties))
    valid_to = int((contract.valid_to - datetime(1970, 1, 1)).total_seconds())  # noqa: DTZ001
    record: dict[str, Value] = {
        "name": contract.name,
        "source": source,
        "proposer": tx.signer,
        "signers": list(signers),
        "signed": [tx.signer],
        "revoke": [],
        "status": "proposed",
        "proposed_height": ctx.height,
        "valid_to_local": valid_to,
    }
    if resolved:
        record["resolved"] = dict(resolved)
    events: list[Event] = [{"type": "contract_proposed", "contract_id": contract_id}]
    if len(signers) == 1:
        _activate(record, ctx, events, contract_id)
    state.put(keys.contract(contract_id), record)
    state.put(keys.expiry(valid_to, contract_id), 1)
    return events


def _activate(record: Account, ctx: BlockContext, events: list[Event], cid: str) -> None:
    record["status"] = "active"
    record["activated_height"] = ctx.height
    record["activated_time"] = ctx.time
    events.append({"type": "contract_activated", "contract_id": cid})


def _contract_record(state: Overlay, contract_id: str) -> dict[str, Value]:
    record = state.get(keys.contract(contract_id))
    if not isinstance(record, dict):
        raise Rejected("unknown_contract", f"no contract {contract_id}")
    return dict(record)


def _contract_sign(
    chain: Chain, state: Overlay, tx: Tx, account: Account, ctx: BlockContext
) -> list[Event]:
    contract_id = str_of(tx.body, "contract_id")
    record = _contract_record(state, contract_id)
    if record["status"] != "proposed":
        raise Rejected("not_proposed", f"the contract is {record['status']}")
    signers, signed = record["signers"], record["signed"]
    assert isinstance(signers, list)
    assert isinstance(signed, list)
    if tx.signer not in signers:
        raise Rejected("not_a_party", "the signer is not a party to this contract")
    if tx.signer in signed:
        raise Rejected("already_signed", "the signer has already signed")
    record["signed"] = [*signed, tx.signer]
    events: list[Event] = [
        {"type": "contract_signed", "contract_id": contract_id, "party": tx.signer}
    ]
    if set(record["signed"]) == set(signers):  # type: ignore[arg-type]
        _activate(record, ctx, events, contract_id)
    state.put(keys.contract(contract_id), record)
    return events


def _contract_revoke(
    chain: Chain, state: Overlay, tx: Tx, account: Account, ctx: BlockContext
) -> list[Event]:
    contract_id = str_of(tx.body, "contract_id")
    record = _contract_record(state, contract_id)
    if record["status"] not in ("proposed", "active"):
        raise Rejected("not_revocable", f"the contract is {record['status']}")
    signers, votes = record["signers"], record["revoke"]
    assert isinstance(signers, list)
    assert isinstance(votes, list)
    if tx.signer not in signers:
        raise Rejected("not_a_party", "the signer is not a party to this contract")
    if tx.signer in votes:
        raise Rejected("already_voted", "the signer has already asked to revoke")
    record["revoke"] = [*votes, tx.signer]
    events: list[Event] = [
        {"type": "contract_revoke_vote", "contract_id": contract_id, "party": tx.signer}
    ]
    if set(record["revoke"]) == set(signers):  # type: ignore[arg-type]
        record["status"] = "revoked"
        record["revoked_height"] = ctx.height
        events.append({"type": "contract_revoked", "contract_id": contract_id})
    state.put(keys.contract(contract_id), record)
    return events


def expire(state: Overlay, due: list[str]) -> list[Event]:
    """End the contracts of the expiry entries ``due`` (in key order): a proposed or
    active contract whose window has closed becomes ``expired``."""
    events: list[Event] = []
    for key in sorted(due):
        if state.get(key) is None:
            continue
        contract_id = keys.expiry_contract(key)
        record = state.get(keys.contract(contract_id))
        assert isinstance(record, dict)
        if record["status"] in ("active", "proposed"):
            state.put(keys.contract(contract_id), {**record, "status": "expired"})
            events.append({"type": "contract_expired", "contract_id": contract_id})
        state.put(key, None)
    return events


HANDLERS: Final[dict[TxType, Handler]] = {
    TxType.CONTRACT_PROPOSE: _contract_propose,
    TxType.CONTRACT_SIGN: _contract_sign,
    TxType.CONTRACT_REVOKE: _contract_revoke,
}
