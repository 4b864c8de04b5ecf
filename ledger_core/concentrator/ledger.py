"""How the concentrator reads from and writes to a node: over HTTP, or in the same process.

:class:`Ledger` is the small surface the concentrator needs: price signals in
a range, a demand-response event by id, the event stream, submission of
transaction bodies that the operator signs, and for settling metered energy
(:mod:`ledger_core.concentrator.metering`) single state entries, market
intervals, a meter's committed reports and a participant's trades. :class:`HttpLedger` talks to a
node's API with :class:`~ledger_core.client.NodeClient` (the node signs with
its local participant key, which is the operator's in a home made by
``transactiva init``), or submits through any :data:`Submit` callable given to
it. :class:`NodeLedger` drives a :class:`~ledger_core.node.Node` in the same
event loop, signing with the operator key it is given.

Every submission answers one :class:`Outcome` per transaction, in order:
``ok`` once committed and applied, the ledger's refusal code otherwise, or
``unavailable`` when the node could not be reached (the caller retries later).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Final, Protocol

import aiohttp

from ledger_core.client import ApiError, NodeClient
from ledger_core.concentrator.tariff import Prices
from ledger_core.node.host import Node, Submitted
from ledger_core.node.storage import StoredTx
from ledger_core.state import keys
from ledger_core.state.keys import StateView
from ledger_core.types import codec
from ledger_core.types.crypto import SigningKey
from ledger_core.types.tx import TxType, sign

type Body = dict[str, codec.Value]
type StreamItem = tuple[int, int, dict[str, Any]]

MAX_RANGE_ROWS: Final = 10_000
WAIT_SECONDS: Final = 30.0
PARALLEL_SUBMISSIONS: Final = 16
UNAVAILABLE: Final = "unavailable"
PENDING: Final = "pending"


@dataclass(frozen=True, slots=True)
class Outcome:
    """What became of one submitted transaction."""

    code: str
    message: str = ""
    tx_id: str | None = None
    height: int | None = None

    @property
    def ok(self) -> bool:
        """Committed and applied."""
        return self.code == "ok"


type Submit = Callable[[Sequence[tuple[TxType, Body]]], Awaitable[list[Outcome]]]


class Ledger(Protocol):
    """What the concentrator needs from a node."""

    async def prices(self, start: int, end: int) -> dict[int, Prices]:
        """Price signals on chain with ``start <= interval_start < end``."""

    async def dr_event(self, event_id: str) -> dict[str, Any] | None:
        """A demand-response event's latest record, or None."""

    async def submit(self, txs: Sequence[tuple[TxType, Body]]) -> list[Outcome]:
        """Sign and submit transaction bodies as the operator; one outcome each, in order."""

    def events(self, after: int) -> AsyncIterator[StreamItem]:
        """``(seq, height, event)`` for every event after ``seq``, then live ones."""

    async def value(self, key: str) -> Any:  # noqa: ANN401 - a state value (JSON)
        """The committed state entry at ``key``, or None."""

    async def intervals(self, start: int, end: int) -> list[dict[str, Any]]:
        """Market intervals with ``start <= interval_start < end`` (each with its start)."""

    async def reports(self, meter: str, start: int, end: int) -> dict[int, dict[str, Any]]:
        """A meter's committed reports (commitment, height, billed) by interval start."""

    async def trades(self, participant: str, start: int, end: int) -> list[dict[str, Any]]:
        """A participant's trades in the range, each with ``interval_start`` and ``side``."""


def _prices_of(rows: Sequence[dict[str, Any]]) -> dict[int, Prices]:
    return {
        int(row["interval_start"]): Prices(
            int(row["import_price"]), int(row["export_price"]), int(row["network_fee"])
        )
        for row in rows
    }


