"""A node whose API version this integration cannot speak: the repair issue that says so.

The client (``transactiva-client``) checks the node's ``api_version`` whenever it reads
the node's status and raises ``IncompatibleNodeError`` naming the side to update: the
node (the Transactiva app, or the ``transactiva`` package) when it is older, this
integration when the node is newer. Setup then raises this repair issue and retries
(``ConfigEntryNotReady``) until the node is compatible; a node that changes version
while the entry runs is noticed when the event stream reconnects, and the entry reloads
into the same state. A successful setup withdraws the issue.
"""

from __future__ import annotations

from typing import Final

from homeassistant.config_entries import ConfigEntry
from homeassistant.core import HomeAssistant
from homeassistant.helpers import issue_registry as ir

from transactiva_client import IncompatibleNodeError, Update

from .const import DOMAIN

LEARN_MORE: Final = (
    "https://github.com/transactiva/transactiva/blob/main/docs/home-assistant.md"
    "#an-incompatible-node"
)
NO_VERSION: Final = "< 1.0"  # a node that does not say its version predates API 1.0


def issue_id(entry_id: str) -> str:
    """The repair issue of one entry's incompatible node."""
    return f"incompatible_node_{entry_id}"


def translation_key(err: IncompatibleNodeError) -> str:
    """``node_too_old`` or ``integration_too_old``: which side the user must update."""
    return "node_too_old" if err.update is Update.NODE else "integration_too_old"


def placeholders(err: IncompatibleNodeError) -> dict[str, str]:
    """The versions, for translated messages."""
    return {
        "node_version": err.node_version or NO_VERSION,
        "client_version": err.client_version,
    }


def raise_issue(
    hass: HomeAssistant, entry: ConfigEntry, url: str, err: IncompatibleNodeError
) -> None:
    """Tell the user, in the repairs dashboard, which side to update."""
    ir.async_create_issue(
        hass,
        DOMAIN,
        issue_id(entry.entry_id),
        is_fixable=False,
        severity=ir.IssueSeverity.ERROR,
        learn_more_url=LEARN_MORE,
        translation_key=translation_key(err),
        translation_placeholders={"entry": entry.title, "url": url, **placeholders(err)},
    )


def clear_issue(hass: HomeAssistant, entry_id: str) -> None:
    """The node is compatible (again), or the entry is gone."""
    ir.async_delete_issue(hass, DOMAIN, issue_id(entry_id))
