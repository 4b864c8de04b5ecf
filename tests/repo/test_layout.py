"""The repository keeps the shape that Home Assistant, HACS and the Supervisor expect."""

from __future__ import annotations

import json
import subprocess
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement

from ledger_core import __version__
from transactiva_client import __version__ as client_version

REPO = Path(__file__).resolve().parents[2]
INTEGRATION = REPO / "custom_components" / "transactiva"

HACS_KEYS = {
    "name",
    "content_in_root",
    "zip_release",
    "filename",
    "hide_default_branch",
    "country",
    "homeassistant",
    "hacs",
    "persistent_directory",
    "render_readme",
}
MANIFEST_REQUIRED = {
    "domain",
    "name",
    "codeowners",
    "documentation",
    "iot_class",
    "issue_tracker",
    "version",
}


def _tracked_and_new_files() -> list[Path]:
    """Files git tracks plus untracked ones it does not ignore."""
    out = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
        cwd=REPO,
        check=True,
        capture_output=True,
    ).stdout
    return [REPO / name for name in out.decode().split("\0") if name]


def test_layout_from_the_developers_guide_exists() -> None:
    for name in (
        "contracts",
        "ledger_core",
        "client/transactiva_client",
        "custom_components/transactiva",
        "addon",
        "tests",
        "bench",
        "docs",
        "scripts",
    ):
        assert (REPO / name).is_dir(), name
    for name in (
        "hacs.json",
        "repository.yaml",
        "pyproject.toml",
        "LICENSE",
        "README.md",
        "CHANGELOG.md",
        ".ci/run",
        "scripts/test",
        "scripts/demo",
        "docs/architecture.md",
    ):
        assert (REPO / name).is_file(), name


def test_manifest_has_required_keys_in_hassfest_order() -> None:
    raw = (INTEGRATION / "manifest.json").read_text(encoding="utf-8")
    manifest = json.loads(raw)
    keys = list(manifest)
    assert keys[:2] == ["domain", "name"]
    assert keys[2:] == sorted(keys[2:])
    assert set(manifest) >= MANIFEST_REQUIRED
    assert manifest["domain"] == "transactiva"
    assert manifest["iot_class"] == "local_push"
    assert manifest["version"] == __version__


def test_hacs_json_uses_only_allowed_keys() -> None:
    hacs = json.loads((REPO / "hacs.json").read_text(encoding="utf-8"))
    assert hacs["name"] == "Transactiva"
    assert set(hacs) <= HACS_KEYS
    year, month, *_ = (int(part) for part in hacs["homeassistant"].split("."))
    assert (year, month) >= (2025, 4)


def test_repository_yaml_names_the_app_repository() -> None:
    text = (REPO / "repository.yaml").read_text(encoding="utf-8")
    fields = dict(
        line.split(":", 1)
        for line in text.splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    )
    assert set(fields) == {"name", "url", "maintainer"}
    assert all(value.strip() for value in fields.values())


def test_no_stray_config_yaml_or_manifest_json() -> None:
    """The Supervisor reads every config.yaml and hassfest every manifest.json."""
    names = {"config.yaml", "manifest.json"}
    found = sorted(
        str(path.relative_to(REPO)) for path in _tracked_and_new_files() if path.name in names
    )
    allowed = {"custom_components/transactiva/manifest.json", "addon/config.yaml"}
    assert set(found) <= allowed, found


def test_translations_cover_the_same_keys_in_english_and_spanish() -> None:
    def keys(node: object, prefix: str = "") -> set[str]:
        if isinstance(node, dict):
            out: set[str] = set()
            for key, value in node.items():
                out |= keys(value, f"{prefix}/{key}")
            return out
        return {prefix}

    english = json.loads((INTEGRATION / "translations/en.json").read_text(encoding="utf-8"))
    spanish = json.loads((INTEGRATION / "translations/es.json").read_text(encoding="utf-8"))
    assert keys(english) == keys(spanish)


def test_integration_ships_no_strings_json() -> None:
    """Custom integrations ship translations/*.json, not strings.json."""
    assert not (INTEGRATION / "strings.json").exists()


def test_changelog_has_an_entry_for_this_version() -> None:
    changelog = (REPO / "CHANGELOG.md").read_text(encoding="utf-8")
    assert f"## [{__version__}]" in changelog


def _pins(path: Path) -> dict[str, str]:
    """``name == version`` lines of a requirements file, by normalised name."""
    return {
        name.strip().lower().replace("_", "-"): version.split()[0]
        for name, _, version in (
            line.partition("==")
            for line in path.read_text(encoding="utf-8").splitlines()
            if "==" in line and not line.startswith("#")
        )
    }


# Each Home Assistant lane: its direct requirements, its lock, and the Home Assistant and
# harness it pins (the oldest supported; the newest the harness pins).
LANES = [
    ("test.in", "test.txt", "2025.4.4", "0.13.236"),
    ("ha-latest.in", "ha-latest.txt", "2026.10.4", "0.13.375"),
]


@pytest.mark.parametrize(("direct", "lock", "homeassistant", "harness"), LANES)
def test_project_dependency_ranges_admit_home_assistants_pins(
    direct: str, lock: str, homeassistant: str, harness: str
) -> None:
    """Each lane's environment holds the node and Home Assistant: its lock satisfies both,
    and holds what its direct requirements pin (./scripts/lock ran after they changed)."""
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
    pins = _pins(REPO / "requirements" / lock)
    assert pins["homeassistant"] == homeassistant
    assert pins["pytest-homeassistant-custom-component"] == harness
    for name, version in _pins(REPO / "requirements" / direct).items():
        assert pins[name] == version, (direct, name)
    # The wire contract is built from client/ (scripts/_env.sh), not taken from the lock:
    # the requirement must admit the version in the repository.
    client = tomllib.loads((REPO / "client/pyproject.toml").read_text(encoding="utf-8"))
    in_repo = {client["project"]["name"]: client_version}
    for spec in pyproject["project"]["dependencies"]:
        requirement = Requirement(spec)
        pinned = in_repo.get(requirement.name) or pins[requirement.name.lower()]
        assert requirement.specifier.contains(pinned), (spec, pinned)


@pytest.mark.parametrize(
    "script", ["scripts/test", "scripts/demo", "scripts/lock", "scripts/ha-latest", ".ci/run"]
)
def test_scripts_are_executable_and_strict_bash(script: str) -> None:
    path = REPO / script
    assert path.stat().st_mode & 0o111
    text = path.read_text(encoding="utf-8")
    assert text.startswith("#!/usr/bin/env bash\n")
    assert "set -euo pipefail" in text


def test_the_package_ships_the_documented_example_tariff() -> None:
    """The demo reads the example tariff from the package (a wheel has no docs/)."""
    shipped = REPO / "ledger_core" / "concentrator" / "example-residential-tou.toml"
    documented = REPO / "docs" / "tariffs" / "example-residential-tou.toml"
    assert shipped.read_bytes() == documented.read_bytes()
