"""The config flow adds a node by URL, refuses bad addresses and duplicates."""

from __future__ import annotations

import pytest
from homeassistant.config_entries import SOURCE_USER
from homeassistant.const import CONF_URL
from homeassistant.core import HomeAssistant
from homeassistant.data_entry_flow import FlowResultType
from pytest_homeassistant_custom_component.common import MockConfigEntry

from custom_components.transactiva.const import DOMAIN


async def test_user_step_creates_an_entry_with_the_normalised_url(hass: HomeAssistant) -> None:
    result = await hass.config_entries.flow.async_init(DOMAIN, context={"source": SOURCE_USER})
    assert result["type"] is FlowResultType.FORM
    assert result["step_id"] == "user"
    assert result["errors"] == {}

    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_URL: " http://192.168.1.20:8765/ "}
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["title"] == "192.168.1.20"
    assert result["data"] == {CONF_URL: "http://192.168.1.20:8765"}
    assert result["result"].unique_id == "http://192.168.1.20:8765"


@pytest.mark.parametrize(
    "bad", ["ftp://nodo", "nodo.local", "http://", "http://h/?token=1", "http://h/#x"]
)
async def test_user_step_rejects_addresses_that_are_not_node_urls(
    hass: HomeAssistant, bad: str
) -> None:
    result = await hass.config_entries.flow.async_init(DOMAIN, context={"source": SOURCE_USER})
    result = await hass.config_entries.flow.async_configure(result["flow_id"], {CONF_URL: bad})
    assert result["type"] is FlowResultType.FORM
    assert result["errors"] == {CONF_URL: "invalid_url"}

    # The form keeps what was typed and accepts a corrected address.
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_URL: "https://nodo.local"}
    )
    assert result["type"] is FlowResultType.CREATE_ENTRY
    assert result["data"] == {CONF_URL: "https://nodo.local"}


async def test_the_same_node_cannot_be_added_twice(hass: HomeAssistant) -> None:
    MockConfigEntry(
        domain=DOMAIN,
        unique_id="http://192.168.1.20:8765",
        data={CONF_URL: "http://192.168.1.20:8765"},
    ).add_to_hass(hass)

    result = await hass.config_entries.flow.async_init(DOMAIN, context={"source": SOURCE_USER})
    result = await hass.config_entries.flow.async_configure(
        result["flow_id"], {CONF_URL: "http://192.168.1.20:8765/"}
    )
    assert result["type"] is FlowResultType.ABORT
    assert result["reason"] == "already_configured"
