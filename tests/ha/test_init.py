"""The integration loads, sets up and unloads through Home Assistant's real harness."""

from __future__ import annotations

import json
import os
import re
import time
from pathlib import Path
from typing import Any

from conftest import (
    CONTRACT,
    RealNode,
    entity_id,
    local,
    node_device,
    setup_entry,
    wait_for_state,
    wait_until,
)
from homeassistant.config_entries import ConfigEntryState
from homeassistant.const import CONF_TOKEN, CONF_URL
from homeassistant.core import DOMAIN as HOMEASSISTANT_DOMAIN
from homeassistant.core import HomeAssistant, SupportsResponse
from homeassistant.helpers import device_registry as dr
from homeassistant.helpers import issue_registry as ir
from homeassistant.helpers import selector
from homeassistant.helpers.service import async_get_all_descriptions
from homeassistant.loader import async_get_integration
from homeassistant.setup import async_setup_component
from pytest_homeassistant_custom_component.common import MockConfigEntry
from yarl import URL

from custom_components.transactiva.const import DOMAIN
from custom_components.transactiva.devices import Group
from custom_components.transactiva.sensor import (
    FORECAST_SENSORS,
    METER_SENSORS,
    NODE_SENSORS,
    PEERS,
    PHASE_SENSORS,
)
from custom_components.transactiva.services import SERVICES

REPO = Path(__file__).resolve().parents[2]
INTEGRATION_DIR = REPO / "custom_components" / "transactiva"
MANIFEST_TEXT = (INTEGRATION_DIR / "manifest.json").read_text(encoding="utf-8")


async def test_home_assistant_loads_this_repository_integration(hass: HomeAssistant) -> None:
    integration = await async_get_integration(hass, DOMAIN)
    manifest = json.loads(MANIFEST_TEXT)

    real_path = await hass.async_add_executor_job(os.path.realpath, integration.file_path)
    assert Path(real_path) == INTEGRATION_DIR
    assert integration.version is not None
    assert str(integration.version) == manifest["version"]
    assert not integration.is_built_in
    assert await async_setup_component(hass, DOMAIN, {})
    assert DOMAIN in hass.config.components


async def test_entry_sets_up_against_a_real_node_and_unloads(
    hass: HomeAssistant, idle_node: RealNode
) -> None:
    entry = MockConfigEntry(
        domain=DOMAIN,
        title="Casa",
        unique_id=idle_node.participant,
        data={CONF_URL: idle_node.url, CONF_TOKEN: idle_node.token},
    )
    entry.add_to_hass(hass)

    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()

    assert entry.state is ConfigEntryState.LOADED
    assert entry.runtime_data.node_url == URL(idle_node.url)
    assert entry.runtime_data.status.chain_id == "transactiva-local"
    assert entry.runtime_data.status.participant == idle_node.participant

    assert await hass.config_entries.async_unload(entry.entry_id)
    await hass.async_block_till_done()
    assert entry.state is ConfigEntryState.NOT_LOADED


async def test_a_refused_token_starts_reauthentication(
    hass: HomeAssistant, idle_node: RealNode
) -> None:
    entry = MockConfigEntry(
        domain=DOMAIN,
        unique_id=idle_node.participant,
        data={CONF_URL: idle_node.url, CONF_TOKEN: "wrong"},
    )
    entry.add_to_hass(hass)
    assert not await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    assert entry.state is ConfigEntryState.SETUP_ERROR
    flows = hass.config_entries.flow.async_progress_by_handler(DOMAIN)
    assert [flow["context"]["source"] for flow in flows] == ["reauth"]
    assert entry.reason is not None
    assert entry.reason.startswith("The Transactiva node refused the API token")


async def test_an_unreachable_node_is_retried(hass: HomeAssistant, socket_enabled: None) -> None:
    entry = MockConfigEntry(domain=DOMAIN, data={CONF_URL: "http://127.0.0.1:1", CONF_TOKEN: "t"})
    entry.add_to_hass(hass)
    assert not await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    assert entry.state is ConfigEntryState.SETUP_RETRY
    assert entry.reason is not None
    assert entry.reason.startswith("Cannot reach the Transactiva node at http://127.0.0.1:1")


