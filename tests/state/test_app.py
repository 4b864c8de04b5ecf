"""The state machine: membership, contracts, reports, signals, wallet, invariants, proofs."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from contracts import parse, receipt
from ledger_core.state.machine import StateMachine
from ledger_core.types.abci import BlockContext
from ledger_core.types.commitment import verify_proof
from ledger_core.types.crypto import SigningKey
from ledger_core.types.fields import FieldError
from ledger_core.types.tx import Tx, TxType, sign
from tests.state.chain import CHAIN_ID, START, Chain, key

CONTRACT = """\
Contract 'prueba'
Valid from 2026/03/01 00:00:00 to 2026/03/31 23:59:59
Consumption true
Production true and sell
Store false
DemandResponse false
IF Price < 3 THEN
  TURN ON DEVICE 'Lavadora'
ENDIF
Parties: ISO
"""


@pytest.fixture
def chain() -> Chain:
    return Chain()


# -- genesis and envelope -----------------------------------------------------------


def test_genesis_state_and_app_hash_are_deterministic(chain: Chain) -> None:
    other = Chain()
    assert chain.app.app_hash == other.app.app_hash
    assert chain.app.state[f"acct/{chain.iso.address}"]["roles"] == ["ISO", "SUPPLIER"]  # type: ignore[index]
    assert chain.balance(chain.iso) == 0


def test_only_operators_register_participants(chain: Chain) -> None:
    alice = chain.register("alice")
    assert chain.app.state[f"acct/{alice.address}"]["role"] == "prosumer"  # type: ignore[index]
    [result] = chain.block(
        chain.tx(
            alice, TxType.REGISTER, public_key=key("mallory").public_key.hex(), role="consumer"
        )
    )
    assert (result.code, result.message) == ("not_permitted", "only an operator may do this")
    [again] = chain.block(
        chain.tx(chain.iso, TxType.REGISTER, public_key=alice.public_key.hex(), role="consumer")
    )
    assert again.code == "already_registered"


def test_strangers_wrong_chains_forged_signatures_and_replays_are_refused(chain: Chain) -> None:
    stranger = key("stranger")
    alice = chain.register("alice")
    [result] = chain.block(chain.tx(stranger, TxType.TRANSFER, to=alice.address, amount=1))
    assert result.code == "unknown_signer"

    other_chain = sign(
        alice, "another-chain", TxType.TRANSFER, 50, {"to": chain.iso.address, "amount": 1}
    )
    [result] = chain.block(other_chain)
    assert result.code == "wrong_chain"

    # Mallory signs a transaction that claims to be Alice's.
    mallory = key("mallory")
    forged = sign(mallory, CHAIN_ID, TxType.TRANSFER, 60, {"to": mallory.address, "amount": 1})
    forged = type(forged)(**{**_fields(forged), "signer": alice.address})
    [result] = chain.block(forged)
    assert result.code == "bad_signature"

    transfer = chain.tx(alice, TxType.DEPOSIT_REQUEST, amount=100)
    assert chain.block(transfer)[0].ok
    [replayed] = chain.block(transfer)
    assert replayed.code == "stale_nonce"


def _fields(tx: Tx) -> dict[str, object]:
    return {name: getattr(tx, name) for name in tx.__dataclass_fields__}


def test_a_refused_body_still_consumes_the_nonce(chain: Chain) -> None:
    alice = chain.register("alice")
    bob = chain.register("bob")
    too_much = chain.tx(alice, TxType.TRANSFER, to=bob.address, amount=500)
    [result] = chain.block(too_much)
    assert result.code == "insufficient_funds"
    assert chain.app.state[f"nonce/{alice.address}"] == too_much.nonce
    chain.fund(alice, 1000)
    [replay] = chain.block(too_much)
    assert replay.code == "stale_nonce"
    assert chain.balance(bob) == 0


def test_revoked_participants_can_no_longer_act(chain: Chain) -> None:
    alice = chain.register("alice")
    chain.ok(chain.tx(chain.iso, TxType.REVOKE, address=alice.address))
    [result] = chain.block(chain.tx(alice, TxType.DEPOSIT_REQUEST, amount=5))
    assert result.code == "revoked_signer"
    [result] = chain.block(chain.tx(chain.iso, TxType.REVOKE, address=chain.dso.address))
    assert result.code == "not_permitted"


# -- interval reports ------------------------------------------------------------------


def test_meter_reports_one_per_interval_with_reasons_for_refusals(chain: Chain) -> None:
    alice = chain.register("alice")
    meter = chain.bind_meter(alice, "meter-alice")
    interval = chain.genesis.params.interval_seconds
    last_closed = (chain.time // interval) * interval - interval

    def report(start: int, signer: SigningKey = meter) -> Tx:
        return chain.report(signer, start, 120, 30)

    [ok] = chain.block(report(last_closed))
    assert ok.ok
    # The chain keeps the commitment and learns nothing of the reading (docs/privacy.md).
    committed = chain.openings[meter.address, last_closed].commitment(chain.genesis.chain_id)
    assert ok.events[0] == {
        "type": "interval_report",
        "meter": meter.address,
        "interval_start": last_closed,
        "commitment": committed,
        "height": chain.app.height,
    }
    assert chain.app.state[f"report/{meter.address}/{last_closed:012d}"] == {
        "commitment": committed,
        "height": chain.app.height,
    }
    # The old form, with the energy in the clear, is not a report any more.
    with pytest.raises(FieldError) as refused:
        chain.tx(meter, TxType.REPORT, interval_start=last_closed, import_wh=120, export_wh=30)
    assert refused.value.field == "tx.body.commitment"

    results = chain.block(
        report(last_closed),
        report(last_closed + 7),
        report(last_closed + 2 * interval),
        report(last_closed - 3 * 86400),
        report(last_closed - interval, signer=alice),
    )
    assert [r.code for r in results] == [
        "duplicate_report",
        "misaligned_interval",
        "future_interval",
        "late_report",
        "not_permitted",
    ]
    # A meter offline for a day still gets its reports in.
    [late_but_ok] = chain.block(report(last_closed - 86400))
    assert late_but_ok.ok


def test_meters_hold_no_money_and_sign_nothing_else(chain: Chain) -> None:
    alice = chain.register("alice")
    meter = chain.bind_meter(alice, "meter-alice")
    [result] = chain.block(chain.tx(meter, TxType.DEPOSIT_REQUEST, amount=5))
    assert result.code == "not_permitted"
    chain.fund(alice, 100)
    [result] = chain.block(chain.tx(alice, TxType.TRANSFER, to=meter.address, amount=5))
    assert result.code == "not_permitted"


# -- contracts ---------------------------------------------------------------------------


def test_contract_lifecycle_propose_sign_activate_receipt(chain: Chain) -> None:
    alice = chain.register("alice")
    [proposed] = chain.ok(chain.tx(alice, TxType.CONTRACT_PROPOSE, source=CONTRACT))
    contract_id = proposed.events[0]["contract_id"]
    record = chain.app.state[f"contract/{contract_id}"]
    assert record["status"] == "proposed"  # type: ignore[index]
    assert record["signers"] == [alice.address, chain.iso.address]  # type: ignore[index]

    [signed] = chain.ok(chain.tx(chain.iso, TxType.CONTRACT_SIGN, contract_id=contract_id))
    assert [e["type"] for e in signed.events] == ["contract_signed", "contract_activated"]
    record = chain.app.state[f"contract/{contract_id}"]
    assert record["status"] == "active"  # type: ignore[index]
    activated = chain.app.local_datetime(record["activated_time"])  # type: ignore[index, arg-type]
    text = receipt(parse(CONTRACT), activated)
    assert text.startswith("Timestamp 2026/03/10 12:00:")
    assert text.endswith(f"to 'prueba' [0x{contract_id[:10].upper()}]")


def test_contract_proposals_are_validated(chain: Chain) -> None:
    alice = chain.register("alice")
    bad_date = CONTRACT.replace("2026/03/31", "2026/02/31")
    messy = CONTRACT.replace("Store false", "store FALSE")
    unknown_party = CONTRACT.replace("Parties: ISO", "Parties: ISO, 'tv" + "0" * 40 + "'")
    ended = CONTRACT.replace("2026/03/31", "2026/03/05")
    results = chain.block(
        chain.tx(alice, TxType.CONTRACT_PROPOSE, source=bad_date),
        chain.tx(alice, TxType.CONTRACT_PROPOSE, source=messy),
        chain.tx(alice, TxType.CONTRACT_PROPOSE, source=unknown_party),
        chain.tx(alice, TxType.CONTRACT_PROPOSE, source=ended),
        chain.tx(alice, TxType.CONTRACT_PROPOSE, source=CONTRACT),
        chain.tx(alice, TxType.CONTRACT_PROPOSE, source=CONTRACT),
    )
    assert [r.code for r in results] == [
        "invalid_contract",
        "not_canonical",
        "unknown_account",
        "expired_contract",
        "ok",
        "duplicate_contract",
    ]
    assert "contract:2:35: error: 2026/02/31 is not a calendar date" in results[0].message


def test_only_parties_sign_once_and_revocation_needs_everyone(chain: Chain) -> None:
    alice = chain.register("alice")
    bob = chain.register("bob")
    [proposed] = chain.ok(chain.tx(alice, TxType.CONTRACT_PROPOSE, source=CONTRACT))
    cid = proposed.events[0]["contract_id"]
    results = chain.block(
        chain.tx(bob, TxType.CONTRACT_SIGN, contract_id=cid),
        chain.tx(alice, TxType.CONTRACT_SIGN, contract_id=cid),
        chain.tx(chain.iso, TxType.CONTRACT_SIGN, contract_id=cid),
        chain.tx(chain.iso, TxType.CONTRACT_SIGN, contract_id=cid),
    )
    assert [r.code for r in results] == ["not_a_party", "already_signed", "ok", "not_proposed"]
    chain.ok(chain.tx(alice, TxType.CONTRACT_REVOKE, contract_id=cid))
    assert chain.app.state[f"contract/{cid}"]["status"] == "active"  # type: ignore[index]
    [final] = chain.ok(chain.tx(chain.iso, TxType.CONTRACT_REVOKE, contract_id=cid))
    assert final.events[-1]["type"] == "contract_revoked"
    assert chain.app.state[f"contract/{cid}"]["status"] == "revoked"  # type: ignore[index]


def test_contracts_expire_when_their_window_closes(chain: Chain) -> None:
    alice = chain.register("alice")
    [proposed] = chain.ok(chain.tx(alice, TxType.CONTRACT_PROPOSE, source=CONTRACT))
    cid = proposed.events[0]["contract_id"]
    chain.ok(chain.tx(chain.iso, TxType.CONTRACT_SIGN, contract_id=cid))
    chain.block(advance=86400)
    assert chain.app.state[f"contract/{cid}"]["status"] == "active"  # type: ignore[index]
    chain.block(advance=30 * 86400)
    assert chain.app.state[f"contract/{cid}"]["status"] == "expired"  # type: ignore[index]
    assert not [k for k in chain.app.state if k.startswith("expiry/")]


# -- signals -----------------------------------------------------------------------------


def test_price_signals_dr_events_and_service_status_by_the_right_operator(chain: Chain) -> None:
    alice = chain.register("alice")
    interval = chain.genesis.params.interval_seconds
    current = (chain.time // interval) * interval
    price = {"import_price": 25000, "export_price": 9000, "network_fee": 3000}
    results = chain.block(
        chain.tx(chain.iso, TxType.PRICE_SIGNAL, interval_start=current + interval, **price),
        chain.tx(chain.dso, TxType.PRICE_SIGNAL, interval_start=current + interval, **price),
        chain.tx(chain.iso, TxType.PRICE_SIGNAL, interval_start=current - interval, **price),
        chain.tx(chain.iso, TxType.PRICE_SIGNAL, interval_start=current + 1, **price),
    )
    assert [r.code for r in results] == [
        "ok",
        "not_permitted",
        "past_interval",
        "misaligned_interval",
    ]

    event = {
        "event_id": "dr-2026-03-10",
        "signal": {"name": "SIMPLE", "level": 2},
        "start": chain.time + 600,
        "duration": 3600,
        "targets": [alice.address],
        "cancelled": False,
    }
    results = chain.block(
        chain.tx(chain.dso, TxType.DR_EVENT, modification_number=0, **event),
        chain.tx(chain.dso, TxType.DR_EVENT, modification_number=0, **event),
        chain.tx(chain.dso, TxType.DR_EVENT, modification_number=1, **event),
        chain.tx(chain.dso, TxType.DR_EVENT, modification_number=1, **event),
        chain.tx(chain.dso, TxType.DR_EVENT, modification_number=2, **{**event, "cancelled": True}),
        chain.tx(chain.dso, TxType.DR_EVENT, modification_number=3, **event),
        chain.tx(alice, TxType.DR_EVENT, modification_number=9, **event),
    )
    assert [r.code for r in results] == [
        "ok",
        "event_exists",
        "ok",
        "stale_modification",
        "ok",
        "cancelled_event",
        "not_permitted",
    ]
    results = chain.block(
        chain.tx(chain.dso, TxType.SERVICE, participant=alice.address, connected=False),
        chain.tx(chain.iso, TxType.SERVICE, participant=alice.address, connected=True),
    )
    assert [r.code for r in results] == ["ok", "not_permitted"]
    assert results[0].events[0]["type"] == "service_cut"
    assert chain.app.state[f"service/{alice.address}"]["connected"] is False  # type: ignore[index]


# -- wallet ------------------------------------------------------------------------------


def test_deposits_withdrawals_and_transfers(chain: Chain) -> None:
    alice = chain.register("alice")
    bob = chain.register("bob")
    chain.fund(alice, 10_000)
    assert chain.balance(alice) == 10_000
    chain.ok(chain.tx(alice, TxType.TRANSFER, to=bob.address, amount=2_500, memo="excedente"))
    assert (chain.balance(alice), chain.balance(bob)) == (7_500, 2_500)

    withdraw = chain.tx(bob, TxType.WITHDRAW_REQUEST, amount=2_000)
    chain.ok(withdraw)
    assert chain.balance(bob) == 500
    assert chain.app.state[f"held/{bob.address}"] == 2_000
    chain.ok(chain.tx(chain.iso, TxType.WITHDRAW_CONFIRM, request=withdraw.id))
    assert chain.app.state["total/withdrawals"] == 2_000
    assert chain.app.state[f"held/{bob.address}"] == 0

    cancelled = chain.tx(alice, TxType.WITHDRAW_REQUEST, amount=7_500)
    chain.ok(cancelled)
    assert chain.balance(alice) == 0
    chain.ok(chain.tx(alice, TxType.WALLET_CANCEL, request=cancelled.id))
    assert chain.balance(alice) == 7_500

    results = chain.block(
        chain.tx(alice, TxType.TRANSFER, to=bob.address, amount=7_501),
        chain.tx(alice, TxType.TRANSFER, to=alice.address, amount=1),
        chain.tx(bob, TxType.WITHDRAW_CONFIRM, request=cancelled.id),
        chain.tx(chain.iso, TxType.WITHDRAW_CONFIRM, request=cancelled.id),
        chain.tx(chain.iso, TxType.DEPOSIT_CONFIRM, request=withdraw.id),
        chain.tx(alice, TxType.WITHDRAW_REQUEST, amount=7_501),
    )
    assert [r.code for r in results] == [
        "insufficient_funds",
        "self_transfer",
        "not_permitted",
        "not_pending",
        "wrong_request",
        "insufficient_funds",
    ]


def test_check_tx_sees_earlier_mempool_transactions(chain: Chain) -> None:
    alice = chain.register("alice")
    bob = chain.register("bob")
    chain.fund(alice, 100)
    first = chain.tx(alice, TxType.TRANSFER, to=bob.address, amount=80)
    second = chain.tx(alice, TxType.TRANSFER, to=bob.address, amount=80)
    assert chain.app.check_tx(first).ok
    assert chain.app.check_tx(second).code == "insufficient_funds"
    assert chain.app.check_tx(first).code == "stale_nonce"
    # The refused second transfer did not use up its nonce in the mempool state.
    retry = sign(alice, CHAIN_ID, TxType.TRANSFER, second.nonce, {"to": bob.address, "amount": 20})
    assert chain.app.check_tx(retry).ok
    # The check state is thrown away at commit: nothing was applied.
    assert chain.balance(alice) == 100


# -- proofs and determinism ----------------------------------------------------------------


def test_query_proofs_verify_against_the_app_hash(chain: Chain) -> None:
    alice = chain.register("alice")
    chain.fund(alice, 4_200)
    value, proof = chain.app.query(f"bal/{alice.address}")
    assert value == 4_200
    assert proof is not None
    assert verify_proof(proof, chain.app.app_hash)
    forged = type(proof)(
        **{**{n: getattr(proof, n) for n in proof.__dataclass_fields__}, "value": 9_999}
    )
    assert not verify_proof(forged, chain.app.app_hash)
    before = chain.app.app_hash
    chain.fund(alice, 1)
    assert chain.app.app_hash != before
    assert not verify_proof(proof, chain.app.app_hash)
    assert chain.app.query("bal/nobody") == (None, None)


def test_replaying_the_same_blocks_gives_the_same_app_hash() -> None:
    first = Chain()
    alice = first.register("alice")
    first.fund(alice, 500)
    first.ok(first.tx(alice, TxType.CONTRACT_PROPOSE, source=CONTRACT))

    # A second application fed the same blocks (same keys, nonces and times).
    second = Chain()
    same_alice = second.register("alice")
    second.fund(same_alice, 500)
    second.ok(second.tx(same_alice, TxType.CONTRACT_PROPOSE, source=CONTRACT))
    assert first.app.app_hash == second.app.app_hash
    assert StateMachine(first.genesis).app_hash != first.app.app_hash

    # A state loaded from storage commits to the same root.
    reloaded = StateMachine(first.genesis, state=dict(first.app.state), height=first.app.height)
    assert reloaded.app_hash == first.app.app_hash


def test_blocks_must_follow_in_order_and_time() -> None:
    chain = Chain()
    with pytest.raises(ValueError, match="block 5 after 0"):
        chain.app.begin_block(BlockContext(5, START))
    chain.block()
    with pytest.raises(ValueError, match="backwards"):
        chain.app.begin_block(BlockContext(2, START - 10_000))


# -- invariants under random traffic ------------------------------------------------------

PEOPLE = ["ana", "beto", "carla"]
operations = st.lists(
    st.tuples(
        st.sampled_from(["deposit", "confirm", "withdraw", "confirm_w", "cancel", "transfer"]),
        st.sampled_from(PEOPLE),
        st.sampled_from(PEOPLE),
        st.integers(1, 5_000),
    ),
    max_size=30,
)


@settings(max_examples=60)
@given(operations, st.integers(1, 4))
def test_money_is_conserved_and_never_negative(
    ops: list[tuple[str, str, str, int]], per_block: int
) -> None:
    chain = Chain()
    people = {name: chain.register(name) for name in PEOPLE}
    pending: list[Tx] = []
    batch: list[Tx] = []
    last_nonces: dict[str, int] = {}
    for op, who, other, amount in ops:
        person = people[who]
        if op == "deposit":
            tx = chain.tx(person, TxType.DEPOSIT_REQUEST, amount=amount)
            pending.append(tx)
        elif op == "withdraw":
            tx = chain.tx(person, TxType.WITHDRAW_REQUEST, amount=amount)
            pending.append(tx)
        elif op in ("confirm", "confirm_w", "cancel") and pending:
            request = pending[amount % len(pending)]
            kind = {
                "confirm": TxType.DEPOSIT_CONFIRM,
                "confirm_w": TxType.WITHDRAW_CONFIRM,
                "cancel": TxType.WALLET_CANCEL,
            }[op]
            tx = chain.tx(chain.iso, kind, request=request.id)
        elif op == "transfer":
            tx = chain.tx(person, TxType.TRANSFER, to=people[other].address, amount=amount)
        else:
            continue
        batch.append(tx)
        if len(batch) >= per_block:
            chain.block(*batch)
            batch = []
            _assert_invariants(chain, last_nonces)
    chain.block(*batch)
    _assert_invariants(chain, last_nonces)


def _assert_invariants(chain: Chain, last_nonces: dict[str, int]) -> None:
    state = chain.app.state
    balances = {k: v for k, v in state.items() if k.startswith("bal/")}
    held = {k: v for k, v in state.items() if k.startswith("held/")}
    assert all(isinstance(v, int) and v >= 0 for v in (*balances.values(), *held.values()))
    total = sum(balances.values()) + sum(held.values())  # type: ignore[arg-type]
    assert total == state["total/deposits"] - state["total/withdrawals"]  # type: ignore[operator]
    for name, nonce in state.items():
        if name.startswith("nonce/"):
            assert isinstance(nonce, int)
            assert nonce >= last_nonces.get(name, 0)
            last_nonces[name] = nonce
