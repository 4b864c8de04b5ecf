"""Participants' names on the chain, and invitation codes.

Names: their syntax and normalisation, uniqueness, changing them, and contracts that
name parties by name (resolved once, at the proposal). Codes: what they carry, typing
mistakes told apart from tampering, and the admission request's signature.
"""

from __future__ import annotations

import hashlib
import os
from datetime import datetime, timedelta

import pytest

from contracts import content_hash, format_contract, parse
from ledger_core.types import codec
from ledger_core.types.abci import TxResult
from ledger_core.types.crypto import SigningKey
from ledger_core.types.fields import FieldError
from ledger_core.types.invitation import (
    AdmissionRequest,
    Invitation,
    InvitationError,
    decode_request,
    parse_code,
)
from ledger_core.types.names import checked_name, is_name, normalise
from ledger_core.types.tx import TxType, sign
from tests.state.chain import CHAIN_ID, START, Chain, key

# -- names ---------------------------------------------------------------------------------


def test_names_are_ascii_lower_cased_and_never_an_address_or_a_role() -> None:
    assert checked_name("  Casa-12 ") == "casa-12"
    assert normalise("CASA_Ñ") == "casa_Ñ"  # only ASCII letters change case
    for good in ("a", "casa-12", "depto.3b", "x" * 32, "9"):
        assert is_name(good), good
    for bad, why in (
        ("", "empty"),
        ("x" * 33, "at most 32"),
        ("-casa", "starting and ending"),
        ("casa-", "starting and ending"),
        ("casa peña", "ASCII only"),
        ("ISO", "reserved"),
        ("Operator", "reserved"),
    ):
        with pytest.raises(ValueError, match=why):
            checked_name(bad)


def _register(chain: Chain, who: SigningKey, name: str | None, role: str = "prosumer") -> TxResult:
    body: dict[str, codec.Value] = {"public_key": who.public_key.hex(), "role": role}
    if name is not None:
        body["name"] = name
    return chain.block(chain.tx(chain.iso, TxType.REGISTER, **body))[0]


def test_a_name_is_unique_and_the_account_and_the_index_agree() -> None:
    chain = Chain()
    ana, otra = key("ana"), key("otra")
    result = _register(chain, ana, "casa-12")
    assert result.ok
    assert chain.app.state["name/casa-12"] == ana.address
    assert chain.app.state[f"acct/{ana.address}"]["name"] == "casa-12"  # type: ignore[index]
    assert {"type": "participant_registered", "address": ana.address, "role": "prosumer",
            "name": "casa-12"} in result.events  # fmt: skip
    refused = _register(chain, otra, "casa-12")
    assert (refused.code, f"acct/{otra.address}" in chain.app.state) == ("name_taken", False)
    # A name arrives normalised: the transaction's decoder refuses another spelling.
    with pytest.raises(FieldError, match="lower case"):
        sign(chain.iso, CHAIN_ID, TxType.REGISTER, 99, {"public_key": otra.public_key.hex(),
             "role": "consumer", "name": "Casa-13"})  # fmt: skip
    with pytest.raises(FieldError, match="reserved"):
        sign(chain.iso, CHAIN_ID, TxType.REGISTER, 99, {"public_key": otra.public_key.hex(),
             "role": "consumer", "name": "dso"})  # fmt: skip


def test_the_operator_renames_and_frees_the_old_name_and_only_the_operator_may() -> None:
    chain = Chain()
    ana, luis = key("ana"), key("luis")
    _register(chain, ana, "casa-12")
    _register(chain, luis, "casa-13")
    taken = chain.block(chain.tx(chain.iso, TxType.SET_NAME, address=ana.address, name="casa-13"))
    assert taken[0].code == "name_taken"
    mine = chain.block(chain.tx(ana, TxType.SET_NAME, address=ana.address, name="ana"))
    assert mine[0].code == "not_permitted"
    [renamed] = chain.ok(chain.tx(chain.iso, TxType.SET_NAME, address=ana.address, name="ana"))
    assert renamed.events == (
        {"type": "participant_named", "address": ana.address, "name": "ana", "previous": "casa-12"},
    )
    assert "name/casa-12" not in chain.app.state
    assert chain.app.state["name/ana"] == ana.address
    # The freed name can be given to someone else.
    assert _register(chain, key("nuevo"), "casa-12").ok
    operator = chain.block(
        chain.tx(chain.iso, TxType.SET_NAME, address=chain.iso.address, name="x")
    )
    assert operator[0].code == "not_permitted"


def test_a_revoked_participant_keeps_its_name() -> None:
    chain = Chain()
    ana = key("ana")
    _register(chain, ana, "casa-12")
    chain.ok(chain.tx(chain.iso, TxType.REVOKE, address=ana.address))
    assert _register(chain, key("otro"), "casa-12").code == "name_taken"


def _source(parties: str) -> str:
    start = datetime(2026, 3, 10, 12, 0)
    text = (
        "Contract 'vecinos'\n"
        f"Valid from {start - timedelta(days=1):%Y/%m/%d %H:%M:%S} "
        f"to {start + timedelta(days=2):%Y/%m/%d %H:%M:%S}\n"
        f"IF Price < 3 THEN\n  TURN ON DEVICE 'Lavadora'\nENDIF\nParties: {parties}\n"
    )
    return format_contract(parse(text))


