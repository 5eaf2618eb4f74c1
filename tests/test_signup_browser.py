"""Self sign-up in headless Chromium at a phone's width: fill the form, receive the email,
open its link, confirm (Debian's chromium and chromedriver, tests/browser.py)."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import TypeVar

import pytest
from selenium import webdriver
from selenium.webdriver.common.by import By

from bot.readers import subscribers
from bot.service import Service
from tests.browser import CHROMEDRIVER, CHROMIUM, chromium, free_socket, served, submit
from tests.conftest import make_config
from tests.fakes import FakeSlack, SmtpRecorder
from tests.harness import Clock, Desk
from tests.test_signup import NEW, text_of

pytestmark = [pytest.mark.skipif(not (CHROMIUM.exists() and CHROMEDRIVER.exists()),
                                 reason="needs Debian's chromium and chromium-driver"),
              pytest.mark.timeout(240)]  # tests/browser.py bounds each wait below this
T = TypeVar("T")
PHONE = 375  # CSS pixels, an iPhone SE's width


@pytest.fixture
async def desk(tmp_path: Path, sqlite_url: str, slack: FakeSlack,
               smtp: tuple[SmtpRecorder, int]) -> AsyncIterator[Desk]:
    sock = free_socket()
    config = make_config(
        tmp_path, sqlite_url, {"email": {"signup_domains": ["desk.example"]}},
        smtp_host="127.0.0.1", smtp_port=smtp[1], smtp_security="none",
        email_from="Alerts <alerts@desk.example>",
        public_url=f"http://127.0.0.1:{sock.getsockname()[1]}")
    clock = Clock()
    clock.now = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
    service = Service(config, clock)
    async with served(service, sock):
        yield Desk(service, slack, smtp[0], clock)
    await service.close()


async def in_browser(work: Callable[[webdriver.Chrome], T]) -> T:
    """Run blocking WebDriver calls off the loop, which keeps serving the pages."""
    def run() -> T:
        with chromium(PHONE) as driver:
            return work(driver)
    return await asyncio.to_thread(run)


def fits(driver: webdriver.Chrome) -> bool:
    """Nothing wider than the screen: no sideways scrolling at 375 px."""
    return bool(driver.execute_script(
        "return document.documentElement.scrollWidth <= window.innerWidth"))


def body(driver: webdriver.Chrome) -> str:
    return str(driver.find_element(By.TAG_NAME, "body").text)


async def test_sign_up_in_chromium_from_the_form_to_the_confirmed_subscription(desk: Desk
                                                                              ) -> None:
    base = desk.service.config.settings.public_url

    def ask(driver: webdriver.Chrome) -> tuple[list[str], bool, str, str]:
        driver.get(f"{base}/signup")
        seen = [body(driver)]
        wide = fits(driver)
        driver.find_element(By.ID, "email").send_keys("someone@elsewhere.example")
        submit(driver)
        seen.append(body(driver))  # refused, on the form itself
        field = driver.find_element(By.ID, "email")
        invalid = str(field.get_attribute("aria-invalid"))
        field.clear()
        field.send_keys(NEW)
        submit(driver)
        seen.append(body(driver))
        return seen, wide, invalid, driver.title

    seen, wide, invalid, title = await in_browser(ask)
    assert wide and "Open to addresses at desk.example" in seen[0]
    assert "Only addresses at desk.example can sign up here. Nothing was sent." in seen[1]
    assert invalid == "true"
    assert title == "Check your inbox · alertbot" and NEW in seen[2]
    await desk.service.check()
    [message] = desk.emails(NEW)
    [link] = re.findall(r"http://\S+/signup/confirm/[\w.-]+", text_of(message))
    assert await desk.service.db.read(subscribers.find, NEW) is None

    def confirm(driver: webdriver.Chrome) -> tuple[str, bool, list[str], str]:
        driver.get(link)
        page = body(driver)
        wide = fits(driver)
        logged = [entry["message"] for entry in driver.get_log("browser")]
        submit(driver)
        return page, wide, logged, body(driver)

    page, wide, logged, done = await in_browser(confirm)
    assert "Subscribe new.reader@desk.example to action-item emails" in page and wide
    assert not [m for m in logged if "Content Security Policy" in m], logged
    assert "You are subscribed" in done
    reader = await desk.service.db.read(subscribers.find, NEW)
    # the page's script filled the zone field from the browser's own zone (UTC on a server)
    assert reader is not None and (reader.mode, reader.timezone) == ("daily", "UTC")
