"""The config flow against real node processes: URL and token checked before saving."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from conftest import RealNode
from homeassistant.config_entries import SOURCE_USER
from homeassistant.const import CONF_TOKEN, CONF_URL
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.transactiva.const import DOMAIN


async def _start_flow(hass: HomeAssistant) -> str:
    result = await hass.config_entries.flow.async_init(DOMAIN, context={"source": SOURCE_USER})
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "user"
    assert result["errors"] == {}
    return str(result["flow_id"])


async def test_user_step_checks_the_node_and_creates_the_entry(
    hass: HomeAssistant, transactiva_node: RealNode
) -> None:
    flow_id = await _start_flow(hass)
    result = await hass.config_entries.flow.async_configure(
        flow_id, {CONF_URL: f" {transactiva_node.url}/ ", CONF_TOKEN: transactiva_node.token}
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["title"] == "Transactiva transactiva-local"
    assert result["data"] == {CONF_URL: transactiva_node.url, CONF_TOKEN: transactiva_node.token}
    assert result["result"].unique_id == transactiva_node.participant
    await hass.async_block_till_done()


async def test_wrong_token_unreachable_node_and_bad_urls_are_told_apart(
    hass: HomeAssistant, transactiva_node: RealNode
) -> None:
    flow_id = await _start_flow(hass)
    result = await hass.config_entries.flow.async_configure(
        flow_id, {CONF_URL: transactiva_node.url, CONF_TOKEN: "wrong"}
    )
    assert result["errors"] == {CONF_TOKEN: "invalid_auth"}
    # The form keeps the URL but never echoes the token.
    suggested = {
        str(key): (key.description or {}).get("suggested_value")
        for key in result["data_schema"].schema
    }
    assert suggested == {CONF_URL: transactiva_node.url, CONF_TOKEN: None}

    result = await hass.config_entries.flow.async_configure(
        flow_id, {CONF_URL: "http://127.0.0.1:1", CONF_TOKEN: transactiva_node.token}
    )
    assert result["errors"] == {"base": "cannot_connect"}

    result = await hass.config_entries.flow.async_configure(
        flow_id, {CONF_URL: "ftp://nodo", CONF_TOKEN: transactiva_node.token}
    )
    assert result["errors"] == {CONF_URL: "invalid_url"}

    result = await hass.config_entries.flow.async_configure(
        flow_id, {CONF_URL: transactiva_node.url, CONF_TOKEN: transactiva_node.token}
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    await hass.async_block_till_done()


@pytest.mark.parametrize(
    "bad", ["ftp://nodo", "nodo.local", "http://", "http://h/?token=1", "http://h/#x"]
)
async def test_addresses_that_are_not_node_urls_are_refused_before_any_request(
    hass: HomeAssistant, bad: str
) -> None:
    flow_id = await _start_flow(hass)
    result = await hass.config_entries.flow.async_configure(
        flow_id, {CONF_URL: bad, CONF_TOKEN: "t"}
    )
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {CONF_URL: "invalid_url"}


async def test_the_same_node_cannot_be_added_twice(
    hass: HomeAssistant, transactiva_node: RealNode
) -> None:
    entry = MockConfigEntry(
        domain=DOMAIN,
        unique_id=transactiva_node.participant,
        data={CONF_URL: "http://old.address:8765", CONF_TOKEN: transactiva_node.token},
    )
    entry.add_to_hass(hass)
    flow_id = await _start_flow(hass)
    result = await hass.config_entries.flow.async_configure(
        flow_id, {CONF_URL: transactiva_node.url, CONF_TOKEN: transactiva_node.token}
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "already_configured"
    # A node that moved gets its new address.
    assert entry.data[CONF_URL] == transactiva_node.url


async def test_reauth_takes_a_new_token_for_the_same_node_only(
    hass: HomeAssistant, start_node: Callable[[str], RealNode]
) -> None:
    node = start_node("casa")
    other = start_node("vecino")
    entry = MockConfigEntry(
        domain=DOMAIN,
        unique_id=node.participant,
        data={CONF_URL: node.url, CONF_TOKEN: "stale"},
    )
    entry.add_to_hass(hass)
    result = await entry.start_reauth_flow(hass)
    assert result["step_id"] == "reauth_confirm"
    assert result["description_placeholders"]["url"] == node.url

    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_TOKEN: "still-wrong"}
    )
    assert result["errors"] == {CONF_TOKEN: "invalid_auth"}

    # The other node's token is refused by this node.
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_TOKEN: other.token}
    )
    assert result["errors"] == {CONF_TOKEN: "invalid_auth"}

    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_TOKEN: node.token}
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "reauth_successful"
    assert entry.data[CONF_TOKEN] == node.token
    await hass.async_block_till_done()


async def test_reauth_refuses_a_different_node_at_the_same_address(
    hass: HomeAssistant, start_node: Callable[[str], RealNode]
) -> None:
    node = start_node("casa")
    entry = MockConfigEntry(
        domain=DOMAIN,
        unique_id="tv" + "0" * 40,  # the node that used to answer at this address
        data={CONF_URL: node.url, CONF_TOKEN: "stale"},
    )
    entry.add_to_hass(hass)
    result = await entry.start_reauth_flow(hass)
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_TOKEN: node.token}
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "wrong_node"
    assert entry.data[CONF_TOKEN] == "stale"
