"""Debian's headless Chromium, driven through Debian's chromedriver (docs/decisions.md), and
the service's HTTP app served on loopback for it to open."""

from __future__ import annotations

import asyncio
import os
import socket
import tempfile
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path

import pytest
import urllib3
import uvicorn
from selenium import webdriver
from selenium.common.exceptions import WebDriverException
from selenium.webdriver.chrome.service import Service as DriverService
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from bot.service import Service, serving

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
PAGE_LOAD = 30  # seconds a page may take before its test fails


def free_socket() -> socket.socket:
    """A listening loopback socket: the browser's connections queue on it until uvicorn
    serves, so nothing has to wait for the server to start."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    return sock


@asynccontextmanager
async def served(service: Service, sock: socket.socket) -> AsyncIterator[None]:
    """The service's own HTTP app (`serving.doors`), served on `sock` in this event loop."""
    app, _ = serving.doors(service)
    # A request the browser left open must not hold the fixture's teardown (nor the suite).
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off",
                                           timeout_graceful_shutdown=5))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        yield
    finally:
        server.should_exit = True
        await task


# Chromium as a test instrument: nothing but the pages under test. It reaches no network of its
# own (no proxy from the environment, no updates, sync or translation), so that a machine
# without one (CI) runs it as this one does.
FLAGS = ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
         "--no-proxy-server", "--no-first-run", "--no-default-browser-check",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--disable-extensions", "--disable-features=Translate,MediaRouter,OptimizationHints",
         "--password-store=basic", "--lang=en-US")
STARTUP_FAILURES = (WebDriverException, urllib3.exceptions.HTTPError, OSError)
_cannot_start: list[str] = []  # why Chromium could not start in this process, once seen


@contextmanager
def chromium(width: int = 600, height: int = 1000) -> Iterator[webdriver.Chrome]:
    """Headless Chromium at `width` CSS pixels; never downloads a browser or a driver.

    Its profile, and the folder it keeps its single-instance socket in (made under TMPDIR,
    so /tmp otherwise: one /tmp/org.chromium.Chromium.* left behind per run), are in a
    temporary folder of ours, removed once the browser has quit.

    Every wait is bounded: a browser that cannot start here (seen once in CI: the suite stopped
    at the first browser test until CI's own time limit) skips the test with chromedriver's
    own account of why, rather than holding the suite; once started, a page that does not
    load within PAGE_LOAD fails the test."""
    if _cannot_start:  # each try can take minutes to fail: one is enough per process
        pytest.skip(_cannot_start[0])
    with tempfile.TemporaryDirectory(prefix="alertbot-chromium-") as scratch:
        options = webdriver.ChromeOptions()
        options.binary_location = str(CHROMIUM)
        for flag in (*FLAGS, f"--window-size={width},{height}",
                     f"--user-data-dir={scratch}/profile"):
            options.add_argument(flag)
        options.set_capability("goog:loggingPrefs", {"browser": "ALL"})  # CSP reports land there
        # chromedriver starts Chromium with its own environment, so TMPDIR reaches it.
        log = Path(scratch) / "chromedriver.log"
        service = DriverService(str(CHROMEDRIVER), env={**os.environ, "TMPDIR": scratch},
                                service_args=["--verbose"], log_output=str(log))
        try:
            driver = webdriver.Chrome(options=options, service=service)
        except STARTUP_FAILURES as exc:
            said = log.read_text(errors="replace")[-1500:] if log.exists() else "(no log)"
            first = (str(exc).strip().splitlines() or [""])[0]  # not its C++ stack
            _cannot_start.append(f"Chromium could not start here: {type(exc).__name__}: "
                                 f"{first}\nchromedriver's log ends:\n{said}")
            pytest.skip(_cannot_start[0])
        try:
            driver.set_page_load_timeout(PAGE_LOAD)
            driver.set_script_timeout(PAGE_LOAD)
            yield driver
        finally:
            driver.quit()


def submit(driver: webdriver.Chrome) -> None:
    """Press the form's submit button and wait for the page it answers with: until the new
    page has loaded, the old one's body may be read (or vanish while being read) in its place.
    The old page is marked; a new document starts without the mark."""
    driver.execute_script("window.alertbotOldPage = true")
    driver.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
    WebDriverWait(driver, 10, ignored_exceptions=[WebDriverException]).until(
        lambda d: d.execute_script(
            "return !window.alertbotOldPage && document.readyState === 'complete'"))
