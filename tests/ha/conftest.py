"""Fixtures for the Home Assistant integration tests.

The harness mounts its own ``custom_components`` package when the ``hass``
fixture starts; importing the repository's integration first keeps it in
``sys.modules`` so Home Assistant loads this repository's code.
"""

from __future__ import annotations

import pytest

import custom_components.transactiva  # noqa: F401 - see the module docstring


@pytest.fixture(autouse=True)
def auto_enable_custom_integrations(enable_custom_integrations: None) -> None:
    """Let Home Assistant load custom integrations in every test."""
