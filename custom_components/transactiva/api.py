"""A thin async client of a Transactiva node's API, for the integration.

It uses Home Assistant's shared aiohttp session and raises one of four errors:
the node cannot be reached (or answered nonsense or a 5xx), it refused the
token, it understood the request and refused it (a 4xx with the node's
``{"error": {"code", "message", "field"}}`` body, kept in the exception), or
it has no answer yet (a 503 with the node's error body: the meter has not been
read, the forecast has too little history). Routes of roles a node does not
run (the meter and its analytics) answer 404, which callers tell apart by
``status``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final

import aiohttp
from yarl import URL

from .const import DEFAULT_INTERVAL_SECONDS

TIMEOUT: Final = aiohttp.ClientTimeout(total=10)
# ``?wait=true`` lets the node hold the answer up to 30 s until the block commits.
WAIT_TIMEOUT: Final = aiohttp.ClientTimeout(total=45)
NOT_A_NODE: Final = "the answer is not a Transactiva node's"


class TransactivaError(Exception):
    """Base error of the client."""


class TransactivaConnectionError(TransactivaError):
    """The node cannot be reached, or its answer is not the node API's."""


class TransactivaAuthError(TransactivaError):
    """The node refused the token."""


class TransactivaNotReadyError(TransactivaError):
    """The node has no answer yet (HTTP 503 with its own error body)."""

    def __init__(self, code: str, message: str) -> None:
        self.code = code
        self.message = message
        super().__init__(f"{code}: {message}")


class TransactivaRequestError(TransactivaError):
    """The node understood the request and refused it (HTTP 4xx)."""

    def __init__(self, status: int, code: str, message: str, field: str | None = None) -> None:
        self.status = status
        self.code = code
        self.message = message
        self.field = field
        where = f" ({field})" if field else ""
        super().__init__(f"{code}: {message}{where}")


@dataclass(frozen=True, slots=True)
class NodeStatus:
    """What ``GET /api/v1/status`` says about a node.

    ``peers`` (the number of connected P2P peers) and ``catching_up`` are None
    while the node does not report them; ``interval_seconds`` falls back to 15 minutes and
    ``utc_offset_minutes`` (the market's civil time, in which contracts are
    written) to 0 when a node does not say.
    """

    chain_id: str
    height: int
    participant: str
    validator: str
    last_block_time: int
    peers: int | None = None
    catching_up: bool | None = None
    interval_seconds: int = DEFAULT_INTERVAL_SECONDS
    utc_offset_minutes: int = 0


@dataclass(frozen=True, slots=True)
class Balance:
    """A wallet: spendable balance and the amount held by pending withdrawals (centavos)."""

    balance: int
    held: int


def parse_status(body: object) -> NodeStatus:
    """A NodeStatus from the node's JSON, or TransactivaConnectionError."""
    if not isinstance(body, dict):
        raise TransactivaConnectionError(NOT_A_NODE)
    chain_id, participant, validator = (
        body.get("chain_id"),
        body.get("participant"),
        body.get("validator"),
    )
    height, last_time = _as_int(body.get("height")), _as_int(body.get("last_block_time", 0))
    if not (
        isinstance(chain_id, str)
        and isinstance(participant, str)
        and isinstance(validator, str)
        and height is not None
        and last_time is not None
    ):
        raise TransactivaConnectionError(NOT_A_NODE)
    peers = _peer_count(body.get("peers"))
    catching_up = body.get("catching_up")
    interval = _as_int(body.get("interval_seconds"))
    offset = _as_int(body.get("utc_offset_minutes"))
    return NodeStatus(
        chain_id=chain_id,
        height=height,
        participant=participant,
        validator=validator,
        last_block_time=last_time,
        peers=peers if peers is not None and peers >= 0 else None,
        catching_up=catching_up if isinstance(catching_up, bool) else None,
        interval_seconds=(
            interval
            if interval is not None and 60 <= interval <= 3600
            else DEFAULT_INTERVAL_SECONDS
        ),
        utc_offset_minutes=offset if offset is not None and abs(offset) <= 14 * 60 else 0,
    )


def _peer_count(value: object) -> int | None:
    """The peer count: ``{"count": N, "list": ...}``, or a bare N from older nodes."""
    if isinstance(value, dict):
        value = value.get("count")
    return _as_int(value)


