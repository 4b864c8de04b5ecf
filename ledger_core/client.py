"""A small async client of the node API, used by the command line."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import aiohttp


class ApiError(Exception):
    """The node refused a request; ``code``, ``message`` and ``field`` say why."""

    def __init__(self, status: int, code: str, message: str, field: str | None = None) -> None:
        self.status = status
        self.code = code
        self.message = message
        self.field = field
        where = f" ({field})" if field else ""
        super().__init__(f"{code}: {message}{where}")


@dataclass(frozen=True, slots=True)
class NodeClient:
    """Talks to one node at ``base_url`` (``http://host:port``) with its bearer token."""

    base_url: str
    token: str
    timeout: float = 40.0

    async def _request(self, method: str, path: str, body: bytes | None = None) -> Any:  # noqa: ANN401 - JSON
        headers = {"Authorization": f"Bearer {self.token}", "Content-Type": "application/json"}
        timeout = aiohttp.ClientTimeout(total=self.timeout)
        async with (
            aiohttp.ClientSession(timeout=timeout) as session,
            session.request(
                method, self.base_url + "/api/v1" + path, data=body, headers=headers
            ) as response,
        ):
            try:
                payload = await response.json(content_type=None)
            except ValueError:
                raise ApiError(
                    response.status, "bad_response", "the node did not answer JSON"
                ) from None
            if response.status >= 400:
                err = payload.get("error", {}) if isinstance(payload, dict) else {}
                raise ApiError(
                    response.status,
                    str(err.get("code", "error")),
                    str(err.get("message", "")),
                    err.get("field"),
                )
            return payload

    async def status(self) -> dict[str, Any]:
        """``GET /status``."""
        result: dict[str, Any] = await self._request("GET", "/status")
        return result

    async def local(
        self, tx_type: str, body: dict[str, Any], *, wait: bool = True
    ) -> dict[str, Any]:
        """Have the node sign ``body`` as a ``tx_type`` transaction and submit it."""
        suffix = "?wait=true" if wait else ""
        result: dict[str, Any] = await self._request(
            "POST", f"/local/{tx_type}{suffix}", json.dumps(body).encode()
        )
        return result

    async def post_tx(self, wire: bytes, *, wait: bool = False) -> dict[str, Any]:
        """Submit a signed transaction's wire bytes (``POST /txs``)."""
        suffix = "?wait=true" if wait else ""
        result: dict[str, Any] = await self._request("POST", f"/txs{suffix}", wire)
        return result

    async def post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        """Any JSON ``POST`` under ``/api/v1`` (not a transaction: see :meth:`local`)."""
        result: dict[str, Any] = await self._request("POST", path, json.dumps(body).encode())
        return result

    async def get(self, path: str) -> dict[str, Any]:
        """Any ``GET`` under ``/api/v1``."""
        result: dict[str, Any] = await self._request("GET", path)
        return result
