"""``transactiva contract check|fmt|explain``: output, exit status, files untouched on error."""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from contracts import parse, short_id
from ledger_core.cli import main

REPO = Path(__file__).resolve().parents[2]
FIG7 = (REPO / "tests" / "contracts" / "examples" / "fig7.contract").read_text(encoding="utf-8")
FIG7_FIXED = FIG7.replace("2019/09/31", "2019/09/30")


@pytest.fixture
def ok_file(tmp_path: Path) -> Path:
    path = tmp_path / "prueba.contract"
    path.write_text(FIG7_FIXED, encoding="utf-8")
    return path


@pytest.fixture
def bad_file(tmp_path: Path) -> Path:
    path = tmp_path / "fig7.contract"
    path.write_text(FIG7, encoding="utf-8")
    return path


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    status = main(list(argv))
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def test_check_valid_file_prints_name_and_id(
    capsys: pytest.CaptureFixture[str], ok_file: Path
) -> None:
    status, out, err = run(capsys, "contract", "check", str(ok_file))
    assert status == 0
    assert out == f"{ok_file}: ok: contract 'prueba' [{short_id(parse(FIG7_FIXED))}]\n"
    assert err == (
        f"{ok_file}:6:1: warning: 'DemandRespose' is the paper's misspelling of "
        "DemandResponse; accepted (did you mean DemandResponse?)\n"
    )


def test_check_invalid_file_reports_file_line_column_and_exits_1(
    capsys: pytest.CaptureFixture[str], ok_file: Path, bad_file: Path
) -> None:
    status, out, err = run(capsys, "contract", "check", str(ok_file), str(bad_file))
    assert status == 1
    assert out.startswith(f"{ok_file}: ok: contract 'prueba'")
    assert f"{bad_file}:2:35: error: 2019/09/31 is not a calendar date" in err


def test_check_unreadable_file_exits_2(
    capsys: pytest.CaptureFixture[str], ok_file: Path, bad_file: Path, tmp_path: Path
) -> None:
    missing = tmp_path / "missing.contract"
    status, _out, err = run(capsys, "contract", "check", str(bad_file), str(missing), str(ok_file))
    assert status == 2
    assert f"{missing}: cannot read: No such file or directory" in err


