"""Transaction and genesis decoding: field-named errors, round trips, fuzzing."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ledger_core.types import codec
from ledger_core.types.fields import FieldError
from ledger_core.types.genesis import Genesis, parse_genesis
from ledger_core.types.tx import MAX_TX_BYTES, Tx, TxType, decode, sign
from tests.state.chain import CHAIN_ID, Chain, key

ALICE = key("alice")


def wire(envelope: dict[str, object], signature: str = "00" * 64) -> bytes:
    return codec.encode({"signature": signature, "tx": envelope})  # type: ignore[dict-item]


def dr(**changes: object) -> bytes:
    body: dict[str, object] = {
        "event_id": "e1",
        "modification_number": 0,
        "signal": {"name": "SIMPLE", "level": 1},
        "start": 1,
        "duration": 60,
        "targets": [],
        "cancelled": False,
    }
    return wire(envelope("dr_event", **{**body, **changes}))


def envelope(tx_type: str = "transfer", **body: object) -> dict[str, object]:
    return {
        "body": body or {"to": ALICE.address, "amount": 5},
        "chain_id": CHAIN_ID,
        "nonce": 1,
        "signer": ALICE.address,
        "type": tx_type,
    }


def test_sign_and_decode_round_trip() -> None:
    tx = sign(ALICE, CHAIN_ID, TxType.TRANSFER, 3, {"to": key("bob").address, "amount": 250})
    again = decode(tx.wire())
    assert again == tx
    assert again.verify_signature(ALICE.public_key)
    assert not again.verify_signature(key("bob").public_key)
    assert len(tx.id) == 64
    assert json.loads(tx.wire())["tx"]["type"] == "transfer"


@pytest.mark.parametrize(
    ("data", "field", "message"),
    [
        (b"not json", "transaction", "not JSON"),
        (b"[]", "transaction", "must be an object"),
        (codec.encode({"tx": {}}), "signature", "is missing"),
        (wire(envelope(), signature="zz"), "signature", "does not match"),
        (wire({**envelope(), "extra": 1}), "tx.extra", "is not a known field"),
        (wire({**envelope(), "type": "mint"}), "tx.type", "must be one of"),
        (wire({**envelope(), "chain_id": "Bad Chain"}), "tx.chain_id", "does not match"),
        (wire({**envelope(), "signer": "tv123"}), "tx.signer", "does not match"),
        (wire({**envelope(), "nonce": 0}), "tx.nonce", "between 1 and"),
        (wire({**envelope(), "nonce": True}), "tx.nonce", "must be an integer"),
        (wire({**envelope(), "body": []}), "tx.body", "must be an object"),
        (wire(envelope(to=ALICE.address)), "tx.body.amount", "is missing"),
        (wire(envelope(to=ALICE.address, amount=0)), "tx.body.amount", "between 1 and"),
        (wire(envelope(to=ALICE.address, amount="5")), "tx.body.amount", "must be an integer"),
        (wire(envelope(to=ALICE.address, amount=5, memo="a\nb")), "tx.body.memo", "control"),
        (wire(envelope(to=ALICE.address, amount=5, memo="x" * 141)), "tx.body.memo", "longer"),
        (
            wire(envelope("register", public_key="ab", role="prosumer")),
            "tx.body.public_key",
            "match",
        ),
        (
            wire(envelope("register", public_key="ab" * 32, role="meter")),
            "tx.body.role",
            "bind_meter",
        ),
        (wire(envelope("register", public_key="ab" * 32, role="wizard")), "tx.body.role", "one of"),
        (
            wire(envelope("service", participant="x", connected=True)),
            "tx.body.participant",
            "match",
        ),
        (
            wire(envelope("service", participant=ALICE.address, connected=1)),
            "tx.body.connected",
            "true",
        ),
        (wire(envelope("contract_propose", source=5)), "tx.body.source", "must be a string"),
        (
            wire(envelope("contract_propose", source="x" * 9000)),
            "tx.body.source",
            "longer than 8192",
        ),
        (
            dr(signal={"name": "X"}),
            "tx.body.signal.name",
            "SIMPLE, ELECTRICITY_PRICE or LOAD_DISPATCH",
        ),
        (
            dr(signal={"name": "SIMPLE", "level": 4}),
            "tx.body.signal.level",
            "between 0 and 3",
        ),
        (
            dr(targets=[ALICE.address, ALICE.address]),
            "tx.body.targets",
            "twice",
        ),
        (
            dr(targets="all"),
            "tx.body.targets",
            "list of addresses",
        ),
        (b'"' + b"x" * MAX_TX_BYTES + b'"', "transaction", "the limit is"),
    ],
)
def test_malformed_transactions_name_the_field(data: bytes, field: str, message: str) -> None:
    with pytest.raises(FieldError) as info:
        decode(data)
    assert info.value.field == field
    assert message in info.value.message


@given(st.binary(max_size=400))
def test_decoding_any_bytes_gives_a_tx_or_tx_error(data: bytes) -> None:
    field = None
    try:
        tx = decode(data)
    except FieldError as err:
        field = err.field
    else:
        assert isinstance(tx, Tx)
    assert field is None or field


@given(
    st.dictionaries(
        st.sampled_from(["to", "amount", "memo", "x", "source", "request"]),
        st.one_of(st.integers(-5, 10**16), st.text(max_size=10), st.booleans(), st.none()),
        max_size=4,
    ),
    st.sampled_from(list(TxType)),
)
def test_decoding_random_bodies_never_crashes(body: dict[str, object], tx_type: TxType) -> None:
    field = "tx.body"
    try:
        decode(wire(envelope(str(tx_type), **body)))
    except FieldError as err:
        field = err.field
    assert field.startswith(("tx.body", "signature"))


def test_genesis_round_trips_through_its_file(tmp_path: Path) -> None:
    genesis = Chain().genesis
    path = tmp_path / "genesis.json"
    genesis.save(path)
    loaded = parse_genesis(path.read_bytes())
    assert loaded == genesis
    assert loaded.operator_for("DSO").address == key("dso").address
    with pytest.raises(KeyError):
        loaded.operator_for("RETAILER")


def _genesis_json() -> dict[str, object]:
    value = Chain().genesis.to_json()
    assert isinstance(value, dict)
    return value


@pytest.mark.parametrize(
    ("change", "field", "message"),
    [
        ({"chain_id": "X"}, "chain_id", "does not match"),
        ({"operators": []}, "operators", "non-empty list"),
        ({"validators": []}, "validators", "non-empty list"),
        ({"extra": 1}, "extra", "is not a known field"),
    ],
)
def test_genesis_errors_name_the_field(change: dict[str, object], field: str, message: str) -> None:
    value = {**_genesis_json(), **change}
    with pytest.raises(FieldError) as info:
        parse_genesis(codec.encode(value))  # type: ignore[arg-type]
    assert info.value.field == field
    assert message in info.value.message


def test_genesis_roles_params_and_encoding_are_checked() -> None:
    value = _genesis_json()
    operators = value["operators"]
    assert isinstance(operators, list)
    no_dso = {**value, "operators": [operators[0]]}
    with pytest.raises(FieldError, match="role DSO must belong to exactly one operator"):
        parse_genesis(codec.encode(no_dso))  # type: ignore[arg-type]
    bad_role = {**value, "operators": [{**operators[0], "roles": ["KING"]}, operators[1]]}
    with pytest.raises(FieldError, match="ISO, SUPPLIER or DSO"):
        parse_genesis(codec.encode(bad_role))  # type: ignore[arg-type]
    params = value["params"]
    assert isinstance(params, dict)
    odd = {**value, "params": {**params, "interval_seconds": 7 * 60}}
    with pytest.raises(FieldError, match="must divide a day"):
        parse_genesis(codec.encode(odd))  # type: ignore[arg-type]
    with pytest.raises(FieldError, match="canonical"):
        parse_genesis(json.dumps(value, indent=1).encode())
    assert isinstance(parse_genesis(codec.encode(value) + b"\n"), Genesis)  # type: ignore[arg-type]
