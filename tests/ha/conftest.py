"""Fixtures for the Home Assistant integration tests.

The harness mounts its own ``custom_components`` package when the ``hass``
fixture starts; importing the repository's integration first keeps it in
``sys.modules`` so Home Assistant loads this repository's code.

``transactiva_node`` starts a real node process (``transactiva init`` and
``transactiva node``) on a free loopback port and stops it afterwards.
"""

from __future__ import annotations

import contextlib
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

import custom_components.transactiva  # noqa: F401 - see the module docstring
from ledger_core.home import Home


@pytest.fixture(autouse=True)
def auto_enable_custom_integrations(enable_custom_integrations: None) -> None:
    """Let Home Assistant load custom integrations in every test."""


@dataclass
class RealNode:
    """A running node: its API URL, token and local participant's address."""

    url: str
    token: str
    participant: str
    process: subprocess.Popen[bytes]
    port: int
    home: Path

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            self.process.wait(20)

    def restart(self) -> None:
        """Start the node process again (same home, same port)."""
        self.stop()
        self.process = _spawn(self.home)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _spawn(home: Path) -> subprocess.Popen[bytes]:
    with (home / "node.log").open("ab") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "ledger_core", "node", "--dir", str(home)],
            stdout=log,
            stderr=log,
        )


def _start(home: Path) -> RealNode:
    port = _free_port()
    subprocess.run(
        [sys.executable, "-m", "ledger_core", "init", "--dir", str(home), "--api-port", str(port)],
        check=True,
        capture_output=True,
        timeout=60,
    )
    with (home / "node.log").open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "ledger_core", "node", "--dir", str(home)],
            stdout=log,
            stderr=log,
        )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError((home / "node.log").read_text())
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.2):
            break
        time.sleep(0.05)
    else:
        process.kill()
        raise AssertionError("the node did not start within 30 s")
    files = Home(home)
    return RealNode(
        url=f"http://127.0.0.1:{port}",
        token=files.token(),
        participant=files.participant_key().address,
        process=process,
        port=port,
        home=home,
    )


@pytest.fixture
def start_node(socket_enabled: None, tmp_path: Path) -> Iterator[Callable[[str], RealNode]]:
    """Start real nodes by name; all are stopped at the end of the test."""
    started: list[RealNode] = []

    def start(name: str = "node") -> RealNode:
        node = _start(tmp_path / name)
        started.append(node)
        return node

    yield start
    for node in started:
        node.stop()


@pytest.fixture
def transactiva_node(start_node: Callable[[str], RealNode]) -> RealNode:
    """One running node."""
    return start_node("node")
