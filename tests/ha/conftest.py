"""Fixtures for the Home Assistant integration tests.

The harness mounts its own ``custom_components`` package when the ``hass``
fixture starts; importing the repository's integration first keeps it in
``sys.modules`` so Home Assistant loads this repository's code.

``transactiva_node`` starts a real node process (``transactiva node``) on a
free loopback port and stops it afterwards; its home is written in this process
with the same ``init_home`` that ``transactiva init`` calls (a process less per
test). ``start_node`` starts nodes with roles beside the ledger (the meter with a
``pushed`` source, the concentrator with a tariff), other ``config.json``
settings, other genesis parameters, or a local participant that is a prosumer
registered by a separate operator key (as a neighbour's home would be).
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import aiohttp
import pytest
import pytest_socket
from homeassistant.const import CONF_TOKEN, CONF_URL
from homeassistant.core import HomeAssistant, State
from homeassistant.helpers import device_registry as dr
from homeassistant.helpers import entity_registry as er
from homeassistant.helpers.aiohttp_client import async_get_clientsession
from homeassistant.util.async_ import get_scheduled_timer_handles
from pytest_homeassistant_custom_component.common import MockConfigEntry

import custom_components.transactiva  # noqa: F401 - see the module docstring
from custom_components.transactiva.const import DOMAIN
from ledger_core.node.home import Config, Home, init_home, write_config
from ledger_core.types.crypto import SigningKey
from ledger_core.types.tx import TxType, sign

REPO = Path(__file__).resolve().parents[2]
TARIFF = REPO / "docs" / "tariffs" / "example-residential-tou.toml"
PUSHED_METER: dict[str, Any] = {"source": {"type": "pushed"}}


@pytest.fixture(autouse=True)
def auto_enable_custom_integrations(enable_custom_integrations: None) -> None:
    """Let Home Assistant load custom integrations in every test."""


# Home Assistant's report of a deprecated (or wrongly used) API, naming this integration.
DEPRECATION_REPORT = f"Detected that custom integration '{DOMAIN}'"


@pytest.fixture(autouse=True)
def fail_on_deprecation_reports(caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    """Fail any test during which Home Assistant reports this integration's use of a
    deprecated API: such calls break in a later release (in either test lane)."""
    yield
    reports = [
        record.getMessage()
        for when in ("setup", "call", "teardown")
        for record in caplog.get_records(when)
        if DEPRECATION_REPORT in record.getMessage()
    ]
    if reports:
        pytest.fail("\n".join(["Home Assistant reported:", *dict.fromkeys(reports)]))


@pytest.fixture(autouse=True)
def cancel_heartbeats_of_closed_websockets(request: pytest.FixtureRequest) -> Iterator[None]:
    """Cancel the heartbeat timer of a WebSocket that is already closed, before the harness
    looks for lingering timers.

    aiohttp 3.14 (Home Assistant 2026.x) resets a WebSocket's heartbeat whenever bytes arrive
    (aiohttp pull request 12030), also when they arrive just after the socket was closed: the
    timer is armed again on a closed socket, where it does nothing when it fires. Only such
    timers are cancelled; any other timer a test leaves behind still fails it.
    """
    yield
    hass = request.node.funcargs.get("hass")
    if not isinstance(hass, HomeAssistant):
        return
    for handle in get_scheduled_timer_handles(hass.loop):
        socket = getattr(handle._callback, "__self__", None)
        if isinstance(socket, aiohttp.ClientWebSocketResponse) and socket.closed:
            handle.cancel()


@dataclass
class RealNode:
    """A running node: its API URL, token and local participant's address.

    ``operator`` signs as the genesis operator when that is not the local
    participant (``prosumer=True``); otherwise the node signs for it.
    """

    url: str
    token: str
    participant: str
    process: subprocess.Popen[bytes]
    port: int
    home: Path
    operator: Neighbour | None = None

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            self.process.wait(20)

    def restart(self) -> None:
        """Start the node process again (same home, same port)."""
        self.stop()
        self.process = _spawn(self.home)


class StartNode(Protocol):
    """The ``start_node`` fixture."""

    def __call__(
        self,
        name: str = "node",
        *,
        meter: bool = False,
        concentrator: bool = False,
        prosumer: bool = False,
        config: dict[str, Any] | None = None,
        params: dict[str, Any] | None = None,
        before_start: Callable[[Path], None] | None = None,
    ) -> RealNode: ...


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


_PORT_ATTEMPTS = 3
_START_SECONDS = 30


def _listening(home: Path, process: subprocess.Popen[bytes]) -> bool:
    """Wait until the node logs its API's address (True) or stops (False); an
    AssertionError if neither happens within _START_SECONDS."""
    deadline = time.monotonic() + _START_SECONDS
    while "API on http://" not in (home / "node.log").read_text(errors="replace"):
        if process.poll() is not None:
            return False
        if time.monotonic() > deadline:
            process.kill()
            raise AssertionError(f"the node did not start within {_START_SECONDS} s")
        time.sleep(0.05)
    return True


def _spawn(home: Path) -> subprocess.Popen[bytes]:
    with (home / "node.log").open("ab") as log:
        return subprocess.Popen(
            [sys.executable, "-m", "ledger_core", "node", "--dir", str(home)],
            stdout=log,
            stderr=log,
        )


def _init(
    home: Path,
    config: dict[str, Any],
    params: dict[str, Any] | None,
    prosumer: bool,
) -> SigningKey | None:
    """Write a node's home as ``transactiva init`` does, with the settings asked for;
    the operator's key when the local participant is a prosumer instead."""
    files = init_home(home, "transactiva-local", int(time.time()), Config.from_json(config))
    if params:
        genesis = files.genesis()
        files.genesis_file.unlink()
        dataclasses.replace(genesis, params=dataclasses.replace(genesis.params, **params)).save(
            files.genesis_file
        )
    if not prosumer:
        return None
    operator = files.participant_key()
    files.participant_key_file.rename(home / "keys" / "operator.key")
    SigningKey.generate().save(files.participant_key_file)
    return operator


