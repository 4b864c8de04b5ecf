"""What a networked node runs on: a scheduler for timers and an outbound transport.

The node's logic is synchronous. Time reaches it through a :class:`Scheduler`
(``call_later``; an asyncio event loop is one, so a real node runs on its loop)
and its clock function; messages leave through an :class:`Outbound` transport
whose methods queue and return at once; messages arrive by the transport
calling ``ConsensusNode.deliver(peer_id, channel, payload)``.

:class:`VirtualScheduler` runs the same node code in simulated time: timers
fire in order of their due time (ties in the order they were set), the clock
jumps from one to the next, and nothing sleeps. With a seeded network
(``loopback``) a run of many nodes is exactly repeatable.

:class:`QueuedOutbound` adapts an asynchronous network (``await
broadcast(channel, payload)``, ``await send(peer_id, channel, payload)``,
``peers()``) such as ``ledger_core.p2p``'s: it queues what the node sends and
a task awaits the network in order. ``ledger_core.consensus.node.connect`` wires
a node to such a network in one call.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import itertools
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Protocol

LOG = logging.getLogger(__name__)


class Cancellable(Protocol):
    """A timer that can be cancelled."""

    def cancel(self) -> None: ...


class Scheduler(Protocol):
    """Calls a function after a delay in seconds (an asyncio loop is one); ``time()`` is
    its own clock in seconds, for ordering only (timestamps come from the node's clock)."""

    def call_later(
        self, delay: float, callback: Callable[..., object], *args: object
    ) -> Cancellable: ...

    def time(self) -> float: ...


class Outbound(Protocol):
    """How a node sends, queueing and returning at once: ``broadcast`` to every peer,
    ``send`` to one, ``peers`` lists those connected (sorted)."""

    def broadcast(self, channel: str, payload: bytes) -> None: ...

    def send(self, peer_id: str, channel: str, payload: bytes) -> None: ...

    def peers(self) -> list[str]: ...


class _Timer:
    __slots__ = ("args", "callback", "cancelled")

    def __init__(self, callback: Callable[..., object], args: tuple[object, ...]) -> None:
        self.callback = callback
        self.args = args
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True


class VirtualScheduler:
    """Simulated time in seconds; :meth:`run` fires timers in due order."""

    def __init__(self, start: float) -> None:
        self.now = start
        self._queue: list[tuple[float, int, _Timer]] = []
        self._counter = itertools.count()

    def time(self) -> float:
        """The simulated clock (a node's ``clock``)."""
        return self.now

    def call_later(self, delay: float, callback: Callable[..., object], *args: object) -> _Timer:
        timer = _Timer(callback, args)
        heapq.heappush(self._queue, (self.now + max(0.0, delay), next(self._counter), timer))
        return timer

    def run(self, until: Callable[[], bool], limit: float, max_events: int = 2_000_000) -> bool:
        """Fire timers until ``until()`` holds (True) or ``limit`` simulated seconds
        pass or the queue empties (False)."""
        deadline = self.now + limit
        for _ in range(max_events):
            if until():
                return True
            if not self._queue or self._queue[0][0] > deadline:
                self.now = deadline
                return until()
            due, _, timer = heapq.heappop(self._queue)
            self.now = max(self.now, due)
            if not timer.cancelled:
                timer.callback(*timer.args)
        raise RuntimeError(f"more than {max_events} events without reaching the goal")


class PeerLike(Protocol):
    """A connected peer as a network reports it (``ledger_core.p2p.PeerInfo``)."""

    @property
    def id(self) -> str: ...


class AsyncNetwork(Protocol):
    """An asynchronous network of peers (the interface of ``ledger_core.p2p.Network``):
    ``await broadcast(channel, payload)``, ``await send(peer_id, channel, payload)``
    (their results are not used) and ``peers()`` (ids, or objects with an ``id``)."""

    def broadcast(self, channel: str, payload: bytes) -> Awaitable[object]: ...

    def send(self, peer_id: str, channel: str, payload: bytes) -> Awaitable[object]: ...

    def peers(self) -> Sequence[str | PeerLike]: ...


class QueuedOutbound:
    """An :class:`Outbound` over an :class:`AsyncNetwork`: sends in order from a task."""

    def __init__(self, network: AsyncNetwork, limit: int = 100_000) -> None:
        self.network = network
        self._queue: asyncio.Queue[tuple[str | None, str, bytes]] = asyncio.Queue(limit)
        self._task: asyncio.Task[None] | None = None

    def broadcast(self, channel: str, payload: bytes) -> None:
        self._put((None, channel, payload))

    def send(self, peer_id: str, channel: str, payload: bytes) -> None:
        self._put((peer_id, channel, payload))

    def peers(self) -> list[str]:
        return sorted(p if isinstance(p, str) else p.id for p in self.network.peers())

    def _put(self, item: tuple[str | None, str, bytes]) -> None:
        try:
            self._queue.put_nowait(item)
        except asyncio.QueueFull:
            LOG.warning("outbound queue full; dropping a %s message", item[1])

    def start(self) -> None:
        """Start sending (in the running loop)."""
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._pump())

    async def close(self) -> None:
        """Stop sending."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _pump(self) -> None:
        while True:
            peer, channel, payload = await self._queue.get()
            try:
                if peer is None:
                    await self.network.broadcast(channel, payload)
                else:
                    await self.network.send(peer, channel, payload)
            except (OSError, ConnectionError, RuntimeError, ValueError) as err:
                LOG.info("sending a %s message failed: %s", channel, err)
