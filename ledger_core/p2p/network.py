"""The peer-to-peer network of a node: authenticated WebSocket peers, gossip, requests, discovery.

One :class:`Network` per node. It listens on ``ws://host:port/p2p`` (aiohttp
server) and dials peers with ``aiohttp.ClientSession.ws_connect``; either way
the connection starts with the handshake of :mod:`ledger_core.p2p.handshake`,
after which it carries envelopes (:mod:`ledger_core.p2p.wire`) in both
directions. A peer's id is its node address (``tv…``).

Per peer there are four tasks: the reader (decodes frames, enforces sizes and
rate limits, answers pings, completes requests), the dispatcher (calls channel
handlers in arrival order from a bounded queue, so a handler may itself await
a request to the same peer), the writer (drains a bounded send queue, so a
slow peer never blocks the others) and the pinger (measures the round-trip
time and drops peers that stop answering).

Gossip channels (``Limits.gossip_channels``, by default ``tx`` and
``consensus``) are flooded: a message is identified by SHA-256 of its channel
and payload, remembered in a bounded LRU, handed to the channel's handler once,
and — if the handler returned normally — relayed to every other peer once.
Other channels are point to point: :meth:`Network.send`, :meth:`Network.request`.
A handler that raises :class:`Misbehaviour` gets the sending peer disconnected.

Discovery: seeds and peer-exchange answers fill an address book; while the
node has fewer than ``max_peers`` peers it dials book entries and asks a peer
for more addresses every ``pex_interval``. Persistent peers are kept
connected for ever, with exponential backoff and jitter between attempts (they
do not count against ``max_peers``). When the same two nodes end up with two
connections, both keep the one dialled by the lower node address.

Reasons: every disconnect and refused handshake is recorded with a reason
(:meth:`Network.recent_disconnects`) and sent to the peer in the WebSocket
close frame.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import random
import socket
import struct
import time
from collections import deque
from collections.abc import Awaitable, Callable, Collection
from dataclasses import dataclass, field
from typing import Any, Final, Literal

import aiohttp
from aiohttp import WSCloseCode, WSMsgType, web

from ledger_core.p2p.handshake import (
    HandshakeError,
    Identity,
    Socket,
    close_message,
    handshake,
)
from ledger_core.p2p.limits import Limits, SeenSet, TokenBucket
from ledger_core.p2p.wire import (
    CHANNEL_RE,
    HEX64_RE,
    MAX_REFUSE_PEERS,
    PATH,
    Envelope,
    Hello,
    Kind,
    PeerAddress,
    Refuse,
    TooLargeError,
    WireError,
    decode_envelope,
    decode_pex,
    encode_envelope,
    encode_pex,
    parse_address,
    parse_listen,
)
from ledger_core.types.crypto import ADDRESS_RE, SigningKey
from ledger_core.types.tx import CHAIN_ID_RE

LOG: Final = logging.getLogger(__name__)
PEX_CHANNEL: Final = "pex"
MAX_DISCONNECT_RECORDS: Final = 200
INBOUND_QUEUE: Final = 256
#: Refusals that will not change by retrying the same address.
PERMANENT_REFUSALS: Final = frozenset(
    {"chain_id", "genesis_hash", "protocol_version", "self", "not_allowed", "unexpected_peer"}
)

type Direction = Literal["inbound", "outbound"]
type Handler = Callable[[str, bytes], Awaitable[None]]
type RequestHandler = Callable[[str, bytes], Awaitable[bytes]]
type ConnectHandler = Callable[[str], Awaitable[None]]
type DisconnectHandler = Callable[[str, str], Awaitable[None]]


class P2PError(Exception):
    """A send, request or dial that could not be done."""


class PeerUnavailableError(P2PError):
    """The peer is not connected, or its connection ended before the answer."""


class RequestTimeoutError(P2PError, TimeoutError):
    """No answer to a request in time."""


class RemoteError(P2PError):
    """The peer answered a request with an error; the text is the peer's."""


class DialError(P2PError):
    """A dial that did not reach the handshake (refused, unreachable, timed out)."""


class Misbehaviour(Exception):  # noqa: N818 - raised by handlers to accuse a peer
    """Raised by a channel handler: the peer sent something no honest peer sends."""


@dataclass(frozen=True, slots=True)
class PeerInfo:
    """A connected peer, as :meth:`Network.peers` reports it."""

    id: str
    public_key: str
    address: str
    listen_address: str | None
    direction: Direction
    connected_since: float
    bytes_in: int
    bytes_out: int
    messages_in: int
    messages_out: int
    rtt: float | None
    dropped: int


@dataclass(frozen=True, slots=True)
class Disconnect:
    """Why a connection or handshake ended; ``by`` says which side ended it."""

    peer: str
    address: str
    reason: str
    by: Literal["local", "remote"]
    at: float


@dataclass(frozen=True, slots=True)
class AddressInfo:
    """An address book entry."""

    address: str
    peer_id: str | None
    persistent: bool
    seed: bool
    failures: int
    last_error: str | None
    connected: bool
    attempts: tuple[float, ...]