def _start(
    home: Path,
    *,
    meter: bool = False,
    concentrator: bool = False,
    prosumer: bool = False,
    config: dict[str, Any] | None = None,
    params: dict[str, Any] | None = None,
    before_start: Callable[[Path], None] | None = None,
    port: int | None = None,
) -> RealNode:
    chosen = port is None
    port = port or _free_port()
    settings: dict[str, Any] = {"api_port": port, **(config or {})}
    if meter:
        settings["meter"] = PUSHED_METER
    if concentrator:
        settings["concentrator"] = {"tariff": "tariff.toml"}
    operator_key = _init(home, settings, params, prosumer)
    if concentrator:
        shutil.copy(TARIFF, home / "tariff.toml")
    if before_start is not None:
        before_start(home)
    files = Home(home)
    for attempt in range(1, _PORT_ATTEMPTS + 1):
        process = _spawn(home)
        if _listening(home, process):
            break
        log = (home / "node.log").read_text(errors="replace")
        # A port found free can be taken (another worker's connection) before the node
        # binds it: the node then stops at once, and a port picked here is picked again.
        if not (chosen and "address already in use" in log and attempt < _PORT_ATTEMPTS):
            raise AssertionError(log)
        port = _free_port()
        write_config(files, dataclasses.replace(files.config(), api_port=port))
    return RealNode(
        url=f"http://127.0.0.1:{port}",
        token=files.token(),
        participant=files.participant_key().address,
        process=process,
        port=port,
        home=home,
        operator=None
        if operator_key is None
        else Neighbour(operator_key, files.genesis().chain_id),
    )


@pytest.fixture
def start_node(socket_enabled: None, tmp_path: Path) -> Iterator[StartNode]:
    """Start real nodes by name; all are stopped at the end of the test."""
    started: list[RealNode] = []

    def start(name: str = "node", **options: Any) -> RealNode:
        node = _start(tmp_path / name, **options)
        started.append(node)
        return node

    yield start
    for node in started:
        node.stop()


