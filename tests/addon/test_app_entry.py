"""``transactiva app``: options to a node home for every role, discovery through a stand-in
Supervisor, backups, restarts -- and the app's s6 ``run`` script starting a real node process
on this machine against a sample options file."""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import os
import shutil
import signal
import sqlite3
import sys
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path, PurePath
from typing import Any

import aiohttp
import pytest
import yaml
from aiohttp import web
from hypothesis import given
from hypothesis import strategies as st

from ledger_core import cli
from ledger_core.cli.ha_app import (
    INGRESS_PROXY,
    AppOptions,
    OptionsError,
    RunSettings,
    announce,
    backoff_delays,
    discovery_payload,
    parse_options,
    prepare,
    read_options,
    run_app,
    snapshot_databases,
)
from ledger_core.demo.chain import free_port
from ledger_core.node.home import Home
from ledger_core.types.crypto import SigningKey
from ledger_core.types.genesis import Genesis, Operator, Params, Validator
from tests.addon.helpers import parse_or_error
from tests.agent.test_services import until

REPO = Path(__file__).resolve().parents[2]
APP = REPO / "addon"
RUN_SCRIPT = APP / "rootfs/etc/s6-overlay/s6-rc.d/transactiva/run"
TARIFF = REPO / "docs" / "tariffs" / "example-residential-tou.toml"
DEFAULTS: dict[str, Any] = yaml.safe_load((APP / "config.yaml").read_text())["options"]


def options(**changes: Any) -> dict[str, Any]:
    return {**DEFAULTS, **changes}


# -- options ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw", "option", "words"),
    [
        ([], "(all)", "JSON object"),
        (options(colour="red"), "colour", "not an option"),
        ({k: v for k, v in DEFAULTS.items() if k != "role"}, "role", "required"),
        (options(role="prosumer"), "role", "one of home, concentrator, validator"),
        (options(chain_id="Barrio 1"), "chain_id", "lower-case"),
        (options(seeds="a:1"), "seeds", "list"),
        (options(seeds=[5]), "seeds", "item 1 must be text"),
        (options(seeds=["nothing"]), "seeds", "host:port"),
        (options(seeds=["a:99999"]), "seeds", "1 to 65535"),
        (options(meter_source="smartpi"), "smartpi_url", "required when meter_source is smartpi"),
        (options(meter_source="smartpi", smartpi_url="ftp://x"), "smartpi_url", "http"),
        (options(concentrator_url="concentrador:8765"), "concentrator_url", "http"),
        (options(meter_source="mqtt"), "mqtt_host", "required when meter_source is mqtt"),
        (options(mqtt_host="bad host!"), "mqtt_host", "host name"),
        (options(mqtt_port=0), "mqtt_port", "1 to 65535"),
        (options(mqtt_port=True), "mqtt_port", "1 to 65535"),
        (options(mqtt_topic_base=7), "mqtt_topic_base", "text"),
        (options(mqtt_topic_base="x" * 1025), "mqtt_topic_base", "longer than"),
        (options(role="concentrator"), "tariff_file", "needs its tariff"),
        (options(log_level="loud"), "log_level", "debug, info, warning, error"),
        (options(invitation_code="hola"), "invitation_code", "starts with TV1-"),
        (options(invitation_code="TV1-AAAAA-AAA"), "invitation_code", "mistyped"),
    ],
)
def test_options_the_node_cannot_run_with_are_named_and_explained(
    raw: object, option: str, words: str
) -> None:
    with pytest.raises(OptionsError) as caught:
        parse_options(raw)
    assert caught.value.option == option
    assert words in str(caught.value)
    assert str(caught.value).startswith(f"option {option!r}: ")


def test_empty_optional_text_counts_as_absent() -> None:
    parsed = parse_options(options(genesis_file="  ", mqtt_topic_base=""))
    assert parsed.genesis_file is None
    assert parsed.mqtt_topic_base is None


