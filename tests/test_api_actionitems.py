"""GET /api/actionitems on the real `alertbot run`: the desk's items by state, bearer token."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from bot import db as database
from bot.rules.claims import Reason, Request, Verb
from bot.stories import actions
from tests.conftest import story
from tests.fakes import FakeSlack
from tests.process import INGEST_TOKEN, Alertbot
from tests.test_service import toml

NOW = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
ANA, BO = "U0ANA", "U0BO"


@pytest.fixture
def alertbot(tmp_path: Path, slack: FakeSlack) -> Iterator[Alertbot]:
    bot = Alertbot.make(tmp_path, toml(), slack.url)
    yield bot.start()
    bot.stop()


def press(bot: Alertbot, story_id: str, request: Request, ts: str, now: datetime) -> None:
    engine = database.create(bot.env["DATABASE_URL"])
    try:
        with engine.begin() as db:
            key = actions.press_key(ts, request.user, request.verb.value, story_id)
            assert actions.apply(db, story_id, request, now, key).outcome.applied
    finally:
        engine.dispose()


def listed(bot: Alertbot, state: str | None, token: str | None = INGEST_TOKEN
           ) -> httpx.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    params = {"state": state} if state else {}
    return httpx.get(f"{bot.url}/api/actionitems", params=params, headers=headers, timeout=30)


def ids(answer: httpx.Response) -> list[Any]:
    assert answer.status_code == 200, answer.text
    return [item["story_id"] for item in answer.json()]


def test_action_items_by_state_with_owner_and_figures(alertbot: Alertbot) -> None:
    stories = [story(id=name, title=f"Title of {name}", impact=9)
               for name in ("a-open", "b-claimed", "c-done", "d-out")]
    assert alertbot.push(stories).status_code == 202
    press(alertbot, "b-claimed", Request(Verb.CLAIM, ANA), "1.1", NOW)
    press(alertbot, "c-done", Request(Verb.CLAIM, ANA), "2.1", NOW)
    press(alertbot, "c-done", Request(Verb.DONE, ANA, note="filed"), "2.2",
          NOW + timedelta(minutes=9))
    press(alertbot, "d-out", Request(Verb.DISMISS, BO, note="sport", reason=Reason.NOT_OUR_BEAT),
          "3.1", NOW)
    assert ids(listed(alertbot, None)) == ["a-open"]  # open by default
    claimed = listed(alertbot, "claimed").json()
    assert claimed == [{"story_id": "b-claimed", "title": "Title of b-claimed",
                        "url": "https://desk.example/s/b-claimed", "impact": 9.0, "sources": 2,
                        "state": "claimed", "by": ANA, "by_name": None, "at": NOW.isoformat(),
                        "snoozed_until": None, "note": None, "reason": None}]
    [done] = listed(alertbot, "done").json()
    assert (done["story_id"], done["by"], done["note"], done["at"]) == (
        "c-done", ANA, "filed", (NOW + timedelta(minutes=9)).isoformat())
    [out] = listed(alertbot, "dismissed").json()
    assert (out["story_id"], out["state"], out["by"], out["reason"], out["note"]) == (
        "d-out", "dismissed", BO, "not_our_beat", "sport")


def test_action_items_need_the_token_and_a_known_state(alertbot: Alertbot) -> None:
    for token in (None, "wrong"):
        refused = listed(alertbot, "open", token)
        assert refused.status_code == 401 and refused.headers["www-authenticate"] == "Bearer"
    unknown = listed(alertbot, "snoozed")
    assert unknown.status_code == 400
    assert unknown.json() == {"error": "parameter 'state' must be one of open, claimed, done, "
                                       "dismissed, not 'snoozed'"}
