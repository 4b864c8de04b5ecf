"""``transactiva testnet`` with real processes, and the node config it writes."""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest

from ledger_core.cli import main
from ledger_core.demo.chain import free_port_run
from ledger_core.node.home import Config, Home, HomeError, write_config
from ledger_core.node.peers import network_from_home
from ledger_core.p2p import Network
from ledger_core.p2p.wire import parse_address
from ledger_core.serve import refuse_unsupported
from ledger_core.types.crypto import SigningKey
from tests.p2p.netkit import QUICK, eventually

PYTHON = sys.executable


def init(*args: str) -> tuple[int, str]:
    """``transactiva testnet init`` in process: its status and what it printed."""
    out = io.StringIO()
    return main(["testnet", "init", *args], out=out), out.getvalue()


@pytest.fixture
def mesh_dir(tmp_path: Path) -> Path:
    root = tmp_path / "red"
    status, printed = init(
        "--validators", "4", "--observers", "1", "--dir", str(root),
        "--base-port", "31000", "--chain-id", "barrio-7",
    )  # fmt: skip
    assert status == 0
    assert "4 validator(s), 1 observer(s)" in printed
    assert "node4 observer: API http://127.0.0.1:31008/api/v1" in printed
    return root


def test_init_writes_five_homes_on_one_genesis(mesh_dir: Path) -> None:
    homes = [Home(mesh_dir / f"node{i}") for i in range(5)]
    genesis_bytes = {home.genesis_file.read_bytes() for home in homes}
    assert len(genesis_bytes) == 1
    genesis = homes[0].genesis()
    assert genesis.chain_id == "barrio-7"
    validator_keys = [home.validator_key().public_key for home in homes[:4]]
    assert [(v.public_key, v.power) for v in genesis.validators] == [
        (k, 10) for k in validator_keys
    ]
    assert [o.public_key for o in genesis.operators] == [homes[0].participant_key().public_key]
    assert not homes[4].validator_key_file.exists()
    configs = [home.config() for home in homes]
    node_ids = [home.node_key(config).address for home, config in zip(homes, configs, strict=True)]
    for i, (home, config) in enumerate(zip(homes, configs, strict=True)):
        assert (config.api_port, config.p2p_port) == (31000 + 2 * i, 31001 + 2 * i)
        assert config.role == ("validator" if i < 4 else "observer")
        assert config.allow_peers == tuple(node_ids)
        for name in ("keys/node.key", "keys/participant.key", "api-token"):
            assert (home.path / name).stat().st_mode & 0o777 == 0o600, name
        assert len(home.token()) == 64
        expected_seeds = () if i == 0 else (f"{node_ids[0]}@127.0.0.1:31001",)
        assert config.seeds == expected_seeds
        peers = [parse_address(p) for p in config.persistent_peers]
        if i < 4:
            assert sorted(p.id for p in peers) == sorted(  # type: ignore[type-var]
                node_ids[j] for j in range(4) if j != i
            )
            assert all(p.port == 31001 + 2 * node_ids.index(p.id) for p in peers)  # type: ignore[arg-type]
        else:
            assert peers == []
    tokens = {home.token() for home in homes}
    assert len(tokens) == 5


