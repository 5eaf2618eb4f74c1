"""The preference center in headless Chromium: from a received email's link to the next email."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Callable
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, TypeVar

import pytest
from selenium import webdriver
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select

from bot.readers import subscribers
from bot.service import Service
from tests.browser import CHROMEDRIVER, CHROMIUM, chromium, free_socket, served, submit
from tests.conftest import make_config, story
from tests.fakes import FakeSlack, SmtpRecorder
from tests.harness import Clock, Desk
from tests.test_preferences import READER, text_of

pytestmark = [pytest.mark.skipif(not (CHROMIUM.exists() and CHROMEDRIVER.exists()),
                                 reason="needs Debian's chromium and chromium-driver"),
              pytest.mark.timeout(240)]  # tests/browser.py bounds each wait below this
T = TypeVar("T")


@pytest.fixture
async def desk(tmp_path: Path, sqlite_url: str, slack: FakeSlack,
               smtp: tuple[SmtpRecorder, int]) -> AsyncIterator[Desk]:
    sock = free_socket()
    port = sock.getsockname()[1]
    config = make_config(
        tmp_path, sqlite_url, {"email": {"batch_window": "0s"}},
        slack_bot_token="xoxb-test-token", slack_api_url=slack.url,
        smtp_host="127.0.0.1", smtp_port=smtp[1], smtp_security="none",
        email_from="Alerts <alerts@desk.example>", public_url=f"http://127.0.0.1:{port}")
    clock = Clock()
    clock.now = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
    service = Service(config, clock)
    async with served(service, sock):
        yield Desk(service, slack, smtp[0], clock)
    await service.close()


async def in_browser(work: Callable[[webdriver.Chrome], T], width: int = 600) -> T:
    """Run blocking WebDriver calls off the loop, which keeps serving the pages."""
    def run() -> T:
        with chromium(width) as driver:
            return work(driver)
    return await asyncio.to_thread(run)


async def received_link(desk: Desk) -> str:
    await desk.subscribe(READER)
    await desk.ingest(story(id="first", scored_at=desk.clock().isoformat()))
    await desk.service.check()
    [message] = desk.emails(READER)
    [url] = re.findall(r"Manage preferences: (\S+)", text_of(message))
    return url


def fill(driver: webdriver.Chrome, values: dict[str, str]) -> str:
    """Type into the form as a reader does (keyboard), submit, return the page shown."""
    for name, value in values.items():
        field = driver.find_element(By.ID, name)
        if field.tag_name == "select":
            Select(field).select_by_value(value)
        elif field.get_attribute("type") in ("time", "date"):
            # typed the way Chromium's date and time fields take keys, then checked below
            field.send_keys(value)
        else:
            field.clear()
            field.send_keys(value)
    submit(driver)
    return str(driver.find_element(By.TAG_NAME, "body").text)


async def test_topics_and_digest_hour_changed_in_chromium_shape_the_next_digest(desk: Desk
                                                                                ) -> None:
    url = await received_link(desk)

    def change(driver: webdriver.Chrome) -> tuple[str, str]:
        driver.get(url)
        page = fill(driver, {"mode": "daily", "topics": "budget", "digest_hour": "0900AM"})
        return page, str(driver.find_element(By.ID, "digest_hour").get_attribute("value"))

    page, hour = await in_browser(change)
    assert "Your changes apply from the next message" in page and hour == "09:00"
    reader = await desk.service.db.read(subscribers.find, READER)
    assert reader is not None and (reader.mode, reader.topics, reader.digest_hour) == (
        "daily", ("budget",), "09:00")
    at = desk.clock().isoformat()
    await desk.ingest(story(id="launch", title="Launch story", scored_at=at),
                      story(id="budget", title="Budget story", topics=["budget"], scored_at=at))
    desk.clock.now = datetime(2026, 11, 27, 7, 0, tzinfo=UTC)
    await desk.service.check()
    assert len(desk.emails(READER)) == 1  # not at the old hour
    desk.clock.now = datetime(2026, 11, 27, 9, 0, tzinfo=UTC)
    await desk.service.check()
    digest = desk.emails(READER)[-1]
    assert digest["Subject"].startswith("Daily digest")
    assert "Budget story" in text_of(digest) and "Launch story" not in text_of(digest)


async def test_pause_until_set_in_chromium_holds_email_until_that_date(desk: Desk) -> None:
    url = await received_link(desk)

    def pause(driver: webdriver.Chrome) -> str:
        driver.get(url)
        return fill(driver, {"paused_until": "11282026"})  # mm/dd/yyyy, as keys in en-US

    assert "Your changes apply from the next message" in await in_browser(pause)
    reader = await desk.service.db.read(subscribers.find, READER)
    assert reader is not None and reader.paused_until == date(2026, 11, 28)
    desk.clock.now = datetime(2026, 11, 27, 23, 0, tzinfo=UTC)
    await desk.ingest(story(id="held", scored_at=desk.clock().isoformat()))
    await desk.service.check()
    assert len(desk.emails(READER)) == 1  # paused
    desk.clock.now = datetime(2026, 11, 28, 0, 1, tzinfo=UTC)
    await desk.ingest(story(id="after", title="After the pause",
                            scored_at=desk.clock().isoformat()))
    await desk.service.check()
    assert "After the pause" in desk.emails(READER)[-1]["Subject"]


async def test_a_tampered_link_shows_an_error_page_in_chromium_and_changes_nothing(
        desk: Desk) -> None:
    url = await received_link(desk)
    before = await desk.service.db.read(subscribers.find, READER)

    def tampered_page(driver: webdriver.Chrome) -> dict[str, Any]:
        driver.get(url[:-3] + ("xyz" if not url.endswith("xyz") else "abc"))
        return {"title": driver.title, "forms": len(driver.find_elements(By.TAG_NAME, "form"))}

    seen = await in_browser(tampered_page)
    assert seen == {"title": "Link not valid · alertbot", "forms": 0}
    assert await desk.service.db.read(subscribers.find, READER) == before


async def test_the_page_breaks_no_rule_of_its_own_policy_in_chromium(desk: Desk) -> None:
    """The inline zone guess runs under the CSP (by its hash); nothing is blocked."""
    url = await received_link(desk)

    def load(driver: webdriver.Chrome) -> tuple[list[str], str]:
        driver.get(url)
        logged = [entry["message"] for entry in driver.get_log("browser")]
        # the guess runs only on an empty field: run the page's own script again on one
        driver.execute_script("document.getElementById('timezone').value = '';")
        script = driver.find_element(By.TAG_NAME, "script").get_attribute("textContent")
        driver.execute_script(script)
        return logged, str(driver.find_element(By.ID, "timezone").get_attribute("value"))

    logged, guessed = await in_browser(load)
    assert not [m for m in logged if "Content Security Policy" in m], logged
    assert guessed  # the browser's own zone (UTC on a server), not left empty
