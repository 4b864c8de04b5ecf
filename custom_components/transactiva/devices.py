"""The devices of one node's entry and their registry identifiers.

A node appears as a service device (the node itself) with the market, the
wallet and the contracts as devices under it; a meter, when the node has one,
and each Bluetooth actuator are devices of their own.
"""

from __future__ import annotations

from enum import StrEnum

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
    info = DeviceInfo(
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
    if group is not Group.NODE:
        info["via_device"] = identifier(participant, Group.NODE)
    return info
