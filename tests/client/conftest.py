"""Fixtures for the wire contract's tests: real nodes and small servers on loopback.

``node`` starts a real ``transactiva node`` process, set up the way a user does it
(``transactiva init --dir D --api-port P``, then ``transactiva node --dir D``), so these
tests know nothing of the node's modules. ``serve`` starts an aiohttp server on
loopback with the routes a test gives it: something that is not (or not quite) a node,
such as a node of another API version.
"""

from __future__ import annotations

import contextlib
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from tests.client.helpers import Handler, Serve
from transactiva_client import TransactivaClient

STARTUP_SECONDS = 30.0


@dataclass
class RealNode:
    """A running node: its home, API URL and token."""

    home: Path
    url: str
    token: str
    process: subprocess.Popen[bytes]

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)


def _free_port() -> int:
    with contextlib.closing(socket.socket()) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _cli(*args: str) -> None:
    subprocess.run(
        [sys.executable, "-m", "ledger_core", *args],
        check=True,
        capture_output=True,
        timeout=60,
    )


def start_node(home: Path) -> RealNode:
    """Initialise a one-validator network in ``home`` and start its node."""
    port = _free_port()
    _cli("init", "--dir", str(home), "--api-port", str(port))
    log = home / "node.log"
    with log.open("ab") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "ledger_core", "node", "--dir", str(home)],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    deadline = time.monotonic() + STARTUP_SECONDS
    while "API on http://" not in log.read_text(errors="replace"):
        if process.poll() is not None:
            raise AssertionError(log.read_text(errors="replace"))
        if time.monotonic() > deadline:
            process.kill()
            raise AssertionError(f"the node did not start within {STARTUP_SECONDS} s")
        time.sleep(0.05)
    token = (home / "api-token").read_text().strip()
    return RealNode(home, f"http://127.0.0.1:{port}", token, process)


@pytest.fixture
def node(tmp_path: Path) -> Iterator[RealNode]:
    """A real node of its own, stopped after the test."""
    started = start_node(tmp_path / "node")
    yield started
    started.stop()


@pytest.fixture(scope="module")
def shared_node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RealNode]:
    """A real node shared by a module's tests: each passes in any order (what one adds
    does not change what another checks)."""
    started = start_node(tmp_path_factory.mktemp("shared") / "node")
    yield started
    started.stop()


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as opened:
        yield opened


@pytest.fixture
async def serve(session: aiohttp.ClientSession) -> AsyncIterator[Serve]:
    """Start a loopback server with ``{"METHOD path": handler}`` routes under /api/v1;
    a client of it."""
    servers: list[TestServer] = []

    async def start(routes: dict[str, Handler]) -> TransactivaClient:
        app = web.Application()
        for route, handler in routes.items():
            method, _, path = route.partition(" ")
            app.router.add_route(method, f"/api/v1/{path}", handler)
        server = TestServer(app, host="127.0.0.1")
        servers.append(server)
        await server.start_server()
        return TransactivaClient(session, f"http://127.0.0.1:{server.port}", "token")

    yield start
    for server in servers:
        await server.close()
