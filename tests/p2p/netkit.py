"""Helpers for P2P tests: deterministic keys, quick limits, bounded waits, a bare peer."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import replace
from typing import Any

import aiohttp

from ledger_core.p2p import Limits, Network
from ledger_core.p2p.handshake import Identity, handshake
from ledger_core.p2p.wire import Hello
from ledger_core.types.crypto import SigningKey

CHAIN = "prueba-p2p"
GENESIS = hashlib.sha256(b"a genesis for P2P tests").hexdigest()
# Short waits where a test waits for them; generous bounds where only a loaded machine would
# reach them (a handshake, a dial, a pong: tests that are about those set their own).
QUICK = Limits(
    handshake_timeout=10.0,
    dial_timeout=10.0,
    close_timeout=1.0,
    ping_interval=0.2,
    ping_timeout=20.0,
    reconnect_base=0.05,
    reconnect_max=0.4,
    stable_after=0.5,
    dial_interval=0.05,
    pex_interval=0.2,
    pex_timeout=1.0,
    stop_timeout=3.0,
)


def key(i: int) -> SigningKey:
    return SigningKey.from_seed(hashlib.sha256(f"p2p node {i}".encode()).digest())


def limits(**changes: Any) -> Limits:
    return replace(QUICK, **changes)


def net(
    i: int,
    *,
    seeds: list[str] | None = None,
    persistent: list[str] | None = None,
    port: int = 0,
    chain: str = CHAIN,
    genesis: str = GENESIS,
    max_peers: int = 10,
    lim: Limits = QUICK,
    **kwargs: Any,
) -> Network:
    return Network(
        key(i),
        chain,
        genesis,
        "127.0.0.1",
        port,
        seeds or [],
        persistent or [],
        lim,
        max_peers,
        **kwargs,
    )


def addr(network: Network) -> str:
    """``id@127.0.0.1:port`` of a started network."""
    return f"{network.address}@127.0.0.1:{network.listen_port}"


async def eventually(
    predicate: Callable[[], bool], seconds: float = 5.0, what: str = "condition"
) -> None:
    """Wait until ``predicate()`` holds, polling, for at most ``seconds``."""
    deadline = time.monotonic() + seconds
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} did not hold within {seconds} s")
        await asyncio.sleep(0.02)


@contextlib.asynccontextmanager
async def running(*networks: Network) -> AsyncIterator[tuple[Network, ...]]:
    """Start networks in order; stop them all (in reverse) whatever happens."""
    started: list[Network] = []
    try:
        for network in networks:
            await network.start()
            started.append(network)
        yield networks
    finally:
        for network in reversed(started):
            await network.stop()


def connected(a: Network, b: Network) -> bool:
    return any(p.id == b.address for p in a.peers()) and any(p.id == a.address for p in b.peers())


async def bare_peer(
    session: aiohttp.ClientSession,
    port: int,
    signer: SigningKey,
    *,
    chain: str = CHAIN,
    genesis: str = GENESIS,
    max_msg_size: int = 64 * 1024 * 1024,
) -> tuple[aiohttp.ClientWebSocketResponse, Hello]:
    """A hand-driven peer: connect and complete the real handshake, return the socket."""
    ws = await session.ws_connect(
        f"ws://127.0.0.1:{port}/p2p",
        max_msg_size=max_msg_size,
        timeout=aiohttp.ClientWSTimeout(ws_close=1.0),
    )
    try:
        hello = await handshake(ws, Identity(signer, chain, genesis, ""), lambda _h: None, 2.0)
    except BaseException:
        await ws.close()
        raise
    return ws, hello


async def close_reason(ws: aiohttp.ClientWebSocketResponse, seconds: float = 5.0) -> str:
    """Read until the server closes; the reason it gave (frames before are skipped)."""
    async with asyncio.timeout(seconds):
        while True:
            message = await ws.receive()
            if message.type in (
                aiohttp.WSMsgType.CLOSE,
                aiohttp.WSMsgType.CLOSED,
                aiohttp.WSMsgType.CLOSING,
            ):
                return f"{ws.close_code} {message.extra or ''}"
