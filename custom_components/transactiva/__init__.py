"""The Transactiva integration: a home's place in the neighbourhood electricity market.

It talks only to a Transactiva node's API (the node runs in the Transactiva app or
on any machine of the neighbourhood) and owns every entity, device and action.

One config entry per node (its local participant). Setup checks the node's API
version (an incompatible node raises a repair issue, ``version.py``, and setup is
retried until it is compatible) and the token (a refused one starts
reauthentication), reads the node once, and then follows
three push sources: the ledger's event stream (market, wallet, contracts,
node), the home's local event stream (contract actions, ``actions.py``) and,
when the node has a meter, the meter's reading stream. Forecast totals, which
are not live data, are polled (``analytics.py``). Options map contract devices
to appliances, add Bluetooth actuators and pick Home Assistant sensors to send
to the node as its meter; saving them reloads the entry. Actions are registered
once for the integration (``services.py``) and name the entry they act on.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from homeassistant.config_entries import ConfigEntry
from homeassistant.const import CONF_TOKEN, CONF_URL, Platform
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import ConfigEntryAuthFailed, ConfigEntryError, ConfigEntryNotReady
from homeassistant.helpers import config_validation as cv
from homeassistant.helpers import device_registry as dr
from homeassistant.helpers import issue_registry as ir
from homeassistant.helpers.aiohttp_client import async_get_clientsession
from homeassistant.helpers.storage import Store
from homeassistant.helpers.typing import ConfigType
from yarl import URL

from transactiva_client import (
    IncompatibleNodeError,
    TransactivaAuthError,
    TransactivaClient,
    TransactivaError,
    TransactivaNotReadyError,
    UnexpectedAnswerError,
)
from transactiva_client.models import MeterReading, NodeStatus

from . import version
from .actions import ActionFollower
from .analytics import AnalyticsCoordinator
from .appliances import ApplianceHandler
from .const import CONF_APPLIANCES, CONF_BLUETOOTH, DOMAIN
from .coordinator import STORE_VERSION, TransactivaCoordinator
from .devices import Group, device_info, identifier, link_to_node
from .meter import MeterCoordinator
from .node_url import parse_node_url
from .readings import ReadingForwarder
from .services import async_setup_services

LOGGER = logging.getLogger(__package__)
CONFIG_SCHEMA = cv.config_entry_only_config_schema(DOMAIN)

PLATFORMS: list[Platform] = [Platform.BINARY_SENSOR, Platform.SENSOR]


@dataclass(slots=True)
class TransactivaRuntimeData:
    """What a loaded entry holds while it runs."""

    node_url: URL
    client: TransactivaClient
    status: NodeStatus
    coordinator: TransactivaCoordinator
    meter: MeterCoordinator | None = None
    analytics: AnalyticsCoordinator | None = None
    appliances: ApplianceHandler | None = None
    actions: ActionFollower | None = None
    readings: ReadingForwarder | None = None
    platforms: tuple[Platform, ...] = tuple(PLATFORMS)


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
    """Register the integration's actions (they name the entry they act on)."""
    async_setup_services(hass)
    return True


