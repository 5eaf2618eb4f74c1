"""The email preference center, through a real SMTP server and the service's HTTP app."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime
from email.message import EmailMessage
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

from bot.readers import subscribers
from bot.readers.subscribers import preferences_token, unsubscribe_token
from bot.service import Service
from tests.conftest import story
from tests.fakes import FakeSlack, SmtpRecorder
from tests.harness import Clock, Desk, desk_config

READER = "reader@desk.example"
FORM = {"mode": "instant", "topics": "", "min_impact": "", "digest_hour": "07:00",
        "timezone": "UTC", "paused_until": ""}


@pytest.fixture
async def desk(tmp_path: Path, sqlite_url: str, slack: FakeSlack,
               smtp: tuple[SmtpRecorder, int]) -> AsyncIterator[Desk]:
    clock = Clock()
    clock.now = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
    service = Service(desk_config(tmp_path, sqlite_url, slack, smtp[1],
                                  email={"batch_window": "0s"}), clock)
    yield Desk(service, slack, smtp[0], clock)
    await service.close()


def text_of(message: EmailMessage) -> str:
    return message.get_body(("plain",)).get_content()  # type: ignore[union-attr]


def link_in(message: EmailMessage) -> str:
    """The path of the "Manage preferences" link, from the text part and the HTML part."""
    [url] = re.findall(r"Manage preferences: (\S+)", text_of(message))
    html = message.get_body(("html",)).get_content()  # type: ignore[union-attr]
    assert re.search(f'href="{re.escape(url)}"[^>]*>Manage preferences</a>', html)
    return urlsplit(url).path


async def submit(client: httpx.AsyncClient, path: str, **changes: str) -> httpx.Response:
    page = await client.get(path)
    assert page.status_code == 200, page.text
    [csrf] = re.findall(r'name="csrf" value="([^"]+)"', page.text)
    return await client.post(path, data={**FORM, "csrf": csrf, **changes})


async def first_email(desk: Desk) -> EmailMessage:
    await desk.subscribe(READER)
    await desk.ingest(story(id="first", scored_at=desk.clock().isoformat()))
    await desk.service.check()
    [received] = desk.emails(READER)
    return received


async def stored(desk: Desk) -> subscribers.Subscriber:
    found = await desk.service.db.read(subscribers.find, READER)
    assert found is not None
    return found


async def test_a_change_from_the_emails_link_shapes_the_next_digest(desk: Desk) -> None:
    path = link_in(await first_email(desk))
    async with desk.web() as client:
        saved = await submit(client, path, mode="daily", topics="Budget, elections",
                             digest_hour="09:00", min_impact="8.5")
    assert saved.status_code == 200
    assert "Your changes apply from the next message" in saved.text
    reader = await stored(desk)
    assert (reader.mode, reader.topics, reader.digest_hour, reader.min_impact) == (
        "daily", ("budget", "elections"), "09:00", 8.5)
    at = desk.clock().isoformat()
    await desk.ingest(
        story(id="launch9", title="Launch nine", impact=9, scored_at=at),
        story(id="budget8", title="Budget eight", impact=8, topics=["budget"], scored_at=at),
        story(id="budget9", title="Budget nine", impact=9, topics=["budget"], scored_at=at))
    await desk.service.check()
    assert len(desk.emails(READER)) == 1  # daily now: no instant email
    desk.clock.now = datetime(2026, 11, 27, 8, 59, tzinfo=UTC)
    await desk.service.check()
    assert len(desk.emails(READER)) == 1  # not at 07:00 any more
    desk.clock.now = datetime(2026, 11, 27, 9, 0, tzinfo=UTC)
    await desk.service.check()
    digest = desk.emails(READER)[-1]
    assert digest["Subject"].startswith("Daily digest")
    text = text_of(digest)
    assert "Budget nine" in text and "Budget eight" not in text and "Launch nine" not in text


async def test_a_pause_holds_instant_email_and_digests_until_its_date(desk: Desk) -> None:
    path = link_in(await first_email(desk))
    async with desk.web() as client:
        saved = await submit(client, path, mode="both", paused_until="2026-11-29")
    assert saved.status_code == 200 and 'value="2026-11-29"' in saved.text
    assert (await stored(desk)).paused_until == date(2026, 11, 29)
    for day in (26, 27, 28):
        if day > 26:
            desk.clock.now = datetime(2026, 11, day, 7, 0, tzinfo=UTC)
            await desk.service.check()  # that day's digest hour, paused
        desk.clock.now = datetime(2026, 11, day, 13, 0, tzinfo=UTC)
        await desk.ingest(story(id=f"paused{day}", title=f"Story of the {day}th",
                                scored_at=desk.clock().isoformat()))
        await desk.service.check()
    assert len(desk.emails(READER)) == 1  # nothing while paused: no alert, no digest
    desk.clock.now = datetime(2026, 11, 29, 7, 0, tzinfo=UTC)
    await desk.service.check()
    digest = desk.emails(READER)[-1]
    # the first digest after the pause covers the day before it, not the whole pause
    assert digest["Subject"].startswith("Daily digest")
    assert "Story of the 28th" in text_of(digest) and "Story of the 27th" not in text_of(digest)
    desk.clock.advance(60)
    await desk.ingest(story(id="after", scored_at=desk.clock().isoformat()))
    await desk.service.check()
    assert len(desk.emails(READER)) == 3  # instant again


@pytest.mark.parametrize("forge", ["tampered", "unsubscribe token", "foreign", "garbage"])
async def test_a_forged_link_shows_an_error_page_and_changes_nothing(desk: Desk, forge: str
                                                                    ) -> None:
    await desk.subscribe(READER)
    key = desk.service.dispatcher.key
    mine = preferences_token(key, READER)
    token = {
        "tampered": mine[:-2] + ("AA" if not mine.endswith("AA") else "BB"),
        "unsubscribe token": unsubscribe_token(key, READER),
        "foreign": mine.split(".")[0] + "." + preferences_token(key, "x@desk.example")
        .split(".")[1],
        "garbage": "not-a-token",
    }[forge]
    before = await stored(desk)
    async with desk.web() as client:
        for method in ("GET", "POST"):
            answer = await client.request(method, f"/preferences/{token}",
                                          data={**FORM, "mode": "daily"})
            assert answer.status_code == 404 and "This link is not valid" in answer.text
        # and the preferences token unsubscribes no one
        wrong = await client.post(f"/unsubscribe/{mine}")
        assert wrong.status_code == 400
    assert await stored(desk) == before


@pytest.mark.parametrize("csrf", ["missing", "forged", "stale", "another reader's"])
async def test_a_post_without_this_pages_token_changes_nothing(desk: Desk, csrf: str) -> None:
    await desk.subscribe(READER)
    key = desk.service.dispatcher.key
    path = f"/preferences/{preferences_token(key, READER)}"
    before = await stored(desk)
    async with desk.web() as client:
        page = await client.get(path)
        [good] = re.findall(r'name="csrf" value="([^"]+)"', page.text)
        value = {"missing": "", "forged": good[:-4] + "0000", "stale": good,
                 "another reader's": ""}[csrf]
        if csrf == "stale":
            desk.clock.advance(2 * 3600 + 1)
        if csrf == "another reader's":
            await desk.subscribe("other@desk.example")
            other = await client.get(f"/preferences/{preferences_token(key, 'other@desk.example')}")
            [value] = re.findall(r'name="csrf" value="([^"]+)"', other.text)
        answer = await client.post(path, data={**FORM, "mode": "daily", "csrf": value})
    assert answer.status_code == 400 and "Nothing was changed" in answer.text
    assert await stored(desk) == before


async def test_a_bad_value_is_named_on_the_form_and_nothing_is_saved(desk: Desk) -> None:
    await desk.subscribe(READER)
    path = f"/preferences/{preferences_token(desk.service.dispatcher.key, READER)}"
    before = await stored(desk)
    async with desk.web() as client:
        for field, value, words in [("timezone", "Mars/Olympus", "time zone"),
                                    ("min_impact", "11", "minimum impact"),
                                    ("paused_until", "soon", "pause date")]:
            answer = await submit(client, path, **{field: value, "mode": "daily"})
            assert answer.status_code == 400
            assert f"Nothing was saved: the {words}" in answer.text
    assert await stored(desk) == before


async def test_the_page_lists_every_zone_and_labels_every_control(desk: Desk) -> None:
    await desk.subscribe(READER)
    path = f"/preferences/{preferences_token(desk.service.dispatcher.key, READER)}"
    async with desk.web() as client:
        page = (await client.get(path)).text
    assert '<option value="Europe/Berlin">' in page and '<option value="UTC">' in page
    controls = re.findall(r'<(?:input|select)[^>]*\bid="([^"]+)"', page)
    labelled = set(re.findall(r'<label for="([^"]+)"', page))
    assert controls and set(controls) == labelled


async def test_public_pages_are_limited_per_client(desk: Desk) -> None:
    await desk.subscribe(READER)
    path = f"/preferences/{preferences_token(desk.service.dispatcher.key, READER)}"
    async with desk.web() as client:
        codes = [(await client.get(path)).status_code for _ in range(31)]
        unsubscribe = await client.get(f"/unsubscribe/{unsubscribe_token(b'x', READER)}")
    assert codes[:30] == [200] * 30 and codes[30] == 429
    assert unsubscribe.status_code == 429  # one limit for both pages
