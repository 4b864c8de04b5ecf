"""A thin async client of a Transactiva node's API, for the integration.

It uses Home Assistant's shared aiohttp session and raises one of two errors:
the node cannot be reached (or answered nonsense), or it refused the token.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import aiohttp
from yarl import URL

TIMEOUT = aiohttp.ClientTimeout(total=10)


class TransactivaError(Exception):
    """Base error of the client."""


class TransactivaConnectionError(TransactivaError):
    """The node cannot be reached, or its answer is not the node API's."""


class TransactivaAuthError(TransactivaError):
    """The node refused the token."""


@dataclass(frozen=True, slots=True)
class NodeStatus:
    """What ``GET /api/v1/status`` says about a node."""

    chain_id: str
    height: int
    participant: str
    validator: str


class TransactivaClient:
    """Talks to one node."""

    def __init__(self, session: aiohttp.ClientSession, url: URL, token: str) -> None:
        self._session = session
        self._base = url / "api" / "v1"
        self._token = token

    async def _get(self, path: str, *, auth: bool) -> dict[str, Any]:
        headers = {"Authorization": f"Bearer {self._token}"} if auth else {}
        try:
            async with self._session.get(
                self._base.joinpath(path), headers=headers, timeout=TIMEOUT
            ) as response:
                if response.status == 401:
                    raise TransactivaAuthError("the node refused the token")
                if response.status >= 400:
                    raise TransactivaConnectionError(f"the node answered HTTP {response.status}")
                body = await response.json(content_type=None)
        except (aiohttp.ClientError, TimeoutError, ValueError) as err:
            raise TransactivaConnectionError(str(err) or type(err).__name__) from err
        if not isinstance(body, dict):
            raise TransactivaConnectionError("the answer is not a Transactiva node's")
        return body

    async def status(self) -> NodeStatus:
        """The node's chain, height and addresses (no token needed)."""
        body = await self._get("status", auth=False)
        try:
            return NodeStatus(
                chain_id=str(body["chain_id"]),
                height=int(body["height"]),
                participant=str(body["participant"]),
                validator=str(body["validator"]),
            )
        except (KeyError, TypeError, ValueError) as err:
            raise TransactivaConnectionError("the answer is not a Transactiva node's") from err

    async def balance(self, address: str) -> int:
        """A wallet balance in centavos (needs the token)."""
        body = await self._get(f"balances/{address}", auth=True)
        try:
            return int(body["balance"])
        except (KeyError, TypeError, ValueError) as err:
            raise TransactivaConnectionError("the answer is not a Transactiva node's") from err

    def events(self, query: dict[str, str]) -> aiohttp.client._WSRequestContextManager:
        """Open the event stream (WebSocket) with ``after`` or ``from_height``."""
        return self._session.ws_connect(
            self._base.joinpath("events").with_query(query),
            headers={"Authorization": f"Bearer {self._token}"},
            heartbeat=30,
            timeout=aiohttp.ClientWSTimeout(ws_close=10),
        )

    async def check(self) -> NodeStatus:
        """Reach the node and prove the token works: the node's status."""
        status = await self.status()
        await self.balance(status.participant)
        return status