@pytest.fixture
def transactiva_node(start_node: StartNode) -> RealNode:
    """One running node."""
    return start_node("node")


@pytest.fixture(scope="session")
def _idle_node_process(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RealNode]:
    # Picking a free port takes a socket, which the harness allows only inside tests that
    # ask for it; this fixture outlives them.
    pytest_socket.enable_socket()
    try:
        node = _start(tmp_path_factory.mktemp("idle") / "node")
    finally:
        pytest_socket.disable_socket(allow_unix_socket=True)
    yield node
    node.stop()


@pytest.fixture
def idle_node(socket_enabled: None, _idle_node_process: RealNode) -> RealNode:
    """A running node shared by the tests that only need one to answer: no test using it
    submits a transaction or stops it, so its chain holds nothing but empty blocks."""
    assert _idle_node_process.process.poll() is None, "a test stopped the shared node"
    return _idle_node_process


# -- helpers for tests that set up entries against real nodes ---------------------------


async def wait_until(
    predicate: Callable[[], bool], what: str, seconds: float = 20, step: float = 0.05
) -> None:
    """Wait (bounded) until ``predicate`` holds."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return
        await asyncio.sleep(step)
    raise AssertionError(f"timed out after {seconds} s waiting for {what}")


async def wait_for_state(
    hass: HomeAssistant, entity_id: str, wanted: str, seconds: float = 20
) -> State:
    """Wait (bounded) until ``entity_id`` has state ``wanted``; the state."""

    def matches() -> bool:
        state = hass.states.get(entity_id)
        return state is not None and state.state == wanted

    try:
        await wait_until(matches, f"{entity_id} == {wanted}", seconds)
    except AssertionError:
        state = hass.states.get(entity_id)
        raise AssertionError(
            f"{entity_id} is {state.state if state else None}, not {wanted}"
        ) from None
    state = hass.states.get(entity_id)
    assert state is not None
    return state


async def node_post(
    hass: HomeAssistant, node: RealNode, path: str, body: object, *, raw: bytes | None = None
) -> tuple[int, dict[str, Any]]:
    """POST to the node's API with its token; the status and JSON answer."""
    session = async_get_clientsession(hass)
    async with session.post(
        f"{node.url}/api/v1/{path}",
        data=raw if raw is not None else json.dumps(body).encode(),
        headers={"Authorization": f"Bearer {node.token}"},
    ) as response:
        return response.status, await response.json()


async def local(
    hass: HomeAssistant, node: RealNode, tx_type: str, body: dict[str, Any]
) -> dict[str, Any]:
    """Have the node sign and commit a transaction of its local participant."""
    status, result = await node_post(hass, node, f"local/{tx_type}?wait=true", body)
    assert status == 200, result
    assert result["code"] == "ok", result
    return result


async def operate(
    hass: HomeAssistant, node: RealNode, tx_type: str, body: dict[str, Any]
) -> dict[str, Any]:
    """Commit a transaction of the genesis operator (ISO, supplier, DSO)."""
    if node.operator is None:
        return await local(hass, node, tx_type, body)
    return await node.operator.send(hass, node, tx_type, body)


async def node_get(hass: HomeAssistant, node: RealNode, path: str) -> tuple[int, Any]:
    """GET from the node's API with its token; the status and JSON answer."""
    session = async_get_clientsession(hass)
    async with session.get(
        f"{node.url}/api/v1/{path}", headers={"Authorization": f"Bearer {node.token}"}
    ) as response:
        return response.status, await response.json()


async def push_reading(hass: HomeAssistant, node: RealNode, **reading: Any) -> dict[str, Any]:
    """Push a reading to a node's pushed meter source (as Home Assistant's sensors would)."""
    status, answer = await node_post(hass, node, "local/meter/readings", reading)
    assert status == 202, answer
    return answer