@given(
    st.dictionaries(
        st.sampled_from([*DEFAULTS, "smartpi_url", "mqtt_port", "tariff_file", "x"]),
        st.one_of(
            st.none(),
            st.booleans(),
            st.integers(),
            st.text(max_size=30),
            st.lists(st.text(max_size=8), max_size=3),
        ),
    )
)
def test_any_json_options_give_options_or_an_options_error(raw: dict[str, Any]) -> None:
    outcome = parse_or_error({**DEFAULTS, **raw})
    if isinstance(outcome, OptionsError):
        assert outcome.option
        assert str(outcome).startswith(f"option {outcome.option!r}: ")
    else:
        assert isinstance(outcome, AppOptions)


def test_read_options_says_what_is_wrong_with_the_file(tmp_path: Path) -> None:
    path = tmp_path / "options.json"
    with pytest.raises(OptionsError, match="cannot read"):
        read_options(path)
    path.write_bytes(b"\xff\xfe")
    with pytest.raises(OptionsError, match="not UTF-8"):
        read_options(path)
    path.write_text("{role: home")
    with pytest.raises(OptionsError, match="not JSON"):
        read_options(path)
    path.write_text(json.dumps(DEFAULTS))
    assert read_options(path).role == "home"


# -- the node's home for each role ---------------------------------------------------------


def config_json(data: Path) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((data / "node" / "config.json").read_text())
    return loaded


def test_a_home_with_home_assistant_sensors(tmp_path: Path) -> None:
    prepared = prepare(parse_options(options(seeds=["192.168.1.20:26656"])), tmp_path, ())
    assert prepared.created
    config = config_json(tmp_path)
    assert config["meter"] == {"source": {"type": "pushed", "name": "home_assistant"}}
    assert config["execute_contracts"] is True
    assert config["concentrator"] is None
    assert config["role"] == "validator"
    assert (config["api_host"], config["api_port"]) == ("0.0.0.0", 8765)  # noqa: S104
    assert (config["p2p_host"], config["p2p_port"]) == ("0.0.0.0", 26656)  # noqa: S104
    assert config["seeds"] == ["192.168.1.20:26656"]
    assert config["ingress_proxy"] == INGRESS_PROXY
    home = Home(tmp_path / "node")
    assert home.genesis().chain_id == "transactiva-local"
    for name in ("keys/validator.key", "keys/participant.key", "keys/node.key", "api-token"):
        assert (home.path / name).stat().st_mode & 0o777 == 0o600, name
    assert home.config_file.stat().st_mode & 0o777 == 0o600


def test_a_home_reading_a_smartpi_or_mqtt(tmp_path: Path) -> None:
    smartpi = options(
        meter_source="smartpi",
        smartpi_url="http://192.168.1.50:1080",
        concentrator_url="https://concentrador.barrio:8765",
    )
    prepare(parse_options(smartpi), tmp_path / "a", ())
    # The readings go to the concentrator (the ledger gets their commitments).
    assert config_json(tmp_path / "a")["meter"] == {
        "source": {"type": "smartpi", "url": "http://192.168.1.50:1080"},
        "concentrator": "https://concentrador.barrio:8765",
    }
    mqtt = options(
        meter_source="mqtt",
        mqtt_host="broker.local",
        mqtt_port=1884,
        mqtt_topic_base="smartpi",
        mqtt_username="casa",
        mqtt_password="s3creto",  # noqa: S106 - a test broker's
    )
    prepare(parse_options(mqtt), tmp_path / "b", ())
    assert config_json(tmp_path / "b")["meter"] == {
        "source": {
            "type": "mqtt",
            "host": "broker.local",
            "port": 1884,
            "base_topic": "smartpi",
            "username": "casa",
            "password": "s3creto",
        }
    }
    prepare(parse_options(options(meter_source="none")), tmp_path / "c", ())
    assert config_json(tmp_path / "c")["meter"] is None