async def test_entry_with_unusable_node_url_fails_with_translated_error(
    hass: HomeAssistant,
) -> None:
    entry = MockConfigEntry(domain=DOMAIN, title="Casa", data={CONF_URL: "ftp://nodo"})
    entry.add_to_hass(hass)

    assert not await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()

    assert entry.state is ConfigEntryState.SETUP_ERROR
    assert entry.reason is not None
    assert "ftp://nodo" in entry.reason
    assert "not a valid http or https URL" in entry.reason


async def test_yaml_configuration_raises_a_repair_issue(
    hass: HomeAssistant, issue_registry: ir.IssueRegistry
) -> None:
    """The integration is configured from the UI only; YAML under its key is flagged."""
    assert await async_setup_component(hass, DOMAIN, {DOMAIN: {"url": "http://x"}})
    issue = issue_registry.async_get_issue(HOMEASSISTANT_DOMAIN, f"config_entry_only_{DOMAIN}")
    assert issue is not None
    assert issue.severity is ir.IssueSeverity.ERROR


async def test_the_first_run_reads_history_and_later_runs_resume_where_they_stopped(
    hass: HomeAssistant, transactiva_node: RealNode, hass_storage: dict[str, Any]
) -> None:
    node = transactiva_node
    # Before Home Assistant knows the node: a contract and a coming demand-response event.
    canonical = CONTRACT
    await local(hass, node, "contract_propose", {"source": canonical})
    await local(
        hass,
        node,
        "dr_event",
        {
            "event_id": "manana",
            "modification_number": 0,
            "signal": {"name": "SIMPLE", "level": 1},
            "start": int(time.time()) + 3600,
            "duration": 600,
            "targets": [],
            "cancelled": False,
        },
    )
    start = int(time.time()) // 900 * 900
    await local(
        hass,
        node,
        "price_signal",
        {"interval_start": start, "import_price": 31000, "export_price": 9000, "network_fee": 0},
    )
    entry = await setup_entry(hass, node.url, node)
    assert hass.states.get(entity_id(hass, "sensor", node, "import_price")).state == "3.1000"  # type: ignore[union-attr]
    first = "sensor.transactiva_contracts_contract_lavado_barato"
    await wait_for_state(hass, first, "active")
    coordinator = entry.runtime_data.coordinator
    await wait_until(lambda: "manana" in coordinator.data.demand_response, "the DR event")
    sync = await wait_for_state(hass, entity_id(hass, "sensor", node, "sync_status"), "synced")
    assert sync.attributes["options"] == ["synced", "catching_up"]
    # A node with no P2P network reports no peers; the diagnostic sensor says 0.
    assert hass.states.get(entity_id(hass, "sensor", node, "peers")).state == "0"  # type: ignore[union-attr]

    assert await hass.config_entries.async_unload(entry.entry_id)
    stored = hass_storage[f"{DOMAIN}.{entry.entry_id}"]["data"]
    assert stored["participant"] == node.participant
    assert stored["seq"] > 0
    assert len(stored["contracts"]) == 1
    assert [e["event_id"] for e in stored["demand_response"]] == ["manana"]

    # Remembered data that no longer makes sense is dropped: a contract the node does
    # not know, a demand-response record that is not one.
    stored["contracts"].append("cd" * 32)
    stored["demand_response"].append({"event_id": "roto"})
    # While Home Assistant is away, another contract appears.
    second = CONTRACT.replace("lavado barato", "bomba de agua")
    await local(hass, node, "contract_propose", {"source": second})
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    await wait_for_state(hass, "sensor.transactiva_contracts_contract_bomba_de_agua", "active")
    assert hass.states.get(first).state == "active"  # type: ignore[union-attr]
    resumed = entry.runtime_data.coordinator.data
    assert "manana" in resumed.demand_response
    assert "roto" not in resumed.demand_response
    assert "cd" * 32 not in resumed.contracts


async def test_remembered_data_of_another_chain_is_ignored(
    hass: HomeAssistant, transactiva_node: RealNode, hass_storage: dict[str, Any]
) -> None:
    entry_id = "remembered"
    hass_storage[f"{DOMAIN}.{entry_id}"] = {
        "version": 1,
        "key": f"{DOMAIN}.{entry_id}",
        "data": {
            "chain_id": "otra-cadena",
            "participant": transactiva_node.participant,
            "height": 5,
            "seq": 10**6,
            "contracts": ["ab" * 32],
            "requests": [],
            "demand_response": [],
            "day": "2020-01-01",
            "earnings": 999,
            "spending": 999,
        },
    }
    entry = MockConfigEntry(
        domain=DOMAIN,
        entry_id=entry_id,
        unique_id=transactiva_node.participant,
        data={CONF_URL: transactiva_node.url, CONF_TOKEN: transactiva_node.token},
    )
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    state = entry.runtime_data.coordinator.data
    assert (state.earnings, state.spending, state.contracts) == (0, 0, {})
    await local(hass, transactiva_node, "contract_propose", {"source": CONTRACT})
    # The stream starts from block 1, not from the other chain's position.
    await wait_for_state(hass, "sensor.transactiva_contracts_contract_lavado_barato", "active")