class HttpLedger:
    """A node's HTTP API: reads with ``client``, submits with ``submit`` or the node's local key."""

    def __init__(
        self, client: NodeClient, submit: Submit | None = None, page: int = MAX_RANGE_ROWS
    ) -> None:
        self.client = client
        self._submit = submit
        self.page = page
        self._parallel = asyncio.Semaphore(PARALLEL_SUBMISSIONS)

    async def prices(self, start: int, end: int) -> dict[int, Prices]:
        found: dict[int, Prices] = {}
        while start < end:
            rows = (
                await self.client.get(f"/signals/prices?from={start}&to={end}&limit={self.page}")
            )["prices"]
            found.update(_prices_of(rows))
            if len(rows) < self.page:
                break
            start = int(rows[-1]["interval_start"]) + 1
        return found

    async def dr_event(self, event_id: str) -> dict[str, Any] | None:
        try:
            return await self.client.get(f"/signals/dr/{event_id}")
        except ApiError as err:
            if err.status == 404:
                return None
            raise

    async def value(self, key: str) -> Any:  # noqa: ANN401 - a state value (JSON)
        try:
            return (await self.client.get(f"/state/{key}"))["value"]
        except ApiError as err:
            if err.status == 404:
                return None
            raise

    async def _pages(self, path: str, field: str, start: int, end: int) -> list[dict[str, Any]]:
        """Every row of a ``?from=&to=&limit=`` route, page by page."""
        rows: list[dict[str, Any]] = []
        while start < end:
            joiner = "&" if "?" in path else "?"
            page = (
                await self.client.get(f"{path}{joiner}from={start}&to={end}&limit={self.page}")
            )[field]
            rows.extend(page)
            if len(page) < self.page:
                break
            start = int(page[-1]["interval_start"]) + 1
        return rows

    async def intervals(self, start: int, end: int) -> list[dict[str, Any]]:
        return await self._pages("/market/intervals", "intervals", start, end)

    async def reports(self, meter: str, start: int, end: int) -> dict[int, dict[str, Any]]:
        rows = await self._pages(f"/reports/{meter}", "reports", start, end)
        return {int(row["interval_start"]): row for row in rows if row.get("on_chain")}

    async def trades(self, participant: str, start: int, end: int) -> list[dict[str, Any]]:
        # Trades are few per participant and day: the range is read in one request.
        answer = await self.client.get(
            f"/market/trades/{participant}?from={start}&to={end}&limit={self.page}"
        )
        return list(answer["trades"])

    async def submit(self, txs: Sequence[tuple[TxType, Body]]) -> list[Outcome]:
        if self._submit is not None:
            return await self._submit(txs)
        return list(await asyncio.gather(*(self._local(t, b) for t, b in txs)))

    async def _local(self, tx_type: TxType, body: Body) -> Outcome:
        async with self._parallel:
            try:
                result = await self.client.local(str(tx_type), body, wait=True)
            except ApiError as err:
                if err.status >= 500:
                    return Outcome(UNAVAILABLE, f"{err.code}: {err.message}")
                return Outcome(err.code, err.message)
            except (OSError, aiohttp.ClientError, TimeoutError) as err:
                return Outcome(UNAVAILABLE, str(err) or type(err).__name__)
        if result.get("status") != "committed":
            return Outcome(PENDING, "not committed within the wait", result.get("id"))
        return Outcome(
            str(result["code"]), str(result.get("message", "")), result["id"], result["height"]
        )

    async def events(self, after: int) -> AsyncIterator[StreamItem]:
        url = f"{self.client.base_url}/api/v1/events?after={after}"
        headers = {"Authorization": f"Bearer {self.client.token}"}
        async with (
            aiohttp.ClientSession() as session,
            session.ws_connect(url, headers=headers, heartbeat=30) as socket,
        ):
            async for message in socket:
                if message.type is not aiohttp.WSMsgType.TEXT:
                    break
                item = json.loads(message.data)
                yield int(item["seq"]), int(item["height"]), item["event"]


class NodeLedger:
    """A node in this process; transactions are signed here with the operator's ``key``."""

    def __init__(self, node: Node, key: SigningKey, wait: float = WAIT_SECONDS) -> None:
        self.node = node
        self.key = key
        self.wait = wait

    async def prices(self, start: int, end: int) -> dict[int, Prices]:
        rows = StateView(self.node.committed).by_interval(keys.PRICES, start, end, 1 << 30)
        return _prices_of([{"interval_start": start, **record} for start, record in rows])

    async def dr_event(self, event_id: str) -> dict[str, Any] | None:
        record = StateView(self.node.committed).dr_event(event_id)
        return {"event_id": event_id, **record} if record is not None else None

    async def value(self, key: str) -> Any:  # noqa: ANN401 - a state value (JSON)
        return self.node.committed.get(key)

    async def intervals(self, start: int, end: int) -> list[dict[str, Any]]:
        rows = StateView(self.node.committed).by_interval(keys.INTERVALS, start, end, 1 << 30)
        return [{"interval_start": t, **record} for t, record in rows]

    async def reports(self, meter: str, start: int, end: int) -> dict[int, dict[str, Any]]:
        rows = StateView(self.node.committed).by_interval(keys.reports(meter), start, end, 1 << 30)
        return {t: {"interval_start": t, **record} for t, record in rows}

    async def trades(self, participant: str, start: int, end: int) -> list[dict[str, Any]]:
        view = StateView(self.node.committed)
        found: list[dict[str, Any]] = []
        for t, position in view.by_interval(keys.positions(participant), start, end, 1 << 30):
            indexes = position.get("trades")
            assert isinstance(indexes, list)
            for index in indexes:
                assert isinstance(index, int)
                trade = view.trade(t, index)
                assert trade is not None
                side = "buy" if trade["buyer"] == participant else "sell"
                found.append({"side": side, **trade})
        return found

    async def submit(self, txs: Sequence[tuple[TxType, Body]]) -> list[Outcome]:
        waits: list[asyncio.Future[StoredTx | Submitted] | Outcome] = []
        for tx_type, body in txs:
            # No await between the nonce and the mempool (Node.next_nonce).
            nonce = self.node.next_nonce(self.key.address)
            tx = sign(self.key, self.node.genesis.chain_id, tx_type, nonce, body)
            submitted = self.node.submit(tx.wire())
            if not submitted.accepted:
                waits.append(Outcome(submitted.code, submitted.message, tx.id))
            else:
                waits.append(self.node.wait_for(tx.id))
        outcomes: list[Outcome] = []
        for item in waits:
            if isinstance(item, Outcome):
                outcomes.append(item)
                continue
            try:
                result = await asyncio.wait_for(item, self.wait)
            except TimeoutError:
                outcomes.append(Outcome(PENDING, "not committed within the wait"))
                continue
            if isinstance(result, StoredTx):
                outcomes.append(Outcome(result.code, result.message, result.id, result.height))
            else:
                outcomes.append(Outcome(result.code, result.message, result.tx_id))
        return outcomes

    async def events(self, after: int) -> AsyncIterator[StreamItem]:
        queue = self.node.subscribe()
        try:
            last = after
            while True:
                backlog = list(self.node.storage.events(last, limit=500))
                for seq, height, event in backlog:
                    assert isinstance(event, dict)
                    yield seq, height, event
                    last = seq
                if len(backlog) < 500:
                    break
            while True:
                seq, height, event = await queue.get()
                if seq > last:
                    assert isinstance(event, dict)
                    yield seq, height, event
                    last = seq
        finally:
            self.node.unsubscribe(queue)
