"""The "My alerts" tab's view: untrusted text escaped for mrkdwn, and "today" as the person's
own day (the door itself is tested in test_slack_home.py)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

from slack_sdk.models.views import View

from bot import db as database
from bot.messages.render import slack_view
from bot.rules.claims import State
from bot.rules.digest_clock import digest_time, local_date
from bot.rules.gate import Thresholds
from bot.stories import actions, archive
from bot.stories.model import Story
from tests.conftest import story

ANA = "U0ANA"


def text(view: dict[str, Any]) -> str:
    return json.dumps(view["blocks"], ensure_ascii=False)


def test_the_tab_escapes_what_people_and_stories_wrote() -> None:
    hostile = "<!channel> <https://evil.example|click> & <@U123>"
    item = {"story_id": "s<1>", "title": hostile, "url": "https://desk.example/a?b=1&c=<2>",
            "impact": 9.0, "sources": 2, "by": ANA, "at": datetime(2026, 12, 1, 9, 0, tzinfo=UTC),
            "snoozed_until": None}
    view = slack_view("home", user=ANA, zone="UTC", profile_zone=None, email=f"{hostile}@x",
                      route={"topics": ["a"], "impact": 8, "sources": 2, "quiet_hours": None,
                             "zone": "UTC"},
                      reader=None, paused=False, claimed=[item], more_claimed=False,
                      today=[item], more_today=False, story_command="/story")
    View(**view).validate_json()
    said = text(view)
    assert "<!channel>" not in said and "<@U123>" not in said and "<https://evil" not in said
    assert "&lt;!channel&gt; &lt;https://evil.example|click&gt; &amp; &lt;@U123&gt;" in said
    assert "`/story s&lt;1&gt;`" in said


def test_todays_open_items_start_at_the_persons_midnight_on_sqlite_and_postgresql(
    database_url: str,
) -> None:
    # 23:30 in New York on 1 December is 04:30 UTC on the 2nd; its midnight is 05:00 UTC on the 1st.
    now = datetime(2026, 12, 2, 4, 30, tzinfo=UTC)
    engine = database.create(database_url)
    try:
        for story_id, at in [("before", datetime(2026, 12, 1, 4, 59, tzinfo=UTC)),
                             ("after", datetime(2026, 12, 1, 5, 0, tzinfo=UTC))]:
            with engine.begin() as db:
                archive.save(db, [Story.model_validate(story(id=story_id, impact=9,
                                                             scored_at=at.isoformat()))],
                             Thresholds(8, 2), timedelta(days=30), at)
        midnight = digest_time(local_date(now, "America/New_York"), "America/New_York", "00:00")
        with engine.connect() as db:
            today = actions.items(db, State.OPEN, since=midnight)
            everything = actions.items(db, State.OPEN)
    finally:
        engine.dispose()
    assert [i["story_id"] for i in today] == ["after"]
    assert [i["story_id"] for i in everything] == ["after", "before"]