def test_a_concentrator_copies_its_tariff_from_the_config_folder(tmp_path: Path) -> None:
    config_dir, share = tmp_path / "config", tmp_path / "share"
    (share / "transactiva").mkdir(parents=True)
    config_dir.mkdir()
    shutil.copy(TARIFF, share / "transactiva" / "tou.toml")
    wanted = options(role="concentrator", tariff_file="transactiva/tou.toml")
    prepared = prepare(parse_options(wanted), tmp_path / "data", (config_dir, share))
    config = config_json(tmp_path / "data")
    assert config["concentrator"] == {"tariff": "tariff.toml"}
    assert config["meter"] is None
    assert config["execute_contracts"] is False
    copied = tmp_path / "data" / "node" / "tariff.toml"
    assert copied.read_bytes() == TARIFF.read_bytes()
    assert any(str(share / "transactiva" / "tou.toml") in note for note in prepared.notes)


def test_a_concentrator_tariff_that_is_missing_or_wrong_is_named(tmp_path: Path) -> None:
    wanted = parse_options(options(role="concentrator", tariff_file="nope.toml"))
    with pytest.raises(OptionsError, match=r"no such file; looked for .*nope\.toml"):
        prepare(wanted, tmp_path / "data", (tmp_path,))
    (tmp_path / "bad.toml").write_text("kind = 'time_of_use'\n")
    with pytest.raises(OptionsError) as caught:
        prepare(
            parse_options(options(role="concentrator", tariff_file=str(tmp_path / "bad.toml"))),
            tmp_path / "data",
            (),
        )
    assert caught.value.option == "tariff_file"
    assert "bad.toml" in caught.value.message
    assert not (tmp_path / "data" / "node" / "genesis.json").exists()


def test_a_validator_of_its_own_chain(tmp_path: Path) -> None:
    prepare(parse_options(options(role="validator", chain_id="barrio-7")), tmp_path, ())
    config = config_json(tmp_path)
    assert config["meter"] is None
    assert config["execute_contracts"] is False
    assert config["role"] == "validator"
    assert Home(tmp_path / "node").genesis().chain_id == "barrio-7"


def _genesis(path: Path, validator: SigningKey | None = None) -> Genesis:
    operator = SigningKey.generate()
    genesis = Genesis(
        chain_id="barrio-2",
        genesis_time=1_795_000_000,
        operators=(Operator(operator.public_key, ("ISO", "SUPPLIER", "DSO")),),
        validators=(Validator((validator or SigningKey.generate()).public_key, 10),),
        params=Params(),
    )
    genesis.save(path)
    return genesis


def test_a_home_joining_a_chain_follows_it_as_an_observer(tmp_path: Path) -> None:
    genesis = _genesis(tmp_path / "genesis.json")
    wanted = options(genesis_file="genesis.json", seeds=["tv" + "a" * 40 + "@192.168.1.2:26656"])
    prepared = prepare(parse_options(wanted), tmp_path / "data", (tmp_path,))
    config = config_json(tmp_path / "data")
    assert config["role"] == "observer"
    home = Home(tmp_path / "data" / "node")
    assert home.genesis() == genesis
    assert not home.validator_key_file.exists()
    assert home.participant_key_file.exists()
    assert any("joined chain 'barrio-2'" in note for note in prepared.notes)


def test_a_validator_joining_needs_its_key_in_the_genesis(tmp_path: Path) -> None:
    _genesis(tmp_path / "genesis.json")
    wanted = parse_options(options(role="validator", genesis_file="genesis.json"))
    with pytest.raises(OptionsError) as caught:
        prepare(wanted, tmp_path / "data", (tmp_path,))
    home = Home(tmp_path / "data" / "node")
    key = home.validator_key()
    assert key.public_key.hex() in caught.value.message
    # The operator adds the key; the node, which never ran, takes the new genesis.
    _genesis(tmp_path / "genesis.json", validator=key)
    prepared = prepare(wanted, tmp_path / "data", (tmp_path,))
    assert any("genesis replaced" in note for note in prepared.notes)
    assert home.validator_key().public_key == key.public_key


