"""A home joining its neighbourhood, seen from Home Assistant, against real node processes:
a node whose home is not admitted yet is added (a step says it waits, not an error) with a
repair issue until the operator registers it; contracts awaiting this home's signature are
shown and signed; participants are given by name wherever an address is taken."""

from __future__ import annotations

import asyncio
import json
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from conftest import (
    CONTRACT,
    Neighbour,
    RealNode,
    StartNode,
    call_action,
    entity_id,
    local,
    node_get,
    node_post,
    operate,
    setup_entry,
    wait_for_state,
    wait_until,
)
from homeassistant.config_entries import SOURCE_USER, ConfigEntryState
from homeassistant.const import CONF_TOKEN, CONF_URL
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType
from homeassistant.exceptions import ServiceValidationError
from homeassistant.helpers import issue_registry as ir
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.transactiva.admission import ISSUE_KEYS, issue_id, issue_key
from custom_components.transactiva.const import DOMAIN
from custom_components.transactiva.sensor import MEMBERSHIP_SENSORS
from ledger_core.node.home import Home
from ledger_core.types.crypto import SigningKey
from transactiva_client.models import Admission
from transactiva_client.protocol import AdmissionStatus


async def _refused(hass: HomeAssistant, service: str, entry: MockConfigEntry, **data: Any) -> Any:
    """The translated ServiceValidationError an action raises."""
    with pytest.raises(ServiceValidationError) as refused:
        await call_action(hass, service, entry, **data)
    return refused.value


async def _named(hass: HomeAssistant, node: RealNode, name: str) -> Neighbour:
    """Register a prosumer with a display name on the node's chain."""
    key = SigningKey.generate()
    body = {"public_key": key.public_key.hex(), "role": "prosumer", "name": name}
    await operate(hass, node, "register", body)
    return Neighbour(key, "transactiva-local")


def _issue(hass: HomeAssistant, entry_id: str) -> ir.IssueEntry | None:
    return ir.async_get(hass).async_get_issue(DOMAIN, issue_id(entry_id))


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _join(code: str, home: Path, api_port: int) -> subprocess.CompletedProcess[str]:
    """``transactiva join CODE`` as the docs have a new home run it."""
    return subprocess.run(
        [sys.executable, "-m", "ledger_core", "join", code, "--dir", str(home),
         "--api-port", str(api_port), "--p2p-port", str(_free_port()),
         "--p2p-host", "127.0.0.1"],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip


def _start_joined(home: Path, api_port: int) -> RealNode:
    """``transactiva node --dir HOME`` for a home made by ``join``, once its API listens."""
    with (home / "node.log").open("ab") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "ledger_core", "node", "--dir", str(home)],
            stdout=log,
            stderr=log,
        )
    files = Home(home)
    node = RealNode(
        url=f"http://127.0.0.1:{api_port}",
        token=files.token(),
        participant=files.participant_key().address,
        process=process,
        port=api_port,
        home=home,
    )
    deadline = time.monotonic() + 60
    while "API on http://" not in (home / "node.log").read_text(errors="replace"):
        if process.poll() is not None or time.monotonic() > deadline:
            node.stop()
            raise AssertionError((home / "node.log").read_text(errors="replace"))
        time.sleep(0.05)
    return node


async def test_a_home_not_admitted_is_added_waits_with_a_repair_issue_until_registered(
    hass: HomeAssistant, start_node: StartNode
) -> None:
    node = start_node("casa", prosumer=True)  # its participant is nobody's yet
    result = await hass.config_entries.flow.async_init(DOMAIN, context={"source": SOURCE_USER})
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_URL: node.url, CONF_TOKEN: node.token}
    )
    # Not an error: a step that says the home waits for the operator.
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "not_admitted"
    assert result["errors"] is None
    assert result["description_placeholders"] == {
        "name": node.participant,
        "participant": node.participant,
    }
    result = await hass.config_entries.flow.async_configure(result["flow_id"], {})
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["data"] == {CONF_URL: node.url, CONF_TOKEN: node.token}
    entry = result["result"]
    await hass.async_block_till_done()
    assert entry.state is ConfigEntryState.LOADED

    issue = _issue(hass, entry.entry_id)
    assert issue is not None
    assert issue.translation_key == "admission_not_invited"
    assert issue.severity is ir.IssueSeverity.WARNING
    assert (issue.translation_placeholders or {})["participant"] == node.participant
    admission = entity_id(hass, "sensor", node, "admission")
    assert hass.states.get(admission).state == "not_invited"  # type: ignore[union-attr]
    balance = entity_id(hass, "sensor", node, "wallet_balance")
    assert hass.states.get(balance).state == "0.00"  # type: ignore[union-attr]

    # It signs nothing until it is a member, and says why (not the node's code).
    for service, data in (
        ("deposit", {"amount": 10}),
        ("sign_contract", {"contract": "0x0123456789"}),
    ):
        refused = await _refused(hass, service, entry, **data)
        assert refused.translation_key == "not_admitted"
        assert refused.translation_placeholders["status"] == "not_invited"

    # The operator registers it (with a name): the issue goes, the sensor says so.
    key = Home(node.home).participant_key()
    body = {"public_key": key.public_key.hex(), "role": "prosumer", "name": "casa-ha"}
    await operate(hass, node, "register", body)
    await wait_until(lambda: _issue(hass, entry.entry_id) is None, "the repair issue withdrawn")
    state = await wait_for_state(hass, admission, "member")
    assert state.attributes["name"] == "casa-ha"
    assert state.attributes["role"] == "prosumer"
    deposit = await call_action(hass, "deposit", entry, amount=10)
    assert deposit["status"] == "committed"

    # A revoked home is told so again.
    await operate(hass, node, "revoke", {"address": node.participant})
    await wait_until(lambda: _issue(hass, entry.entry_id) is not None, "the issue raised")
    issue = _issue(hass, entry.entry_id)
    assert issue is not None
    assert issue.translation_key == "admission_revoked"
    assert (issue.translation_placeholders or {})["name"] == "casa-ha"
    await wait_for_state(hass, admission, "revoked")

    # Removing the entry withdraws it.
    assert await hass.config_entries.async_remove(entry.entry_id)
    await hass.async_block_till_done()
    assert _issue(hass, entry.entry_id) is None


