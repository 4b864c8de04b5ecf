"""A home on the market: follows the ledger, runs its contracts, trades, acts.

:class:`HomeAgent` connects a participant to a node's API: it follows the
node's event stream (resuming after a disconnect), keeps a
:class:`~ledger_core.execution.ContractExecutor` up to date, feeds it the
meter's live power, and for every action a contract takes

- records it (:class:`~ledger_core.local.ActionLog`) with its status: the home
  decides once per device and event (:mod:`contracts.decide`), so an action may
  be ``unchanged`` (the device is already so), ``suppressed`` (held off) or
  ``superseded``, each with why;
- publishes the effective ones as ``contract_action`` local events (what Home
  Assistant listens to) and calls the home's actuator (Home Assistant, or the
  simulator in the demo), recording the result and, for ``skipped`` and
  ``unmapped``, why (no Home Assistant attached, no actuator mapped),
- signs and submits the market order a ``SELL SURPLUS`` or ``BUY`` asks for.

:class:`Signer` signs a key's transactions locally and submits them through
the API, keeping nonces in order without asking the node to sign.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Final, Protocol

import aiohttp

from ledger_core.agent.execution import ActionRecord, ContractExecutor
from ledger_core.client import ApiError, NodeClient
from ledger_core.node.local import ActionLog, LocalEvents
from ledger_core.types.crypto import SigningKey
from ledger_core.types.tx import TxType, sign

_LOG = logging.getLogger(__name__)

RECONNECT_DELAYS: Final = (0.2, 0.5, 1.0, 2.0, 5.0)
NO_HOME_ASSISTANT: Final = "no Home Assistant attached"

type Actuator = Callable[[ActionRecord], Awaitable[str]]
type Clock = Callable[[], float]


class Submitter(Protocol):
    """Signs and submits transactions for one participant."""

    async def submit(
        self, tx_type: TxType, body: dict[str, Any], *, wait: bool = False
    ) -> dict[str, Any]:
        """Sign ``body`` as ``tx_type`` and submit it; the node's answer."""
        ...


class Signer:
    """Signs one key's transactions and submits them, nonce after nonce."""

    def __init__(self, client: NodeClient, key: SigningKey, chain_id: str) -> None:
        self.client = client
        self.key = key
        self.chain_id = chain_id
        self._nonce: int | None = None
        self._lock = asyncio.Lock()

    async def _last_nonce(self) -> int:
        try:
            answer = await self.client.get(f"/state/nonce/{self.key.address}")
        except ApiError as err:
            if err.status == 404:
                return 0
            raise
        value = answer.get("value")
        return value if isinstance(value, int) else 0

    async def submit(
        self, tx_type: TxType, body: dict[str, Any], *, wait: bool = False
    ) -> dict[str, Any]:
        """Sign ``body`` as ``tx_type`` with the next nonce and submit it.

        With ``wait``, a transaction committed but refused by the rules raises
        ApiError with the rule's code. A ``stale_nonce`` answer (another client
        used the key) re-reads the nonce once and retries; any other refusal is
        raised as ApiError.
        """
        async with self._lock:
            for attempt in range(2):
                if self._nonce is None:
                    self._nonce = await self._last_nonce()
                tx = sign(self.key, self.chain_id, tx_type, self._nonce + 1, body)
                try:
                    answer = await self.client.post_tx(tx.wire(), wait=wait)
                except ApiError as err:
                    if err.code == "stale_nonce" and attempt == 0:
                        self._nonce = None
                        continue
                    if err.code not in ("stale_nonce", "malformed", "wrong_chain"):
                        self._nonce += 1  # the nonce is consumed by a refused body
                    raise
                self._nonce += 1
                if answer.get("status") == "committed" and answer.get("code") != "ok":
                    raise ApiError(
                        422, str(answer.get("code")), str(answer.get("message", "")), None
                    )
                return answer
        raise AssertionError("unreachable")  # pragma: no cover


class NodeSigner:
    """Has the node sign with its own participant key (``POST /local/{type}``).

    The node chooses nonces as transactions enter its mempool, so any number of
    clients may share the key; :class:`Signer` is for keys the node does not hold.
    """

    def __init__(self, client: NodeClient) -> None:
        self.client = client

    async def submit(
        self, tx_type: TxType, body: dict[str, Any], *, wait: bool = False
    ) -> dict[str, Any]:
        """Sign and submit ``body`` as ``tx_type``; as :meth:`Signer.submit`."""
        answer = await self.client.local(str(tx_type), body, wait=wait)
        if answer.get("status") == "committed" and answer.get("code") != "ok":
            raise ApiError(422, str(answer.get("code")), str(answer.get("message", "")), None)
        return answer