@dataclass
class Neighbour:
    """Another registered participant, signing its own transactions for a node's chain."""

    key: SigningKey
    chain_id: str
    nonce: int = 0

    @property
    def address(self) -> str:
        return self.key.address

    async def send(
        self, hass: HomeAssistant, node: RealNode, tx_type: str, body: dict[str, Any]
    ) -> dict[str, Any]:
        self.nonce += 1
        wire = sign(self.key, self.chain_id, TxType(tx_type), self.nonce, body).wire()
        status, result = await node_post(hass, node, "txs?wait=true", None, raw=wire)
        assert status == 200, result
        assert result["code"] == "ok", result
        return result


async def register_neighbour(
    hass: HomeAssistant, node: RealNode, name: str, *, money: int = 0
) -> Neighbour:
    """Register a prosumer on the node's chain (and fund it with ``money`` centavos)."""
    key = SigningKey.generate()
    await operate(hass, node, "register", {"public_key": key.public_key.hex(), "role": "prosumer"})
    neighbour = Neighbour(key, "transactiva-local")
    if money:
        request = await neighbour.send(hass, node, "deposit_request", {"amount": money})
        await operate(hass, node, "deposit_confirm", {"request": request["id"]})
    return neighbour


async def register_local_prosumer(hass: HomeAssistant, node: RealNode) -> None:
    """Register a ``prosumer=True`` node's local participant (its key is in the home)."""
    key = Home(node.home).participant_key()
    await operate(hass, node, "register", {"public_key": key.public_key.hex(), "role": "prosumer"})


async def call_action(
    hass: HomeAssistant, service: str, entry: MockConfigEntry, **data: Any
) -> dict[str, Any]:
    """Call one of the integration's actions for ``entry`` and return its response."""
    response = await hass.services.async_call(
        DOMAIN,
        service,
        {"config_entry_id": entry.entry_id, **data},
        blocking=True,
        return_response=True,
    )
    assert response is not None
    return dict(response)


async def setup_entry(
    hass: HomeAssistant,
    url: str,
    node: RealNode,
    options: dict[str, Any] | None = None,
) -> MockConfigEntry:
    """Add and set up an entry for ``node`` reached at ``url``."""
    entry = MockConfigEntry(
        domain=DOMAIN,
        title="Casa",
        unique_id=node.participant,
        data={CONF_URL: url, CONF_TOKEN: node.token},
        options=options or {},
    )
    entry.add_to_hass(hass)
    assert await hass.config_entries.async_setup(entry.entry_id)
    await hass.async_block_till_done()
    return entry


def node_devices(
    hass: HomeAssistant, node: RealNode, key: str | None = None
) -> list[dr.DeviceEntry]:
    """The node's devices with one identifier: the node's own (``key`` None) or the one
    ending in ``_{key}``, looked up among the devices of the integration's entries
    (identifiers are unique within an entry only)."""
    wanted = (DOMAIN, node.participant if key is None else f"{node.participant}_{key}")
    registry = dr.async_get(hass)
    return [
        device
        for entry in hass.config_entries.async_entries(DOMAIN)
        for device in dr.async_entries_for_config_entry(registry, entry.entry_id)
        if wanted in device.identifiers
    ]


def node_device(hass: HomeAssistant, node: RealNode, key: str | None = None) -> dr.DeviceEntry:
    """The one device of the node with that identifier (see ``node_devices``)."""
    (device,) = node_devices(hass, node, key)
    return device


def entity_id(hass: HomeAssistant, platform: str, node: RealNode, key: str) -> str:
    """The entity id of one of the node's entities by its unique id's key."""
    found = er.async_get(hass).async_get_entity_id(platform, DOMAIN, f"{node.participant}_{key}")
    assert found is not None, key
    return found


CONTRACT = """\
Contract 'lavado barato'
Valid from 2026/01/01 00:00:00 to 2030/12/31 23:59:59
Consumption true
Production true
Store false
DemandResponse false
IF Price < 3 THEN
  TURN ON DEVICE 'Lavadora'
ENDIF
Parties: ISO
"""
