"""A WebSocket proxy that misbehaves on purpose, for fault tests.

A :class:`FaultProxy` listens on a loopback port and forwards every WebSocket
connection it accepts to one target (``ws://target/<same path>``), message by
message in both directions. A node that lists the proxy's address instead of
its peer's talks to the peer through it, so a test builds any topology: a
proxy per directed link, or one in front of each node.

Each direction has its own faults, changeable at any time:

``forward``  messages from the side that connected to the proxy, to the target;
``backward`` messages from the target back.

==============  ======================================================================
``partition``   ``null``; ``"drop"``: every message vanishes, connections stay open;
                ``"close"``: open connections are closed and new ones refused (503)
``drop``        probability that a message vanishes
``delay``       seconds every message waits (order kept)
``jitter``      up to this many more seconds, uniformly (order no longer kept)
``duplicate``   probability that a message is delivered twice
``reorder``     window: messages wait in a buffer of this size and leave it in random
                order; a partly filled buffer is flushed after ``reorder_hold`` seconds
==============  ======================================================================

Random choices come from one ``random.Random`` per direction seeded with the
proxy's seed, so the same messages in the same order meet the same fate.

Control: in process with :meth:`FaultProxy.set` and :meth:`FaultProxy.heal`;
from anywhere over HTTP on the proxy's own port::

    GET  /_proxy        state: target, faults and counters per direction
    POST /_proxy        {"direction": "both"|"forward"|"backward", "delay": 0.2, ...}
    POST /_proxy/heal   every fault off

:class:`RemoteProxy` is the client. Run proxies in their own process with
``python -m ledger_core.p2p.faultproxy --link 127.0.0.1:7001=127.0.0.1:6001``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import heapq
import json
import logging
import random
import signal
import sys
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, fields, replace
from typing import Any, Final, Literal

import aiohttp
from aiohttp import WSCloseCode, WSMessage, WSMsgType, web

from ledger_core.p2p.wire import PeerAddress, WireError, parse_address


def error(status: int, code: str, message: str, field: str | None = None) -> web.Response:
    """A refusal in the node API's error shape (``{"error": {"code", "message", "field"}}``)."""
    body: dict[str, str] = {"code": code, "message": message}
    if field is not None:
        body["field"] = field
    return web.json_response({"error": body}, status=status)


LOG: Final = logging.getLogger(__name__)
CONTROL_PATH: Final = "/_proxy"
DIRECTIONS: Final = ("forward", "backward")
PARTITIONS: Final = ("drop", "close")
MAX_SECONDS: Final = 60.0
MAX_CONTROL_BYTES: Final = 4096
CLOSE_TIMEOUT: Final = 1.0
DRAIN_TIMEOUT: Final = 2.0

type Direction = Literal["forward", "backward"]
type _Socket = web.WebSocketResponse | aiohttp.ClientWebSocketResponse