@dataclass(slots=True)
class _Entry:
    address: PeerAddress
    persistent: bool = False
    seed: bool = False
    failures: int = 0
    next_attempt: float = 0.0
    last_error: str | None = None
    connected_once: bool = False
    is_self: bool = False
    peer_id: str | None = None
    attempts: deque[float] = field(default_factory=lambda: deque(maxlen=16))

    @property
    def known_id(self) -> str | None:
        return self.address.id or self.peer_id


class _Peer:
    """One authenticated connection and its counters, queues and tasks."""

    def __init__(
        self,
        ws: Socket,
        *,
        hello: Hello,
        direction: Direction,
        address: str,
        listen: PeerAddress | None,
        limits: Limits,
        now: float,
    ) -> None:
        self.ws = ws
        self.id = hello.peer_id
        self.public_key = hello.node_key.hex()
        self.direction: Direction = direction
        self.address = address
        self.listen = listen
        self.since = time.time()
        self.connected_at = now
        self.bytes_in = self.bytes_out = self.messages_in = self.messages_out = 0
        self.dropped = 0
        self.rtt: float | None = None
        self.queue: deque[bytes] = deque()
        self.queued_bytes = 0
        self.wake = asyncio.Event()
        self.inbox: asyncio.Queue[Envelope] = asyncio.Queue(INBOUND_QUEUE)
        self.closed = asyncio.Event()
        self.closing = False
        self.close_reason = "connection ended"
        self.closed_by: Literal["local", "remote"] = "remote"
        self.messages = TokenBucket(limits.messages_per_second, limits.messages_burst, now)
        self.bytes = TokenBucket(limits.bytes_per_second, limits.bytes_burst, now)
        self.violations: deque[float] = deque()
        self.pending: dict[int, asyncio.Future[Envelope]] = {}
        self.next_request = 1
        self.ping_nonce: int | None = None
        self.ping_sent = 0.0
        self.inflight = 0
        self.tasks: set[asyncio.Task[Any]] = set()

    def info(self) -> PeerInfo:
        return PeerInfo(
            id=self.id,
            public_key=self.public_key,
            address=self.address,
            listen_address=str(self.listen) if self.listen else None,
            direction=self.direction,
            connected_since=self.since,
            bytes_in=self.bytes_in,
            bytes_out=self.bytes_out,
            messages_in=self.messages_in,
            messages_out=self.messages_out,
            rtt=self.rtt,
            dropped=self.dropped,
        )


def _abort(ws: Socket) -> None:
    """Cut a connection whose peer does not read: a graceful close would wait for ever.

    The socket is set to reset (``SO_LINGER`` 0) and the event loop's transport is
    aborted: it drops its pending writes and closes the socket now. A graceful close
    cut short by its timeout may leave aiohttp's side of the connection open (the
    client side closes its connection only once the close handshake ends), and an
    open transport nobody holds is a leak. aiohttp has no public abort: its WebSocket
    writer holds the transport. Without one, the socket is shut down, which fails the
    transport's next read or write.
    """
    sock = ws.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    transport = getattr(getattr(ws, "_writer", None), "transport", None)
    if isinstance(transport, asyncio.Transport):
        transport.abort()
    elif sock is not None:
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)


def gossip_id(channel: str, payload: bytes) -> bytes:
    """The de-duplication key of a gossiped message."""
    return hashlib.sha256(channel.encode("ascii") + b"\x00" + payload).digest()


