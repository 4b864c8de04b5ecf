"""scripts/_ha_latest.sh: the parts of the newest lane's setup that run without root.

The functions run in a real bash that sources the scripts, as ./scripts/test does.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def _bash(script: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            "bash",
            "-c",
            f'source "{REPO}/scripts/_env.sh"; source "{REPO}/scripts/_ha_latest.sh"; {script}',
        ],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
        env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "HOME": "/nonexistent"},
    )


def _etc(tmp_path: Path, files: dict[str, str]) -> Path:
    etc = tmp_path / "etc"
    (etc / "apt" / "sources.list.d").mkdir(parents=True)
    (etc / "os-release").write_text('ID=debian\nVERSION_CODENAME="bookworm"\n')
    for name, text in files.items():
        (etc / "apt" / name).write_text(text)
    return etc


DEB822 = """\
Types: deb
# http://snapshot.debian.org/archive/debian-security/20250520T000000Z
URIs: http://deb.debian.org/debian-security
Suites: bookworm-security
Components: main

Types: deb-src
URIs: http://src.example/debian
Suites: bookworm
Components: main

Types: deb
URIs: http://disabled.example/debian
Suites: bookworm
Enabled: no

Types: deb
URIs: http://mirror.example/debian http://second.example/debian
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
"""


@pytest.mark.parametrize(
    ("files", "mirror"),
    [
        ({"sources.list.d/debian.sources": DEB822}, "http://mirror.example/debian"),
        (
            {
                "sources.list": "# deb http://old.example/debian bookworm main\n"
                "deb http://security.debian.org/debian-security bookworm-security main\n"
                "deb [arch=amd64 signed-by=/k.gpg] http://list.example/debian bookworm main\n"
            },
            "http://list.example/debian",
        ),
        # A one-line file without the release falls through to the deb822 files.
        (
            {
                "sources.list.d/other.list": "deb https://other.example/apt stable main\n",
                "sources.list.d/debian.sources": DEB822,
            },
            "http://mirror.example/debian",
        ),
    ],
)
def test_the_mirror_is_the_one_apt_uses_for_this_release(
    tmp_path: Path, files: dict[str, str], mirror: str
) -> None:
    etc = _etc(tmp_path, files)
    result = _bash(f'latest_debian_mirror "{etc}"')
    assert result.returncode == 0, result.stderr
    assert result.stdout == f"{mirror}\n"


def test_without_a_mirror_for_this_release_there_is_none(tmp_path: Path) -> None:
    etc = _etc(tmp_path, {"sources.list.d/x.list": "deb http://x.example/debian trixie main\n"})
    result = _bash(f'latest_debian_mirror "{etc}"')
    assert (result.returncode, result.stdout) == (1, "")
    # An explicit mirror wins.
    mirror = "http://m.example/debian"
    result = _bash(f'TRANSACTIVA_DEBIAN_MIRROR={mirror} latest_debian_mirror "{etc}"')
    assert result.stdout == f"{mirror}\n"


def test_a_root_with_the_repository_still_bound_in_it_is_not_removed(tmp_path: Path) -> None:
    """rm --one-file-system does not stop at a bind of the same file system: the repository's
    mount point in the root must be empty before the root is removed."""
    root = tmp_path / "root"
    bound = root / REPO.relative_to("/")
    bound.mkdir(parents=True)
    (bound / "pyproject.toml").write_text("the repository, seen through a bind\n")
    result = _bash(f'_latest_remove_root "{root}"')
    assert result.returncode == 1
    assert "is not empty" in result.stderr
    assert (bound / "pyproject.toml").is_file()

    (bound / "pyproject.toml").unlink()
    result = _bash(f'_latest_remove_root "{root}"')
    assert result.returncode == 0, result.stderr
    assert not root.exists()


def test_without_python_or_root_the_lane_says_what_is_missing(tmp_path: Path) -> None:
    """As another user, with no Python >= 3.14.2: a clear list, and failure."""
    result = _bash(
        "id() { echo 1000; }; _latest_host_python() { return 1; }; "
        "TRANSACTIVA_DEBIAN_MIRROR= ; ensure_ha_latest_python"
    )
    assert result.returncode == 1
    assert "needs Python >= 3.14.2" in result.stderr
    assert "missing: root (running as uid 1000)" in result.stderr


def test_a_named_interpreter_that_is_too_old_is_refused(tmp_path: Path) -> None:
    result = _bash("TRANSACTIVA_LATEST_PYTHON=/bin/false ensure_ha_latest_python")
    assert result.returncode == 1
    assert "TRANSACTIVA_LATEST_PYTHON=/bin/false is not Python >= 3.14.2" in result.stderr
