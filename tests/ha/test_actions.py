"""Contract actions from a real node's home agent: carried out on mapped entities, reported back
to the node's action log, resumed across Home Assistant and node restarts.

The node evaluates this home's contracts and publishes each action on its local event stream;
nothing here makes up an action: prices (from the concentrator's tariff or the operator's
signals) and demand-response events on the ledger make the contracts act.
"""

from __future__ import annotations

import time
from datetime import datetime
from typing import Any

import pytest
from conftest import (
    CONTRACT,
    RealNode,
    StartNode,
    entity_id,
    local,
    node_get,
    node_post,
    setup_entry,
    wait_for_state,
    wait_until,
)
from homeassistant.core import HomeAssistant
from homeassistant.helpers import issue_registry as ir
from homeassistant.setup import async_setup_component
from pytest_homeassistant_custom_component.common import async_capture_events

from custom_components.transactiva.appliances import issue_id
from custom_components.transactiva.const import CONF_APPLIANCES, DOMAIN, EVENT_CONTRACT_ACTION
from ledger_core.demo.chain import paper_contract

# The paper's contract: IF Price < 3 THEN TURN ON 'Lavadora' ELSE TURN OFF, and demand
# response sheds 'Lavadora'.
PAPER = paper_contract("lavadora", datetime(2026, 1, 1), datetime(2030, 12, 31, 23, 59, 59))
APPLIANCES = """\
Contract 'secado'
Valid from 2026/01/01 00:00:00 to 2030/12/31 23:59:59
Consumption true
Production true
Store false
DemandResponse false
IF Price < 100 THEN
  TURN ON DEVICE 'Secadora'
  TURN ON DEVICE 'Clima'
  TURN ON DEVICE 'Bomba'
ENDIF
Parties: ISO
"""
# Only demand response acts on 'Bomba': it is shed, then restored as it was.
SHED_ONLY = """\
Contract 'bomba'
Valid from 2026/01/01 00:00:00 to 2030/12/31 23:59:59
Consumption true
Production true
Store false
DemandResponse true shed 'Bomba'
Parties: ISO
"""
# The scene of issue 16: the paper's Fig. 7 contract as written (conftest's CONTRACT: it ignores
# demand response), and a second contract of the same home that sheds the washer.
SHED_WASHER = """\
Contract 'pico'
Valid from 2026/01/01 00:00:00 to 2030/12/31 23:59:59
Consumption true
Production true
Store false
DemandResponse true shed 'Lavadora'
Parties: ISO
"""
LAVADORA = "input_boolean.lavadora"
BOMBA = "input_boolean.bomba"


@pytest.fixture
async def lavadora(hass: HomeAssistant) -> str:
    assert await async_setup_component(
        hass,
        "input_boolean",
        {
            "input_boolean": {
                "lavadora": {"name": "Lavadora"},
                "secadora": {"name": "Secadora"},
                "bomba": {"name": "Bomba", "initial": True},
            }
        },
    )
    return LAVADORA


def _state(hass: HomeAssistant, entity: str) -> str:
    state = hass.states.get(entity)
    assert state is not None
    return state.state


async def _price(hass: HomeAssistant, node: RealNode, import_price: int) -> None:
    """The operator's price signal for the interval in force now."""
    body = {
        "interval_start": int(time.time()) // 900 * 900,
        "import_price": import_price,
        "export_price": 10500,
        "network_fee": 4130,
    }
    await local(hass, node, "price_signal", body)


async def _logged(hass: HomeAssistant, node: RealNode, limit: int = 20) -> list[dict[str, Any]]:
    status, body = await node_get(hass, node, f"local/actions?limit={limit}")
    assert status == 200, body
    return list(body["actions"])


async def _wait_count(hass: HomeAssistant, node: RealNode, count: int) -> list[dict[str, Any]]:
    """Wait until the node has logged ``count`` actions; the log, newest first."""
    deadline = time.monotonic() + 20
    while len(rows := await _logged(hass, node)) < count:
        assert time.monotonic() < deadline, rows
        await wait_until(lambda: True, "a pause", step=0.1)
    return rows


async def _wait_logged(
    hass: HomeAssistant, node: RealNode, action_id: int, result: str, detail: str | None = None
) -> dict[str, Any]:
    """Wait until the node's log has ``result`` (and ``detail``, when given) for action
    ``action_id``; its row. The node notes ``skipped`` with no detail until Home Assistant
    reports, so a test of what Home Assistant reported waits for its detail."""
    found: dict[str, Any] = {}
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        rows = {row["action_id"]: row for row in await _logged(hass, node)}
        found = rows.get(action_id, {})
        if found.get("result") == result and detail in (None, found.get("detail")):
            return found
        await hass.async_block_till_done()
        await wait_until(lambda: True, "a pause", step=0.1)
    raise AssertionError(f"action {action_id} is {found}, not {result}")


