"""The coordinator: node data kept current by the node's WebSocket event stream.

No polling loop: the first refresh reads the node's status and the wallet
balance; afterwards every block announced on ``/api/v1/events`` updates the
height, and a block with an event about this participant re-reads the balance.
After a disconnect the stream resumes after the last event seen, with growing
pauses between attempts; entities go unavailable meanwhile, with one log line
when the node goes and one when it comes back.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import aiohttp
from homeassistant.core import HomeAssistant
from homeassistant.helpers.update_coordinator import DataUpdateCoordinator, UpdateFailed

from .api import NodeStatus, TransactivaClient, TransactivaError
from .const import DOMAIN

if TYPE_CHECKING:
    from . import TransactivaConfigEntry

LOGGER = logging.getLogger(__package__)
RETRY_SECONDS = (1, 2, 5, 10, 30)


@dataclass(frozen=True, slots=True)
class NodeData:
    """What the entities show."""

    status: NodeStatus
    height: int
    balance: int  # centavos


class TransactivaCoordinator(DataUpdateCoordinator[NodeData]):
    """Holds one node's data and follows its event stream."""

    config_entry: TransactivaConfigEntry

    def __init__(
        self, hass: HomeAssistant, entry: TransactivaConfigEntry, client: TransactivaClient
    ) -> None:
        super().__init__(hass, LOGGER, config_entry=entry, name=DOMAIN, update_interval=None)
        self.client = client
        self._last_seq: int | None = None

    async def _async_update_data(self) -> NodeData:
        try:
            status = await self.client.status()
            balance = await self.client.balance(status.participant)
        except TransactivaError as err:
            raise UpdateFailed(f"cannot read the node: {err}") from err
        return NodeData(status=status, height=status.height, balance=balance)

    def start(self) -> None:
        """Follow the event stream until the entry unloads."""
        self.config_entry.async_create_background_task(
            self.hass, self._follow(), f"{DOMAIN} event stream"
        )

    async def _follow(self) -> None:
        attempt = 0
        lost = False
        while True:
            try:
                await self._stream(self.data.height + 1)
                error = "the node closed the event stream"
            except (aiohttp.ClientError, TransactivaError, TimeoutError, ValueError) as err:
                error = str(err) or type(err).__name__
            if not lost:
                LOGGER.warning("Transactiva node unavailable: %s", error)
                lost = True
            self.async_set_update_error(UpdateFailed(error))
            await asyncio.sleep(RETRY_SECONDS[min(attempt, len(RETRY_SECONDS) - 1)])
            attempt += 1
            try:
                fresh = await self._async_update_data()
            except UpdateFailed:
                continue
            LOGGER.info("Transactiva node available again at height %d", fresh.height)
            lost = False
            attempt = 0
            self.async_set_updated_data(fresh)

    async def _stream(self, from_height: int) -> None:
        query = (
            {"after": str(self._last_seq)}
            if self._last_seq is not None
            else {"from_height": str(from_height)}
        )
        async with self.client.events(query) as socket:
            touched = False
            async for message in socket:
                if message.type is not aiohttp.WSMsgType.TEXT:
                    break
                item: dict[str, Any] = message.json()
                self._last_seq = int(item["seq"])
                event = item["event"]
                participant = self.data.status.participant
                if event.get("type") != "new_block":
                    touched = touched or participant in event.values()
                    continue
                balance = self.data.balance
                if touched:
                    balance = await self.client.balance(participant)
                    touched = False
                self.async_set_updated_data(
                    NodeData(status=self.data.status, height=int(event["height"]), balance=balance)
                )
