"""Every HTML page the service serves carries the security headers (bot/web/headers.py)."""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from starlette.routing import Route

from bot.readers.signup import confirm_token, expiry
from bot.readers.subscribers import preferences_token, unsubscribe_token
from bot.service import Service, serving
from bot.web.app import create_app
from bot.web.preferences import PreferenceDoor
from tests.fakes import FakeSlack, SmtpRecorder
from tests.harness import Clock, Desk, desk_config

ADDRESS = "reader@desk.example"


@pytest.fixture
async def desk(tmp_path: Path, sqlite_url: str, slack: FakeSlack,
               smtp: tuple[SmtpRecorder, int]) -> AsyncIterator[Desk]:
    service = Service(desk_config(tmp_path, sqlite_url, slack, smtp[1],
                                  email={"signup_domains": ["desk.example"]}), Clock())
    yield Desk(service, slack, smtp[0], Clock())
    await service.close()


def _tokens(desk: Desk) -> dict[str, list[str]]:
    """For each path parameter a page takes: a valid value and a forged one."""
    key = desk.service.dispatcher.key
    return {"token": [unsubscribe_token(key, ADDRESS), preferences_token(key, ADDRESS),
                      confirm_token(key, "new@desk.example", expiry(desk.clock())),
                      "forged.token"]}


async def test_every_html_page_sends_the_security_headers(desk: Desk) -> None:
    await desk.subscribe(ADDRESS)
    service = desk.service
    app = create_app(service.push, service.ready, None, None, service.unsubscribe,
                     preferences=PreferenceDoor(service.db, service.dispatcher.key,
                                                service.clock),
                     signup=serving.signup_door(service))
    html_routes: set[str] = set()
    scripts = 0
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://bot") as client:
        for route in app.routes:
            assert isinstance(route, Route)
            values = [""] if not route.param_convertors else _tokens(desk)["token"]
            for value in values:
                path = route.path.replace("{token}", value)
                for method in sorted(route.methods or ()):
                    if method == "HEAD":
                        continue
                    await desk.subscribe(ADDRESS)  # a walk's unsubscribe POST removed them
                    answer = await client.request(method, path)
                    if not answer.headers.get("content-type", "").startswith("text/html"):
                        continue
                    html_routes.add(route.path)
                    policy = answer.headers["content-security-policy"]
                    assert "default-src 'none'" in policy
                    assert "frame-ancestors 'none'" in policy
                    assert "form-action 'self'" in policy and "base-uri 'none'" in policy
                    assert answer.headers["referrer-policy"] == "no-referrer"
                    assert answer.headers["x-content-type-options"] == "nosniff"
                    assert answer.headers["cache-control"] == "no-store"
                    # each inline script is allowed by its hash, and no other is
                    for script in re.findall(r"<script>(.*?)</script>", answer.text, re.S):
                        digest = base64.b64encode(hashlib.sha256(script.encode()).digest())
                        assert f"'sha256-{digest.decode()}'" in policy
                        scripts += 1
                    # nothing from elsewhere: no absolute URL to load a style or script from
                    assert "src=\"http" not in answer.text and "href=\"http" not in answer.text
    assert html_routes >= {"/unsubscribe/{token}", "/preferences/{token}", "/signup",
                           "/signup/confirm/{token}"}
    assert scripts >= 1  # the preference form's zone guess was checked


async def test_json_and_text_answers_are_left_alone(desk: Desk) -> None:
    async with desk.web() as client:
        health = await client.get("/healthz")
    assert health.status_code == 200 and "content-security-policy" not in health.headers
