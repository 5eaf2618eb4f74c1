"""The App Home "My alerts" tab on a running `alertbot run`: signed events and modal submissions
through /slack/events, answered through the local Slack Web API (views.publish, views.open).
The requests are built in tests/slack_home_payloads.py."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from sqlalchemy import select, update

from bot import db as database
from bot.db.schema import DELIVERIES, MATCHES, STORIES
from bot.readers import slack_routes
from bot.rules.claims import Request, Verb
from bot.stories import actions
from tests.conftest import story
from tests.fakes import FakeSlack
from tests.process import Alertbot
from tests.slack_home_payloads import (
    email_form,
    open_home,
    opened_modal,
    press,
    publishes,
    shown,
    stored_reader,
    submit,
    text,
    text_input,
    wait_publishes,
)
from tests.slack_payloads import alerts, fake_slack, running_desk

ANA, DORA, ELI, NOBODY, QUINN = "U0ANA", "U0DORA", "U0ELI", "U0NOBODY", "U0QUINN"
ELI_EMAIL = "eli@desk.example"


@pytest.fixture(scope="module")
def slack_server() -> Iterator[FakeSlack]:
    yield from fake_slack(FakeSlack(people={DORA: {"tz": "Europe/Berlin"},
                                            ELI: {"tz": "Asia/Tokyo",
                                                  "email": "Eli@Desk.example"},
                                            NOBODY: {"email": "nobody@desk.example"},
                                            QUINN: {"tz": "Asia/Kolkata"}}))


@pytest.fixture(scope="module")
def alertbot(tmp_path_factory: pytest.TempPathFactory, slack_server: FakeSlack
             ) -> Iterator[Alertbot]:
    def prepare(bot: Alertbot) -> None:
        assert bot.cli("subscribers", "add", ELI_EMAIL, "--mode", "daily", "--tz",
                       "Asia/Tokyo", "--topics", "launch", "--digest-hour",
                       "07:00").returncode == 0
        engine = database.create(bot.env["DATABASE_URL"])
        with engine.begin() as db:
            actions.apply(db, "h-mine", Request(Verb.CLAIM, ANA), datetime.now(UTC),
                          actions.press_key("1.1", ANA, "claim", "h-mine"))
            # An action item of two days ago is not one of today's.
            db.execute(update(STORIES).where(STORIES.c.id == "h-yesterday")
                       .values(qualified_at=datetime.now(UTC) - timedelta(days=2)))
        engine.dispose()

    yield from running_desk(tmp_path_factory.mktemp("home"), slack_server,
                            [story(id=f"h-{name}", title=f"Title {name}", impact=9)
                             for name in ("mine", "open", "yesterday")], prepare)


def test_opening_the_tab_publishes_one_valid_view_of_what_the_person_has(
    alertbot: Alertbot, slack_server: FakeSlack,
) -> None:
    open_home(alertbot, ANA, tab="messages")  # the Messages tab: nothing to publish
    open_home(alertbot, ANA)
    view = shown(wait_publishes(slack_server, ANA, 1))
    assert view["type"] == "home"
    said = text(view)
    assert "You get no action items by DM" in said
    assert "Your Slack time zone: America/New_York." in said
    assert "Slack did not share your email address" in said
    claimed, today = said.split("*Claimed by you*")[1].split("*Open action items today*")
    assert "Title mine" in claimed and "`/story h-mine`" in claimed
    assert "Title open" in today and "Title mine" not in today
    assert "Title yesterday" not in said  # open, but not since midnight in New York
    # Another person's tab, published after ANA's: still exactly one for ANA.
    open_home(alertbot, NOBODY)
    other = text(shown(wait_publishes(slack_server, NOBODY, 1)))
    assert "nobody@desk.example gets no email alerts" in other
    assert "*Claimed by you*: nothing" in other
    assert len(publishes(slack_server, ANA)) == 1
    # The events are counted under their own name (they are JSON, not a slash command's form).
    metrics = httpx.get(f"{alertbot.url}/metrics").text
    assert 'alertbot_slash_command_seconds_count{command="app_home_opened"} 3.0' in metrics


def dm_form(topics: str | None = None, impact: str | None = None, quiet: str | None = None,
            zone: str | None = None) -> dict[str, dict[str, Any]]:
    return {"topics": text_input(topics), "quiet": text_input(quiet), "zone": text_input(zone),
            "impact": {"type": "number_input", "value": impact}}


def quiet_hours_not_now(zone: str) -> str:
    """A quiet-hours range three to five hours from now in `zone`: now is outside it."""
    now = datetime.now(ZoneInfo(zone))
    return f"{(now + timedelta(hours=3)):%H:%M}-{(now + timedelta(hours=5)):%H:%M}"


def push(bot: Alertbot, story_id: str, topics: list[str]) -> int:
    answer = bot.push([story(id=story_id, title=f"Title of {story_id}", impact=9,
                             topics=topics)])
    assert answer.status_code == 202
    return int(answer.json()["matched"])


def test_the_dm_modal_sets_topics_and_quiet_hours_and_dms_follow_them(
    alertbot: Alertbot, slack_server: FakeSlack,
) -> None:
    press(alertbot, DORA, "home_edit_dm", "Europe/Berlin")
    modal = opened_modal(slack_server, DORA)
    assert modal["callback_id"] == "home_dm"
    zone_field = next(b for b in modal["blocks"] if b["block_id"] == "zone")["element"]
    assert zone_field["initial_value"] == "Europe/Berlin"  # from the Slack profile
    quiet = quiet_hours_not_now("Europe/Berlin")
    ack = submit(alertbot, DORA, modal, dm_form("launch, Cyber", "8.5", quiet, ""))
    assert ack.status_code == 200 and ack.content == b""  # an empty ack closes the modal
    said = text(shown(wait_publishes(slack_server, DORA, 1)))  # published again after the save
    assert "Topics cyber, launch · impact ≥ 8.5 · ≥ 2 sources" in said
    assert f"Quiet {quiet} Europe/Berlin" in said

    assert push(alertbot, "home-weather", ["weather"]) == 0  # outside her topics: no DM
    assert push(alertbot, "home-launch", ["launch"]) == 1
    slack_server.wait_for(lambda: bool(slack_server.posts(DORA)), 10, lambda: "no DM")
    assert [json.dumps(c.body["blocks"]).count("Title of home-launch") > 0
            for c in slack_server.posts(DORA)] == [True]
    assert not any("home-weather" in json.dumps(c.body) for c in slack_server.posts())

    press(alertbot, DORA, "home_stop_dm", "stop")  # "Stop DMs", once Slack's confirm is passed
    said = text(shown(wait_publishes(slack_server, DORA, 2)))
    assert "You get no action items by DM" in said and "home_stop_dm" not in said
    assert stored_routes(alertbot, DORA) == []
    assert push(alertbot, "home-launch-later", ["launch"]) == 0


def test_quiet_hours_set_in_the_modal_hold_the_dm_until_they_end_in_the_profiles_zone(
    alertbot: Alertbot, slack_server: FakeSlack,
) -> None:
    press(alertbot, QUINN, "home_edit_dm", "Asia/Kolkata")
    modal = opened_modal(slack_server, QUINN)
    now = datetime.now(ZoneInfo("Asia/Kolkata"))
    quiet = f"{(now - timedelta(hours=1)):%H:%M}-{(now + timedelta(hours=2)):%H:%M}"
    ack = submit(alertbot, QUINN, modal, dm_form("space", None, quiet, None))
    assert ack.status_code == 200 and ack.content == b""
    assert f"Quiet {quiet} Asia/Kolkata" in text(shown(wait_publishes(slack_server, QUINN, 1)))
    assert push(alertbot, "home-space", ["space"]) == 1
    engine = database.create(alertbot.env["DATABASE_URL"])
    try:
        with engine.connect() as db:
            [match] = db.execute(select(MATCHES).where(MATCHES.c.target == f"slack:{QUINN}"))
            rows = db.execute(select(DELIVERIES).where(DELIVERIES.c.target == f"slack:{QUINN}"))
            planned = rows.all()
    finally:
        engine.dispose()
    # Matched, and held unplanned while her quiet hours last (impact 9 does not break through).
    assert match.story_id == "home-space" and match.delivery_id is None and planned == []
    assert not slack_server.posts(QUINN)


@pytest.mark.parametrize(("values", "block", "says"), [
    (dm_form(zone="Mars/Base"), "zone", "“Mars/Base” is not a time zone"),
    (dm_form(quiet="25:00-07:00"), "quiet", "“25:00-07:00”: give a range such as 22:00-07:00."),
    (dm_form(quiet="22:00"), "quiet", "give a range"),
    (dm_form(impact="11"), "impact", "“11”: impact is a number from 1 to 10."),
    (dm_form(topics="launch <!channel>"), "topics", "“<!channel>” is not a topic"),
])
def test_a_bad_dm_value_is_shown_next_to_its_field_and_nothing_is_saved(
    alertbot: Alertbot, slack_server: FakeSlack, values: dict[str, Any], block: str, says: str,
) -> None:
    press(alertbot, ANA, "home_edit_dm", "America/New_York")
    modal = opened_modal(slack_server, ANA)
    published = len(publishes(slack_server, ANA))
    ack = submit(alertbot, ANA, modal, values)
    assert ack.status_code == 200
    answer = ack.json()
    assert answer["response_action"] == "errors"
    assert list(answer["errors"]) == [block] and says in answer["errors"][block]
    # A later request of the same person has been answered: the submission's lazy half, had
    # it saved, ran before; yet no route exists and the tab was not published again.
    assert alerts(alertbot, slack_server, "me status", user=ANA).startswith("*No alerts route*")
    assert stored_routes(alertbot, ANA) == []
    assert len(publishes(slack_server, ANA)) == published


def stored_routes(bot: Alertbot, user: str) -> list[Any]:
    engine = database.create(bot.env["DATABASE_URL"])
    try:
        with engine.connect() as db:
            return list(slack_routes.listing(db, user))
    finally:
        engine.dispose()


def test_the_email_modal_saves_a_subscribers_settings_checked_as_the_preference_page(
    alertbot: Alertbot, slack_server: FakeSlack,
) -> None:
    open_home(alertbot, ELI)
    said = text(shown(wait_publishes(slack_server, ELI, 1)))
    assert f"*Email* to {ELI_EMAIL}" in said and "A daily digest at 07:00 Asia/Tokyo" in said
    press(alertbot, ELI, "home_edit_email", ELI_EMAIL)
    modal = opened_modal(slack_server, ELI)
    assert modal["private_metadata"] == ELI_EMAIL
    fields = {b.get("block_id"): b.get("element", {}) for b in modal["blocks"]}
    assert fields["mode"]["initial_option"]["value"] == "daily"
    assert fields["digest_hour"]["initial_time"] == "07:00"

    for values, block in [(email_form(zone="Mars/Base"), "timezone"),
                          (email_form(hour="25:00"), "digest_hour"),
                          (email_form(mode="hourly"), "mode"),
                          (email_form(paused="2026-13-01"), "paused_until")]:
        ack = submit(alertbot, ELI, modal, values)
        assert ack.json()["response_action"] == "errors"
        assert list(ack.json()["errors"]) == [block]
    before = stored_reader(alertbot, ELI_EMAIL)
    assert before is not None and (before.mode, before.timezone) == ("daily", "Asia/Tokyo")

    pause = (date.today() + timedelta(days=30)).isoformat()
    ack = submit(alertbot, ELI, modal, email_form(paused=pause))
    assert ack.status_code == 200 and ack.content == b""
    said = text(shown(wait_publishes(slack_server, ELI, 2)))
    assert "Each action item, and a daily digest at 06:30 Europe/Paris" in said
    assert "topics cyber, launch" in said and f"Paused until {pause}" in said
    after = stored_reader(alertbot, ELI_EMAIL)
    assert after is not None
    assert (after.mode, after.timezone, after.topics, after.digest_hour, after.paused_until) == (
        "both", "Europe/Paris", ("cyber", "launch"), "06:30", date.fromisoformat(pause))