def test_contract_parties_by_name_resolve_at_the_proposal_and_stay() -> None:
    chain = Chain()
    ana, luis, otro = key("ana"), key("luis"), key("otro")
    for who, name in ((ana, "casa-12"), (luis, "casa-13"), (otro, None)):
        _register(chain, who, name)
    source = _source("'casa-12', 'Casa-13', ISO")
    [proposed] = chain.ok(chain.tx(ana, TxType.CONTRACT_PROPOSE, source=source))
    contract_id = content_hash(parse(source))
    assert proposed.events[0] == {"type": "contract_proposed", "contract_id": contract_id}
    record = chain.app.state[f"contract/{contract_id}"]
    assert record["signers"] == [ana.address, luis.address, chain.iso.address]  # type: ignore[index]
    assert record["resolved"] == {"casa-12": ana.address, "Casa-13": luis.address}  # type: ignore[index]
    # The name changes hands; the contract's parties and identity do not.
    chain.ok(chain.tx(chain.iso, TxType.SET_NAME, address=luis.address, name="luis"))
    chain.ok(chain.tx(chain.iso, TxType.SET_NAME, address=otro.address, name="casa-13"))
    chain.ok(chain.tx(luis, TxType.CONTRACT_SIGN, contract_id=contract_id))
    [active] = chain.ok(chain.tx(chain.iso, TxType.CONTRACT_SIGN, contract_id=contract_id))
    assert active.events[-1] == {"type": "contract_activated", "contract_id": contract_id}
    late = chain.block(chain.tx(otro, TxType.CONTRACT_SIGN, contract_id=contract_id))
    assert late[0].code in ("not_a_party", "not_proposed")


def test_an_unknown_name_is_refused_with_a_hint() -> None:
    chain = Chain()
    ana = key("ana")
    _register(chain, ana, "casa-12")
    [refused] = chain.block(chain.tx(ana, TxType.CONTRACT_PROPOSE, source=_source("'casa-99'")))
    assert refused.code == "unknown_party"
    assert "no participant is named 'casa-99'" in refused.message
    assert "transactiva operator participants" in refused.message
    odd = chain.block(chain.tx(ana, TxType.CONTRACT_PROPOSE, source=_source("'casa:99'")))
    assert "neither an address" in odd[0].message


# -- invitation codes ----------------------------------------------------------------------


def _invitation(
    seeds: tuple[str, ...] = ("192.168.1.20:26656",), manual: bool = False
) -> Invitation:
    return Invitation(
        "barrio-1",
        hashlib.sha256(b"genesis").hexdigest(),
        seeds,
        "casa-12",
        "prosumer",
        manual,
        START + 7 * 86400,
        os.urandom(4),
    )


def test_a_code_carries_the_chain_the_seeds_the_grant_and_the_operators_signature() -> None:
    operator = SigningKey.generate()
    invitation = _invitation(
        ("192.168.1.20:26656", "[fd00::7]:26656", "concentrador.local:26656"), manual=True
    ).signed(operator)
    code = invitation.code
    assert code.startswith("TV1-")
    assert all(len(group) <= 5 for group in code.split("-"))
    read = parse_code(code)
    assert read == invitation
    assert read.signed_by(operator.public_key)
    assert not read.signed_by(SigningKey.generate().public_key)
    assert (read.name, read.role, read.approval, read.expires) == (
        "casa-12",
        "prosumer",
        "manual",
        START + 7 * 86400,
    )
    # Typed by a person: any case, spaces, and the digits base32 leaves out.
    typed = code.lower().replace("-", " ").replace("o", "0").replace("i", "1")
    assert parse_code(typed) == invitation


def test_typing_mistakes_are_told_apart_from_tampering() -> None:
    operator = SigningKey.generate()
    code = _invitation().signed(operator).code
    groups = code.split("-")
    swapped = groups[3][1] + groups[3][0] + groups[3][2:]
    assert swapped != groups[3]
    with pytest.raises(InvitationError, match="mistyped") as typo:
        parse_code("-".join([*groups[:3], swapped, *groups[4:]]))
    assert typo.value.reason == "mistyped"
    with pytest.raises(InvitationError) as short:
        parse_code(code[:-7])
    assert short.value.reason == "mistyped"
    with pytest.raises(InvitationError) as other:
        parse_code("XYZ-" + code[4:])
    assert other.value.reason == "malformed"
    # Re-signed by someone else, a code reads well but is not the operator's.
    forged = parse_code(code).signed(SigningKey.generate())
    assert not parse_code(forged.code).signed_by(operator.public_key)


def test_the_admission_request_binds_the_keys_to_the_invitation() -> None:
    operator, home, meter = SigningKey.generate(), SigningKey.generate(), SigningKey.generate()
    invitation = _invitation().signed(operator)
    request = AdmissionRequest.make(invitation, home, meter.public_key)
    assert request.valid_for(invitation)
    op, message = decode_request(request.encode())
    assert (op, message["participant_key"]) == ("admit", home.public_key.hex())
    stolen = AdmissionRequest(
        request.code, SigningKey.generate().public_key.hex(), request.meter_key, request.signature
    )
    assert not stolen.valid_for(invitation)
    other = _invitation().signed(operator)
    assert not request.valid_for(other)
    for bad, why in (
        (b"[]", "an object with an op"),
        (b'{"op":"admit"}', "needs the invitation code"),
        (b'{"code":"x","op":"burn"}', "unknown op"),
        (b'{"code":"x","op":"admit"}', "participant_key is missing"),
        (b"\xff", "not canonical JSON"),
    ):
        with pytest.raises(ValueError, match=why):
            decode_request(bad)
