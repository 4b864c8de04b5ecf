"""Everything in a node's home is its owner's alone, with a real node process: files 0600,
folders 0700 -- the ledger and the action log with their -wal and -shm files, the meter's
and analytics' stores, the private validator's state and the write-ahead log, the keys --
and a home from before this rule is tightened when the node starts."""

from __future__ import annotations

import json
import os
import shutil
import stat
from pathlib import Path

from tests.api.node import TARIFF, NodeProcess, cli, free_port

EXPECTED = {
    "api-token",
    "config.json",
    "genesis.json",
    "tariff.toml",
    "ledger.db",
    "ledger.db-wal",
    "ledger.db-shm",
    "local.db",
    "local.db-wal",
    "local.db-shm",
    "meter.db",
    "analytics.db",
    "keys/node.key",
    "keys/participant.key",
    "keys/validator.key",
    "keys/meter.key",
    "consensus/privval.json",
}


def _home(root: Path) -> Path:
    """A validator on a P2P network (so it keeps a private validator's state and a
    write-ahead log) with the meter, analytics and the concentrator."""
    made = cli("testnet", "init", "--validators", "1", "--dir", str(root),
               "--base-port", str(free_port()))  # fmt: skip
    assert made.returncode == 0, made.stderr
    home = root / "node0"
    shutil.copyfile(TARIFF, home / "tariff.toml")
    config = json.loads((home / "config.json").read_text())
    config["meter"] = {"source": {"type": "pushed"}}
    config["concentrator"] = {"tariff": "tariff.toml"}
    config["api_port"] = free_port()
    (home / "config.json").write_text(json.dumps(config))
    return home


async def _commit_something(node: NodeProcess) -> None:
    """A committed transaction: a block, so the validator has signed and logged votes."""
    status, body, _ = await node.request(
        "POST", "/local/deposit_request?wait=true", json={"amount": 100}
    )
    assert status == 200, body
    status, body, _ = await node.request(
        "POST", "/local/meter/readings", json={"power": 500, "import_kwh_total": 1.5}
    )
    assert status == 202, body


def _modes(home: Path) -> dict[str, int]:
    """Every file and folder of ``home`` (itself as ".") with its permission bits."""
    found = {".": stat.S_IMODE(home.stat().st_mode)}
    for folder, folders, files in os.walk(home):
        for name in [*folders, *files]:
            path = Path(folder) / name
            found[str(path.relative_to(home))] = stat.S_IMODE(path.lstat().st_mode)
    return found


async def test_a_running_node_keeps_every_file_of_its_home_private(tmp_path: Path) -> None:
    home = _home(tmp_path / "red")
    node = NodeProcess(home).start()
    try:
        await _commit_something(node)
        modes = _modes(home)
        assert node.stop() == 0
    finally:
        node.kill()
    assert set(modes) >= EXPECTED, EXPECTED - set(modes)
    assert any(name.startswith("consensus/wal/") and name.endswith(".wal") for name in modes)
    for name, mode in modes.items():
        want = 0o700 if (home / name).is_dir() else 0o600
        assert mode == want, f"{name}: {mode:04o}, not {want:04o}"


async def test_a_home_from_before_is_tightened_at_start(tmp_path: Path) -> None:
    home = _home(tmp_path / "red")
    node = NodeProcess(home).start()
    try:
        await _commit_something(node)
    finally:
        assert node.stop() == 0
    # As an older version left it: folders 0755, data files 0644 (the secrets stay 0600).
    secrets = {"api-token", *(f"keys/{p.name}" for p in (home / "keys").iterdir())}
    for name in _modes(home):
        path = home / name
        if path.is_dir():
            path.chmod(0o755)
        elif name not in secrets:
            path.chmod(0o644)
    again = NodeProcess(home).start()
    try:
        status, _body, _ = await again.request("GET", "/status")
        assert status == 200
        modes = _modes(home)
        assert again.stop() == 0
    finally:
        again.kill()
    for name, mode in modes.items():
        assert mode & 0o077 == 0, f"{name}: {mode:04o}"
    log = again.log.read_text()
    assert f"{home / 'ledger.db'} was open to others; its mode is now 0600" in log
    assert f"{home} was open to others; its mode is now 0700" in log