def test_a_restart_keeps_keys_token_and_chain_and_refuses_another_chain(tmp_path: Path) -> None:
    first = prepare(parse_options(options(chain_id="barrio-3")), tmp_path, ())
    home = first.home
    before = {
        name: (home.path / name).read_bytes()
        for name in ("genesis.json", "api-token", "keys/validator.key", "keys/participant.key")
    }
    second = prepare(
        parse_options(options(chain_id="barrio-3", meter_source="none", log_level="debug")),
        tmp_path,
        (),
    )
    assert not second.created
    assert second.config.meter is None
    for name, content in before.items():
        assert (home.path / name).read_bytes() == content, name
    with pytest.raises(OptionsError) as caught:
        prepare(parse_options(options(chain_id="barrio-4")), tmp_path, ())
    assert caught.value.option == "chain_id"
    assert "barrio-3" in caught.value.message
    (tmp_path / "other.json").write_bytes(b"{}")
    with pytest.raises(OptionsError, match="not a genesis file"):
        prepare(parse_options(options(genesis_file=str(tmp_path / "other.json"))), tmp_path, ())
    _genesis(tmp_path / "genesis.json")
    (home.path / "ledger.db").write_bytes(b"")
    with pytest.raises(OptionsError, match="already keeps chain 'barrio-3'"):
        prepare(parse_options(options(genesis_file=str(tmp_path / "genesis.json"))), tmp_path, ())


def test_a_node_folder_without_genesis_is_not_overwritten(tmp_path: Path) -> None:
    (tmp_path / "node").mkdir()
    (tmp_path / "node" / "notes.txt").write_text("mine")
    with pytest.raises(OptionsError, match=r"holds files but no genesis\.json"):
        prepare(parse_options(DEFAULTS), tmp_path, ())


def test_app_config_command_prints_what_it_did(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "options.json").write_text(json.dumps(options(chain_id="barrio-5")))
    out = io.StringIO()
    assert cli.main(["app", "config", "--data", str(tmp_path)], out) == 0
    text = out.getvalue()
    assert "home node of chain 'barrio-5'" in text
    assert "created chain 'barrio-5'" in text
    assert Home(tmp_path / "node").participant_key().address in text
    (tmp_path / "options.json").write_text(json.dumps(options(role="nobody")))
    assert cli.main(["app", "config", "--data", str(tmp_path)], out) == 78
    assert "option 'role'" in capsys.readouterr().err


# -- discovery ----------------------------------------------------------------------------


@dataclass
class Supervisor:
    """A stand-in for the Supervisor's discovery API on 127.0.0.1."""

    token: str
    refuse_first: int = 0
    received: list[tuple[dict[str, str], Any]] = field(default_factory=list)
    url: str = ""

    async def discovery(self, request: web.Request) -> web.Response:
        self.received.append((dict(request.headers), await request.json()))
        if request.headers.get("Authorization") != f"Bearer {self.token}":
            return web.json_response({"result": "error", "message": "forbidden"}, status=403)
        if len(self.received) <= self.refuse_first:
            return web.json_response({"result": "error", "message": "busy"}, status=503)
        return web.json_response({"result": "ok", "data": {"uuid": "d" * 32}})


@contextlib.asynccontextmanager
async def supervisor(token: str, refuse_first: int = 0) -> AsyncIterator[Supervisor]:
    stand_in = Supervisor(token, refuse_first)
    app = web.Application()
    app.router.add_post("/discovery", stand_in.discovery)
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    site = web.TCPSite(runner, "127.0.0.1", port)
    await site.start()
    stand_in.url = f"http://127.0.0.1:{port}/discovery"
    try:
        yield stand_in
    finally:
        await runner.cleanup()


async def test_announce_retries_until_the_supervisor_takes_the_message() -> None:
    payload = discovery_payload("a0d7b954-transactiva", 8765, "t" * 64)
    assert payload == {
        "service": "transactiva",
        "config": {"host": "a0d7b954-transactiva", "port": 8765, "token": "t" * 64},
    }
    waits: list[int] = []

    def delay(attempt: int) -> float:
        waits.append(attempt)
        return 0.01

    async with supervisor("s" * 40, refuse_first=2) as stand_in:
        uuid = await announce(stand_in.url, "s" * 40, payload, asyncio.Event(), delay=delay)
    assert uuid == "d" * 32
    assert waits == [1, 2]
    assert len(stand_in.received) == 3
    headers, body = stand_in.received[-1]
    assert headers["Authorization"] == "Bearer " + "s" * 40
    assert headers["Content-Type"].startswith("application/json")
    assert body == payload


