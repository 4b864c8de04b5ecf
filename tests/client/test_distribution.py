"""The wire contract is a distribution of its own (docs/architecture.md, "The wire
contract"): its version is the one the node and the integration pin, it imports nothing of
the project, the integration imports nothing else of the project, and the release builds
and publishes it."""

from __future__ import annotations

import ast
import json
import sys
import tomllib
from pathlib import Path
from typing import Any, Final

import yaml
from packaging.requirements import Requirement
from setuptools import find_packages

from transactiva_client import __version__

REPO: Final = Path(__file__).resolve().parents[2]
CLIENT: Final = REPO / "client"
INTEGRATION: Final = REPO / "custom_components" / "transactiva"


def _toml(path: Path) -> dict[str, Any]:
    return tomllib.loads(path.read_text(encoding="utf-8"))


def _imports(folder: Path) -> set[str]:
    """The top-level names every module under ``folder`` imports (relative ones as '.')."""
    found: set[str] = set()
    for path in folder.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                found.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom):
                found.add("." if node.level else str(node.module).split(".")[0])
    return found


def test_the_node_and_the_integration_pin_the_clients_version() -> None:
    client = _toml(CLIENT / "pyproject.toml")["project"]
    assert client["name"] == "transactiva-client"
    assert client["dynamic"] == ["version"]
    manifest = json.loads((INTEGRATION / "manifest.json").read_text(encoding="utf-8"))
    assert manifest["requirements"] == [f"transactiva-client=={__version__}"]
    assert "transactiva_client" in manifest["loggers"]
    node = _toml(REPO / "pyproject.toml")["project"]
    pins = [Requirement(spec) for spec in node["dependencies"]]
    (pin,) = [r for r in pins if r.name == "transactiva-client"]
    assert str(pin.specifier) == f"=={__version__}", "the node serves the client's API version"


def test_the_client_depends_only_on_aiohttp_and_imports_nothing_of_the_project() -> None:
    client = _toml(CLIENT / "pyproject.toml")["project"]
    assert [Requirement(spec).name for spec in client["dependencies"]] == ["aiohttp"]
    assert client["license"] == "Apache-2.0"
    assert (CLIENT / "LICENSE").read_bytes() == (REPO / "LICENSE").read_bytes()
    assert (CLIENT / "README.md").is_file()
    assert (CLIENT / "transactiva_client" / "py.typed").is_file()
    allowed = set(sys.stdlib_module_names) | {"aiohttp", "transactiva_client", "__future__"}
    imported = _imports(CLIENT / "transactiva_client")
    assert imported <= allowed, imported - allowed


def test_the_integration_uses_the_wire_contract_and_nothing_else_of_the_project() -> None:
    imported = _imports(INTEGRATION)
    assert "transactiva_client" in imported
    assert not imported & {"ledger_core", "contracts", "tests"}
    for gone in ("api.py", "events.py", "units.py"):
        assert not (INTEGRATION / gone).exists(), f"{gone}: the wire contract's now"


def test_the_nodes_distribution_does_not_carry_the_client() -> None:
    settings = _toml(REPO / "pyproject.toml")["tool"]["setuptools"]["packages"]["find"]
    packages = find_packages(str(REPO), include=settings["include"])
    assert "ledger_core" in packages
    assert not [name for name in packages if name.startswith("transactiva_client")]
    assert find_packages(str(CLIENT)) == ["transactiva_client"]


def test_the_release_builds_both_distributions_and_publishes_them_without_a_token() -> None:
    workflow = yaml.safe_load((REPO / ".github/workflows/release.yml").read_text())
    jobs = workflow["jobs"]
    build = "\n".join(step.get("run", "") for step in jobs["build"]["steps"])
    assert "python -m build --outdir dist client" in build
    assert "python -m build --outdir dist ." in build
    assert jobs["build"]["needs"] == "test"
    publish = jobs["publish"]
    assert publish["permissions"] == {"id-token": "write"}  # trusted publishing (OIDC)
    actions = [step.get("uses", "") for step in publish["steps"]]
    assert any(action.startswith("pypa/gh-action-pypi-publish@") for action in actions)
    assert "password" not in json.dumps(publish)
    # A client version already on PyPI (a release that did not change client/) is skipped.
    [step] = [
        step for step in publish["steps"] if "uses" in step and "pypi-publish" in step["uses"]
    ]
    assert step["with"]["skip-existing"] is True
    # Before a release the client is on no index: a local try of the app builds its wheel too.
    wheels = (REPO / "scripts" / "app_wheels.py").read_text(encoding="utf-8")
    assert 'root / "client"' in wheels
