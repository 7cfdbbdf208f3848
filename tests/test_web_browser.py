"""The dashboard in a real headless Chromium (Debian's, driven by playwright): what an analyst sees after a month of
news, a revision arriving live, a hostile headline staying text, the token and origin checks as a browser meets
them, and the dead-letter retry button. The tests leave a screenshot of each page in docs/screenshots/."""

from __future__ import annotations

import io
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
import redis.asyncio as aioredis
from aiohttp import web
from playwright.async_api import Page, expect

from monitor.storage.deadletters import dead_fields
from monitor.storage.keys import Keys
from tests.support.browser import chromium, page_of, screenshot
from tests.support.dashboard import END, REVISION, TOKEN, XSS, Dashboard, dashboard

pytestmark = pytest.mark.timeout(240)


async def _overview(page: Page, dash: Dashboard) -> None:
    await page.goto(dash.url + "/")
    await expect(page.locator("#chart")).to_have_attribute("data-ready", "drawn")
    await expect(page.locator("body")).to_have_attribute("data-live", "on")


async def test_after_a_month_of_news_the_overview_shows_the_events_and_the_chart(redis: aioredis.Redis) -> None:
    errors: list[str] = []
    async with dashboard(redis) as dash, chromium() as browser, page_of(browser, errors=errors) as page:
        await dash.seed_month()
        await _overview(page, dash)
        assert await page.locator("#chart canvas").count() >= 1
        rows = page.locator("#live table.events tbody tr")
        await expect(rows).to_have_count(2)  # the embassy attack and the advisory are open; the rest have closed
        await expect(page.locator("#level-now .value")).to_have_text("4")
        await expect(page.locator("#alerts li").first).to_contain_text("State Department orders non-emergency staff")
        await page.mouse.move(*(await _last_marker(page)))  # hovering an event's marker names it
        await expect(page.locator("#chart-hover")).to_contain_text("State Department")
        await screenshot(page, "overview")
        for path, name, heading in (
            ("/feeds", "feeds", "Lead-time scoreboard"),
            ("/rules", "rules", "Rule hits, last 7 days"),
            ("/events", "events", "Events"),
        ):
            await page.goto(dash.url + path)
            await expect(page.get_by_role("heading", name=heading)).to_be_visible()
            await screenshot(page, name)
        await page.goto(dash.url + "/events")
        await page.get_by_role("link", name="US drone strike in Baghdad kills Kataib Hezbollah commander").click()
        await expect(page.locator(".first-reporter")).to_contain_text("First to report: wire, 29 min ahead")
        await screenshot(page, "event")
    assert errors == []


async def test_a_revision_appears_live_without_a_reload(redis: aioredis.Redis) -> None:
    async with dashboard(redis) as dash, chromium() as browser, page_of(browser) as page:
        await dash.seed_month()
        await _overview(page, dash)
        await page.evaluate("window.__same_page = true")
        embassy = page.locator("#live tr", has_text="Protesters storm US embassy compound")
        await expect(embassy.locator("td.revision")).to_have_text("r1")
        await dash.feed(REVISION)
        await expect(embassy.locator("td.revision")).to_have_text("r2", timeout=30_000)
        await expect(page.locator("#alerts li").first).to_contain_text("casualties reported: 3")
        assert await page.evaluate("window.__same_page") is True  # the page was never reloaded


async def test_a_hostile_headline_is_shown_as_text_and_runs_nothing(redis: aioredis.Redis) -> None:
    dialogs: list[str] = []
    async with dashboard(redis) as dash, chromium() as browser, page_of(browser) as page:
        page.on("dialog", lambda dialog: dialogs.append(dialog.message))
        dash.clock.moment = END
        await dash.feed(XSS)
        await _overview(page, dash)
        link = page.locator("#live table.events a.title")
        await expect(link).to_have_text(XSS.title)
        assert await link.get_attribute("dir") == "auto"
        await link.click()
        await expect(page.locator("h1.title")).to_have_text(XSS.title)
        assert await page.locator("main img, main script").count() == 0
        assert await page.evaluate("window.__pwned") is None and dialogs == []


