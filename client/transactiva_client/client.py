"""A typed async client of a Transactiva node's API.

It runs over an aiohttp session that the caller owns (Home Assistant passes its shared
one; :meth:`TransactivaClient.open` makes one for scripts), answers with the typed values
of :mod:`transactiva_client.models`, and raises only the errors of
:mod:`transactiva_client.errors`.

The handshake: :meth:`TransactivaClient.status` (and :meth:`~TransactivaClient.connect`,
which also proves the token) reads the node's ``api_version`` and raises
:class:`~transactiva_client.errors.IncompatibleNodeError` unless the node serves this
client's major version at this client's minor version or later.

Streams (:meth:`~TransactivaClient.ledger_events`, :meth:`~TransactivaClient.local_events`,
:meth:`~TransactivaClient.meter_readings`) are async context managers yielding an async
iterator of decoded messages; a message that does not decode is skipped (logged at debug
level on the ``transactiva_client`` logger), and the iteration ends when the node closes
the connection. Resume the ledger's stream with ``after=`` the last ``seq`` seen
(:attr:`Stream.position`); nothing is missed.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any, Final, Self

import aiohttp

from transactiva_client.errors import (
    DecodeError,
    IncompatibleNodeError,
    TransactivaAuthError,
    TransactivaConnectionError,
    TransactivaNotReadyError,
    TransactivaRequestError,
    UnexpectedAnswerError,
)
from transactiva_client.models import (
    ActionLogEntry,
    Admission,
    Advice,
    Balance,
    ContractCheck,
    ContractRecord,
    DemandResponse,
    Forecast,
    ForecastSummary,
    LedgerMessage,
    LocalMessage,
    MarketResult,
    MeterReading,
    NameRecord,
    NodeStatus,
    Participant,
    PriceSignal,
    PushedReading,
    Settlements,
    Trade,
    TxResult,
    parse_json,
)
from transactiva_client.protocol import (
    API_PREFIX,
    ActionResult,
    TxStatus,
    TxType,
    update_needed,
)

LOGGER: Final = logging.getLogger(__package__)
TIMEOUT: Final = aiohttp.ClientTimeout(total=10)
WAIT_TIMEOUT: Final = aiohttp.ClientTimeout(total=45)
"""``?wait=true`` lets the node hold the answer up to 30 s until the block commits."""
HEARTBEAT_SECONDS: Final = 30

type Query = Mapping[str, str]


def _seconds(header: str | None) -> float | None:
    """A Retry-After header given in seconds (None when absent or given as a date)."""
    if header is None or not header.strip().isdigit():
        return None
    return float(header.strip())


def _as_list[T](answer: dict[str, Any], key: str, decode: Callable[[object, str], T]) -> list[T]:
    rows = answer.get(key)
    if not isinstance(rows, list):
        raise DecodeError(key, "must be a list")
    return [decode(row, f"{key}[{i}]") for i, row in enumerate(rows)]


class Stream[M]:
    """An open WebSocket of the node, as an async iterator of decoded messages.

    ``position`` is the ``seq`` (or ``lseq``) of the last message yielded, None before the
    first; ``skipped`` counts messages that did not decode.
    """

    def __init__(
        self,
        socket: aiohttp.ClientWebSocketResponse,
        decode: Callable[[str], M],
        what: str,
        position: Callable[[M], int | None],
    ) -> None:
        self._socket = socket
        self._decode = decode
        self._what = what
        self._position = position
        self.position: int | None = None
        self.skipped = 0

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> M:
        while True:
            try:
                message = await self._socket.receive()
            except (aiohttp.ClientError, TimeoutError) as err:
                raise TransactivaConnectionError(str(err) or type(err).__name__) from err
            if message.type is not aiohttp.WSMsgType.TEXT:
                raise StopAsyncIteration
            try:
                decoded = self._decode(message.data)
            except DecodeError as err:
                self.skipped += 1
                LOGGER.debug("Skipping a message of %s: %s", self._what, err)
                continue
            self.position = self._position(decoded)
            return decoded


class TransactivaClient:
    """Talks to one node at ``url`` (``http://host:port``) with its API token."""

    def __init__(self, session: aiohttp.ClientSession, url: str, token: str) -> None:
        self._session = session
        self.url = str(url).rstrip("/")
        self._base = self.url + API_PREFIX
        self._token = token

    @classmethod
    @contextlib.asynccontextmanager
    async def open(cls, url: str, token: str) -> AsyncIterator[TransactivaClient]:
        """A client with a session of its own, closed on exit (for scripts and the CLI)."""
        async with aiohttp.ClientSession() as session:
            yield cls(session, url, token)

    @property
    def _auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self._token}"}

    # -- requests ---------------------------------------------------------------------------

    async def request(
        self,
        method: str,
        path: str,
        *,
        auth: bool = True,
        query: Query | None = None,
        body: Mapping[str, Any] | None = None,
        data: bytes | None = None,
        timeout: aiohttp.ClientTimeout = TIMEOUT,  # noqa: ASYNC109 - aiohttp's own timeout
    ) -> dict[str, Any]:
        """One request to ``/api/v1/{path}``; the JSON object answered, or a client error.

        The typed methods below use it; it is public for routes they do not cover.
        """
        try:
            async with self._session.request(
                method,
                f"{self._base}/{path}",
                params=dict(query) if query else None,
                headers=self._auth if auth else {},
                json=None if body is None else dict(body),
                data=data,
                timeout=timeout,
            ) as response:
                status = response.status
                retry_after = response.headers.get("Retry-After")
                answer = await response.json(content_type=None)
        except (aiohttp.ClientError, TimeoutError) as err:
            raise TransactivaConnectionError(str(err) or type(err).__name__) from err
        except ValueError as err:  # not JSON: something else answers at this address
            raise UnexpectedAnswerError from err
        if status == 401:
            raise TransactivaAuthError("the node refused the token")
        error = answer.get("error") if isinstance(answer, dict) else None
        if status == 503 and isinstance(error, dict) and isinstance(error.get("code"), str):
            raise TransactivaNotReadyError(
                error["code"], str(error.get("message", "")), _seconds(retry_after)
            )
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
            raise UnexpectedAnswerError
        return answer

    @staticmethod
    def _decode[T](decode: Callable[[Any], T], answer: object) -> T:
        """An answer decoded, or a connection error: the answer is not a node's."""
        try:
            return decode(answer)
        except DecodeError as err:
            raise UnexpectedAnswerError(str(err)) from err

    # -- the node -----------------------------------------------------------------------------

    async def status(self, *, check: bool = True) -> NodeStatus:
        """The node's status (no token needed); with ``check``, the version handshake too."""
        status = self._decode(NodeStatus.from_json, await self.request("GET", "status", auth=False))
        if check:
            self.check_version(status)
        return status

    def check_version(self, status: NodeStatus) -> None:
        """Raise IncompatibleNodeError unless this client can speak the node's API."""
        update = update_needed(status.api_version)
        if update is not None:
            version = None if status.api_version is None else str(status.api_version)
            raise IncompatibleNodeError(version, update, self.url)

    async def connect(self) -> NodeStatus:
        """Reach the node, check its API version and prove the token: the node's status."""
        status = await self.status()
        try:
            await self.balance(status.participant)
        except TransactivaRequestError as err:
            raise TransactivaConnectionError(f"the node answered HTTP {err.status}") from err
        return status

    async def balance(self, address: str) -> Balance:
        """A wallet's balance, held amount and debt in centavos (needs the token)."""
        return self._decode(Balance.from_json, await self.request("GET", f"balances/{address}"))

    async def participant(self, address: str) -> Participant:
        """A participant's record (role, operator roles, status; needs the token)."""
        answer = await self.request("GET", f"participants/{address}")
        return self._decode(Participant.from_json, answer)

    async def participants(self) -> list[Participant]:
        """Every participant and operator with its name, role, status and meter (API 1.1)."""
        answer = await self.request("GET", "participants")
        return self._decode(lambda a: _as_list(a, "participants", Participant.from_json), answer)

    async def name(self, name: str) -> NameRecord:
        """Who holds a participant's name, any case (404 ``unknown_name``: nobody; API 1.1;
        needs the token: a name links an address to a home)."""
        answer = await self.request("GET", f"names/{name}")
        return self._decode(NameRecord.from_json, answer)

    async def admission(self) -> Admission:
        """Whether this home is a participant yet, and why not (API 1.1)."""
        return self._decode(Admission.from_json, await self.request("GET", "local/admission"))

    async def state(self, key: str) -> Any:  # noqa: ANN401 - any JSON value
        """A state entry's value, or None when there is none."""
        try:
            body = await self.request("GET", f"state/{key}")
        except TransactivaRequestError as err:
            if err.status == 404:
                return None
            raise
        return body.get("value")

    # -- transactions ---------------------------------------------------------------------------

    async def submit_local(
        self, tx_type: TxType | str, body: Mapping[str, Any], *, wait: bool = True
    ) -> TxResult:
        """Have the node sign ``body`` as a ``tx_type`` transaction of its local participant.

        With ``wait`` the answer comes once the block commits (or ``pending`` after the
        node's 30 s). A transaction the ledger refused raises TransactivaRequestError
        (422, the rule's code), whether at submission or in the block.
        """
        answer = await self.request(
            "POST",
            f"local/{tx_type}",
            query={"wait": "true"} if wait else None,
            body=body,
            timeout=WAIT_TIMEOUT if wait else TIMEOUT,
        )
        return self._committed(self._decode(TxResult.from_json, answer))

    async def submit(self, wire: bytes, *, wait: bool = False) -> TxResult:
        """Submit a signed transaction's wire bytes (``POST /txs``)."""
        answer = await self.request(
            "POST",
            "txs",
            query={"wait": "true"} if wait else None,
            data=wire,
            timeout=WAIT_TIMEOUT if wait else TIMEOUT,
        )
        return self._committed(self._decode(TxResult.from_json, answer))

    @staticmethod
    def _committed(result: TxResult) -> TxResult:
        if result.status is TxStatus.COMMITTED and not result.ok:
            raise TransactivaRequestError(422, str(result.code), result.message)
        return result

    # -- contracts ------------------------------------------------------------------------------

    async def contract(self, contract_id: str) -> ContractRecord:
        """A contract: text, parties, signatures, state, short id, receipt (404: none)."""
        answer = await self.request("GET", f"contracts/{contract_id}")
        return self._decode(ContractRecord.from_json, answer)

    async def awaiting_contracts(self) -> list[ContractRecord]:
        """Proposed contracts that await this home's signature, oldest first (API 1.1)."""
        answer = await self.request("GET", "local/contracts/awaiting")
        return self._decode(lambda a: _as_list(a, "contracts", ContractRecord.from_json), answer)

    async def sign_contract(self, contract_id: str) -> ContractRecord:
        """Countersign a contract (its id or its short id ``0x...``) with this home's key and
        wait for the commit; the contract, with its ``receipt`` once every party signed.
        The ledger's refusals raise TransactivaRequestError (``not_a_party``,
        ``already_signed``, ``not_proposed``, ``unknown_contract``, ``ambiguous_id``)."""
        answer = await self.request(
            "POST", f"local/contracts/{contract_id}/sign", body={}, timeout=WAIT_TIMEOUT
        )
        return self._decode(
            lambda a: ContractRecord.from_json(a.get("contract"), "contract"), answer
        )

    async def check_contract(self, source: str) -> ContractCheck:
        """The node's verdict on a contract's text (nothing is submitted)."""
        answer = await self.request("POST", "contracts/check", body={"source": source})
        return self._decode(ContractCheck.from_json, answer)

    # -- signals and the market -----------------------------------------------------------------

    async def prices(self, start: int, end: int, limit: int = 10_000) -> list[PriceSignal]:
        """Price signals with ``start <= interval_start < end`` (public)."""
        answer = await self.request(
            "GET",
            "signals/prices",
            auth=False,
            query={"from": str(start), "to": str(end), "limit": str(limit)},
        )
        return self._decode(lambda a: _as_list(a, "prices", PriceSignal.from_json), answer)

    async def dr_event(self, event_id: str) -> DemandResponse:
        """A demand-response event in its latest modification (public; 404: none)."""
        answer = await self.request("GET", f"signals/dr/{event_id}", auth=False)
        return self._decode(DemandResponse.from_json, answer)

    async def market_intervals(self, start: int, end: int) -> list[MarketResult]:
        """Interval results (status, clearing price, volume) with ``start <= T < end``."""
        answer = await self.request(
            "GET", "market/intervals", auth=False, query={"from": str(start), "to": str(end)}
        )
        return self._decode(lambda a: _as_list(a, "intervals", MarketResult.from_json), answer)

    async def settlements(self, address: str, start: int, end: int) -> Settlements:
        """A participant's settlements in the range and its current debt."""
        answer = await self.request(
            "GET", f"market/settlements/{address}", query={"from": str(start), "to": str(end)}
        )
        return self._decode(Settlements.from_json, answer)

    async def trades(self, address: str, start: int, end: int) -> list[Trade]:
        """A participant's trades in the range, each with its side."""
        answer = await self.request(
            "GET", f"market/trades/{address}", query={"from": str(start), "to": str(end)}
        )
        return self._decode(lambda a: _as_list(a, "trades", Trade.from_json), answer)

    # -- the home -------------------------------------------------------------------------------

    async def actions(self, limit: int = 100) -> list[ActionLogEntry]:
        """The node's contract actions, newest first, with their results.

        A row that does not decode is left out (logged at debug level): one bad row must
        not hide the others.
        """
        answer = await self.request("GET", "local/actions", query={"limit": str(limit)})
        rows = self._decode(lambda a: _as_list(a, "actions", lambda row, _: row), answer)
        entries = []
        for row in rows:
            try:
                entries.append(ActionLogEntry.from_json(row))
            except DecodeError as err:
                LOGGER.debug("Skipping an action log row: %s", err)
        return entries

    async def post_action_result(self, action_id: int, result: ActionResult, detail: str) -> None:
        """Tell the node what became of a contract action (``detail``: 500 characters kept)."""
        await self.request(
            "POST",
            f"local/actions/{action_id}/result",
            body={"result": str(result), "detail": detail[:500]},
        )

    async def meter(self) -> MeterReading | None:
        """The local meter's latest reading, or None when the node has no meter role.

        A node without it answers 404, or 405 (``POST /local/{type}`` matches the path).
        Before the meter's first reading the node answers 503 ``no_reading``: this raises
        TransactivaNotReadyError.
        """
        try:
            answer = await self.request("GET", "local/meter")
        except TransactivaRequestError as err:
            if err.status in (404, 405):
                return None
            raise
        return self._decode(MeterReading.from_json, answer)

    async def post_meter_reading(self, reading: PushedReading) -> None:
        """Send one reading to the node's pushed meter source (409 ``not_pushed`` when its
        meter reads a device of its own; 404 without the meter role)."""
        await self.request("POST", "local/meter/readings", body=reading.to_json())

    async def forecast_summary(self) -> ForecastSummary:
        """Today's and tomorrow's forecast totals (404 without a meter; 503 ``not_ready``)."""
        answer = await self.request("GET", "local/analytics/summary")
        return self._decode(ForecastSummary.from_json, answer)

    async def forecast(self, hours: int) -> Forecast:
        """The forecast for the next ``hours`` (1-48); 503 ``not_ready`` raises
        TransactivaNotReadyError while there is too little history."""
        answer = await self.request("GET", "local/analytics/forecast", query={"hours": str(hours)})
        return self._decode(Forecast.from_json, answer)

    async def advice(self) -> Advice:
        """Ranked advice in English and Spanish."""
        return self._decode(Advice.from_json, await self.request("GET", "local/analytics/advice"))

    # -- streams --------------------------------------------------------------------------------

    @contextlib.asynccontextmanager
    async def ledger_events(
        self, *, after: int | None = None, from_height: int | None = None
    ) -> AsyncIterator[Stream[LedgerMessage]]:
        """The ledger's events: those after ``seq`` ``after`` (or from block ``from_height``),
        then live ones; neither: live ones only."""
        query: dict[str, str] = {}
        if after is not None:
            query["after"] = str(after)
        elif from_height is not None:
            query["from_height"] = str(from_height)
        async with self._websocket("events", query) as socket:
            yield Stream(socket, LedgerMessage.from_text, "the event stream", _seq)

    @contextlib.asynccontextmanager
    async def local_events(
        self, *, after: int | None = None
    ) -> AsyncIterator[Stream[LocalMessage]]:
        """The home's own events: those kept after ``lseq`` ``after``, then live ones;
        without ``after``, live ones only."""
        query = {} if after is None else {"after": str(after)}
        async with self._websocket("local/events", query) as socket:
            yield Stream(socket, LocalMessage.from_text, "the local event stream", _lseq)

    @contextlib.asynccontextmanager
    async def meter_readings(self) -> AsyncIterator[Stream[MeterReading]]:
        """The meter's readings: the latest one first, then each as it is taken."""
        async with self._websocket("local/meter/stream", {}) as socket:
            yield Stream(socket, _reading, "the meter stream", _no_position)

    @contextlib.asynccontextmanager
    async def _websocket(
        self, path: str, query: Query
    ) -> AsyncIterator[aiohttp.ClientWebSocketResponse]:
        try:
            socket = await self._session.ws_connect(
                f"{self._base}/{path}",
                params=dict(query) if query else None,
                headers=self._auth,
                heartbeat=HEARTBEAT_SECONDS,
                timeout=aiohttp.ClientWSTimeout(ws_close=10),
            )
        except aiohttp.WSServerHandshakeError as err:
            if err.status == 401:
                raise TransactivaAuthError("the node refused the token") from err
            if 400 <= err.status < 500:
                raise TransactivaRequestError(
                    err.status, f"http_{err.status}", f"HTTP {err.status}"
                ) from err
            raise TransactivaConnectionError(f"the node answered HTTP {err.status}") from err
        except (aiohttp.ClientError, TimeoutError) as err:
            raise TransactivaConnectionError(str(err) or type(err).__name__) from err
        try:
            yield socket
        finally:
            await socket.close()


def _seq(message: LedgerMessage) -> int:
    return message.seq


def _lseq(message: LocalMessage) -> int:
    return message.lseq


def _no_position(reading: MeterReading) -> None:
    return None


def _reading(raw: str) -> MeterReading:
    return MeterReading.from_json(parse_json(raw, "the reading"))
