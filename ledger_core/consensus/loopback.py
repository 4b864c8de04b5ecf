"""An in-process network of nodes with seeded faults, for tests and simulations.

Every node joins with its id and its ``deliver(peer_id, channel, payload)``;
it gets an :class:`Endpoint` (an :class:`~ledger_core.consensus.runtime.Outbound`)
to send with. Delivery goes through the scheduler given to the network — an
asyncio event loop (real time) or a
:class:`~ledger_core.consensus.runtime.VirtualScheduler` (simulated time) — so
each message takes a delay drawn from the network's seeded random generator,
which also decides drops and duplicates. A link between two nodes delivers in
the order it was given messages (as a TCP or WebSocket connection does) unless
``reorder`` is set, when random delays reorder them.

Faults can change at any time: :meth:`LoopbackNetwork.partition` cuts the
network into groups that cannot reach each other, :meth:`heal` joins them
again, :meth:`leave` takes a node off (a crash), :meth:`set_faults` changes
drop, duplication and delay.

With ``gossip`` (the default) the network behaves like a gossip layer such as
``ledger_core.p2p``: a node that receives a ``consensus`` or ``tx`` message for
the first time passes it on to its other peers, and each node is handed each
distinct message once. A message sent to some peers only (an equivocating
validator's) therefore reaches every connected node, as it would in a real
gossip network.
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Callable
from dataclasses import dataclass, field

from ledger_core.consensus.runtime import Scheduler

type Deliver = Callable[[str, str, bytes], None]
GOSSIPED = frozenset({"consensus", "tx"})


@dataclass(frozen=True, slots=True)
class Faults:
    """Per-message fault probabilities and the delay range in milliseconds."""

    drop: float = 0.0
    duplicate: float = 0.0
    delay_ms: tuple[int, int] = (1, 10)
    reorder: bool = False


@dataclass
class Stats:
    """What the network did."""

    sent: int = 0
    delivered: int = 0
    dropped: int = 0
    duplicated: int = 0
    by_channel: dict[str, int] = field(default_factory=dict)


class Endpoint:
    """One node's way out."""

    def __init__(self, network: LoopbackNetwork, peer_id: str) -> None:
        self.network = network
        self.peer_id = peer_id

    def broadcast(self, channel: str, payload: bytes) -> None:
        for peer in self.peers():
            self.network.transmit(self.peer_id, peer, channel, payload)

    def send(self, peer_id: str, channel: str, payload: bytes) -> None:
        self.network.transmit(self.peer_id, peer_id, channel, payload)

    def peers(self) -> list[str]:
        return self.network.reachable(self.peer_id)


class LoopbackNetwork:
    """Nodes in one process, connected through a scheduler with seeded faults."""

    def __init__(
        self,
        scheduler: Scheduler,
        seed: int = 0,
        faults: Faults | None = None,
        *,
        gossip: bool = True,
    ) -> None:
        self.scheduler = scheduler
        self.random = random.Random(seed)  # noqa: S311 - seeded faults, not secrets
        self.faults = faults or Faults()
        self.gossip = gossip
        self.stats = Stats()
        self._nodes: dict[str, Deliver] = {}
        self._groups: list[frozenset[str]] | None = None
        self._seen: dict[str, set[bytes]] = {}
        self._link_clock: dict[tuple[str, str], float] = {}
        # Called with (source, target, channel, payload) for every message put on
        # the wire, before faults apply: what each node sent.
        self.taps: list[Callable[[str, str, str, bytes], None]] = []

    def join(self, peer_id: str, deliver: Deliver) -> Endpoint:
        """Connect a node; messages for it go to ``deliver``."""
        self._nodes[peer_id] = deliver
        self._seen[peer_id] = set()
        return Endpoint(self, peer_id)

    def leave(self, peer_id: str) -> None:
        """Disconnect a node (its messages in flight are lost)."""
        self._nodes.pop(peer_id, None)
        self._seen.pop(peer_id, None)

    def set_faults(self, faults: Faults) -> None:
        self.faults = faults

    def partition(self, *groups: set[str]) -> None:
        """Only nodes in the same group reach each other (nodes in none reach nobody)."""
        self._groups = [frozenset(g) for g in groups]

    def heal(self) -> None:
        self._groups = None

    def connected(self, a: str, b: str) -> bool:
        """Whether ``a`` can reach ``b`` now."""
        if a not in self._nodes or b not in self._nodes or a == b:
            return False
        if self._groups is None:
            return True
        return any(a in g and b in g for g in self._groups)

    def reachable(self, peer_id: str) -> list[str]:
        return sorted(p for p in self._nodes if self.connected(peer_id, p))

    def transmit(self, source: str, target: str, channel: str, payload: bytes) -> None:
        """Put one message on the wire (the faults apply here)."""
        self.stats.sent += 1
        for tap in self.taps:
            tap(source, target, channel, payload)
        self.stats.by_channel[channel] = self.stats.by_channel.get(channel, 0) + 1
        if not self.connected(source, target) or self.random.random() < self.faults.drop:
            self.stats.dropped += 1
            return
        copies = 1
        if self.random.random() < self.faults.duplicate:
            copies = 2
            self.stats.duplicated += 1
        low, high = self.faults.delay_ms
        link = (source, target)
        for _ in range(copies):
            delay = self.random.randint(low, high) / 1000
            if not self.faults.reorder:
                # Keep the link's order: never arrive before what was sent earlier on it.
                now = self.scheduler.time()
                arrival = max(now + delay, self._link_clock.get(link, now))
                self._link_clock[link] = arrival
                delay = arrival - now
            self.scheduler.call_later(delay, self._arrive, source, target, channel, payload)

    def _arrive(self, source: str, target: str, channel: str, payload: bytes) -> None:
        deliver = self._nodes.get(target)
        if deliver is None or not self.connected(source, target):
            self.stats.dropped += 1
            return
        if self.gossip and channel in GOSSIPED:
            digest = hashlib.sha256(channel.encode() + b"\0" + payload).digest()
            seen = self._seen[target]
            if digest in seen:
                return
            seen.add(digest)
        self.stats.delivered += 1
        deliver(source, channel, payload)
        if self.gossip and channel in GOSSIPED and target in self._nodes:
            for peer in self.reachable(target):
                if peer != source:
                    self.transmit(target, peer, channel, payload)