async def test_without_the_token_or_from_another_origin_nothing_is_served_or_done(redis: aioredis.Redis) -> None:
    async with dashboard(redis, token=TOKEN) as dash, chromium() as browser, page_of(browser) as page:
        await _dead_letter(redis)
        response = await page.goto(dash.url + "/delivery")
        assert response is not None and re.search(r"/login\?next=/delivery$", page.url)
        assert (await page.request.get(dash.url + "/api/dlq")).status == 401
        await page.get_by_label("Token").fill("not-the-token")
        await page.get_by_role("button", name="Log in").click()
        await expect(page.get_by_role("alert")).to_contain_text("not the dashboard's")
        await screenshot(page, "login")
        await page.get_by_label("Token").fill(TOKEN)
        await page.get_by_role("button", name="Log in").click()
        await expect(page.get_by_role("heading", name="Dead letters")).to_be_visible()
        async with _foreign_site(dash.url) as foreign:  # another origin, with the session cookie in the browser
            await page.goto(foreign)
            await page.get_by_role("button", name="Win a prize").click()
            await expect(page.locator("body")).to_contain_text("cross-origin request refused")
        assert await redis.xlen(Keys().dead) == 1  # the dead letter was not re-sent


async def test_the_retry_button_sends_a_dead_letter_again(redis: aioredis.Redis) -> None:
    async with dashboard(redis) as dash, chromium() as browser, page_of(browser) as page:
        await dash.seed_month()
        await _dead_letter(redis)
        await page.goto(dash.url + "/delivery")
        row = page.locator("table.dead tbody tr")
        await expect(row).to_contain_text("HTTP 410 Gone")
        await screenshot(page, "delivery")
        await row.get_by_role("button", name="Retry").click()
        await expect(page.locator("tr.retried")).to_contain_text("Re-sent to console: A dead alert")
        assert await redis.xlen(Keys().dead) == 0
        out = dash.app.stdout
        assert isinstance(out, io.StringIO)
        await dash.app.deliver_pending(10)
        assert "A dead alert" in out.getvalue()  # the console sink printed it again


async def _last_marker(page: Page) -> tuple[float, float]:
    """Where the newest event's marker is drawn on the page."""
    return await page.evaluate(
        """() => {
            const plot = document.querySelector('#chart').uplot, markers = plot.data[3];
            let i = markers.length - 1;
            while (markers[i] == null) i--;
            const over = plot.over.getBoundingClientRect();
            return [over.left + plot.valToPos(plot.data[0][i], 'x'), over.top + plot.valToPos(markers[i], 'y')];
        }"""
    )


async def _dead_letter(redis: aioredis.Redis) -> None:
    alert = b'{"id":"ev_dead.r1","kind":"event","event_id":"ev_dead","revision":1,"title":"A dead alert"}'
    fields = dead_fields(
        sink="console", alert_id="ev_dead.r1", alert=alert, reason="HTTP 410 Gone", attempts=1,
        time=END.isoformat(), entry="0-1",
    )  # fmt: skip
    await redis.xadd(Keys().dead, fields)


@asynccontextmanager
async def _foreign_site(target: str) -> AsyncIterator[str]:
    """A page of another origin (another port of loopback) whose button posts a form to the dashboard."""
    page = (
        f'<!doctype html><form method="post" action="{target}/api/dlq/retry">'
        '<input type="hidden" name="id" value="0-0"><button type="submit">Win a prize</button></form>'
    )

    async def index(request: web.Request) -> web.Response:
        return web.Response(text=page, content_type="text/html")

    app = web.Application()
    app.router.add_get("/", index)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    try:
        await web.TCPSite(runner, "127.0.0.1", 0).start()
        yield f"http://127.0.0.1:{runner.addresses[0][1]}/"
    finally:
        await runner.cleanup()