async def test_announce_keeps_trying_an_unreachable_supervisor_until_stopped() -> None:
    stop = asyncio.Event()
    attempts: list[int] = []

    def delay(attempt: int) -> float:
        attempts.append(attempt)
        if attempt == 3:
            stop.set()
        return 0.01

    url = f"http://127.0.0.1:{free_port()}/discovery"
    assert await announce(url, "s", {"service": "transactiva"}, stop, delay=delay) is None
    assert attempts == [1, 2, 3]


def test_backoff_doubles_up_to_a_minute_with_jitter() -> None:
    delay = backoff_delays()
    for attempt, base in ((1, 1.0), (2, 2.0), (3, 4.0), (7, 60.0), (50, 60.0)):
        for _ in range(20):
            assert 0.8 * base <= delay(attempt) <= 1.2 * base


async def test_run_app_serves_the_node_and_announces_it_once_it_listens(tmp_path: Path) -> None:
    api, p2p = free_port(), free_port()
    prepared = prepare(parse_options(options(chain_id="barrio-6")), tmp_path, (), ports=(api, p2p))
    stop = asyncio.Event()
    async with supervisor("super") as stand_in:
        settings = RunSettings(
            data=tmp_path,
            discovery_url=stand_in.url,
            supervisor_token="super",  # noqa: S106
            hostname="a0d7b954-transactiva",
        )
        task = asyncio.create_task(run_app(settings, prepared, stop))
        try:
            await until(lambda: _received(stand_in), "the discovery message")
            _headers, body = stand_in.received[0]
            assert body == discovery_payload("a0d7b954-transactiva", api, prepared.home.token())
            async with aiohttp.ClientSession() as session:
                status_url = f"http://127.0.0.1:{api}/api/v1/status"
                async with session.get(status_url) as response:
                    assert (await response.json())["chain_id"] == "barrio-6"
                bearer = {"Authorization": f"Bearer {prepared.home.token()}"}
                summary_url = f"http://127.0.0.1:{api}/api/v1/web/summary"
                async with session.get(summary_url, headers=bearer) as response:
                    summary = await response.json()
                assert summary["ingress"] is True
                assert summary["peers"] == []
                assert summary["p2p"].endswith(f":{p2p}")
                assert summary["roles"]["meter"] is True
        finally:
            stop.set()
            await asyncio.wait_for(task, 30)


async def _received(stand_in: Supervisor) -> bool:
    return bool(stand_in.received)


async def test_run_app_without_a_supervisor_token_runs_without_discovery(tmp_path: Path) -> None:
    api, p2p = free_port(), free_port()
    prepared = prepare(parse_options(DEFAULTS), tmp_path, (), ports=(api, p2p))
    stop = asyncio.Event()
    task = asyncio.create_task(run_app(RunSettings(data=tmp_path), prepared, stop))

    async def listening() -> bool:
        with contextlib.suppress(OSError):
            _reader, writer = await asyncio.open_connection("127.0.0.1", api)
            writer.close()
            await writer.wait_closed()
            return True
        return False

    await until(listening, "the API")
    stop.set()
    await asyncio.wait_for(task, 30)


async def test_run_app_joins_a_chain_as_an_observer(tmp_path: Path) -> None:
    _genesis(tmp_path / "genesis.json")
    api = free_port()
    prepared = prepare(
        parse_options(options(genesis_file=str(tmp_path / "genesis.json"))),
        tmp_path / "data",
        (),
        ports=(api, free_port()),
    )
    stop = asyncio.Event()
    settings = RunSettings(discovery_url=f"http://127.0.0.1:{free_port()}/discovery")
    task = asyncio.create_task(run_app(settings, prepared, stop))
    try:
        deadline = time.monotonic() + 30
        async with aiohttp.ClientSession() as session:
            while True:
                assert not task.done(), task
                assert time.monotonic() < deadline, "the observer's API never answered"
                with contextlib.suppress(aiohttp.ClientError):
                    async with session.get(f"http://127.0.0.1:{api}/api/v1/status") as answer:
                        if answer.status == 200:
                            status = await answer.json()
                            break
                await asyncio.sleep(0.2)
        assert status["validator"] is None  # an observer follows; it never votes
    finally:
        stop.set()
        await asyncio.wait_for(task, 30)


