"""What a release is: one version stated alike everywhere, the wheel on PyPI that the app's
image installs, built and installed here for real -- and what the repository claims to support.

The wheel is built from a copy of the working tree by scripts/app_wheels.py (the setuptools
backend the release workflow runs through ``python -m build``), installed with pip into a
fresh virtual environment, and run from there: ``transactiva --version`` and the app's own
``transactiva app config``. Offline: the wheel's dependencies come from this environment,
whose versions are the ones addon/requirements.txt pins (another test keeps them equal), and
a folder of wheels stands in for PyPI where pip has to choose between two builds.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import zipfile
from email.parser import Parser
from pathlib import Path
from typing import Any

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

from ledger_core import __version__

REPO = Path(__file__).resolve().parents[2]
APP = REPO / "addon"
SCRIPTS = REPO / "scripts"
LINUX_TARGETS = [
    {"sys_platform": "linux", "platform_system": "Linux", "python_version": "3.13",
     "platform_machine": machine, "implementation_name": "cpython", "extra": ""}
    for machine in ("x86_64", "aarch64")
]  # fmt: skip


def _script(name: str, *args: str, cwd: Path = REPO) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(SCRIPTS / name), *args],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
        cwd=cwd,
    )


# -- one version everywhere ---------------------------------------------------------------


def test_every_file_that_states_the_version_states_the_same_one() -> None:
    """The version source, the integration's manifest, the app's config.yaml and its
    transactiva pin, and the newest released heading of both changelogs."""
    result = _script("versions.py")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == f"ledger_core/_version.py: {__version__}"
    assert len(lines) == 6
    assert all(line.endswith(f": {__version__}") for line in lines)


VERSIONED = {
    "custom_components/transactiva/manifest.json": ('"version": "{v}"', '"version": "9.9.9"'),
    "addon/config.yaml": ('version: "{v}"', 'version: "9.9.9"'),
    "addon/requirements.txt": ("transactiva=={v}", "transactiva==9.9.9"),
    "CHANGELOG.md": ("## [{v}]", "## [9.9.9]"),
    "addon/CHANGELOG.md": ("## {v}", "## 9.9.9"),
}


@pytest.fixture
def release_tree(tmp_path: Path) -> Path:
    """The files scripts/versions.py reads, copied."""
    for name in ["pyproject.toml", "ledger_core/_version.py", *VERSIONED]:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO / name, tmp_path / name)
    return tmp_path


@pytest.mark.parametrize("name", sorted(VERSIONED))
def test_the_version_check_names_the_file_that_disagrees(release_tree: Path, name: str) -> None:
    path = release_tree / name
    before, after = VERSIONED[name]
    text = path.read_text(encoding="utf-8")
    assert before.format(v=__version__) in text
    path.write_text(text.replace(before.format(v=__version__), after, 1), encoding="utf-8")
    result = _script("versions.py", str(release_tree))
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        f"versions.py: {name}: states 9.9.9, but ledger_core/_version.py says {__version__}"
    ]


def test_the_version_check_names_a_missing_version_and_a_wrong_tag(release_tree: Path) -> None:
    (release_tree / "addon/CHANGELOG.md").write_text("# Changelog\n\nNothing yet.\n")
    result = _script("versions.py", "--tag", "v0.0.1", str(release_tree))
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        (
            f"versions.py: addon/CHANGELOG.md: no version found (expected {__version__}, as in "
            "ledger_core/_version.py)"
        ),
        f"versions.py: tag v0.0.1: is not v{__version__} (ledger_core/_version.py)",
    ]
    assert _script("versions.py", "--tag", f"v{__version__}").returncode == 0


# -- the release workflow -------------------------------------------------------------------


def test_a_version_tag_publishes_to_pypi_after_the_checks_and_the_suite() -> None:
    workflows = sorted((REPO / ".github/workflows").iterdir())
    assert [path.name for path in workflows] == ["release.yml"]
    workflow = yaml.safe_load(workflows[0].read_text(encoding="utf-8"))
    assert workflow[True] == {"push": {"tags": ["v*.*.*"]}}  # YAML 1.1 reads "on" as true
    assert workflow["permissions"] == {"contents": "read"}
    jobs = workflow["jobs"]
    assert list(jobs) == ["test", "build", "publish"]
    runs = [step.get("run", "") for step in jobs["test"]["steps"]]
    check = runs.index('python scripts/versions.py --tag "${GITHUB_REF_NAME}"')
    assert runs.index("./scripts/test") > check
    assert jobs["build"]["needs"] == "test"
    build = "\n".join(step.get("run", "") for step in jobs["build"]["steps"])
    assert re.search(r"pip install build==\d+\.\d+\.\d+\n", build)
    assert "python -m build --outdir dist ." in build
    publish = jobs["publish"]
    assert publish["needs"] == "build"
    assert publish["permissions"] == {"id-token": "write"}, "trusted publishing, no token"
    assert publish["environment"]["name"] == "pypi"
    uses = [step["uses"] for job in jobs.values() for step in job["steps"] if "uses" in step]
    assert "pypa/gh-action-pypi-publish@release/v1" in uses
    for action in uses:
        assert re.fullmatch(r"[\w-]+/[\w-]+@(v\d+|release/v\d+)", action), action
    assert not any("docker" in action for action in uses), "the app has no registry image"


# -- the wheel the app installs ---------------------------------------------------------------


@pytest.fixture(scope="module")
def wheels(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The wheel a release publishes, and a developer's local build of the same tree."""
    out = tmp_path_factory.mktemp("wheels")
    built = {}
    for kind, args in (("release", ["--release"]), ("local", ["--label", "local.test"])):
        result = _script("app_wheels.py", *args, str(out / kind))
        assert result.returncode == 0, result.stderr
        (built[kind],) = (out / kind).glob("transactiva-*.whl")
        assert len(list((out / kind).glob("transactiva_client-*.whl"))) == 1  # the pinned client
    return built


