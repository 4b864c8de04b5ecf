"""Networks on loopback: gossip, limits, requests, discovery, reconnection, shutdown."""

from __future__ import annotations

import asyncio
import itertools
import random
import time
from collections import defaultdict

import aiohttp
import pytest
from aiohttp import WSMsgType, web

from ledger_core.demo.chain import free_port
from ledger_core.p2p import (
    Misbehaviour,
    PeerUnavailableError,
    RemoteError,
    RequestTimeoutError,
)
from ledger_core.p2p.network import _abort
from ledger_core.p2p.wire import Kind, encode_envelope
from tests.p2p.netkit import (
    addr,
    bare_peer,
    close_reason,
    connected,
    eventually,
    key,
    limits,
    net,
    running,
)


class Inbox:
    """Records what a network's handlers receive, per channel."""

    def __init__(self) -> None:
        self.got: dict[str, list[tuple[str, bytes]]] = defaultdict(list)

    def handler(self, channel: str):
        async def record(peer: str, payload: bytes) -> None:
            self.got[channel].append((peer, payload))

        return record


def message(channel: str, payload: bytes, ident: int = 1) -> bytes:
    return encode_envelope(Kind.MESSAGE, channel, ident, payload)


# -- gossip ---------------------------------------------------------------------------


@pytest.mark.parametrize("shape", ["line", "ring"])
async def test_gossip_reaches_every_node_exactly_once(shape: str) -> None:
    ports = [free_port() for _ in range(5)]
    nodes = []
    for i in range(5):
        links = [i - 1] if i > 0 else []
        if shape == "ring":
            links = [(i + 1) % 5]
        peers = [f"{key(j).address}@127.0.0.1:{ports[j]}" for j in links]
        nodes.append(net(i, port=ports[i], persistent=peers, pex=False))
    inboxes = [Inbox() for _ in nodes]
    for node, inbox in zip(nodes, inboxes, strict=True):
        node.on("tx", inbox.handler("tx"))
    async with running(*nodes):
        for i in range(5):
            j = i - 1 if shape == "line" else (i + 1) % 5
            if j >= 0:
                await eventually(lambda i=i, j=j: connected(nodes[i], nodes[j]))
        origin = 0 if shape == "line" else 2
        await nodes[origin].broadcast("tx", b"transferencia 42")
        others = [inbox for i, inbox in enumerate(inboxes) if i != origin]
        await eventually(lambda: all(inbox.got["tx"] for inbox in others), what="gossip")
        await asyncio.sleep(0.3)  # room for any duplicate to arrive
        for i, inbox in enumerate(inboxes):
            expected = 0 if i == origin else 1
            assert [p for _, p in inbox.got["tx"]] == [b"transferencia 42"] * expected, i
        if shape == "line":  # relayed hop by hop
            for i in range(1, 5):
                assert inboxes[i].got["tx"][0][0] == key(i - 1).address


async def test_duplicates_are_dropped_and_the_memory_is_bounded() -> None:
    a = net(1, lim=limits(dedup_entries=2))
    inbox = Inbox()
    a.on("tx", inbox.handler("tx"))
    a.on("status", inbox.handler("status"))
    async with running(a), aiohttp.ClientSession() as session:
        ws, _ = await bare_peer(session, a.listen_port, key(2))
        for payload in (b"m1", b"m1", b"m2", b"m3", b"m1"):
            await ws.send_bytes(message("tx", payload))
        for _ in range(2):
            await ws.send_bytes(message("status", b"same"))
        await eventually(lambda: len(inbox.got["status"]) == 2)
        # m1 once, m2, then m1 again only after m2 and m3 pushed it out of a memory of 2.
        assert [p for _, p in inbox.got["tx"]] == [b"m1", b"m2", b"m3", b"m1"]
        await ws.close()


