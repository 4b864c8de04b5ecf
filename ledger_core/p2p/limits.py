"""Limits of the P2P layer, token buckets for per-peer rate limits, and the gossip LRU.

Nothing here touches consensus state, so floats and clocks are fine: the
clock is the event loop's monotonic time, passed in by the caller so that the
buckets are pure and testable.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Final

from ledger_core.p2p.wire import CHANNEL_RE, HANDSHAKE_MAX_BYTES, HEADER_BYTES, MAX_CHANNEL_CHARS

KIB: Final = 1024
MIB: Final = 1024 * KIB

#: Default payload limits per channel. ``consensus`` carries proposals with whole
#: blocks; ``sync`` and ``snapshot`` carry blocks and state chunks on request;
#: ``blocks`` is the consensus node's: decided blocks, block sync answers (at most
#: 8 MiB of blocks each) and whole-state snapshots.
DEFAULT_CHANNEL_BYTES: Final[Mapping[str, int]] = MappingProxyType(
    {
        "tx": 16 * KIB,
        "consensus": 8 * MIB,
        "blocks": 64 * MIB,
        "sync": 8 * MIB,
        "snapshot": 8 * MIB,
        "pex": 32 * KIB,
    }
)
SLOW_PEER_POLICIES: Final = ("drop", "disconnect")


@dataclass(frozen=True, slots=True)
class Limits:
    """Sizes, rates, queues and timers of a :class:`~ledger_core.p2p.Network`.

    Rates are per peer and per direction (what a peer may send us). Times are
    seconds.
    """

    channel_bytes: Mapping[str, int] = field(default_factory=lambda: dict(DEFAULT_CHANNEL_BYTES))
    default_channel_bytes: int = 64 * KIB
    gossip_channels: frozenset[str] = frozenset({"tx", "consensus"})
    messages_per_second: float = 2000.0
    messages_burst: float = 4000.0
    bytes_per_second: float = 32 * MIB
    bytes_burst: float = 64 * MIB
    max_violations: int = 20
    violation_window: float = 10.0
    send_queue_messages: int = 4096
    send_queue_bytes: int = 64 * MIB
    slow_peer: str = "drop"
    dedup_entries: int = 100_000
    max_inflight_requests: int = 16
    handshake_timeout: float = 5.0
    dial_timeout: float = 5.0
    close_timeout: float = 2.0
    ping_interval: float = 10.0
    ping_timeout: float = 30.0
    reconnect_base: float = 0.5
    reconnect_max: float = 30.0
    stable_after: float = 5.0
    max_dial_failures: int = 5
    dial_interval: float = 1.0
    pex_interval: float = 30.0
    pex_timeout: float = 5.0
    max_addresses: int = 1000
    stop_timeout: float = 5.0

    def __post_init__(self) -> None:
        for name, limit in self.channel_bytes.items():
            if not CHANNEL_RE.fullmatch(name):
                raise ValueError(f"channel_bytes: {name!r} is not a channel name")
            if not 0 < limit <= 64 * MIB:
                raise ValueError(f"channel_bytes[{name!r}]: 1 byte to 64 MiB")
        for name in self.gossip_channels:
            if not CHANNEL_RE.fullmatch(name):
                raise ValueError(f"gossip_channels: {name!r} is not a channel name")
        if self.slow_peer not in SLOW_PEER_POLICIES:
            raise ValueError("slow_peer: 'drop' or 'disconnect'")
        for name in (
            "default_channel_bytes",
            "messages_per_second",
            "messages_burst",
            "bytes_per_second",
            "bytes_burst",
            "max_violations",
            "violation_window",
            "send_queue_messages",
            "send_queue_bytes",
            "dedup_entries",
            "max_inflight_requests",
            "handshake_timeout",
            "dial_timeout",
            "close_timeout",
            "ping_interval",
            "ping_timeout",
            "reconnect_base",
            "reconnect_max",
            "max_dial_failures",
            "dial_interval",
            "pex_interval",
            "pex_timeout",
            "max_addresses",
            "stop_timeout",
        ):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name}: must be positive")
        if self.reconnect_max < self.reconnect_base:
            raise ValueError("reconnect_max: must be at least reconnect_base")
        if self.ping_timeout < self.ping_interval:
            raise ValueError("ping_timeout: must be at least ping_interval")

    def max_bytes(self, channel: str) -> int:
        """The payload limit of ``channel``."""
        return self.channel_bytes.get(channel, self.default_channel_bytes)

    @property
    def max_frame(self) -> int:
        """The largest frame any channel or the handshake allows (the WebSocket layer's limit)."""
        largest = max([self.default_channel_bytes, *self.channel_bytes.values()])
        return max(largest + HEADER_BYTES + MAX_CHANNEL_CHARS, HANDSHAKE_MAX_BYTES)


class TokenBucket:
    """``rate`` tokens a second, at most ``burst`` saved up.

    :meth:`take` admits an amount when the bucket holds that many tokens. An
    amount larger than the burst passes when the bucket is full and leaves it
    in debt, so it is admitted, and then the sender waits. From a full bucket,
    over any span of ``t`` seconds the admitted total is at most
    ``burst + rate * t``, plus at most one amount larger than the burst.
    """

    __slots__ = ("_at", "_tokens", "burst", "rate")

    def __init__(self, rate: float, burst: float, now: float) -> None:
        self.rate = rate
        self.burst = burst
        self._tokens = burst
        self._at = now

    def take(self, amount: float, now: float) -> bool:
        """Admit ``amount`` at time ``now`` (monotonic), or refuse it and take nothing."""
        if now > self._at:
            self._tokens = min(self.burst, self._tokens + (now - self._at) * self.rate)
            self._at = now
        if self._tokens < min(amount, self.burst):
            return False
        self._tokens -= amount
        return True


class SeenSet:
    """The most recent ``capacity`` keys, oldest forgotten first (gossip de-duplication)."""

    __slots__ = ("_keys", "capacity")

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._keys: OrderedDict[bytes, None] = OrderedDict()

    def add(self, key: bytes) -> bool:
        """Remember ``key``; True if it was not remembered already."""
        if key in self._keys:
            self._keys.move_to_end(key)
            return False
        self._keys[key] = None
        if len(self._keys) > self.capacity:
            self._keys.popitem(last=False)
        return True

    def __contains__(self, key: bytes) -> bool:
        return key in self._keys

    def __len__(self) -> int:
        return len(self._keys)
