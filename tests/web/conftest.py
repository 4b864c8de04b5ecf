"""One Chromium for each module of browser tests (see ``browser.py``): module-scoped, so
that Playwright's event loop is gone before the asyncio tests of other modules run."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Playwright, sync_playwright

from tests.web.browser import CHROMIUM, FLAGS


@pytest.fixture(scope="module")
def playwright() -> Iterator[Playwright]:
    if not Path(CHROMIUM).is_file():
        pytest.fail(
            f"Chromium is not installed at {CHROMIUM}: the browser tests need Debian's "
            "Chromium. Install it with 'apt-get install chromium' (./scripts/test does so "
            "when it runs as root), or point TRANSACTIVA_CHROMIUM at a Chromium binary."
        )
    with sync_playwright() as driver:
        yield driver


@pytest.fixture(scope="module")
def browser(playwright: Playwright) -> Iterator[Browser]:
    chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
    try:
        yield chromium
    finally:
        chromium.close()