# -- the s6 run script against a sample options file, as processes -------------------------


@dataclass
class AppProcess:
    process: asyncio.subprocess.Process
    data: Path
    api: int

    @property
    def token(self) -> str:
        return Home(self.data / "node").token()


async def start_run_script(
    data: Path, env: dict[str, str], api: int, p2p: int, log: Path
) -> AppProcess:
    environment = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        "PYTHONPATH": str(REPO),
        "TRANSACTIVA_APP_DATA": str(data),
        "TRANSACTIVA_APP_API_PORT": str(api),
        "TRANSACTIVA_APP_P2P_PORT": str(p2p),
        **env,
    }
    with log.open("ab") as sink:
        process = await asyncio.create_subprocess_exec(
            "sh", str(RUN_SCRIPT), env=environment, stdout=sink, stderr=sink
        )
    return AppProcess(process, data, api)


async def stop_process(app: AppProcess) -> int:
    if app.process.returncode is None:
        app.process.send_signal(signal.SIGTERM)
    try:
        return await asyncio.wait_for(app.process.wait(), 30)
    except TimeoutError:
        app.process.kill()
        return await app.process.wait()


async def test_the_run_script_starts_a_home_that_announces_itself_and_takes_readings(
    tmp_path: Path,
) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "options.json").write_text(json.dumps(options(chain_id="barrio-9")))
    api, p2p = free_port(), free_port()
    log = tmp_path / "app.log"
    async with supervisor("super-token") as stand_in, aiohttp.ClientSession() as session:
        env = {
            "SUPERVISOR_TOKEN": "super-token",
            "TRANSACTIVA_DISCOVERY_URL": stand_in.url,
            "TRANSACTIVA_APP_HOSTNAME": "a0d7b954-transactiva",
        }
        app = await start_run_script(data, env, api, p2p, log)
        try:
            await until(lambda: _received(stand_in), "discovery", 60)
            _headers, body = stand_in.received[0]
            assert body == discovery_payload("a0d7b954-transactiva", api, app.token)
            base = f"http://127.0.0.1:{api}/api/v1"
            bearer = {"Authorization": f"Bearer {app.token}"}
            async with session.get(f"{base}/status") as response:
                status = await response.json()
            assert status["chain_id"] == "barrio-9"
            reading = {"power": 850.0, "import_kwh_total": 1234.5, "export_kwh_total": 10.0}
            async with session.post(
                f"{base}/local/meter/readings", json=reading, headers=bearer
            ) as response:
                assert response.status == 202, await response.text()
            async with session.post(f"{base}/local/meter/readings", json=reading) as response:
                assert response.status == 401
            # Outside Home Assistant's proxy the pages are refused (the app is behind ingress).
            async with session.get(f"http://127.0.0.1:{api}/") as response:
                assert response.status == 403
                assert (await response.json())["error"]["code"] == "forbidden"

            async def meter_read() -> bool:
                async with session.get(f"{base}/local/meter", headers=bearer) as response:
                    return response.status == 200 and (await response.json())["power"] == 850.0

            await until(meter_read, "the pushed reading")
            assert await stop_process(app) == 0
            first_height = status["height"]

            # A second start keeps keys, token and chain, and announces the same node again.
            token, participant = app.token, status["participant"]
            app = await start_run_script(data, env, api, p2p, log)
            await until(lambda: _count(stand_in, 2), "the second discovery", 60)
            assert stand_in.received[1][1]["config"]["token"] == token
            async with session.get(f"{base}/status") as response:
                again = await response.json()
            assert again["participant"] == participant
            assert again["height"] >= first_height
        finally:
            await stop_process(app)
    text = log.read_text()
    assert "transactiva: starting the node" in text
    assert "home node of chain 'barrio-9'" in text


