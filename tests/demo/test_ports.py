"""Where the demo, the testnet and the tests take the ports their nodes will bind:
``TRANSACTIVA_PORTS`` moves the window (one per test worker, so that two workers never
hand out the same port), and a bad value is refused in one line."""

from __future__ import annotations

import itertools
import os
import subprocess
import sys

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ledger_core.demo.chain import (
    PORT_RANGE,
    PORTS_VARIABLE,
    DemoError,
    free_port,
    free_port_run,
    port_range,
)
from tests.ports import worker_window


def test_without_the_variable_ports_come_from_below_the_ephemeral_range(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv(PORTS_VARIABLE, raising=False)
    assert port_range() == PORT_RANGE
    low, high = PORT_RANGE
    assert 1024 <= low < high <= 32768  # 32768: where Linux starts its ephemeral ports
    assert all(low <= free_port() < high for _ in range(20))


def test_the_variable_moves_every_port_handed_out(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(PORTS_VARIABLE, " 24000 - 24200 ")
    assert port_range() == (24000, 24200)
    given = [free_port() for _ in range(30)]
    assert all(24000 <= port < 24200 for port in given)
    assert len(set(given)) == len(given)  # never the same port twice
    base = free_port_run(8)
    assert base >= 24000
    assert base + 8 <= 24200
    assert set(range(base, base + 8)).isdisjoint(given)


@pytest.mark.parametrize(
    "value",
    [
        *("abc", "30000", "30000-", "-30000", "30000-30010"),
        *("800-5000", "40000-70000", "5-a", "31000-30000", "3e4-4e4", "²0000-30000"),
    ],
)
def test_a_bad_window_is_refused_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    monkeypatch.setenv(PORTS_VARIABLE, value)
    with pytest.raises(DemoError, match=f"{PORTS_VARIABLE}=.*expected LOW-HIGH"):
        free_port()
    with pytest.raises(DemoError, match=PORTS_VARIABLE):
        free_port_run(4)


@given(
    st.one_of(
        # what an environment variable can hold: no NUL, no lone surrogate
        st.text(st.characters(exclude_categories=("Cs",), exclude_characters="\x00"), max_size=20),
        st.builds("{}-{}".format, st.integers(-10, 70_000), st.integers(-10, 70_000)),
    )
)
def test_any_value_is_a_window_or_refused_in_one_line(value: str) -> None:
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(PORTS_VARIABLE, value)
        outcome: tuple[int, int] | str
        try:
            outcome = port_range()
        except DemoError as refused:
            outcome = str(refused)
        if isinstance(outcome, str):
            assert outcome.startswith(f"{PORTS_VARIABLE}=")
            assert "\n" not in outcome
        else:
            low, high = outcome
            assert low >= 1024
            assert low + 64 <= high <= 65536


def test_a_run_wider_than_the_window_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(PORTS_VARIABLE, "24000-24064")
    with pytest.raises(DemoError, match="no run of 64 free ports fits in 24000-24064"):
        free_port_run(64)


def test_the_demo_refuses_a_bad_window_in_one_line() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "ledger_core", "demo", "--homes", "2"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={**os.environ, PORTS_VARIABLE: "9000"},
    )
    assert done.returncode == 2
    assert done.stderr.startswith(f"transactiva demo: {PORTS_VARIABLE}='9000': expected LOW-HIGH")
    assert done.stderr.count("\n") == 1, done.stderr


def test_test_workers_get_disjoint_windows_inside_the_default_one() -> None:
    for count in (2, 3, 4, 8):
        windows = [worker_window(f"gw{i}", count) for i in range(count)]
        assert all(w is not None for w in windows)
        spans = sorted(w for w in windows if w is not None)
        assert spans[0][0] >= PORT_RANGE[0]
        assert spans[-1][1] <= PORT_RANGE[1]
        assert all(a[1] <= b[0] for a, b in itertools.pairwise(spans))
        assert all(high - low >= 1000 for low, high in spans)
    assert worker_window("gw0", 1) is None
    assert worker_window("", 2) is None
    assert worker_window("master", 2) is None
