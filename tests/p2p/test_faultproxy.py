"""The fault proxy on loopback: each perturbation does what it says, in and out of process."""

from __future__ import annotations

import asyncio
import contextlib
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator

import aiohttp
import pytest
from aiohttp import web

from ledger_core.p2p.faultproxy import FaultError, FaultProxy, RemoteProxy, main
from tests.p2p.netkit import addr, connected, eventually, net, running


class Target:
    """A WebSocket server that records what arrives and can talk back."""

    def __init__(self) -> None:
        self.got: list[tuple[bytes | str, float]] = []
        self.paths: list[str] = []
        self.sockets: list[web.WebSocketResponse] = []
        self.runner: web.AppRunner | None = None
        self.port = 0

    async def handle(self, request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        self.paths.append(request.path)
        self.sockets.append(ws)
        async for message in ws:
            self.got.append((message.data, time.monotonic()))
        return ws

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get("/{path:.*}", self.handle)
        self.runner = web.AppRunner(app, shutdown_timeout=1.0)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        self.port = int(self.runner.addresses[0][1])

    async def stop(self) -> None:
        for ws in self.sockets:
            await ws.close()
        assert self.runner is not None
        await self.runner.cleanup()

    def payloads(self) -> list[bytes | str]:
        return [data for data, _ in self.got]


@contextlib.asynccontextmanager
async def link(seed: int = 0) -> AsyncIterator[tuple[Target, FaultProxy]]:
    target = Target()
    await target.start()
    proxy = FaultProxy(f"127.0.0.1:{target.port}", seed=seed)
    await proxy.start()
    try:
        yield target, proxy
    finally:
        await proxy.stop()
        await target.stop()


@contextlib.asynccontextmanager
async def client(proxy: FaultProxy) -> AsyncIterator[aiohttp.ClientWebSocketResponse]:
    async with (
        aiohttp.ClientSession() as session,
        session.ws_connect(
            f"ws://{proxy.address}/p2p", timeout=aiohttp.ClientWSTimeout(ws_close=1.0)
        ) as ws,
    ):
        yield ws


async def collect(ws: aiohttp.ClientWebSocketResponse, seconds: float) -> list[bytes]:
    """Whatever the client receives within ``seconds``."""
    got: list[bytes] = []
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(seconds):
            while True:
                message = await ws.receive()
                if message.type is not aiohttp.WSMsgType.BINARY:
                    break
                got.append(message.data)
    return got


def numbered(n: int) -> list[bytes]:
    return [i.to_bytes(2, "big") for i in range(n)]


async def send_all(ws: aiohttp.ClientWebSocketResponse, payloads: list[bytes]) -> None:
    for payload in payloads:
        await ws.send_bytes(payload)


async def test_without_faults_messages_pass_both_ways_in_order() -> None:
    async with link() as (target, proxy), client(proxy) as ws:
        await send_all(ws, numbered(50))
        await ws.send_str("texto")
        await eventually(lambda: len(target.got) == 51)
        assert target.payloads() == [*numbered(50), "texto"]
        assert target.paths == ["/p2p"]
        for payload in numbered(30):
            await target.sockets[0].send_bytes(payload)
        assert await collect(ws, 0.3) == numbered(30)
        state = proxy.state()
        assert state["forward"]["stats"] == {
            "received": 51,
            "forwarded": 51,
            "dropped": 0,
            "duplicated": 0,
        }
        assert state["backward"]["stats"]["forwarded"] == 30
        assert state["connections"] == 1


async def test_drops_follow_the_probability_and_the_seed() -> None:
    outcomes = []
    for seed in (1, 1, 2):
        async with link(seed) as (target, proxy), client(proxy) as ws:
            proxy.set("forward", drop=0.5)
            await send_all(ws, numbered(200))
            await ws.send_str("end")  # text frames are dropped too, by chance
            await asyncio.sleep(0.3)
            stats = proxy.stats("forward")
            assert stats.received == 201
            assert stats.forwarded + stats.dropped == 201
            assert 60 < stats.forwarded < 140
            assert len(target.got) == stats.forwarded
            outcomes.append(target.payloads())
    assert outcomes[0] == outcomes[1]  # same seed, same fate
    assert outcomes[0] != outcomes[2]


async def test_a_certain_drop_loses_everything_in_that_direction_only() -> None:
    async with link() as (target, proxy), client(proxy) as ws:
        proxy.set("backward", drop=1.0)
        await send_all(ws, numbered(5))
        await eventually(lambda: len(target.got) == 5)
        await target.sockets[0].send_bytes(b"respuesta")
        assert await collect(ws, 0.2) == []
        assert proxy.stats("backward").dropped == 1


async def test_a_fixed_delay_holds_every_message_and_keeps_the_order() -> None:
    async with link() as (target, proxy), client(proxy) as ws:
        proxy.set(delay=0.2)
        sent = time.monotonic()
        await send_all(ws, numbered(20))
        await eventually(lambda: len(target.got) == 20)
        assert target.payloads() == numbered(20)
        latencies = [at - sent for _, at in target.got]
        assert min(latencies) >= 0.2
        assert max(latencies) < 0.2 + 0.5


async def test_jitter_spreads_and_reorders_messages() -> None:
    async with link(seed=3) as (target, proxy), client(proxy) as ws:
        proxy.set("forward", jitter=0.15)
        sent = time.monotonic()
        await send_all(ws, numbered(40))
        await eventually(lambda: len(target.got) == 40)
        assert sorted(target.payloads()) == numbered(40)  # type: ignore[type-var]
        assert target.payloads() != numbered(40)
        assert max(at - sent for _, at in target.got) < 0.15 + 0.5


async def test_duplication_delivers_twice() -> None:
    async with link() as (target, proxy), client(proxy) as ws:
        proxy.set("forward", duplicate=1.0)
        await send_all(ws, numbered(10))
        await eventually(lambda: len(target.got) == 20)
        assert target.payloads() == [p for p in numbered(10) for _ in range(2)]
        assert proxy.stats("forward").duplicated == 10


async def test_reordering_stays_within_its_window_and_loses_nothing() -> None:
    window = 5
    async with link(seed=4) as (target, proxy), client(proxy) as ws:
        proxy.set("forward", reorder=window)
        await send_all(ws, numbered(100))
        await eventually(lambda: len(target.got) == 100)  # the last few by the flush timer
        received = target.payloads()
        assert sorted(received) == numbered(100)  # type: ignore[type-var]
        assert received != numbered(100)
        for position, payload in enumerate(received):
            sent_index = int.from_bytes(payload, "big")  # type: ignore[arg-type]
            assert position >= sent_index - (window - 1)


async def test_a_dropping_partition_keeps_the_connection_but_carries_nothing() -> None:
    async with link() as (target, proxy), client(proxy) as ws:
        proxy.set(delay=0.3)
        await ws.send_bytes(b"in flight")
        await asyncio.sleep(0.05)
        proxy.set(partition="drop")  # also loses what was in flight
        await send_all(ws, numbered(5))
        await target.sockets[0].send_bytes(b"respuesta")
        assert await collect(ws, 0.5) == []
        assert target.got == []
        assert proxy.connections == 1
        proxy.heal()
        await ws.send_bytes(b"healed")
        await eventually(lambda: target.payloads() == [b"healed"])
        assert proxy.stats("forward").dropped == 6


async def test_a_closing_partition_cuts_connections_and_refuses_new_ones() -> None:
    async with link() as (_target, proxy), aiohttp.ClientSession() as session:
        ws = await session.ws_connect(f"ws://{proxy.address}/p2p")
        proxy.set(partition="close")
        message = await ws.receive()
        assert message.type is aiohttp.WSMsgType.CLOSE
        assert message.extra == "partitioned by the fault proxy"
        with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
            await session.ws_connect(f"ws://{proxy.address}/p2p")
        assert refused.value.status == 503
        proxy.heal()
        ws = await session.ws_connect(f"ws://{proxy.address}/p2p")
        await ws.close()


async def test_the_proxy_refuses_plain_http_and_reports_an_unreachable_target() -> None:
    proxy = FaultProxy("127.0.0.1:1")
    await proxy.start()
    try:
        async with aiohttp.ClientSession() as session:
            async with session.get(f"http://{proxy.address}/p2p") as response:
                assert response.status == 400
            with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
                await session.ws_connect(f"ws://{proxy.address}/p2p")
            assert refused.value.status == 502
    finally:
        await proxy.stop()


async def test_bad_fault_settings_name_the_field() -> None:
    async with link() as (_target, proxy):
        for changes, field in (
            ({"drop": 2}, "drop"),
            ({"duplicate": True}, "duplicate"),
            ({"delay": "1"}, "delay"),
            ({"jitter": -1}, "jitter"),
            ({"reorder": 1.5}, "reorder"),
            ({"partition": "maybe"}, "partition"),
            ({"latency": 1}, "latency"),
        ):
            with pytest.raises(FaultError) as failed:
                proxy.set(**changes)
            assert failed.value.field == field
        with pytest.raises(FaultError, match="direction"):
            proxy.set("sideways", drop=0.1)
        assert proxy.faults("forward").drop == 0  # nothing half-applied


async def test_the_http_control_endpoint_drives_the_proxy() -> None:
    async with link() as (target, proxy), aiohttp.ClientSession() as session:
        remote = RemoteProxy(proxy.control_url, session)
        state = await remote.set("forward", delay=0.1, duplicate=1.0)
        assert state["forward"]["faults"]["delay"] == 0.1
        assert state["backward"]["faults"]["delay"] == 0
        with pytest.raises(FaultError) as failed:
            await remote.set(drop=7)
        assert failed.value.field == "drop"
        async with session.post(proxy.control_url, data=b"[") as response:
            assert response.status == 400
            assert (await response.json())["error"]["field"] == "body"
        async with session.post(proxy.control_url, json=[1]) as response:
            assert response.status == 400
        assert (await remote.heal())["forward"]["faults"]["duplicate"] == 0
        assert (await remote.state())["target"] == f"127.0.0.1:{target.port}"


async def test_a_proxy_in_another_process_is_driven_over_http() -> None:
    target = Target()
    await target.start()
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "ledger_core.p2p.faultproxy",
        "--link",
        f"127.0.0.1:0=127.0.0.1:{target.port}",
        "--seed",
        "9",
        stdout=subprocess.PIPE,
    )
    try:
        assert process.stdout is not None
        line = (await asyncio.wait_for(process.stdout.readline(), 30)).decode()
        _, listen, _, target_address, _, control = line.split()
        assert target_address == f"127.0.0.1:{target.port}"
        async with aiohttp.ClientSession() as session:
            remote = RemoteProxy(control, session)
            assert (await remote.state())["seed"] == 9
            await remote.set(partition="drop")
            async with session.ws_connect(f"ws://{listen}/p2p") as ws:
                await ws.send_bytes(b"lost")
                await remote.heal()
                await ws.send_bytes(b"kept")
                await eventually(lambda: target.payloads() == [b"kept"])
        process.send_signal(signal.SIGINT)
        assert await asyncio.wait_for(process.wait(), 10) == 0
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()
        await target.stop()