async def test_a_message_whose_handler_fails_is_not_relayed() -> None:
    ports = [free_port() for _ in range(3)]
    nodes = [
        net(i, port=ports[i], persistent=[f"127.0.0.1:{ports[i - 1]}"] if i else [], pex=False)
        for i in range(3)
    ]
    relayed = Inbox()

    async def picky(_peer: str, payload: bytes) -> None:
        if payload == b"bad":
            raise ValueError("not a valid transaction")

    nodes[1].on("tx", picky)
    nodes[2].on("tx", relayed.handler("tx"))
    async with running(*nodes):
        await eventually(lambda: connected(nodes[0], nodes[1]) and connected(nodes[1], nodes[2]))
        await nodes[0].broadcast("tx", b"bad")
        await nodes[0].broadcast("tx", b"good")
        await eventually(lambda: len(relayed.got["tx"]) == 1)
        await asyncio.sleep(0.2)
        assert relayed.got["tx"] == [(key(1).address, b"good")]
        assert connected(nodes[0], nodes[1])  # a failing handler is not an accusation


async def test_a_handler_can_accuse_a_peer_of_misbehaviour() -> None:
    a = net(1)

    async def strict(_peer: str, payload: bytes) -> None:
        raise Misbehaviour(f"vote {payload.decode()} is signed by nobody")

    a.on("consensus", strict)
    async with running(a), aiohttp.ClientSession() as session:
        ws, _ = await bare_peer(session, a.listen_port, key(2))
        await ws.send_bytes(message("consensus", b"7"))
        assert "misbehaviour: vote 7 is signed by nobody" in await close_reason(ws)


# -- limits ---------------------------------------------------------------------------


async def test_a_message_over_its_channel_limit_disconnects_the_sender() -> None:
    a = net(1)
    inbox = Inbox()
    a.on("tx", inbox.handler("tx"))
    async with running(a), aiohttp.ClientSession() as session:
        ws, _ = await bare_peer(session, a.listen_port, key(2))
        await ws.send_bytes(message("tx", b"x" * 16384))
        await ws.send_bytes(message("tx", b"y" * 16385))
        reason = await close_reason(ws)
        assert reason == (
            "1009 too_large: message of 16385 bytes on channel 'tx'; the limit is 16384"
        )
        assert [len(p) for _, p in inbox.got["tx"]] == [16384]
        await eventually(lambda: any("too_large" in d.reason for d in a.recent_disconnects()))
        with pytest.raises(ValueError, match="a payload of 16385 bytes; channel 'tx' allows 16384"):
            await a.broadcast("tx", b"z" * 16385)


async def test_a_frame_over_the_largest_limit_is_cut_off_by_the_websocket_layer() -> None:
    small = limits(channel_bytes={"tx": 100}, default_channel_bytes=100)
    a = net(1, lim=small)
    async with running(a), aiohttp.ClientSession() as session:
        ws, _ = await bare_peer(session, a.listen_port, key(2))
        await ws.send_bytes(message("tx", b"x" * 5000))
        assert (await close_reason(ws)).startswith("1009")
        await eventually(
            lambda: any(
                d.reason == "too_large: a frame over 4096 bytes" for d in a.recent_disconnects()
            )
        )


@pytest.mark.parametrize(
    ("changes", "size", "burst", "per_second"),
    [  # burst and rate in messages of this size (a frame is the payload plus 16 bytes)
        ({"messages_per_second": 5, "messages_burst": 5}, 10, 5, 5.0),
        ({"bytes_per_second": 2000, "bytes_burst": 2000}, 500, 3, 2000 / 516),
    ],
)
async def test_a_flooding_peer_is_throttled_then_disconnected(
    changes: dict[str, float], size: int, burst: int, per_second: float
) -> None:
    a = net(1, lim=limits(max_violations=3, **changes))
    inbox = Inbox()
    a.on("status", inbox.handler("status"))
    async with running(a), aiohttp.ClientSession() as session:
        ws, _ = await bare_peer(session, a.listen_port, key(2))
        started = time.monotonic()
        for i in range(30):
            await ws.send_bytes(message("status", bytes([i]) * size))
        assert "rate_limited" in await close_reason(ws)
        elapsed = time.monotonic() - started
        delivered = len(inbox.got["status"])
        assert burst <= delivered <= burst + per_second * elapsed + 1, (delivered, elapsed)


