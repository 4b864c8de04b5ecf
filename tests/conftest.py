"""Shared settings for the library and node tests (not the Home Assistant ones)."""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

from ledger_core.demo.chain import PORTS_VARIABLE
from tests.ports import worker_window

# "ci": reproducible (derandomised) and thorough enough; "dev": quicker, random;
# "fuzz": long runs by hand, e.g. HYPOTHESIS_PROFILE=fuzz pytest tests/contracts --timeout=0.
# Generation speed depends on the machine's load, so the too_slow health check
# would make results depend on whatever else runs; it is off everywhere.
_QUIET = [HealthCheck.too_slow]
settings.register_profile(
    "ci",
    max_examples=200,
    deadline=None,
    derandomize=True,
    print_blob=True,
    suppress_health_check=_QUIET,
)
settings.register_profile("dev", max_examples=100, deadline=None, suppress_health_check=_QUIET)
settings.register_profile("fuzz", max_examples=20_000, deadline=None, suppress_health_check=_QUIET)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "dev"))


# Under pytest-xdist each worker gets its own slice of the port window, and so does every
# node, demo and testnet it starts (they inherit the environment): two workers then never
# pick the same free port in the moment before one of their nodes binds it.
_window = worker_window(
    os.environ.get("PYTEST_XDIST_WORKER", ""),
    int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1") or "1"),
)
if _window is not None and not os.environ.get(PORTS_VARIABLE):
    os.environ[PORTS_VARIABLE] = f"{_window[0]}-{_window[1]}"