def test_every_admission_status_has_its_repair_issue() -> None:
    def admission(status: str) -> Admission:
        return Admission(participant="tv" + "0" * 40, status=status)

    assert {issue_key(admission(str(s))) for s in AdmissionStatus if s != "member"} == set(
        ISSUE_KEYS.values()
    )
    # A status a newer node may add reads as joining: not a member yet.
    assert issue_key(admission("suspended")) == "admission_joining"


async def test_contracts_awaiting_this_home_are_shown_and_signed_names_stand_for_addresses(
    hass: HomeAssistant, start_node: StartNode
) -> None:
    node = start_node("casa", prosumer=True)
    key = Home(node.home).participant_key()
    await operate(
        hass,
        node,
        "register",
        {"public_key": key.public_key.hex(), "role": "prosumer", "name": "casa-ha"},
    )
    vecina = await _named(hass, node, "vecina")
    entry = await setup_entry(hass, node.url, node)
    assert _issue(hass, entry.entry_id) is None
    awaiting = entity_id(hass, "sensor", node, "awaiting_signature")
    assert hass.states.get(awaiting).state == "0"  # type: ignore[union-attr]

    async def canonical(source: str) -> str:
        return str(
            (await call_action(hass, "validate_contract", entry, source=source))["canonical"]
        )

    # The neighbour proposes a contract naming this home by name: it awaits its signature.
    theirs = CONTRACT.replace("lavado barato", "excedente vecinal").replace(
        "Parties: ISO", "Parties: 'Casa-HA'"
    )
    await vecina.send(hass, node, "contract_propose", {"source": await canonical(theirs)})
    state = await wait_for_state(hass, awaiting, "1")
    [waiting] = state.attributes["contracts"]
    assert waiting["name"] == "excedente vecinal"
    assert (waiting["proposer"], waiting["missing"]) == ("vecina", ["casa-ha"])
    assert waiting["parties"] == ["vecina", "casa-ha"]
    assert waiting["valid_to"] == "2030/12/31 23:59:59"

    signed = await call_action(hass, "sign_contract", entry, contract=waiting["short_id"].lower())
    assert (signed["contract_id"], signed["status"]) == (waiting["contract_id"], "active")
    assert signed["receipt"].endswith(f"[{waiting['short_id']}]")
    await wait_for_state(hass, awaiting, "0")
    assert hass.states.get(awaiting).attributes["contracts"] == []  # type: ignore[union-attr]

    # Signing what does not await this home's signature is refused, each case in its words.
    refused = await _refused(hass, "sign_contract", entry, contract=waiting["contract_id"])
    assert refused.translation_key == "not_awaiting_signature"
    refused = await _refused(hass, "sign_contract", entry, contract="0x0000000000")
    assert refused.translation_key == "unknown_contract"
    refused = await _refused(hass, "sign_contract", entry, contract="excedente")
    assert refused.translation_key == "unknown_contract"
    others = CONTRACT.replace("lavado barato", "solo vecina")  # ISO and the neighbour only
    await vecina.send(hass, node, "contract_propose", {"source": await canonical(others)})
    other_id = (await call_action(hass, "validate_contract", entry, source=others))["contract_id"]
    refused = await _refused(hass, "sign_contract", entry, contract=other_id)
    assert refused.translation_key == "not_a_party"

    # This home proposes one naming the neighbour by name: its own signature is there.
    ours = CONTRACT.replace("lavado barato", "compra vecinal").replace(
        "Parties: ISO", "Parties: 'vecina'"
    )
    proposed = await call_action(hass, "submit_contract", entry, source=ours)
    assert proposed["status"] == "proposed"
    refused = await _refused(hass, "sign_contract", entry, contract=proposed["contract_id"])
    assert refused.translation_key == "already_signed"
    record = await entry.runtime_data.client.contract(proposed["contract_id"])
    assert record.missing == (vecina.address,)
    # A party's name that nobody holds is refused before anything is signed.
    nobody = ours.replace("'vecina'", f"'{vecina.address}', 'nadie'").replace(
        "compra vecinal", "a nadie"
    )
    refused = await _refused(hass, "submit_contract", entry, source=nobody)
    assert refused.translation_key == "unknown_name"
    assert refused.translation_placeholders == {"field": "Parties", "name": "nadie"}
    # This home asks to revoke its proposal by its short id (revoked once both have asked).
    revoked = await call_action(hass, "revoke_contract", entry, contract=proposed["short_id"])
    assert (revoked["contract_id"], revoked["status"]) == (proposed["contract_id"], "proposed")

    # Money goes to a name (any case) as to an address.
    request = await local(hass, node, "deposit_request", {"amount": 500})
    await operate(hass, node, "deposit_confirm", {"request": request["id"]})
    sent = await call_action(hass, "transfer", entry, to=" VECINA ", amount=1.5)
    assert sent["status"] == "committed"
    assert (await entry.runtime_data.client.balance(vecina.address)).balance == 150
    refused = await _refused(hass, "transfer", entry, to="nadie", amount=1)
    assert refused.translation_placeholders == {"field": "to", "name": "nadie"}
    refused = await _refused(hass, "transfer", entry, to="-vecina", amount=1)
    assert refused.translation_key == "invalid_address"