class FaultError(ValueError):
    """A fault setting that makes no sense; ``field`` names it."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


@dataclass(frozen=True, slots=True)
class Faults:
    """The faults of one direction."""

    partition: str | None = None
    drop: float = 0.0
    delay: float = 0.0
    jitter: float = 0.0
    duplicate: float = 0.0
    reorder: int = 0
    reorder_hold: float = 0.05

    def changed(self, changes: Mapping[str, object]) -> Faults:
        """These faults with ``changes`` applied; FaultError for anything invalid."""
        names = {f.name for f in fields(self)}
        values: dict[str, Any] = {}
        for name, value in changes.items():
            if name not in names:
                raise FaultError(name, f"unknown fault; known: {', '.join(sorted(names))}")
            values[name] = _check(name, value)
        return replace(self, **values)


def _number(name: str, value: object, high: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise FaultError(name, "must be a number")
    if not 0 <= value <= high:
        raise FaultError(name, f"must be between 0 and {high:g}")
    return float(value)


def _check(name: str, value: object) -> object:
    if name == "partition":
        if value is not None and value not in PARTITIONS:
            raise FaultError(name, 'must be null, "drop" or "close"')
        return value
    if name in ("drop", "duplicate"):
        return _number(name, value, 1.0)
    if name == "reorder":
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 1000:
            raise FaultError(name, "must be an integer window of 0 to 1000 messages")
        return value
    return _number(name, value, MAX_SECONDS)


@dataclass(slots=True)
class Stats:
    """What happened to the messages of one direction."""

    received: int = 0
    forwarded: int = 0
    dropped: int = 0
    duplicated: int = 0


class _Direction:
    """Faults, randomness and counters shared by every connection in one direction."""

    def __init__(self, name: Direction, seed: int) -> None:
        self.faults = Faults()
        self.rng = random.Random(f"{seed}/{name}")  # noqa: S311 - reproducible faults
        self.stats = Stats()


class _Pipe:
    """One direction of one connection: fault decisions, reorder buffer, delay queue."""

    def __init__(self, direction: _Direction, destination: _Socket) -> None:
        self.direction = direction
        self.destination = destination
        self.loop = asyncio.get_running_loop()
        self.heap: list[tuple[float, int, WSMessage]] = []
        self.counter = 0
        self.buffer: list[WSMessage] = []
        self.flush_handle: asyncio.TimerHandle | None = None
        self.wake = asyncio.Event()
        self.emptied = asyncio.Event()
        self.sender = asyncio.create_task(self._send())

    def feed(self, message: WSMessage) -> None:
        """Decide what becomes of one message from the source."""
        faults, rng, stats = self.direction.faults, self.direction.rng, self.direction.stats
        stats.received += 1
        if faults.partition is not None or (faults.drop and rng.random() < faults.drop):
            stats.dropped += 1
            return
        copies = 1
        if faults.duplicate and rng.random() < faults.duplicate:
            copies = 2
            stats.duplicated += 1
        for _ in range(copies):
            if faults.reorder > 1:
                self.buffer.append(message)
                if len(self.buffer) >= faults.reorder:
                    self._schedule(self.buffer.pop(rng.randrange(len(self.buffer))))
                if self.buffer and self.flush_handle is None:
                    self.flush_handle = self.loop.call_later(faults.reorder_hold, self.flush)
            else:
                self._schedule(message)

    def flush(self) -> None:
        """Let everything in the reorder buffer go, in random order."""
        self.flush_handle = None
        self.direction.rng.shuffle(self.buffer)
        for message in self.buffer:
            self._schedule(message)
        self.buffer.clear()

    def discard(self) -> None:
        """Forget everything in flight (a partition that drops)."""
        self.direction.stats.dropped += len(self.buffer) + len(self.heap)
        self.buffer.clear()
        self.heap.clear()

    @property
    def idle(self) -> bool:
        return not self.heap and not self.buffer

    def _schedule(self, message: WSMessage) -> None:
        faults = self.direction.faults
        due = self.loop.time() + faults.delay
        if faults.jitter:
            due += self.direction.rng.uniform(0, faults.jitter)
        self.counter += 1
        heapq.heappush(self.heap, (due, self.counter, message))
        self.emptied.clear()
        self.wake.set()

    async def _send(self) -> None:
        while True:
            if not self.heap:
                self.wake.clear()
                await self.wake.wait()
                continue
            wait = self.heap[0][0] - self.loop.time()
            if wait > 0:
                self.wake.clear()
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(wait):
                        await self.wake.wait()
                continue
            _, _, message = heapq.heappop(self.heap)
            if not self.heap:
                self.emptied.set()
            try:
                if message.type is WSMsgType.TEXT:
                    await self.destination.send_str(message.data)
                else:
                    await self.destination.send_bytes(message.data)
            except (ConnectionError, RuntimeError, aiohttp.ClientError):
                return
            self.direction.stats.forwarded += 1

    async def drain(self) -> None:
        """Wait (bounded) until what is in flight has left, then stop sending."""
        if self.flush_handle is not None:
            self.flush_handle.cancel()
            self.flush()
        if self.heap and not self.sender.done():
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(DRAIN_TIMEOUT):
                    await self.emptied.wait()
        self.sender.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self.sender


class _Connection:
    def __init__(
        self, inbound: web.WebSocketResponse, outbound: aiohttp.ClientWebSocketResponse
    ) -> None:
        self.inbound = inbound
        self.outbound = outbound
        self.pipes: dict[Direction, _Pipe] = {}


class FaultProxy:
    """A proxy in front of ``target`` (``host:port``); see the module documentation."""

    def __init__(self, target: str, host: str = "127.0.0.1", port: int = 0, seed: int = 0) -> None:
        self.target: PeerAddress = parse_address(target, "target")
        self.host = host
        self.seed = seed
        self._port = port
        self._directions: dict[Direction, _Direction] = {
            "forward": _Direction("forward", seed),
            "backward": _Direction("backward", seed),
        }
        self._connections: set[_Connection] = set()
        self._handlers: set[asyncio.Task[Any]] = set()
        self._runner: web.AppRunner | None = None
        self._session: aiohttp.ClientSession | None = None

    @property
    def port(self) -> int:
        return self._port

    @property
    def address(self) -> str:
        """``host:port`` to give nodes instead of the target's."""
        return PeerAddress(self.host, self._port).hostport

    @property
    def control_url(self) -> str:
        return f"http://{self.address}{CONTROL_PATH}"

    @property
    def connections(self) -> int:
        """How many connections the proxy carries now."""
        return len(self._connections)

    def faults(self, direction: Direction) -> Faults:
        return self._directions[direction].faults

    def stats(self, direction: Direction) -> Stats:
        return self._directions[direction].stats

    def set(self, direction: str = "both", **changes: object) -> None:
        """Change faults of ``direction`` ("forward", "backward" or "both")."""
        chosen: tuple[Direction, ...]
        if direction == "both":
            chosen = ("forward", "backward")
        elif direction == "forward":
            chosen = ("forward",)
        elif direction == "backward":
            chosen = ("backward",)
        else:
            raise FaultError("direction", 'must be "forward", "backward" or "both"')
        updated = {name: self._directions[name].faults.changed(changes) for name in chosen}
        for name, faults in updated.items():
            self._directions[name].faults = faults
            for connection in self._connections:
                pipe = connection.pipes.get(name)
                if pipe is None:
                    continue
                if faults.partition == "drop":
                    pipe.discard()
                elif faults.reorder <= 1 and pipe.buffer:
                    pipe.flush()
        if any(f.partition == "close" for f in updated.values()):
            for connection in list(self._connections):
                task = asyncio.get_running_loop().create_task(self._close(connection))
                self._handlers.add(task)
                task.add_done_callback(self._handlers.discard)

    def heal(self) -> None:
        """Every fault off, in both directions."""
        for state in self._directions.values():
            state.faults = Faults()

    def state(self) -> dict[str, Any]:
        """Target, faults and counters, as the control endpoint shows them."""
        return {
            "target": self.target.hostport,
            "listen": self.address,
            "seed": self.seed,
            "connections": self.connections,
            **{
                name: {"faults": asdict(state.faults), "stats": asdict(state.stats)}
                for name, state in self._directions.items()
            },
        }

    async def start(self) -> None:
        app = web.Application(client_max_size=MAX_CONTROL_BYTES)
        app.router.add_get(CONTROL_PATH, self._get_state)
        app.router.add_post(CONTROL_PATH, self._post_faults)
        app.router.add_post(CONTROL_PATH + "/heal", self._post_heal)
        app.router.add_get("/{path:.*}", self._relay)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=CLOSE_TIMEOUT)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self._port)
        try:
            await site.start()
        except OSError:
            await self._runner.cleanup()
            self._runner = None
            raise
        self._port = int(self._runner.addresses[0][1])
        self._session = aiohttp.ClientSession()
        LOG.info("fault proxy %s -> %s", self.address, self.target.hostport)

    async def stop(self) -> None:
        for connection in list(self._connections):
            await self._close(connection)
        for task in list(self._handlers):
            task.cancel()
        await asyncio.gather(*self._handlers, return_exceptions=True)
        if self._runner is not None:
            await self._runner.cleanup()
        if self._session is not None:
            await self._session.close()

    # -- relaying ------------------------------------------------------------------

    def _partitioned(self) -> bool:
        return any(state.faults.partition == "close" for state in self._directions.values())

    async def _relay(self, request: web.Request) -> web.StreamResponse:
        inbound = web.WebSocketResponse(
            max_msg_size=0, autoping=True, compress=False, timeout=CLOSE_TIMEOUT
        )
        if not inbound.can_prepare(request).ok:
            return error(400, "not_websocket", "the proxy forwards WebSocket connections only")
        if self._partitioned():
            return error(503, "partitioned", "this link is cut by the fault proxy")
        assert self._session is not None
        try:
            outbound = await self._session.ws_connect(
                f"ws://{self.target.hostport}{request.path_qs}",
                max_msg_size=0,
                timeout=aiohttp.ClientWSTimeout(ws_close=CLOSE_TIMEOUT),
            )
        except (aiohttp.ClientError, OSError) as err:
            return error(502, "unreachable", f"the target {self.target.hostport}: {err}")
        if request.transport is None or request.transport.is_closing():
            # The dialler gave up while the proxy connected onward.
            await outbound.close()
            return error(400, "gone", "the connecting side closed")
        await inbound.prepare(request)
        task = asyncio.current_task()
        assert task is not None
        self._handlers.add(task)
        connection = _Connection(inbound, outbound)
        connection.pipes = {
            "forward": _Pipe(self._directions["forward"], outbound),
            "backward": _Pipe(self._directions["backward"], inbound),
        }
        self._connections.add(connection)
        try:
            pumps = [
                asyncio.create_task(self._pump(inbound, connection.pipes["forward"], outbound)),
                asyncio.create_task(self._pump(outbound, connection.pipes["backward"], inbound)),
            ]
            await asyncio.wait(pumps, return_when=asyncio.FIRST_COMPLETED)
            for pump in pumps:
                pump.cancel()
            await asyncio.gather(*pumps, return_exceptions=True)
        finally:
            await self._close(connection)
            self._handlers.discard(task)
        return inbound

    async def _pump(self, source: _Socket, pipe: _Pipe, destination: _Socket) -> None:
        """Read ``source`` into ``pipe``; pass its close on once what is in flight has left."""
        while True:
            message = await source.receive()
            if message.type in (WSMsgType.BINARY, WSMsgType.TEXT):
                pipe.feed(message)
                continue
            code = message.data if message.type is WSMsgType.CLOSE else WSCloseCode.GOING_AWAY
            extra = (
                (message.extra or "").encode("utf-8") if message.type is WSMsgType.CLOSE else b""
            )
            await pipe.drain()
            with contextlib.suppress(Exception):
                async with asyncio.timeout(CLOSE_TIMEOUT):
                    await destination.close(code=code, message=extra)
            return

    async def _close(self, connection: _Connection) -> None:
        if connection not in self._connections:
            return
        self._connections.discard(connection)
        cut = self._partitioned()
        for pipe in connection.pipes.values():
            if cut:
                pipe.discard()
            await pipe.drain()
        reason = b"partitioned by the fault proxy" if cut else b"closed by the fault proxy"
        for ws in (connection.inbound, connection.outbound):
            with contextlib.suppress(Exception):
                async with asyncio.timeout(CLOSE_TIMEOUT):
                    await ws.close(code=WSCloseCode.GOING_AWAY, message=reason)

    # -- control -------------------------------------------------------------------

    async def _get_state(self, _request: web.Request) -> web.Response:
        return web.json_response(self.state())

    async def _post_faults(self, request: web.Request) -> web.Response:
        try:
            body = json.loads(await request.read())
        except ValueError:
            return error(400, "malformed", "the body must be a JSON object of faults", "body")
        if not isinstance(body, dict):
            return error(400, "malformed", "the body must be a JSON object of faults", "body")
        direction = body.pop("direction", "both")
        try:
            self.set(direction, **body)
        except FaultError as err:
            return error(400, "malformed", err.message, err.field)
        return web.json_response(self.state())

    async def _post_heal(self, _request: web.Request) -> web.Response:
        self.heal()
        return web.json_response(self.state())