def _as_int(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _rows(body: dict[str, Any], key: str) -> list[dict[str, Any]]:
    """The list of objects under ``key``, or TransactivaConnectionError."""
    rows = body.get(key)
    if not isinstance(rows, list):
        raise TransactivaConnectionError(NOT_A_NODE)
    return [row for row in rows if isinstance(row, dict)]


class TransactivaClient:
    """Talks to one node."""

    def __init__(self, session: aiohttp.ClientSession, url: URL, token: str) -> None:
        self._session = session
        self._base = url / "api" / "v1"
        self._token = token

    @property
    def _auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self._token}"}

    async def request(
        self,
        method: str,
        path: str,
        *,
        auth: bool = True,
        query: dict[str, str] | None = None,
        body: dict[str, Any] | None = None,
        timeout: aiohttp.ClientTimeout = TIMEOUT,  # noqa: ASYNC109 - aiohttp's own timeout
    ) -> dict[str, Any]:
        """One request; the JSON object answered, or one of the client's errors."""
        url = self._base.joinpath(path)
        if query:
            url = url.with_query(query)
        try:
            async with self._session.request(
                method, url, headers=self._auth if auth else {}, json=body, timeout=timeout
            ) as response:
                status = response.status
                answer = await response.json(content_type=None)
        except (aiohttp.ClientError, TimeoutError) as err:
            raise TransactivaConnectionError(str(err) or type(err).__name__) from err
        except ValueError as err:  # not JSON: something else answers at this address
            raise TransactivaConnectionError(NOT_A_NODE) from err
        if status == 401:
            raise TransactivaAuthError("the node refused the token")
        error = answer.get("error") if isinstance(answer, dict) else None
        if status == 503 and isinstance(error, dict) and isinstance(error.get("code"), str):
            raise TransactivaNotReadyError(error["code"], str(error.get("message", "")))
        if status >= 500:
            raise TransactivaConnectionError(f"the node answered HTTP {status}")
        if status >= 400:
            if not isinstance(error, dict):
                error = {}
            field = error.get("field")
            raise TransactivaRequestError(
                status,
                str(error.get("code", f"http_{status}")),
                str(error.get("message", f"HTTP {status}")),
                field if isinstance(field, str) else None,
            )
        if not isinstance(answer, dict):
            raise TransactivaConnectionError(NOT_A_NODE)
        return answer

    async def status(self) -> NodeStatus:
        """The node's chain, height and addresses (no token needed)."""
        return parse_status(await self.request("GET", "status", auth=False))

    async def balance(self, address: str) -> Balance:
        """A wallet's balance and held amount in centavos (needs the token)."""
        body = await self.request("GET", f"balances/{address}")
        balance, held = _as_int(body.get("balance")), _as_int(body.get("held", 0))
        if balance is None or held is None:
            raise TransactivaConnectionError(NOT_A_NODE)
        return Balance(balance=balance, held=held)

    async def participant(self, address: str) -> dict[str, Any]:
        """A participant's public record (role, roles, status)."""
        return await self.request("GET", f"participants/{address}", auth=False)

    async def contract(self, contract_id: str) -> dict[str, Any]:
        """A contract: source, parties, signatures, state, short id, receipt."""
        return await self.request("GET", f"contracts/{contract_id}")

    async def check_contract(self, source: str) -> dict[str, Any]:
        """The node's verdict on a contract's text (nothing is submitted)."""
        return await self.request("POST", "contracts/check", body={"source": source})

    async def prices(self, start: int, end: int, limit: int = 10_000) -> list[dict[str, Any]]:
        """Price signals with ``start <= interval_start < end``."""
        body = await self.request(
            "GET",
            "signals/prices",
            auth=False,
            query={"from": str(start), "to": str(end), "limit": str(limit)},
        )
        return _rows(body, "prices")

    async def dr_event(self, event_id: str) -> dict[str, Any]:
        """A demand-response event in its latest modification."""
        return await self.request("GET", f"signals/dr/{event_id}", auth=False)

    async def state(self, key: str) -> Any:  # noqa: ANN401 - any JSON value
        """A state entry's value, or None when there is none."""
        try:
            body = await self.request("GET", f"state/{key}")
        except TransactivaRequestError as err:
            if err.status == 404:
                return None
            raise
        return body.get("value")

    async def local(self, tx_type: str, body: dict[str, Any]) -> dict[str, Any]:
        """Have the node sign ``body`` as a ``tx_type`` transaction and wait for the block.

        The answer is the committed transaction (``code`` ``ok``, height, events),
        or ``{"status": "pending"}`` when no block came within the node's wait.
        A transaction the ledger refused raises TransactivaRequestError (422).
        """
        result = await self.request(
            "POST", f"local/{tx_type}", query={"wait": "true"}, body=body, timeout=WAIT_TIMEOUT
        )
        code = result.get("code")
        if result.get("status") == "committed" and code != "ok":
            raise TransactivaRequestError(422, str(code), str(result.get("message", "")))
        return result

    async def market_intervals(self, start: int, end: int) -> list[dict[str, Any]]:
        """Interval results (status, clearing price, volume) with ``start <= T < end`` (public)."""
        body = await self.request(
            "GET", "market/intervals", auth=False, query={"from": str(start), "to": str(end)}
        )
        return _rows(body, "intervals")

    async def settlements(self, address: str, start: int, end: int) -> dict[str, Any]:
        """A participant's settlements and current debt (``GET /market/settlements/{address}``)."""
        body = await self.request(
            "GET",
            f"market/settlements/{address}",
            query={"from": str(start), "to": str(end)},
        )
        if _as_int(body.get("debt", 0)) is None:
            raise TransactivaConnectionError(NOT_A_NODE)
        return {"debt": body.get("debt", 0), "settlements": _rows(body, "settlements")}

    async def trades(self, address: str, start: int, end: int) -> list[dict[str, Any]]:
        """A participant's trades, each with its side (``GET /market/trades/{address}``)."""
        body = await self.request(
            "GET", f"market/trades/{address}", query={"from": str(start), "to": str(end)}
        )
        return _rows(body, "trades")

    async def meter(self) -> dict[str, Any] | None:
        """The local meter's latest reading, or None when the node has no meter role.

        A node without it answers 404, or 405 (``POST /local/{type}`` matches the path).
        Before the meter's first reading the node answers 503 ``no_reading``: this
        raises TransactivaNotReadyError.
        """
        try:
            return await self.request("GET", "local/meter")
        except TransactivaRequestError as err:
            if err.status in (404, 405):
                return None
            raise

    async def post_meter_reading(self, reading: dict[str, Any]) -> None:
        """Send one reading of Home Assistant's sensors to the node's pushed meter source."""
        await self.request("POST", "local/meter/readings", body=reading)

    async def actions(self, limit: int) -> list[dict[str, Any]]:
        """The node's contract actions, newest first, with their results (``local.db``)."""
        body = await self.request("GET", "local/actions", query={"limit": str(limit)})
        return _rows(body, "actions")

    async def post_action_result(self, action_id: int, result: str, detail: str) -> None:
        """Tell the node what became of a contract action (ok, failed, unmapped, skipped)."""
        await self.request(
            "POST",
            f"local/actions/{action_id}/result",
            body={"result": result, "detail": detail[:500]},
        )

    async def analytics(self, name: str, query: dict[str, str] | None = None) -> dict[str, Any]:
        """``GET /local/analytics/{name}``: ``summary``, ``forecast`` or ``advice``.

        404 when the node has no meter (no analytics); 503 ``not_ready`` raises
        TransactivaNotReadyError while there is too little history.
        """
        return await self.request("GET", f"local/analytics/{name}", query=query)

    def events(self, query: dict[str, str]) -> aiohttp.client._WSRequestContextManager:
        """Open the event stream (WebSocket) with ``after`` or ``from_height``."""
        return self._websocket("events", query)

    def meter_stream(self) -> aiohttp.client._WSRequestContextManager:
        """Open the meter's reading stream (WebSocket)."""
        return self._websocket("local/meter/stream", {})

    def local_events(self) -> aiohttp.client._WSRequestContextManager:
        """Open the home's local event stream (WebSocket), live events only."""
        return self._websocket("local/events", {})

    def _websocket(
        self, path: str, query: dict[str, str]
    ) -> aiohttp.client._WSRequestContextManager:
        return self._session.ws_connect(
            self._base.joinpath(path).with_query(query),
            headers=self._auth,
            heartbeat=30,
            timeout=aiohttp.ClientWSTimeout(ws_close=10),
        )

    async def check(self) -> NodeStatus:
        """Reach the node and prove the token works: the node's status."""
        status = await self.status()
        try:
            await self.balance(status.participant)
        except TransactivaRequestError as err:
            raise TransactivaConnectionError(f"the node answered HTTP {err.status}") from err
        return status