async def async_setup_entry(hass: HomeAssistant, entry: TransactivaConfigEntry) -> bool:
    """Set up one node's entry."""
    url = _node_url(entry)
    client = TransactivaClient(
        async_get_clientsession(hass), str(url), entry.data.get(CONF_TOKEN, "")
    )
    try:
        status = await client.connect()
        has_meter, first = await _meter(client)
    except IncompatibleNodeError as err:
        version.raise_issue(hass, entry, client.url, err)
        raise ConfigEntryNotReady(
            translation_domain=DOMAIN,
            translation_key=version.translation_key(err),
            translation_placeholders=version.placeholders(err),
        ) from err
    except TransactivaAuthError as err:
        raise ConfigEntryAuthFailed(
            translation_domain=DOMAIN, translation_key="invalid_auth"
        ) from err
    except TransactivaError as err:
        raise ConfigEntryNotReady(
            translation_domain=DOMAIN,
            translation_key="cannot_connect",
            translation_placeholders={"url": str(url), "error": str(err)},
        ) from err
    version.clear_issue(hass, entry.entry_id)
    coordinator = TransactivaCoordinator(hass, entry, client)
    runtime = TransactivaRuntimeData(
        node_url=url, client=client, status=status, coordinator=coordinator
    )
    entry.runtime_data = runtime
    await coordinator.async_config_entry_first_refresh()

    if has_meter:
        runtime.meter = MeterCoordinator(hass, entry, client, first)
        runtime.analytics = AnalyticsCoordinator(hass, entry, client)
        await runtime.analytics.async_refresh()
    runtime.appliances = ApplianceHandler(
        hass, entry, client, coordinator, dict(entry.options.get(CONF_APPLIANCES, {}))
    )
    runtime.appliances.clear_mapped_issues()
    runtime.actions = actions = ActionFollower(hass, entry, client, coordinator, runtime.appliances)
    runtime.readings = ReadingForwarder.from_options(hass, entry, client)
    # The node's device first: the others are linked to it once the platforms made them.
    node_device = dr.async_get(hass).async_get_or_create(
        config_entry_id=entry.entry_id,
        **device_info(status.participant, Group.NODE, str(url)),
    )
    _remove_stale_devices(hass, entry)

    coordinator.start()
    if runtime.meter is not None:
        runtime.meter.start()
    if runtime.readings is not None:
        runtime.readings.start()
    if entry.options.get(CONF_BLUETOOTH):
        # Switches are Bluetooth actuators only; bleak is imported only then.
        runtime.platforms = (*PLATFORMS, Platform.SWITCH)
    await hass.config_entries.async_forward_entry_setups(entry, runtime.platforms)
    link_to_node(hass, entry.entry_id, node_device.id)
    # After the platforms: an action caught up at once fires its event on the contracts device.
    actions.start()
    return True


async def _meter(client: TransactivaClient) -> tuple[bool, MeterReading | None]:
    """Whether the node has a meter (one whose reading is understood), and its latest
    reading (None before the first)."""
    try:
        reading = await client.meter()
    except TransactivaNotReadyError:
        return True, None
    except UnexpectedAnswerError as err:
        LOGGER.warning("The node's meter reading is not understood, no meter entities: %s", err)
        return False, None
    return reading is not None, reading


def _current_devices(entry: TransactivaConfigEntry) -> set[tuple[str, str]]:
    """The identifiers of the devices this entry has now (a meter only while loaded)."""
    runtime: TransactivaRuntimeData | None = getattr(entry, "runtime_data", None)
    participant = runtime.status.participant if runtime else str(entry.unique_id)
    groups = [Group.NODE, Group.MARKET, Group.WALLET, Group.CONTRACTS]
    if runtime is not None and runtime.meter is not None:
        groups.append(Group.METER)
    current = {identifier(participant, group) for group in groups}
    current.update(
        (DOMAIN, f"{participant}_ble_{item['address']}")
        for item in entry.options.get(CONF_BLUETOOTH, [])
    )
    return current


def _remove_stale_devices(hass: HomeAssistant, entry: TransactivaConfigEntry) -> None:
    """Drop devices of actuators removed in the options, or of a meter that went away."""
    registry = dr.async_get(hass)
    current = _current_devices(entry)
    for device in dr.async_entries_for_config_entry(registry, entry.entry_id):
        if not device.identifiers & current:
            registry.async_remove_device(device.id)


async def async_remove_config_entry_device(
    hass: HomeAssistant, entry: TransactivaConfigEntry, device: dr.DeviceEntry
) -> bool:
    """Let people delete a device that this entry no longer has."""
    return not device.identifiers & _current_devices(entry)


async def async_unload_entry(hass: HomeAssistant, entry: TransactivaConfigEntry) -> bool:
    """Unload one node's entry, remembering where its event stream stopped."""
    unloaded = await hass.config_entries.async_unload_platforms(entry, entry.runtime_data.platforms)
    if unloaded:
        await entry.runtime_data.coordinator.async_save()
    return unloaded


async def async_remove_entry(hass: HomeAssistant, entry: TransactivaConfigEntry) -> None:
    """Forget the entry's remembered data and withdraw its repair issues."""
    await Store[dict[str, object]](hass, STORE_VERSION, f"{DOMAIN}.{entry.entry_id}").async_remove()
    version.clear_issue(hass, entry.entry_id)
    registry = ir.async_get(hass)
    prefix = f"unmapped_device_{entry.entry_id}_"
    for domain, issue in list(registry.issues):
        if domain == DOMAIN and issue.startswith(prefix):
            ir.async_delete_issue(hass, DOMAIN, issue)
