"""A real headless Chromium for the dashboard's tests: Debian's ``chromium`` driven by playwright (no browser of
playwright's own is downloaded). ``make test`` installs the package when it can; without it these tests skip, or
fail when ``CI`` or ``MONITOR_REQUIRE_BROWSER`` is set (``.ci/run`` sets it)."""

from __future__ import annotations

import os
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from playwright.async_api import Browser, Page, async_playwright

CHROMIUM = Path("/usr/bin/chromium")
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--no-first-run",
    "--no-default-browser-check",
]
#: Where the tests leave their screenshots: a temporary folder, or ``$MONITOR_SCREENSHOTS`` (``make screenshots``
#: sets it to docs/screenshots, whose pictures the README and docs/dashboard.md show), so a test run never
#: rewrites committed files.
SCREENSHOTS = Path(os.environ.get("MONITOR_SCREENSHOTS") or Path(tempfile.gettempdir()) / "monitor-screenshots")


def require_chromium() -> None:
    if not CHROMIUM.exists():
        if os.environ.get("CI") or os.environ.get("MONITOR_REQUIRE_BROWSER"):
            pytest.fail(f"{CHROMIUM} is missing: .ci/run installs Debian's chromium package")
        pytest.skip(f"{CHROMIUM} is not installed (apt-get install chromium)")


@asynccontextmanager
async def chromium() -> AsyncIterator[Browser]:
    require_chromium()
    async with async_playwright() as driver:
        browser = await driver.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=ARGS)
        try:
            yield browser
        finally:
            await browser.close()


@asynccontextmanager
async def page_of(browser: Browser, *, errors: list[str] | None = None) -> AsyncIterator[Page]:
    """A fresh page (its own cookies) sized like a laptop screen; console errors and page errors go to ``errors``."""
    context = await browser.new_context(
        viewport={"width": 1280, "height": 900}, device_scale_factor=1, timezone_id="UTC", locale="en-GB"
    )
    page = await context.new_page()
    page.set_default_timeout(30_000)
    if errors is not None:
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    try:
        yield page
    finally:
        await context.close()


async def screenshot(page: Page, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)  # noqa: ASYNC240 (a test helper; one mkdir)
    await page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True, animations="disabled")
