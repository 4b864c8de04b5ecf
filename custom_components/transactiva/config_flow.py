"""Config flow: add a Transactiva node by its URL."""

from __future__ import annotations

from typing import Any

import voluptuous as vol
from homeassistant.config_entries import ConfigFlow, ConfigFlowResult
from homeassistant.const import CONF_URL
from homeassistant.helpers.selector import (
    TextSelector,
    TextSelectorConfig,
    TextSelectorType,
)

from .const import DOMAIN
from .node_url import parse_node_url

USER_SCHEMA = vol.Schema(
    {vol.Required(CONF_URL): TextSelector(TextSelectorConfig(type=TextSelectorType.URL))}
)


class TransactivaConfigFlow(ConfigFlow, domain=DOMAIN):
    """Add one node; a node is configured once."""

    VERSION = 1

    async def async_step_user(self, user_input: dict[str, Any] | None = None) -> ConfigFlowResult:
        """Ask for the node's URL."""
        errors: dict[str, str] = {}
        if user_input is not None:
            url = parse_node_url(user_input.get(CONF_URL))
            if url is None:
                errors[CONF_URL] = "invalid_url"
            else:
                await self.async_set_unique_id(str(url))
                self._abort_if_unique_id_configured()
                return self.async_create_entry(
                    title=url.host or str(url), data={CONF_URL: str(url)}
                )
        return self.async_show_form(
            step_id="user",
            data_schema=self.add_suggested_values_to_schema(USER_SCHEMA, user_input),
            errors=errors,
        )
