"""Contract actions carried out on Home Assistant entities, and reported back.

The options flow maps a contract's device names (``TURN ON DEVICE 'Lavadora'``)
to entities of the domains in ``APPLIANCE_DOMAINS``. When the node announces a
live ``contract_action`` with ``turn_on`` or ``turn_off`` for a mapped device,
the entity's own ``turn_on``/``turn_off`` service is called; the outcome goes
back to the node (``POST /api/v1/local/actions/result``, best effort: a node
without that route answers 404, logged at debug level). An action for a device
that is not mapped raises a repair issue that says how to map it, and is
reported as not carried out.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any, Final

import voluptuous as vol
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import HomeAssistantError
from homeassistant.helpers import issue_registry as ir
from homeassistant.util import dt as dt_util
from homeassistant.util import slugify

from .api import TransactivaClient, TransactivaError, TransactivaRequestError
from .const import DOMAIN
from .events import ContractAction

if TYPE_CHECKING:
    from . import TransactivaConfigEntry
    from .coordinator import TransactivaCoordinator

LOGGER = logging.getLogger(__package__)
SWITCHING: Final = ("turn_on", "turn_off")
SERVICE_TIMEOUT: Final = 30


def issue_id(entry_id: str, device: str) -> str:
    """The repair issue of an unmapped device of one entry."""
    return f"unmapped_device_{entry_id}_{slugify(device)}"


class ApplianceHandler:
    """Carries out one entry's contract actions on mapped entities."""

    def __init__(
        self,
        hass: HomeAssistant,
        entry: TransactivaConfigEntry,
        client: TransactivaClient,
        coordinator: TransactivaCoordinator,
        mapping: dict[str, str],
    ) -> None:
        self.hass = hass
        self.entry = entry
        self.client = client
        self.coordinator = coordinator
        self.mapping = dict(mapping)
        self.last_result: dict[str, Any] | None = None

    def clear_mapped_issues(self) -> None:
        """Withdraw the repair issues of devices that are mapped now."""
        for device in self.mapping:
            ir.async_delete_issue(self.hass, DOMAIN, issue_id(self.entry.entry_id, device))

    async def __call__(self, action: ContractAction) -> None:
        """Carry out ``action`` when it switches a device; report how it went."""
        if action.action not in SWITCHING or action.device is None:
            return
        entity_id = self.mapping.get(action.device)
        result: dict[str, Any] = {
            "contract_id": action.contract_id,
            "short_id": action.short_id,
            "device": action.device,
            "action": action.action,
            "entity_id": entity_id,
            "time": dt_util.utcnow().isoformat(),
        }
        if entity_id is None:
            self._raise_unmapped(action.device)
            result |= {"success": False, "error": "unmapped_device"}
        else:
            try:
                async with asyncio.timeout(SERVICE_TIMEOUT):
                    await self.hass.services.async_call(
                        entity_id.split(".", 1)[0],
                        action.action,
                        {"entity_id": entity_id},
                        blocking=True,
                    )
            except (HomeAssistantError, vol.Invalid, TimeoutError) as err:
                LOGGER.warning(
                    "Contract %s: %s of %s (%s) failed: %s",
                    action.short_id,
                    action.action,
                    action.device,
                    entity_id,
                    err,
                )
                result |= {"success": False, "error": str(err) or type(err).__name__}
            else:
                result |= {"success": True, "error": None}
        self.last_result = result
        self.coordinator.record_action_result(action, result["success"])
        await self._report(result)

    def _raise_unmapped(self, device: str) -> None:
        ir.async_create_issue(
            self.hass,
            DOMAIN,
            issue_id(self.entry.entry_id, device),
            is_fixable=False,
            severity=ir.IssueSeverity.WARNING,
            translation_key="unmapped_device",
            translation_placeholders={"device": device, "entry": self.entry.title},
        )

    async def _report(self, result: dict[str, Any]) -> None:
        try:
            await self.client.post_action_result(result)
        except TransactivaRequestError as err:
            if err.status == 404:
                LOGGER.debug("The node does not take action results yet: %s", err)
            else:
                LOGGER.warning("The node refused an action result: %s", err)
        except TransactivaError as err:
            LOGGER.debug("Cannot report an action result: %s", err)
