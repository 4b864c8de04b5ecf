"""The bootstrap and summary helpers behind ./scripts/test, run for real."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
ENV_SH = REPO / "scripts" / "_env.sh"
SUMMARY = REPO / "scripts" / "_junit_summary.py"


def _bash(script: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", "-c", f'source "{ENV_SH}"; {script}'],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={**os.environ, **(env or {})},
    )


def test_find_python_picks_an_interpreter_of_at_least_3_13() -> None:
    result = _bash("find_python")
    assert result.returncode == 0, result.stderr
    path = result.stdout.strip()
    version = subprocess.run(
        [path, "-c", "import sys; print(*sys.version_info[:2])"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert (int(version[0]), int(version[1])) >= (3, 13)


def test_find_python_refuses_an_explicit_interpreter_that_is_too_old(tmp_path: Path) -> None:
    fake = tmp_path / "python-old"
    fake.write_text("#!/bin/sh\nexit 1\n")
    fake.chmod(0o755)
    result = _bash("find_python", env={"TRANSACTIVA_PYTHON": str(fake)})
    assert result.returncode != 0
    assert "is not Python >= 3.13" in result.stderr


def test_find_python_honours_an_explicit_suitable_interpreter() -> None:
    result = _bash("find_python", env={"TRANSACTIVA_PYTHON": sys.executable})
    assert result.returncode == 0
    assert result.stdout.strip() == sys.executable


def test_environment_key_changes_when_a_dependency_file_changes(tmp_path: Path) -> None:
    """The key that decides whether .venv is stale follows requirements and both
    pyproject files (the project's and the wire contract's, client/)."""
    root = tmp_path / "repo"
    (root / "scripts").mkdir(parents=True)
    (root / "requirements").mkdir()
    (root / "client").mkdir()
    (root / "scripts" / "_env.sh").write_text(ENV_SH.read_text())
    (root / "pyproject.toml").write_text("[project]\nname = 'x'\n")
    (root / "client" / "pyproject.toml").write_text("[project]\nname = 'c'\n")
    (root / "requirements" / "test.txt").write_text("a==1\n")

    def key() -> str:
        result = subprocess.run(
            ["bash", "-c", f'source "{root}/scripts/_env.sh"; _env_key "{sys.executable}"'],
            capture_output=True,
            text=True,
            check=True,
            timeout=30,
        )
        return result.stdout.strip()

    first = key()
    assert first == key()
    (root / "requirements" / "test.txt").write_text("a==2\n")
    second = key()
    assert second != first
    (root / "pyproject.toml").write_text("[project]\nname = 'y'\n")
    third = key()
    assert third not in {first, second}
    (root / "client" / "pyproject.toml").write_text("[project]\nname = 'd'\n")
    fourth = key()
    assert fourth not in {first, second, third}
    # Schemathesis's pins are the environment of its own (.venv-schemathesis), not .venv's.
    (root / "requirements" / "schemathesis.txt").write_text("schemathesis==1\n")
    assert key() == fourth


def _junit(path: Path, tests: int, failures: int, errors: int, skipped: int) -> None:
    path.write_text(
        '<?xml version="1.0" encoding="utf-8"?><testsuites>'
        f'<testsuite name="pytest" tests="{tests}" failures="{failures}" '
        f'errors="{errors}" skipped="{skipped}"></testsuite></testsuites>'
    )


def _summary(*paths: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(SUMMARY), *map(str, paths)],
        capture_output=True,
        text=True,
        check=False,
        timeout=30,
    )


def test_summary_adds_sessions_into_one_closing_line(tmp_path: Path) -> None:
    _junit(tmp_path / "a.xml", tests=10, failures=0, errors=0, skipped=1)
    _junit(tmp_path / "b.xml", tests=5, failures=0, errors=0, skipped=0)
    result = _summary(tmp_path / "a.xml", tmp_path / "b.xml")
    assert result.returncode == 0
    assert result.stdout.strip().splitlines()[-1] == "pytest: 14 passed, 0 failed, 1 skipped"


def test_summary_fails_on_failures_errors_missing_reports_and_no_tests(tmp_path: Path) -> None:
    _junit(tmp_path / "bad.xml", tests=4, failures=1, errors=1, skipped=0)
    result = _summary(tmp_path / "bad.xml")
    assert result.returncode == 1
    assert result.stdout.strip().splitlines()[-1] == "pytest: 2 passed, 2 failed"

    result = _summary(tmp_path / "missing.xml")
    assert result.returncode == 1
    assert "missing" in result.stdout

    _junit(tmp_path / "empty.xml", tests=0, failures=0, errors=0, skipped=0)
    assert _summary(tmp_path / "empty.xml").returncode == 1

    (tmp_path / "broken.xml").write_text("<testsuites")
    result = _summary(tmp_path / "broken.xml")
    assert result.returncode == 1
    assert "not valid JUnit XML" in result.stdout


def test_ensure_chromium_leaves_an_installed_chromium_alone(tmp_path: Path) -> None:
    fake = tmp_path / "chromium"
    fake.write_text("#!/bin/sh\nexit 0\n")
    fake.chmod(0o755)
    result = _bash("ensure_chromium", env={"TRANSACTIVA_CHROMIUM": str(fake)})
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""


def test_the_test_script_installs_chromium_before_the_tests() -> None:
    text = (REPO / "scripts" / "test").read_text(encoding="utf-8")
    assert text.index("ensure_chromium") < text.index('"pytest: library and node"')
