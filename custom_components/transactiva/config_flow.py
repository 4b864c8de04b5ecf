"""Config flow: add a Transactiva node by URL and API token, tested before saving."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import voluptuous as vol
from homeassistant.config_entries import ConfigFlow, ConfigFlowResult
from homeassistant.const import CONF_TOKEN, CONF_URL
from homeassistant.helpers.aiohttp_client import async_get_clientsession
from homeassistant.helpers.selector import (
    TextSelector,
    TextSelectorConfig,
    TextSelectorType,
)
from yarl import URL

from .api import NodeStatus, TransactivaAuthError, TransactivaClient, TransactivaConnectionError
from .const import DOMAIN
from .node_url import parse_node_url

TOKEN_SELECTOR = TextSelector(TextSelectorConfig(type=TextSelectorType.PASSWORD))
USER_SCHEMA = vol.Schema(
    {
        vol.Required(CONF_URL): TextSelector(TextSelectorConfig(type=TextSelectorType.URL)),
        vol.Required(CONF_TOKEN): TOKEN_SELECTOR,
    }
)
REAUTH_SCHEMA = vol.Schema({vol.Required(CONF_TOKEN): TOKEN_SELECTOR})


class TransactivaConfigFlow(ConfigFlow, domain=DOMAIN):
    """Add one node; a node (its local participant) is configured once."""

    VERSION = 1

    async def _try(self, url: URL, token: str, errors: dict[str, str]) -> NodeStatus | None:
        client = TransactivaClient(async_get_clientsession(self.hass), url, token)
        try:
            return await client.check()
        except TransactivaAuthError:
            errors[CONF_TOKEN] = "invalid_auth"
        except TransactivaConnectionError:
            errors["base"] = "cannot_connect"
        return None

    async def async_step_user(self, user_input: dict[str, Any] | None = None) -> ConfigFlowResult:
        """Ask for the node's URL and token, and check both."""
        errors: dict[str, str] = {}
        if user_input is not None:
            url = parse_node_url(user_input.get(CONF_URL))
            token = str(user_input.get(CONF_TOKEN, "")).strip()
            if url is None:
                errors[CONF_URL] = "invalid_url"
            elif (status := await self._try(url, token, errors)) is not None:
                await self.async_set_unique_id(status.participant)
                self._abort_if_unique_id_configured(updates={CONF_URL: str(url)})
                return self.async_create_entry(
                    title=f"Transactiva {status.chain_id}",
                    data={CONF_URL: str(url), CONF_TOKEN: token},
                )
        return self.async_show_form(
            step_id="user",
            data_schema=self.add_suggested_values_to_schema(
                USER_SCHEMA, {k: v for k, v in (user_input or {}).items() if k != CONF_TOKEN}
            ),
            errors=errors,
        )

    async def async_step_reauth(self, entry_data: Mapping[str, Any]) -> ConfigFlowResult:
        """The node refused the stored token."""
        return await self.async_step_reauth_confirm()

    async def async_step_reauth_confirm(
        self, user_input: dict[str, Any] | None = None
    ) -> ConfigFlowResult:
        """Ask for a new token and check it."""
        entry = self._get_reauth_entry()
        errors: dict[str, str] = {}
        if user_input is not None:
            token = str(user_input[CONF_TOKEN]).strip()
            status = await self._try(URL(entry.data[CONF_URL]), token, errors)
            if status is not None:
                await self.async_set_unique_id(status.participant)
                self._abort_if_unique_id_mismatch(reason="wrong_node")
                return self.async_update_reload_and_abort(entry, data_updates={CONF_TOKEN: token})
        return self.async_show_form(
            step_id="reauth_confirm",
            data_schema=REAUTH_SCHEMA,
            description_placeholders={"url": entry.data[CONF_URL]},
            errors=errors,
        )