def test_init_refuses_a_used_directory_and_bad_counts(
    mesh_dir: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert init("--validators", "1", "--dir", str(mesh_dir))[0] == 1
    assert "is not empty; choose another --dir" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_info:
        init("--validators", "0", "--dir", str(tmp_path / "x"))
    assert exit_info.value.code == 2
    assert "between 1 and 64" in capsys.readouterr().err
    high = init("--validators", "3", "--dir", str(tmp_path / "y"), "--base-port", "65533")
    assert high[0] == 1
    assert "pass 65535" in capsys.readouterr().err
    assert main(["testnet", "run", "--dir", str(tmp_path / "nothing")]) == 2
    assert "no nodes in" in capsys.readouterr().err


def test_several_validators_or_an_observer_need_a_p2p_port(mesh_dir: Path) -> None:
    observer = Home(mesh_dir / "node4")
    refuse_unsupported(observer.genesis(), observer.config())  # it has one: fine
    alone = Config.from_json({**observer.config().to_json(), "p2p_port": None})
    with pytest.raises(HomeError, match=r"this node is an observer: .* needs a p2p_port"):
        refuse_unsupported(observer.genesis(), alone)
    validator = Home(mesh_dir / "node1")
    alone = Config.from_json({**validator.config().to_json(), "p2p_port": None})
    with pytest.raises(HomeError, match=r"the genesis has 4 validators: .* needs a p2p_port"):
        refuse_unsupported(validator.genesis(), alone)


class RunProcess:
    """``transactiva testnet run`` in its own process, and what it printed."""

    def __init__(self, root: Path) -> None:
        self.process = subprocess.Popen(
            [PYTHON, "-m", "ledger_core", "testnet", "run", "--dir", str(root)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        self.nodes: dict[str, tuple[str, str]] = {}
        self.pids: dict[str, int] = {}
        assert self.process.stdout is not None
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            line = self.process.stdout.readline()
            if not line or line.startswith("testnet of"):
                break
            name, _, api, url, token_word, token_file, _, _, _, pid, *_ = line.split()
            assert (api, token_word) == ("API", "token-file"), line
            self.nodes[name] = (url, Path(token_file).read_text().strip())
            self.pids[name] = int(pid)

    def finish(self, timeout: float = 30) -> tuple[int, str, str]:
        out, err = self.process.communicate(timeout=timeout)
        return self.process.returncode, out, err


@contextlib.contextmanager
def started(root: Path) -> Iterator[RunProcess]:
    net = RunProcess(root)
    try:
        yield net
    finally:
        if net.process.poll() is None:
            net.process.kill()
            net.process.communicate(timeout=10)


async def wait_for_status(url: str, token: str) -> dict[str, object]:
    async with aiohttp.ClientSession() as session:
        deadline = time.monotonic() + 30
        while True:
            try:
                async with session.get(
                    f"{url}/status", headers={"Authorization": f"Bearer {token}"}
                ) as response:
                    if response.status == 200:
                        body: dict[str, object] = await response.json()
                        return body
            except aiohttp.ClientError:
                pass
            assert time.monotonic() < deadline, f"{url} did not answer within 30 s"
            await asyncio.sleep(0.1)


async def test_a_one_validator_testnet_runs_serves_peers_and_stops_on_ctrl_c(
    tmp_path: Path,
) -> None:
    root = tmp_path / "uno"
    base = free_port_run(2)
    assert init("--validators", "1", "--dir", str(root), "--base-port", str(base))[0] == 0
    home = Home(root / "node0")
    config = home.config()
    guest = SigningKey.generate()  # an operator admits one more node to the allow-list
    assert config.allow_peers is not None
    write_config(
        home,
        Config.from_json({**config.to_json(), "allow_peers": [*config.allow_peers, guest.address]}),
    )
    genesis_hash = home.genesis().hash
    with started(root) as running:
        url, token = running.nodes["node0"]
        assert url == f"http://127.0.0.1:{base}/api/v1"
        assert token == home.token()
        status = await wait_for_status(url, token)
        assert status["chain_id"] == "transactiva-testnet"
        assert status["validator"] == home.validator_key().address
        node_id = home.node_key(config).address
        target = f"{node_id}@127.0.0.1:{base + 1}"
        welcome = Network(
            guest, "transactiva-testnet", genesis_hash, "127.0.0.1", 0, [], [target], QUICK
        )
        stranger = Network(
            SigningKey.generate(),
            "transactiva-testnet",
            genesis_hash,
            "127.0.0.1",
            0,
            [],
            [target],
            QUICK,
        )
        await welcome.start()
        await stranger.start()
        try:
            await eventually(lambda: [p.id for p in welcome.peers()] == [node_id], seconds=10)
            await eventually(lambda: stranger.addresses()[0].failures >= 1, seconds=10)
            assert "not_allowed" in (stranger.addresses()[0].last_error or "")
        finally:
            await welcome.stop()
            await stranger.stop()
        running.process.send_signal(signal.SIGINT)
        code, out, err = running.finish()
    assert code == 0, err
    assert "testnet stopped" in out
    log = (root / "node0" / "node.log").read_text()
    assert "P2P node" in log
    assert "stopped" in log
    with socket.socket() as probe:  # the node is gone: its API port is free again
        probe.bind(("127.0.0.1", base))


async def test_when_its_only_node_dies_the_testnet_says_so_and_ends(tmp_path: Path) -> None:
    root = tmp_path / "uno"
    assert (
        init("--validators", "1", "--dir", str(root), "--base-port", str(free_port_run(2)))[0] == 0
    )
    with started(root) as running:
        await wait_for_status(*running.nodes["node0"])
        os.kill(running.pids["node0"], signal.SIGKILL)
        code, _out, err = running.finish()
    assert code == 1
    assert "node0 exited with status -9" in err
    assert "every node has stopped" in err


def test_config_files_load_strictly_and_old_ones_still_load(tmp_path: Path) -> None:
    home = Home(tmp_path)
    old = {
        "api_host": "127.0.0.1",
        "api_port": 8765,
        "block_interval": 0.2,
        "empty_block_every": 60,
    }
    home.config_file.write_text(json.dumps(old))
    config = home.config()
    assert config.p2p_port is None
    assert config.role == "validator"
    assert config.empty_block_every == 60.0
    for bad, message in (
        ({"api_port": "80"}, "api_port: must be a port number"),
        ({"p2p_port": 70000}, "p2p_port: must be a port number"),
        ({"block_interval": 0}, "block_interval: must be a number of seconds"),
        ({"role": "leader"}, "role: must be one of validator, observer"),
        ({"seeds": "x"}, "seeds: must be a list"),
        ({"seeds": [1]}, r"seeds\[0\]: must be a string"),
        ({"persistent_peers": ["nowhere"]}, r"persistent_peers\[0\]: expected host:port"),
        ({"allow_peers": ["tvXYZ"]}, r"allow_peers\[0\]: must be a node id"),
        ({"max_peers": 0}, "max_peers: must be an integer"),
        ({"node_key_file": "../elsewhere.key"}, "node_key_file: must be a path inside"),
        ({"api_host": ""}, "api_host: must be a host"),
        ({"colour": "blue"}, "unknown key 'colour'"),
        ({"pex": "no"}, "pex: must be true or false"),
        ({"consensus": [1]}, "consensus: must be an object of timeouts"),
        ({"consensus": {"propose": 1}}, "consensus.propose: unknown setting; known: propose_ms"),
        ({"consensus": {"propose_ms": 0}}, "consensus.propose_ms: must be an integer 1 to"),
        ({"consensus": {"prevote_ms": 1.5}}, "consensus.prevote_ms: must be an integer"),
        ({"consensus": {"snapshot_threshold": True}}, "consensus.snapshot_threshold: must be"),
    ):
        home.config_file.write_text(json.dumps({**old, **bad}))
        with pytest.raises(HomeError, match=message):
            home.config()
    home.config_file.write_text("[]")
    with pytest.raises(HomeError, match="must be a JSON object"):
        home.config()
    full = Config(p2p_port=0, seeds=("127.0.0.1:9",), allow_peers=None, pex=False,
                  consensus={"propose_ms": 1500, "snapshot_threshold": 50})  # fmt: skip
    write_config(home, full)
    assert home.config() == full
    assert home.config().timeouts().propose_ms == 1500
    assert home.config().timeouts().prevote_ms == 1000, "the default"
    pacing = home.config().node_config()
    assert (pacing.snapshot_threshold, pacing.timeout_commit_ms) == (50, 200)
    assert pacing.empty_block_every_ms == 60_000, "from empty_block_every"
    faster = Config(consensus={"timeout_commit_ms": 50, "empty_block_every_ms": 900})
    assert (faster.node_config().timeout_commit_ms, faster.node_config().empty_block_every_ms) == (
        50,
        900,
    )


def test_a_home_describes_its_network(mesh_dir: Path) -> None:
    home = Home(mesh_dir / "node1")
    config = home.config()
    network = network_from_home(home, home.genesis(), config)
    assert network is not None
    assert network.address == home.node_key(config).address
    assert network.chain_id == "barrio-7"
    assert network.genesis_hash == home.genesis().hash
    assert network.max_peers == 20
    assert {a.address for a in network.addresses()} == {*config.seeds, *config.persistent_peers}
    without = Config()
    assert network_from_home(home, home.genesis(), without) is None