@pytest.mark.parametrize("policy", ["drop", "disconnect"])
async def test_a_slow_peer_does_not_hold_up_the_others(policy: str) -> None:
    big = limits(channel_bytes={"blob": 1 << 20}, send_queue_messages=4, slow_peer=policy)
    a = net(1, lim=big)
    inbox = Inbox()
    async with running(a):
        fast = net(2, lim=big, persistent=[addr(a)], pex=False)
        fast.on("blob", inbox.handler("blob"))
        async with running(fast), aiohttp.ClientSession() as session:
            # A peer that never reads: its socket buffers fill, then its send queue.
            slow, _ = await bare_peer(session, a.listen_port, key(3), max_msg_size=0)
            await eventually(lambda: connected(a, fast) and len(a.peers()) == 2)
            for i in range(40):
                await a.broadcast("blob", bytes([i]) * (1 << 20))
                await eventually(lambda i=i: len(inbox.got["blob"]) == i + 1, what=f"blob {i}")
            assert [p[0] for _, p in inbox.got["blob"]] == list(range(40))
            fast_info = next(p for p in a.peers() if p.id == fast.address)
            assert fast_info.dropped == 0
            if policy == "drop":
                slow_info = next(p for p in a.peers() if p.id == key(3).address)
                assert slow_info.dropped > 0
            else:
                await eventually(
                    lambda: any(
                        d.reason == "slow_peer: the send queue is full"
                        for d in a.recent_disconnects()
                    )
                )
                assert all(p.id != key(3).address for p in a.peers())
            slow._response.close()  # its side never read: just drop the connection


