"""Contract actions carried out on Home Assistant entities, and reported back to the node.

The options flow maps a contract's device names (``TURN ON DEVICE 'Lavadora'``)
to entities of the domains in ``APPLIANCE_DOMAINS``. For an action of a mapped
device (``actions.py`` hands them over):

- ``turn_on`` / ``turn_off`` call the entity's own ``turn_on`` / ``turn_off``
  service (30 s at most);
- a ``turn_off`` for demand response (trigger ``dr_signal``) first notes the
  entity's state, and ``restore`` (the end of demand response) puts that state
  back: ``turn_on`` unless it was ``off``. Nothing noted (Home Assistant
  restarted meanwhile): the state the node recorded before the event (the
  restore's ``to``, from what the home's contracts last decided); neither:
  ``skipped``. Any other action on the device forgets the noted state (the
  contract's rules took over). The node holds a device off for the whole event
  against every contract's ``turn_on`` (those are ``suppressed`` in its action
  log and never reach Home Assistant).

The outcome goes back to the node with ``POST /api/v1/local/actions/{action_id}/result``:
``ok``, ``failed`` (the service's error as detail), ``unmapped`` (no entity is
mapped; a repair issue says how to map it) or ``skipped``. Actions run one at a
time, in the order they came, so a quick on-then-off ends off.
"""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any, Final

import voluptuous as vol
from homeassistant.const import STATE_UNAVAILABLE, STATE_UNKNOWN
from homeassistant.core import HomeAssistant
from homeassistant.exceptions import HomeAssistantError
from homeassistant.helpers import issue_registry as ir
from homeassistant.util import dt as dt_util
from homeassistant.util import slugify

from transactiva_client import TransactivaClient, TransactivaError
from transactiva_client.models import ContractAction
from transactiva_client.protocol import ActionKind, ActionResult, ActionTrigger

from .const import DOMAIN

if TYPE_CHECKING:
    from . import TransactivaConfigEntry
    from .coordinator import TransactivaCoordinator

LOGGER = logging.getLogger(__package__)
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
        self.shed: dict[str, str] = {}  # device -> its entity's state before demand response
        self._lock = asyncio.Lock()

    def clear_mapped_issues(self) -> None:
        """Withdraw the repair issues of devices that are mapped now."""
        for device in self.mapping:
            ir.async_delete_issue(self.hass, DOMAIN, issue_id(self.entry.entry_id, device))

    async def __call__(self, action: ContractAction) -> None:
        """Carry out a device action, note and report the outcome."""
        async with self._lock:
            result, detail = await self._carry_out(action)
            self.last_result = {
                "action_id": action.action_id,
                "short_id": action.short_id,
                "device": action.device,
                "action": str(action.action),
                "entity_id": self.mapping.get(str(action.device)),
                "result": str(result),
                "detail": detail,
                "time": dt_util.utcnow().isoformat(),
            }
            self.coordinator.note_result(action.action_id, result, detail)
            await self.report(action, result, detail)

    async def _carry_out(self, action: ContractAction) -> tuple[ActionResult, str]:
        device = str(action.device)
        entity_id = self.mapping.get(device)
        if entity_id is None:
            self._raise_unmapped(device)
            return ActionResult.UNMAPPED, f"no Home Assistant entity is mapped to {device!r}"
        service = str(action.action)
        if action.action == ActionKind.RESTORE:
            before = self.shed.pop(device, None)
            if before is None and action.restore_to is not None:
                before = "on" if action.restore_to else "off"  # as the node recorded it
            if before is None:
                return (
                    ActionResult.SKIPPED,
                    f"no state of {entity_id} was known before demand response",
                )
            service = "turn_off" if before == "off" else "turn_on"
        elif action.action == ActionKind.TURN_OFF and action.trigger == ActionTrigger.DR_SIGNAL:
            state = self.hass.states.get(entity_id)
            if state is not None and state.state not in (STATE_UNAVAILABLE, STATE_UNKNOWN):
                self.shed.setdefault(device, state.state)
        else:  # a rule took the device over: there is nothing to restore any more
            self.shed.pop(device, None)
        try:
            async with asyncio.timeout(SERVICE_TIMEOUT):
                await self.hass.services.async_call(
                    entity_id.split(".", 1)[0], service, {"entity_id": entity_id}, blocking=True
                )
        except (HomeAssistantError, vol.Invalid, TimeoutError) as err:
            error = str(err) or type(err).__name__
            LOGGER.warning(
                "Contract %s: %s of %s (%s) failed: %s",
                action.short_id,
                action.action,
                device,
                entity_id,
                error,
            )
            return ActionResult.FAILED, f"{entity_id}: {error}"
        return ActionResult.OK, f"{service} {entity_id}"

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

    async def report(self, action: ContractAction, result: ActionResult, detail: str) -> None:
        """Send the outcome to the node's action log (best effort: logged when it fails)."""
        try:
            await self.client.post_action_result(action.action_id, result, detail)
        except TransactivaError as err:
            LOGGER.warning(
                "Cannot report the result of contract action %d to the node: %s",
                action.action_id,
                err,
            )
