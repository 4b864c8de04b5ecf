"""Running the ``transactiva`` command and node processes for the journey tests.

Every step a person takes is a ``transactiva ...`` subprocess (``python -m ledger_core``,
with this checkout first on the path); the test itself only reads the nodes' APIs to
wait for conditions and to check results, and sets the accelerated clock (``clock_*`` in
``config.json``, for demos and tests) so that intervals pass in seconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

import aiohttp

REPO: Final = Path(__file__).resolve().parents[2]
TARIFF: Final = REPO / "docs" / "tariffs" / "example-residential-tou.toml"
WAIT: Final = 90.0  # real seconds any one condition may take on a loaded machine
OFFSET: Final = -360  # the genesis default: Mexico's central zone


def _env() -> dict[str, str]:
    path = os.pathsep.join([str(REPO), str(REPO / "client"), os.environ.get("PYTHONPATH", "")])
    return {**os.environ, "PYTHONPATH": path, "PYTHONUNBUFFERED": "1"}


@dataclass(frozen=True, slots=True)
class Ran:
    """A finished command: exit status and what it printed."""

    args: tuple[str, ...]
    status: int
    out: str
    err: str

    @property
    def last_line(self) -> str:
        lines = self.out.strip().splitlines()
        return lines[-1] if lines else ""

    def ok(self) -> Ran:
        """This run, which must have succeeded."""
        assert self.status == 0, f"transactiva {' '.join(self.args)}: {self.status}\n{self.err}"
        return self


async def transactiva(*args: str, seconds: float = 120.0) -> Ran:
    """Run ``transactiva ARGS`` and wait for it (bounded)."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "ledger_core",
        *args,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=_env(),
    )
    try:
        out, err = await asyncio.wait_for(process.communicate(), seconds)
    except TimeoutError:
        process.kill()
        await process.wait()
        raise AssertionError(
            f"transactiva {' '.join(args)} did not finish in {seconds} s"
        ) from None
    assert process.returncode is not None
    return Ran(args, process.returncode, out.decode(), err.decode())


@dataclass
class NodeProcess:
    """``transactiva node --dir HOME`` running, with its log in HOME/node.log."""

    home: Path
    process: subprocess.Popen[bytes] | None = None
    session: aiohttp.ClientSession | None = field(default=None, repr=False)

    @property
    def config(self) -> dict[str, Any]:
        loaded: dict[str, Any] = json.loads((self.home / "config.json").read_text())
        return loaded

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.config['api_port']}/api/v1"

    @property
    def token(self) -> str:
        return (self.home / "api-token").read_text().strip()

    def start(self) -> None:
        with (self.home / "node.log").open("ab") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "ledger_core", "node", "--dir", str(self.home)],
                stdout=log,
                stderr=subprocess.STDOUT,
                env=_env(),
            )

    def log(self) -> str:
        path = self.home / "node.log"
        return path.read_text(errors="replace")[-6000:] if path.exists() else ""

    def alive(self) -> None:
        if self.process is not None and self.process.poll() is not None:
            raise AssertionError(f"the node in {self.home} exited:\n{self.log()}")

    async def get(self, path: str) -> Any:
        """``GET`` an API path with the home's token; None for a 4xx (e.g. not yet there)."""
        if self.session is None:
            self.session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10))
        headers = {"Authorization": f"Bearer {self.token}"}
        async with self.session.get(self.url + path, headers=headers) as response:
            if 400 <= response.status < 500:
                return None
            response.raise_for_status()
            return await response.json()

    async def stop(self) -> None:
        if self.session is not None:
            await self.session.close()
            self.session = None
        process = self.process
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGTERM)
        for _ in range(200):
            if process.poll() is not None:
                return
            await asyncio.sleep(0.1)
        process.kill()
        process.wait(10)


async def wait_for[T](
    what: str,
    check: Callable[[], Awaitable[T | None]],
    nodes: list[NodeProcess],
    seconds: float = WAIT,
) -> T:
    """Poll ``check`` until it returns something truthy; fail after ``seconds``."""
    deadline = time.monotonic() + seconds
    while True:
        for node in nodes:
            node.alive()
        with contextlib.suppress(aiohttp.ClientError, OSError, TimeoutError):
            found = await check()
            if found:
                return found
        if time.monotonic() > deadline:
            logs = "\n".join(f"--- {n.home.name}:\n{n.log()[-2500:]}" for n in nodes)
            raise AssertionError(f"waited {seconds} s for {what}\n{logs}")
        await asyncio.sleep(0.25)


def set_config(home: Path, **changes: Any) -> None:
    """Change settings in HOME/config.json (the accelerated clock, meter sampling)."""
    path = home / "config.json"
    config = json.loads(path.read_text())
    config.update(changes)
    path.write_text(json.dumps(config, indent=2) + "\n")


def local_midnight(seconds: float) -> int:
    """Unix seconds of the local midnight that began the day of ``seconds``."""
    local = int(seconds) + OFFSET * 60
    return local - local % 86400 - OFFSET * 60
