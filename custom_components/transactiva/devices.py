"""The devices of one node's entry and their registry identifiers.

A node appears as a service device (the node itself) with the market, the
wallet and the contracts as devices under it; a meter, when the node has one,
and each Bluetooth actuator are devices of their own, under it too.

Devices are found among the entry's own devices (``find_device``): identifiers are
unique within a config entry only. The link to the node's device is set by its id
(``link_to_node``) once the entry's devices exist, which Home Assistant 2025.4 and
2026.x both accept without a deprecated call.
"""

from __future__ import annotations

from enum import StrEnum

from homeassistant.core import HomeAssistant, callback
from homeassistant.helpers import device_registry as dr
from homeassistant.helpers.device_registry import DeviceEntryType, DeviceInfo

from .const import DOMAIN


class Group(StrEnum):
    """A device of the entry; its value is the device name's translation key."""

    NODE = "node"
    MARKET = "market"
    WALLET = "wallet"
    CONTRACTS = "contracts"
    METER = "meter"


def identifier(participant: str, group: Group) -> tuple[str, str]:
    """The device registry identifier of ``group`` (the node's is the bare address)."""
    if group is Group.NODE:
        return (DOMAIN, participant)
    return (DOMAIN, f"{participant}_{group}")


def device_info(participant: str, group: Group, configuration_url: str) -> DeviceInfo:
    """Complete device information for one of the node's devices."""
    return DeviceInfo(
        identifiers={identifier(participant, group)},
        translation_key=str(group),
        manufacturer="Transactiva",
        model={
            Group.NODE: "Ledger node",
            Group.MARKET: "Neighbourhood market",
            Group.WALLET: "Wallet",
            Group.CONTRACTS: "Contracts",
            Group.METER: "Meter",
        }[group],
        entry_type=None if group is Group.METER else DeviceEntryType.SERVICE,
        configuration_url=configuration_url,
    )


@callback
def find_device(
    hass: HomeAssistant, entry_id: str, device_identifier: tuple[str, str]
) -> dr.DeviceEntry | None:
    """The entry's device with ``device_identifier``, if it is registered."""
    registry = dr.async_get(hass)
    return next(
        (
            device
            for device in dr.async_entries_for_config_entry(registry, entry_id)
            if device_identifier in device.identifiers
        ),
        None,
    )


@callback
def link_to_node(hass: HomeAssistant, entry_id: str, node_device_id: str) -> None:
    """Put every other device of the entry under the node's device."""
    registry = dr.async_get(hass)
    for device in dr.async_entries_for_config_entry(registry, entry_id):
        if node_device_id not in (device.id, device.via_device_id):
            registry.async_update_device(device.id, via_device_id=node_device_id)
