"""The token bound to a public page's form (bot/web/page_tokens.py), shared by the preference
page and the sign-up pages, through the service's HTTP app."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bot.readers.subscribers import preferences_token
from bot.service import Service
from bot.web.page_tokens import FORM_LIFETIME, page_token, page_token_ok
from tests.fakes import FakeSlack, SmtpRecorder
from tests.harness import Clock, Desk, desk_config
from tests.test_preferences import FORM, READER, stored

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)


@pytest.fixture
async def desk(tmp_path: Path, sqlite_url: str, slack: FakeSlack,
               smtp: tuple[SmtpRecorder, int]) -> AsyncIterator[Desk]:
    clock = Clock()
    clock.now = NOW
    service = Service(desk_config(tmp_path, sqlite_url, slack, smtp[1]), clock)
    yield Desk(service, slack, smtp[0], clock)
    await service.close()


async def test_a_token_of_thousands_of_digits_is_refused_as_expired(desk: Desk) -> None:
    # More digits than int() parses (4300): refused before parsing, not a server error.
    await desk.subscribe(READER)
    path = f"/preferences/{preferences_token(desk.service.dispatcher.key, READER)}"
    before = await stored(desk)
    async with desk.web() as client:
        answer = await client.post(path, data={**FORM, "mode": "daily",
                                               "csrf": "9" * 5000 + ".abc"})
    assert answer.status_code == 400 and "Nothing was changed" in answer.text
    assert await stored(desk) == before


def test_a_token_passes_only_for_its_own_page_and_within_its_lifetime() -> None:
    key, now = b"a key of the service", NOW
    issued = int(now.timestamp())
    token = page_token(key, "preferences-form", READER, issued)
    assert page_token_ok(key, "preferences-form", READER, token, now)
    assert not page_token_ok(key, "signup-confirm", READER, token, now)  # another page's
    assert not page_token_ok(key, "preferences-form", "other@desk.example", token, now)
    assert page_token_ok(key, "preferences-form", READER, token, now + FORM_LIFETIME)
    assert not page_token_ok(key, "preferences-form", READER, token,
                             now + FORM_LIFETIME + timedelta(seconds=1))
    assert page_token_ok(key, "preferences-form", READER, token, now - timedelta(seconds=60))
    assert not page_token_ok(key, "preferences-form", READER, token,
                             now - timedelta(seconds=61))  # beyond a replica's clock skew