def test_every_admission_text_exists_in_both_languages() -> None:
    folder = Path(__file__).resolve().parents[2] / "custom_components" / "transactiva"
    for language in ("en", "es"):
        strings = json.loads((folder / "translations" / f"{language}.json").read_text("utf-8"))
        assert set(ISSUE_KEYS.values()) <= set(strings["issues"]), language
        for description in MEMBERSHIP_SENSORS:
            assert strings["entity"]["sensor"][description.key]["name"], language
        assert set(strings["entity"]["sensor"]["admission"]["state"]) == {
            str(status) for status in AdmissionStatus
        }
        step = strings["config"]["step"]["not_admitted"]
        assert "{name}" in step["description"], language


@pytest.mark.timeout(300)
async def test_a_home_joined_by_invitation_waits_for_approval_then_is_admitted(
    hass: HomeAssistant, start_node: StartNode, tmp_path: Path
) -> None:
    """The documented journey: the operator invites with manual approval, the home joins
    with the code and runs its node; Home Assistant adds it as waiting for approval, and
    once the operator admits it the repair issue goes away."""
    # As ``transactiva init --p2p-port`` makes it: the operator's node listens for homes.
    operator = start_node(
        "operador",
        config={"p2p_port": _free_port(), "p2p_host": "127.0.0.1"},
        before_start=lambda home: SigningKey.generate().save(home / "keys" / "node.key"),
    )
    status, invitation = await node_post(
        hass,
        operator,
        "operator/invitations",
        {"name": "casa-ha", "role": "prosumer", "approve": "manual"},
    )
    assert status == 201, invitation
    home, api_port = tmp_path / "casa-ha", _free_port()
    joined = await hass.async_add_executor_job(_join, invitation["code"], home, api_port)
    assert joined.returncode == 0, joined.stderr
    node = await hass.async_add_executor_job(_start_joined, home, api_port)
    try:
        deadline = time.monotonic() + 90
        while True:
            status, admission = await node_get(hass, node, "local/admission")
            if status == 200 and admission["status"] == "awaiting_approval":
                break
            assert time.monotonic() < deadline, admission
            await asyncio.sleep(0.25)

        result = await hass.config_entries.flow.async_init(DOMAIN, context={"source": SOURCE_USER})
        result = await hass.config_entries.flow.async_configure(
            result["flow_id"], {CONF_URL: node.url, CONF_TOKEN: node.token}
        )
        assert result["step_id"] == "not_admitted", result
        assert result["description_placeholders"]["name"] == "casa-ha"
        result = await hass.config_entries.flow.async_configure(result["flow_id"], {})
        assert result["type"] is FlowResultType.CREATE_ENTRY
        entry = result["result"]
        await hass.async_block_till_done()
        issue = _issue(hass, entry.entry_id)
        assert issue is not None
        assert issue.translation_key == "admission_awaiting_approval"
        assert (issue.translation_placeholders or {})["name"] == "casa-ha"
        admission_id = entity_id(hass, "sensor", node, "admission")
        assert hass.states.get(admission_id).state == "awaiting_approval"  # type: ignore[union-attr]

        status, admitted = await node_post(
            hass, operator, "operator/participants/casa-ha/admit", {}
        )
        assert status == 200, admitted
        await wait_until(
            lambda: _issue(hass, entry.entry_id) is None, "the repair issue withdrawn", 90
        )
        state = await wait_for_state(hass, admission_id, "member", 30)
        assert (state.attributes["name"], state.attributes["role"]) == ("casa-ha", "prosumer")
        assert await hass.config_entries.async_unload(entry.entry_id)
        await hass.async_block_till_done()
    finally:
        await hass.async_add_executor_job(node.stop)
