"""The integration loads, sets up and unloads through Home Assistant's real harness."""

from __future__ import annotations

import json
import os
from pathlib import Path

from conftest import RealNode
from homeassistant.config_entries import ConfigEntryState
from homeassistant.const import CONF_TOKEN, CONF_URL
from homeassistant.core import DOMAIN as HOMEASSISTANT_DOMAIN
from homeassistant.core import HomeAssistant
from homeassistant.helpers import issue_registry as ir
from homeassistant.loader import async_get_integration
from homeassistant.setup import async_setup_component
from pytest_homeassistant_custom_component.common import MockConfigEntry
from yarl import URL

from custom_components.transactiva.const import DOMAIN

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
    hass: HomeAssistant, transactiva_node: RealNode
) -> None:
    entry = MockConfigEntry(
        domain=DOMAIN,
        title="Casa",
        unique_id=transactiva_node.participant,
        data={CONF_URL: transactiva_node.url, CONF_TOKEN: transactiva_node.token},
    )
    entry.add_to_hass(hass)

    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()

    assert entry.state is ConfigEntryState.LOADED
    assert entry.runtime_data.node_url == URL(transactiva_node.url)
    assert entry.runtime_data.status.chain_id == "transactiva-local"
    assert entry.runtime_data.status.participant == transactiva_node.participant

    assert await hass.config_entries.async_unload(entry.entry_id)
    await hass.async_block_till_done()
    assert entry.state is ConfigEntryState.NOT_LOADED


async def test_a_refused_token_starts_reauthentication(
    hass: HomeAssistant, transactiva_node: RealNode
) -> None:
    entry = MockConfigEntry(
        domain=DOMAIN,
        unique_id=transactiva_node.participant,
        data={CONF_URL: transactiva_node.url, CONF_TOKEN: "wrong"},
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
