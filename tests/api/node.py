"""A real ``transactiva node`` process on loopback, for the API's edge tests.

:func:`make_home` writes a home with ``transactiva init`` (and, when asked, the meter role
with a pushed source and the concentrator with the example tariff, so that every route of
the document is served); :class:`NodeProcess` starts the node, waits until its API
answers, and stops it with Ctrl-C (SIGINT), as a person would.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp

from ledger_core.demo.chain import free_port
from ledger_core.node.home import Home

PYTHON = sys.executable
REPO = Path(__file__).resolve().parents[2]
TARIFF = REPO / "ledger_core" / "concentrator" / "example-residential-tou.toml"
START_SECONDS = 90.0


def cli(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """``transactiva ARGS`` in its own process."""
    return subprocess.run(
        [PYTHON, "-m", "ledger_core", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def make_home(path: Path, *, roles: bool = False) -> Path:
    """A one-validator home in ``path`` (``transactiva init``); with ``roles`` also the
    meter (pushed readings, hence analytics) and the concentrator."""
    result = cli("init", "--dir", str(path), "--api-port", str(free_port()))
    assert result.returncode == 0, result.stderr
    if roles:
        shutil.copyfile(TARIFF, path / "tariff.toml")
        config = json.loads((path / "config.json").read_text())
        config["meter"] = {"source": {"type": "pushed"}}
        config["concentrator"] = {"tariff": "tariff.toml"}
        (path / "config.json").write_text(json.dumps(config, indent=2))
    return path


class NodeProcess:
    """A ``transactiva node --dir HOME`` process, its API URL, token and log."""

    def __init__(self, home: Path) -> None:
        self.home = home
        config = Home(home).config()
        self.port = config.api_port
        self.url = f"http://127.0.0.1:{config.api_port}/api/v1"
        self.token = Home(home).token()
        self.log = home.parent / f"{home.name}.log"  # outside the home: its files are checked
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    def start(self) -> NodeProcess:
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                [PYTHON, "-m", "ledger_core", "node", "--dir", str(self.home)],
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + START_SECONDS
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"the node exited:\n{self.log.read_text()[-3000:]}")
            with (
                contextlib.suppress(OSError),
                socket.create_connection(("127.0.0.1", self.port), 0.2),
            ):
                return self
            time.sleep(0.05)
        raise AssertionError(f"the node did not listen within {START_SECONDS:g} s")

    def stop(self) -> int:
        """Ctrl-C; the exit status (the node is killed after 30 s)."""
        assert self.process is not None
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
        try:
            return self.process.wait(30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            raise AssertionError("the node did not stop within 30 s of Ctrl-C") from None

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)

    def errors_logged(self) -> list[str]:
        """Lines of the node's log that report a bug answered 500."""
        return [line for line in self.log.read_text().splitlines() if "unexpected error" in line]

    async def request(
        self,
        method: str,
        path: str,
        *,
        auth: bool = True,
        headers: dict[str, str] | None = None,
        **kwargs: Any,
    ) -> tuple[int, Any, dict[str, str]]:
        """One request to ``/api/v1{path}``: status, JSON body (or text), headers."""
        sent = {**(self.auth if auth else {}), **(headers or {})}
        async with (
            aiohttp.ClientSession() as session,
            session.request(method, self.url + path, headers=sent, **kwargs) as response,
        ):
            text = await response.text()
            try:
                body: Any = json.loads(text)
            except ValueError:
                body = text
            return response.status, body, dict(response.headers)
