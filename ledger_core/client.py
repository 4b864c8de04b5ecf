"""The node API as the command line, the demo and the roles that talk to another node use it.

A thin, untyped layer over the wire contract's client (:mod:`transactiva_client`): the
requests, the token, the paths under ``/api/v1`` and the reading of the node's error body
are that library's, so the node's HTTP contract is written once. This layer only keeps
the shape its callers want: JSON objects in and out, and one :class:`ApiError` with the
HTTP status for every refusal. A node that cannot be reached raises what aiohttp raised
(``aiohttp.ClientError`` or ``TimeoutError``), as before.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import aiohttp

from transactiva_client import TransactivaClient
from transactiva_client.errors import (
    TransactivaAuthError,
    TransactivaConnectionError,
    TransactivaNotReadyError,
    TransactivaRequestError,
    UnexpectedAnswerError,
)


class ApiError(TransactivaRequestError):
    """The node refused a request: ``status`` (HTTP), ``code`` (an ``ErrorCode`` when the
    wire contract knows it, else the text), ``message`` and ``field`` say why."""


@dataclass(frozen=True, slots=True)
class NodeClient:
    """Talks to one node at ``base_url`` (``http://host:port``) with its bearer token."""

    base_url: str
    token: str
    timeout: float = 40.0

    async def _request(self, method: str, path: str, body: bytes | None = None) -> Any:  # noqa: ANN401 - JSON
        timeout = aiohttp.ClientTimeout(total=self.timeout)
        async with aiohttp.ClientSession(timeout=timeout) as session:
            client = TransactivaClient(session, self.base_url, self.token)
            try:
                return await client.request(method, path.lstrip("/"), data=body, timeout=timeout)
            except TransactivaRequestError as err:
                raise ApiError(err.status, str(err.code), err.message, err.field) from None
            except TransactivaAuthError:
                raise ApiError(401, "unauthorized", "the node refused the token") from None
            except TransactivaNotReadyError as err:
                raise ApiError(503, str(err.code), err.message) from None
            except UnexpectedAnswerError:
                raise ApiError(502, "bad_response", "the node did not answer JSON") from None
            except TransactivaConnectionError as err:
                cause = err.__cause__
                if isinstance(cause, aiohttp.ClientError | TimeoutError):
                    raise cause from None
                raise ApiError(500, "error", str(err)) from None

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