@pytest.fixture
def concentrator_node(start_node: StartNode) -> RealNode:
    """A node that also publishes the example tariff's prices."""
    return start_node("node", concentrator=True)


async def test_the_nodes_contract_actions_switch_the_appliance_and_go_back_to_its_log(
    hass: HomeAssistant, concentrator_node: RealNode, lavadora: str
) -> None:
    node = concentrator_node
    entry = await setup_entry(
        hass, node.url, node, {CONF_APPLIANCES: {"Lavadora": lavadora, "Bomba": BOMBA}}
    )
    events = async_capture_events(hass, EVENT_CONTRACT_ACTION)
    last_id = entity_id(hass, "sensor", node, "last_contract_action")
    # The concentrator publishes the tariff's prices; the contract compares the one in force.
    import_id = entity_id(hass, "sensor", node, "import_price")
    await wait_until(lambda: _state(hass, import_id) != "unavailable", "the tariff's price")
    cheap = float(_state(hass, import_id)) < 3
    wanted, expected = ("on", "turn_on") if cheap else ("off", "turn_off")
    await hass.services.async_call(
        "input_boolean", "turn_off" if cheap else "turn_on", {"entity_id": lavadora}, blocking=True
    )

    status, answer = await node_post(
        hass, node, "local/contract_propose?wait=true", {"source": PAPER}
    )
    assert status == 200, answer
    await wait_for_state(hass, lavadora, wanted)
    await wait_until(
        lambda: hass.states.get(last_id).attributes.get("result") == "ok",  # type: ignore[union-attr]
        "the result on the entity",
    )
    last = hass.states.get(last_id)
    assert last is not None
    assert last.state == expected
    attributes = last.attributes
    assert (attributes["device"], attributes["trigger"], attributes["contract"]) == (
        "Lavadora",
        "price_signal",
        "lavadora",
    )
    assert attributes["reason"].startswith("line ")
    assert attributes["description"].startswith(f"{expected.replace('_', ' ')} 'Lavadora'")
    assert attributes["carried_out"] is True
    row = await _wait_logged(hass, node, attributes["action_id"], "ok")
    assert row["detail"] == f"{expected} {lavadora}"
    (event,) = events
    assert event.data["action_id"] == attributes["action_id"]
    assert event.data["action"] == expected
    assert event.data["short_id"] == attributes["short_id"]
    assert event.data["device_id"] is not None
    contract_state = hass.states.get("sensor.transactiva_contracts_contract_lavadora")
    assert contract_state is not None
    assert contract_state.attributes["last_action_device"] == "Lavadora"

    # The operator's signals move the price in force: dear turns it off, cheap on again
    # (the node does not repeat a command the device already got).
    await _price(hass, node, 40000)
    await wait_for_state(hass, lavadora, "off")
    await _price(hass, node, 20000)
    await wait_for_state(hass, lavadora, "on")

    # Demand response sheds both; when it ends the washer follows its rule again and the pump,
    # which only demand response touches, is restored to how it was.
    await local(hass, node, "contract_propose", {"source": SHED_ONLY})
    await _demand_response(hass, node, "pico")
    await wait_for_state(hass, lavadora, "off")
    await wait_for_state(hass, BOMBA, "off")
    shed = [e.data["action"] for e in events if e.data["trigger"] == "dr_signal"]
    assert shed == ["turn_off", "turn_off"]
    await wait_until(
        lambda: any(e.data["action"] == "restore" for e in events), "the restore", seconds=20
    )
    await wait_for_state(hass, BOMBA, "on")
    await wait_for_state(hass, lavadora, "on")
    restore = next(e for e in events if e.data["action"] == "restore")
    row = await _wait_logged(hass, node, restore.data["action_id"], "ok")
    assert row["detail"] == f"turn_on {BOMBA}"
    appliances = entry.runtime_data.appliances
    assert appliances is not None
    assert appliances.shed == {}

    # What a device was before demand response is kept in memory: after a reload in the
    # middle of an event there is nothing to restore, and the node is told so.
    await _demand_response(hass, node, "pico-2")
    await wait_for_state(hass, BOMBA, "off")
    await hass.config_entries.async_reload(entry.entry_id)
    await wait_until(
        lambda: sum(e.data["action"] == "restore" for e in events) == 2, "the second restore"
    )
    second = [e for e in events if e.data["action"] == "restore"][-1]
    row = await _wait_logged(
        hass,
        node,
        second.data["action_id"],
        "skipped",
        f"no state of {BOMBA} was known before demand response",
    )
    assert row["detail"] == f"no state of {BOMBA} was known before demand response"
    assert _state(hass, BOMBA) == "off"


