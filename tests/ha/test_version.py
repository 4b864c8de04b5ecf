"""A node whose API version the integration cannot speak: the config flow refuses it, a
configured entry raises a repair issue and waits, and recovers once the node is updated.

The node is a real one behind a loopback proxy that claims another ``api_version``
(``versionproxy.py``): what the integration sees of an app updated (or not) to an
incompatible version.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
from conftest import RealNode, wait_until
from homeassistant.config_entries import SOURCE_HASSIO, SOURCE_USER, ConfigEntryState
from homeassistant.const import CONF_TOKEN, CONF_URL
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType
from homeassistant.helpers import issue_registry as ir
from homeassistant.helpers import translation
from homeassistant.helpers.service_info.hassio import HassioServiceInfo
from homeassistant.util import dt as dt_util
from pytest_homeassistant_custom_component.common import MockConfigEntry, async_fire_time_changed
from versionproxy import KEEP, VersionProxy

from custom_components.transactiva.const import DOMAIN
from transactiva_client import API_VERSION


@pytest.fixture
async def proxy(transactiva_node: RealNode) -> AsyncIterator[VersionProxy]:
    """A proxy in front of a running node (its own version until a test changes it)."""
    started = VersionProxy(transactiva_node.url)
    await started.start()
    yield started
    await started.close()


@pytest.mark.parametrize(
    ("claimed", "error", "node_version"),
    [
        ("99.0", "integration_too_old", "99.0"),
        ("0.9", "node_too_old", "0.9"),
        (None, "node_too_old", "< 1.0"),  # a node that does not say predates API 1.0
    ],
)
async def test_the_config_flow_refuses_an_incompatible_node_saying_what_to_update(
    hass: HomeAssistant,
    transactiva_node: RealNode,
    proxy: VersionProxy,
    claimed: str | None,
    error: str,
    node_version: str,
) -> None:
    proxy.api_version = claimed
    result = await hass.config_entries.flow.async_init(DOMAIN, context={"source": SOURCE_USER})
    user_input = {CONF_URL: proxy.url, CONF_TOKEN: transactiva_node.token}
    result = await hass.config_entries.flow.async_configure(result["flow_id"], user_input)
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {"base": error}
    assert result["description_placeholders"] == {
        "node_version": node_version,
        "client_version": API_VERSION,
    }
    # Once the node is updated, the same form goes through.
    proxy.api_version = KEEP
    result = await hass.config_entries.flow.async_configure(result["flow_id"], user_input)
    assert result["type"] is FlowResultType.CREATE_ENTRY
    await hass.async_block_till_done()
    # Unloaded before the proxy closes: a stream still open would hold its close up.
    assert await hass.config_entries.async_unload(result["result"].entry_id)


async def test_an_announced_incompatible_node_is_not_offered(
    hass: HomeAssistant, transactiva_node: RealNode, proxy: VersionProxy
) -> None:
    proxy.api_version = "2.0"
    port = proxy.url.rsplit(":", 1)[1]
    info = HassioServiceInfo(
        config={"host": "127.0.0.1", "port": port, "token": transactiva_node.token},
        name="Transactiva",
        slug="transactiva",
        uuid="1234",
    )
    result = await hass.config_entries.flow.async_init(
        DOMAIN, context={"source": SOURCE_HASSIO}, data=info
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "integration_too_old"
    assert result["description_placeholders"] == {
        "node_version": "2.0",
        "client_version": API_VERSION,
    }


def _issue(hass: HomeAssistant, entry: MockConfigEntry) -> ir.IssueEntry | None:
    return ir.async_get(hass).async_get_issue(DOMAIN, f"incompatible_node_{entry.entry_id}")


async def test_an_incompatible_node_raises_a_repair_issue_until_it_is_updated(
    hass: HomeAssistant, transactiva_node: RealNode, proxy: VersionProxy
) -> None:
    proxy.api_version = "0.9"
    entry = MockConfigEntry(
        domain=DOMAIN,
        title="Casa",
        unique_id=transactiva_node.participant,
        data={CONF_URL: proxy.url, CONF_TOKEN: transactiva_node.token},
    )
    entry.add_to_hass(hass)
    assert not await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    assert entry.state is ConfigEntryState.SETUP_RETRY
    assert entry.reason is not None
    assert entry.reason.startswith("The Transactiva node serves API version 0.9, older than")
    issue = _issue(hass, entry)
    assert issue is not None
    assert (issue.translation_key, issue.severity, issue.is_fixable) == (
        "node_too_old",
        ir.IssueSeverity.ERROR,
        False,
    )
    assert issue.translation_placeholders == {
        "entry": "Casa",
        "url": proxy.url,
        "node_version": "0.9",
        "client_version": API_VERSION,
    }
    assert issue.learn_more_url is not None
    assert issue.learn_more_url.endswith("#an-incompatible-node")
    for language, update in (("en", "Update the Transactiva app"), ("es", "Actualiza la app")):
        strings = await translation.async_get_translations(hass, language, "issues", [DOMAIN])
        key = f"component.{DOMAIN}.issues.node_too_old"
        title = strings[f"{key}.title"].format(**issue.translation_placeholders)
        description = strings[f"{key}.description"].format(**issue.translation_placeholders)
        assert "Casa" in title
        assert "0.9" in description
        assert update in description

    # The node is updated: Home Assistant's next retry sets the entry up.
    proxy.api_version = KEEP
    async_fire_time_changed(hass, dt_util.utcnow() + timedelta(minutes=5))
    await wait_until(lambda: entry.state is ConfigEntryState.LOADED, "the entry to load")
    assert _issue(hass, entry) is None
    assert await hass.config_entries.async_unload(entry.entry_id)
    await hass.async_block_till_done()


async def test_a_node_updated_to_an_incompatible_version_while_running(
    hass: HomeAssistant, transactiva_node: RealNode, proxy: VersionProxy
) -> None:
    entry = MockConfigEntry(
        domain=DOMAIN,
        title="Casa",
        unique_id=transactiva_node.participant,
        data={CONF_URL: proxy.url, CONF_TOKEN: transactiva_node.token},
    )
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    assert _issue(hass, entry) is None

    # The node restarts as a version the integration cannot speak. Set-up can end before the
    # event streams are open: wait for both (the ledger's and the home's local events) to pass
    # through the proxy, or there is nothing to drop yet.
    await wait_until(lambda: proxy.open_streams == 2, "both event streams")
    proxy.api_version = "2.0"
    await proxy.drop_streams()
    await wait_until(lambda: _issue(hass, entry) is not None, "the repair issue")
    await wait_until(
        lambda: entry.state is ConfigEntryState.SETUP_RETRY, "the entry to wait for the node"
    )
    issue = _issue(hass, entry)
    assert issue is not None
    assert issue.translation_key == "integration_too_old"
    assert issue.translation_placeholders["node_version"] == "2.0"

    # Removing the entry withdraws the issue.
    assert await hass.config_entries.async_remove(entry.entry_id)
    await hass.async_block_till_done()
    assert _issue(hass, entry) is None