async def follow_events(
    client: NodeClient,
    after: int,
    stop: asyncio.Event,
    handle: Callable[[int, int, dict[str, Any]], Awaitable[None]],
) -> int:
    """Deliver the node's events after ``after`` to ``handle`` until ``stop``;
    reconnects with backoff and resumes where it left off. The last seq seen."""
    attempt = 0
    while not stop.is_set():
        url = client.base_url + f"/api/v1/events?after={after}"
        headers = {"Authorization": f"Bearer {client.token}"}
        try:
            async with (
                aiohttp.ClientSession() as session,
                session.ws_connect(url, headers=headers, heartbeat=30) as socket,
            ):
                attempt = 0
                closing = asyncio.ensure_future(stop.wait())
                try:
                    while not stop.is_set():
                        receive = asyncio.ensure_future(socket.receive())
                        await asyncio.wait({receive, closing}, return_when=asyncio.FIRST_COMPLETED)
                        if not receive.done():
                            receive.cancel()
                            await asyncio.gather(receive, return_exceptions=True)
                            break
                        message = receive.result()
                        if message.type is not aiohttp.WSMsgType.TEXT:
                            break
                        item = json.loads(message.data)
                        seq, height, event = item["seq"], item["height"], item["event"]
                        if isinstance(seq, int) and seq > after:
                            await handle(seq, height, event)
                            after = seq
                finally:
                    closing.cancel()
                    await asyncio.gather(closing, return_exceptions=True)
        except (aiohttp.ClientError, OSError, ValueError, KeyError) as err:
            _LOG.debug("event stream from %s: %s", client.base_url, err)
        if stop.is_set():
            break
        delay = RECONNECT_DELAYS[min(attempt, len(RECONNECT_DELAYS) - 1)]
        attempt += 1
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), delay)
    return after


@dataclass
class HomeAgent:
    """One participant's contracts, orders and appliances, driven by a node's events."""

    client: NodeClient
    signer: Submitter
    executor: ContractExecutor
    clock: Clock
    actuator: Actuator | None = None
    log: ActionLog | None = None
    local_events: LocalEvents = field(default_factory=LocalEvents)
    on_action: Callable[[ActionRecord, str], None] | None = None
    orders_placed: list[dict[str, Any]] = field(default_factory=list)
    order_errors: list[str] = field(default_factory=list)
    last_seq: int = 0

    def now(self) -> int:
        """The agent's clock as Unix seconds."""
        return int(self.clock())

    async def handle_event(self, seq: int, height: int, event: dict[str, Any]) -> None:
        """One ledger event: contract bookkeeping, then whatever it triggers."""
        kind = event.get("type")
        if kind in ("contract_activated", "contract_expired", "contract_revoked"):
            contract_id = str(event["contract_id"])
            if kind == "contract_activated":
                record = await self.client.get(f"/contracts/{contract_id}")
                if self.executor.track(contract_id, record):
                    await self.act(self.executor.on_activated(contract_id, self.now()))
            else:
                self.executor.forget(contract_id)
            return
        await self.act(self.executor.on_ledger_event(event, self.now()))

    async def tick(self) -> None:
        """Let time act: interval prices and demand-response windows."""
        await self.act(self.executor.on_tick(self.now()))

    def power(self, net_w: float) -> None:
        """The meter's live net power."""
        self.executor.on_power(net_w)

    async def interval_report(self, interval_start: int, import_wh: int, export_wh: int) -> None:
        """The home's meter closed an interval (its own reading, not the chain's)."""
        await self.act(
            self.executor.on_interval_report(interval_start, import_wh, export_wh, self.now())
        )

    async def act(self, actions: list[ActionRecord]) -> None:
        """Record every action; publish and carry out the effective ones, place their orders.

        An action that was not carried out (unchanged, suppressed, superseded) is
        kept in the log with its status and why, and not published: Home Assistant
        only hears what it should do.
        """
        for action in actions:
            action_id = self.log.record(action) if self.log is not None else None
            if not action.effective:
                continue
            event = action.to_event()
            if action_id is not None:
                event["action_id"] = action_id
            self.local_events.publish(event)
            result, detail = "skipped", ""
            if action.order is not None:
                result = await self._place(action)
            elif action.device is not None and self.actuator is not None:
                try:
                    result = await self.actuator(action)
                except (aiohttp.ClientError, OSError, TimeoutError) as err:
                    result, detail = "failed", str(err) or type(err).__name__
                    _LOG.warning("%s: %s", action.description, err)
                if result == "unmapped":
                    detail = f"no actuator is mapped to {action.device!r}"
            elif action.device is not None and self.local_events.listeners == 0:
                # Home Assistant carries device actions out; nobody follows the local events
                # now (it catches up on this log when it connects).
                detail = NO_HOME_ASSISTANT
            if action_id is not None and self.log is not None:
                self.log.set_result(action_id, result, detail)
            if self.on_action is not None:
                self.on_action(action, result)

    async def _place(self, action: ActionRecord) -> str:
        assert action.order is not None
        try:
            answer = await self.signer.submit(TxType.ORDER, action.order.body())
        except ApiError as err:
            self.order_errors.append(f"{action.short_id}: {err}")
            return "failed"
        self.orders_placed.append({"id": answer.get("id"), **action.order.body()})
        return "ok"

    async def run(self, stop: asyncio.Event, tick_every: float = 0.25) -> None:
        """Follow the node's events and the clock until ``stop`` is set."""
        follower = asyncio.create_task(
            follow_events(self.client, self.last_seq, stop, self._follow)
        )
        try:
            while not stop.is_set():
                await self.tick()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), tick_every)
        finally:
            self.last_seq = await follower

    async def _follow(self, seq: int, height: int, event: dict[str, Any]) -> None:
        self.last_seq = seq
        await self.handle_event(seq, height, event)
