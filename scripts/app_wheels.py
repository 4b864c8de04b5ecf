"""Build this working tree's wheels for the app (transactiva, and transactiva-client, the wire
contract it pins), by default into addon/wheels/.

    .venv/bin/python scripts/app_wheels.py [--label LABEL | --release] [OUT_DIR]

For trying a change on a real Home Assistant before it is released. The app's
Dockerfile installs requirements.txt with ``--find-links wheels/``; the wheel built
here carries a local version, X+LABEL, which ``transactiva==X`` admits (PEP 440
ignores the local label when matching a public version) and which sorts above X, so
the Supervisor's build takes this wheel instead of the released X from PyPI, and every
other dependency still at the version requirements.txt pins. The label defaults to
``local.g<commit>`` (``.dirty`` added when the tree has changes); ``transactiva
--version`` in the app then shows which build runs.

``--release`` builds without a label: the wheel a release publishes (the release
workflow runs ``python -m build``, the same setuptools backend). The sources are
copied to a temporary folder first, so the working tree gets no build files; only
the version in the copy changes. Earlier transactiva wheels in OUT_DIR are removed.
Offline: the build backend comes from this environment (``--no-build-isolation``).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import tomllib
from pathlib import Path

from versions import ROOT, project_version, version_source

LABEL_RE = re.compile(r"[a-z0-9]+(?:\.[a-z0-9]+)*")
# Files of the distribution besides its packages (pyproject.toml's readme, licence, manifest).
PROJECT_FILES = ("pyproject.toml", "README.md", "LICENSE", "MANIFEST.in")


class WheelError(ValueError):
    """The wheel could not be built."""


def default_label(root: Path) -> str:
    """``local.g<commit>``, ``.dirty`` when the tree has changes; ``local`` without git."""
    git = shutil.which("git")
    if git is None:
        return "local"

    def ask(*args: str) -> str:
        return subprocess.run(  # noqa: S603 - git, fixed arguments
            [git, *args], cwd=root, capture_output=True, text=True, check=True, timeout=30
        ).stdout.strip()

    try:
        commit, status = ask("rev-parse", "--short", "HEAD"), ask("status", "--porcelain")
    except (OSError, subprocess.SubprocessError):
        return "local"
    return f"local.g{commit}" + (".dirty" if status else "")


def _packages(root: Path) -> list[str]:
    """Top-level package folders pyproject.toml includes."""
    pyproject = tomllib.loads((root / "pyproject.toml").read_text(encoding="utf-8"))
    include = pyproject["tool"]["setuptools"]["packages"]["find"]["include"]
    return sorted({pattern.split(".", 1)[0] for pattern in include})


def copy_sources(root: Path, into: Path) -> None:
    """The files a wheel is built from, without caches."""
    for name in PROJECT_FILES:
        shutil.copy2(root / name, into / name)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info")
    for package in _packages(root):
        shutil.copytree(root / package, into / package, ignore=ignore)


def build_wheel(root: Path, out: Path, label: str | None) -> Path:
    """Build the wheel (version X+label, or X) into ``out``; its path."""
    if label is not None and not LABEL_RE.fullmatch(label):
        raise WheelError(f"label {label!r}: lower-case letters and digits, parts joined by '.'")
    version = project_version(root) + (f"+{label}" if label else "")
    out.mkdir(parents=True, exist_ok=True)
    for old in out.glob("transactiva-*.whl"):
        old.unlink()
    with tempfile.TemporaryDirectory(prefix="transactiva-wheel-") as work:
        tree = Path(work)
        copy_sources(root, tree)
        source = tree / version_source(root).relative_to(root)
        text = source.read_text(encoding="utf-8")
        source.write_text(
            re.sub(r"^__version__\s*=.*$", f'__version__ = "{version}"', text, flags=re.M),
            encoding="utf-8",
        )
        built = subprocess.run(  # noqa: S603 - this interpreter's pip, fixed arguments
            [sys.executable, "-m", "pip", "wheel", "--isolated", "--quiet", "--no-deps",
             "--no-build-isolation", "--wheel-dir", str(out), str(tree)],
            capture_output=True, text=True, check=False, timeout=600, env=build_environment(),
        )  # fmt: skip
    if built.returncode != 0:
        raise WheelError(f"pip wheel failed:\n{built.stdout}{built.stderr}")
    wheels = list(out.glob(f"transactiva-{version.replace('-', '_')}-*.whl"))
    if len(wheels) != 1:
        raise WheelError(f"expected one transactiva {version} wheel in {out}, found {wheels}")
    return wheels[0]


def build_environment() -> dict[str, str]:
    """The environment for ``pip wheel``: this one without a test run's coverage hooks
    (a build measured by a parent's coverage would leave data of another kind beside it)."""
    return {k: v for k, v in os.environ.items() if not k.startswith(("COV_CORE_", "COVERAGE_"))}


def build_client_wheel(root: Path, out: Path) -> Path:
    """Build the wire contract's wheel (``client/``, at its own version) into ``out``: the
    transactiva wheel pins it exactly, and before a release it is on no index."""
    out.mkdir(parents=True, exist_ok=True)
    for old in out.glob("transactiva_client-*.whl"):
        old.unlink()
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info", "build")
    with tempfile.TemporaryDirectory(prefix="transactiva-client-wheel-") as work:
        tree = Path(work) / "client"  # a copy: the working tree gets no build files
        shutil.copytree(root / "client", tree, ignore=ignore)
        built = subprocess.run(  # noqa: S603 - this interpreter's pip, fixed arguments
            [sys.executable, "-m", "pip", "wheel", "--isolated", "--quiet", "--no-deps",
             "--no-build-isolation", "--wheel-dir", str(out), str(tree)],
            capture_output=True, text=True, check=False, timeout=600, env=build_environment(),
        )  # fmt: skip
    if built.returncode != 0:
        raise WheelError(f"pip wheel of client/ failed:\n{built.stdout}{built.stderr}")
    wheels = list(out.glob("transactiva_client-*.whl"))
    if len(wheels) != 1:
        raise WheelError(f"expected one transactiva-client wheel in {out}, found {wheels}")
    return wheels[0]


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="app_wheels.py")
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--label", help="the local version label (default: local.g<commit>)")
    group.add_argument("--release", action="store_true", help="no label: the released wheel")
    parser.add_argument("out", nargs="?", type=Path, default=ROOT / "addon" / "wheels")
    args = parser.parse_args(argv)
    label = None if args.release else (args.label or default_label(ROOT))
    try:
        wheels = [build_wheel(ROOT, args.out, label), build_client_wheel(ROOT, args.out)]
    except (OSError, WheelError) as err:
        print(f"app_wheels.py: {err}", file=sys.stderr)
        return 1
    for wheel in wheels:
        print(f"built {wheel}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
