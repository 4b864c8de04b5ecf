"""``transactiva operator``: tariffs offline, and prices and DR against a real node process."""

from __future__ import annotations

import argparse
import asyncio
import io
import subprocess
import sys
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from ledger_core.cli.operator import duration, kilowatts, main, moment, mxn_price
from ledger_core.client import NodeClient
from ledger_core.node.home import Home
from tests.concentrator.harness import BLOCK, TOU, mx
from tests.node.test_process import NodeProcess, cli, free_port

MEXICO = ZoneInfo("America/Mexico_City")


def operator(*args: str) -> tuple[int, str]:
    out = io.StringIO()
    return main(list(args), out), out.getvalue()


def test_argument_types() -> None:
    assert [duration(t) for t in ("900", "900s", "30m", "2h", "1h30m", "1h5s")] == [
        900,
        900,
        1800,
        7200,
        5400,
        3605,
    ]
    assert (kilowatts("1.5"), kilowatts("-0.8"), kilowatts("2")) == (1500, -800, 2000)
    assert mxn_price("2.3456") == 23_456
    assert mxn_price("-1") == -10_000
    noon = mx(2026, 3, 10, 12)
    assert moment("now", MEXICO, noon + 0.7) == noon
    assert moment("+30m", MEXICO, noon) == noon + 1800
    assert moment("2026-03-10 18:00", MEXICO, 0) == mx(2026, 3, 10, 18)
    for parse, bad, message in [
        (duration, "half an hour", "not a duration"),
        (duration, "", "not a duration"),
        (duration, "8d", "not a duration"),
        (duration, "200h", "longer than 7 days"),
        (kilowatts, "1.0005", "at most 3 decimals"),
        (kilowatts, "lots", "not a number"),
        (kilowatts, "inf", "at most 3 decimals"),
        (mxn_price, "2.34567", "more than 4 decimal places"),
        (mxn_price, "barato", "not a number"),
    ]:
        with pytest.raises(argparse.ArgumentTypeError, match=message):
            parse(bad)
    with pytest.raises(argparse.ArgumentTypeError, match="'YYYY-MM-DD HH:MM'"):
        moment("tomorrow", MEXICO, 0)