def test_the_command_line_refuses_bad_links(capsys: pytest.CaptureFixture[str]) -> None:
    for bad in ("127.0.0.1:7001", "127.0.0.1:7001=nowhere", "bad host:0=127.0.0.1:1"):
        with pytest.raises(SystemExit) as exit_info:
            main(["--link", bad])
        assert exit_info.value.code == 2
    assert "a link is LISTEN=TARGET" in capsys.readouterr().err


async def test_nodes_talking_through_a_proxy_feel_its_faults() -> None:
    b = net(2)
    async with running(b):
        proxy = FaultProxy(f"127.0.0.1:{b.listen_port}", seed=5)
        await proxy.start()
        try:
            a = net(1, persistent=[f"{b.address}@{proxy.address}"], pex=False)
            async with running(a):
                await eventually(lambda: connected(a, b))
                proxy.set(delay=0.1)  # each way: a round trip takes 0.2 s or more
                await eventually(lambda: (a.peers()[0].rtt or 0) >= 0.2, what="slow pings")
                proxy.set(partition="close")
                await eventually(lambda: not a.peers() and not b.peers(), what="cut")
                assert any(
                    d.reason.endswith("partitioned by the fault proxy")
                    for d in a.recent_disconnects()
                )
                await eventually(lambda: "503" in (a.addresses()[0].last_error or ""))
                proxy.heal()
                await eventually(lambda: connected(a, b), what="reconnected after healing")
                assert a.peers()[0].address == proxy.address
                assert addr(b) != a.peers()[0].listen_address  # reached through the proxy
        finally:
            await proxy.stop()
