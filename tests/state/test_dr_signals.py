"""Demand-response bodies: LOAD_DISPATCH signals, ramp-up and recovery, old bodies still valid."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ledger_core.types import codec
from ledger_core.types.fields import FieldError
from ledger_core.types.tx import MAX_POWER_W, TxType, decode, sign
from tests.state.chain import CHAIN_ID, Chain, key

DSO = key("dso")


def body(**changes: codec.Value) -> dict[str, codec.Value]:
    base: dict[str, codec.Value] = {
        "event_id": "dr-1",
        "modification_number": 0,
        "signal": {"name": "SIMPLE", "level": 2},
        "start": 1_773_166_500,
        "duration": 1800,
        "targets": [],
        "cancelled": False,
    }
    base.update(changes)
    return base


def wire(payload: dict[str, codec.Value]) -> bytes:
    envelope: codec.Value = {
        "body": payload,
        "chain_id": CHAIN_ID,
        "nonce": 1,
        "signer": DSO.address,
        "type": "dr_event",
    }
    return codec.encode({"signature": "00" * 64, "tx": envelope})


@pytest.mark.parametrize(
    "changes",
    [
        {},
        {"signal": {"name": "ELECTRICITY_PRICE", "price": 45_000}},
        {"signal": {"name": "LOAD_DISPATCH", "setpoint_w": 1500}},
        {"signal": {"name": "LOAD_DISPATCH", "delta_w": -800}},
        {"signal": {"name": "LOAD_DISPATCH", "delta_w": MAX_POWER_W}},
        {"ramp_up": 300},
        {"recovery": 600, "ramp_up": 0},
        {"signal": {"name": "LOAD_DISPATCH", "setpoint_w": 0}, "ramp_up": 86400, "recovery": 1},
    ],
)
def test_valid_bodies_decode_and_keep_their_fields(changes: dict[str, codec.Value]) -> None:
    tx = sign(DSO, CHAIN_ID, TxType.DR_EVENT, 1, body(**changes))
    assert dict(decode(tx.wire()).body) == body(**changes)


@pytest.mark.parametrize(
    ("changes", "field", "message"),
    [
        ({"signal": {"name": "LOAD_DISPATCH"}}, "tx.body.signal", "exactly one of"),
        (
            {"signal": {"name": "LOAD_DISPATCH", "setpoint_w": 1, "delta_w": 1}},
            "tx.body.signal",
            "exactly one of",
        ),
        (
            {"signal": {"name": "LOAD_DISPATCH", "setpoint_w": -1}},
            "tx.body.signal.setpoint_w",
            "between 0 and",
        ),
        (
            {"signal": {"name": "LOAD_DISPATCH", "delta_w": -MAX_POWER_W - 1}},
            "tx.body.signal.delta_w",
            "between",
        ),
        (
            {"signal": {"name": "LOAD_DISPATCH", "delta_w": "5"}},
            "tx.body.signal.delta_w",
            "must be an integer",
        ),
        (
            {"signal": {"name": "LOAD_DISPATCH", "delta_w": 5, "level": 1}},
            "tx.body.signal.level",
            "is not a known field",
        ),
        ({"signal": {"name": "SIMPLE", "level": 1, "x": 1}}, "tx.body.signal.x", "not a known"),
        ({"ramp_up": -1}, "tx.body.ramp_up", "between 0 and 86400"),
        ({"recovery": 86401}, "tx.body.recovery", "between 0 and 86400"),
        ({"recovery": True}, "tx.body.recovery", "must be an integer"),
        ({"ramp": 5}, "tx.body.ramp", "is not a known field"),
    ],
)
def test_malformed_dr_bodies_name_the_field(
    changes: dict[str, codec.Value], field: str, message: str
) -> None:
    data = wire(body(**changes))
    with pytest.raises(FieldError) as info:
        decode(data)
    assert info.value.field == field
    assert message in info.value.message


signals = st.one_of(
    st.fixed_dictionaries({"name": st.just("LOAD_DISPATCH")}, optional={
        "setpoint_w": st.integers(-(2**40), 2**40),
        "delta_w": st.integers(-(2**40), 2**40),
        "level": st.integers(0, 3),
    }),
    st.dictionaries(st.sampled_from(["name", "level", "price", "setpoint_w"]),
                    st.one_of(st.integers(-5, 5), st.text(max_size=20), st.booleans())),
)  # fmt: skip


@given(signals, st.one_of(st.none(), st.integers(-10, 10**6)))
def test_any_signal_decodes_or_names_a_field_inside_it(
    signal: dict[str, codec.Value], ramp: int | None
) -> None:
    payload = body(signal=signal)
    if ramp is not None:
        payload["ramp_up"] = ramp
    try:
        tx = decode(wire(payload))
    except FieldError as err:
        field = err.field
        assert field.startswith(("tx.body.signal", "tx.body.ramp_up")), field
        return
    decoded = tx.body["signal"]
    assert isinstance(decoded, dict)
    if decoded["name"] == "LOAD_DISPATCH":
        (kind,) = set(decoded) - {"name"}
        value = decoded[kind]
        assert isinstance(value, int)
        assert kind in ("setpoint_w", "delta_w")
        assert -MAX_POWER_W <= value <= MAX_POWER_W
        assert kind == "delta_w" or value >= 0
    if ramp is not None:
        assert 0 <= ramp <= 86400


def test_the_ledger_keeps_load_dispatch_ramp_and_recovery_through_modifications() -> None:
    chain = Chain()
    alice = chain.register("alice")
    start = (chain.time // 900 + 2) * 900
    first = body(
        start=start,
        targets=[alice.address],
        signal={"name": "LOAD_DISPATCH", "delta_w": -1200},
        ramp_up=300,
        recovery=600,
    )
    (result,) = chain.ok(chain.tx(chain.dso, TxType.DR_EVENT, **first))
    assert result.events[0]["signal"] == {"name": "LOAD_DISPATCH", "delta_w": -1200}
    assert (result.events[0]["ramp_up"], result.events[0]["recovery"]) == (300, 600)
    record = chain.app.state["dr/dr-1"]
    assert isinstance(record, dict)
    assert (record["ramp_up"], record["recovery"], record["issuer"]) == (
        300,
        600,
        chain.dso.address,
    )

    # A modification replaces the whole event: without ramp_up and recovery they are gone.
    second = body(
        start=start, modification_number=1, signal={"name": "LOAD_DISPATCH", "setpoint_w": 2000}
    )
    chain.ok(chain.tx(chain.dso, TxType.DR_EVENT, **second))
    record = chain.app.state["dr/dr-1"]
    assert isinstance(record, dict)
    assert record["signal"] == {"name": "LOAD_DISPATCH", "setpoint_w": 2000}
    assert "ramp_up" not in record
    assert record["modification_number"] == 1

    cancelled = {**second, "modification_number": 2, "cancelled": True}
    chain.ok(chain.tx(chain.dso, TxType.DR_EVENT, **cancelled))
    (refused,) = chain.block(
        chain.tx(chain.dso, TxType.DR_EVENT, **{**second, "modification_number": 3})
    )
    assert refused.code == "cancelled_event"
    # An old-style body (no ramp fields, a SIMPLE level) is still accepted.
    chain.ok(chain.tx(chain.iso, TxType.DR_EVENT, **body(event_id="dr-2", start=start)))


def test_refused_modification_numbers_say_which_number_the_ledger_has_and_expects() -> None:
    chain = Chain()
    start = chain.time + 900
    chain.ok(chain.tx(chain.dso, TxType.DR_EVENT, **body(start=start)))
    chain.ok(chain.tx(chain.dso, TxType.DR_EVENT, **body(start=start, modification_number=1)))
    again, stale = chain.block(
        chain.tx(chain.dso, TxType.DR_EVENT, **body(start=start + 60)),
        chain.tx(chain.dso, TxType.DR_EVENT, **body(start=start, modification_number=1)),
    )
    assert again.code == "event_exists"
    assert "event dr-1 was already issued" in again.message
    assert "needs an id of its own" in again.message
    assert "modification_number 2" in again.message
    assert stale.code == "stale_modification"
    assert "event dr-1 is at modification 1" in stale.message
    assert "normally 2" in stale.message
    assert "carries 1" in stale.message