async def _count(stand_in: Supervisor, n: int) -> bool:
    return len(stand_in.received) >= n


async def test_the_run_script_exits_78_naming_a_bad_option(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "options.json").write_text(json.dumps(options(meter_source="smartpi")))
    log = tmp_path / "app.log"
    app = await start_run_script(data, {}, free_port(), free_port(), log)
    assert await asyncio.wait_for(app.process.wait(), 60) == 78
    assert "option 'smartpi_url': is required when meter_source is smartpi" in log.read_text()


# -- hot backups ---------------------------------------------------------------------------


def _archive(data: Path, target: Path) -> None:
    """What the Supervisor archives: /data without the backup_exclude patterns."""
    patterns = yaml.safe_load((APP / "config.yaml").read_text())["backup_exclude"]
    for path in data.rglob("*"):
        relative = path.relative_to(data)
        if path.is_dir() or any(PurePath("/data/app", relative).match(p) for p in patterns):
            continue
        (target / relative).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(path, target / relative)


async def test_a_hot_backup_restores_the_chain(tmp_path: Path) -> None:
    data = tmp_path / "data"
    api, p2p = free_port(), free_port()
    prepared = prepare(parse_options(options(chain_id="barrio-8")), data, (), ports=(api, p2p))
    stop = asyncio.Event()
    task = asyncio.create_task(run_app(RunSettings(data=data), prepared, stop))
    base = f"http://127.0.0.1:{api}/api/v1"
    headers = {"Authorization": f"Bearer {prepared.home.token()}"}
    try:
        async with aiohttp.ClientSession(headers=headers) as session:

            async def status() -> dict[str, Any] | None:
                with contextlib.suppress(aiohttp.ClientError):
                    async with session.get(f"{base}/status") as response:
                        return dict(await response.json())
                return None

            await until(status, "the API")
            async with session.post(
                f"{base}/local/deposit_request?wait=true", json={"amount": 5000}
            ) as response:
                assert response.status == 200, await response.text()
            # The backup, while the node keeps writing.
            out = io.StringIO()
            assert cli.main(["app", "backup-pre", "--data", str(data)], out) == 0
            assert "ledger.db" in out.getvalue()
            height = (await status() or {})["height"]
            _archive(data, tmp_path / "restored")
            assert cli.main(["app", "backup-post", "--data", str(data)], out) == 0
            assert not (data / "snapshot").exists()
    finally:
        stop.set()
        await asyncio.wait_for(task, 30)
    restored = tmp_path / "restored"
    assert not (restored / "node" / "ledger.db").exists()
    with contextlib.closing(sqlite3.connect(restored / "snapshot" / "ledger.db")) as db:
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    again = prepare(parse_options(options(chain_id="barrio-8")), restored, (), ports=(api, p2p))
    assert any("restored from the backup's snapshot: ledger.db" in n for n in again.notes)
    assert not (restored / "snapshot").exists()
    stop = asyncio.Event()
    task = asyncio.create_task(run_app(RunSettings(data=restored), again, stop))
    try:
        async with aiohttp.ClientSession() as session:

            async def height_back() -> bool:
                with contextlib.suppress(aiohttp.ClientError):
                    async with session.get(f"{base}/status") as response:
                        return int((await response.json())["height"]) >= height - 1
                return False

            await until(height_back, "the restored node")
    finally:
        stop.set()
        await asyncio.wait_for(task, 30)


def test_backup_pre_without_databases_and_its_failure(tmp_path: Path) -> None:
    assert snapshot_databases(tmp_path) == []
    out = io.StringIO()
    (tmp_path / "node").mkdir()
    (tmp_path / "node" / "ledger.db").write_bytes(b"not a database at all" * 100)
    assert cli.main(["app", "backup-pre", "--data", str(tmp_path)], out) == 1


# -- joining with an invitation code ---------------------------------------------------------


def _env() -> dict[str, str]:
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), str(REPO / "client")])}


def _transactiva(*args: str, env: dict[str, str] | None = None) -> Any:
    """``transactiva ARGS`` in a process of its own (as the app's scripts run it)."""
    import subprocess  # noqa: PLC0415 - only these tests start other commands

    return subprocess.run(
        [sys.executable, "-m", "ledger_core", *args], capture_output=True, text=True,
        timeout=120, env=env or _env(), check=False,
    )  # fmt: skip