def test_tariff_check_and_the_schedule_need_no_node(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    status, text = operator("tariff", "check", str(BLOCK))
    assert status == 0
    assert "signals use intermediate_low (reference 280 kWh)" in text
    status, text = operator("tariff", "check", str(TOU))
    assert (status, text.splitlines()[-1]) == (0, "  period peak: import 3.4520 MXN/kWh")
    bad = tmp_path / "bad.toml"
    bad.write_text(TOU.read_text(encoding="utf-8").replace("3.4520", "3.45201"), encoding="utf-8")
    assert operator("tariff", "check", str(bad))[0] == 1
    assert f"{bad}: periods.peak.import_price: 3.45201 has more than 4" in capsys.readouterr().err
    assert operator("tariff", "check", str(tmp_path / "none.toml"))[0] == 2
    assert "none.toml: cannot read" in capsys.readouterr().err

    status, text = operator("prices", "show", "--tariff", str(TOU), "--day", "2026-03-10")
    assert status == 0
    assert text.splitlines() == [
        "2026-03-10 (America/Mexico_City), MXN/kWh: import / export / network fee",
        "  00:00-06:00  base           1.2150 / 1.0500 / 0.4130",
        "  06:00-18:00  intermediate   2.0480 / 1.0500 / 0.4130",
        "  18:00-22:00  peak           3.4520 / 1.0500 / 0.4130",
        "  22:00-24:00  intermediate   2.0480 / 1.0500 / 0.4130",
    ]
    status, text = operator("prices", "show", "--tariff", str(BLOCK))
    assert status == 0
    assert len(text.splitlines()) == 2  # one block price all day, whatever today is
    with pytest.raises(SystemExit) as exit_info:
        operator("prices", "show", "--tariff", str(TOU), "--day", "10/03/2026")
    assert exit_info.value.code == 2
    assert "is not a date YYYY-MM-DD" in capsys.readouterr().err


@pytest.fixture
def node(tmp_path: Path) -> Iterator[NodeProcess]:
    home = tmp_path / "concentrador"
    made = cli("init", "--dir", str(home), "--chain-id", "operador-1", "--api-port",
               str(free_port()))  # fmt: skip
    assert made.returncode == 0, made.stderr
    process = NodeProcess(home)
    process.start()
    try:
        yield process
    finally:
        assert process.process is not None
        if process.process.poll() is None:
            assert process.stop() == 0


async def _prices(home: Path, start: int, end: int) -> dict[int, int]:
    config = Home(home).config()
    client = NodeClient(f"http://{config.api_host}:{config.api_port}", Home(home).token())
    body = await client.get(f"/signals/prices?from={start}&to={end}")
    return {row["interval_start"]: row["import_price"] for row in body["prices"]}


async def run(*args: str) -> tuple[int, str]:
    """The command in a worker thread: it runs its own event loop, as from a shell."""
    return await asyncio.to_thread(operator, *args)


async def test_prices_and_dr_against_a_node_process(
    node: NodeProcess, capsys: pytest.CaptureFixture[str]
) -> None:
    home = str(node.home)
    tomorrow = (datetime.now(MEXICO) + timedelta(days=1)).date().isoformat()
    status, text = await run("prices", "publish", "--tariff", str(TOU), "--day", tomorrow,
                            "--dir", home)  # fmt: skip
    assert status == 0, capsys.readouterr().err
    assert text == (
        f"{tomorrow} (America/Mexico_City): 96 published, 0 already on chain, 0 past, 0 failed\n"
    )
    status, text = await run("prices", "publish", "--tariff", str(TOU), "--day", tomorrow,
                            "--dir", home)  # fmt: skip
    assert (status, text.split(": ")[1]) == (
        0,
        "0 published, 96 already on chain, 0 past, 0 failed\n",
    )
    status, text = await run(
        "prices", "set", "--tariff", str(TOU), "--at", f"{tomorrow} 18:00",
        "--until", f"{tomorrow} 19:00", "--import", "2.5", "--dir", home,
    )  # fmt: skip
    assert (status, text) == (
        0,
        (
            f"{tomorrow} 18:00 to {tomorrow} 19:00: 4 published, 0 already on chain, 0 past, "
            "0 failed\n"
        ),
    )
    six = int(datetime.fromisoformat(f"{tomorrow} 18:00").replace(tzinfo=MEXICO).timestamp())
    prices = await _prices(node.home, six - 900, six + 3600 + 900)
    assert list(prices.values()) == [20_480, 25_000, 25_000, 25_000, 25_000, 34_520]
    assert (await run("prices", "set", "--tariff", str(TOU), "--at", "now", "--dir", home))[0] == 2
    assert "give at least one of" in capsys.readouterr().err

    status, text = await run(
        "dr", "issue", "--level", "2", "--start", "+2h", "--duration", "30m", "--ramp-up", "5m",
        "--dir", home,
    )  # fmt: skip
    assert status == 0, capsys.readouterr().err
    assert text.startswith("issued dr-")
    assert "(modification 0): SIMPLE level 2 from " in text
    assert text.endswith(" America/Mexico_City, ramp-up 300 s; for everyone; status far\n")
    event_id = text.split()[1]
    status, text = await run("dr", "modify", event_id, "--delta-kw", "-1.5", "--dir", home)
    assert (status, text.split(": ")[1].split(" from")[0]) == (0, "LOAD_DISPATCH delta -1500 W")
    assert "(modification 1)" in text
    status, text = await run("dr", "show", event_id, "--dir", home)
    assert text.startswith(f"event {event_id} (modification 1)")
    status, text = await run("dr", "cancel", event_id, "--dir", home)
    assert (status, text.endswith("status cancelled\n")) == (0, True)
    assert "(modification 2)" in text
    assert (await run("dr", "cancel", event_id, "--dir", home))[0] == 1
    assert "cancelled_event" in capsys.readouterr().err
    assert (await run("dr", "show", "dr-none", "--dir", home))[0] == 1
    assert "unknown_event" in capsys.readouterr().err
    assert (await run("dr", "issue", "--level", "1", "--dir", home))[0] == 2
    assert "issue needs a signal" in capsys.readouterr().err
    assert (await run("dr", "issue", "--level", "1", "--start", "soon", "--duration", "5m",
                    "--dir", home))[0] == 2  # fmt: skip
    assert "is not a time" in capsys.readouterr().err
    status, text = await run(
        "dr", "issue", "--price", "6.5", "--start", "+1h", "--duration", "15m", "--id", "caro-1",
        "--target", Home(node.home).participant_key().address, "--timezone", "America/Tijuana",
        "--dir", home,
    )  # fmt: skip
    assert status == 0, capsys.readouterr().err
    assert text.startswith("issued caro-1 (modification 0): ELECTRICITY_PRICE 65000")
    assert " America/Tijuana; for tv" in text

    assert node.stop() == 0
    assert (await run("dr", "show", "caro-1", "--dir", home))[0] == 2
    assert "cannot reach the node" in capsys.readouterr().err
    assert (await run("dr", "show", "caro-1", "--dir", str(node.home / "missing")))[0] == 2
    assert "run 'transactiva init" in capsys.readouterr().err


def test_the_module_runs_as_a_program() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "ledger_core.cli.operator", "tariff", "check", str(TOU)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"{TOU}: ok: time_of_use tariff")
