"""The ``transactiva`` command, in-process and as the installed console script."""

from __future__ import annotations

import io
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from ledger_core import __version__
from ledger_core.cli import COMMANDS, Command, build_parser, main, register


def _console_script() -> str:
    """The console script installed next to the running interpreter."""
    candidate = Path(sys.executable).with_name("transactiva")
    found = str(candidate) if candidate.exists() else shutil.which("transactiva")
    assert found, "the transactiva console script is not installed"
    return found


def test_version_flag_prints_the_package_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["--version"])
    assert exit_info.value.code == 0
    assert capsys.readouterr().out.strip() == f"transactiva {__version__}"


def test_help_lists_the_subcommands(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert "usage: transactiva" in out
    for name in COMMANDS:
        assert name in out


def test_no_subcommand_prints_usage_and_returns_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 2
    assert "usage: transactiva" in capsys.readouterr().err


def test_unknown_subcommand_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["frobnicate"])
    assert exit_info.value.code == 2
    assert "invalid choice: 'frobnicate'" in capsys.readouterr().err


def test_demo_refuses_more_homes_than_one_machine_runs() -> None:
    out = io.StringIO()
    assert main(["demo", "--homes", "51"], out=out) == 2
    assert "--homes is at most 50" in out.getvalue()


def test_a_subcommand_name_cannot_be_registered_twice() -> None:
    demo = COMMANDS["demo"]
    with pytest.raises(ValueError, match="registered twice"):
        register(Command(name="demo", help="x", configure=demo.configure, run=demo.run))


def test_console_script_and_module_entry_points_run() -> None:
    module = [sys.executable, "-m", "ledger_core", "--version"]
    for argv in ([_console_script(), "--version"], module):
        result = subprocess.run(argv, capture_output=True, text=True, check=False, timeout=60)
        assert result.returncode == 0, result.stderr
        assert result.stdout.strip() == f"transactiva {__version__}"


def test_analytics_backtest_checks_its_options() -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["analytics", "backtest", "--days", "3"], out=io.StringIO())
    assert exit_info.value.code == 2


HEAVY = ("numpy", "pandas", "scipy", "pvlib", "demandlib")


@pytest.mark.parametrize("argv", [["--help"], *([name, "--help"] for name in COMMANDS)])
def test_help_loads_no_heavy_library(argv: list[str]) -> None:
    """Importing the command and asking any subcommand for help loads none of the heavy
    libraries: they belong to the commands and roles that use them (the demo, analytics)."""
    probe = (
        "import sys\n"
        "from ledger_core.cli import main\n"
        "try:\n"
        f"    main({argv!r})\n"
        "except SystemExit:\n"
        "    pass\n"
        f"print(sorted(m for m in {HEAVY!r} if m in sys.modules), file=sys.stderr)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=120, check=False
    )
    assert result.stderr.strip().splitlines()[-1] == "[]", result.stderr


def test_every_subcommand_sets_up_its_arguments() -> None:
    """Each command's module and functions exist (they are imported only when used)."""
    parser = build_parser()  # every command set up, each module imported
    for name in COMMANDS:
        with pytest.raises(SystemExit) as exit_info:
            parser.parse_args([name, "--help"])
        assert exit_info.value.code == 0