@contextlib.contextmanager
def _operator(home: Path) -> Any:
    import subprocess  # noqa: PLC0415

    made = _transactiva("init", "--dir", str(home), "--chain-id", "barrio-app",
                        "--api-port", str(free_port()), "--p2p-port", str(free_port()),
                        "--p2p-host", "127.0.0.1")  # fmt: skip
    assert made.returncode == 0, made.stderr
    with (home / "node.log").open("ab") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "ledger_core", "node", "--dir", str(home)],
            stdout=log, stderr=subprocess.STDOUT, env=_env(),
        )  # fmt: skip
    try:
        deadline = time.monotonic() + 30
        while "API on http://" not in (home / "node.log").read_text(errors="replace"):
            assert process.poll() is None, (home / "node.log").read_text()
            assert time.monotonic() < deadline, "the operator's node did not start"
            time.sleep(0.1)
        yield process
    finally:
        process.terminate()
        process.wait(20)


def _app_config(data: Path, wanted: dict[str, Any]) -> Any:
    """``transactiva app config`` with these options, as the app runs it on start."""
    data.mkdir(parents=True, exist_ok=True)
    (data / "options.json").write_text(json.dumps(wanted))
    env = {**_env(), "TRANSACTIVA_APP_ROOTS": str(data)}
    return _transactiva("app", "config", "--data", str(data), env=env)


def test_a_home_joins_with_its_invitation_code_on_the_first_start(tmp_path: Path) -> None:
    with _operator(tmp_path / "operador"):
        invited = _transactiva(
            "operator", "invite", "casa-app", "--dir", str(tmp_path / "operador")
        )
        code = invited.stdout.strip().splitlines()[-1]
        data = tmp_path / "data"
        wanted = options(invitation_code=code, meter_source="none")
        first = _app_config(data, wanted)
        assert first.returncode == 0, first.stderr
        assert "joined chain 'barrio-app' as 'casa-app' (consumer)" in first.stdout
        home = Home(data / "node")
        config = home.config()
        assert (config.role, config.ingress_proxy) == ("observer", INGRESS_PROXY)
        assert config.persistent_peers == config.seeds[:1]
        assert config.persistent_peers[0].startswith("127.0.0.1:")
        assert home.invitation_file.stat().st_mode & 0o777 == 0o600
        assert home.genesis().chain_id == "barrio-app"
        # Later starts keep the chain and the invitation's peers, whatever the options say.
        again = _app_config(data, wanted)
        assert (again.returncode, "already joined" in again.stdout) == (0, True)
        assert _app_config(data, options(meter_source="none")).returncode == 0
        assert home.config().persistent_peers == config.persistent_peers
        assert home.config().role == "observer"
        # A forged code makes no home: the operator refuses it, and nothing is left.
        from ledger_core.types.invitation import parse_code  # noqa: PLC0415

        forged = parse_code(code).signed(SigningKey.generate()).code
        refused = _app_config(tmp_path / "otra", options(invitation_code=forged))
        assert refused.returncode == 78
        assert "option 'invitation_code'" in refused.stderr
        assert "(forged)" in refused.stderr
        assert not (tmp_path / "otra" / "node" / "genesis.json").exists()
    # A code of another chain for a home that has one.
    from ledger_core.types.invitation import Invitation  # noqa: PLC0415

    foreign = Invitation(
        chain_id="otro-barrio", genesis_hash="cd" * 32, seeds=("127.0.0.1:9",), name="x",
        role="consumer", manual=False, expires=2_000_000_000, nonce=b"1234",
    ).signed(SigningKey.generate())  # fmt: skip
    with pytest.raises(OptionsError, match="already keeps chain 'barrio-app'"):
        prepare(parse_options(options(invitation_code=foreign.code)), data, ())
    with pytest.raises(OptionsError, match="an invitation is for a home"):
        parse_options(options(invitation_code=code, role="validator"))
