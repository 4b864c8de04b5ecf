"""How a home becomes a running node: which node, which key, the test crash hook's setting."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from ledger_core.cli import main
from ledger_core.node.home import Config, Home, HomeError, write_config
from ledger_core.node.host import Node
from ledger_core.node.networked import ConsensusNode
from ledger_core.serve import CRASH_ENV, build_node, consensus_key, crash_hook_from_env


@pytest.fixture
def net(tmp_path: Path) -> Path:
    root = tmp_path / "red"
    args = ["testnet", "init", "--validators", "2", "--observers", "1", "--dir", str(root)]
    assert main([*args, "--base-port", "40100"], out=io.StringIO()) == 0
    return root


def test_a_validator_takes_part_with_its_validator_key_and_an_observer_with_its_node_key(
    net: Path,
) -> None:
    validator, observer = Home(net / "node1"), Home(net / "node2")
    assert consensus_key(validator, validator.config()).address == validator.validator_key().address
    observer_config = observer.config()
    assert (
        consensus_key(observer, observer_config).address
        == observer.node_key(observer_config).address
    )
    # An observer never votes, even given a validator's key file.
    validator.validator_key().save(observer.validator_key_file)
    assert (
        consensus_key(observer, observer_config).address
        == observer.node_key(observer_config).address
    )
    # A validator-role home without a validator key follows with its node key.
    validator.validator_key_file.unlink()
    assert (
        consensus_key(validator, validator.config()).address
        == validator.node_key(validator.config()).address
    )


def test_a_home_with_a_p2p_port_runs_a_consensus_node_and_one_without_runs_alone(
    net: Path,
) -> None:
    home = Home(net / "node0")
    genesis = home.genesis()
    networked = build_node(home, genesis, home.config(), networked=True)
    try:
        assert isinstance(networked, ConsensusNode)
        assert networked.catching_up is False, "not running yet"
        assert networked.config.timeout_commit_ms == 200
    finally:
        networked.close()
    alone = Home(net / "alone")
    (alone.path / "keys").mkdir(parents=True)
    home.validator_key().save(alone.validator_key_file)
    genesis.save(alone.genesis_file)
    write_config(alone, Config())
    single = build_node(alone, genesis, alone.config(), networked=False)
    try:
        assert type(single) is Node
        assert single.crash_hook is None
    finally:
        single.close()


def test_the_crash_hook_is_off_unless_set_and_refuses_what_it_does_not_know(
    net: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert crash_hook_from_env({}) is None
    assert crash_hook_from_env({CRASH_ENV: " "}) is None
    hook = crash_hook_from_env({CRASH_ENV: "signed@12"})
    assert hook is not None
    assert (hook.point, hook.height) == ("signed", 12)
    later = crash_hook_from_env({CRASH_ENV: "wal_synced"})
    assert later is not None
    assert (later.point, later.height) == ("wal_synced", 0)
    for bad in ("sent", "signed@", "signed@x", "signed@-1"):
        with pytest.raises(HomeError, match=rf"{CRASH_ENV}=.*expected POINT\[@HEIGHT\]"):
            crash_hook_from_env({CRASH_ENV: bad})
    # Below its height, or at another point, the hook does nothing.
    home = Home(net / "node0")
    monkeypatch.setenv(CRASH_ENV, "signed@50")
    node = build_node(home, home.genesis(), home.config(), networked=True)
    try:
        assert node.crash_hook is not None
        node.crash_hook("signed")
        node.crash_hook("wal_synced")
    finally:
        node.close()
