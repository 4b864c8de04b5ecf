"""Write the app's addon/requirements.txt: what its image installs, every version pinned.

    .venv/bin/python scripts/app_requirements.py [--lock FILE] [OUT]

OUT defaults to addon/requirements.txt, --lock to requirements/test.txt. The file pins
``transactiva`` at the project's version (scripts/versions.py reads it), then every
distribution transactiva needs at run time on the app's platform -- Linux, CPython 3.13,
amd64 and aarch64 -- at the version the lock pins. The dependencies are followed from
pyproject.toml's ``[project] dependencies`` through the metadata of the distributions
installed in this environment (the project's .venv, which ./scripts/test keeps equal to
the lock), with their extras and environment markers.

Stops with one line naming the distribution when the lock lacks something transactiva
needs, when a locked version is outside a requirement's range, or when the installed
version is not the locked one (the environment is stale). Deterministic: re-running it
changes nothing unless pyproject.toml or the lock changed.
"""

from __future__ import annotations

import argparse
import sys
import tomllib
from importlib import metadata
from pathlib import Path

from packaging.markers import Marker
from packaging.requirements import Requirement
from packaging.utils import NormalizedName, canonicalize_name
from versions import ROOT, project_version

HEADER = """\
# What the Transactiva app's image installs (addon/Dockerfile): transactiva at the app's
# version and everything it needs at run time, at the versions requirements/test.txt locks.
# Written by scripts/app_requirements.py -- do not edit by hand.
"""

# The app runs on Home Assistant's base-python 3.13 images (Alpine) for these machines.
TARGETS = tuple(
    {
        "implementation_name": "cpython",
        "os_name": "posix",
        "platform_machine": machine,
        "platform_python_implementation": "CPython",
        "platform_system": "Linux",
        "python_full_version": "3.13.0",
        "python_version": "3.13",
        "sys_platform": "linux",
    }
    for machine in ("x86_64", "aarch64")
)


# Distributions this repository builds and releases together with transactiva: pinned at the
# exact version transactiva's own metadata requires; their dependencies are followed.
FIRST_PARTY: frozenset[NormalizedName] = frozenset({canonicalize_name("transactiva-client")})


class RequirementsError(ValueError):
    """The lock or the environment cannot give the app a complete, pinned set."""


def read_lock(path: Path) -> dict[NormalizedName, str]:
    """``name==version`` lines of a lock file, by normalised name."""
    pins: dict[NormalizedName, str] = {}
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.split("#", 1)[0].strip()
        if "==" in line:
            name, _, version = line.partition("==")
            pins[canonicalize_name(name.strip())] = version.strip()
    return pins


def _applies(marker: Marker | None, extras: frozenset[str]) -> bool:
    if marker is None:
        return True
    return any(
        marker.evaluate({**target, "extra": extra})
        for target in TARGETS
        for extra in (extras or {""})
    )


def runtime_pins(root: Path, lock: dict[NormalizedName, str]) -> dict[NormalizedName, str]:
    """Every distribution the project needs at run time on the targets, at its locked version."""
    pyproject = tomllib.loads((root / "pyproject.toml").read_text(encoding="utf-8"))
    pending = [Requirement(spec) for spec in pyproject["project"]["dependencies"]]
    pins: dict[NormalizedName, str] = {}
    followed: set[tuple[NormalizedName, frozenset[str]]] = set()
    while pending:
        requirement = pending.pop()
        name = canonicalize_name(requirement.name)
        extras = frozenset(requirement.extras)
        if (name, extras) in followed:
            continue
        followed.add((name, extras))
        if name in FIRST_PARTY:
            # Pinned exactly by transactiva itself; repeated here at that pin.
            (pin,) = requirement.specifier
            pins[name] = pin.version
            pending += _dependencies(name, extras)
            continue
        locked = lock.get(name)
        if locked is None:
            raise RequirementsError(f"{name}: transactiva needs it at run time, the lock lacks it")
        if not requirement.specifier.contains(locked, prereleases=True):
            raise RequirementsError(f"{name}: locked at {locked}, outside {requirement}")
        installed = _installed(name)
        if installed.version != locked:
            raise RequirementsError(
                f"{name}: {installed.version} is installed, the lock says {locked} "
                "(run ./scripts/test to refresh the environment)"
            )
        pins[name] = locked
        pending += _dependencies(name, extras)
    return pins


def _installed(name: NormalizedName) -> metadata.Distribution:
    try:
        return metadata.distribution(name)
    except metadata.PackageNotFoundError:
        raise RequirementsError(f"{name}: not installed here (run ./scripts/test)") from None


def _dependencies(name: NormalizedName, extras: frozenset[str]) -> list[Requirement]:
    """What the installed ``name`` (with ``extras``) needs on the app's targets."""
    needed = [Requirement(spec) for spec in _installed(name).requires or []]
    return [requirement for requirement in needed if _applies(requirement.marker, extras)]


def render(root: Path, lock_path: Path) -> str:
    """The text of the app's requirements.txt."""
    pins = runtime_pins(root, read_lock(lock_path))
    lines = [f"transactiva=={project_version(root)}"]
    lines += [f"{name}=={pins[name]}" for name in sorted(pins)]
    return HEADER + "\n".join(lines) + "\n"


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="app_requirements.py")
    parser.add_argument("--lock", type=Path, default=ROOT / "requirements" / "test.txt")
    parser.add_argument("out", nargs="?", type=Path, default=ROOT / "addon" / "requirements.txt")
    args = parser.parse_args(argv)
    try:
        text = render(ROOT, args.lock)
    except (OSError, RequirementsError) as err:
        print(f"app_requirements.py: {err}", file=sys.stderr)
        return 1
    args.out.write_text(text, encoding="utf-8")
    print(f"wrote {args.out} ({text.count('==')} pins)")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
