"""The Transactiva integration: a home's place in the neighbourhood electricity market.

It talks only to a Transactiva node's API (the node runs in the Transactiva app or
on any machine of the neighbourhood) and owns every entity, device and action.
This version connects to one node with its API token (checked at setup; a
refused token starts reauthentication), follows the node's event stream and
shows the wallet balance and the chain height; more entities and the actions
come next.
"""

from __future__ import annotations

from dataclasses import dataclass

from homeassistant.config_entries import ConfigEntry
from homeassistant.const import CONF_TOKEN, CONF_URL, Platform
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import ConfigEntryAuthFailed, ConfigEntryError, ConfigEntryNotReady
from homeassistant.helpers import config_validation as cv
from homeassistant.helpers.aiohttp_client import async_get_clientsession
from homeassistant.helpers.typing import ConfigType
from yarl import URL

from .api import NodeStatus, TransactivaAuthError, TransactivaClient, TransactivaConnectionError
from .const import DOMAIN
from .coordinator import TransactivaCoordinator
from .node_url import parse_node_url

CONFIG_SCHEMA = cv.config_entry_only_config_schema(DOMAIN)

PLATFORMS: list[Platform] = [Platform.SENSOR]


@dataclass(slots=True)
class TransactivaRuntimeData:
    """What a loaded entry holds while it runs."""

    node_url: URL
    client: TransactivaClient
    status: NodeStatus
    coordinator: TransactivaCoordinator


type TransactivaConfigEntry = ConfigEntry[TransactivaRuntimeData]


def _node_url(entry: TransactivaConfigEntry) -> URL:
    """The node's base URL from the entry, or a translated setup error."""
    raw = entry.data.get(CONF_URL)
    url = parse_node_url(raw)
    if url is None:
        raise ConfigEntryError(
            translation_domain=DOMAIN,
            translation_key="invalid_node_url",
            translation_placeholders={"url": str(raw)},
        )
    return url


async def async_setup(hass: HomeAssistant, config: ConfigType) -> bool:
    """Set up the integration (actions are registered here as they are added)."""
    return True


async def async_setup_entry(hass: HomeAssistant, entry: TransactivaConfigEntry) -> bool:
    """Set up one node's entry."""
    url = _node_url(entry)
    client = TransactivaClient(async_get_clientsession(hass), url, entry.data.get(CONF_TOKEN, ""))
    try:
        status = await client.check()
    except TransactivaAuthError as err:
        raise ConfigEntryAuthFailed(
            translation_domain=DOMAIN, translation_key="invalid_auth"
        ) from err
    except TransactivaConnectionError as err:
        raise ConfigEntryNotReady(
            translation_domain=DOMAIN,
            translation_key="cannot_connect",
            translation_placeholders={"url": str(url), "error": str(err)},
        ) from err
    coordinator = TransactivaCoordinator(hass, entry, client)
    entry.runtime_data = TransactivaRuntimeData(
        node_url=url, client=client, status=status, coordinator=coordinator
    )
    await coordinator.async_config_entry_first_refresh()
    coordinator.start()
    await hass.config_entries.async_forward_entry_setups(entry, PLATFORMS)
    return True


async def async_unload_entry(hass: HomeAssistant, entry: TransactivaConfigEntry) -> bool:
    """Unload one node's entry."""
    return await hass.config_entries.async_unload_platforms(entry, PLATFORMS)