async def test_cutting_a_connection_closes_both_ends_transports_at_once() -> None:
    # What the network does to a peer that does not read (a close handshake would wait):
    # nothing of the connection may stay open for the garbage collector to find.
    server_sockets: list[web.WebSocketResponse] = []
    held = asyncio.Event()

    async def hold(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        server_sockets.append(ws)
        await held.wait()
        return ws

    app = web.Application()
    app.router.add_get("/", hold)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        async with aiohttp.ClientSession() as session:
            for cut_client in (True, False):
                before = len(server_sockets)
                client = await session.ws_connect(f"http://127.0.0.1:{port}/")
                await eventually(lambda n=before: len(server_sockets) == n + 1, 30)
                server = server_sockets[-1]
                cut, other = (client, server) if cut_client else (server, client)
                _abort(cut)
                transport = cut._writer.transport  # type: ignore[union-attr]
                assert transport is not None
                assert transport.is_closing()
                message = await asyncio.wait_for(other.receive(), 30)
                assert message.type in {WSMsgType.CLOSED, WSMsgType.CLOSE, WSMsgType.ERROR}
                await other.close()
    finally:
        held.set()
        await runner.cleanup()


async def test_a_silent_peer_is_dropped_after_the_ping_timeout() -> None:
    a = net(1, lim=limits(ping_interval=0.1, ping_timeout=0.3))
    async with running(a), aiohttp.ClientSession() as session:
        ws, _ = await bare_peer(session, a.listen_port, key(2))  # never answers pings
        assert "ping_timeout: no pong within 0.3 s" in await close_reason(ws)


# -- requests -------------------------------------------------------------------------


async def test_requests_get_their_own_answers_errors_and_timeouts() -> None:
    a, b = net(1), net(2)
    release = asyncio.Event()

    async def echo(peer: str, payload: bytes) -> bytes:
        await asyncio.sleep(payload[-1] % 3 / 100)  # answers out of order
        return peer.encode() + b":" + payload

    async def slow(_peer: str, _payload: bytes) -> bytes:
        await release.wait()
        return b"late"

    async def broken(_peer: str, _payload: bytes) -> bytes:
        raise KeyError("no such block")

    async def huge(_peer: str, _payload: bytes) -> bytes:
        return b"x" * (64 * 1024 + 1)

    a.on_request("sync", echo)
    a.on_request("snapshotx", slow)
    a.on_request("broken", broken)
    a.on_request("huge", huge)
    async with running(a):
        b = net(2, persistent=[addr(a)])
        async with running(b):
            await eventually(lambda: connected(a, b))
            answers = await asyncio.gather(
                *(b.request(a.address, "sync", str(i).encode(), 2.0) for i in range(12))
            )
            assert answers == [f"{b.address}:{i}".encode() for i in range(12)]
            with pytest.raises(RequestTimeoutError, match=r"no answer from .* within 0\.1 s"):
                await b.request(a.address, "snapshotx", b"", 0.1)
            with pytest.raises(RemoteError, match="the request handler failed"):
                await b.request(a.address, "broken", b"", 2.0)
            with pytest.raises(RemoteError, match="no handler for requests on 'nobody'"):
                await b.request(a.address, "nobody", b"", 2.0)
            with pytest.raises(RemoteError, match="larger than the channel allows"):
                await b.request(a.address, "huge", b"", 2.0)
            with pytest.raises(PeerUnavailableError, match="is not connected"):
                await b.request(key(9).address, "sync", b"", 2.0)
            assert await b.send(key(9).address, "sync", b"") is False
            # The peer goes away while a request waits.
            pending = asyncio.create_task(b.request(a.address, "snapshotx", b"", 5.0))
            await asyncio.sleep(0.05)
            await a.stop()
            with pytest.raises(PeerUnavailableError, match="disconnected: closed by the peer"):
                await pending
            release.set()


async def test_a_message_handler_may_await_a_request_to_the_same_peer() -> None:
    a = net(1)
    answers: list[bytes] = []

    async def on_announce(peer: str, payload: bytes) -> None:
        answers.append(await a.request(peer, "sync", payload, 2.0))

    a.on("announce", on_announce)
    async with running(a):
        b = net(2, persistent=[addr(a)])

        async def block(_peer: str, payload: bytes) -> bytes:
            return b"block " + payload

        b.on_request("sync", block)
        async with running(b):
            await eventually(lambda: connected(a, b))
            assert await b.send(a.address, "announce", b"7") is True
            await eventually(lambda: answers == [b"block 7"])


async def test_too_many_concurrent_requests_are_answered_busy() -> None:
    # Without peer exchange: b's own requests for addresses would count among a's two.
    a = net(1, lim=limits(max_inflight_requests=2), pex=False)
    release = asyncio.Event()
    answering = 0

    async def slow(_peer: str, _payload: bytes) -> bytes:
        nonlocal answering
        answering += 1
        await release.wait()
        return b"ok"

    a.on_request("sync", slow)
    async with running(a):
        b = net(2, persistent=[addr(a)], pex=False)
        async with running(b):
            await eventually(lambda: connected(a, b))
            waiting = [
                asyncio.create_task(b.request(a.address, "sync", b"", 60.0)) for _ in range(2)
            ]
            # Both are in flight at a (however slow the machine), then a third is refused.
            await eventually(lambda: answering == 2, 30.0, "two requests in flight")
            with pytest.raises(RemoteError, match="busy"):
                await b.request(a.address, "sync", b"", 30.0)
            release.set()
            assert await asyncio.gather(*waiting) == [b"ok", b"ok"]


async def test_handlers_and_sends_are_checked() -> None:
    a = net(1)

    async def nothing(_peer: str, _payload: bytes) -> None:
        return None

    async def answer(_peer: str, _payload: bytes) -> bytes:
        return b""

    a.on("tx", nothing)
    with pytest.raises(ValueError, match="has a handler already"):
        a.on("tx", nothing)
    a.on_request("sync", answer)
    with pytest.raises(ValueError, match="has a request handler already"):
        a.on_request("sync", answer)
    with pytest.raises(ValueError, match="the network's own"):
        a.on_request("pex", answer)
    with pytest.raises(ValueError, match="is not a channel name"):
        a.on("Votes", nothing)
    with pytest.raises(RuntimeError, match="start the network first"):
        _ = a.listen_address
    with pytest.raises(RuntimeError, match="not running"):
        await a.broadcast("tx", b"")
    with pytest.raises(ValueError, match="is not a channel name"):
        await a.send("x", "no channel", b"")
    async with running(a):
        with pytest.raises(RuntimeError, match="started already"):
            await a.start()
    await a.stop()  # twice is harmless
    with pytest.raises(RuntimeError, match="not running"):
        await a.send("x", "tx", b"")


# -- discovery and connections ----------------------------------------------------------


async def test_nodes_that_know_only_a_seed_form_a_mesh() -> None:
    seed = net(0)
    async with running(seed):
        nodes = [net(i, seeds=[f"127.0.0.1:{seed.listen_port}"]) for i in range(1, 5)]
        async with running(*nodes):
            everyone = [seed, *nodes]

            def mesh() -> bool:
                return all(
                    {p.id for p in n.peers()} == {m.address for m in everyone if m is not n}
                    for n in everyone
                )

            await eventually(mesh, seconds=10, what="a full mesh")
            # Peer exchange teaches every address, whoever dialled whom first.
            others = {n.address for n in nodes[1:]}
            await eventually(
                lambda: others <= {a.peer_id for a in nodes[0].addresses()},
                seconds=10,
                what="node 1 learning every address",
            )


async def test_a_full_seed_still_hands_out_addresses() -> None:
    seed = net(0, max_peers=1)
    async with running(seed):
        first = net(1, seeds=[f"127.0.0.1:{seed.listen_port}"])
        async with running(first):
            await eventually(lambda: connected(seed, first))
            second = net(2, seeds=[f"127.0.0.1:{seed.listen_port}"])
            async with running(second):
                await eventually(lambda: connected(first, second), what="second found first")
                assert not connected(seed, second)
                assert "too_many_peers" in (second.addresses()[0].last_error or "")


async def test_a_persistent_peer_is_redialled_with_growing_delays_after_it_restarts() -> None:
    port = free_port()
    a = net(1, port=port)
    backoff = limits(reconnect_base=0.04, reconnect_max=2.0, stable_after=0.05)
    b = net(2, persistent=[f"127.0.0.1:{port}"], lim=backoff)
    await a.start()
    try:
        async with running(b):
            await eventually(lambda: connected(a, b))
            await asyncio.sleep(0.1)  # a stable connection: the backoff starts again at the base
            await a.stop()
            await eventually(lambda: b.addresses()[0].failures >= 5, what="five failed dials")
            assert "cannot connect to" in (b.addresses()[0].last_error or "")
            a = net(1, port=port)  # the same node comes back on the same port
            await a.start()
            await eventually(lambda: connected(a, b), what="reconnected")
            attempts = b.addresses()[0].attempts
            gaps = [later - earlier for earlier, later in itertools.pairwise(attempts)]
            # gaps[k] waits 0.04 * 2**k s times a factor in [0.5, 1] (k = 1..4, a was down):
            # two steps on, the shortest possible wait is still twice the longest.
            failing = gaps[1:5]
            for shorter, longer in zip(failing, failing[2:], strict=False):
                assert longer > shorter, gaps
            assert b.addresses()[0].last_error is None
    finally:
        await a.stop()


def test_reconnection_delays_double_with_jitter_up_to_a_bound() -> None:
    network = net(1, lim=limits(reconnect_base=0.5, reconnect_max=4.0))
    for failures in range(40):
        ceiling = min(4.0, 0.5 * 2**failures)
        delays = [network._backoff(failures) for _ in range(20)]
        assert all(ceiling / 2 <= d <= ceiling for d in delays), (failures, delays)
        assert len(set(delays)) > 1  # jittered


async def test_two_nodes_dialling_each_other_keep_one_connection() -> None:
    ports = [free_port(), free_port()]
    a = net(1, port=ports[0], persistent=[f"127.0.0.1:{ports[1]}"], pex=False)
    b = net(2, port=ports[1], persistent=[f"127.0.0.1:{ports[0]}"], pex=False)
    lower = min(a.address, b.address)
    expected_on_a = "outbound" if a.address == lower else "inbound"
    expected_on_b = "inbound" if expected_on_a == "outbound" else "outbound"

    def resolved() -> bool:
        # Each side holds one connection: the one the lower address dialled.
        return [p.direction for p in a.peers()] == [expected_on_a] and [
            p.direction for p in b.peers()
        ] == [expected_on_b]

    async with running(a, b):
        await eventually(lambda: connected(a, b))
        await eventually(resolved, 30, "one connection, the lower address's, on both sides")
        await a.broadcast("tx", b"still works")  # the kept connection carries traffic


async def test_connect_and_disconnect_are_announced_once() -> None:
    a = net(1)
    events: list[tuple[str, ...]] = []

    async def up(peer: str) -> None:
        events.append(("up", peer))

    async def down(peer: str, reason: str) -> None:
        events.append(("down", peer, reason))

    a.on_connect(up)
    a.on_disconnect(down)
    async with running(a):
        b = net(2, persistent=[addr(a)])
        async with running(b):
            await eventually(lambda: events == [("up", b.address)])
        await eventually(lambda: len(events) == 2)
        assert events[1] == ("down", b.address, "closed by the peer (1001): shutting_down")


async def test_stop_is_bounded_even_with_a_hung_handler() -> None:
    a = net(1, lim=limits(stop_timeout=0.5, close_timeout=0.2))
    never = asyncio.Event()

    async def hang(_peer: str, _payload: bytes) -> None:
        await never.wait()

    a.on("tx", hang)
    await a.start()
    session = aiohttp.ClientSession()
    try:
        ws, _ = await bare_peer(session, a.listen_port, key(2))
        for i in range(300):  # fills the inbox: the reader blocks behind the handler
            await ws.send_bytes(message("tx", str(i).encode()))
        await asyncio.sleep(0.1)
        started = time.monotonic()
        await a.stop()
        assert time.monotonic() - started < 3.0
        ws._response.close()
    finally:
        await session.close()


async def test_garbage_after_the_handshake_is_refused_and_the_node_carries_on() -> None:
    a = net(1)
    inbox = Inbox()
    a.on("tx", inbox.handler("tx"))
    rng = random.Random(7)  # noqa: S311 - reproducible garbage, not keys
    reasons = set()
    async with running(a), aiohttp.ClientSession() as session:
        for i in range(25):
            ws, _ = await bare_peer(session, a.listen_port, key(100 + i))
            frame = rng.randbytes(rng.randrange(0, 40))
            if i % 2:
                frame = bytes([rng.randrange(1, 7), 2]) + b"tx" + frame  # near misses
            await ws.send_bytes(frame)
            await ws.send_bytes(b"\x05\x00")  # too short: always refused
            reason = await close_reason(ws)
            reasons.add(reason.split(":")[0])
        assert reasons <= {"1008 malformed", "1009 too_large"}
        assert "1008 malformed" in reasons
        ws, _ = await bare_peer(session, a.listen_port, key(2))
        await ws.send_bytes(message("tx", b"after all that"))
        await eventually(lambda: (key(2).address, b"after all that") in inbox.got["tx"])
        await ws.close()


async def test_a_port_in_use_is_reported_and_stop_stays_harmless() -> None:
    a = net(1)
    async with running(a):
        b = net(2, port=a.listen_port)
        with pytest.raises(OSError, match="address already in use"):
            await b.start()
        await b.stop()


async def test_stopping_tells_the_disconnect_handlers_and_advertised_ports_are_completed() -> None:
    a = net(1)
    events: list[tuple[str, str]] = []

    async def down(peer: str, reason: str) -> None:
        events.append((peer, reason))

    a.on_disconnect(down)
    port = free_port()
    await a.start()
    try:
        # ":port" means "the address you see me at"
        b = net(2, port=port, advertise=f":{port}", persistent=[addr(a)])
        async with running(b):
            await eventually(lambda: connected(a, b))
            (seen,) = a.peers()
            assert seen.listen_address == f"{b.address}@127.0.0.1:{port}"
            await a.stop()
            assert events == [(b.address, "shutting_down")]
    finally:
        await a.stop()
    with pytest.raises(ValueError, match="advertise"):
        net(3, advertise="nowhere")