async def test_devices_of_removed_actuators_are_dropped_and_others_kept(
    hass: HomeAssistant, idle_node: RealNode, device_registry: dr.DeviceRegistry
) -> None:
    node = idle_node
    entry = await setup_entry(hass, node.url, node)
    gone = device_registry.async_get_or_create(
        config_entry_id=entry.entry_id,
        identifiers={(DOMAIN, f"{node.participant}_ble_11:22:33:44:55:66")},
    )
    market = node_device(hass, node, "market")
    assert market.via_device_id == node_device(hass, node).id
    assert node_device(hass, node).via_device_id is None
    component = await async_get_integration(hass, DOMAIN)
    module = await component.async_get_component()
    assert await module.async_remove_config_entry_device(hass, entry, gone)
    assert not await module.async_remove_config_entry_device(hass, entry, market)

    await hass.config_entries.async_reload(entry.entry_id)
    await hass.async_block_till_done()
    assert device_registry.async_get(gone.id) is None
    assert device_registry.async_get(market.id) is not None


async def test_every_action_is_described_and_translated(hass: HomeAssistant) -> None:
    assert await async_setup_component(hass, DOMAIN, {})
    descriptions = (await async_get_all_descriptions(hass))[DOMAIN]
    assert set(descriptions) == set(SERVICES)
    assert set(hass.services.async_services_for_domain(DOMAIN)) == set(SERVICES)
    for language in ("en", "es"):
        strings = json.loads(
            (INTEGRATION_DIR / "translations" / f"{language}.json").read_text(encoding="utf-8")
        )
        for name, description in descriptions.items():
            translated = strings["services"][name]
            assert translated["name"]
            assert set(translated["fields"]) == set(description["fields"]), (language, name)
            schema_fields = {str(key) for key in SERVICES[name][1]} | {"config_entry_id"}
            assert schema_fields == set(description["fields"]), name
    # Every selector is one Home Assistant accepts (2026.x refuses the whole services.yaml
    # for one bad selector, leaving every action without its fields in the UI).
    for name, description in descriptions.items():
        for field, spec in description["fields"].items():
            try:
                selector.validate_selector(spec["selector"])
            except Exception as err:
                raise AssertionError(f"{name}.{field}: {err}") from err
    # Response-only actions answer; the others answer when asked.
    for name in ("get_prices", "get_settlements", "get_trades", "get_forecast", "get_advice"):
        assert hass.services.supports_response(DOMAIN, name) is SupportsResponse.ONLY
    assert hass.services.supports_response(DOMAIN, "deposit") is SupportsResponse.OPTIONAL


def test_every_translation_key_the_code_uses_exists_in_both_languages() -> None:
    source = "\n".join(
        path.read_text(encoding="utf-8") for path in sorted(INTEGRATION_DIR.glob("*.py"))
    )
    exceptions = set(re.findall(r'translation_key="([a-z_]+)"', source))
    exceptions |= set(re.findall(r'_invalid\(\s*"([a-z_]+)"', source))
    exceptions -= {"unmapped_device"}  # a repair issue, under "issues"
    entities = {
        d.key for d in (*NODE_SENSORS, PEERS, *METER_SENSORS, *PHASE_SENSORS, *FORECAST_SENSORS)
    }
    for language in ("en", "es"):
        strings = json.loads(
            (INTEGRATION_DIR / "translations" / f"{language}.json").read_text(encoding="utf-8")
        )
        assert exceptions <= set(strings["exceptions"]), language
        assert entities | {"contract"} <= set(strings["entity"]["sensor"]), language
        assert set(strings["entity"]["binary_sensor"]) == {"demand_response_active", "grid_supply"}
        assert "unmapped_device" in strings["issues"]
        assert set(strings["device"]) == {str(group) for group in Group}