async def test_two_contracts_of_a_home_demand_response_holds_the_washer_off(
    hass: HomeAssistant, transactiva_node: RealNode, lavadora: str
) -> None:
    """A cheap price turns the washer on (a contract that ignores demand response); a level-3
    event of another contract of the home turns it off, and it stays off for the whole event
    although a new cheap price comes (the node suppresses that turn_on, with why). The price
    is dear when the event ends, so the price contract does not act: the restore puts the
    washer back on, from the state the node recorded, although Home Assistant forgot what it
    had noted (a reload in the middle of the event)."""
    node = transactiva_node
    entry = await setup_entry(hass, node.url, node, {CONF_APPLIANCES: {"Lavadora": lavadora}})
    last_id = entity_id(hass, "sensor", node, "last_contract_action")
    price_id = entity_id(hass, "sensor", node, "import_price")
    for source in (CONTRACT, SHED_WASHER):
        status, answer = await node_post(
            hass, node, "local/contract_propose?wait=true", {"source": source}
        )
        assert status == 200, answer
    await _price(hass, node, 20000)  # 2 MXN/kWh: cheap
    await wait_for_state(hass, lavadora, "on")

    ends = time.time() + 30
    await _demand_response(hass, node, "pico-3", level=3, seconds=30)
    await wait_for_state(hass, lavadora, "off")
    await wait_until(
        lambda: hass.states.get(last_id).attributes.get("trigger") == "dr_signal",  # type: ignore[union-attr]
        "the shed on the entity",
    )
    shed = hass.states.get(last_id)
    assert shed is not None
    assert shed.state == "turn_off"
    assert (shed.attributes["status"], shed.attributes["why"]) == ("effective", None)
    # Home Assistant forgets what it noted (a reload mid-event); the node has not.
    await hass.config_entries.async_reload(entry.entry_id)
    await hass.async_block_till_done()
    appliances = entry.runtime_data.appliances
    assert appliances is not None
    assert appliances.shed == {}
    await wait_until(lambda: _state(hass, last_id) == "turn_off", "the last action again")

    # A new cheap price during the event: the price contract asks, the node holds it off.
    await _price(hass, node, 19000)
    deadline = time.monotonic() + 20
    while True:
        status, body = await node_get(hass, node, "local/actions?status=all&limit=50")
        assert status == 200, body
        held = [row for row in body["actions"] if row["status"] == "suppressed"]
        if held:
            break
        assert time.monotonic() < deadline, body
        await wait_until(lambda: True, "a pause", step=0.2)
    assert held[0]["action"] == "turn_on"
    assert "pico-3" in held[0]["why"]
    await hass.async_block_till_done()
    assert _state(hass, lavadora) == "off"
    assert _state(hass, last_id) == "turn_off"  # what was held off is not an action here
    # Then a dear one: the price contract has no ELSE, so at the end only the restore acts.
    await _price(hass, node, 40000)
    await wait_for_state(hass, price_id, "4.0000")
    assert time.time() < ends - 2, "the event must still be in force"
    assert _state(hass, lavadora) == "off"

    # The event ends: the washer goes back on, to the state the node recorded.
    await wait_until(lambda: _state(hass, last_id) == "restore", "the restore", seconds=60)
    await wait_for_state(hass, lavadora, "on")
    restore = hass.states.get(last_id)
    assert restore is not None
    assert (restore.attributes["status"], restore.attributes["to"]) == ("effective", "on")
    row = await _wait_logged(hass, node, restore.attributes["action_id"], "ok")
    assert row["detail"] == f"turn_on {lavadora}"


async def _demand_response(
    hass: HomeAssistant, node: RealNode, event_id: str, *, level: int = 2, seconds: int = 2
) -> None:
    """A demand-response event from now, for everyone (two seconds unless told)."""
    body = {
        "event_id": event_id,
        "modification_number": 0,
        "signal": {"name": "SIMPLE", "level": level},
        "start": int(time.time()),
        "duration": seconds,
        "targets": [],
        "cancelled": False,
    }
    await local(hass, node, "dr_event", body)


