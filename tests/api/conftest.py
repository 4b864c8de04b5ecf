"""Real node processes for the API's edge tests (started once per module: each start
loads the roles, analytics included)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.api.node import NodeProcess, make_home


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[NodeProcess]:
    """A running node with the meter (pushed readings) and the concentrator, so every
    route of the document is served."""
    home = make_home(tmp_path_factory.mktemp("api") / "home", roles=True)
    running = NodeProcess(home).start()
    try:
        yield running
    finally:
        running.kill()
