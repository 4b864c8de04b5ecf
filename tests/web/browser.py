"""What the browser tests share: Debian's Chromium driven by Playwright, a signed-in tab
that fails the test on any script error, and screenshots in ``test-artifacts/``.

Chromium comes from Debian (``/usr/bin/chromium``, or ``$TRANSACTIVA_CHROMIUM``);
``./scripts/test`` installs it when it is missing. Without it the browser tests fail,
saying so (see ``conftest.py``).
"""

from __future__ import annotations

import contextlib
import os
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Final, Protocol

from playwright.sync_api import Browser, ConsoleMessage, Page, expect

REPO: Final = Path(__file__).resolve().parents[2]
ARTIFACTS: Final = REPO / "test-artifacts"
CHROMIUM: Final = os.environ.get("TRANSACTIVA_CHROMIUM", "/usr/bin/chromium")
FLAGS: Final = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
PHONE: Final = {"width": 390, "height": 844}
DESKTOP: Final = {"width": 1280, "height": 900}


class WebNode(Protocol):
    """A node whose web interface a tab opens."""

    @property
    def url(self) -> str: ...

    @property
    def token(self) -> str: ...


@contextlib.contextmanager
def opened(
    browser: Browser, node: WebNode, locale: str, viewport: dict[str, int]
) -> Iterator[Page]:
    """A fresh tab signed in to the node; fails on any script error in the page."""
    context = browser.new_context(locale=locale, viewport=viewport)
    page = context.new_page()
    page.set_default_timeout(15000)
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))

    def console(message: ConsoleMessage) -> None:
        # The first request without a token is refused (401): that is how the page learns
        # it must ask for one. Anything else logged as an error is a failure.
        if message.type == "error" and "401" not in message.text:
            errors.append(message.text)

    page.on("console", console)
    try:
        page.goto(node.url)
        page.fill("#token", node.token)
        page.click("form.login button[type=submit]")
        expect(page.locator("#status")).to_have_class(re.compile(r"\blive\b"))
        yield page
        assert not errors, errors
    finally:
        context.close()


def shot(page: Page, name: str) -> None:
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)