def test_check_a_directory_is_unreadable(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    status, _out, err = run(capsys, "contract", "check", str(tmp_path))
    assert status == 2
    assert f"{tmp_path}: cannot read:" in err


def test_fmt_prints_the_canonical_form(capsys: pytest.CaptureFixture[str], ok_file: Path) -> None:
    status, out, _err = run(capsys, "contract", "fmt", str(ok_file))
    assert status == 0
    assert out.splitlines()[5] == "DemandResponse false"
    assert "  TURN ON DEVICE 'Lavadora'" in out.splitlines()


def test_fmt_write_rewrites_once_and_keeps_the_mode(
    capsys: pytest.CaptureFixture[str], ok_file: Path
) -> None:
    ok_file.chmod(0o640)
    status, out, _err = run(capsys, "contract", "fmt", "--write", str(ok_file))
    assert status == 0
    assert out == f"{ok_file}: rewritten in canonical form\n"
    text = ok_file.read_text(encoding="utf-8")
    assert "DemandResponse false\n" in text
    assert ok_file.stat().st_mode & 0o777 == 0o640
    assert parse(text) == parse(FIG7_FIXED)
    assert list(ok_file.parent.iterdir()) == [ok_file], "no temporary file left behind"

    status, out, _err = run(capsys, "contract", "fmt", "--write", str(ok_file))
    assert status == 0
    assert out == f"{ok_file}: already canonical\n"


def test_fmt_write_leaves_an_invalid_file_untouched(
    capsys: pytest.CaptureFixture[str], bad_file: Path
) -> None:
    status, out, err = run(capsys, "contract", "fmt", "--write", str(bad_file))
    assert status == 1
    assert out == ""
    assert ":2:35: error:" in err
    assert bad_file.read_text(encoding="utf-8") == FIG7


def test_fmt_write_into_a_read_only_directory_fails_cleanly(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    folder = tmp_path / "ro"
    folder.mkdir()
    path = folder / "c.contract"
    path.write_text(FIG7_FIXED, encoding="utf-8")
    folder.chmod(0o500)
    try:
        status, _out, err = run(capsys, "contract", "fmt", "--write", str(path))
    finally:
        folder.chmod(0o700)
    if status == 0:  # root ignores directory permissions
        assert "DemandResponse false" in path.read_text(encoding="utf-8")
    else:
        assert status == 2
        assert "cannot write" in err
        assert path.read_text(encoding="utf-8") == FIG7_FIXED


def test_explain_shows_actions_and_reasons(
    capsys: pytest.CaptureFixture[str], ok_file: Path
) -> None:
    status, out, _err = run(
        capsys,
        "contract",
        "explain",
        str(ok_file),
        "--event",
        "price_signal",
        "--at",
        "2019/08/05 12:00:00",
        "--price",
        "2",
    )
    assert status == 0
    lines = out.splitlines()
    assert lines[1] == "event: price_signal at 2019/08/05 12:00:00"
    assert "rule at line 7: true" in lines
    assert "  1. turn on 'Lavadora' (line 7: IF Price < 3 THEN)" in lines


def test_explain_interval_report_with_surplus_and_unknown_price(
    capsys: pytest.CaptureFixture[str], ok_file: Path
) -> None:
    status, out, _err = run(
        capsys,
        "contract",
        "explain",
        str(ok_file),
        "--event",
        "interval_report",
        "--at",
        "2019/08/05 12:15:00",
        "--production-wh",
        "600",
        "--consumption-wh",
        "200",
    )
    assert status == 0
    assert "rule at line 7: unknown (a value is not known)" in out
    assert "  1. sell surplus (line 4: Production true and sell)" in out


def test_explain_demand_response_with_suppression(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    path = tmp_path / "dr.contract"
    path.write_text(FIG7_FIXED.replace("DemandRespose false", "DemandResponse true"))
    status, out, _err = run(
        capsys,
        "contract", "explain", str(path), "--event", "dr_signal", "--dr-level", "2",
        "--price", "1", "--at", "2019/08/05 12:00:00",
    )  # fmt: skip
    assert status == 0
    assert "  1. turn off 'Lavadora' (line 6: DemandResponse true)" in out
    assert (
        "suppressed: turn on 'Lavadora' (line 7: IF Price < 3 THEN): held off by demand response"
        in out
    )


def test_explain_outside_the_window(capsys: pytest.CaptureFixture[str], ok_file: Path) -> None:
    status, out, _err = run(
        capsys, "contract", "explain", str(ok_file), "--event", "service_cut",
        "--at", "2020/01/01 00:00:00",
    )  # fmt: skip
    assert status == 0
    assert "service cut" in out
    assert "outside the validity window (2019/08/01 00:00:00 to 2019/09/30 23:59:59)" in out


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("--at", "2019-08-05", "is not a local time"),
        ("--price", "cheap", "is not a number"),
        ("--price", "NaN", "is not a finite number"),
        ("--dr-level", "5", "the demand-response level is 0, 1, 2 or 3"),
        ("--consumption", "-3", "is negative"),
        ("--consumption", "2.5", "is not a whole number"),
    ],
)
def test_explain_rejects_bad_options(
    capsys: pytest.CaptureFixture[str], ok_file: Path, option: str, value: str, message: str
) -> None:
    with pytest.raises(SystemExit) as info:
        main(["contract", "explain", str(ok_file), "--event", "price_signal", option, value])
    assert info.value.code == 2
    assert message in capsys.readouterr().err


def test_explain_invalid_and_unreadable(
    capsys: pytest.CaptureFixture[str], bad_file: Path, tmp_path: Path
) -> None:
    assert main(["contract", "explain", str(bad_file), "--event", "price_signal"]) == 1
    assert main(["contract", "explain", str(tmp_path / "x"), "--event", "price_signal"]) == 2
    assert main(["contract", "fmt", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err
    assert "cannot read" in err


def test_stdin_and_the_installed_command() -> None:
    command = [sys.executable, "-m", "ledger_core", "contract", "check", "-"]
    done = subprocess.run(
        command, input=FIG7_FIXED.encode(), capture_output=True, check=False, timeout=60
    )
    assert done.returncode == 0
    assert done.stdout.decode().startswith("<stdin>: ok: contract 'prueba' [0x")

    done = subprocess.run(
        [sys.executable, "-m", "ledger_core", "contract", "fmt", "--write", "-"],
        input=FIG7_FIXED.encode(),
        capture_output=True,
        check=False,
        timeout=60,
    )
    assert done.returncode == 2
    assert b"--write needs a file" in done.stderr


def test_contract_without_action_is_a_usage_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["contract"])
    assert info.value.code == 2
    assert "ACTION" in capsys.readouterr().err


def test_explain_prints_the_whole_state_and_no_actions(
    capsys: pytest.CaptureFixture[str], ok_file: Path
) -> None:
    status, out, _err = run(
        capsys, "contract", "explain", str(ok_file), "--event", "reconnection",
        "--at", "2019/08/05 12:00:00", "--price", "3.5", "--export-price", "1.2",
        "--battery", "80", "--consumption", "400", "--production", "100",
    )  # fmt: skip
    assert status == 0
    assert (
        "state: price 3.5 MXN/kWh, export price 1.2 MXN/kWh, consumption 400 W / 0 Wh, "
        "production 100 W / 0 Wh, DR level 0, battery 80 %, service connected"
    ) in out
    assert "rule at line 7: false" in out
    assert out.endswith("actions: none\n")


# -- a home's contracts together ------------------------------------------------------

FIG7_DR = REPO / "tests" / "contracts" / "examples" / "fig7-dr.contract"


@pytest.fixture
def home(tmp_path: Path, ok_file: Path) -> Path:
    """A folder with the paper's contract and its demand-response variant."""
    folder = tmp_path / "casa"
    folder.mkdir()
    (folder / "1-prueba.contract").write_text(FIG7_FIXED, encoding="utf-8")
    (folder / "2-prueba-dr.contract").write_bytes(FIG7_DR.read_bytes())
    return folder


def test_explain_a_homes_contracts_holds_the_washer_off_during_the_event(
    capsys: pytest.CaptureFixture[str], home: Path
) -> None:
    status, out, _err = run(
        capsys, "contract", "explain", str(home), "--event", "dr_signal",
        "--at", "2019/08/05 12:00:00", "--price", "2", "--dr-level", "3",
        "--dr-event", "pico-1", "--dr-until", "2019/08/05 13:30:00", "--device", "Lavadora=on",
    )  # fmt: skip
    assert status == 0
    paper, variant = short_id(parse(FIG7_FIXED)), short_id(parse(FIG7_DR.read_text()))
    assert out.splitlines() == [
        "contracts, oldest first (a later one wins a tie):",
        f"  1. 'prueba' [{paper}] ({home / '1-prueba.contract'})",
        f"  2. 'prueba dr' [{variant}] ({home / '2-prueba-dr.contract'})",
        "event: dr_signal at 2019/08/05 12:00:00",
        (
            "state: price 2 MXN/kWh, consumption 0 W / 0 Wh, production 0 W / 0 Wh, DR level 3, "
            "service connected"
        ),
        f"'prueba' [{paper}]: rule at line 7: true",
        f"'prueba dr' [{variant}]: rule at line 7: true",
        "actions:",
        (
            "  1. turn off 'Lavadora' (line 6: DemandResponse true shed 'Lavadora') "
            f"of 'prueba dr' [{variant}]"
        ),
        (
            f"suppressed: turn on 'Lavadora' (line 7: IF Price < 3 THEN) of 'prueba' [{paper}]: "
            "held off by DR event pico-1 until 13:30"
        ),
        (
            "suppressed: turn on 'Lavadora' (line 7: IF Price < 3 THEN) of "
            f"'prueba dr' [{variant}]: held off by DR event pico-1 until 13:30"
        ),
    ]
    # The files in the other order: the paper's contract is then the newer one; the
    # decision for the washer is the same.
    status, again, _err = run(
        capsys, "contract", "explain", str(home / "2-prueba-dr.contract"),
        str(home / "1-prueba.contract"), "--event", "dr_signal", "--at", "2019/08/05 12:00:00",
        "--price", "2", "--dr-level", "3",
    )  # fmt: skip
    assert status == 0
    assert "  1. turn off 'Lavadora' (line 6: DemandResponse true shed 'Lavadora')" in again
    assert again.count("held off by demand response (level 3)") == 2


def test_explain_the_end_of_the_event_restores_the_state_before(
    capsys: pytest.CaptureFixture[str], home: Path
) -> None:
    common = ["--event", "dr_signal", "--at", "2019/08/05 14:00:00", "--device", "Lavadora=off"]
    status, out, _err = run(
        capsys, "contract", "explain", str(home), *common, "--price", "4",
        "--before-dr", "Lavadora=on",
    )  # fmt: skip
    assert status == 0
    assert "  1. restore 'Lavadora' to on (line 6: DemandResponse true shed 'Lavadora')" in out
    # With the price still low the rules speak at the end: a rule beats the restore.
    status, out, _err = run(
        capsys, "contract", "explain", str(home), *common, "--price", "2",
        "--before-dr", "Lavadora=on",
    )  # fmt: skip
    assert "  1. turn on 'Lavadora' (line 7: IF Price < 3 THEN) of 'prueba dr'" in out
    assert "superseded: restore 'Lavadora' to on" in out
    assert "superseded: turn on 'Lavadora' (line 7: IF Price < 3 THEN) of 'prueba' [" in out


def test_explain_rejects_a_bad_device_state(
    capsys: pytest.CaptureFixture[str], ok_file: Path
) -> None:
    with pytest.raises(SystemExit) as info:
        main(["contract", "explain", str(ok_file), "--event", "dr_signal", "--device", "x=maybe"])
    assert info.value.code == 2
    assert "expected DEVICE=on or DEVICE=off" in capsys.readouterr().err


def test_explain_an_empty_folder(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    status, _out, err = run(capsys, "contract", "explain", str(tmp_path), "--event", "dr_signal")
    assert status == 2
    assert err == "no contract files to explain\n"


def test_check_against_the_homes_active_contracts_warns_naming_both_lines(
    capsys: pytest.CaptureFixture[str], home: Path, tmp_path: Path
) -> None:
    new = home / "2-prueba-dr.contract"
    # The folder holds the new contract itself: it is not compared with itself.
    status, out, err = run(capsys, "contract", "check", str(new), "--against", str(home))
    assert status == 0
    assert out.startswith(f"{new}: ok: contract 'prueba dr'")
    assert err == (
        f"{new}:6:1: warning: demand response sheds 'Lavadora', which TURN ON DEVICE "
        f"'Lavadora' at {home / '1-prueba.contract'}:8:1 turns on: during an event that TURN ON "
        "is suppressed (e.g. when Price 2 MXN/kWh, DRLevel 1) (the device stays off until the "
        "event ends, then goes back to how it was)\n"
    )
    # An invalid or unreadable active contract is reported; the new one is still checked.
    broken = tmp_path / "roto.contract"
    broken.write_text("Contract 'x'\n", encoding="utf-8")
    status, out, err = run(
        capsys, "contract", "check", str(new), "--against", str(broken), str(tmp_path / "no")
    )
    assert status == 2
    assert f"{broken}:1:1: error: missing Valid clause" in err
    assert "cannot read" in err
    assert "ok: contract 'prueba dr'" in out


DOC = (REPO / "docs" / "contract-language.md").read_text(encoding="utf-8")


def _documented(command: str) -> tuple[list[str], list[str]]:
    """The arguments and the output of the session in the reference that runs ``command``."""
    (block,) = re.findall(r"```\n(\$ transactiva contract " + command + r".*?)```", DOC, re.DOTALL)
    lines = block.splitlines()
    words: list[str] = []
    while True:
        line = lines.pop(0)
        words.extend(shlex.split(line.removesuffix("\\")))
        if not line.endswith("\\"):
            break
    return words[2:], lines


@pytest.mark.parametrize("command", ["explain prueba.contract", "check prueba-dr.contract"])
def test_the_sessions_in_the_reference_are_what_the_command_prints(
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    command: str,
) -> None:
    (tmp_path / "prueba.contract").write_text(FIG7_FIXED, encoding="utf-8")
    (tmp_path / "prueba-dr.contract").write_bytes(FIG7_DR.read_bytes())
    monkeypatch.chdir(tmp_path)
    argv, expected = _documented(command)
    status, out, err = run(capsys, *argv)
    assert status == 0
    if argv[1] == "check":
        assert err.splitlines() + out.splitlines() == expected
    else:
        assert out.splitlines() == expected