async def test_unmapped_and_failing_devices_are_reported_and_raise_repair_issues(
    hass: HomeAssistant, transactiva_node: RealNode, lavadora: str
) -> None:
    node = transactiva_node
    entry = await setup_entry(hass, node.url, node, {CONF_APPLIANCES: {"Clima": "climate.sala"}})
    await _price(hass, node, 20000)
    answer = await hass.services.async_call(
        DOMAIN,
        "submit_contract",
        {"config_entry_id": entry.entry_id, "source": APPLIANCES},
        blocking=True,
        return_response=True,
    )
    assert answer is not None
    registry = ir.async_get(hass)
    for device in ("Secadora", "Bomba"):
        await wait_until(
            lambda device=device: (
                registry.async_get_issue(DOMAIN, issue_id(entry.entry_id, device)) is not None
            ),
            f"the repair issue of {device}",
        )
    issue = registry.async_get_issue(DOMAIN, issue_id(entry.entry_id, "Secadora"))
    assert issue is not None
    assert issue.translation_key == "unmapped_device"
    assert issue.translation_placeholders == {"device": "Secadora", "entry": "Casa"}
    assert issue.severity is ir.IssueSeverity.WARNING

    # The node's log says what became of each: no entity, or the entity's service failed.
    async def results() -> dict[str, tuple[str, str]]:
        return {
            row["device"]: (row["result"], row["detail"])
            for row in await _logged(hass, node)
            if row["contract"] == "secado"
        }

    deadline = time.monotonic() + 20
    while (found := await results()).get("Clima", ("skipped",))[0] == "skipped":
        assert time.monotonic() < deadline, found
        await wait_until(lambda: True, "a pause", step=0.1)
    assert found["Secadora"] == ("unmapped", "no Home Assistant entity is mapped to 'Secadora'")
    assert found["Clima"][0] == "failed"
    assert found["Clima"][1].startswith("climate.sala: ")
    last = hass.states.get(entity_id(hass, "sensor", node, "last_contract_action"))
    assert last is not None
    assert last.attributes["carried_out"] is False

    # Mapping the device (options save and reload) withdraws its issue.
    hass.config_entries.async_update_entry(
        entry, options={CONF_APPLIANCES: {"Secadora": "input_boolean.secadora"}}
    )
    await hass.config_entries.async_reload(entry.entry_id)
    await hass.async_block_till_done()
    assert registry.async_get_issue(DOMAIN, issue_id(entry.entry_id, "Secadora")) is None
    # Removing the entry withdraws the others.
    await hass.config_entries.async_remove(entry.entry_id)
    assert registry.async_get_issue(DOMAIN, issue_id(entry.entry_id, "Bomba")) is None


async def test_actions_missed_while_away_and_a_restarted_nodes_actions_are_handled_once(
    hass: HomeAssistant, transactiva_node: RealNode, lavadora: str
) -> None:
    node = transactiva_node
    # Before Home Assistant meets the node, the contract already acted: that is history.
    await _price(hass, node, 20000)
    await local(hass, node, "contract_propose", {"source": PAPER})
    (before,) = await _wait_count(hass, node, 1)
    assert (before["action"], before["result"]) == ("turn_on", "skipped")
    entry = await setup_entry(hass, node.url, node, {CONF_APPLIANCES: {"Lavadora": lavadora}})
    actions = entry.runtime_data.actions
    assert actions is not None
    await wait_until(lambda: actions.connected, "the local stream")
    last_id = entity_id(hass, "sensor", node, "last_contract_action")
    last = await wait_for_state(hass, last_id, "turn_on")
    assert (last.attributes["action_id"], last.attributes["result"]) == (
        before["action_id"],
        "skipped",
    )
    assert _state(hass, lavadora) == "off"

    # Home Assistant goes away; the contract switches the washer off and on meanwhile.
    assert await hass.config_entries.async_unload(entry.entry_id)
    await _price(hass, node, 40000)
    await _price(hass, node, 20000)
    on, off = (await _wait_count(hass, node, 3))[:2]
    assert (off["action"], on["action"]) == ("turn_off", "turn_on")
    # Back: only the newest word on the device is carried out; the older one is superseded.
    assert await hass.config_entries.async_setup(entry.entry_id)
    await wait_for_state(hass, lavadora, "on")
    await _wait_logged(hass, node, on["action_id"], "ok")
    superseded = await _wait_logged(hass, node, off["action_id"], "skipped")
    assert superseded["detail"] == f"superseded by action {on['action_id']} for Lavadora"

    # The node restarts: its local event numbers start again, its action ids do not; the
    # new run's actions are carried out.
    await hass.async_add_executor_job(node.restart)
    actions = entry.runtime_data.actions
    assert actions is not None
    await wait_until(lambda: not actions.connected, "the stream to drop")
    await wait_until(lambda: actions.connected, "the stream back", seconds=40)
    await _price(hass, node, 40000)
    await wait_for_state(hass, lavadora, "off")
    newest = (await _logged(hass, node, 1))[0]
    assert newest["action"] == "turn_off"
    assert newest["action_id"] > on["action_id"]
    await _wait_logged(hass, node, newest["action_id"], "ok")