def _metadata(wheel: Path) -> Any:
    with zipfile.ZipFile(wheel) as archive:
        (name,) = [n for n in archive.namelist() if n.endswith(".dist-info/METADATA")]
        return Parser().parsestr(archive.read(name).decode("utf-8"))


def _fresh_venv(path: Path) -> Path:
    """A new virtual environment without pip; this environment's packages appended to its path
    (a .pth line: added, not scanned, so the editable install of the source tree stays out)."""
    subprocess.run(
        [sys.executable, "-m", "venv", "--without-pip", str(path)], check=True, timeout=120
    )
    python = path / "bin" / "python"
    site = subprocess.run(
        [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
        capture_output=True, text=True, check=True, timeout=60, env=_clean_env(),
    ).stdout.strip()  # fmt: skip
    (Path(site) / "locked-dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    return python


def _clean_env() -> dict[str, str]:
    """No PYTHONPATH (it would put the source tree first) and no pip settings from outside."""
    return {
        key: value
        for key, value in os.environ.items()
        if key != "PYTHONPATH" and not key.startswith("PIP_")
    }


def _pip_install(python: Path, *args: str) -> None:
    """pip into ``python``'s environment, as into the image: the appended packages count as
    not installed (the source tree's editable transactiva among them)."""
    result = subprocess.run(
        [sys.executable, "-m", "pip", "--python", str(python), "--isolated", "install",
         "--no-index", "--no-deps", "--ignore-installed", "--quiet", *args],
        capture_output=True, text=True, timeout=300, check=False, env=_clean_env(),
    )  # fmt: skip
    assert result.returncode == 0, result.stderr


def _run(venv: Path, *args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(venv / "bin" / args[0]), *args[1:]],
        capture_output=True, text=True, timeout=120, check=False, cwd=cwd, env=_clean_env(),
    )  # fmt: skip


def test_the_released_wheel_holds_every_file_of_its_packages(wheels: dict[str, Path]) -> None:
    with zipfile.ZipFile(wheels["release"]) as archive:
        names = set(archive.namelist())
    for package in ("contracts", "ledger_core"):
        for path in (REPO / package).rglob("*"):
            if path.is_file() and "__pycache__" not in path.parts:
                relative = path.relative_to(REPO).as_posix()
                assert relative in names, f"{relative} is not in the wheel"
    metadata = _metadata(wheels["release"])
    assert metadata["Name"] == "transactiva"
    assert metadata["Version"] == __version__
    assert metadata["Requires-Python"] == ">=3.13"


def test_the_apps_pins_satisfy_every_requirement_of_the_wheel(wheels: dict[str, Path]) -> None:
    text = (APP / "requirements.txt").read_text(encoding="utf-8")
    pins = {
        canonicalize_name(name): Version(version)
        for name, _, version in (
            line.partition("==") for line in text.splitlines() if line and line[0] != "#"
        )
    }
    assert pins[canonicalize_name("transactiva")] == Version(__version__)
    for spec in _metadata(wheels["release"]).get_all("Requires-Dist") or []:
        requirement = Requirement(spec)
        if requirement.marker and not any(requirement.marker.evaluate(t) for t in LINUX_TARGETS):
            continue
        pinned = pins.get(canonicalize_name(requirement.name))
        assert pinned is not None, f"{requirement.name} is not pinned for the app"
        assert requirement.specifier.contains(pinned), (spec, str(pinned))


def test_the_released_wheel_installs_and_sets_up_a_concentrator(
    wheels: dict[str, Path], tmp_path: Path
) -> None:
    """Installed into a fresh environment and run from there, away from the source tree, with
    the example tariff the app's image carries."""
    venv = tmp_path / "venv"
    (client,) = wheels["release"].parent.glob("transactiva_client-*.whl")
    _pip_install(_fresh_venv(venv), str(wheels["release"]), str(client))
    version = _run(venv, "transactiva", "--version", cwd=tmp_path)
    assert version.returncode == 0, version.stderr
    assert version.stdout.strip() == f"transactiva {__version__}"
    where = _run(
        venv, "python", "-c", "import ledger_core; print(ledger_core.__file__)", cwd=tmp_path
    )
    assert Path(where.stdout.strip()).is_relative_to(venv), where.stdout
    tariff = APP / "rootfs/usr/share/transactiva/tariffs/example-residential-tou.toml"
    options = yaml.safe_load((APP / "config.yaml").read_text(encoding="utf-8"))["options"]
    data = tmp_path / "data"
    data.mkdir()
    (data / "options.json").write_text(
        json.dumps({**options, "role": "concentrator", "tariff_file": str(tariff)})
    )
    setup = _run(venv, "transactiva", "app", "config", "--data", str(data), cwd=tmp_path)
    assert setup.returncode == 0, setup.stderr
    assert setup.stdout.startswith("transactiva app: concentrator node of chain ")
    assert (data / "node/tariff.toml").read_bytes() == tariff.read_bytes()


def test_a_local_wheel_wins_over_the_released_one_of_the_same_version(
    wheels: dict[str, Path], tmp_path: Path
) -> None:
    """What the Dockerfile asks pip for, ``transactiva==X`` with --find-links wheels/, when both
    builds are on offer (a folder stands in for PyPI): the local X+label."""
    venv = tmp_path / "venv"
    _pip_install(
        _fresh_venv(venv),
        "--find-links", str(wheels["release"].parent),
        "--find-links", str(wheels["local"].parent),
        f"transactiva=={__version__}",
    )  # fmt: skip
    version = _run(venv, "transactiva", "--version", cwd=tmp_path)
    assert version.stdout.strip() == f"transactiva {__version__}+local.test", version.stderr


def test_a_local_label_must_be_a_pep_440_local_version(tmp_path: Path) -> None:
    result = _script("app_wheels.py", "--label", "My Change", str(tmp_path))
    assert result.returncode == 1
    assert "label 'My Change': lower-case letters and digits" in result.stderr
    assert not list(tmp_path.glob("*.whl"))


# -- what the repository claims to support ----------------------------------------------------


def test_the_minimum_home_assistant_is_the_release_the_oldest_lane_tests() -> None:
    """hacs.json and the app claim the oldest Home Assistant tested: the same year.month as the
    pinned harness, no later than it (a patch release changes no API)."""
    hacs = json.loads((REPO / "hacs.json").read_text(encoding="utf-8"))
    claimed = Version(hacs["homeassistant"])
    lock = (REPO / "requirements/test.txt").read_text(encoding="utf-8")
    match = re.search(r"^homeassistant==(\S+)$", lock, re.MULTILINE)
    assert match is not None
    tested = Version(match.group(1))
    assert claimed.release[:2] == tested.release[:2]
    assert claimed <= tested
    app = yaml.safe_load((APP / "config.yaml").read_text(encoding="utf-8"))
    assert app["homeassistant"] == hacs["homeassistant"]
