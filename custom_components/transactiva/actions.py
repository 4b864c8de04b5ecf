"""Contract actions: the home's local event stream and action log, each action handled once.

The node's home agent evaluates this home's contracts and publishes every action
as a ``contract_action`` event on the WebSocket ``/api/v1/local/events``
(``{"lseq": n, "event": {...}}``), keeping it in its action log
(``GET /api/v1/local/actions``, newest first, with results). Appliance use is
personal data, so none of this is on the ledger.

Resuming, and why not by ``lseq``: the node numbers local events in memory
only; after a restart it counts from 1 again, and a client that asks for
``after=N`` gets only events numbered above N, so resuming by ``lseq`` would
silently lose a restarted node's first N actions. Actions are identified by
their ``action_id`` instead, the action log's row number, which survives
restarts of the node. On every connection:

1. the stream is opened for live events only (no ``after``);
2. then the action log's newest :data:`LOG_LIMIT` actions are read. The first
   time the integration meets the node (nothing remembered), they are history:
   the newest becomes the *Last action* entity, nothing is switched. Otherwise
   actions above the highest ``action_id`` handled (remembered in ``.storage``)
   were missed while Home Assistant or the connection was down: for each device
   only the newest is carried out — the contract's latest word on it — and only
   if no result was reported for it other than the node's own ``skipped``; older
   ones are reported ``skipped`` as superseded; actions without a device are
   history;
3. stream events follow in order. A ``contract_action`` whose id was handled
   already (it arrived while the log was read) is ignored; ``contract_action_result``
   events (anyone's report, this integration's included) update the *Last
   action* entity.

Live actions and carried-out missed ones fire ``transactiva_contract_action``.
When the stream drops, it is reopened after 1, 2, 5, 10 and then every 30
seconds; its going and coming back count towards the node's one log line each
way (``availability.py``); the ledger entities' availability follows the ledger
stream, not this one.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from enum import StrEnum
from typing import TYPE_CHECKING, Final

from homeassistant.core import HomeAssistant

from transactiva_client import DecodeError, TransactivaClient, TransactivaError
from transactiva_client.models import (
    ActionLogEntry,
    ActionResultReport,
    ContractAction,
    LocalEvent,
)
from transactiva_client.protocol import DEVICE_ACTIONS, ActionResult, LocalEventKind

from .availability import ACTIONS, NodeAvailability
from .const import DOMAIN

if TYPE_CHECKING:
    from . import TransactivaConfigEntry
    from .appliances import ApplianceHandler
    from .coordinator import TransactivaCoordinator

LOGGER = logging.getLogger(__package__)
RETRY_SECONDS: Final = (1, 2, 5, 10, 30)
LOG_LIMIT: Final = 100


class Decision(StrEnum):
    """What catching up does with a logged action."""

    HISTORY = "history"  # shown on the entities, not carried out
    SUPERSEDED = "superseded"  # reported skipped: a newer missed action is for the same device
    CARRY_OUT = "carry_out"


def plan_catch_up(
    logged: Sequence[ActionLogEntry], handled: int | None
) -> list[tuple[ActionLogEntry, Decision, int | None]]:
    """What to do with the action log's rows after a (re)connection, in ``action_id`` order.

    ``handled`` is the highest ``action_id`` handled before, None the first time the
    integration meets the node: then the newest row is history and nothing else is looked at.
    So it is when the log's newest row is below ``handled`` (the node's ``local.db`` was
    replaced: its numbers started again). Otherwise rows above ``handled`` were missed: per
    device, the newest switching action is carried out unless someone reported a result other
    than the node's own ``skipped`` (then it is history), older ones are superseded (the third
    item names the newest); actions without a device are history. Rows at or below
    ``handled`` are left out.
    """
    ordered = sorted(logged, key=lambda item: item.action.action_id)
    if handled is not None and ordered and ordered[-1].action.action_id < handled:
        handled = None
    if handled is None:
        return [(ordered[-1], Decision.HISTORY, None)] if ordered else []
    missed = [item for item in ordered if item.action.action_id > handled]
    newest: dict[str, int] = {}
    for item in missed:
        if item.action.device is not None and item.action.action in DEVICE_ACTIONS:
            newest[item.action.device] = item.action.action_id
    steps: list[tuple[ActionLogEntry, Decision, int | None]] = []
    for item in missed:
        device = item.action.device
        if device is None or item.action.action not in DEVICE_ACTIONS:
            steps.append((item, Decision.HISTORY, None))
        elif newest[device] != item.action.action_id:
            steps.append((item, Decision.SUPERSEDED, newest[device]))
        elif item.result not in (None, ActionResult.SKIPPED):
            steps.append((item, Decision.HISTORY, None))
        else:
            steps.append((item, Decision.CARRY_OUT, None))
    return steps


class ActionFollower:
    """Follows one node's contract actions and hands new ones to the appliances."""

    def __init__(
        self,
        hass: HomeAssistant,
        entry: TransactivaConfigEntry,
        client: TransactivaClient,
        coordinator: TransactivaCoordinator,
        appliances: ApplianceHandler,
        *,
        availability: NodeAvailability,
    ) -> None:
        self.hass = hass
        self.entry = entry
        self.client = client
        self.coordinator = coordinator
        self.appliances = appliances
        self.availability = availability
        self.connected = False
        self._lseq = 0  # the last lseq of the current connection

    def start(self) -> None:
        """Follow the local stream until the entry unloads."""
        self.entry.async_create_background_task(
            self.hass, self._follow(), f"{DOMAIN} local event stream"
        )

    async def _follow(self) -> None:
        attempt = 0
        while True:
            try:
                await self._connection()
                error = "the node closed the local event stream"
            except (TransactivaError, TimeoutError) as err:
                error = str(err) or type(err).__name__
            if self.connected:
                self.connected = False
                attempt = 0
            self.availability.lost(ACTIONS, error)
            await asyncio.sleep(RETRY_SECONDS[min(attempt, len(RETRY_SECONDS) - 1)])
            attempt += 1

    async def _connection(self) -> None:
        async with self.client.local_events() as stream:
            rows = await self.client.actions(LOG_LIMIT)
            self.connected = True
            self._lseq = 0
            self.availability.back(ACTIONS)
            await self.catch_up(rows)
            async for message in stream:
                if message.lseq <= self._lseq:
                    continue
                self._lseq = message.lseq
                await self.handle(message.event)

    async def catch_up(self, logged: list[ActionLogEntry]) -> None:
        """Handle the action log's newest rows (newest first), as step 2 of the module says."""
        coordinator = self.coordinator
        steps = plan_catch_up(logged, coordinator.handled_action_id)
        newest = max((item.action.action_id for item in logged), default=0)
        coordinator.note_handled(newest, restart=bool(logged))
        for item, decision, newer in steps:
            action = item.action
            if decision is Decision.CARRY_OUT:
                await self._act(action)
            elif decision is Decision.SUPERSEDED:
                superseded = f"superseded by action {newer} for {action.device}"
                await coordinator.note_action(action, ActionResult.SKIPPED, superseded, fire=False)
                await self.appliances.report(action, ActionResult.SKIPPED, superseded)
            else:
                await coordinator.note_action(action, item.result, item.detail, fire=False)
        if logged and coordinator.data.last_action is None:
            # Nothing missed after a reload or a restart: the Last action is the log's newest.
            latest = max(logged, key=lambda item: item.action.action_id)
            await coordinator.note_action(latest.action, latest.result, latest.detail, fire=False)

    async def handle(self, event: LocalEvent) -> None:
        """One event of the local stream."""
        try:
            if event.kind == LocalEventKind.CONTRACT_ACTION:
                action = ContractAction.from_json(event.data)
                handled = self.coordinator.handled_action_id or 0
                if action.action_id > handled:
                    self.coordinator.note_handled(action.action_id)
                    await self._act(action)
            elif event.kind == LocalEventKind.CONTRACT_ACTION_RESULT:
                report = ActionResultReport.from_json(event.data)
                self.coordinator.note_result(report.action_id, report.result, report.detail)
        except DecodeError as err:
            LOGGER.debug("Skipping a %s event: %s", event.kind, err)

    async def _act(self, action: ContractAction) -> None:
        """Show the action, tell automations, and carry it out when it switches a device."""
        await self.coordinator.note_action(action, None, "", fire=True)
        if action.device is not None and action.action in DEVICE_ACTIONS:
            self.entry.async_create_background_task(
                self.hass, self.appliances(action), f"{DOMAIN} contract action"
            )
