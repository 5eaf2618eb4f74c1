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

import uvicorn
from selenium import webdriver
from selenium.common.exceptions import WebDriverException
from selenium.webdriver.chrome.service import Service as DriverService
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from bot.service import Service, serving

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")


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
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        yield
    finally:
        server.should_exit = True
        await task


@contextmanager
def chromium(width: int = 600, height: int = 1000) -> Iterator[webdriver.Chrome]:
    """Headless Chromium at `width` CSS pixels; never downloads a browser or a driver.

    Its profile, and the folder it keeps its single-instance socket in (made under TMPDIR,
    so /tmp otherwise: one /tmp/org.chromium.Chromium.* left behind per run), are in a
    temporary folder of ours, removed once the browser has quit."""
    with tempfile.TemporaryDirectory(prefix="alertbot-chromium-") as scratch:
        options = webdriver.ChromeOptions()
        options.binary_location = str(CHROMIUM)
        for flag in ("--headless=new", "--no-sandbox", "--disable-gpu",
                     "--disable-dev-shm-usage", f"--window-size={width},{height}",
                     "--lang=en-US", f"--user-data-dir={scratch}/profile"):
            options.add_argument(flag)
        options.set_capability("goog:loggingPrefs", {"browser": "ALL"})  # CSP reports land there
        # chromedriver starts Chromium with its own environment, so TMPDIR reaches it.
        service = DriverService(str(CHROMEDRIVER), env={**os.environ, "TMPDIR": scratch})
        driver = webdriver.Chrome(options=options, service=service)
        try:
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
