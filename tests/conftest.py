"""Shared settings for the library and node tests (not the Home Assistant ones)."""

from __future__ import annotations

import os

from hypothesis import HealthCheck, settings

# "ci": reproducible (derandomised) and thorough enough; "dev": quicker, random;
# "fuzz": long runs by hand, e.g. HYPOTHESIS_PROFILE=fuzz pytest tests/contracts.
settings.register_profile("ci", max_examples=200, deadline=None, derandomize=True, print_blob=True)
settings.register_profile("dev", max_examples=100, deadline=None)
settings.register_profile(
    "fuzz", max_examples=20_000, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "dev"))