class RemoteProxy:
    """Drive a :class:`FaultProxy` in another process through its control endpoint."""

    def __init__(self, control_url: str, session: aiohttp.ClientSession) -> None:
        self.url = control_url
        self.session = session

    async def state(self) -> dict[str, Any]:
        async with self.session.get(self.url) as response:
            return await self._answer(response)

    async def set(self, direction: str = "both", **changes: object) -> dict[str, Any]:
        body = {"direction": direction, **changes}
        async with self.session.post(self.url, json=body) as response:
            return await self._answer(response)

    async def heal(self) -> dict[str, Any]:
        async with self.session.post(self.url + "/heal") as response:
            return await self._answer(response)

    @staticmethod
    async def _answer(response: aiohttp.ClientResponse) -> dict[str, Any]:
        body: dict[str, Any] = await response.json()
        if response.status != 200:
            problem = body["error"]
            raise FaultError(problem.get("field", "request"), problem["message"])
        return body


# -- command line -------------------------------------------------------------------------


def _link(text: str) -> tuple[PeerAddress, PeerAddress]:
    listen, sep, target = text.partition("=")
    if not sep:
        raise argparse.ArgumentTypeError(
            "a link is LISTEN=TARGET, e.g. 127.0.0.1:7001=127.0.0.1:6001"
        )
    try:
        host, _, port = listen.rpartition(":")
        if port == "0":  # any free port
            return PeerAddress(parse_address(f"{host}:1", "listen").host, 0), parse_address(
                target, "target"
            )
        return parse_address(listen, "listen"), parse_address(target, "target")
    except (WireError, ValueError) as err:
        raise argparse.ArgumentTypeError(str(err)) from None


def main(argv: Sequence[str] | None = None) -> int:
    """Run proxies until SIGINT or SIGTERM; print one line per proxy once listening."""
    parser = argparse.ArgumentParser(
        prog="python -m ledger_core.p2p.faultproxy", description="WebSocket fault proxies"
    )
    parser.add_argument(
        "--link", type=_link, action="append", required=True, metavar="LISTEN=TARGET"
    )
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)

    async def run() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        proxies = [
            FaultProxy(target.hostport, listen.host, listen.port, args.seed + i)
            for i, (listen, target) in enumerate(args.link)
        ]
        try:
            for proxy in proxies:
                await proxy.start()
                sys.stdout.write(
                    f"proxy {proxy.address} -> {proxy.target.hostport} "
                    f"control {proxy.control_url}\n"
                )
            sys.stdout.flush()
            await stop.wait()
        finally:
            for proxy in proxies:
                await proxy.stop()

    asyncio.run(run())
    return 0


if __name__ == "__main__":
    sys.exit(main())
