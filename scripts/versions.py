"""The project's version in every file that states it, and whether they all agree.

    python3 scripts/versions.py [--tag vX.Y.Z] [ROOT]

The version source is the file pyproject.toml names for setuptools
(``[tool.setuptools.dynamic] version = {attr = "package.module.__version__"}``).
Every other statement of the version must equal it: the integration's manifest, the
app's config.yaml and the ``transactiva==`` pin of its requirements.txt (the wheel the
Supervisor installs), and the newest released heading of the project's and the app's
changelogs. With ``--tag`` the release tag must be ``v`` followed by that version.

Prints one line per file; exits 1 with a line naming each file that disagrees (or in
which no version was found), 0 when all agree. Standard library only, so the release
workflow runs it with a bare Python before anything is installed.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import tomllib
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MANIFEST = "custom_components/transactiva/manifest.json"
APP_CONFIG = "addon/config.yaml"
APP_REQUIREMENTS = "addon/requirements.txt"
CHANGELOG = "CHANGELOG.md"
APP_CHANGELOG = "addon/CHANGELOG.md"
_VERSION_LINE = re.compile(r'^__version__\s*=\s*"([^"]+)"\s*$', re.MULTILINE)


class VersionError(ValueError):
    """A file that should state the version does not, or cannot be read."""


def version_source(root: Path) -> Path:
    """The module pyproject.toml reads the version from."""
    pyproject = tomllib.loads((root / "pyproject.toml").read_text(encoding="utf-8"))
    try:
        attr = pyproject["tool"]["setuptools"]["dynamic"]["version"]["attr"]
    except KeyError:
        raise VersionError("pyproject.toml: no [tool.setuptools.dynamic] version attr") from None
    module, _, name = str(attr).rpartition(".")
    if name != "__version__" or not module:
        raise VersionError(f"pyproject.toml: version attr {attr!r} is not a module's __version__")
    return root / (module.replace(".", "/") + ".py")


def project_version(root: Path) -> str:
    """The version in the version source."""
    source = version_source(root)
    match = _VERSION_LINE.search(source.read_text(encoding="utf-8"))
    if match is None:
        raise VersionError(f'{source.relative_to(root)}: no __version__ = "..." line')
    return match.group(1)


def _manifest(text: str) -> str | None:
    version = json.loads(text).get("version")
    return version if isinstance(version, str) else None


def _app_config(text: str) -> str | None:
    match = re.search(r"^version:\s*[\"']?([^\"'\s#]+)[\"']?\s*(?:#.*)?$", text, re.MULTILINE)
    return match.group(1) if match else None


def _app_requirements(text: str) -> str | None:
    match = re.search(r"^transactiva==(\S+)\s*$", text, re.MULTILINE)
    return match.group(1) if match else None


def _changelog(text: str) -> str | None:
    """The newest released heading, ``## [X.Y.Z] - date`` (Unreleased is skipped)."""
    match = re.search(r"^## \[(\d[^\]]*)\]", text, re.MULTILINE)
    return match.group(1) if match else None


def _app_changelog(text: str) -> str | None:
    """The newest heading of the app's changelog, ``## X.Y.Z``."""
    match = re.search(r"^## (\d\S*)\s*$", text, re.MULTILINE)
    return match.group(1) if match else None


READERS: dict[str, Callable[[str], str | None]] = {
    MANIFEST: _manifest,
    APP_CONFIG: _app_config,
    APP_REQUIREMENTS: _app_requirements,
    CHANGELOG: _changelog,
    APP_CHANGELOG: _app_changelog,
}


def stated_versions(root: Path) -> dict[str, str | None]:
    """Every file that states the version, relative to ``root``, with what it states."""
    stated: dict[str, str | None] = {}
    for name, read in READERS.items():
        path = root / name
        stated[name] = read(path.read_text(encoding="utf-8")) if path.is_file() else None
    return stated


def disagreements(root: Path, tag: str | None = None) -> list[str]:
    """One line per file (or tag) that does not state the version source's version."""
    expected = project_version(root)
    source = version_source(root).relative_to(root)
    problems = []
    for name, found in stated_versions(root).items():
        if found is None:
            problems.append(f"{name}: no version found (expected {expected}, as in {source})")
        elif found != expected:
            problems.append(f"{name}: states {found}, but {source} says {expected}")
    if tag is not None and tag != f"v{expected}":
        problems.append(f"tag {tag}: is not v{expected} ({source})")
    return problems


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="versions.py", description=(__doc__ or "").split("\n")[0])
    parser.add_argument("--tag", help="a release tag that must be v<version>")
    parser.add_argument("root", nargs="?", type=Path, default=ROOT)
    args = parser.parse_args(argv)
    try:
        version = project_version(args.root)
        source = version_source(args.root).relative_to(args.root)
        problems = disagreements(args.root, args.tag)
    except (OSError, VersionError, ValueError) as err:
        print(f"versions.py: {err}", file=sys.stderr)
        return 1
    print(f"{source}: {version}")
    for name, found in stated_versions(args.root).items():
        print(f"{name}: {found if found is not None else '(none)'}")
    for problem in problems:
        print(f"versions.py: {problem}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
