"""One-click unsubscribe (RFC 8058) from a received email; tampered and foreign tokens fail."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from bot.messages.render import page_env
from bot.readers import subscribers
from bot.readers.subscribers import unsubscribe_token
from bot.service import Service
from tests.conftest import story
from tests.fakes import FakeSlack, SmtpRecorder
from tests.harness import Clock, Desk, desk_config


@pytest.fixture
async def desk(tmp_path: Path, sqlite_url: str, slack: FakeSlack,
               smtp: tuple[SmtpRecorder, int]) -> AsyncIterator[Desk]:
    clock = Clock()
    service = Service(desk_config(tmp_path, sqlite_url, slack, smtp[1],
                                  email={"batch_window": "0s"}), clock)
    yield Desk(service, slack, smtp[0], clock)
    await service.close()


async def test_the_one_click_post_from_an_email_unsubscribes_and_stops_email(desk: Desk
                                                                            ) -> None:
    await desk.subscribe("reader@desk.example")
    await desk.ingest(story(id="first"))
    await desk.service.check()
    [received] = desk.emails("reader@desk.example")
    # One URI, the one that works: no mailto to an address nothing reads.
    [link] = re.findall(r"<([^>]+)>", str(received["List-Unsubscribe"]))
    assert "mailto" not in str(received["List-Unsubscribe"]).lower()
    assert received["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert received["Auto-Submitted"] == "auto-generated"  # RFC 3834: no auto-replies to it
    path = urlsplit(link).path
    async with desk.web() as client:
        page = await client.get(path)  # a link scanner's GET changes nothing
        assert page.status_code == 200 and "<form method=\"post\">" in page.text
        assert len(await desk.service.db.read(subscribers.listing)) == 1
        # What a mail client sends for one-click: a form POST, no cookies, no redirect followed.
        done = await client.post(path, content=b"List-Unsubscribe=One-Click",
                                 headers={"Content-Type": "application/x-www-form-urlencoded"})
        assert done.status_code == 200 and "You are unsubscribed" in done.text
        again = await client.post(path, content=b"List-Unsubscribe=One-Click")
        assert again.status_code == 200  # idempotent
    assert await desk.service.db.read(subscribers.listing) == []
    desk.clock.advance(60)
    await desk.ingest(story(id="second", scored_at=desk.clock().isoformat()))
    await desk.service.check()
    assert len(desk.emails("reader@desk.example")) == 1  # no further email


@pytest.mark.parametrize("forge", ["tampered", "foreign", "garbage"])
async def test_a_tampered_or_foreign_token_changes_nothing(desk: Desk, forge: str) -> None:
    await desk.subscribe("reader@desk.example")
    key = desk.service.dispatcher.key
    mine = unsubscribe_token(key, "reader@desk.example")
    theirs = unsubscribe_token(key, "other@desk.example")
    token = {
        "tampered": mine[:-2] + ("AA" if not mine.endswith("AA") else "BB"),
        # the signature of another address, with this reader's address in front of it
        "foreign": mine.split(".")[0] + "." + theirs.split(".")[1],
        "garbage": "not-a-token",
    }[forge]
    async with desk.web() as client:
        for method in ("GET", "POST"):
            answer = await client.request(method, f"/unsubscribe/{token}")
            assert answer.status_code == 400 and "not valid" in answer.text
    assert [s.email for s in await desk.service.db.read(subscribers.listing)] == [
        "reader@desk.example"]


@pytest.mark.parametrize(("outcome", "title"), [
    ("invalid", "Link not valid"), ("unavailable", "Try again shortly"),
    ("done", "Unsubscribed"), ("confirm", "Unsubscribe"),
])
def test_each_unsubscribe_page_has_a_plain_title(outcome: str, title: str) -> None:
    page = page_env().get_template("unsubscribe.html").render(outcome=outcome,
                                                              address="reader@desk.example")
    found = re.search(r"<title>(.*?)</title>", page, re.S)
    assert found is not None and found.group(1) == f"{title} · alertbot"  # no markup in it
