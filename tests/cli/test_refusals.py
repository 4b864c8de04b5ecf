"""Clear refusals instead of tracebacks where a user's file or input is at fault: real
``transactiva`` processes on homes with a damaged or exposed file, a bad ``demo --keep``,
and Ctrl-C on the demo. Each ends with one readable line and a non-zero status, and
writes nothing it should not."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.api.node import PYTHON, cli, free_port


def _testnet_home(root: Path) -> Path:
    """A one-validator home on a P2P network (so it keeps consensus/privval.json)."""
    result = cli("testnet", "init", "--validators", "1", "--dir", str(root),
                 "--base-port", str(free_port()))  # fmt: skip
    assert result.returncode == 0, result.stderr
    return root / "node0"


def _one_line(result: subprocess.CompletedProcess[str], command: str) -> str:
    """The refusal: exactly one line of ours, no traceback."""
    assert result.returncode != 0, result.stdout + result.stderr
    assert "Traceback" not in result.stderr, result.stderr
    ours = [line for line in result.stderr.splitlines() if line.startswith(f"{command}: ")]
    assert len(ours) == 1, result.stderr
    return ours[0]


def _damage_privval(home: Path) -> str:
    (home / "consensus").mkdir(mode=0o700)
    (home / "consensus" / "privval.json").write_text('{"height": 3')
    return "privval.json: damaged"


def _binary_privval(home: Path) -> str:
    (home / "consensus").mkdir(mode=0o700)
    (home / "consensus" / "privval.json").write_bytes(b"\xff\xfe\x00")
    return "privval.json: damaged (not UTF-8 text)"


def _open_token(home: Path) -> str:
    (home / "api-token").chmod(0o640)
    return f"the API token is readable by others (mode 0640); run: chmod 600 {home / 'api-token'}"


def _open_key(home: Path) -> str:
    key = home / "keys" / "validator.key"
    key.chmod(0o644)
    return f"the key file is readable by others (mode 0644); run: chmod 600 {key}"


def _empty_token(home: Path) -> str:
    (home / "api-token").write_text("\n")
    return "not an API token"


def _junk_key(home: Path) -> str:
    (home / "keys" / "validator.key").write_text("junk\n")
    return "validator.key: not a Transactiva key file"


def _bad_genesis(home: Path) -> str:
    (home / "genesis.json").write_text("garbage")
    return "genesis.json: genesis: not JSON"


def _not_a_ledger(home: Path) -> str:
    (home / "ledger.db").write_bytes(b"not a database, not at all" * 8)
    return "ledger.db: not a readable ledger database"


def _not_an_action_log(home: Path) -> str:
    (home / "local.db").write_bytes(b"not a database, not at all" * 8)
    return "local.db: not a readable action log"


def _not_a_meter_store(home: Path) -> str:
    _with_meter(home)
    (home / "meter.db").write_bytes(b"not a database, not at all" * 8)
    return "meter.db: file is not a database; move meter.db"


def _not_a_reading_store(home: Path) -> str:
    _with_meter(home)
    (home / "analytics.db").write_bytes(b"not a database, not at all" * 8)
    return "analytics.db: not a readable store of readings"


def _with_meter(home: Path) -> None:
    config = json.loads((home / "config.json").read_text())
    config["meter"] = {"source": {"type": "pushed"}}
    (home / "config.json").write_text(json.dumps(config))


@pytest.mark.parametrize(
    "damage",
    [
        _not_a_meter_store,
        _not_a_reading_store,
        _damage_privval,
        _binary_privval,
        _open_token,
        _open_key,
        _empty_token,
        _junk_key,
        _bad_genesis,
        _not_a_ledger,
        _not_an_action_log,
    ],
)
def test_a_node_refuses_a_damaged_or_exposed_file_in_one_line(
    tmp_path: Path, damage: Callable[[Path], str]
) -> None:
    home = _testnet_home(tmp_path / "red")
    expected = damage(home)
    before = sorted(p.name for p in home.iterdir())
    result = cli("node", "--dir", str(home), timeout=120)
    line = _one_line(result, "transactiva node")
    assert expected in line, line
    assert result.returncode == 2
    if damage in (_open_token, _open_key):
        # Refused before anything is opened: no database, no log of signatures (only the
        # lock that keeps one node per home, taken first).
        assert sorted(p.name for p in home.iterdir() if p.name != "node.lock") == before


def test_testnet_init_refuses_a_dir_that_is_a_file(tmp_path: Path) -> None:
    (tmp_path / "red").write_text("mine\n")
    result = cli("testnet", "init", "--validators", "1", "--dir", str(tmp_path / "red"))
    assert "is not a folder" in _one_line(result, "transactiva testnet init")
    assert (tmp_path / "red").read_text() == "mine\n"


def test_commands_that_read_the_token_refuse_one_others_can_read(tmp_path: Path) -> None:
    home = _testnet_home(tmp_path / "red")
    (home / "api-token").chmod(0o644)
    result = cli("wallet", "balance", "--dir", str(home))
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert f"run: chmod 600 {home / 'api-token'}" in result.stderr
    run = cli("testnet", "run", "--dir", str(tmp_path / "red"))
    assert "chmod 600" in _one_line(run, "transactiva testnet run")


@pytest.mark.parametrize("kind", ["a file", "a folder with files"])
def test_a_bad_demo_keep_is_refused_before_the_demo_runs(tmp_path: Path, kind: str) -> None:
    keep = tmp_path / "kept"
    if kind == "a file":
        keep.write_text("mine\n")
        expected = "exists and is not a folder"
    else:
        keep.mkdir()
        (keep / "notes.txt").write_text("mine\n")
        expected = "is not empty"
    result = cli("demo", "--homes", "1", "--intervals", "1", "--no-ui", "--keep", str(keep))
    assert expected in _one_line(result, "transactiva demo")
    assert result.returncode == 2
    # What was there is untouched.
    mine = keep if kind == "a file" else keep / "notes.txt"
    assert mine.read_text() == "mine\n"


def test_ctrl_c_on_the_demo_stops_it_cleanly_and_keeps_nothing(tmp_path: Path) -> None:
    keep = tmp_path / "kept"
    process = subprocess.Popen(
        [PYTHON, "-m", "ledger_core", "demo", "--homes", "1", "--intervals", "96",
         "--speed", "60", "--keep", str(keep)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    try:
        assert process.stdout is not None
        deadline = time.monotonic() + 120
        seen = ""
        while "homes joined" not in seen:  # the node runs and the home has joined
            assert time.monotonic() < deadline, seen
            line = process.stdout.readline()
            assert line, f"the demo ended early: {process.communicate()[1]}"
            seen += line
        node_url = next(w for w in seen.split() if w.startswith("http://127.0.0.1:"))
        process.send_signal(signal.SIGINT)
        _out, err = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 130, err
    assert "Traceback" not in err, err
    assert err.strip().splitlines()[-1] == "transactiva demo: interrupted"
    assert not keep.exists(), "an interrupted demo keeps nothing"
    # The concentrator's node was stopped with the demo: its port answers no more.
    port = int(node_url.split(":")[2].split("/")[0])
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), 1).close()
