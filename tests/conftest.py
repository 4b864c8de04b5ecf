"""Shared settings for the library and node tests (not the Home Assistant ones)."""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

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