class Network:
    """A node's P2P network; see the module documentation."""

    def __init__(  # noqa: PLR0917 - positional order shared with the consensus engine
        self,
        key: SigningKey,
        chain_id: str,
        genesis_hash: str,
        host: str,
        port: int,
        seeds: list[str],
        persistent_peers: list[str],
        limits: Limits | None = None,
        max_peers: int = 20,
        *,
        allow: Collection[str] | None = None,
        pex: bool = True,
        advertise: str | None = None,
        rng: random.Random | None = None,
    ) -> None:
        if not CHAIN_ID_RE.fullmatch(chain_id):
            raise ValueError(f"chain_id: {chain_id!r} is not a chain id")
        if not HEX64_RE.fullmatch(genesis_hash):
            raise ValueError("genesis_hash: 64 lower-case hex digits")
        if not 0 <= port <= 65535:
            raise ValueError("port: 0 to 65535")
        if max_peers < 1:
            raise ValueError("max_peers: at least 1")
        for item in allow or ():
            if not ADDRESS_RE.fullmatch(item):
                raise ValueError(f"allow: {item!r} is not a node address")
        if advertise is not None:
            parse_listen(advertise, "advertise")
        self.key = key
        self.chain_id = chain_id
        self.genesis_hash = genesis_hash
        self.host = host
        self.limits = limits if limits is not None else Limits()
        self.max_peers = max_peers
        self._port = port
        self._allow = frozenset(allow) if allow is not None else None
        self._pex = pex
        self._advertise = advertise
        self._rng = rng if rng is not None else random.Random()  # noqa: S311 - jitter, not keys
        self._book: dict[str, _Entry] = {}
        for i, text in enumerate(seeds):
            address = parse_address(text, f"seeds[{i}]")
            self._book[address.hostport] = _Entry(address, seed=True)
        for i, text in enumerate(persistent_peers):
            address = parse_address(text, f"persistent_peers[{i}]")
            self._book[address.hostport] = _Entry(address, persistent=True)
        self._persistent_ids = {
            e.address.id for e in self._book.values() if e.persistent and e.address.id
        }
        self._handlers: dict[str, Handler] = {}
        self._request_handlers: dict[str, RequestHandler] = {PEX_CHANNEL: self._answer_pex}
        self._on_connect: list[ConnectHandler] = []
        self._on_disconnect: list[DisconnectHandler] = []
        self._peers: dict[str, _Peer] = {}
        self._dialling: set[str] = set()
        self._seen = SeenSet(self.limits.dedup_entries)
        self._disconnects: deque[Disconnect] = deque(maxlen=MAX_DISCONNECT_RECORDS)
        self._tasks: set[asyncio.Task[Any]] = set()
        self._inbound: set[asyncio.Task[Any]] = set()
        self._peer_tasks: set[asyncio.Task[Any]] = set()
        self._counter = 0
        self._next_pex = 0.0
        self._stopping = False
        self._started = False
        self._runner: web.AppRunner | None = None
        self._session: aiohttp.ClientSession | None = None
        self._identity: Identity | None = None

    # -- public interface ----------------------------------------------------------

    @property
    def address(self) -> str:
        """This node's peer id (its node address)."""
        return self.key.address

    @property
    def listen_port(self) -> int:
        """The port the P2P server listens on (the real one when started with port 0)."""
        return self._port

    @property
    def listen_address(self) -> str:
        """``id@host:port`` others can dial (as advertised in the handshake)."""
        identity = self._require_identity()
        return f"{self.address}@{identity.listen}"

    def on(self, channel: str, handler: Handler) -> None:
        """Call ``handler(peer_id, payload)`` for every message on ``channel``."""
        self._check_channel(channel)
        if channel in self._handlers:
            raise ValueError(f"channel {channel!r} has a handler already")
        self._handlers[channel] = handler

    def on_request(self, channel: str, handler: RequestHandler) -> None:
        """Answer requests on ``channel`` with ``await handler(peer_id, payload)``."""
        self._check_channel(channel)
        if channel in self._request_handlers:
            raise ValueError(f"channel {channel!r} has a request handler already")
        self._request_handlers[channel] = handler

    def on_connect(self, handler: ConnectHandler) -> None:
        """Call ``handler(peer_id)`` when a peer becomes connected."""
        self._on_connect.append(handler)

    def on_disconnect(self, handler: DisconnectHandler) -> None:
        """Call ``handler(peer_id, reason)`` when a peer's last connection ends."""
        self._on_disconnect.append(handler)

    def peers(self) -> list[PeerInfo]:
        """The connected peers."""
        return [peer.info() for peer in self._peers.values() if not peer.closing]

    def addresses(self) -> list[AddressInfo]:
        """The address book: seeds, persistent peers and learned addresses."""
        return [
            AddressInfo(
                address=str(entry.address),
                peer_id=entry.known_id,
                persistent=entry.persistent,
                seed=entry.seed,
                failures=entry.failures,
                last_error=entry.last_error,
                connected=self._connected(entry),
                attempts=tuple(entry.attempts),
            )
            for entry in self._book.values()
            if not entry.is_self
        ]

    def recent_disconnects(self) -> list[Disconnect]:
        """The last 200 ended connections and refused handshakes, oldest first."""
        return list(self._disconnects)

    async def broadcast(self, channel: str, payload: bytes, exclude: str | None = None) -> int:
        """Queue ``payload`` for every connected peer but ``exclude``; how many got it."""
        self._check_outgoing(channel, payload)
        if channel in self.limits.gossip_channels:
            self._seen.add(gossip_id(channel, payload))
        return self._fanout(channel, payload, exclude)

    async def send(self, peer_id: str, channel: str, payload: bytes) -> bool:
        """Queue ``payload`` for one peer; False if it is not connected or its queue is full."""
        self._check_outgoing(channel, payload)
        peer = self._peers.get(peer_id)
        if peer is None or peer.closing:
            return False
        if channel in self.limits.gossip_channels:
            self._seen.add(gossip_id(channel, payload))
        self._counter += 1
        return self._enqueue(peer, encode_envelope(Kind.MESSAGE, channel, self._counter, payload))

    async def request(
        self,
        peer_id: str,
        channel: str,
        payload: bytes,
        timeout: float,  # noqa: ASYNC109
    ) -> bytes:
        """Ask one peer and wait for its answer.

        Raises :class:`PeerUnavailableError`, :class:`RequestTimeoutError` or
        :class:`RemoteError` (the peer had no handler or its handler failed).
        """
        self._check_outgoing(channel, payload)
        peer = self._peers.get(peer_id)
        if peer is None or peer.closing:
            raise PeerUnavailableError(f"{peer_id} is not connected")
        ident = peer.next_request
        peer.next_request += 1
        future: asyncio.Future[Envelope] = asyncio.get_running_loop().create_future()
        peer.pending[ident] = future
        try:
            if not self._enqueue(peer, encode_envelope(Kind.REQUEST, channel, ident, payload)):
                raise PeerUnavailableError(f"{peer_id}: the send queue is full")
            try:
                async with asyncio.timeout(timeout):
                    answer = await future
            except TimeoutError:
                raise RequestTimeoutError(
                    f"no answer from {peer_id} on {channel!r} within {timeout:g} s"
                ) from None
        finally:
            peer.pending.pop(ident, None)
        if answer.kind is Kind.ERROR:
            raise RemoteError(answer.payload.decode("utf-8"))
        return answer.payload

    async def start(self) -> None:
        """Listen, then start dialling seeds and persistent peers."""
        if self._started:
            raise RuntimeError("the network is started already")
        self._started = True
        app = web.Application()
        app.router.add_get(PATH, self._accept)
        self._runner = web.AppRunner(
            app, access_log=None, shutdown_timeout=self.limits.close_timeout
        )
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self._port)
        try:
            await site.start()
        except OSError:
            await self._runner.cleanup()
            self._runner = None
            raise
        self._port = int(self._runner.addresses[0][1])
        if self._advertise is not None:
            listen = self._advertise
        elif self.host in ("", "0.0.0.0", "::"):  # noqa: S104 - deciding what to advertise
            listen = f":{self._port}"
        else:
            listen = PeerAddress(self.host, self._port).hostport
        self._identity = Identity(self.key, self.chain_id, self.genesis_hash, listen)
        self._session = aiohttp.ClientSession()
        for entry in self._book.values():
            if entry.persistent:
                self._spawn(self._keep(entry))
        self._spawn(self._maintain())
        LOG.info("P2P node %s listening on %s:%d", self.address, self.host, self._port)

    async def stop(self) -> None:
        """Close every connection and stop listening, within about ``limits.stop_timeout``."""
        if self._stopping or not self._started:
            return
        self._stopping = True
        background = [t for t in self._tasks if not t.done()]
        for task in background:
            task.cancel()
        await asyncio.gather(*background, return_exceptions=True)
        peers = list(self._peers.values())
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(self.limits.stop_timeout):
                await asyncio.gather(
                    *(self._close(p, "shutting_down", WSCloseCode.GOING_AWAY) for p in peers)
                )
                await asyncio.gather(*(p.closed.wait() for p in peers))
        leftovers = [t for t in (*self._peer_tasks, *self._inbound) if not t.done()]
        for task in leftovers:
            task.cancel()
        await asyncio.gather(*leftovers, return_exceptions=True)
        # Disconnect handlers started by the closes above get a bounded chance to run.
        late = [t for t in self._tasks if not t.done()]
        if late:
            _, pending = await asyncio.wait(late, timeout=self.limits.close_timeout)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
        if self._runner is not None:
            await self._runner.cleanup()
        if self._session is not None:
            await self._session.close()
        LOG.info("P2P node %s stopped", self.address)

    # -- connections ---------------------------------------------------------------

    def _require_identity(self) -> Identity:
        if self._identity is None:
            raise RuntimeError("start the network first")
        return self._identity

    def _hints(self, exclude: str | None) -> list[PeerAddress]:
        """Addresses known to work: connected peers' listen addresses, then past successes."""
        found: dict[str, PeerAddress] = {}
        for peer in self._peers.values():
            if peer.listen is not None and peer.id != exclude and not peer.closing:
                found[peer.listen.hostport] = peer.listen
        for entry in self._book.values():
            if entry.connected_once and not entry.is_self and entry.known_id != exclude:
                found.setdefault(entry.address.hostport, entry.address.with_id(entry.known_id))
        hints = list(found.values())
        self._rng.shuffle(hints)
        return hints

    def _vet(self, hello: Hello, expected: str | None, inbound: bool) -> Refuse | None:
        peer_id = hello.peer_id
        if expected is not None and peer_id != expected:
            return Refuse("unexpected_peer", f"expected node {expected}, this is {peer_id}")
        if self._allow is not None and peer_id not in self._allow:
            return Refuse("not_allowed", f"node {peer_id} is not on this network's allow-list")
        if self._stopping:
            return Refuse("shutting_down", "the node is stopping")
        if (
            inbound
            and len(self._peers) >= self.max_peers
            and peer_id not in self._peers
            and peer_id not in self._persistent_ids
        ):
            hints = tuple(str(a) for a in self._hints(peer_id)[:MAX_REFUSE_PEERS])
            return Refuse(
                "too_many_peers", f"the node has {len(self._peers)} peers, its limit", hints
            )
        return None

    async def _accept(self, request: web.Request) -> web.StreamResponse:
        """The ``/p2p`` route: an inbound peer."""
        ws = web.WebSocketResponse(
            max_msg_size=self.limits.max_frame,
            timeout=self.limits.close_timeout,
            autoping=True,
            compress=False,
        )
        if self._stopping or not ws.can_prepare(request).ok:
            return web.json_response(
                {"error": {"code": "not_websocket", "message": "P2P peers speak WebSocket here"}},
                status=400 if not self._stopping else 503,
            )
        await ws.prepare(request)
        task = asyncio.current_task()
        assert task is not None
        self._inbound.add(task)
        peername = request.transport.get_extra_info("peername") if request.transport else None
        remote_host = str(peername[0]) if peername else "unknown"
        remote = PeerAddress(remote_host, int(peername[1])).hostport if peername else "unknown"
        try:
            try:
                hello = await handshake(
                    ws,
                    self._require_identity(),
                    lambda h: self._vet(h, None, inbound=True),
                    self.limits.handshake_timeout,
                )
            except HandshakeError as err:
                self._record(remote, remote, str(err), "remote" if err.by_peer else "local")
                return ws
            listen = parse_listen(hello.listen)
            dialable = (
                PeerAddress(listen[0] or remote_host, listen[1], hello.peer_id)
                if listen is not None
                else None
            )
            peer = _Peer(
                ws,
                hello=hello,
                direction="inbound",
                address=remote,
                listen=dialable,
                limits=self.limits,
                now=self._now(),
            )
            if self._register(peer):
                await self._run_peer(peer)
            else:
                await self._close(peer, "duplicate: a connection to this node exists")
                self._record(peer.id, remote, peer.close_reason, "local")
        finally:
            self._inbound.discard(task)
            if not ws.closed:
                await self._shut(ws, message=b"shutting_down")
        return ws

    async def _dial(self, entry: _Entry) -> _Peer | None:
        """Connect to ``entry``'s address; the new peer, or None if it lost to a duplicate."""
        assert self._session is not None
        address = entry.address
        entry.attempts.append(self._now())
        self._dialling.add(address.hostport)
        ws: aiohttp.ClientWebSocketResponse | None = None
        try:
            try:
                async with asyncio.timeout(self.limits.dial_timeout):
                    ws = await self._session.ws_connect(
                        address.url,
                        max_msg_size=self.limits.max_frame,
                        timeout=aiohttp.ClientWSTimeout(ws_close=self.limits.close_timeout),
                        autoping=True,
                    )
            except (aiohttp.ClientError, OSError, TimeoutError) as err:
                raise DialError(
                    f"cannot connect to {address.hostport}: {str(err) or type(err).__name__}"
                ) from None
            try:
                hello = await handshake(
                    ws,
                    self._require_identity(),
                    lambda h: self._vet(h, address.id, inbound=False),
                    self.limits.handshake_timeout,
                )
            except HandshakeError as err:
                by: Literal["local", "remote"] = "remote" if err.by_peer else "local"
                self._record(str(address), address.hostport, str(err), by)
                raise
            entry.peer_id = hello.peer_id
            entry.connected_once = True
            peer = _Peer(
                ws,
                hello=hello,
                direction="outbound",
                address=address.hostport,
                listen=address.with_id(hello.peer_id),
                limits=self.limits,
                now=self._now(),
            )
            if not self._register(peer):
                await self._close(peer, "duplicate: a connection to this node exists")
                self._record(peer.id, peer.address, peer.close_reason, "local")
                return None
            ws = None  # the peer task owns it now
            task = asyncio.create_task(self._run_peer(peer))
            self._peer_tasks.add(task)
            task.add_done_callback(self._peer_tasks.discard)
            return peer
        finally:
            self._dialling.discard(address.hostport)
            if ws is not None and not ws.closed:
                await self._shut(ws)

    def _keeps_new(self, new: _Peer, old: _Peer) -> bool:
        """Which of two connections to one peer survives: the one dialled by the lower address."""
        lower = min(self.address, new.id)

        def dialler(peer: _Peer) -> str:
            return self.address if peer.direction == "outbound" else peer.id

        new_ok, old_ok = dialler(new) == lower, dialler(old) == lower
        if new_ok != old_ok:
            return new_ok
        return True  # same dialler twice: the old connection is stale

    def _register(self, peer: _Peer) -> bool:
        """Make ``peer`` the connection to its node; False if an existing one is kept."""
        old = self._peers.get(peer.id)
        if old is not None and not old.closing and not self._keeps_new(peer, old):
            return False
        self._peers[peer.id] = peer
        if old is not None:
            # Hand over what was not sent yet, then retire the old connection.
            peer.queue.extend(old.queue)
            peer.queued_bytes += old.queued_bytes
            old.queue.clear()
            old.queued_bytes = 0
            self._spawn(self._close(old, "duplicate: replaced by the connection both sides keep"))
        else:
            for handler in self._on_connect:
                self._spawn(handler(peer.id))
            LOG.info("peer %s connected (%s, %s)", peer.id, peer.direction, peer.address)
        return True

    async def _run_peer(self, peer: _Peer) -> None:
        """Serve one connection until it ends, then clean up after it."""
        tasks = [asyncio.create_task(work) for work in (self._write(peer), self._ping(peer))]
        dispatcher = asyncio.create_task(self._dispatch(peer))
        for task in (*tasks, dispatcher):
            peer.tasks.add(task)
            task.add_done_callback(peer.tasks.discard)
        try:
            await self._read(peer)
        except Exception:
            LOG.exception("peer %s: unexpected error", peer.id)
            await self._close(peer, "internal_error", WSCloseCode.INTERNAL_ERROR)
        finally:
            peer.closing = True
            # What arrived before the end is still handed over, for a bounded time.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.limits.close_timeout):
                    if not dispatcher.done():
                        await peer.inbox.join()
            for task in list(peer.tasks):
                task.cancel()
            await asyncio.gather(*peer.tasks, return_exceptions=True)
            await self._shut(peer.ws)
            for future in peer.pending.values():
                if not future.done():
                    future.set_exception(PeerUnavailableError(f"disconnected: {peer.close_reason}"))
            peer.closed.set()
            self._record(peer.id, peer.address, peer.close_reason, peer.closed_by)
            if self._peers.get(peer.id) is peer:
                del self._peers[peer.id]
                LOG.info("peer %s disconnected: %s", peer.id, peer.close_reason)
                for handler in self._on_disconnect:
                    self._spawn(handler(peer.id, peer.close_reason))

    async def _close(
        self, peer: _Peer, reason: str, code: int = WSCloseCode.POLICY_VIOLATION
    ) -> None:
        """End a connection, telling the peer why."""
        if peer.closing:
            return
        peer.closing = True
        peer.close_reason = reason
        peer.closed_by = "local"
        await self._shut(peer.ws, code, close_message(reason))

    async def _shut(
        self, ws: Socket, code: int = WSCloseCode.GOING_AWAY, message: bytes = b""
    ) -> None:
        """Close ``ws`` politely if that works within ``close_timeout``, else cut it."""
        try:
            async with asyncio.timeout(self.limits.close_timeout):
                await ws.close(code=code, message=message)
        except TimeoutError:
            _abort(ws)
        except Exception:
            LOG.debug("closing a connection failed", exc_info=True)
            _abort(ws)

    def _record(self, peer: str, address: str, reason: str, by: Literal["local", "remote"]) -> None:
        self._disconnects.append(Disconnect(peer, address, reason, by, time.time()))

    # -- reading ---------------------------------------------------------------------

    async def _read(self, peer: _Peer) -> None:
        while True:
            message = await peer.ws.receive()
            if message.type is WSMsgType.BINARY:
                if not await self._incoming(peer, message.data):
                    return
            elif message.type is WSMsgType.TEXT:
                await self._close(peer, "malformed: text frames are not used")
                return
            elif message.type is WSMsgType.ERROR:
                if not peer.closing:
                    peer.closing = True
                    peer.closed_by = "local"
                    error = message.data
                    if getattr(error, "code", None) == WSCloseCode.MESSAGE_TOO_BIG:
                        peer.close_reason = f"too_large: a frame over {self.limits.max_frame} bytes"
                    else:
                        peer.close_reason = f"protocol_error: {error}"
                return
            else:  # CLOSE, CLOSING, CLOSED
                if not peer.closing:
                    peer.closing = True
                    peer.closed_by = "remote"
                    code = message.data if message.type is WSMsgType.CLOSE else None
                    said = message.extra or "no reason given"
                    peer.close_reason = f"closed by the peer ({code}): {said}"
                return

    async def _incoming(self, peer: _Peer, frame: bytes) -> bool:
        """Handle one frame; False when the connection must end."""
        now = self._now()
        peer.bytes_in += len(frame)
        peer.messages_in += 1
        if not (peer.messages.take(1, now) and peer.bytes.take(len(frame), now)):
            peer.violations.append(now)
            while peer.violations and peer.violations[0] < now - self.limits.violation_window:
                peer.violations.popleft()
            if len(peer.violations) > self.limits.max_violations:
                await self._close(
                    peer,
                    f"rate_limited: over {self.limits.messages_per_second:g} messages/s or "
                    f"{self.limits.bytes_per_second:g} bytes/s, "
                    f"{len(peer.violations)} times in {self.limits.violation_window:g} s",
                )
                return False
            return True  # dropped unread
        try:
            envelope = decode_envelope(frame, self.limits.max_bytes)
        except TooLargeError as err:
            await self._close(peer, f"too_large: {err}", WSCloseCode.MESSAGE_TOO_BIG)
            return False
        except WireError as err:
            await self._close(peer, f"malformed: {err}")
            return False
        kind = envelope.kind
        if kind is Kind.MESSAGE:
            await peer.inbox.put(envelope)
        elif kind is Kind.REQUEST:
            if peer.inflight >= self.limits.max_inflight_requests:
                self._enqueue(
                    peer,
                    encode_envelope(Kind.ERROR, envelope.channel, envelope.id, b"busy"),
                )
            else:
                peer.inflight += 1
                task = asyncio.create_task(self._answer(peer, envelope))
                peer.tasks.add(task)
                task.add_done_callback(peer.tasks.discard)
        elif kind in (Kind.RESPONSE, Kind.ERROR):
            future = peer.pending.get(envelope.id)
            if future is not None and not future.done():
                future.set_result(envelope)
        elif kind is Kind.PING:
            self._enqueue(peer, encode_envelope(Kind.PONG, "", envelope.id))
        elif envelope.id == peer.ping_nonce:  # PONG
            peer.rtt = now - peer.ping_sent
            peer.ping_nonce = None
        return True

    async def _dispatch(self, peer: _Peer) -> None:
        """Hand messages to their channel's handler, in arrival order; relay gossip."""
        while True:
            envelope = await peer.inbox.get()
            try:
                if not await self._deliver(peer, envelope):
                    return
            finally:
                peer.inbox.task_done()

    async def _deliver(self, peer: _Peer, envelope: Envelope) -> bool:
        """One message to its handler; False if the handler accused the peer."""
        channel, payload = envelope.channel, envelope.payload
        gossip = channel in self.limits.gossip_channels
        if gossip and not self._seen.add(gossip_id(channel, payload)):
            return True
        handler = self._handlers.get(channel)
        if handler is None:
            return True
        try:
            await handler(peer.id, payload)
        except Misbehaviour as err:
            await self._close(peer, f"misbehaviour: {err}")
            return False
        except Exception:
            LOG.exception("handler of channel %r failed on a message from %s", channel, peer.id)
            return True
        if gossip:
            self._fanout(channel, payload, peer.id)
        return True

    async def _answer(self, peer: _Peer, request: Envelope) -> None:
        channel = request.channel
        try:
            handler = self._request_handlers.get(channel)
            if handler is None:
                reply = Kind.ERROR, f"no handler for requests on {channel!r}".encode()
            else:
                try:
                    reply = Kind.RESPONSE, await handler(peer.id, request.payload)
                except Misbehaviour as err:
                    await self._close(peer, f"misbehaviour: {err}")
                    return
                except Exception:
                    LOG.exception("request handler of %r failed for %s", channel, peer.id)
                    reply = Kind.ERROR, b"the request handler failed"
                if len(reply[1]) > self.limits.max_bytes(channel):
                    LOG.error("an answer of %d bytes on %r is too large", len(reply[1]), channel)
                    reply = Kind.ERROR, b"the answer is larger than the channel allows"
            self._enqueue(peer, encode_envelope(reply[0], channel, request.id, reply[1]))
        finally:
            peer.inflight -= 1

    # -- writing ---------------------------------------------------------------------

    def _fanout(self, channel: str, payload: bytes, exclude: str | None) -> int:
        self._counter += 1
        frame = encode_envelope(Kind.MESSAGE, channel, self._counter, payload)
        return sum(
            1
            for peer in list(self._peers.values())
            if peer.id != exclude and self._enqueue(peer, frame)
        )

    def _enqueue(self, peer: _Peer, frame: bytes) -> bool:
        if peer.closing:
            return False
        limits = self.limits
        if (
            len(peer.queue) >= limits.send_queue_messages
            or peer.queued_bytes + len(frame) > limits.send_queue_bytes
        ):
            peer.dropped += 1
            if limits.slow_peer == "disconnect":
                self._spawn(
                    self._close(
                        peer, "slow_peer: the send queue is full", WSCloseCode.TRY_AGAIN_LATER
                    )
                )
            return False
        peer.queue.append(frame)
        peer.queued_bytes += len(frame)
        peer.wake.set()
        return True

    async def _write(self, peer: _Peer) -> None:
        try:
            while True:
                while peer.queue:
                    frame = peer.queue.popleft()
                    peer.queued_bytes -= len(frame)
                    await peer.ws.send_bytes(frame)
                    peer.bytes_out += len(frame)
                    peer.messages_out += 1
                peer.wake.clear()
                await peer.wake.wait()
        except (ConnectionError, RuntimeError, aiohttp.ClientError) as err:
            await self._close(peer, f"send_failed: {err}")

    async def _ping(self, peer: _Peer) -> None:
        limits = self.limits
        while True:
            now = self._now()
            if peer.ping_nonce is None:
                peer.ping_nonce = self._rng.getrandbits(64)
                peer.ping_sent = now
                self._enqueue(peer, encode_envelope(Kind.PING, "", peer.ping_nonce))
            elif now - peer.ping_sent >= limits.ping_timeout:
                await self._close(peer, f"ping_timeout: no pong within {limits.ping_timeout:g} s")
                return
            await asyncio.sleep(limits.ping_interval)

    # -- discovery -------------------------------------------------------------------

    def _connected(self, entry: _Entry) -> bool:
        known = entry.known_id
        return known is not None and known in self._peers

    def _backoff(self, failures: int) -> float:
        limits = self.limits
        delay = min(limits.reconnect_max, limits.reconnect_base * (1 << min(failures, 30)))
        return delay * (0.5 + self._rng.random() / 2)

    def _note_failure(self, entry: _Entry, err: Exception) -> None:
        entry.failures += 1
        entry.last_error = str(err)
        if isinstance(err, HandshakeError):
            if err.reason == "self" and not err.by_peer:
                entry.is_self = True
            if err.peers:
                self._learn([parse_address(p) for p in err.peers])
        entry.next_attempt = self._now() + self._backoff(entry.failures)

    async def _keep(self, entry: _Entry) -> None:
        """Keep a persistent peer connected, for as long as the network runs."""
        while True:
            known = entry.known_id
            current = self._peers.get(known) if known else None
            if current is not None:
                await current.closed.wait()
            else:
                try:
                    peer = await self._dial(entry)
                except (DialError, HandshakeError) as err:
                    self._note_failure(entry, err)
                    if isinstance(err, HandshakeError) and entry.is_self:
                        LOG.warning("persistent peer %s is this node itself", entry.address)
                        return
                    LOG.info("persistent peer %s: %s", entry.address, err)
                else:
                    if peer is not None:
                        entry.last_error = None
                        if self._pex:
                            self._spawn(self._exchange(peer.id))
                        await peer.closed.wait()
                        entry.last_error = f"disconnected: {peer.close_reason}"
                        stable = self._now() - peer.connected_at >= self.limits.stable_after
                        entry.failures = 0 if stable else entry.failures + 1
            await asyncio.sleep(self._backoff(entry.failures))

    async def _maintain(self) -> None:
        """Dial book entries while below ``max_peers``; ask peers for addresses."""
        while True:
            if self._pex:
                self._discover()
            await asyncio.sleep(self.limits.dial_interval)

    def _discover(self) -> None:
        now = self._now()
        room = self.max_peers - len(self._peers) - len(self._dialling)
        candidates = [
            entry
            for entry in self._book.values()
            if not entry.persistent
            and not entry.is_self
            and entry.next_attempt <= now
            and entry.address.hostport not in self._dialling
            and not self._connected(entry)
        ]
        candidates.sort(key=lambda e: (not e.seed, e.failures))
        for entry in candidates[: max(room, 0)]:
            self._spawn(self._dial_entry(entry))
        if self._peers and now >= self._next_pex and len(self._peers) < self.max_peers:
            self._next_pex = now + self.limits.pex_interval
            self._spawn(self._exchange(self._rng.choice(sorted(self._peers))))

    async def _dial_entry(self, entry: _Entry) -> None:
        try:
            peer = await self._dial(entry)
        except (DialError, HandshakeError) as err:
            self._note_failure(entry, err)
            permanent = isinstance(err, HandshakeError) and err.reason in PERMANENT_REFUSALS
            too_many = entry.failures >= self.limits.max_dial_failures and not entry.seed
            if (permanent or too_many) and not entry.is_self and not entry.seed:
                self._book.pop(entry.address.hostport, None)
            return
        entry.failures = 0
        entry.last_error = None
        if peer is not None:
            await self._exchange(peer.id)

    async def _exchange(self, peer_id: str) -> None:
        """Ask ``peer_id`` for addresses and remember them."""
        try:
            answer = await self.request(peer_id, PEX_CHANNEL, b"", self.limits.pex_timeout)
        except P2PError as err:
            LOG.debug("peer exchange with %s: %s", peer_id, err)
            return
        try:
            addresses = decode_pex(answer)
        except WireError as err:
            peer = self._peers.get(peer_id)
            if peer is not None:
                await self._close(peer, f"malformed: {err}")
            return
        self._learn(addresses)

    async def _answer_pex(self, peer_id: str, payload: bytes) -> bytes:
        if payload:
            raise Misbehaviour("a peer-exchange request has no payload")
        return encode_pex(self._hints(peer_id))

    def _learn(self, addresses: list[PeerAddress]) -> None:
        own = self._require_identity().listen
        for address in addresses:
            if address.id == self.address or address.hostport == own:
                continue
            entry = self._book.get(address.hostport)
            if entry is not None:
                if entry.peer_id is None and not entry.persistent:
                    entry.peer_id = address.id
                continue
            if len(self._book) < self.limits.max_addresses:
                self._book[address.hostport] = _Entry(address.with_id(None), peer_id=address.id)

    # -- helpers ---------------------------------------------------------------------

    def _now(self) -> float:
        return asyncio.get_running_loop().time()

    def _check_channel(self, channel: str) -> None:
        if not CHANNEL_RE.fullmatch(channel):
            raise ValueError(f"{channel!r} is not a channel name ([a-z][a-z0-9_-]*, 1 to 32)")
        if channel == PEX_CHANNEL:
            raise ValueError("channel 'pex' is the network's own")

    def _check_outgoing(self, channel: str, payload: bytes) -> None:
        if not CHANNEL_RE.fullmatch(channel):
            raise ValueError(f"{channel!r} is not a channel name ([a-z][a-z0-9_-]*, 1 to 32)")
        limit = self.limits.max_bytes(channel)
        if len(payload) > limit:
            raise ValueError(
                f"a payload of {len(payload)} bytes; channel {channel!r} allows {limit}"
            )
        if not self._started or self._stopping:
            raise RuntimeError("the network is not running")

    def _spawn(self, work: Awaitable[Any]) -> asyncio.Task[Any]:
        if not asyncio.iscoroutine(work):

            async def wait(awaitable: Awaitable[Any]) -> Any:  # noqa: ANN401 - its result
                return await awaitable

            work = wait(work)
        task = asyncio.create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._finished)
        return task

    def _finished(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            LOG.error("P2P task failed", exc_info=task.exception())
